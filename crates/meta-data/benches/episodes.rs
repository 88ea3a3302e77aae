//! `cargo bench -p meta-data`: Omniglot decode time and episode throughput from memory.
//!
//! Data: `$META_DATA_DIR` (else `<workspace>/datasets`) must hold `omniglot/images_*.zip`.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meta_data::{EpisodeSampler, EpisodeSource, EpisodeSpec, Omniglot, OmniglotSplit, Split};

fn omniglot_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("META_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets"))
        .join("omniglot");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: no Omniglot at {} (set META_DATA_DIR)",
            dir.display()
        );
        None
    }
}

/// On-CPU time of this thread in ns (Linux `/proc/thread-self/schedstat`), to report throughput
/// per core independently of other processes competing for the CPU.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let Some(dir) = omniglot_dir() else { return };
    let omniglot = Omniglot::load(&dir, 28).expect("decode Omniglot");

    let mut decode = c.benchmark_group("decode");
    decode
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    decode.throughput(Throughput::Elements(omniglot.store().images() as u64));
    decode.bench_function("omniglot_all_32460_png_to_28x28", |b| {
        b.iter(|| black_box(Omniglot::load(&dir, 28).expect("decode")))
    });
    decode.finish();

    let mut episodes = c.benchmark_group("episodes");
    episodes.throughput(Throughput::Elements(1));
    episodes.measurement_time(Duration::from_secs(5));
    for (ways, shots, queries) in [(5, 1, 15), (20, 5, 15)] {
        let split = omniglot
            .split(OmniglotSplit::Vinyals, Split::Train)
            .expect("split");
        let sampler = EpisodeSampler::new(
            Arc::clone(omniglot.store()),
            split,
            EpisodeSpec::new(ways, shots, queries),
            0,
        )
        .expect("sampler");
        let name = format!("omniglot_{ways}w{shots}s{queries}q");
        let mut index = 0u64;
        episodes.bench_function(format!("{name}_new"), |b| {
            b.iter(|| {
                index += 1;
                black_box(sampler.episode(index))
            })
        });
        // The same work in on-CPU time of this thread over one long window (schedstat has tick
        // resolution, so one window of ~2 s rather than criterion samples): episodes per busy core,
        // independent of other processes competing for the CPU.
        if let Some(start) = thread_cpu_ns() {
            let n = if ways == 5 { 30_000 } else { 6_000 };
            let wall = std::time::Instant::now();
            for i in 0..n {
                black_box(sampler.episode(1_000_000 + i));
            }
            let cpu = thread_cpu_ns().unwrap_or(start).saturating_sub(start) as f64 * 1e-9;
            println!(
                "{name}: {n} episodes in {cpu:.2} s of thread CPU time ({:.0} episodes/s per core; wall {:.2} s)",
                n as f64 / cpu,
                wall.elapsed().as_secs_f64()
            );
        }
        let mut episode = sampler.empty_episode();
        episodes.bench_function(format!("{name}_reuse"), |b| {
            b.iter(|| {
                index += 1;
                sampler.fill(index, &mut episode);
                black_box(&episode);
            })
        });
    }
    episodes.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
