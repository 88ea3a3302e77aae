//! Omniglot on the real data: counts, shapes, splits, rotations, episodes, determinism, zip == folder.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{omniglot, omniglot_data_dir, to_u8};
use image::{GrayImage, imageops};
use meta_data::{
    Augmentation, ClassRef, ClassSplit, DatasetKind, Episode, EpisodeSampler, EpisodeSource,
    EpisodeSpec, OmniglotSplit, Prefetcher, Split, info, load_split_sampler, omniglot,
};

const SCHEMES: [OmniglotSplit; 3] = [
    OmniglotSplit::Vinyals,
    OmniglotSplit::Learn2Learn { seed: 42 },
    OmniglotSplit::Lake,
];

#[test]
fn omniglot_has_1623_characters_of_20_drawings_at_28x28() {
    let Some(o) = omniglot() else { return };
    let store = o.store();
    assert_eq!(store.num_classes(), 1623);
    assert_eq!(o.background_classes(), 964);
    assert_eq!(store.images(), 32_460);
    assert!((0..store.num_classes()).all(|c| store.class_len(c) == 20));
    assert_eq!(store.image_shape(), [1, 28, 28]);
    assert_eq!(store.class_name(0), "Alphabet_of_the_Magi/character01");
}

#[test]
fn omniglot_pixels_are_ink_one_on_zero_background() {
    let Some(o) = omniglot() else { return };
    let store = o.store();
    let pixels = store.pixels();
    let mean = pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / pixels.len() as f64 / 255.0;
    // Ink is sparse: after inversion the mean is small but not zero.
    assert!(mean > 0.03 && mean < 0.35, "mean pixel {mean}");
    // Corners are background (0) in nearly every drawing.
    let corner_zero = (0..store.images())
        .filter(|i| pixels[i * 784] == 0 && pixels[i * 784 + 783] == 0)
        .count();
    assert!(corner_zero > store.images() * 9 / 10, "{corner_zero}");
    assert!(pixels.contains(&255));
    // Episodes carry values in [0, 1].
    let sampler = EpisodeSampler::new(
        Arc::clone(store),
        o.split(OmniglotSplit::Vinyals, Split::Train)
            .expect("split"),
        EpisodeSpec::new(5, 1, 15),
        0,
    )
    .expect("sampler");
    let e = sampler.episode(0);
    assert!(
        e.support_images
            .iter()
            .chain(&e.query_images)
            .all(|v| (0.0..=1.0).contains(v))
    );
    assert!(e.query_images.iter().any(|&v| v > 0.99));
}

#[test]
fn split_class_counts_match_the_papers() {
    let Some(o) = omniglot() else { return };
    let count = |scheme, split| o.split(scheme, split).map(|s| s.classes.len());
    assert_eq!(count(OmniglotSplit::Vinyals, Split::Train).ok(), Some(4112));
    assert_eq!(count(OmniglotSplit::Vinyals, Split::Val).ok(), Some(688));
    assert_eq!(count(OmniglotSplit::Vinyals, Split::Test).ok(), Some(1692));
    let l2l = OmniglotSplit::Learn2Learn { seed: 42 };
    assert_eq!(count(l2l, Split::Train).ok(), Some(1100));
    assert_eq!(count(l2l, Split::Val).ok(), Some(100));
    assert_eq!(count(l2l, Split::Test).ok(), Some(423));
    assert_eq!(count(OmniglotSplit::Lake, Split::Train).ok(), Some(964));
    assert_eq!(count(OmniglotSplit::Lake, Split::Test).ok(), Some(659));
    let err = count(OmniglotSplit::Lake, Split::Val).expect_err("Lake has no val split");
    assert!(err.to_string().contains("no val split"), "{err}");
    // Vinyals test classes are all from the evaluation alphabets, in all four rotations.
    let test = o.split(OmniglotSplit::Vinyals, Split::Test).expect("split");
    assert!(
        test.classes
            .iter()
            .all(|c| c.class >= o.background_classes())
    );
    for r in 0..4 {
        assert_eq!(test.classes.iter().filter(|c| c.rotation == r).count(), 423);
    }
}

#[test]
fn splits_are_class_disjoint_for_every_scheme() {
    let Some(o) = omniglot() else { return };
    for scheme in SCHEMES {
        let splits: Vec<ClassSplit> = Split::ALL
            .iter()
            .filter_map(|&s| o.split(scheme, s).ok())
            .collect();
        for (i, a) in splits.iter().enumerate() {
            let characters: HashSet<usize> = a.classes.iter().map(|c| c.class).collect();
            let classes: HashSet<ClassRef> = a.classes.iter().copied().collect();
            assert_eq!(classes.len(), a.classes.len(), "{scheme:?} duplicates");
            for b in &splits[i + 1..] {
                // Not even two rotations of one character are split across sets.
                assert!(
                    b.classes.iter().all(|c| !characters.contains(&c.class)),
                    "{scheme:?}: {} and {} share a character",
                    a.split,
                    b.split
                );
            }
        }
    }
    // A different learn2learn seed gives a different split.
    let a = o
        .split(OmniglotSplit::Learn2Learn { seed: 1 }, Split::Test)
        .expect("split");
    let b = o
        .split(OmniglotSplit::Learn2Learn { seed: 2 }, Split::Test)
        .expect("split");
    assert_ne!(a.classes, b.classes);
}

