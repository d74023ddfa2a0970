//! Writing the demo set safely: the marker file that identifies a demo folder, cleanup of a
//! previous demo and atomic file writes (temporary name, then rename).

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::DemoError;
use super::params::DemoParams;
use super::summary::DemoImage;

/// Name of the marker file in the data set folder. It starts with a dot, so data set readers
/// skip it, and it lists every file the generator wrote.
pub const MARKER: &str = ".sieve-demo.json";
/// Value of the marker's `generator` field.
const GENERATOR: &str = "sieve-core demo";
/// Version of the marker's layout.
const MARKER_FORMAT: u32 = 1;

/// Contents of the marker file.
#[derive(Debug, Serialize)]
pub(super) struct Marker<'a> {
    generator: &'static str,
    format: u32,
    params: &'a DemoParams,
    images: &'a [DemoImage],
}

impl<'a> Marker<'a> {
    pub fn new(params: &'a DemoParams, images: &'a [DemoImage]) -> Self {
        Self {
            generator: GENERATOR,
            format: MARKER_FORMAT,
            params,
            images,
        }
    }
}

/// The part of a marker needed to remove a previous demo; other fields are ignored, so a marker
/// of a later format is still read.
#[derive(Debug, Deserialize)]
struct MarkerFiles {
    generator: String,
    images: Vec<MarkerEntry>,
}

#[derive(Debug, Deserialize)]
struct MarkerEntry {
    path: PathBuf,
    mask: Option<PathBuf>,
}

/// Makes `root` ready for a new demo set: creates it when missing, accepts it when empty, and
/// removes the files a previous demo listed in its marker. Any other non-empty folder is
/// rejected, and so is a marker that cannot be read.
pub(super) fn prepare(root: &Path) -> Result<(), DemoError> {
    if root.exists() && !root.is_dir() {
        return Err(DemoError::NotAFolder {
            path: root.to_owned(),
        });
    }
    if !root.exists() {
        return std::fs::create_dir_all(root).map_err(|source| io_error(root, source));
    }
    let mut entries = std::fs::read_dir(root).map_err(|source| io_error(root, source))?;
    if entries.next().is_none() {
        return Ok(());
    }

    let marker_path = root.join(MARKER);
    if !marker_path.is_file() {
        return Err(DemoError::ForeignFolder {
            path: root.to_owned(),
            marker: MARKER,
        });
    }
    let files = read_marker(&marker_path)?;
    remove_previous(root, &files)
}

fn read_marker(path: &Path) -> Result<Vec<PathBuf>, DemoError> {
    let invalid = |reason: String| DemoError::InvalidMarker {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read(path).map_err(|source| io_error(path, source))?;
    let marker: MarkerFiles = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    if marker.generator != GENERATOR {
        return Err(invalid(format!(
            "generator is {:?}, expected {GENERATOR:?}",
            marker.generator
        )));
    }

    let mut files = Vec::new();
    for entry in marker.images {
        files.push(entry.path);
        files.extend(entry.mask);
    }
    if let Some(outside) = files.iter().find(|p| !is_plain_relative(p)) {
        return Err(invalid(format!(
            "it lists {}, which is not a path inside the folder",
            outside.display()
        )));
    }
    Ok(files)
}

/// Removes the listed files and their leftover temporary files, then every folder they leave
/// empty; files the generator did not write stay.
fn remove_previous(root: &Path, files: &[PathBuf]) -> Result<(), DemoError> {
    let mut folders = Vec::new();
    for relative in files {
        let path = root.join(relative);
        remove_if_present(&path)?;
        remove_if_present(&temporary_path(&path))?;
        folders.extend(
            relative
                .ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty()),
        );
    }

    // Deepest first, so a parent is tried after its children.
    folders.sort_by_key(|f| std::cmp::Reverse(f.components().count()));
    folders.dedup();
    for folder in folders {
        let path = root.join(folder);
        match std::fs::remove_dir(&path) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => {}
            Err(source) => return Err(io_error(&path, source)),
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), DemoError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io_error(path, source)),
    }
}

/// Writes `bytes` to `root/relative` through a hidden temporary file in the same folder, so a
/// reader never sees a partly written file.
pub(super) fn write_atomic(root: &Path, relative: &Path, bytes: &[u8]) -> Result<(), DemoError> {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| io_error(parent, source))?;
    }
    let temporary = temporary_path(&path);
    std::fs::write(&temporary, bytes).map_err(|source| io_error(&temporary, source))?;
    std::fs::rename(&temporary, &path).map_err(|source| io_error(&path, source))
}

/// `dir/.name.tmp` for `dir/name`.
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Returns whether `path` is relative and made of plain names only (no `..`, root or prefix).
fn is_plain_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn io_error(path: &Path, source: std::io::Error) -> DemoError {
    DemoError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths() {
        assert!(is_plain_relative(Path::new("train/good/000.png")));
        assert!(!is_plain_relative(Path::new("../outside.png")));
        assert!(!is_plain_relative(Path::new("/etc/passwd")));
        assert!(!is_plain_relative(Path::new("")));
    }

    #[test]
    fn marker_listing_outside_path_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join(MARKER);
        let text = format!(
            r#"{{"generator": "{GENERATOR}", "images": [{{"path": "../victim.png", "mask": null}}]}}"#
        );
        std::fs::write(&marker, text).unwrap();
        let error = prepare(dir.path()).unwrap_err();
        assert!(matches!(error, DemoError::InvalidMarker { .. }), "{error}");
        assert!(error.to_string().contains("../victim.png"), "{error}");
    }

    #[test]
    fn marker_of_other_generator_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MARKER),
            r#"{"generator": "something else", "images": []}"#,
        )
        .unwrap();
        let error = prepare(dir.path()).unwrap_err();
        assert!(error.to_string().contains("something else"), "{error}");
    }

    #[test]
    fn path_that_is_a_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            prepare(&file).unwrap_err(),
            DemoError::NotAFolder { .. }
        ));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), Path::new("a/b.txt"), b"hello").unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/b.txt")).unwrap(), b"hello");
        assert!(!dir.path().join("a/.b.txt.tmp").exists());
    }
}
