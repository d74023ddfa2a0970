//! The object-level false-alarm filter: thresholds from defect-free maps, mining, synthetic
//! defects with the detector in the loop, balancing, the classifier, the envelope guard,
//! suppression and the safety estimate.

mod augment;
mod envelope;
mod mining;
mod model;
mod params;
mod safety;
mod suppress;
mod synthesis;
mod thresholds;
mod train;

pub use augment::{balance, Augmentation, Balanced};
pub use envelope::{percentile_sorted, Envelope};
pub use mining::mine_false_alarms;
pub use model::{FalseAlarmFilter, Filtered, JudgedCandidate, Judgement};
pub use params::{FilterParams, FilterParamsError};
pub use safety::{RecallLoss, WARNING_SHARE};
pub use suppress::{scale_factor, suppress, Suppression};
pub use synthesis::{synthesize, ScoreError, SynthesisStats, SyntheticDefects};
pub use thresholds::{quantile_sorted, ThresholdError, ThresholdSource, Thresholds};
pub use train::{braked_p_cut, train_filter, TrainingSummary};
