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
