//! The detector interface the pipeline uses, and its implementations on the EfficientNet-Lite0
//! backbone: PatchCore, FastFlow and CFlow.
//!
//! Every detector works at a fixed input size and returns anomaly maps at the original image
//! size, upsampled bilinearly and smoothed with a Gaussian. A higher score means more anomalous.

mod cflow;
mod fastflow;
mod patchcore;

use std::path::Path;

use candle_core::{Device, Tensor};
use image::Rgb32FImage;
use serde::{Deserialize, Serialize};
use sieve_core::AnomalyMap;

use crate::backbone::{image_to_tensor, EfficientNetLite0};
use crate::pool::on_pool;

pub use cflow::CFlowDetector;
pub use fastflow::FastFlowDetector;
pub use patchcore::PatchCoreDetector;

/// Error of a detector; carries the failing step's message.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("backbone failed: {0}")]
    Backbone(String),
    #[error("PatchCore failed: {0}")]
    PatchCore(String),
    #[error("FastFlow failed: {0}")]
    FastFlow(#[from] crate::fastflow::FastFlowError),
    #[error("CFlow failed: {0}")]
    CFlow(#[from] crate::cflow::CFlowError),
    #[error("flow training failed: {0}")]
    Flow(#[from] crate::flow::FlowError),
    #[error("failed to read {path}: {message}")]
    Image { path: String, message: String },
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("invalid detector setting: {0}")]
    Config(String),
}

/// Resizing of images to the detector's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Stretch to exactly `width` x `height`.
    Stretch,
    /// Keep the aspect ratio at about `width * height` pixels, each side a multiple of 16.
    KeepAspect,
}

/// Settings shared by every detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InputConfig {
    /// Input width in pixels.
    pub width: u32,
    /// Input height in pixels.
    pub height: u32,
    pub resize: Resize,
    /// Standard deviation, in pixels of the original image, of the Gaussian that smooths maps.
    pub sigma: f32,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            width: 256,
            height: 256,
            resize: Resize::Stretch,
            sigma: 4.0,
        }
    }
}

impl InputConfig {
    /// Checks sizes and smoothing.
    pub fn check(&self) -> Result<(), DetectError> {
        if self.width < 32
            || self.height < 32
            || !self.width.is_multiple_of(16)
            || !self.height.is_multiple_of(16)
        {
            return Err(DetectError::Config(format!(
                "input size {}x{} must have sides of at least 32 that are multiples of 16, for example 256x256",
                self.width, self.height
            )));
        }
        if !(self.sigma >= 0.0 && self.sigma.is_finite()) {
            return Err(DetectError::Config(format!(
                "sigma = {} must be a finite number >= 0, for example 4",
                self.sigma
            )));
        }
        Ok(())
    }

    /// Returns the input size for an image of `width` x `height`.
    pub fn input_size(&self, width: u32, height: u32) -> (u32, u32) {
        match self.resize {
            Resize::Stretch => (self.width, self.height),
            Resize::KeepAspect => {
                let area = self.width as f64 * self.height as f64;
                let aspect = width as f64 / height.max(1) as f64;
                let h = (area / aspect).sqrt();
                let w = h * aspect;
                let round = |v: f64| ((v / 16.0).round().max(2.0) * 16.0) as u32;
                (round(w), round(h))
            }
        }
    }

    /// Upsamples a score grid to the original image size and smooths it.
    pub fn to_image_map(&self, grid: &AnomalyMap, width: u32, height: u32) -> AnomalyMap {
        grid.resize_bilinear(width as usize, height as usize)
            .gaussian_blur(self.sigma)
    }
}

/// A training image that a detector can score out-of-fold, as if it had not learnt from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfFoldImage {
    /// Index into the training images the detector was fitted with.
    pub index: usize,
    /// Value to pass as `exclude` to [`Detector::anomaly_map`] when scoring this image.
    pub exclude: Option<u32>,
}

/// A fitted detector: anomaly maps for images, and out-of-fold maps for some training images.
pub trait Detector: Sync {
    /// Returns the detector's name as the command line spells it.
    fn name(&self) -> &'static str;

    /// Computes the anomaly map of `image` at its original size. With `exclude = Some(i)`, the detector
    /// scores as if training image `i` had not been seen (out-of-fold), where it supports that.
    fn anomaly_map(
        &self,
        image: &Rgb32FImage,
        exclude: Option<u32>,
    ) -> Result<AnomalyMap, DetectError>;

