//! The false-alarm classifier of the filter: a binary soft-margin SVM with the RBF kernel
//! `K(a, b) = exp(-gamma * |a - b|^2)` on standardised features, C and gamma chosen by
//! stratified k-fold cross-validation, probabilities from Platt's sigmoid (Platt 1999, fitted
//! with the Newton method of Lin, Lin & Weng 2007) on out-of-fold decision values.
//!
//! Labels: `true` = false alarm, `false` = defect. A positive decision value means false alarm.

mod cv;
mod error;
mod fit;
mod kernel;
mod model;
mod params;
mod platt;
mod scaler;
mod smo;

pub use cv::GridScore;
pub use error::{Class, SvmError};
pub use model::{CrossValidation, FalseAlarmSvm, TrainingSummary};
pub use params::{SvmParams, ValidSvmParams};
pub use platt::PlattSigmoid;
pub use scaler::Standardizer;

#[cfg(test)]
mod tests;
