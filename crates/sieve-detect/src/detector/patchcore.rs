//! PatchCore on the EfficientNet-Lite0 backbone as a [`Detector`].

use std::path::Path;

use candle_core::{Device, Tensor};
use image::Rgb32FImage;
use sieve_core::AnomalyMap;

use super::{load, DetectError, Detector, InputConfig, OutOfFoldImage, Resize};
use crate::backbone::{image_to_tensor, EfficientNetLite0};
use crate::patchcore::{embed, PatchCore, PatchCoreBuilder, PatchCoreParams};
use crate::pool::on_pool;

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
        on_pool(|| {
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
        })
    }

    /// Lists every training image, each scored with its own patches left out of the search.
    fn out_of_fold(&self) -> Vec<OutOfFoldImage> {
        (0..self.model.fit().training_images)
            .map(|index| OutOfFoldImage {
                index,
                exclude: Some(index as u32),
            })
            .collect()
    }

    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(self.model.params().as_params()).unwrap_or_default()
    }

    /// Saves the memory bank and its settings into `dir`.
    fn save(&self, dir: &Path) -> Result<(), DetectError> {
        self.model
            .save(dir)
            .map_err(|e| DetectError::PatchCore(e.to_string()))
    }
}
