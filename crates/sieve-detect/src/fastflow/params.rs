//! Settings of the FastFlow detector (Yu et al., "FastFlow: Unsupervised Anomaly Detection and
//! Localization via 2D Normalizing Flows", 2021), unchecked and validated.

use serde::{Deserialize, Serialize};

use super::FastFlowError;
use crate::flow::{TrainParams, TrainValidParams};

/// Score of one position of a feature map, from its latent variables `z` (`c` channels) and
/// the log-determinant of the flow's Jacobian there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FastFlowMap {
    /// `-exp(-0.5 * mean_c z^2)`, the map of the FastFlow paper and anomalib. It leaves out the
    /// log-determinant.
    #[default]
    Latent,
    /// The negative log-likelihood per channel, `(0.5 * |z|^2 - log|det J|) / c`, without the
    /// constant `0.5 * ln(2π)`: the density the flow was trained to model.
    Likelihood,
}

/// Unchecked FastFlow settings, as read from a file or written by hand.
///
/// Call [`FastFlowParams::check`] once to get [`FastFlowValidParams`], which fitting accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FastFlowParams {
    /// Coupling blocks per feature scale. Their subnets alternate 3×3 and 1×1 convolutions,
    /// starting with 3×3. Default 8, as anomalib's FastFlow.
    pub steps: usize,

    /// Hidden channels of each subnet as a multiple of its input channels. Default 1.0.
    pub hidden_ratio: f64,

    /// Bound of the soft-clamped log-scales, `clamp * tanh(s / clamp)`. Default 2.0.
    pub clamp: f64,

    /// Score of each position in the anomaly map. Default [`FastFlowMap::Latent`].
    pub map: FastFlowMap,

    /// Share of the defect-free training images held out of training, in (0, 1). They decide
    /// early stopping, and the pipeline scores them as out-of-fold images. Default 0.2.
    pub held_out_share: f64,

    /// Largest memory in MiB the cached backbone features may take. Default 1024.
    ///
    /// Features are cached in f16: 328 KiB per image at 256×256 (24×64², 40×32² and 112×16²
    /// values), so 714 images take 229 MiB, half of what f32 would take. Fitting fails before caching when the training set
    /// would need more.
    pub max_cache_mib: usize,

    /// Seed of the initial weights, the channel permutations and the held-out draw. Default 0.
    pub seed: u64,

    /// Optimiser, epochs, batch size and early stopping.
    pub train: TrainParams,
}

impl Default for FastFlowParams {
    fn default() -> Self {
        Self {
            steps: 8,
            hidden_ratio: 1.0,
            clamp: 2.0,
            map: FastFlowMap::Latent,
            held_out_share: 0.2,
            max_cache_mib: 1024,
            seed: 0,
            train: TrainParams::default(),
        }
    }
}

impl FastFlowParams {
    /// Checks every setting and returns the validated form.
    pub fn check(&self) -> Result<FastFlowValidParams, FastFlowError> {
        if self.steps == 0 {
            return Err(FastFlowError::InvalidSteps);
        }
        if !(self.hidden_ratio > 0.0 && self.hidden_ratio.is_finite()) {
            return Err(FastFlowError::InvalidHiddenRatio {
                value: self.hidden_ratio,
            });
        }
        if !(self.clamp > 0.0 && self.clamp.is_finite()) {
            return Err(FastFlowError::InvalidClamp { value: self.clamp });
        }
        let share = self.held_out_share;
        if !(share > 0.0 && share < 1.0) {
            return Err(FastFlowError::InvalidHeldOutShare { value: share });
        }
        if self.max_cache_mib == 0 {
            return Err(FastFlowError::InvalidCacheLimit);
        }
        let train = self.train.check()?;
        Ok(FastFlowValidParams {
            params: self.clone(),
            train,
        })
    }
}

/// FastFlow settings that passed [`FastFlowParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct FastFlowValidParams {
    params: FastFlowParams,
    train: TrainValidParams,
}

impl FastFlowValidParams {
    pub fn steps(&self) -> usize {
        self.params.steps
    }

    pub fn clamp(&self) -> f64 {
        self.params.clamp
    }

    pub fn map(&self) -> FastFlowMap {
        self.params.map
    }

    pub fn held_out_share(&self) -> f64 {
        self.params.held_out_share
    }

    pub fn seed(&self) -> u64 {
        self.params.seed
    }

    /// Largest size of the feature cache in bytes.
    pub fn max_cache_bytes(&self) -> usize {
        self.params.max_cache_mib.saturating_mul(1 << 20)
    }

    pub fn train(&self) -> &TrainValidParams {
        &self.train
    }

    /// Returns the settings as given.
    pub fn as_params(&self) -> &FastFlowParams {
        &self.params
    }

    /// Hidden channels of a subnet with `c_in` input channels: the ratio times `c_in`, rounded,
    /// at least 1.
    pub fn hidden_channels(&self, c_in: usize) -> usize {
        ((self.params.hidden_ratio * c_in as f64).round() as usize).max(1)
    }

    /// Kernel side of the subnets of block `step`: 3 for even steps, 1 for odd ones.
    pub fn kernel(step: usize) -> usize {
        if step.is_multiple_of(2) {
            3
        } else {
            1
        }
    }

    /// Number of held-out images out of `images`: the share rounded, at least 1 and at most
    /// `images - 1`, so both parts are non-empty. `images` must be at least 2.
    pub fn held_out_count(&self, images: usize) -> usize {
        crate::flow::held_out_count(self.params.held_out_share, images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_check() {
        let valid = FastFlowParams::default().check().unwrap();
        assert_eq!(valid.steps(), 8);
        assert_eq!(valid.clamp(), 2.0);
        assert_eq!(valid.hidden_channels(12), 12);
        assert_eq!(valid.held_out_count(714), 143);
        assert_eq!(valid.held_out_count(2), 1);
        assert_eq!(valid.max_cache_bytes(), 1 << 30);
    }

    #[test]
    fn check_rejects_each_rule() {
        let base = FastFlowParams::default();
        let cases = [
            FastFlowParams {
                steps: 0,
                ..base.clone()
            },
            FastFlowParams {
                hidden_ratio: 0.0,
                ..base.clone()
            },
            FastFlowParams {
                clamp: f64::NAN,
                ..base.clone()
            },
            FastFlowParams {
                held_out_share: 1.0,
                ..base.clone()
            },
            FastFlowParams {
                held_out_share: 0.0,
                ..base.clone()
            },
            FastFlowParams {
                max_cache_mib: 0,
                ..base.clone()
            },
            FastFlowParams {
                train: TrainParams {
                    epochs: 0,
                    ..TrainParams::default()
                },
                ..base.clone()
            },
        ];
        for params in cases {
            assert!(params.check().is_err(), "{params:?} passed");
        }
    }

    #[test]
    fn params_read_from_json() {
        let params: FastFlowParams =
            serde_json::from_str(r#"{"steps": 4, "train": {"epochs": 3}}"#).unwrap();
        assert_eq!(params.steps, 4);
        assert_eq!(params.train.epochs, 3);
        assert_eq!(params.train.learning_rate, 1e-3);
        assert_eq!(params.map, FastFlowMap::Latent);
        let params: FastFlowParams = serde_json::from_str(r#"{"map": "likelihood"}"#).unwrap();
        assert_eq!(params.map, FastFlowMap::Likelihood);
        assert!(serde_json::from_str::<FastFlowParams>(r#"{"map": "nll"}"#).is_err());
        assert!(serde_json::from_str::<FastFlowParams>(r#"{"blocks": 4}"#).is_err());
    }
}
