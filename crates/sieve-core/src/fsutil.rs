//! File writing that never leaves a half-written file in place: data goes to a temporary file
//! or folder beside the target, which is then renamed over it.
//!
//! Every temporary path is recorded while it exists. When the process is interrupted, the
//! signal handler calls [`remove_temporaries`], which waits for a rename in progress to finish,
//! removes every recorded path and keeps new renames from starting. An interrupted program
//! therefore leaves each output either as it was before or completely replaced, and no
//! temporary files behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Temporary paths that exist now. Its lock is also held while a temporary path is renamed
/// into place, so that an interruption never finds a rename half done.
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn temporaries() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the lock was held leaves the list intact, so the poison can be ignored.
    TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary file or folder beside its target. It is removed when dropped, or by
/// [`remove_temporaries`] on an interruption, unless [`Temporary::publish`] has renamed it
/// into place.
#[derive(Debug)]
pub struct Temporary {
    path: PathBuf,
}

impl Temporary {
    /// Records a temporary path beside `target`, `.<file name>.tmp-<process id>`. Nothing is
    /// created: the caller creates the file or folder at [`Temporary::path`].
    pub fn beside(target: &Path) -> Self {
        let path = temporary_path(target);
        temporaries().push(path.clone());
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary file or folder to `target`, replacing what was there.
    ///
    /// A folder replaces a folder atomically where the system can exchange two paths in one
    /// step (Linux 3.15 and later, on most local file systems). Elsewhere the old folder is
    /// first renamed aside, so a crash between the two renames leaves no folder at `target`.
    /// An interruption through [`remove_temporaries`] still waits for both renames.
    pub fn publish(self, target: &Path) -> std::io::Result<()> {
        let mut list = temporaries();
        let result = if self.path.is_dir() && target.is_dir() {
            replace_dir(&self.path, target, &mut list)
        } else {
            std::fs::rename(&self.path, target).map(|()| None)
        };
        drop(list);
        // After an exchange the old folder sits at the temporary path, which drop removes.
        // After two renames it sits at the returned path, recorded like a temporary.
        if let Ok(Some(aside)) = &result {
            forget_and_remove(aside);
        }
        result.map(|_| ())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        forget_and_remove(&self.path);
    }
}

/// Removes `path` from the recorded temporaries and from the disk.
fn forget_and_remove(path: &Path) {
    let mut list = temporaries();
    if let Some(k) = list.iter().position(|p| p == path) {
        list.swap_remove(k);
    }
    drop(list);
    remove_path(path);
}

/// Removes every recorded temporary path and returns the lock that keeps new renames from
/// starting; hold it until the process exits. Waits while a rename is in progress.
pub fn remove_temporaries() -> MutexGuard<'static, Vec<PathBuf>> {
    let mut list = temporaries();
    for path in list.drain(..) {
        remove_path(&path);
    }
    list
}

/// Removes a file or folder; a path that no longer exists is not an error.
fn remove_path(path: &Path) {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(e) = result {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "failed to remove a temporary path");
        }
    }
}

/// Replaces the folder `target` by the folder `source`. The old folder ends up at `source`
/// after an exchange (returns `None`), or at a path recorded in `list` after two renames (returns
/// that path).
fn replace_dir(
    source: &Path,
    target: &Path,
    list: &mut Vec<PathBuf>,
) -> std::io::Result<Option<PathBuf>> {
    if exchange(source, target)? {
        return Ok(None);
    }
    replace_dir_by_renames(source, target, list).map(Some)
}

/// Renames `target` aside, then `source` to `target`. Returns where the old folder went.
fn replace_dir_by_renames(
    source: &Path,
    target: &Path,
    list: &mut Vec<PathBuf>,
) -> std::io::Result<PathBuf> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = temporary_path(&target.with_file_name(format!("{name}.old")));
    std::fs::rename(target, &aside)?;
    list.push(aside.clone());
    if let Err(e) = std::fs::rename(source, target) {
        // Put the old folder back. It is no temporary, so an interruption must not remove it,
        // even where moving it back fails.
        list.retain(|p| *p != aside);
        if let Err(back) = std::fs::rename(&aside, target) {
            return Err(std::io::Error::new(
                e.kind(),
                format!(
                    "{e}; moving the previous {} back also failed ({back}), so it is now at {}",
                    target.display(),
                    aside.display()
                ),
            ));
        }
        return Err(e);
    }
    Ok(aside)
}

/// Swaps two paths in one step. Returns `Ok(false)` where the system or file system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let to_c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (to_c(a)?, to_c(b)?);
    // SAFETY: both pointers come from live CStrings, so they are valid NUL-terminated strings
    // for the duration of the call, and renameat2 does not keep them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => Ok(false),
        _ => Err(error),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = Temporary::beside(path);
    let mut file = std::fs::File::create(tmp.path())?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    tmp.publish(path)
}

/// Returns a temporary name beside `path`: `.<file name>.tmp-<process id>`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn failed_write_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-folder").join("out.json");
        assert!(write_atomic(&path, b"x").is_err());
        assert!(!path.exists());
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn publish_replaces_a_whole_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("old.json"), b"old").unwrap();
        std::fs::write(target.join("filter.json"), b"old").unwrap();

        let tmp = Temporary::beside(&target);
        std::fs::create_dir(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("filter.json"), b"new").unwrap();
        tmp.publish(&target).unwrap();

        assert_eq!(names(&target), ["filter.json"]);
        assert_eq!(std::fs::read(target.join("filter.json")).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["model"]);
    }

    #[test]
    fn publish_creates_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        let tmp = Temporary::beside(&target);
        std::fs::create_dir(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("a"), b"1").unwrap();
        tmp.publish(&target).unwrap();
        assert_eq!(names(&target), ["a"]);
        assert_eq!(names(dir.path()), ["model"]);
    }

    #[test]
    fn dropped_temporary_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("good"), b"1").unwrap();
        {
            let tmp = Temporary::beside(&target);
            std::fs::create_dir(tmp.path()).unwrap();
            std::fs::write(tmp.path().join("half"), b"").unwrap();
        }
        assert_eq!(names(dir.path()), ["model"]);
        assert_eq!(names(&target), ["good"]);
    }

    #[test]
    fn replace_dir_by_two_renames_keeps_old_until_done() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        let source = dir.path().join("new");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("v"), b"old").unwrap();
        std::fs::create_dir(&source).unwrap();
        std::fs::write(source.join("v"), b"new").unwrap();

        // The fallback path that systems without an exchange take.
        let mut list = Vec::new();
        let aside = replace_dir_by_renames(&source, &target, &mut list).unwrap();
        assert_eq!(list, std::slice::from_ref(&aside));
        assert_eq!(std::fs::read(aside.join("v")).unwrap(), b"old");
        assert_eq!(std::fs::read(target.join("v")).unwrap(), b"new");
        assert!(!source.exists());
    }
}
