//! Per-feature standardisation `(x - mean) / std`, fitted on training data.
//!
//! The standard deviation is the population one (divisor n), as in scikit-learn's
//! `StandardScaler`; a constant feature gets a scale of 1 so it maps to 0.

use serde::{Deserialize, Serialize};

use super::error::SvmError;

/// Mean and standard deviation per feature of the training samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardizer {
    /// Fits mean and standard deviation per feature of `samples` `(n, n_features)`.
    ///
    /// Errors if there are no samples or features, or if a vector has another length than the
    /// first or a non-finite value.
    pub fn fit(samples: &[Vec<f64>]) -> Result<Self, SvmError> {
        let n_features = check_features(samples)?;
        let n = samples.len() as f64;

        let mut mean = vec![0.0; n_features];
        for sample in samples {
            for (m, &x) in mean.iter_mut().zip(sample) {
                *m += x;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);

        let mut variance = vec![0.0; n_features];
        for sample in samples {
            for ((v, &x), &m) in variance.iter_mut().zip(sample).zip(&mean) {
                *v += (x - m) * (x - m);
            }
        }
        let scale = variance
            .iter()
            .map(|v| {
                let std = (v / n).sqrt();
                if std > 0.0 {
                    std
                } else {
                    1.0
                }
            })
            .collect();

        Ok(Self { mean, scale })
    }

    /// Number of features the standardizer was fitted on.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Mean per feature.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Standard deviation per feature, 1 where the feature was constant.
    pub fn scale(&self) -> &[f64] {
        &self.scale
    }

    /// Writes the standardised `x` into `out`; both have length [`Self::n_features`].
    ///
    /// # Panics
    /// If `x` or `out` has another length.
    pub fn transform_into(&self, x: &[f64], out: &mut [f64]) {
        assert_eq!(x.len(), self.n_features(), "feature vector length");
        assert_eq!(out.len(), self.n_features(), "output length");
        for (((o, &v), &m), &s) in out.iter_mut().zip(x).zip(&self.mean).zip(&self.scale) {
            *o = (v - m) / s;
        }
    }

    /// Returns the standardised `x`.
    ///
    /// # Panics
    /// If `x` has another length than [`Self::n_features`].
    pub fn transform(&self, x: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.n_features()];
        self.transform_into(x, &mut out);
        out
    }
}

/// Checks that `samples` is a non-empty table of finite values with one common, non-zero
/// length, and returns that length.
pub(crate) fn check_features(samples: &[Vec<f64>]) -> Result<usize, SvmError> {
    let n_features = samples.first().map_or(0, Vec::len);
    if n_features == 0 {
        return Err(SvmError::NoFeatures);
    }
    for (index, sample) in samples.iter().enumerate() {
        if sample.len() != n_features {
            return Err(SvmError::InconsistentFeatureLength {
                sample: index,
                expected: n_features,
                found: sample.len(),
            });
        }
        if let Some((feature, &value)) = sample.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(SvmError::NonFiniteFeature {
                sample: index,
                feature,
                value,
            });
        }
    }
    Ok(n_features)
}