    /// Lists the training images whose out-of-fold maps set thresholds, supply false alarms and
    /// carry painted defects, each with the `exclude` value that makes its map out-of-fold.
    ///
    /// A detector that can leave one image out without refitting lists every training image
    /// with `exclude = Some(index)`. One that is too costly to refit lists only the images it
    /// held out of training, with `exclude = None`.
    fn out_of_fold(&self) -> Vec<OutOfFoldImage>;

    /// Returns the detector's settings as JSON, for reports and the saved model.
    fn settings(&self) -> serde_json::Value;

    /// Saves the fitted model into `dir`, creating it if needed.
    fn save(&self, dir: &Path) -> Result<(), DetectError>;
}

/// Scores `image` with a flow detector on rayon's pool: the backbone features at the input
/// size, the `(1, h, w)` grid that `maps` computes from them at that size, and that grid
/// mapped back to the image's own size.
///
/// A flow cannot leave one training image out, so `exclude` must be `None`. Out-of-fold maps
/// come from the held-out images instead.
fn flow_anomaly_map<E>(
    name: &str,
    backbone: &EfficientNetLite0,
    input: &InputConfig,
    image: &Rgb32FImage,
    exclude: Option<u32>,
    maps: impl FnOnce(&[Tensor], usize, usize) -> Result<Vec<AnomalyMap>, E> + Send,
) -> Result<AnomalyMap, DetectError>
where
    DetectError: From<E>,
{
    if let Some(index) = exclude {
        return Err(DetectError::Config(format!(
            "{name} cannot leave training image {index} out; score the held-out images that \
             out_of_fold lists, with exclude = None"
        )));
    }
    on_pool(|| {
        let features = backbone_features(backbone, input, &Device::Cpu, image)?;
        let (width, height) = input.input_size(image.width(), image.height());
        let grid = maps(&features, width as usize, height as usize)?.swap_remove(0);
        Ok(input.to_image_map(&grid, image.width(), image.height()))
    })
}

/// Runs the backbone on `image` resized to the input size: `(1, c_i, h_i, w_i)` per scale, the
/// finest first.
fn backbone_features(
    backbone: &EfficientNetLite0,
    input: &InputConfig,
    device: &Device,
    image: &Rgb32FImage,
) -> Result<Vec<Tensor>, DetectError> {
    let (width, height) = input.input_size(image.width(), image.height());
    let x = image_to_tensor(image, width, height, device)
        .map_err(|e| DetectError::Backbone(e.to_string()))?;
    backbone
        .features(&x)
        .map_err(|e| DetectError::Backbone(e.to_string()))
}

/// Training images whose features are computed in parallel before they enter the cache, which
/// bounds the f32 features held at once.
const CACHE_CHUNK: usize = 16;

/// Computes the backbone features of every `train` image once, on the CPU, and caches them in
/// f16 for a flow to train on. Fails before caching when they would exceed `max_bytes`.
/// `cached` is called once per cached image.
fn cache_features(
    backbone: &EfficientNetLite0,
    train: &[std::path::PathBuf],
    input: &InputConfig,
    max_bytes: usize,
    cached: &(dyn Fn(u64) + Sync),
) -> Result<crate::flow::FeatureCache, DetectError> {
    use rayon::prelude::*;

    let mut cache = crate::flow::FeatureCache::new();
    for (chunk_index, chunk) in train.chunks(CACHE_CHUNK).enumerate() {
        let features = chunk
            .par_iter()
            .map(|path| {
                let image = load(path)?;
                let features = backbone_features(backbone, input, &Device::Cpu, &image)?;
                cached(1);
                Ok(features)
            })
            .collect::<Result<Vec<_>, DetectError>>()?;
        if chunk_index == 0 {
            crate::flow::FeatureCache::check_size(&features[0], train.len(), max_bytes)?;
        }
        for image_features in &features {
            cache.push(image_features)?;
        }
    }
    tracing::debug!(
        images = cache.len(),
        mib = cache.bytes() as f64 / (1 << 20) as f64,
        "cached backbone features"
    );
    Ok(cache)
}

fn load(path: &Path) -> Result<Rgb32FImage, DetectError> {
    sieve_core::imageio::load_rgb(path).map_err(|e| DetectError::Image {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_aspect_input_size() {
        let input = InputConfig {
            resize: Resize::KeepAspect,
            ..InputConfig::default()
        };
        // 200 x 400 has aspect 0.5: about 181 x 362 at 256 * 256 pixels, rounded to 16.
        assert_eq!(input.input_size(200, 400), (176, 368));
        assert_eq!(input.input_size(300, 300), (256, 256));
        let stretch = InputConfig::default();
        assert_eq!(stretch.input_size(200, 400), (256, 256));
    }
}
