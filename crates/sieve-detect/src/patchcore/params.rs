//! Settings of the PatchCore detector (Roth et al., "Towards Total Recall in Industrial Anomaly
//! Detection", CVPR 2022), unchecked and validated.

use serde::{Deserialize, Serialize};

use super::PatchCoreError;

/// Unchecked PatchCore settings, as read from a file or written by hand.
///
/// Call [`PatchCoreParams::check`] once to get [`PatchCoreValidParams`], which fitting accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatchCoreParams {
    /// Share of all training patches kept in the memory bank, in (0, 1]. Default 0.1, as the
    /// PatchCore authors and anomalib use.
    ///
    /// A training set of about 700 images with 1,024 patches each has about 730,000 patches, so
    /// 0.1 keeps about 73,000 of them. That is a bank of 44 MB at 152 channels, and scoring one
    /// image of 1,024 patches against it takes about 23 GFLOP. A share of 0.01 scores about ten
    /// times faster. It still covers the rare patterns of the training set, because greedy
    /// selection places every kept patch where the bank covers the training patches worst.
    /// Its maps separate defects less well, though: pixel AUROC 0.763 instead of 0.804 on
    /// magnetic_tile.
    pub coreset_ratio: f64,

    /// Width of the Gaussian random projection in which coreset selection measures distances.
    /// Default 128. A value at or above the embedding width turns the projection off, so
    /// selection runs on exact distances and needs no projected copy of the patches.
    pub projection_dim: usize,

    /// Side of the square window over which each feature map is averaged before patches are
    /// formed, in cells of that map. It must be odd, and 1 turns aggregation off. Default 3.
    pub neighbourhood: usize,

    /// Seed of the coreset's starting patch and of the random projection. Default 0.
    pub seed: u64,
}

impl Default for PatchCoreParams {
    fn default() -> Self {
        Self {
            coreset_ratio: 0.1,
            projection_dim: 128,
            neighbourhood: 3,
            seed: 0,
        }
    }
}

impl PatchCoreParams {
    /// Checks every setting and returns the validated form.
    pub fn check(&self) -> Result<PatchCoreValidParams, PatchCoreError> {
        let ratio = self.coreset_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(PatchCoreError::InvalidCoresetRatio { value: ratio });
        }
        if self.projection_dim == 0 {
            return Err(PatchCoreError::InvalidProjectionDim);
        }
        check_neighbourhood(self.neighbourhood)?;
        Ok(PatchCoreValidParams(self.clone()))
    }
}

/// Rejects an even or zero aggregation window.
pub(crate) fn check_neighbourhood(neighbourhood: usize) -> Result<(), PatchCoreError> {
    if neighbourhood % 2 != 1 {
        return Err(PatchCoreError::InvalidNeighbourhood {
            value: neighbourhood,
        });
    }
    Ok(())
}

/// PatchCore settings that passed [`PatchCoreParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct PatchCoreValidParams(PatchCoreParams);

impl PatchCoreValidParams {
    /// Share of the training patches kept in the memory bank.
    pub fn coreset_ratio(&self) -> f64 {
        self.0.coreset_ratio
    }

    /// Width of the random projection used during coreset selection.
    pub fn projection_dim(&self) -> usize {
        self.0.projection_dim
    }

    /// Side of the local aggregation window.
    pub fn neighbourhood(&self) -> usize {
        self.0.neighbourhood
    }

    /// Seed of every random choice made while fitting.
    pub fn seed(&self) -> u64 {
        self.0.seed
    }

    /// Returns the settings as given.
    pub fn as_params(&self) -> &PatchCoreParams {
        &self.0
    }

    /// Number of patches a coreset keeps out of `patches`: the ratio rounded up, at least 1.
    pub fn coreset_size(&self, patches: usize) -> usize {
        let size = (self.0.coreset_ratio * patches as f64).ceil() as usize;
        size.clamp(1, patches.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_check() {
        let valid = PatchCoreParams::default().check().unwrap();
        assert_eq!(valid.coreset_ratio(), 0.1);
        assert_eq!(valid.projection_dim(), 128);
        assert_eq!(valid.neighbourhood(), 3);
    }

    #[test]
    fn check_rejects_each_rule() {
        let base = PatchCoreParams::default();
        for ratio in [0.0, -0.1, 1.5, f64::NAN] {
            let params = PatchCoreParams {
                coreset_ratio: ratio,
                ..base.clone()
            };
            assert!(matches!(
                params.check(),
                Err(PatchCoreError::InvalidCoresetRatio { .. })
            ));
        }
        let params = PatchCoreParams {
            projection_dim: 0,
            ..base.clone()
        };
        assert!(matches!(
            params.check(),
            Err(PatchCoreError::InvalidProjectionDim)
        ));
        for neighbourhood in [0, 2, 4] {
            let params = PatchCoreParams {
                neighbourhood,
                ..base.clone()
            };
            assert!(matches!(
                params.check(),
                Err(PatchCoreError::InvalidNeighbourhood { .. })
            ));
        }
    }

    #[test]
    fn coreset_size_rounds_up() {
        let valid = PatchCoreParams {
            coreset_ratio: 0.01,
            ..PatchCoreParams::default()
        }
        .check()
        .unwrap();
        assert_eq!(valid.coreset_size(731_136), 7_312);
        assert_eq!(valid.coreset_size(50), 1);
        assert_eq!(valid.coreset_size(0), 1);
    }

    #[test]
    fn params_read_from_json() {
        let params: PatchCoreParams = serde_json::from_str(r#"{"coreset_ratio": 0.25}"#).unwrap();
        assert_eq!(params.coreset_ratio, 0.25);
        assert_eq!(params.neighbourhood, 3);
        assert!(serde_json::from_str::<PatchCoreParams>(r#"{"ratio": 0.1}"#).is_err());
    }
}
