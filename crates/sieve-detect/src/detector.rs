//! The detector interface the pipeline uses, and its PatchCore implementation on the
//! EfficientNet-Lite0 backbone.
//!
//! Every detector works at a fixed input size and returns anomaly maps at the original image
//! size, upsampled bilinearly and smoothed with a Gaussian. A higher score means more anomalous.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::Rgb32FImage;
use serde::{Deserialize, Serialize};
use sieve_core::AnomalyMap;

use crate::backbone::{image_to_tensor, EfficientNetLite0};
use crate::patchcore::{embed, PatchCore, PatchCoreBuilder, PatchCoreParams};

/// Error of a detector; carries the failing step's message.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("backbone failed: {0}")]
    Backbone(String),
    #[error("PatchCore failed: {0}")]
    PatchCore(String),
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

/// A fitted detector: anomaly maps for images, optionally out-of-fold for training images.
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
}

/// PatchCore on EfficientNet-Lite0 features at strides 8 and 16.
pub struct PatchCoreDetector {
    pub backbone: EfficientNetLite0,
    pub model: PatchCore,
    pub input: InputConfig,
    pub device: Device,
}

/// Feature maps of the backbone that PatchCore uses: strides 8 and 16.
const PATCHCORE_TAPS: [usize; 2] = [1, 2];

impl PatchCoreDetector {
    /// Embeds one image: `(n_patches, dim)` rows and the patch grid `(grid_w, grid_h)`.
    pub fn embed_image(
        backbone: &EfficientNetLite0,
        input: &InputConfig,
        device: &Device,
        image: &Rgb32FImage,
        neighbourhood: usize,
    ) -> Result<(Tensor, (usize, usize)), DetectError> {
        let (width, height) = input.input_size(image.width(), image.height());
        let x = image_to_tensor(image, width, height, device)
            .map_err(|e| DetectError::Backbone(e.to_string()))?;
        let features = backbone
            .features(&x)
            .map_err(|e| DetectError::Backbone(e.to_string()))?;
        let taps: Vec<Tensor> = PATCHCORE_TAPS
            .iter()
            .map(|&i| features[i].clone())
            .collect();
        let (_, _, gh, gw) = taps[0].dims4()?;
        let rows =
            embed(&taps, neighbourhood).map_err(|e| DetectError::PatchCore(e.to_string()))?;
        Ok((rows, (gw, gh)))
    }

    /// Fits the memory bank on `train` images; `progress` is called once per image.
    pub fn fit(
        backbone: EfficientNetLite0,
        train: &[std::path::PathBuf],
        input: InputConfig,
        params: &PatchCoreParams,
        device: Device,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Self, DetectError> {
        input.check()?;
        let valid = params
            .clone()
            .check()
            .map_err(|e| DetectError::Config(e.to_string()))?;
        let neighbourhood = params.neighbourhood;
        let mut builder: Option<PatchCoreBuilder> = None;
        for (id, path) in train.iter().enumerate() {
            let image = load(path)?;
            let (rows, (gw, gh)) =
                Self::embed_image(&backbone, &input, &device, &image, neighbourhood)?;
            let dim = rows.dim(1)?;
            if builder.is_none() {
                let mut b = PatchCoreBuilder::new(dim, (gh, gw))
                    .map_err(|e| DetectError::PatchCore(e.to_string()))?;
                b.reserve(train.len());
                builder = Some(b);
            }
            if let Some(b) = builder.as_mut() {
                let pushed = match input.resize {
                    Resize::Stretch => b.push(id as u32, &rows),
                    Resize::KeepAspect => b.push_any_grid(id as u32, &rows),
                };
                pushed.map_err(|e| DetectError::PatchCore(e.to_string()))?;
            }
            progress(1);
        }
        let builder = builder.ok_or_else(|| DetectError::Config("no training image".into()))?;
        let model = builder
            .build(&valid)
            .map_err(|e| DetectError::PatchCore(e.to_string()))?;
        Ok(Self {
            backbone,
            model,
            input,
            device,
        })
    }

    /// Saves the memory bank and input settings into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), DetectError> {
        self.model
            .save(dir)
            .map_err(|e| DetectError::PatchCore(e.to_string()))
    }
}

impl Detector for PatchCoreDetector {
    fn name(&self) -> &'static str {
        "patchcore"
    }

    fn anomaly_map(
        &self,
        image: &Rgb32FImage,
        exclude: Option<u32>,
    ) -> Result<AnomalyMap, DetectError> {
        let neighbourhood = self.model.params().neighbourhood();
        let (rows, (gw, gh)) = Self::embed_image(
            &self.backbone,
            &self.input,
            &self.device,
            image,
            neighbourhood,
        )?;
        let scores = self
            .model
            .score(&rows, exclude)
            .map_err(|e| DetectError::PatchCore(e.to_string()))?;
        let grid = AnomalyMap::from_vec(gw, gh, scores);
        Ok(self
            .input
            .to_image_map(&grid, image.width(), image.height()))
    }
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
