//! Settings of the CFlow detector, unchecked and validated.

use serde::{Deserialize, Serialize};

use super::CFlowError;
use crate::flow::{TrainParams, TrainValidParams};

/// Unchecked CFlow settings, as read from a file or written by hand.
///
/// Call [`CFlowParams::check`] once to get [`CFlowValidParams`], which fitting accepts.
/// `train.batch_size` counts feature vectors per scale and optimiser step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CFlowParams {
    /// Coupling blocks per feature scale. Default 8, as CFLOW-AD.
    pub steps: usize,

    /// Length of the positional encoding that conditions every subnet, a multiple of 4.
    /// Default 128, as CFLOW-AD.
    pub condition_dim: usize,

    /// Hidden units of each subnet as a multiple of its inputs (the passive channels plus the
    /// condition). Default 2.0, as CFLOW-AD's subnets.
    pub hidden_ratio: f64,

    /// Bound of the soft-clamped log-scales, `clamp * tanh(s / clamp)`. Default 1.9, as
    /// CFLOW-AD.
    pub clamp: f64,

    /// Feature vectors drawn per scale in one epoch, from random training images and
    /// positions. Default 65536, 256 optimiser steps at the default batch size.
    ///
    /// NOTE: sized for the CPU: about 2400 vectors per scale and second on 2 shared cores
    /// (the `flow_speed` example), so the default 20 epochs take about 10 minutes there.
    /// CFLOW-AD itself passes over every vector of every training image in each epoch.
    pub fibers_per_epoch: usize,

    /// Feature vectors per scale drawn once from the held-out images, whose loss decides early
    /// stopping. Default 4096.
    pub held_out_fibers: usize,

    /// Share of the defect-free training images held out of training, in (0, 1). They decide
    /// early stopping, and the pipeline scores them as out-of-fold images. Default 0.2.
    pub held_out_share: f64,

    /// Largest memory in MiB the cached backbone features may take. Default 1024. Features
    /// are cached in f16, 328 KiB per image at 256×256.
    pub max_cache_mib: usize,

    /// Seed of the initial weights, the channel permutations, the held-out draw and the
    /// feature vectors drawn. Default 0.
    pub seed: u64,

    /// Optimiser, epochs, vectors per step and early stopping. Defaults: learning rate 0.0002
    /// and weight decay 0.00001, 256 vectors per step, 20 epochs, patience 3.
    ///
    /// NOTE: a `train` section read from JSON fills the fields it leaves out from
    /// [`TrainParams::default`], FastFlow's defaults, not from these.
    pub train: TrainParams,
}

impl Default for CFlowParams {
    fn default() -> Self {
        Self {
            steps: 8,
            condition_dim: 128,
            hidden_ratio: 2.0,
            clamp: 1.9,
            fibers_per_epoch: 65536,
            held_out_fibers: 4096,
            held_out_share: 0.2,
            max_cache_mib: 1024,
            seed: 0,
            train: TrainParams {
                learning_rate: 2e-4,
                weight_decay: 1e-5,
                epochs: 20,
                batch_size: 256,
                patience: 3,
                seed: 0,
            },
        }
    }
}

impl CFlowParams {
    /// Checks every setting and returns the validated form.
    pub fn check(&self) -> Result<CFlowValidParams, CFlowError> {
        if self.steps == 0 {
            return Err(CFlowError::InvalidSteps);
        }
        if self.condition_dim == 0 || !self.condition_dim.is_multiple_of(4) {
            return Err(CFlowError::InvalidConditionDim {
                value: self.condition_dim,
            });
        }
        if !(self.hidden_ratio > 0.0 && self.hidden_ratio.is_finite()) {
            return Err(CFlowError::InvalidHiddenRatio {
                value: self.hidden_ratio,
            });
        }
        if !(self.clamp > 0.0 && self.clamp.is_finite()) {
            return Err(CFlowError::InvalidClamp { value: self.clamp });
        }
        let share = self.held_out_share;
        if !(share > 0.0 && share < 1.0) {
            return Err(CFlowError::InvalidHeldOutShare { value: share });
        }
        for (name, value, example) in [
            ("fibers_per_epoch", self.fibers_per_epoch, 65536),
            ("held_out_fibers", self.held_out_fibers, 4096),
            ("max_cache_mib", self.max_cache_mib, 1024),
        ] {
            if value == 0 {
                return Err(CFlowError::InvalidCount { name, example });
            }
        }
        let train = self.train.check()?;
        Ok(CFlowValidParams {
            params: self.clone(),
            train,
        })
    }
}

/// CFlow settings that passed [`CFlowParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct CFlowValidParams {
    params: CFlowParams,
    train: TrainValidParams,
}

impl CFlowValidParams {
    pub fn steps(&self) -> usize {
        self.params.steps
    }

    pub fn condition_dim(&self) -> usize {
        self.params.condition_dim
    }

    pub fn clamp(&self) -> f64 {
        self.params.clamp
    }

    pub fn fibers_per_epoch(&self) -> usize {
        self.params.fibers_per_epoch
    }

    pub fn held_out_fibers(&self) -> usize {
        self.params.held_out_fibers
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
    pub fn as_params(&self) -> &CFlowParams {
        &self.params
    }

    /// Hidden units of a subnet with `inputs` inputs: the ratio times `inputs`, rounded, at
    /// least 1.
    pub fn hidden_units(&self, inputs: usize) -> usize {
        ((self.params.hidden_ratio * inputs as f64).round() as usize).max(1)
    }

    /// Number of held-out images out of `images`: the share rounded, at least 1 and at most
    /// `images - 1`.
    pub fn held_out_count(&self, images: usize) -> usize {
        crate::flow::held_out_count(self.params.held_out_share, images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_check() {
        let valid = CFlowParams::default().check().unwrap();
        assert_eq!(valid.steps(), 8);
        assert_eq!(valid.condition_dim(), 128);
        assert_eq!(valid.hidden_units(140), 280);
        assert_eq!(valid.held_out_count(210), 42);
        assert_eq!(valid.max_cache_bytes(), 1 << 30);
    }

    #[test]
    fn check_rejects_each_rule() {
        let base = CFlowParams::default();
        let cases = [
            CFlowParams {
                steps: 0,
                ..base.clone()
            },
            CFlowParams {
                condition_dim: 130,
                ..base.clone()
            },
            CFlowParams {
                condition_dim: 0,
                ..base.clone()
            },
            CFlowParams {
                hidden_ratio: -1.0,
                ..base.clone()
            },
            CFlowParams {
                clamp: f64::INFINITY,
                ..base.clone()
            },
            CFlowParams {
                held_out_share: 1.0,
                ..base.clone()
            },
            CFlowParams {
                fibers_per_epoch: 0,
                ..base.clone()
            },
            CFlowParams {
                held_out_fibers: 0,
                ..base.clone()
            },
            CFlowParams {
                train: TrainParams {
                    batch_size: 0,
                    ..base.train.clone()
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
        let params: CFlowParams =
            serde_json::from_str(r#"{"condition_dim": 64, "train": {"epochs": 3}}"#).unwrap();
        assert_eq!(params.condition_dim, 64);
        assert_eq!(params.train.epochs, 3);
        // A partial train section falls back to the shared training defaults.
        assert_eq!(
            params.train.learning_rate,
            TrainParams::default().learning_rate
        );
        assert!(serde_json::from_str::<CFlowParams>(r#"{"blocks": 4}"#).is_err());
    }
}
