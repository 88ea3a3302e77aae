//! Vector data from CSV files: the classes' seeded split, episodes drawn from the right rows,
//! standardisation by the training classes, and an error naming the file, row and column for
//! every malformed input.

use std::path::PathBuf;
use std::sync::Arc;

use meta_data::{ClassFractions, CsvDataset, CsvOptions, EpisodeSource, Split};

/// A CSV of `classes` classes named `c00…`, `rows` rows each, 3 features where feature 0 is the
/// class number, feature 1 the row number and feature 2 a constant 7; the label column is the
/// second.
fn write_csv(dir: &std::path::Path, classes: usize, rows: usize) -> PathBuf {
    let mut text = String::from("f0,species,f1,f2\n");
    for c in 0..classes {
        for r in 0..rows {
            text.push_str(&format!("{c},c{c:02},{r},7\n"));
        }
    }
    let path = dir.join("data.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn options(standardize: bool) -> CsvOptions {
    CsvOptions {
        label_column: "species".into(),
        fractions: ClassFractions {
            train: 0.6,
            val: 0.2,
            test: 0.2,
            seed: 3,
        },
        standardize,
    }
}

#[test]
fn episodes_hold_rows_of_their_classes_grouped_by_label_and_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_csv(tmp.path(), 10, 8);
    let data = Arc::new(CsvDataset::load(&path, &options(false)).unwrap());
    assert_eq!(data.features(), ["f0", "f1", "f2"]);
    let names: Vec<Vec<&str>> = Split::ALL.iter().map(|&s| data.class_names(s)).collect();
    assert_eq!(names.iter().map(Vec::len).collect::<Vec<_>>(), [6, 2, 2]);
    let mut all: Vec<&str> = names.concat();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 10, "the splits share no class");
    let tasks = data.tasks(Split::Train, (3, 2, 3), 11).unwrap();
    let e = tasks.episode(4);
    assert_eq!(e.image_shape, [3, 1, 1]);
    assert_eq!((e.support_len(), e.query_len()), (6, 9));
    assert_eq!(e.support_labels, [0, 0, 1, 1, 2, 2]);
    let train_names = data.class_names(Split::Train);
    for (rows, labels, per) in [
        (&e.support_images, &e.support_labels, 2),
        (&e.query_images, &e.query_labels, 3),
    ] {
        for (row, &label) in rows.chunks_exact(3).zip(labels.iter()) {
            // Feature 0 is the class number: it matches the label's class.
            let class = train_names[e.classes[label as usize]];
            assert_eq!(format!("c{:02}", row[0] as usize), class);
            assert_eq!(row[2], 7.0);
        }
        assert_eq!(rows.len(), 3 * 3 * per);
    }
    // Distinct rows within a class.
    let rows_of_label_0: Vec<f32> = e
        .support_images
        .chunks_exact(3)
        .take(2)
        .chain(e.query_images.chunks_exact(3).take(3))
        .map(|r| r[1])
        .collect();
    let mut unique = rows_of_label_0.clone();
    unique.sort_by(f32::total_cmp);
    unique.dedup();
    assert_eq!(unique.len(), 5, "{rows_of_label_0:?}");
    assert_eq!(tasks.episode(4), e);
    assert_ne!(tasks.episode(5), e);
    assert_ne!(
        data.tasks(Split::Train, (3, 2, 3), 12).unwrap().episode(4),
        e
    );
}

#[test]
fn standardisation_uses_the_training_classes_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_csv(tmp.path(), 10, 8);
    let data = Arc::new(CsvDataset::load(&path, &options(true)).unwrap());
    let tasks = data.tasks(Split::Train, (6, 4, 4), 1).unwrap();
    // All six training classes, all eight rows each: every feature has mean 0 and variance 1
    // (the constant feature stays 0).
    let e = tasks.episode(0);
    let rows: Vec<&[f32]> = e
        .support_images
        .chunks_exact(3)
        .chain(e.query_images.chunks_exact(3))
        .collect();
    for j in 0..2 {
        let mean = rows.iter().map(|r| f64::from(r[j])).sum::<f64>() / rows.len() as f64;
        let var = rows
            .iter()
            .map(|r| (f64::from(r[j]) - mean).powi(2))
            .sum::<f64>()
            / 48.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "feature {j}: {mean} {var}"
        );
    }
    assert!(rows.iter().all(|r| r[2] == 0.0));
}

#[test]
fn malformed_files_name_the_file_row_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "f0,species\n1,a\n2\n",
            vec!["row 3", "1 fields", "header has 2"],
        ),
        (
            "f0,species\n1,a\nx1,b\n",
            vec!["row 3", "`f0`", "`x1`", "not a finite number"],
        ),
        ("f0,species\nNaN,a\n", vec!["row 2", "`NaN`"]),
        ("f0,kind\n1,a\n", vec!["`species`", "f0, kind"]),
        ("species\na\n", vec!["only column"]),
        ("f0,species\n", vec!["no data rows"]),
    ];
    for (text, needles) in cases {
        let path = tmp.path().join("bad.csv");
        std::fs::write(&path, text).unwrap();
        let err = CsvDataset::load(&path, &options(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.csv"), "{err}");
        for needle in needles {
            assert!(err.contains(needle), "`{needle}` missing from: {err}");
        }
    }
    let missing = CsvDataset::load(&tmp.path().join("none.csv"), &options(false));
    assert!(missing.unwrap_err().to_string().contains("none.csv"));
}

#[test]
fn too_few_classes_or_rows_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    // Two classes cannot give train, validation and test classes.
    let path = write_csv(tmp.path(), 2, 8);
    let err = CsvDataset::load(&path, &options(false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 classes are too few"), "{err}");
    // Ten classes of 4 rows: 2 shots + 3 queries need 5.
    let path = write_csv(tmp.path(), 10, 4);
    let data = Arc::new(CsvDataset::load(&path, &options(false)).unwrap());
    let err = data
        .tasks(Split::Train, (3, 2, 3), 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has 4") && err.contains("need 5") && err.contains("data.csv"),
        "{err}"
    );
    let err = data
        .tasks(Split::Test, (3, 1, 1), 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ways = 3") && err.contains("2 classes"),
        "{err}"
    );
}
