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
