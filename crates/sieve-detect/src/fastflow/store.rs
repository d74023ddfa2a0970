//! Saving and loading fitted FastFlow models as a safetensors file of the flow weights plus a
//! JSON file of the settings, the channel counts and the training record.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sieve_core::fsutil::{temporary_path, write_atomic};

use super::fit::FastFlowFit;
use super::model::FastFlowModel;
use super::{FastFlowError, FastFlowParams};
use crate::flow::ParamSource;

/// Name of the file holding the flow weights, one f32 tensor per parameter, named
/// `scale{i}.step{j}.conv{1,2}.{weight,bias}`.
pub const MODEL_FILE: &str = "fastflow.safetensors";

/// Name of the file holding the settings, channels and training record, as JSON.
pub const SETTINGS_FILE: &str = "fastflow.json";

const FORMAT: &str = "sieve-fastflow";
const VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    format: String,
    version: u32,
    params: FastFlowParams,
    channels: Vec<usize>,
    fit: FastFlowFit,
}

impl FastFlowModel {
    /// Writes [`MODEL_FILE`] and [`SETTINGS_FILE`] into `dir`, creating it if needed. Each file
    /// is written under a temporary name and then renamed.
    pub fn save(&self, dir: &Path, fit: &FastFlowFit) -> Result<(), FastFlowError> {
        fs::create_dir_all(dir).map_err(|source| io_error("create", dir, source))?;

        let data = self
            .varmap()
            .data()
            .lock()
            .expect("no thread panicked while holding the VarMap lock");
        let tensors: HashMap<String, Tensor> = data
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()?;
        drop(data);
        let model_path = dir.join(MODEL_FILE);
        let model_temp = temporary_path(&model_path);
        candle_core::safetensors::save(&tensors, &model_temp)?;
        fs::rename(&model_temp, &model_path)
            .map_err(|source| io_error("rename into place", &model_path, source))?;

        let settings = Settings {
            format: FORMAT.into(),
            version: VERSION,
            params: self.params().as_params().clone(),
            channels: self.channels().to_vec(),
            fit: fit.clone(),
        };
        let settings_path = dir.join(SETTINGS_FILE);
        let text = serde_json::to_vec_pretty(&settings).map_err(|source| FastFlowError::Json {
            path: settings_path.clone(),
            source,
        })?;
        write_atomic(&settings_path, &text)
            .map_err(|source| io_error("write", &settings_path, source))
    }

