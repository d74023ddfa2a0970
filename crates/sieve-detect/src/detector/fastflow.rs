//! FastFlow on the EfficientNet-Lite0 backbone as a [`Detector`]. The backbone runs on the CPU
//! and the flows on the device the model was built for.

use std::path::{Path, PathBuf};

use candle_core::Device;
use image::Rgb32FImage;
use sieve_core::AnomalyMap;

use super::{cache_features, flow_anomaly_map, DetectError, Detector, InputConfig, OutOfFoldImage};
use crate::backbone::{EfficientNetLite0, FEATURE_CHANNELS};
use crate::fastflow::{fit_model, split_held_out, FastFlowFit, FastFlowModel, FastFlowParams};
use crate::flow::TrainEvent;

/// FastFlow on EfficientNet-Lite0 features at strides 4, 8 and 16.
pub struct FastFlowDetector {
    pub backbone: EfficientNetLite0,
    pub model: FastFlowModel,
    pub input: InputConfig,
    /// Held-out images and training record.
    pub fit: FastFlowFit,
}

impl FastFlowDetector {
    /// Computes the backbone features of every `train` image once, holds out a seeded share of
    /// the images, and trains the flows on the rest, on `device`, stopping early on the
    /// held-out loss.
    ///
    /// `cached` is called once per image whose features are cached. `training` receives every
    /// optimiser step and epoch.
    pub fn fit(
        backbone: EfficientNetLite0,
        train: &[PathBuf],
        input: InputConfig,
        params: &FastFlowParams,
        device: Device,
        cached: &(dyn Fn(u64) + Sync),
        training: &mut dyn FnMut(&TrainEvent),
    ) -> Result<Self, DetectError> {
        input.check()?;
        let valid = params.check()?;
        let (train_ids, held_out) = split_held_out(train.len(), &valid)?;

        let cache = cache_features(&backbone, train, &input, valid.max_cache_bytes(), cached)?;

        let (model, log) = fit_model(&cache, &train_ids, &held_out, valid, &device, training)?;
        let fit = FastFlowFit {
            images: train.len(),
            held_out,
            cache_mib: cache.bytes() as f64 / (1 << 20) as f64,
            log,
        };
        Ok(Self {
            backbone,
            model,
            input,
            fit,
        })
    }

    /// Loads a model saved by [`Detector::save`] from `dir` onto `device`, checking that it
    /// was trained on this backbone's feature channels.
    pub fn load(
        backbone: EfficientNetLite0,
        dir: &Path,
        input: InputConfig,
        device: &Device,
    ) -> Result<Self, DetectError> {
        input.check()?;
        let (model, fit) = FastFlowModel::load(dir, device)?;
        if model.channels() != FEATURE_CHANNELS {
            return Err(DetectError::Config(format!(
                "the FastFlow model in {} has feature channels {:?}, but the EfficientNet-Lite0 \
                 backbone gives {:?}; train the model again",
                dir.display(),
                model.channels(),
                FEATURE_CHANNELS
            )));
        }
        Ok(Self {
            backbone,
            model,
            input,
            fit,
        })
    }
}

impl Detector for FastFlowDetector {
    fn name(&self) -> &'static str {
        "fastflow"
    }

    /// Scores `image` with the flows. `exclude` must be `None`: a flow cannot leave one
    /// training image out, so out-of-fold maps come from the held-out images instead.
    fn anomaly_map(
        &self,
        image: &Rgb32FImage,
        exclude: Option<u32>,
    ) -> Result<AnomalyMap, DetectError> {
        flow_anomaly_map(
            "FastFlow",
            &self.backbone,
            &self.input,
            image,
            exclude,
            |features, width, height| self.model.anomaly_maps(features, width, height),
        )
    }

    /// Lists the held-out training images, which the flows never trained on.
    fn out_of_fold(&self) -> Vec<OutOfFoldImage> {
        self.fit
            .held_out
            .iter()
            .map(|&index| OutOfFoldImage {
                index,
                exclude: None,
            })
            .collect()
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(self.model.params().as_params()).unwrap_or_default()
    }

    /// Saves the flow weights, settings and training record into `dir`.
    fn save(&self, dir: &Path) -> Result<(), DetectError> {
        Ok(self.model.save(dir, &self.fit)?)
    }
}
