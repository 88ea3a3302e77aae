//! Folder data sets on generated PNG folders: grayscale decoding, the seeded class split of one
//! folder of classes (deterministic, disjoint, covering, sized by the fractions), split folders,
//! and the errors of each.

use std::collections::BTreeSet;
use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};
use meta_data::{
    ClassFractions, DataError, DatasetKind, EpisodeSource, EpisodeSpec, FolderDataset,
    FolderOptions, FolderSplit, OmniglotSplit, Split, load_image_folder, load_split,
    load_split_sampler,
};

/// The gray value of pixel `(x, y)` of image `i` of class `c` in [`gray_folder`].
fn value(c: usize, i: usize, x: u32, y: u32) -> u8 {
    (c * 40 + i * 9 + (x + 4 * y) as usize) as u8
}

/// `root/<name>/<i>.png`: `images` 4×4 single-channel PNGs per class, pixels from [`value`].
fn gray_folder(root: &Path, names: &[String], images: usize) {
    for (c, name) in names.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..images {
            GrayImage::from_fn(4, 4, |x, y| Luma([value(c, i, x, y)]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
}

/// `c00`, `c01`, … (`n` class names).
fn names(n: usize) -> Vec<String> {
    (0..n).map(|c| format!("c{c:02}")).collect()
}

/// The single-folder data set at `root`, with `channels` and `fractions`.
fn fractions_kind(root: &Path, channels: usize, fractions: ClassFractions) -> DatasetKind {
    DatasetKind::Folder(FolderDataset {
        path: root.to_path_buf(),
        channels,
        split: Some(FolderSplit::Fractions(fractions)),
    })
}

/// The class names of `split` of `kind` (4×4 images), in class order.
fn split_names(root: &Path, kind: &DatasetKind, split: Split) -> Vec<String> {
    let (store, classes) = load_split(root, kind, OmniglotSplit::Vinyals, split, Some(4))
        .unwrap_or_else(|e| panic!("{split}: {e}"));
    classes
        .classes
        .iter()
        .map(|c| store.class_name(c.class).to_string())
        .collect()
}

fn fractions(train: f64, val: f64, test: f64, seed: u64) -> ClassFractions {
    ClassFractions {
        train,
        val,
        test,
        seed,
    }
}

#[test]
fn a_grayscale_folder_loads_as_one_channel_with_its_pixel_values() {
    let tmp = tempfile::tempdir().unwrap();
    gray_folder(tmp.path(), &names(2), 3);
    let kind = fractions_kind(tmp.path(), 1, fractions(0.5, 0.0, 0.5, 1));
    let (store, _) = load_split(
        tmp.path(),
        &kind,
        OmniglotSplit::Vinyals,
        Split::Train,
        Some(4),
    )
    .expect("grayscale folder");
    assert_eq!(store.image_shape(), [1, 4, 4]);
    for c in 0..2 {
        for i in 0..3 {
            let expected: Vec<u8> = (0..16).map(|p| value(c, i, p % 4, p / 4)).collect();
            assert_eq!(
                store.image(c, i),
                expected.as_slice(),
                "class {c} image {i}"
            );
        }
    }
    // The same folder as RGB (a separate cache entry): each gray value in all three channels.
    let rgb = fractions_kind(tmp.path(), 3, fractions(0.5, 0.0, 0.5, 1));
    let (store, _) = load_split(
        tmp.path(),
        &rgb,
        OmniglotSplit::Vinyals,
        Split::Train,
        Some(4),
    )
    .expect("rgb folder");
    assert_eq!(store.image_shape(), [3, 4, 4]);
    let image = store.image(1, 2);
    for channel in image.chunks(16) {
        let expected: Vec<u8> = (0..16).map(|p| value(1, 2, p % 4, p / 4)).collect();
        assert_eq!(channel, expected.as_slice());
    }
}

#[test]
fn a_colour_image_in_a_grayscale_folder_is_converted_to_luma() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("colour");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..2 {
        RgbImage::from_pixel(2, 2, Rgb([200, 100, 50]))
            .save(dir.join(format!("{i}.png")))
            .unwrap();
    }
    let options = FolderOptions {
        height: 2,
        width: 2,
        channels: 1,
        ..FolderOptions::default()
    };
    let store = load_image_folder(tmp.path(), &options).expect("colour images");
    // 0.2126 × 200 + 0.7152 × 100 + 0.0722 × 50 = 117.65, rounded (PIL's weights give 124).
    assert_eq!(store.image(0, 0), &[118; 4]);
}

#[test]
fn the_class_split_is_seeded_disjoint_covering_and_sized_by_the_fractions() {
    let all = names(25);
    let root = Path::new("data");
    let default = ClassFractions::default();
    let [train, val, test] = default.assign(&all, root).unwrap();
    // 25 classes: val round(4.0) = 4, test round(5.0) = 5, train the other 16.
    assert_eq!((train.len(), val.len(), test.len()), (16, 4, 5));
    let union: BTreeSet<usize> = train.iter().chain(&val).chain(&test).copied().collect();
    assert_eq!(union.len(), 25, "the splits share a class or miss one");
    assert_eq!(
        default.assign(&all, root).unwrap(),
        [train.clone(), val, test]
    );
    let other = ClassFractions { seed: 7, ..default };
    assert_ne!(
        other.assign(&all, root).unwrap()[0],
        train,
        "seed 7 = seed 42"
    );
    // The split depends on the class names, not on the order they are listed in.
    let mut reversed = all.clone();
    reversed.reverse();
    let [train_rev, _, _] = default.assign(&reversed, root).unwrap();
    let by_name = |idx: &[usize], list: &[String]| -> BTreeSet<String> {
        idx.iter().map(|&i| list[i].clone()).collect()
    };
    assert_eq!(by_name(&train_rev, &reversed), by_name(&train, &all));
    // The same on every machine: ChaCha8 seeded with 42 over the sorted names.
    let [train, val, test] = default.assign(&names(10), root).unwrap();
    assert_eq!(
        (train, val, test),
        (vec![1, 4, 5, 6, 7, 9], vec![3, 8], vec![0, 2])
    );
}

#[test]
fn loaded_splits_of_one_folder_never_share_a_class() {
    let tmp = tempfile::tempdir().unwrap();
    gray_folder(tmp.path(), &names(10), 2);
    let kind = fractions_kind(tmp.path(), 1, fractions(0.6, 0.2, 0.2, 3));
    let splits: Vec<Vec<String>> = [Split::Train, Split::Val, Split::Test]
        .iter()
        .map(|&s| split_names(tmp.path(), &kind, s))
        .collect();
    assert_eq!(
        splits.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![6, 2, 2]
    );
    let union: BTreeSet<&String> = splits.iter().flatten().collect();
    assert_eq!(union.len(), 10);
    // Episodes of the test split draw only test classes.
    let sampler = load_split_sampler(
        tmp.path(),
        &kind,
        OmniglotSplit::Vinyals,
        Split::Test,
        EpisodeSpec::new(2, 1, 1),
        5,
        Some(4),
    )
    .unwrap();
    for i in 0..4 {
        for c in 0..2 {
            let name = sampler.class_name(sampler.episode(i).classes[c]);
            assert!(splits[2].contains(&name), "{name} is not a test class");
        }
    }
    // A zero val fraction means no validation split (as Lake's Omniglot split).
    let no_val = fractions_kind(tmp.path(), 1, fractions(0.8, 0.0, 0.2, 3));
    let err = load_split(
        tmp.path(),
        &no_val,
        OmniglotSplit::Vinyals,
        Split::Val,
        Some(4),
    )
    .expect_err("no val split");
    assert!(matches!(err, DataError::NoSuchSplit { .. }), "{err}");
}

#[test]
fn split_folders_are_detected_and_keep_their_own_classes() {
    let tmp = tempfile::tempdir().unwrap();
    gray_folder(&tmp.path().join("train"), &names(3), 2);
    gray_folder(&tmp.path().join("test"), &["t0".into(), "t1".into()], 2);
    let kind = DatasetKind::Folder(FolderDataset::new(tmp.path()));
    assert_eq!(
        split_names(tmp.path(), &kind, Split::Train),
        vec!["c00", "c01", "c02"]
    );
    assert_eq!(
        split_names(tmp.path(), &kind, Split::Test),
        vec!["t0", "t1"]
    );
    let err = load_split(
        tmp.path(),
        &kind,
        OmniglotSplit::Vinyals,
        Split::Val,
        Some(4),
    )
    .expect_err("no val/ folder");
    assert!(matches!(err, DataError::NoSuchSplit { .. }), "{err}");
    // Fractions over a folder that is split already are refused, not applied to train/val/test.
    let err = load_split(
        tmp.path(),
        &fractions_kind(tmp.path(), 1, ClassFractions::default()),
        OmniglotSplit::Vinyals,
        Split::Train,
        Some(4),
    )
    .expect_err("split already");
    assert!(err.to_string().contains("split already"), "{err}");
}

/// The error of loading `split` of `kind` at `root`, as text.
fn load_error(root: &Path, kind: &DatasetKind, split: Split) -> String {
    match load_split(root, kind, OmniglotSplit::Vinyals, split, Some(4)) {
        Ok(_) => panic!("{kind:?} {split} should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_fractions_few_classes_and_bad_folders_are_refused_with_the_value_or_path() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("five");
    gray_folder(&root, &names(5), 2);
    for (bad, needle) in [
        (fractions(0.5, 0.3, 0.3, 1), "sum to 1.1"),
        (fractions(1.2, -0.4, 0.2, 1), "val -0.4"),
        (fractions(0.0, 0.5, 0.5, 1), "train 0 /"),
        (fractions(0.5, 0.5, 0.0, 1), "test 0 ("),
        (fractions(f64::NAN, 0.5, 0.5, 1), "train NaN"),
    ] {
        let err = load_error(&root, &fractions_kind(&root, 1, bad), Split::Train);
        assert!(
            err.contains("class fractions") && err.contains(needle),
            "{needle}: {err}"
        );
    }
    // 3 classes × 0.16 rounds to no validation class although its fraction is above 0.
    let three = tmp.path().join("three");
    gray_folder(&three, &names(3), 2);
    let err = load_error(
        &three,
        &fractions_kind(&three, 1, ClassFractions::default()),
        Split::Train,
    );
    assert!(
        err.contains(&three.display().to_string()) && err.contains("val split would get 0"),
        "{err}"
    );
    // More ways than the split has classes: the split and the count are named.
    let kind = fractions_kind(&root, 1, fractions(0.6, 0.0, 0.4, 1));
    let err = load_split_sampler(
        &root,
        &kind,
        OmniglotSplit::Vinyals,
        Split::Test,
        EpisodeSpec::new(3, 1, 1),
        1,
        Some(4),
    )
    .expect_err("3 ways, 2 test classes")
    .to_string();
    assert!(err.contains("test split has only 2 classes"), "{err}");
    // An empty folder, an empty class folder, an unreadable image.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = load_error(
        &empty,
        &fractions_kind(&empty, 1, fractions(0.5, 0.0, 0.5, 1)),
        Split::Train,
    );
    assert!(err.contains("no class sub-folders"), "{err}");
    // (New folders: a loaded folder is cached by path.)
    let holes = tmp.path().join("holes");
    gray_folder(&holes, &names(4), 2);
    std::fs::create_dir_all(holes.join("c04")).unwrap();
    let err = load_error(
        &holes,
        &fractions_kind(&holes, 1, fractions(0.5, 0.0, 0.5, 1)),
        Split::Train,
    );
    assert!(err.contains("c04") && err.contains("has 0 images"), "{err}");
    let garbage = tmp.path().join("garbage");
    gray_folder(&garbage, &names(4), 2);
    std::fs::write(garbage.join("c01").join("1.png"), b"not a png").unwrap();
    let err = load_error(
        &garbage,
        &fractions_kind(&garbage, 1, fractions(0.5, 0.0, 0.5, 1)),
        Split::Train,
    );
    assert!(
        err.contains("cannot decode image") && err.contains("c01/1.png"),
        "{err}"
    );
    // The folders split on a single folder of classes names the layout it needs.
    let folders = DatasetKind::Folder(FolderDataset {
        split: Some(FolderSplit::Folders),
        ..FolderDataset::new(&root)
    });
    let err = load_error(&root, &folders, Split::Train);
    assert!(err.contains("train/ and test/"), "{err}");
    // A folder that does not exist is named; the data directory is not needed for one that does.
    let missing = tmp.path().join("missing");
    let err = load_error(
        tmp.path(),
        &fractions_kind(&missing, 1, ClassFractions::default()),
        Split::Train,
    );
    assert!(err.contains("image folder not found at"), "{err}");
    let no_data_dir = Path::new("/no/such/data-dir");
    load_split(
        no_data_dir,
        &kind,
        OmniglotSplit::Vinyals,
        Split::Train,
        Some(4),
    )
    .expect("an absolute folder path needs no data directory");
    // Neither 1 nor 3 channels.
    let two = DatasetKind::Folder(FolderDataset {
        channels: 2,
        ..FolderDataset::new(&root)
    });
    let err = load_error(&root, &two, Split::Train);
    assert!(err.contains("channels = 2"), "{err}");
}
