//! Downloading data sets: Omniglot from its upstream URLs, verified against accepted digests.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Upstream location of the Omniglot zips (Lake et al., GitHub `brendenlake/omniglot`).
pub const OMNIGLOT_BASE_URL: &str =
    "https://raw.githubusercontent.com/brendenlake/omniglot/master/python";

/// Accepted digests per Omniglot file: a 32-hex-digit entry is an MD5, a 64-hex-digit entry a
/// SHA-256. A download (or an existing file) matching none of its file's entries is refused.
///
/// - The MD5s are the upstream zips' published checksums (torchvision's `Omniglot.zips_md5`,
///   which every Python few-shot library verifies against).
/// - The SHA-256s are those of the copies this project's tests and CI read (staged beside the
///   checkout, not downloaded): the background zip holds the upstream PNG bytes re-zipped, the
///   evaluation zip PNGs re-encoded from a pixel-exact copy — the same pixels, other archive
///   bytes.
pub const OMNIGLOT_DIGESTS: [(&str, &[&str]); 2] = [
    (
        "images_background.zip",
        &[
            "68d2efa1b9178cc56df9314c21c6e718",
            "9a5ffc819cc1cec3c3a2a594a01f63344345a58623cdc02a0a3e95f2089d7a38",
        ],
    ),
    (
        "images_evaluation.zip",
        &[
            "6b91aef0f799c5bb55b94e3f2daec811",
            "94cd2e9ce6d2469f95b74bd6d7a6f3b6bdcb8a08f0cb649f8f1789e48bb05ec7",
        ],
    ),
];

/// Options of a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Base URL; file `f` is fetched from `<base_url>/<f>`. Defaults to [`OMNIGLOT_BASE_URL`].
    pub base_url: String,
    /// Use the `HTTP(S)_PROXY` environment variables (default `true`).
    pub use_env_proxy: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            base_url: OMNIGLOT_BASE_URL.to_string(),
            use_env_proxy: true,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Downloaded and verified.
    Downloaded,
    /// Already present with an accepted digest; not downloaded again.
    AlreadyPresent,
}

/// One verified file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its SHA-256 (lowercase hex).
    pub sha256: String,
    /// Whether it was downloaded.
    pub outcome: FetchOutcome,
}

/// SHA-256 and MD5 of a byte stream, computed in one pass.
#[derive(Default)]
struct Hashes {
    sha256: Sha256,
    md5: Md5,
}

impl Hashes {
    fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.md5.update(bytes);
    }

    /// Lowercase hex `(sha256, md5)`.
    fn finish(self) -> (String, String) {
        (hex(&self.sha256.finalize()), hex(&self.md5.finalize()))
    }
}

/// Lowercase hex `(sha256, md5)` of a file.
fn file_digests(path: &Path) -> Result<(String, String)> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut hashes = Hashes::default();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hashes.update(&buf[..n]);
    }
    Ok(hashes.finish())
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(file_digests(path)?.0)
}

