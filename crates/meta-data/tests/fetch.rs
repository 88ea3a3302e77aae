//! Downloading through a real HTTP server on 127.0.0.1 that serves the shared Omniglot zips.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use meta_data::fetch::{FetchOptions, FetchOutcome, fetch_miniimagenet, fetch_omniglot};
use meta_data::{DataError, testing};

/// Serves `files` (URL path → bytes) on 127.0.0.1 for at most `max_requests` requests or 60 s.
/// Returns the base URL.
fn serve(files: HashMap<String, Vec<u8>>, max_requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < max_requests && Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            served += 1;
            let _ = stream.set_nonblocking(false);
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut stream = reader.into_inner();
            let _ = match files.get(&path) {
                Some(body) => stream
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|_| stream.write_all(body)),
                None => stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
        }
    });
    format!("http://{addr}/omniglot")
}

fn zips(dir: &Path) -> HashMap<String, Vec<u8>> {
    ["images_background.zip", "images_evaluation.zip"]
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(name)).expect("read shared zip");
            (format!("/omniglot/{name}"), bytes)
        })
        .collect()
}

fn options(base_url: String) -> FetchOptions {
    FetchOptions {
        base_url,
        use_env_proxy: false,
        ..FetchOptions::default()
    }
}

#[test]
fn fetch_downloads_verifies_and_then_skips_present_files() {
    let Some(shared) = testing::omniglot_dir() else {
        return;
    };
    if !shared.join("images_background.zip").is_file() {
        eprintln!("skipped: shared Omniglot zips not found");
        return;
    }
    let base = serve(zips(&shared), 2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let fetched = fetch_omniglot(tmp.path(), &options(base.clone())).expect("fetch");
    assert_eq!(fetched.len(), 2);
    assert!(
        fetched
            .iter()
            .all(|f| f.outcome == FetchOutcome::Downloaded)
    );
    for name in ["images_background.zip", "images_evaluation.zip"] {
        let got = std::fs::read(tmp.path().join("omniglot").join(name)).expect("downloaded");
        assert!(got == std::fs::read(shared.join(name)).expect("shared"));
        assert!(
            !tmp.path()
                .join("omniglot")
                .join(format!("{name}.part"))
                .exists()
        );
    }
    // The server has stopped after two requests: a second fetch must not need it.
    let again = fetch_omniglot(tmp.path(), &options(base)).expect("second fetch");
    assert!(
        again
            .iter()
            .all(|f| f.outcome == FetchOutcome::AlreadyPresent)
    );
}

#[test]
fn fetch_rejects_a_corrupted_download_and_deletes_it() {
    let Some(shared) = testing::omniglot_dir() else {
        return;
    };
    if !shared.join("images_background.zip").is_file() {
        eprintln!("skipped: shared Omniglot zips not found");
        return;
    }
    let mut files = zips(&shared);
    let background = files
        .get_mut("/omniglot/images_background.zip")
        .expect("present");
    let middle = background.len() / 2;
    background[middle] ^= 0xff;
    let base = serve(files, 1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = fetch_omniglot(tmp.path(), &options(base)).expect_err("corrupted");
    let message = err.to_string();
    assert!(
        matches!(err, DataError::ChecksumMismatch { .. }),
        "{message}"
    );
    assert!(message.contains("images_background.zip"), "{message}");
    assert!(message.contains("9a5ffc819cc1cec3c3a2a594a01f63344345a58623cdc02a0a3e95f2089d7a38"));
    let path = tmp.path().join("omniglot/images_background.zip");
    assert!(
        !path.exists()
            && !tmp
                .path()
                .join("omniglot/images_background.zip.part")
                .exists()
    );
}

#[test]
fn fetch_reports_http_errors_with_the_url() {
    let base = serve(HashMap::new(), 1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = fetch_omniglot(tmp.path(), &options(base)).expect_err("404");
    let message = err.to_string();
    assert!(
        message.contains("/omniglot/images_background.zip") && message.contains("404"),
        "{message}"
    );
}

#[test]
fn miniimagenet_fetch_explains_where_to_put_a_copy() {
    let err = fetch_miniimagenet(Path::new("/data/here")).expect_err("no public URL");
    let message = err.to_string();
    assert!(message.contains("no stable public URL"), "{message}");
    assert!(
        message.contains("/data/here/miniimagenet/<split>/<wnid>/*.jpg"),
        "{message}"
    );
}