    /// Reads a model saved by [`FastFlowModel::save`] from `dir` onto `device`, checking that
    /// the weights are exactly those the settings describe.
    pub fn load(dir: &Path, device: &Device) -> Result<(Self, FastFlowFit), FastFlowError> {
        let settings_path = dir.join(SETTINGS_FILE);
        let text =
            fs::read(&settings_path).map_err(|source| io_error("read", &settings_path, source))?;
        let settings: Settings =
            serde_json::from_slice(&text).map_err(|source| FastFlowError::Json {
                path: settings_path.clone(),
                source,
            })?;
        if settings.format != FORMAT || settings.version != VERSION {
            return Err(FastFlowError::ModelFile {
                path: settings_path,
                reason: format!(
                    "format {} version {}, expected {FORMAT} version {VERSION}; save the model \
                     again with this version",
                    settings.format, settings.version
                ),
            });
        }
        let params = settings.params.check()?;

        let model_path = dir.join(MODEL_FILE);
        if !model_path.is_file() {
            return Err(io_error(
                "read",
                &model_path,
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        let tensors = candle_core::safetensors::load(&model_path, &Device::Cpu)?;
        let source = ParamSource::saved(tensors, device);
        let model = FastFlowModel::from_source(params, &settings.channels, source, device)
            .map_err(|error| match error {
                FastFlowError::Flow(reason) => FastFlowError::ModelFile {
                    path: model_path.clone(),
                    reason: format!("{reason} (settings in {})", settings_path.display()),
                },
                other => other,
            })?;
        Ok((model, settings.fit))
    }
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> FastFlowError {
    FastFlowError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastflow::FastFlowParams;
    use crate::flow::{StopReason, TrainLog};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn features(seed: u64) -> Vec<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        [(4, 8), (6, 4)]
            .iter()
            .map(|&(c, side)| {
                let values: Vec<f32> = (0..2 * c * side * side)
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect();
                Tensor::from_vec(values, (2, c, side, side), &Device::Cpu).unwrap()
            })
            .collect()
    }

    fn fit_record() -> FastFlowFit {
        FastFlowFit {
            images: 10,
            held_out: vec![3, 7],
            cache_mib: 0.5,
            log: TrainLog {
                epochs: Vec::new(),
                best_epoch: 0,
                stop: StopReason::EpochLimit,
            },
        }
    }

    /// Builds a model whose second convolutions are no longer zero, so the maps depend on every
    /// weight.
    fn trained_model() -> FastFlowModel {
        let params = FastFlowParams {
            steps: 3,
            ..FastFlowParams::default()
        };
        let model = FastFlowModel::new(params.check().unwrap(), &[4, 6], &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for var in model.varmap().all_vars() {
            let noise: Vec<f32> = (0..var.elem_count())
                .map(|_| rng.gen_range(-0.2..0.2))
                .collect();
            let noise = Tensor::from_vec(noise, var.shape(), &Device::Cpu).unwrap();
            var.set(&(var.as_tensor() + noise).unwrap()).unwrap();
        }
        model
    }

    #[test]
    fn round_trip_keeps_maps() {
        let model = trained_model();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path(), &fit_record()).unwrap();
        let (loaded, fit) = FastFlowModel::load(dir.path(), &Device::Cpu).unwrap();

        assert_eq!(fit, fit_record());
        assert_eq!(loaded.channels(), model.channels());
        let x = features(1);
        let before = model.anomaly_maps(&x, 16, 16).unwrap();
        let after = loaded.anomaly_maps(&x, 16, 16).unwrap();
        assert_eq!(before.len(), 2);
        assert_eq!(before, after);
        // The maps are not flat, so equality is not trivial.
        let map = &before[0];
        let min = map.data.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(map.max() - min > 1e-3, "flat map");

        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![SETTINGS_FILE, MODEL_FILE]);
    }

    #[test]
    fn load_rejects_mismatched_settings() {
        let model = trained_model();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path(), &fit_record()).unwrap();
        let settings_path = dir.path().join(SETTINGS_FILE);
        let text = fs::read_to_string(&settings_path).unwrap();

        let more_steps = text.replace("\"steps\": 3", "\"steps\": 4");
        fs::write(&settings_path, more_steps).unwrap();
        let error = FastFlowModel::load(dir.path(), &Device::Cpu).err().unwrap();
        assert!(
            matches!(&error, FastFlowError::ModelFile { reason, .. } if reason.contains("scale0.step3")),
            "{error}"
        );

        let wider = text.replace("\"hidden_ratio\": 1.0", "\"hidden_ratio\": 2.0");
        fs::write(&settings_path, wider).unwrap();
        let error = FastFlowModel::load(dir.path(), &Device::Cpu).err().unwrap();
        assert!(
            matches!(&error, FastFlowError::ModelFile { reason, .. } if reason.contains("shape")),
            "{error}"
        );

        let fewer_steps = text.replace("\"steps\": 3", "\"steps\": 2");
        fs::write(&settings_path, fewer_steps).unwrap();
        let error = FastFlowModel::load(dir.path(), &Device::Cpu).err().unwrap();
        assert!(
            matches!(&error, FastFlowError::ModelFile { reason, .. } if reason.contains("step2")),
            "{error}"
        );
    }

    #[test]
    fn load_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            FastFlowModel::load(dir.path(), &Device::Cpu),
            Err(FastFlowError::Io { action: "read", .. })
        ));
    }
}
