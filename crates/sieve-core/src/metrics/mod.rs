//! Evaluation metrics: ROC curve and AUROC, the per-region overlap curve and AUPRO, and F1.
//!
//! Every metric is exact: scores are sorted once and every distinct score is a threshold, with
//! no fixed threshold grid. A sample is predicted positive (anomalous) when its score is at or
//! above the threshold. Undefined cases (no input, one class only, NaN or infinite scores)
//! return a [`MetricError`], and [`MetricValue`] carries such a result into reports as `null`
//! with the reason.

mod error;
mod f1;
mod pro;
mod roc;
mod sweep;
mod value;

#[cfg(test)]
mod fixtures;

pub use error::{LabelClass, MetricError};
pub use f1::{f1_at, f1_max, F1};
pub use pro::{aupro, pro_curve, ProCurve};
pub use roc::{auroc, roc_curve, RocCurve};
pub use value::MetricValue;
