//! Every bad input gives a typed error whose message names the path or value (synthetic data).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::{GrayImage, ImageFormat, Luma};
use meta_data::fetch::verify_file;
use meta_data::{
    ClassSplit, DataError, DatasetKind, EpisodeSampler, EpisodeSpec, FolderOptions, OmniglotSplit,
    Split, extract_tar, extract_zip, load_image_folder, load_miniimagenet, load_split_sampler,
    omniglot,
};

fn png(seed: u8) -> Vec<u8> {
    let img = GrayImage::from_fn(12, 12, |x, y| {
        Luma([if (x + y + u32::from(seed)) % 3 == 0 {
            0
        } else {
            255
        }])
    });
    let mut bytes = Cursor::new(Vec::new());
    img.write_to(&mut bytes, ImageFormat::Png)
        .expect("encode png");
    bytes.into_inner()
}

fn write_zip(path: &Path, entries: &[(&str, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create zip");
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        zip.start_file(*name, options).expect("start file");
        zip.write_all(bytes).expect("write");
    }
    zip.finish().expect("finish zip");
}

/// A folder data set `root/<class>/<i>.png` with `counts[c]` images in class `c`.
fn image_folder(root: &Path, counts: &[usize]) {
    for (c, &n) in counts.iter().enumerate() {
        let dir = root.join(format!("class{c}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for i in 0..n {
            std::fs::write(dir.join(format!("{i:02}.png")), png((c * 7 + i) as u8))
                .expect("write png");
        }
    }
}

fn gray(size: usize, min_images: usize) -> FolderOptions {
    FolderOptions {
        height: size,
        width: size,
        channels: 1,
        min_images,
        ..FolderOptions::default()
    }
}

#[test]
fn missing_data_directory_is_named() {
    let path = PathBuf::from("/no/such/metalearn-data");
    let err = load_split_sampler(
        &path,
        &DatasetKind::Omniglot,
        OmniglotSplit::Vinyals,
        Split::Train,
        EpisodeSpec::new(5, 1, 15),
        0,
        None,
    )
    .expect_err("missing dir");
    assert!(matches!(err, DataError::MissingDataDir { .. }));
    let message = err.to_string();
    assert!(
        message.contains("/no/such/metalearn-data") && message.contains("--data-dir"),
        "{message}"
    );
}

#[test]
fn missing_omniglot_in_an_existing_data_directory_says_how_to_fetch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(tmp.path().join("omniglot")).expect("mkdir");
    let err = load_split_sampler(
        tmp.path(),
        &DatasetKind::Omniglot,
        OmniglotSplit::Vinyals,
        Split::Train,
        EpisodeSpec::new(5, 1, 15),
        0,
        None,
    )
    .expect_err("no omniglot");
    let message = err.to_string();
    assert!(
        message.contains("images_background.zip") && message.contains("data fetch omniglot"),
        "{message}"
    );
}

#[test]
fn zip_with_wrong_layout_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("images_background.zip");
    write_zip(&zip, &[("flat.png", png(1)), ("a/b.png", png(2))]);
    let err = omniglot::load_part(&zip, 28).expect_err("wrong layout");
    assert!(matches!(err, DataError::WrongLayout { .. }));
    let message = err.to_string();
    assert!(
        message.contains(&zip.display().to_string()) && message.contains("<Alphabet>"),
        "{message}"
    );
}

#[test]
fn truncated_png_inside_a_zip_names_the_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("images_background.zip");
    let mut truncated = png(3);
    truncated.truncate(truncated.len() / 2);
    write_zip(
        &zip,
        &[
            ("images_background/Alpha/character01/0001_01.png", png(1)),
            ("images_background/Alpha/character01/0001_02.png", truncated),
            ("images_background/Alpha/character02/0002_01.png", png(2)),
        ],
    );
    let err = omniglot::load_part(&zip, 8).expect_err("truncated");
    assert!(matches!(err, DataError::BadImage { .. }));
    let message = err.to_string();
    assert!(
        message.contains("images_background.zip!images_background/Alpha/character01/0001_02.png"),
        "{message}"
    );
}

