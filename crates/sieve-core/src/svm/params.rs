//! Hyperparameters of the SVM false-alarm classifier, unchecked and checked.
//!
//! The soft-margin C and the RBF width gamma of `K(a, b) = exp(-gamma * |a - b|^2)` are chosen by
//! stratified k-fold cross-validation over the grids given here.

use serde::{Deserialize, Serialize};

use super::error::SvmError;

/// Unchecked hyperparameters; [`SvmParams::check`] turns them into [`ValidSvmParams`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvmParams {
    /// Candidate soft-margin penalties C, each finite and > 0.
    pub c_grid: Vec<f64>,
    /// Candidate RBF widths as multiples of `1 / n_features`: an entry `s` gives
    /// `gamma = s / n_features`. Features are standardised first, so `s = 1` is the width
    /// scikit-learn calls `gamma='scale'`.
    pub gamma_grid: Vec<f64>,
    /// Number of stratified cross-validation folds, at least 2.
    pub folds: usize,
    /// Seed of the per-class fold shuffle and of the per-class subsampling.
    pub seed: u64,
    /// Stopping tolerance of the SMO solver on the maximal KKT violation.
    pub tolerance: f64,
    /// Maximum SMO iterations per solve; a solve that reaches it keeps its last iterate.
    pub max_iterations: usize,
    /// Memory for cached kernel-matrix rows per solver, in MB; several solvers run in parallel.
    pub kernel_cache_mb: usize,
    /// If set, each class is reduced to at most this many samples (seeded random choice) before
    /// fitting, which bounds the fit time. `None` keeps every sample.
    pub max_samples_per_class: Option<usize>,
}

impl Default for SvmParams {
    fn default() -> Self {
        Self {
            c_grid: vec![0.1, 1.0, 10.0, 100.0, 1000.0],
            gamma_grid: [-3.0, -1.5, 0.0, 1.5, 3.0]
                .iter()
                .map(|exponent: &f64| exponent.exp2())
                .collect(),
            folds: 5,
            seed: 0,
            tolerance: 1e-3,
            max_iterations: 10_000_000,
            kernel_cache_mb: 128,
            max_samples_per_class: None,
        }
    }
}

impl SvmParams {
    /// Checks every rule and returns the validated parameters, with both grids sorted ascending
    /// and duplicates removed.
    pub fn check(&self) -> Result<ValidSvmParams, SvmError> {
        if self.c_grid.is_empty() {
            return Err(SvmError::EmptyCGrid);
        }
        if let Some(&value) = self.c_grid.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
            return Err(SvmError::InvalidC { value });
        }
        if self.gamma_grid.is_empty() {
            return Err(SvmError::EmptyGammaGrid);
        }
        if let Some(&value) = self
            .gamma_grid
            .iter()
            .find(|g| !(g.is_finite() && **g > 0.0))
        {
            return Err(SvmError::InvalidGamma { value });
        }
        if self.folds < 2 {
            return Err(SvmError::TooFewFolds { folds: self.folds });
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(SvmError::InvalidTolerance {
                value: self.tolerance,
            });
        }
        if self.max_iterations == 0 {
            return Err(SvmError::ZeroMaxIterations);
        }
        if self.kernel_cache_mb == 0 {
            return Err(SvmError::ZeroKernelCache);
        }
        if let Some(cap) = self.max_samples_per_class {
            if cap < self.folds {
                return Err(SvmError::SampleCapBelowFolds {
                    cap,
                    folds: self.folds,
                });
            }
        }

        let mut params = self.clone();
        for grid in [&mut params.c_grid, &mut params.gamma_grid] {
            grid.sort_by(f64::total_cmp);
            grid.dedup();
        }
        Ok(ValidSvmParams(params))
    }
}

/// Hyperparameters that passed [`SvmParams::check`]; fit with
/// [`ValidSvmParams::fit`](ValidSvmParams::fit).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSvmParams(SvmParams);

impl ValidSvmParams {
    /// Returns the checked parameters; both grids are sorted ascending without duplicates.
    pub fn params(&self) -> &SvmParams {
        &self.0
    }
}
