//! The fitted false-alarm classifier: an RBF soft-margin SVM, `K(a, b) = exp(-gamma * |a - b|^2)`
//! on standardised features, with Platt's sigmoid (Platt 1999, fitted as in Lin, Lin & Weng 2007,
//! "A note on Platt's probabilistic outputs for support vector machines") for probabilities.
//! Inference only; fitting lives in `fit.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::cv::GridScore;
use super::kernel::rbf;
use super::platt::PlattSigmoid;
use super::scaler::Standardizer;

/// A fitted false-alarm classifier. Label `true` is a false alarm, `false` a defect.
///
/// Serialises to JSON with serde. A deserialised model is not re-checked: feeding it vectors of
/// another length than [`FalseAlarmSvm::n_features`] panics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FalseAlarmSvm {
    pub(crate) standardizer: Standardizer,
    /// Standardised support vectors `(n_support, n_features)`.
    pub(crate) support_vectors: Vec<Vec<f64>>,
    /// `y_i a_i` per support vector, `y = +1` for false alarms.
    pub(crate) dual_coefficients: Vec<f64>,
    /// Constant term of the decision function (`-rho`).
    pub(crate) bias: f64,
    pub(crate) c: f64,
    pub(crate) gamma: f64,
    pub(crate) platt: PlattSigmoid,
    pub(crate) cross_validation: CrossValidation,
    pub(crate) training: TrainingSummary,
}

/// How C and gamma were chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// Number of stratified folds.
    pub folds: usize,
    /// Seed of the fold shuffle and of the per-class subsampling.
    pub seed: u64,
    /// Score of the chosen (C, gamma).
    pub chosen: GridScore,
    /// Scores of every grid point, C-major, both ascending.
    pub grid: Vec<GridScore>,
}

/// Sample counts and solver diagnostics of the final fit on all (kept) samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// False-alarm samples used for fitting.
    pub false_alarms: usize,
    /// Defect samples used for fitting.
    pub defects: usize,
    /// Samples left out by `max_samples_per_class`.
    pub dropped: usize,
    /// SMO iterations of the final fit.
    pub iterations: usize,
    /// Whether the final fit met the solver tolerance within the iteration limit.
    pub converged: bool,
}

impl FalseAlarmSvm {
    /// Returns the SVM decision value of raw (unstandardised) features `x` `(n_features,)`;
    /// positive means false alarm.
    ///
    /// # Panics
    /// If `x` has another length than [`Self::n_features`].
    pub fn decision(&self, x: &[f64]) -> f64 {
        let standardised = self.standardizer.transform(x);
        let weighted: f64 = self
            .support_vectors
            .iter()
            .zip(&self.dual_coefficients)
            .map(|(support, &coefficient)| coefficient * rbf(support, &standardised, self.gamma))
            .sum();
        weighted + self.bias
    }

    /// Returns the probability that `x` `(n_features,)` is a false alarm, from Platt's sigmoid
    /// on [`Self::decision`].
    ///
    /// # Panics
    /// If `x` has another length than [`Self::n_features`].
    pub fn probability(&self, x: &[f64]) -> f64 {
        self.platt.probability(self.decision(x))
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.standardizer.n_features()
    }

    /// The standardisation applied before the kernel.
    pub fn standardizer(&self) -> &Standardizer {
        &self.standardizer
    }

    /// Soft-margin penalty C chosen by cross-validation.
    pub fn c(&self) -> f64 {
        self.c
    }

    /// RBF width gamma on standardised features.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// Standardised support vectors `(n_support, n_features)`.
    pub fn support_vectors(&self) -> &[Vec<f64>] {
        &self.support_vectors
    }

    /// Coefficients `y_i a_i` of the support vectors, `y = +1` for false alarms.
    pub fn dual_coefficients(&self) -> &[f64] {
        &self.dual_coefficients
    }

    /// Constant term of the decision function.
    pub fn bias(&self) -> f64 {
        self.bias
    }

    /// Platt's sigmoid, fitted on out-of-fold decision values of the chosen (C, gamma).
    pub fn platt(&self) -> PlattSigmoid {
        self.platt
    }

    /// Cross-validation scores and the chosen grid point.
    pub fn cross_validation(&self) -> &CrossValidation {
        &self.cross_validation
    }

    /// Sample counts and solver diagnostics of the final fit.
    pub fn training(&self) -> TrainingSummary {
        self.training
    }
}

impl fmt::Display for FalseAlarmSvm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cv = &self.cross_validation;
        let training = &self.training;
        writeln!(
            f,
            "RBF SVM, C = {}, gamma = {:.6} on {} standardised features",
            self.c,
            self.gamma,
            self.n_features()
        )?;
        writeln!(
            f,
            "{} support vectors of {} samples ({} false alarms, {} defects, {} dropped by the cap)",
            self.support_vectors.len(),
            training.false_alarms + training.defects,
            training.false_alarms,
            training.defects,
            training.dropped
        )?;
        writeln!(
            f,
            "{}-fold CV over {} grid points: log-loss {:.4}, balanced accuracy {:.4}",
            cv.folds,
            cv.grid.len(),
            cv.chosen.log_loss,
            cv.chosen.balanced_accuracy
        )?;
        write!(
            f,
            "Platt A = {:.6}, B = {:.6}; solver {} after {} iterations",
            self.platt.a,
            self.platt.b,
            if training.converged {
                "converged"
            } else {
                "stopped at max_iterations"
            },
            training.iterations
        )
    }
}
