//! Fitted model folders: a format version and a sha256 checksum of every file, written with
//! the model and checked before it is loaded, and the one function that loads a model.
//!
//! A model folder contains `settings.json` (format version, detector name, input and settings),
//! `filter.json`, the detector's own files, and `manifest.json` with the checksums.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sieve_core::filter::FalseAlarmFilter;
use sieve_detect::backbone::EfficientNetLite0;
use sieve_detect::detector::{
    CFlowDetector, Detector, FastFlowDetector, InputConfig, PatchCoreDetector,
};
use sieve_detect::patchcore::PatchCore;

/// Version of the model folder layout; a folder of another version is rejected on load.
pub const FORMAT_VERSION: u32 = 2;
/// Name of the file that lists the checksums.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the file with the format version, detector name and settings.
pub const SETTINGS_FILE: &str = "settings.json";
/// Name of the file with the fitted false-alarm filter.
pub const FILTER_FILE: &str = "filter.json";
/// Detectors this build can load, by the name `settings.json` stores.
pub const DETECTORS: &[&str] = &["patchcore", "fastflow", "cflow"];

/// The checksums of a model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    /// Lower-case hex sha256 of each file, by file name.
    sha256: BTreeMap<String, String>,
}

/// The part of `settings.json` every detector shares.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSettings {
    pub detector: String,
    #[serde(default)]
    pub backbone: String,
    pub input: InputConfig,
}

/// A model ready to score images.
pub struct LoadedModel {
    pub settings: ModelSettings,
    /// `settings.json` as written, for reports.
    pub raw_settings: serde_json::Value,
    pub detector: Box<dyn Detector + Send>,
    pub filter: FalseAlarmFilter,
}

fn sha256_hex(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Lists the regular files of a model folder, the manifest and hidden files left out.
fn model_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list {}", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && name != MANIFEST_FILE && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Writes `manifest.json` with the sha256 of every other file in `dir`. Call it last, once
/// every model file is in place.
pub fn write_manifest(dir: &Path) -> anyhow::Result<()> {
    let mut sha256 = BTreeMap::new();
    for name in model_files(dir)? {
        sha256.insert(name.clone(), sha256_hex(&dir.join(&name))?);
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        sha256,
    };
    let path = dir.join(MANIFEST_FILE);
    sieve_core::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("failed to write {}", path.display()))
}

/// Reads `settings.json` and checks the format version and every checksum.
pub fn check_model_dir(dir: &Path) -> anyhow::Result<(ModelSettings, serde_json::Value)> {
    let settings_path = dir.join(SETTINGS_FILE);
    if !settings_path.is_file() {
        bail!(
            "{} is not a model folder: {SETTINGS_FILE} is missing; pass the model folder that sieve run writes to <out>/model",
            dir.display()
        );
    }
    let text = std::fs::read(&settings_path)
        .with_context(|| format!("failed to read {}", settings_path.display()))?;
    let raw: serde_json::Value = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not valid JSON; the model folder is damaged, so fit the model again with sieve run",
            settings_path.display()
        )
    })?;
    let version = raw["format_version"].as_u64().unwrap_or(0);
    if version != u64::from(FORMAT_VERSION) {
        let age = if version < u64::from(FORMAT_VERSION) {
            "an older"
        } else {
            "a newer"
        };
        bail!(
            "model folder {} has format version {version}, written by {age} sieve; this sieve reads format version {FORMAT_VERSION}: fit the model again with this version's sieve run",
            dir.display()
        );
    }

    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(&manifest_path).with_context(|| {
            format!(
                "model folder {} has no readable {MANIFEST_FILE}; the folder is damaged or incomplete, so copy it again or fit the model again with sieve run",
                dir.display()
            )
        })?,
    )
    .with_context(|| format!("{} is not a valid manifest", manifest_path.display()))?;
    for (name, expected) in &manifest.sha256 {
        let path = dir.join(name);
        if !path.is_file() {
            bail!(
                "model file {} is missing; the model folder is incomplete, so copy it again or fit the model again with sieve run",
                path.display()
            );
        }
        let found = sha256_hex(&path)?;
        if &found != expected {
            bail!(
                "model file {} is damaged: its sha256 is {found}, but {MANIFEST_FILE} expects {expected}; copy the model folder again or fit the model again with sieve run",
                path.display()
            );
        }
    }
    for name in model_files(dir)? {
        if !manifest.sha256.contains_key(&name) {
            bail!(
                "model folder {} contains {name}, which is missing from {MANIFEST_FILE}; remove the file or fit the model again with sieve run",
                dir.display()
            );
        }
    }

    let settings: ModelSettings = serde_json::from_value(raw.clone()).with_context(|| {
        format!(
            "{} lacks a detector or input setting",
            settings_path.display()
        )
    })?;
    Ok((settings, raw))
}