/// Whether `(sha256, md5)` matches one of the `accepted` digests.
fn is_accepted(accepted: &[&str], (sha256, md5): (&str, &str)) -> bool {
    accepted
        .iter()
        .any(|d| d.eq_ignore_ascii_case(sha256) || d.eq_ignore_ascii_case(md5))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `path` has one of the `accepted` digests; on a mismatch deletes it and returns
/// [`DataError::ChecksumMismatch`] naming the file and both digests.
pub fn verify_file(path: &Path, accepted: &[&str]) -> Result<String> {
    let (actual, md5) = file_digests(path)?;
    if is_accepted(accepted, (&actual, &md5)) {
        return Ok(actual);
    }
    let _ = std::fs::remove_file(path);
    Err(DataError::ChecksumMismatch {
        path: path.to_path_buf(),
        expected: accepted.join(" or "),
        actual,
    })
}

/// Downloads Omniglot's `images_background.zip` and `images_evaluation.zip` into
/// `<data_dir>/omniglot/`, unless they are already there with an accepted digest.
///
/// Each file is streamed to `<name>.part`, hashed, and renamed into place only if its SHA-256 is in
/// [`OMNIGLOT_DIGESTS`]; otherwise the partial file is deleted and a
/// [`DataError::ChecksumMismatch`] names the file, the expected and the actual digest.
pub fn fetch_omniglot(data_dir: &Path, options: &FetchOptions) -> Result<Vec<FetchedFile>> {
    let dir = data_dir.join("omniglot");
    std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    let agent = agent(options);
    let mut fetched = Vec::new();
    for (name, accepted) in OMNIGLOT_DIGESTS {
        let path = dir.join(name);
        if path.is_file() {
            let (actual, md5) = file_digests(&path)?;
            if is_accepted(accepted, (&actual, &md5)) {
                fetched.push(FetchedFile {
                    path,
                    sha256: actual,
                    outcome: FetchOutcome::AlreadyPresent,
                });
                continue;
            }
            tracing::warn!(
                "{} has SHA-256 {actual}, not an accepted digest; downloading it again",
                path.display()
            );
        }
        let url = format!("{}/{name}", options.base_url.trim_end_matches('/'));
        let sha256 = download_verified(&agent, &url, &path, accepted)?;
        fetched.push(FetchedFile {
            path,
            sha256,
            outcome: FetchOutcome::Downloaded,
        });
    }
    Ok(fetched)
}

/// Mini-ImageNet has no stable public URL: always returns [`DataError::NoPublicUrl`] explaining
/// where to place a copy under `data_dir`.
pub fn fetch_miniimagenet(data_dir: &Path) -> Result<Vec<FetchedFile>> {
    Err(DataError::NoPublicUrl {
        dataset: "Mini-ImageNet".into(),
        hint: format!(
            "there is no stable public URL (the images come from ImageNet, whose terms apply). Obtain a copy \
             (e.g. the Ravi & Larochelle release) and lay it out as {}/miniimagenet/<split>/<wnid>/*.jpg with \
             <split> in train/val/test (or put a tar with that layout in {}/miniimagenet/), then pass \
             --data-dir {}",
            data_dir.display(),
            data_dir.display(),
            data_dir.display()
        ),
    })
}

fn agent(options: &FetchOptions) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder().timeout_connect(Some(options.connect_timeout));
    if !options.use_env_proxy {
        config = config.proxy(None);
    }
    config.build().into()
}

fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    path: &Path,
    accepted: &[&str],
) -> Result<String> {
    let fail = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut reader = response.into_body().into_reader();
    let part = path.with_extension("zip.part");
    let result = (|| -> Result<(String, String)> {
        let mut out = std::fs::File::create(&part).map_err(|e| DataError::io(&part, e))?;
        let mut hashes = Hashes::default();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
            if n == 0 {
                break;
            }
            hashes.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| DataError::io(&part, e))?;
        }
        out.sync_all().map_err(|e| DataError::io(&part, e))?;
        Ok(hashes.finish())
    })();
    let (actual, md5) = match result {
        Ok(digests) => digests,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    if !is_accepted(accepted, (&actual, &md5)) {
        let _ = std::fs::remove_file(&part);
        return Err(DataError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: accepted.join(" or "),
            actual: format!("sha256 {actual}, md5 {md5}"),
        });
    }
    std::fs::rename(&part, path).map_err(|e| DataError::io(path, e))?;
    Ok(actual)
}

#[cfg(test)]
mod digest_tests {
    use super::*;

    #[test]
    fn published_md5_or_sha256_is_accepted_and_anything_else_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.zip");
        let write = || std::fs::write(&path, b"abc").unwrap();
        write();
        // The well-known digests of "abc".
        let md5 = "900150983cd24fb0d6963f7d28e17f72";
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(verify_file(&path, &[md5]).unwrap(), sha);
        assert_eq!(verify_file(&path, &[&sha.to_uppercase()]).unwrap(), sha);
        let err = verify_file(&path, &["00000000000000000000000000000000"]).unwrap_err();
        assert!(matches!(err, DataError::ChecksumMismatch { .. }), "{err}");
        assert!(!path.exists(), "a refused file is deleted");
    }

    #[test]
    fn every_omniglot_file_lists_the_published_upstream_md5() {
        for (name, accepted) in OMNIGLOT_DIGESTS {
            assert!(
                accepted.iter().any(|d| d.len() == 32),
                "{name} must accept its published upstream MD5"
            );
        }
    }
}
