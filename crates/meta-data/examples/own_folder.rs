//! The episode sampler on your own folder of images: `PATH/<class>/<image>` (any format the
//! `image` crate reads), classes divided into train / validation / test by seeded fractions, so
//! that no class is in two splits. Prints the split sizes and a few training episodes.
//!
//! ```sh
//! cargo run --release -p meta-data --example own_folder -- PATH    # or --quick
//! ```
//!
//! `--quick` (what `cargo xtask test` runs) first writes a folder of 20 synthetic colour classes
//! (6 images each) into a temporary directory.

use std::path::{Path, PathBuf};

use meta_data::{
    ClassFractions, DatasetKind, EpisodeSource, EpisodeSpec, FolderDataset, FolderSplit,
    OmniglotSplit, Split, load_split_sampler,
};

/// Writes `classes` folders of `per_class` 32×32 PNGs: class `c` is a noisy patch of its own
/// colour, so episodes can be told apart by eye.
fn write_synthetic_folder(root: &Path, classes: u32, per_class: u32) -> std::io::Result<()> {
    for c in 0..classes {
        let dir = root.join(format!("class{c:02}"));
        std::fs::create_dir_all(&dir)?;
        let base = [
            (c * 53 % 256) as u8,
            (c * 97 % 256) as u8,
            (c * 151 % 256) as u8,
        ];
        for i in 0..per_class {
            let image = image::RgbImage::from_fn(32, 32, |x, y| {
                let noise = ((x * 7 + y * 13 + i * 31) % 40) as u8;
                image::Rgb(base.map(|v| v.saturating_add(noise)))
            });
            image
                .save(dir.join(format!("{i}.png")))
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args()
        .nth(1)
        .ok_or("usage: own_folder PATH (a folder of class folders) or --quick")?;
    let _temp;
    let root: PathBuf = if arg == "--quick" {
        let dir = tempfile::tempdir()?;
        write_synthetic_folder(dir.path(), 20, 6)?;
        let path = dir.path().to_path_buf();
        _temp = dir;
        path
    } else {
        PathBuf::from(arg)
    };
    // 60% / 20% / 20% of the classes, shuffled with seed 7; images resized to 32×32 RGB.
    let fractions = ClassFractions {
        train: 0.6,
        val: 0.2,
        test: 0.2,
        seed: 7,
    };
    let kind = DatasetKind::Folder(FolderDataset {
        path: root.clone(),
        channels: 3,
        split: Some(FolderSplit::Fractions(fractions)),
    });
    let spec = EpisodeSpec::new(3, 1, 2);
    for split in [Split::Train, Split::Val, Split::Test] {
        let sampler = load_split_sampler(
            &root,
            &kind,
            OmniglotSplit::Vinyals,
            split,
            spec,
            42,
            Some(32),
        )?;
        let names: Vec<String> = (0..sampler.classes().len())
            .map(|i| sampler.class_name(i))
            .collect();
        println!("{split:?}: {} classes {names:?}", names.len());
        if split == Split::Train {
            for i in 0..3 {
                let episode = sampler.episode(i);
                let classes: Vec<String> = episode
                    .classes
                    .iter()
                    .map(|&c| sampler.class_name(c))
                    .collect();
                println!(
                    "  episode {i}: classes {classes:?}, {} support + {} query images of {:?}",
                    episode.support_labels.len(),
                    episode.query_labels.len(),
                    episode.image_shape
                );
            }
        }
    }
    Ok(())
}
