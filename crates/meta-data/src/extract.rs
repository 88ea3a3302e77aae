//! Archive extraction that refuses entries escaping the destination (`..`, absolute paths, links).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::error::{DataError, Result};

/// The destination of archive entry `name` under `dest`, or an error when the name is absolute or
/// contains `..` (or a drive prefix).
pub fn safe_join(archive: &Path, dest: &Path, name: &str) -> Result<PathBuf> {
    let unsafe_entry = || DataError::UnsafeArchiveEntry {
        archive: archive.to_path_buf(),
        entry: name.to_string(),
    };
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\\') {
        return Err(unsafe_entry());
    }
    let mut out = dest.to_path_buf();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry());
            }
        }
    }
    Ok(out)
}

/// Extracts every file of the zip archive `archive` into `dest`; refuses the whole archive if any
/// entry is unsafe (checked before anything is written).
pub fn extract_zip(archive: &Path, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let zip_err = |e: zip::result::ZipError| DataError::Archive {
        path: archive.to_path_buf(),
        reason: e.to_string(),
    };
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    for name in zip.file_names() {
        safe_join(archive, dest, name)?;
    }
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(zip_err)?;
        let target = safe_join(archive, dest, entry.name())?;
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| DataError::io(&target, e))?;
            continue;
        }
        if entry.is_symlink() {
            return Err(DataError::UnsafeArchiveEntry {
                archive: archive.to_path_buf(),
                entry: entry.name().to_string(),
            });
        }
        write_entry(&mut entry, &target)?;
    }
    Ok(())
}

/// Extracts the regular files and folders of the tar archive `archive` into `dest`; refuses
/// absolute or `..` entries and links.
pub fn extract_tar(archive: &Path, dest: &Path) -> Result<()> {
    let tar_err = |e: std::io::Error| DataError::Archive {
        path: archive.to_path_buf(),
        reason: e.to_string(),
    };
    // First pass: validate every entry before writing anything.
    let open = || -> Result<tar::Archive<std::io::BufReader<std::fs::File>>> {
        let file = std::fs::File::open(archive).map_err(|e| DataError::io(archive, e))?;
        Ok(tar::Archive::new(std::io::BufReader::new(file)))
    };
    let mut check = open()?;
    for entry in check.entries().map_err(tar_err)? {
        let entry = entry.map_err(tar_err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        safe_join(archive, dest, &name)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(DataError::UnsafeArchiveEntry {
                archive: archive.to_path_buf(),
                entry: name,
            });
        }
    }
    let mut tar = open()?;
    for entry in tar.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let target = safe_join(archive, dest, &name)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| DataError::io(&target, e))?;
        } else if kind.is_file() {
            write_entry(&mut entry, &target)?;
        }
    }
    Ok(())
}

fn write_entry(reader: &mut impl Read, target: &Path) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    let mut out = std::fs::File::create(target).map_err(|e| DataError::io(target, e))?;
    std::io::copy(reader, &mut out).map_err(|e| DataError::io(target, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_accepts_nested_names_and_refuses_escapes() {
        let (a, d) = (Path::new("a.zip"), Path::new("/dest"));
        assert_eq!(
            safe_join(a, d, "x/./y.png").ok(),
            Some(PathBuf::from("/dest/x/y.png"))
        );
        for bad in ["../x", "x/../../y", "/etc/passwd", "x\\..\\y", "\\x"] {
            assert!(safe_join(a, d, bad).is_err(), "{bad}");
        }
    }
}
