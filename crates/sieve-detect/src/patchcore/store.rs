//! Saving and loading fitted PatchCore models (Roth et al., "Towards Total Recall in
//! Industrial Anomaly Detection", CVPR 2022) as a safetensors bank plus JSON settings.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::bank::{PatchCore, PatchCoreFit};
use super::{PatchCoreError, PatchCoreParams};

/// Name of the file holding the bank (`bank`, f32 `(m, dim)`) and the source image of each row
/// (`bank_image`, u32 `(m,)`).
pub const MODEL_FILE: &str = "patchcore.safetensors";

/// Name of the file holding the settings and shapes, as JSON.
pub const SETTINGS_FILE: &str = "patchcore.json";

const FORMAT: &str = "sieve-patchcore";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    format: String,
    version: u32,
    params: PatchCoreParams,
    dim: usize,
    grid: [usize; 2],
    bank_rows: usize,
    fit: PatchCoreFit,
}

impl PatchCore {
    /// Writes [`MODEL_FILE`] and [`SETTINGS_FILE`] into `dir`, creating it if needed.
    ///
    /// Each file is written under a temporary name and then renamed, so an interrupted save
    /// never leaves a truncated file under the final name.
    pub fn save(&self, dir: &Path) -> Result<(), PatchCoreError> {
        fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;

        let bank_image =
            Tensor::from_slice(self.bank_image(), self.bank_image().len(), &Device::Cpu)?;
        let tensors = HashMap::from([("bank", self.bank().clone()), ("bank_image", bank_image)]);
        let model_path = dir.join(MODEL_FILE);
        let model_temp = temporary(&model_path);
        candle_core::safetensors::save(&tensors, &model_temp)?;
        rename(&model_temp, &model_path)?;

        let (height, width) = self.grid();
        let settings = Settings {
            format: FORMAT.to_string(),
            version: VERSION,
            params: self.params().as_params().clone(),
            dim: self.dim(),
            grid: [height, width],
            bank_rows: self.bank_image().len(),
            fit: self.fit().clone(),
        };
        let settings_path = dir.join(SETTINGS_FILE);
        let settings_temp = temporary(&settings_path);
        let json = serde_json::to_vec_pretty(&settings).map_err(|source| PatchCoreError::Json {
            path: settings_path.clone(),
            source,
        })?;
        fs::write(&settings_temp, json)
            .map_err(|source| io_error("write", &settings_temp, source))?;
        rename(&settings_temp, &settings_path)
    }

    /// Reads a model written by [`PatchCore::save`] from `dir`, checking that the settings
    /// match the stored tensors.
    pub fn load(dir: &Path) -> Result<Self, PatchCoreError> {
        let settings_path = dir.join(SETTINGS_FILE);
        let text =
            fs::read(&settings_path).map_err(|source| io_error("read", &settings_path, source))?;
        let settings: Settings =
            serde_json::from_slice(&text).map_err(|source| PatchCoreError::Json {
                path: settings_path.clone(),
                source,
            })?;
        let invalid = |reason: String| PatchCoreError::ModelFile {
            path: settings_path.clone(),
            reason,
        };
        if settings.format != FORMAT || settings.version != VERSION {
            return Err(invalid(format!(
                "format {} version {}, expected {FORMAT} version {VERSION}",
                settings.format, settings.version
            )));
        }
        let params = settings.params.check()?;
        let [height, width] = settings.grid;
        if settings.dim == 0 || height == 0 || width == 0 || settings.bank_rows == 0 {
            return Err(invalid(format!(
                "dim {}, grid {height}×{width} and bank_rows {} must all be at least 1",
                settings.dim, settings.bank_rows
            )));
        }

        let model_path = dir.join(MODEL_FILE);
        if !model_path.is_file() {
            return Err(io_error(
                "read",
                &model_path,
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        let mut tensors = candle_core::safetensors::load(&model_path, &Device::Cpu)?;
        let mut take = |name: &str, dtype: DType, shape: &[usize]| {
            let tensor = tensors
                .remove(name)
                .ok_or_else(|| PatchCoreError::ModelFile {
                    path: model_path.clone(),
                    reason: format!("tensor {name} is missing"),
                })?;
            if tensor.dtype() != dtype || tensor.dims() != shape {
                return Err(PatchCoreError::ModelFile {
                    path: model_path.clone(),
                    reason: format!(
                        "tensor {name} is {:?} {:?}, but {SETTINGS_FILE} expects {dtype:?} \
                         {shape:?}",
                        tensor.dtype(),
                        tensor.dims()
                    ),
                });
            }
            Ok(tensor)
        };
        let bank = take("bank", DType::F32, &[settings.bank_rows, settings.dim])?;
        let bank_image = take("bank_image", DType::U32, &[settings.bank_rows])?;

        PatchCore::from_parts(
            params,
            (height, width),
            settings.dim,
            bank.flatten_all()?.to_vec1::<f32>()?,
            bank_image.to_vec1::<u32>()?,
            settings.fit,
        )
    }
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn rename(from: &Path, to: &Path) -> Result<(), PatchCoreError> {
    fs::rename(from, to).map_err(|source| io_error("rename into place", to, source))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> PatchCoreError {
    PatchCoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patchcore::{PatchCoreBuilder, PatchCoreParams};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn small_model() -> (PatchCore, Tensor) {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut builder = PatchCoreBuilder::new(5, (3, 3)).unwrap();
        for image_id in 0..4 {
            let rows: Vec<f32> = (0..45).map(|_| rng.gen_range(-1.0..1.0)).collect();
            builder.push_rows(image_id, &rows).unwrap();
        }
        let params = PatchCoreParams {
            coreset_ratio: 0.5,
            projection_dim: 3,
            ..PatchCoreParams::default()
        };
        let model = builder.build(&params.check().unwrap()).unwrap();
        let queries: Vec<f32> = (0..50).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let queries = Tensor::from_vec(queries, (10, 5), &Device::Cpu).unwrap();
        (model, queries)
    }

    #[test]
    fn round_trip_keeps_scores() {
        let (model, queries) = small_model();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded = PatchCore::load(dir.path()).unwrap();

        assert_eq!(loaded.bank_image(), model.bank_image());
        assert_eq!(loaded.grid(), model.grid());
        assert_eq!(loaded.params(), model.params());
        assert_eq!(loaded.fit(), model.fit());
        for exclude in [None, Some(1)] {
            assert_eq!(
                loaded.score(&queries, exclude).unwrap(),
                model.score(&queries, exclude).unwrap()
            );
        }
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![SETTINGS_FILE, MODEL_FILE]);
    }

    #[test]
    fn load_rejects_mismatched_settings() {
        let (model, _) = small_model();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let settings_path = dir.path().join(SETTINGS_FILE);
        let text = fs::read_to_string(&settings_path).unwrap();
        fs::write(&settings_path, text.replace("\"dim\": 5", "\"dim\": 6")).unwrap();

        let error = PatchCore::load(dir.path()).unwrap_err();
        assert!(
            matches!(&error, PatchCoreError::ModelFile { reason, .. } if reason.contains("bank")),
            "{error}"
        );
    }

    #[test]
    fn load_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            PatchCore::load(dir.path()),
            Err(PatchCoreError::Io { action: "read", .. })
        ));
    }
}
