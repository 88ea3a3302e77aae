//! Mini-ImageNet on the real subset (`subset20.tar`): read directly and from an extracted folder.

use std::collections::HashSet;
use std::sync::Arc;

use meta_data::{
    DatasetKind, EpisodeSampler, EpisodeSource, EpisodeSpec, ImageAugment, OmniglotSplit, Split,
    info, load_miniimagenet, load_split_sampler, miniimagenet_wnids, testing,
};

#[test]
fn ravi_split_has_64_16_20_disjoint_classes() {
    let [train, val, test] = Split::ALL.map(miniimagenet_wnids);
    assert_eq!((train.len(), val.len(), test.len()), (64, 16, 20));
    let all: HashSet<&str> = train.iter().chain(&val).chain(&test).copied().collect();
    assert_eq!(all.len(), 100);
    assert!(all.iter().all(|w| w.len() == 9 && w.starts_with('n')));
}

#[test]
fn subset_tar_and_extracted_folder_give_identical_84x84_rgb_splits() {
    let Some(dir) = testing::miniimagenet_dir() else {
        return;
    };
    let tar = dir.join("subset20.tar");
    if !tar.is_file() {
        eprintln!("skipped: {} not found", tar.display());
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    meta_data::extract_tar(&tar, tmp.path()).expect("extract");
    let extracted = tmp.path().join("subset20");
    for (split, classes) in [(Split::Train, 64), (Split::Val, 16), (Split::Test, 20)] {
        let from_tar = load_miniimagenet(&dir, split, 84).expect("tar");
        let from_folder = load_miniimagenet(&extracted, split, 84).expect("folder");
        assert_eq!(from_tar.num_classes(), classes);
        assert_eq!(from_tar.images(), classes * 20);
        assert_eq!(from_tar.image_shape(), [3, 84, 84]);
        assert_eq!(from_tar.class_names(), miniimagenet_wnids(split));
        assert_eq!(from_tar.class_names(), from_folder.class_names());
        assert!(from_tar.pixels() == from_folder.pixels());
        // Real photos: the channels differ and span most of the range.
        let px = from_tar.image(0, 0);
        let plane = 84 * 84;
        assert_ne!(&px[..plane], &px[plane..2 * plane]);
        let (min, max) = (px.iter().min(), px.iter().max());
        assert!(min < Some(&60) && max > Some(&190), "{min:?} {max:?}");
    }
}

#[test]
fn episodes_are_normalised_per_channel() {
    let Some(dir) = testing::miniimagenet_dir() else {
        return;
    };
    let data_dir = dir.parent().expect("data dir").to_path_buf();
    let sampler = load_split_sampler(
        &data_dir,
        &DatasetKind::MiniImageNet,
        OmniglotSplit::Vinyals,
        Split::Train,
        EpisodeSpec::new(5, 1, 15),
        0,
        None,
    )
    .expect("sampler");
    assert_eq!(sampler.image_shape(), [3, 84, 84]);
    // Mean/std over many query images is roughly standardised.
    let mut values = Vec::new();
    for i in 0..8 {
        values.extend(sampler.episode(i).query_images);
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let std = (values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    assert!(mean.abs() < 0.3, "mean {mean}");
    assert!((0.7..1.3).contains(&std), "std {std}");
    assert!(values.iter().any(|&v| v < -1.4) && values.iter().any(|&v| v > 1.8));
    // 20 images per class cannot give 5 shots + 16 queries: a clear error.
    let store = Arc::clone(sampler.store());
    let err = EpisodeSampler::new(
        store,
        sampler.class_split().clone(),
        EpisodeSpec::new(5, 5, 16),
        0,
    )
    .expect_err("too few images");
    assert!(
        err.to_string()
            .contains("has 20 images but 5 shots + 16 queries need 21"),
        "{err}"
    );
    let report = info(
        &data_dir,
        &DatasetKind::MiniImageNet,
        OmniglotSplit::Vinyals,
        None,
    )
    .expect("info");
    let classes: Vec<usize> = report.splits.iter().map(|s| s.classes).collect();
    assert_eq!(classes, vec![64, 16, 20]);
}

#[test]
fn augmented_episodes_are_deterministic_and_keep_classes_and_normalisation() {
    let Some(dir) = testing::miniimagenet_dir() else {
        return;
    };
    let data_dir = dir.parent().expect("data dir").to_path_buf();
    let plain = load_split_sampler(
        &data_dir,
        &DatasetKind::MiniImageNet,
        OmniglotSplit::Vinyals,
        Split::Train,
        EpisodeSpec::new(5, 1, 3),
        0,
        None,
    )
    .expect("sampler");
    let none = plain
        .clone()
        .with_image_augment(ImageAugment::NONE)
        .expect("none");
    let augmented = plain
        .clone()
        .with_image_augment(ImageAugment::STANDARD)
        .expect("standard");
    for i in 0..4 {
        let (p, a) = (plain.episode(i), augmented.episode(i));
        assert_eq!(none.episode(i).query_images, p.query_images);
        // The same classes and labels, other pixels, and the same pixels every time.
        assert_eq!((&p.classes, &p.query_labels), (&a.classes, &a.query_labels));
        assert_ne!(p.support_images, a.support_images);
        assert_eq!(a.support_images, augmented.episode(i).support_images);
    }
    // Crop alone: shifted pixels and zero padding, normalised like any black pixel.
    let cropped = plain
        .clone()
        .with_image_augment(ImageAugment {
            crop_padding: 8,
            ..ImageAugment::NONE
        })
        .expect("crop");
    let black_red = -120.395_86 / 70.681_88;
    let padded: usize = (0..4)
        .map(|i| {
            let images = cropped.episode(i).query_images;
            let red = images.chunks_exact(84 * 84).step_by(3);
            red.flatten()
                .filter(|&&v| (v - black_red).abs() < 1e-4)
                .count()
        })
        .sum();
    assert!(padded > 84, "{padded} padded red pixels in 4 episodes");
    // Settings that cannot fit the images are refused, naming the key.
    let err = plain
        .with_image_augment(ImageAugment {
            crop_padding: 84,
            ..ImageAugment::NONE
        })
        .expect_err("padding too large");
    assert!(err.to_string().contains("crop_padding"), "{err}");
}