/// Rotates a `size`×`size` u8 image counter-clockwise by `turns` quarter turns with the `image` crate.
fn rotate_ccw(pixels: &[u8], size: u32, turns: u8) -> Vec<u8> {
    let img = GrayImage::from_raw(size, size, pixels.to_vec()).expect("image");
    match turns % 4 {
        0 => img,
        1 => imageops::rotate270(&img), // image's rotate270 = 90° counter-clockwise
        2 => imageops::rotate180(&img),
        _ => imageops::rotate90(&img),
    }
    .into_raw()
}

/// For each image of `e` (support then query) the rotation that maps some drawing of `class` onto it.
fn rotations_of(e: &Episode, o: &meta_data::Omniglot, class: usize) -> Vec<u8> {
    let store = o.store();
    let images: Vec<&[f32]> = e
        .support_images
        .chunks(784)
        .chain(e.query_images.chunks(784))
        .collect();
    images
        .iter()
        .map(|img| {
            let got = to_u8(img);
            (0..4u8)
                .find(|&r| (0..20).any(|j| rotate_ccw(store.image(class, j), 28, r) == got))
                .expect("episode image is a rotated drawing of its class")
        })
        .collect()
}

#[test]
fn fixed_rotation_classes_hold_the_rotated_pixels() {
    let Some(o) = omniglot() else { return };
    let class = 7;
    let store = o.store();
    // The drawing must not be symmetric under rotation, or the test proves nothing.
    assert_ne!(
        rotate_ccw(store.image(class, 0), 28, 1),
        store.image(class, 0)
    );
    for rotation in 0..4u8 {
        let split = ClassSplit {
            split: Split::Train,
            classes: vec![ClassRef { class, rotation }],
            augmentation: Augmentation::None,
        };
        let sampler = EpisodeSampler::new(Arc::clone(store), split, EpisodeSpec::new(1, 5, 15), 3)
            .expect("sampler");
        let e = sampler.episode(0);
        // All 20 drawings, each exactly once, each rotated as the class says.
        let all: HashSet<Vec<u8>> = e
            .support_images
            .chunks(784)
            .chain(e.query_images.chunks(784))
            .map(to_u8)
            .collect();
        let expected: HashSet<Vec<u8>> = (0..20)
            .map(|j| rotate_ccw(store.image(class, j), 28, rotation))
            .collect();
        assert_eq!(all, expected, "rotation {rotation}");
    }
}

#[test]
fn l2l_augmentation_rotates_each_class_once_per_task() {
    let Some(o) = omniglot() else { return };
    let class = 7;
    let split = ClassSplit {
        split: Split::Train,
        classes: vec![ClassRef { class, rotation: 0 }],
        augmentation: Augmentation::Rotate90,
    };
    let sampler = EpisodeSampler::new(Arc::clone(o.store()), split, EpisodeSpec::new(1, 2, 3), 5)
        .expect("sampler");
    let mut seen = HashSet::new();
    for i in 0..24 {
        let rotations = rotations_of(&sampler.episode(i), &o, class);
        assert!(
            rotations.iter().all(|&r| r == rotations[0]),
            "{rotations:?}"
        );
        seen.insert(rotations[0]);
    }
    assert_eq!(seen.len(), 4, "all four rotations occur: {seen:?}");
}

fn vinyals_sampler(o: &meta_data::Omniglot, spec: EpisodeSpec, seed: u64) -> EpisodeSampler {
    let split = o
        .split(OmniglotSplit::Vinyals, Split::Train)
        .expect("split");
    EpisodeSampler::new(Arc::clone(o.store()), split, spec, seed).expect("sampler")
}

#[test]
fn labels_are_remapped_to_0_n_in_random_order() {
    let Some(o) = omniglot() else { return };
    let sampler = vinyals_sampler(&o, EpisodeSpec::new(5, 2, 3), 11);
    let mut unsorted = 0;
    let mut first_classes = HashSet::new();
    for i in 0..60 {
        let e = sampler.episode(i);
        for label in 0..5i64 {
            assert_eq!(e.support_labels.iter().filter(|&&l| l == label).count(), 2);
            assert_eq!(e.query_labels.iter().filter(|&&l| l == label).count(), 3);
        }
        assert_eq!(common::distinct(&e.classes), 5);
        assert!(e.classes.iter().all(|&c| c < sampler.classes().len()));
        // Support images of label l are drawings of class classes[l] (with its rotation).
        for (img, &label) in e.support_images.chunks(784).zip(&e.support_labels) {
            let c = sampler.classes()[e.classes[label as usize]];
            let got = to_u8(img);
            assert!(
                (0..20).any(|j| rotate_ccw(o.store().image(c.class, j), 28, c.rotation) == got)
            );
        }
        if e.classes.windows(2).any(|w| w[0] > w[1]) {
            unsorted += 1;
        }
        first_classes.insert(e.classes[0]);
    }
    assert!(
        unsorted > 40,
        "labels must not follow class order: {unsorted}/60 unsorted"
    );
    assert!(first_classes.len() > 50);
}