/// Loads a fitted model: checks the folder, then loads the detector that `settings.json` names
/// and the filter. Every detector is loaded here, by its name.
pub fn load_model(dir: &Path) -> anyhow::Result<LoadedModel> {
    let (settings, raw_settings) = check_model_dir(dir)?;
    let device = Device::Cpu;
    let detector: Box<dyn Detector + Send> = match settings.detector.as_str() {
        "patchcore" => {
            settings.input.check()?;
            let model = PatchCore::load(dir)
                .with_context(|| format!("failed to load PatchCore from {}", dir.display()))?;
            let backbone = EfficientNetLite0::load_default(&device)
                .context("failed to load the backbone weights")?;
            Box::new(PatchCoreDetector {
                backbone,
                model,
                input: settings.input.clone(),
                device,
            })
        }
        "fastflow" => {
            let backbone = EfficientNetLite0::load_default(&device)
                .context("failed to load the backbone weights")?;
            let detector = FastFlowDetector::load(backbone, dir, settings.input.clone(), &device)
                .with_context(|| format!("failed to load FastFlow from {}", dir.display()))?;
            Box::new(detector)
        }
        "cflow" => {
            let backbone = EfficientNetLite0::load_default(&device)
                .context("failed to load the backbone weights")?;
            let detector = CFlowDetector::load(backbone, dir, settings.input.clone(), &device)
                .with_context(|| format!("failed to load CFlow from {}", dir.display()))?;
            Box::new(detector)
        }
        other => bail!(
            "model folder {} uses detector {other:?}, which this sieve cannot load; known detectors: {}",
            dir.display(),
            DETECTORS.join(", ")
        ),
    };
    let filter_path = dir.join(FILTER_FILE);
    let filter: FalseAlarmFilter = serde_json::from_slice(
        &std::fs::read(&filter_path)
            .with_context(|| format!("failed to read {}", filter_path.display()))?,
    )
    .with_context(|| format!("{} is not a valid filter", filter_path.display()))?;

    Ok(LoadedModel {
        settings,
        raw_settings,
        detector,
        filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a model-like folder with a settings file and one data file, sealed.
    fn sealed_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let settings = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "detector": "patchcore",
            "input": InputConfig::default(),
        });
        std::fs::write(dir.path().join(SETTINGS_FILE), settings.to_string()).unwrap();
        std::fs::write(dir.path().join("bank.bin"), b"0123456789").unwrap();
        write_manifest(dir.path()).unwrap();
        dir
    }

    #[test]
    fn sealed_folder_passes_check() {
        let dir = sealed_folder();
        let (settings, _) = check_model_dir(dir.path()).unwrap();
        assert_eq!(settings.detector, "patchcore");
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap())
                .unwrap();
        // sha256 of the ASCII digits 0 to 9, from coreutils' sha256sum.
        assert_eq!(
            manifest.sha256["bank.bin"],
            "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882"
        );
    }

    #[test]
    fn changed_file_is_damaged() {
        let dir = sealed_folder();
        std::fs::write(dir.path().join("bank.bin"), b"0123456788").unwrap();
        let message = check_model_dir(dir.path()).unwrap_err().to_string();
        assert!(message.contains("bank.bin"), "{message}");
        assert!(message.contains("damaged"), "{message}");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = sealed_folder();
        std::fs::remove_file(dir.path().join("bank.bin")).unwrap();
        let message = check_model_dir(dir.path()).unwrap_err().to_string();
        assert!(
            message.contains("bank.bin") && message.contains("missing"),
            "{message}"
        );
    }

    #[test]
    fn older_format_is_rejected() {
        let dir = sealed_folder();
        let settings = serde_json::json!({
            "format_version": 1,
            "detector": "patchcore",
            "input": InputConfig::default(),
        });
        std::fs::write(dir.path().join(SETTINGS_FILE), settings.to_string()).unwrap();
        let message = check_model_dir(dir.path()).unwrap_err().to_string();
        assert!(message.contains("format version 1"), "{message}");
        assert!(message.contains("older"), "{message}");
    }

    #[test]
    fn unknown_detector_lists_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let settings = serde_json::json!({
            "format_version": FORMAT_VERSION,
            "detector": "mystery",
            "input": InputConfig::default(),
        });
        std::fs::write(dir.path().join(SETTINGS_FILE), settings.to_string()).unwrap();
        std::fs::write(dir.path().join(FILTER_FILE), b"{}").unwrap();
        write_manifest(dir.path()).unwrap();
        let message = load_model(dir.path()).err().unwrap().to_string();
        assert!(message.contains("\"mystery\""), "{message}");
        assert!(message.contains("patchcore"), "{message}");
    }
}