#[test]
fn valid_synthetic_zip_loads_with_classes_grouped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("images_background.zip");
    write_zip(
        &zip,
        &[
            ("images_background/Beta/character01/0003_01.png", png(5)),
            ("images_background/Alpha/character01/0001_02.png", png(2)),
            ("images_background/Alpha/character01/0001_01.png", png(1)),
        ],
    );
    let store = omniglot::load_part(&zip, 12).expect("load");
    assert_eq!(
        store.class_names(),
        ["Alpha/character01", "Beta/character01"]
    );
    assert_eq!((store.class_len(0), store.class_len(1)), (2, 1));
    // Inverted: black (0) in the PNG is 255 in the store.
    let first = image::load_from_memory(&png(1)).expect("png").into_luma8();
    let inverted: Vec<u8> = first.as_raw().iter().map(|p| 255 - p).collect();
    assert_eq!(store.image(0, 0), &inverted[..]);
}

#[test]
fn not_a_zip_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("images_background.zip");
    std::fs::write(&zip, b"this is not a zip archive").expect("write");
    let err = omniglot::load_part(&zip, 28).expect_err("not a zip");
    assert!(
        err.to_string().contains(&zip.display().to_string()),
        "{err}"
    );
}

#[test]
fn unreadable_image_in_a_folder_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    image_folder(tmp.path(), &[3, 3]);
    let bad = tmp.path().join("class1/01.png");
    std::fs::write(&bad, b"\x89PNG garbage").expect("write");
    let err = load_image_folder(tmp.path(), &gray(8, 1)).expect_err("garbage");
    assert!(
        err.to_string().contains(&bad.display().to_string()),
        "{err}"
    );
}

#[test]
fn folder_class_below_minimum_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    image_folder(tmp.path(), &[4, 2, 4]);
    let err = load_image_folder(tmp.path(), &gray(8, 3)).expect_err("too small");
    assert!(matches!(
        err,
        DataError::ClassTooSmall {
            have: 2,
            min: 3,
            ..
        }
    ));
    assert!(err.to_string().contains("class1"), "{err}");
    // An empty root has no classes.
    let empty = tempfile::tempdir().expect("tempdir");
    let err = load_image_folder(empty.path(), &gray(8, 1)).expect_err("empty");
    assert!(matches!(err, DataError::WrongLayout { .. }), "{err}");
}

fn folder_sampler(counts: &[usize], spec: EpisodeSpec) -> Result<EpisodeSampler, DataError> {
    let tmp = tempfile::tempdir().expect("tempdir");
    image_folder(tmp.path(), counts);
    let store = Arc::new(load_image_folder(tmp.path(), &gray(8, 1)).expect("load"));
    let split = ClassSplit::all(Split::Test, store.num_classes());
    EpisodeSampler::new(store, split, spec, 0)
}