#[test]
fn episodes_depend_only_on_seed_split_and_index() {
    let Some(o) = omniglot() else { return };
    let spec = EpisodeSpec::new(5, 1, 15);
    let a = vinyals_sampler(&o, spec, 1);
    let b = vinyals_sampler(&o, spec, 1);
    let c = vinyals_sampler(&o, spec, 2);
    // Reverse order and a second sampler give the same episodes.
    let forward: Vec<Episode> = (0..10).map(|i| a.episode(i)).collect();
    let backward: Vec<Episode> = (0..10).rev().map(|i| b.episode(i)).rev().collect();
    assert_eq!(forward, backward);
    assert!(forward.windows(2).all(|w| w[0] != w[1]));
    assert!((0..10).all(|i| c.episode(i).classes != forward[i as usize].classes));
    // Another split with the same seed draws different episodes.
    let val = EpisodeSampler::new(
        Arc::clone(o.store()),
        o.split(OmniglotSplit::Vinyals, Split::Val).expect("split"),
        spec,
        1,
    )
    .expect("sampler");
    assert_ne!(val.episode(0).support_images, forward[0].support_images);
}

#[test]
fn prefetched_batches_are_identical_for_any_thread_count() {
    let Some(o) = omniglot() else { return };
    let sampler = Arc::new(vinyals_sampler(&o, EpisodeSpec::new(5, 1, 5), 9));
    let direct: Vec<Vec<Episode>> = (0..5)
        .map(|b| (0..4).map(|i| sampler.episode(100 + b * 4 + i)).collect())
        .collect();
    for threads in [1, 2, 3] {
        let prefetched: Vec<Vec<Episode>> =
            Prefetcher::new(Arc::clone(&sampler), 100, 4, threads, 2)
                .expect("prefetcher")
                .take(5)
                .collect();
        assert_eq!(prefetched, direct, "threads = {threads}");
    }
}

#[test]
fn task_tensors_have_the_episode_shape() {
    let Some(o) = omniglot() else { return };
    let e = vinyals_sampler(&o, EpisodeSpec::new(5, 1, 15), 0).episode(3);
    let task = e.to_task::<burn::backend::Flex>(&Default::default());
    assert_eq!(task.support_x.dims(), [5, 1, 28, 28]);
    assert_eq!(task.query_x.dims(), [75, 1, 28, 28]);
    assert_eq!(task.query_y.len(), 75);
}

#[test]
fn high_level_api_loads_samplers_and_reports_counts() {
    let Some(dir) = omniglot_data_dir() else {
        return;
    };
    let _ = omniglot(); // share the decode through the cache
    let sampler = load_split_sampler(
        &dir,
        &DatasetKind::Omniglot,
        OmniglotSplit::Learn2Learn { seed: 42 },
        Split::Val,
        EpisodeSpec::new(20, 5, 15),
        7,
        None,
    )
    .expect("sampler");
    assert_eq!(sampler.shape(), (20, 5, 15));
    assert_eq!(sampler.classes().len(), 100);
    assert_eq!(sampler.class_split().augmentation, Augmentation::Rotate90);
    let report = info(&dir, &DatasetKind::Omniglot, OmniglotSplit::Vinyals, None).expect("info");
    let got: Vec<(Split, usize, usize)> = report
        .splits
        .iter()
        .map(|s| (s.split, s.classes, s.images))
        .collect();
    assert_eq!(
        got,
        vec![
            (Split::Train, 4112, 4112 * 20),
            (Split::Val, 688, 688 * 20),
            (Split::Test, 1692, 1692 * 20)
        ]
    );
    let lake = info(&dir, &DatasetKind::Omniglot, OmniglotSplit::Lake, None).expect("info");
    assert_eq!(
        lake.splits.iter().map(|s| s.classes).collect::<Vec<_>>(),
        vec![964, 659]
    );
}

#[test]
fn zip_and_extracted_folder_decode_identically() {
    let Some(dir) = omniglot_data_dir() else {
        return;
    };
    let zip = dir.join("omniglot/images_background.zip");
    if !zip.is_file() {
        eprintln!("skipped: {} is not a zip", zip.display());
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    meta_data::extract_zip(&zip, tmp.path()).expect("extract");
    let size = 20; // another size than the default also exercises resizing
    let from_zip = omniglot::load_part(&zip, size).expect("zip");
    let from_folder =
        omniglot::load_part(&tmp.path().join("images_background"), size).expect("folder");
    assert_eq!(from_zip.num_classes(), 964);
    assert_eq!(from_zip.class_names(), from_folder.class_names());
    assert_eq!(from_zip.image_shape(), [1, 20, 20]);
    assert!(from_zip.pixels() == from_folder.pixels());
}
