//! [`Prefetcher`]: meta-batches of episodes built ahead of time on background threads.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, bounded};

use crate::episode::{Episode, EpisodeSource};
use crate::error::{DataError, Result};

/// Builds meta-batches `b = 0, 1, …` (episodes `start + b*meta_batch .. start + (b+1)*meta_batch`)
/// on background threads and yields them in order.
///
/// Worker `t` builds batches `t, t + threads, …` into its own bounded queue and the consumer reads
/// the queues round-robin, so the sequence is identical for every thread count. At most `depth`
/// batches per worker wait in memory. Dropping the prefetcher stops and joins the threads.
#[derive(Debug)]
pub struct Prefetcher {
    receivers: Vec<Receiver<Vec<Episode>>>,
    handles: Vec<JoinHandle<()>>,
    next: usize,
    start: u64,
    meta_batch: usize,
    produced: u64,
}

impl Prefetcher {
    /// Starts `threads` workers producing meta-batches of `meta_batch` episodes from episode
    /// `start` on, keeping up to `depth` finished batches per worker.
    pub fn new<S>(
        source: Arc<S>,
        start: u64,
        meta_batch: usize,
        threads: usize,
        depth: usize,
    ) -> Result<Self>
    where
        S: EpisodeSource + ?Sized + 'static,
    {
        for (name, v) in [
            ("meta-batch size", meta_batch),
            ("prefetch threads", threads),
            ("prefetch depth", depth),
        ] {
            if v == 0 {
                return Err(DataError::ZeroParameter { name });
            }
        }
        let mut receivers = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for t in 0..threads {
            let (tx, rx) = bounded::<Vec<Episode>>(depth);
            let source = Arc::clone(&source);
            let handle = std::thread::Builder::new()
                .name(format!("meta-data-prefetch-{t}"))
                .spawn(move || {
                    let mut batch = t as u64;
                    loop {
                        let first = start + batch * meta_batch as u64;
                        let episodes: Vec<Episode> = (0..meta_batch as u64)
                            .map(|i| source.episode(first + i))
                            .collect();
                        if tx.send(episodes).is_err() {
                            return; // consumer gone
                        }
                        batch += threads as u64;
                    }
                })
                .map_err(|e| DataError::io("<prefetch thread>", e))?;
            receivers.push(rx);
            handles.push(handle);
        }
        Ok(Prefetcher {
            receivers,
            handles,
            next: 0,
            start,
            meta_batch,
            produced: 0,
        })
    }

    /// Index of the first episode of the batch the next call to `next` returns.
    pub fn next_episode_index(&self) -> u64 {
        self.start + self.produced * self.meta_batch as u64
    }

    /// The next meta-batch, blocking until it is ready (`None` only if a worker died).
    pub fn next_batch(&mut self) -> Option<Vec<Episode>> {
        let batch = self.receivers[self.next].recv().ok()?;
        self.next = (self.next + 1) % self.receivers.len();
        self.produced += 1;
        Some(batch)
    }
}

impl Iterator for Prefetcher {
    type Item = Vec<Episode>;
    fn next(&mut self) -> Option<Vec<Episode>> {
        self.next_batch()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Dropping the receivers makes every blocked or later `send` fail, which ends the workers.
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A source whose episode `i` has `ways = i` and that counts how many it built.
    struct Counting(AtomicU64);

    impl EpisodeSource for Counting {
        fn episode(&self, index: u64) -> Episode {
            self.0.fetch_add(1, Ordering::SeqCst);
            Episode {
                ways: index as usize,
                shots: 0,
                queries: 0,
                image_shape: [1, 1, 1],
                support_images: vec![],
                support_labels: vec![],
                query_images: vec![],
                query_labels: vec![],
                classes: vec![],
                value_dim: 0,
                support_values: vec![],
                query_values: vec![],
            }
        }
        fn shape(&self) -> (usize, usize, usize) {
            (0, 0, 0)
        }
        fn image_shape(&self) -> [usize; 3] {
            [1, 1, 1]
        }
    }

    #[test]
    fn batches_come_in_order_the_queue_is_bounded_and_drop_stops_workers() {
        let source = Arc::new(Counting(AtomicU64::new(0)));
        let mut prefetcher = Prefetcher::new(Arc::clone(&source), 10, 3, 2, 2).expect("start");
        for b in 0..4u64 {
            let batch = prefetcher.next_batch().expect("batch");
            let indices: Vec<usize> = batch.iter().map(|e| e.ways).collect();
            let first = (10 + 3 * b) as usize;
            assert_eq!(indices, vec![first, first + 1, first + 2]);
        }
        assert_eq!(prefetcher.next_episode_index(), 22);
        std::thread::sleep(Duration::from_millis(50));
        // 4 consumed + at most 2 queued + 1 in flight per worker, 3 episodes each.
        let built = source.0.load(Ordering::SeqCst);
        assert!(built <= (4 + 2 * 3) * 3, "queue is bounded: {built}");
        drop(prefetcher);
        let after_drop = source.0.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            source.0.load(Ordering::SeqCst),
            after_drop,
            "workers stopped"
        );
        assert_eq!(Arc::strong_count(&source), 1, "workers released the source");
    }
}
