//! Deployable thresholds taken from out-of-fold anomaly maps of defect-free images: the pixel
//! threshold `t`, the image threshold `t_img` and the background level `b`.

use serde::{Deserialize, Serialize};

use crate::map::AnomalyMap;

/// Thresholds of a fitted model. The filter only lowers scores, so thresholds set on baseline
/// scores stay valid for filtered ones.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Pixel threshold `t`: a pixel is a candidate pixel when its score is `>= t`.
    pub pixel: f32,
    /// Image threshold `t_img`: an image is defective when its score is `>= t_img`.
    pub image: f32,
    /// Background level `b`: the median pixel score of defect-free maps.
    pub background: f32,
    /// Quantile (0..1) of defect-free pixel scores that gave `pixel`.
    pub pixel_quantile: f64,
    /// Quantile (0..1) of defect-free image scores that gave `image`.
    pub image_quantile: f64,
    /// The origin of the thresholds.
    pub source: ThresholdSource,
}

/// Origin of a set of thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSource {
    /// Quantiles of out-of-fold maps of defect-free images: usable in production.
    Deployable,
    /// Given by the user.
    Manual,
}

impl std::fmt::Display for ThresholdSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ThresholdSource::Deployable => "deployable",
            ThresholdSource::Manual => "manual",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    #[error("no defect-free anomaly maps to set thresholds from; the training set needs at least one image")]
    NoMaps,
    #[error("quantile {name} = {value} is outside 0..1; pass a value such as 0.995")]
    Quantile { name: &'static str, value: f64 },
}

impl Thresholds {
    /// Sets `t` and `t_img` at the given quantiles of the defect-free maps' pixel and image
    /// scores (image score = map maximum) and `b` at their pixel median. Pixel quantiles use a
    /// deterministic stride sample of at most `max_pixels` values so memory stays bounded.
    pub fn from_good_maps(
        maps: &[AnomalyMap],
        pixel_quantile: f64,
        image_quantile: f64,
        max_pixels: usize,
    ) -> Result<Self, ThresholdError> {
        for (name, value) in [
            ("pixel_quantile", pixel_quantile),
            ("image_quantile", image_quantile),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(ThresholdError::Quantile { name, value });
            }
        }
        let total: usize = maps.iter().map(|m| m.data.len()).sum();
        if maps.is_empty() || total == 0 {
            return Err(ThresholdError::NoMaps);
        }

        let stride = total.div_ceil(max_pixels.max(1)).max(1);
        let mut pixels: Vec<f32> = maps
            .iter()
            .flat_map(|m| m.data.iter().copied())
            .step_by(stride)
            .collect();
        pixels.sort_by(f32::total_cmp);
        let mut images: Vec<f32> = maps.iter().map(AnomalyMap::max).collect();
        images.sort_by(f32::total_cmp);

        Ok(Self {
            pixel: quantile_sorted(&pixels, pixel_quantile),
            image: quantile_sorted(&images, image_quantile),
            background: quantile_sorted(&pixels, 0.5),
            pixel_quantile,
            image_quantile,
            source: ThresholdSource::Deployable,
        })
    }
}

/// Quantile `q` (0..1) of sorted, non-empty values with linear interpolation.
pub fn quantile_sorted(values: &[f32], q: f64) -> f32 {
    let n = values.len();
    let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let below = rank.floor() as usize;
    let above = (below + 1).min(n - 1);
    let weight = (rank - below as f64) as f32;
    values[below] * (1.0 - weight) + values[above] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_from_ramp_maps() {
        // Two maps holding 0..100 and 100..200: pixel median 99.5, 99.5 % quantile 198.005.
        let a = AnomalyMap::from_vec(10, 10, (0..100).map(|v| v as f32).collect());
        let b = AnomalyMap::from_vec(10, 10, (100..200).map(|v| v as f32).collect());
        let t = Thresholds::from_good_maps(&[a, b], 0.995, 0.5, usize::MAX).unwrap();
        assert!((t.background - 99.5).abs() < 1e-4);
        assert!((t.pixel - 198.005).abs() < 1e-3, "{}", t.pixel);
        // Image scores 99 and 199, median 149.
        assert!((t.image - 149.0).abs() < 1e-4);
    }

    #[test]
    fn bad_quantile_is_rejected() {
        let a = AnomalyMap::filled(2, 2, 0.0);
        let err = Thresholds::from_good_maps(&[a], 99.5, 0.99, 10).unwrap_err();
        assert!(err.to_string().contains("pixel_quantile"));
    }
}
