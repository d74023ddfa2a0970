//! Training the false-alarm filter from mined false alarms and synthetic defect candidates,
//! with no labelled defect.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::filter::augment::{balance, Augmentation};
use crate::filter::envelope::Envelope;
use crate::filter::model::FalseAlarmFilter;
use crate::filter::params::FilterParams;
use crate::filter::safety::RecallLoss;
use crate::filter::thresholds::Thresholds;
use crate::prior::Prior;
use crate::regions::{Candidate, Descriptor};

/// What went into the classifier, for reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub false_alarms_mined: usize,
    pub defect_samples: usize,
    pub held_back_samples: usize,
    /// Training samples per class after balancing: (false alarms, defects).
    pub balanced: (usize, usize),
    /// Augmented copies added: (false alarms, defects).
    pub augmented: (usize, usize),
    pub c: Option<f64>,
    pub gamma: Option<f64>,
    /// Out-of-fold log-loss of the chosen C and gamma.
    pub cv_log_loss: Option<f64>,
    /// Out-of-fold balanced accuracy of the chosen C and gamma.
    pub cv_balanced_accuracy: Option<f64>,
    pub support_vectors: Option<usize>,
    /// The synthetic recall loss on held-back painted defects.
    pub synthetic_recall_loss: RecallLoss,
    /// Why no classifier was trained, if none was.
    pub inactive_reason: Option<String>,
}

/// Trains the filter. When a class has too few samples to cross-validate, the filter is
/// returned without a classifier: it keeps every candidate and says why. The mining threshold
/// is never lowered to find more false alarms, because false alarms found that way look larger
/// than real ones and teach the classifier that large regions are false alarms.
pub fn train_filter(
    false_alarms: &[Candidate],
    defects: &[Candidate],
    held_back: &[Candidate],
    prior: &Prior,
    thresholds: Thresholds,
    params: &FilterParams,
) -> (FalseAlarmFilter, TrainingSummary) {
    let features = prior.features().to_vec();
    let fa: Vec<Descriptor> = false_alarms.iter().map(|c| c.descriptor.clone()).collect();
    let df: Vec<Descriptor> = defects.iter().map(|c| c.descriptor.clone()).collect();

    let envelope = if params.envelope {
        let (lo, hi) = params.envelope_percentiles;
        Envelope::fit(&fa, prior.envelope(), lo, hi)
    } else {
        None
    };

    let mut summary = TrainingSummary {
        false_alarms_mined: fa.len(),
        defect_samples: df.len(),
        held_back_samples: held_back.len(),
        ..Default::default()
    };

    let folds = params.svm.folds;
    let inactive_reason = if fa.is_empty() {
        Some("no false-alarm candidate was found on the defect-free maps at the pixel threshold, so there is nothing to filter; every candidate is kept".to_string())
    } else if df.is_empty() {
        Some("no painted defect was detected, so the classifier has no defect samples; every candidate is kept. Check that the prior's sizes and contrasts match real defects".to_string())
    } else if fa.len() < folds || df.len() < folds {
        Some(format!(
            "too few samples to cross-validate ({} false alarms, {} defect samples, {folds} folds need at least {folds} of each); every candidate is kept",
            fa.len(),
            df.len()
        ))
    } else {
        None
    };

    let mut svm = None;
    let mut reason = inactive_reason;
    if reason.is_none() {
        let aug = prior.augment();
        let augmentation = Augmentation {
            noise: aug.noise(),
            shift: aug.shift(),
            mirror_x: aug.mirror_x(),
            mirror_y: aug.mirror_y(),
            copies: aug.copies() as usize,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let balanced = balance(&fa, &df, &features, &augmentation, params.max_per_class, &mut rng);
        summary.balanced = (
            balanced.is_false_alarm.iter().filter(|&&v| v).count(),
            balanced.is_false_alarm.iter().filter(|&&v| !v).count(),
        );
        summary.augmented = balanced.augmented;
        let fitted = params
            .svm
            .clone()
            .check()
            .map_err(|e| e.to_string())
            .and_then(|valid| {
                valid
                    .fit(&balanced.vectors, &balanced.is_false_alarm)
                    .map_err(|e| e.to_string())
            });
        match fitted {
            Ok(model) => {
                summary.c = Some(model.c());
                summary.gamma = Some(model.gamma());
                summary.cv_log_loss = Some(model.cross_validation().chosen.log_loss);
                summary.cv_balanced_accuracy = Some(model.cross_validation().chosen.balanced_accuracy);
                summary.support_vectors = Some(model.support_vectors().len());
                svm = Some(model);
            }
            Err(e) => reason = Some(format!("the classifier could not be trained ({e}); every candidate is kept")),
        }
    }
    summary.inactive_reason = reason.clone();

    let filter = FalseAlarmFilter {
        features,
        svm,
        envelope,
        thresholds,
        p_cut: params.p_cut,
        grow: params.grow,
        describe: params.describe.clone(),
        inactive_reason: reason,
    };
    summary.synthetic_recall_loss = RecallLoss::measure(&filter, held_back);
    (filter, summary)
}