#[test]
fn class_with_fewer_than_shots_plus_queries_images_is_named() {
    let err = folder_sampler(&[5, 3, 5], EpisodeSpec::new(2, 2, 2)).expect_err("too few");
    assert!(matches!(
        err,
        DataError::TooFewImages {
            have: 3,
            need: 4,
            ..
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("class1") && message.contains("2 shots + 2 queries"),
        "{message}"
    );
}

#[test]
fn more_ways_than_classes_is_named() {
    let err = folder_sampler(&[4, 4, 4], EpisodeSpec::new(5, 1, 1)).expect_err("too many ways");
    let message = err.to_string();
    assert!(
        message.contains("ways = 5") && message.contains("only 3 classes"),
        "{message}"
    );
}

#[test]
fn zero_ways_shots_or_queries_are_named() {
    for (spec, name) in [
        (EpisodeSpec::new(0, 1, 1), "ways = 0"),
        (EpisodeSpec::new(2, 0, 1), "shots = 0"),
        (EpisodeSpec::new(2, 1, 0), "queries = 0"),
    ] {
        let err = folder_sampler(&[4, 4], spec).expect_err("zero");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn folder_data_set_samples_valid_episodes() {
    let sampler = folder_sampler(&[4, 5, 6], EpisodeSpec::new(3, 1, 3)).expect("sampler");
    let e = meta_data::EpisodeSource::episode(&sampler, 0);
    assert_eq!(e.image_shape, [1, 8, 8]);
    assert_eq!(e.support_images.len(), 3 * 64);
    assert_eq!(e.query_labels.len(), 9);
}

#[test]
fn miniimagenet_folder_missing_a_class_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("val")).expect("mkdir");
    let err = load_miniimagenet(tmp.path(), Split::Val, 84).expect_err("missing classes");
    let message = err.to_string();
    assert!(
        message.contains("val/n01855672") && message.contains("is missing"),
        "{message}"
    );
    let err = load_miniimagenet(&tmp.path().join("nope"), Split::Val, 84).expect_err("missing");
    assert!(err.to_string().contains("no public download"), "{err}");
}

#[test]
fn checksum_mismatch_names_file_and_digests_and_deletes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("images_background.zip");
    std::fs::write(&file, b"not the real zip").expect("write");
    let expected = "9a5ffc819cc1cec3c3a2a594a01f63344345a58623cdc02a0a3e95f2089d7a38";
    let err = verify_file(&file, &[expected]).expect_err("mismatch");
    let message = err.to_string();
    assert!(
        message.contains("images_background.zip") && message.contains(expected),
        "{message}"
    );
    let DataError::ChecksumMismatch { actual, .. } = err else {
        panic!("wrong variant")
    };
    assert_eq!(actual.len(), 64);
    assert!(message.contains(&actual));
    assert!(!file.exists(), "a mismatching file is deleted");
}

#[test]
fn zip_with_traversal_entries_is_refused_before_writing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("out");
    for evil in ["../evil.txt", "/tmp/evil-abs.txt", "ok/../../evil.txt"] {
        let zip = tmp.path().join("evil.zip");
        write_zip(
            &zip,
            &[("good.txt", b"fine".to_vec()), (evil, b"pwned".to_vec())],
        );
        let err = extract_zip(&zip, &dest).expect_err("unsafe entry");
        assert!(matches!(err, DataError::UnsafeArchiveEntry { .. }));
        assert!(err.to_string().contains(evil), "{err}");
        assert!(!tmp.path().join("evil.txt").exists());
        assert!(
            !dest.join("good.txt").exists(),
            "nothing is written from an unsafe archive"
        );
    }
}

#[test]
fn tar_with_traversal_entries_is_refused_before_writing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dest = tmp.path().join("out");
    for evil in ["../evil.txt", "/tmp/evil-abs.txt"] {
        let path = tmp.path().join("evil.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&path).expect("create"));
        let mut good = tar::Header::new_gnu();
        good.set_path("good.txt").expect("path");
        good.set_size(4);
        good.set_mode(0o644);
        good.set_cksum();
        builder.append(&good, &b"fine"[..]).expect("append");
        // tar's own set_path refuses `..`, so write the raw name bytes.
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().expect("gnu");
        gnu.name[..evil.len()].copy_from_slice(evil.as_bytes());
        header.set_size(5);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, &b"pwned"[..]).expect("append");
        builder.finish().expect("finish");
        drop(builder);
        let err = extract_tar(&path, &dest).expect_err("unsafe entry");
        assert!(
            err.to_string().contains(evil.trim_start_matches('/')),
            "{err}"
        );
        assert!(!tmp.path().join("evil.txt").exists());
        assert!(!dest.join("good.txt").exists());
    }
}
