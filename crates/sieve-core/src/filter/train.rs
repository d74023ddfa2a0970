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
use crate::regions::{Attribute, Candidate, Descriptor};

/// Sample counts, chosen hyperparameters and safety figures of a trained filter, for reports.
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
    /// The false-alarm probability cut the user asked for.
    pub requested_p_cut: f64,
    /// The cut in use: the requested one, raised by the recall-loss brake where needed.
    pub p_cut: f64,
    /// The synthetic recall loss on held-back painted defects at the cut in use.
    pub synthetic_recall_loss: RecallLoss,
    /// The synthetic recall loss at the requested cut, before the brake.
    pub synthetic_recall_loss_at_requested_p_cut: RecallLoss,
    /// The reason no classifier was trained, if none was.
    pub inactive_reason: Option<String>,
}

/// Trains the filter. When a class has too few samples to cross-validate, the filter is
/// returned without a classifier: it keeps every candidate and records the reason. The mining threshold
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
    let fa: Vec<Descriptor> = false_alarms.iter().map(|c| c.descriptor).collect();
    let df: Vec<Descriptor> = defects.iter().map(|c| c.descriptor).collect();

    let envelope = if params.envelope {
        let (lo, hi) = params.envelope_percentiles;
        Envelope::fit(&fa, prior.envelope(), lo, hi)
    } else {
        None
    };

    let defect_envelope = if params.defect_envelope {
        let (lo, hi) = params.defect_envelope_percentiles;
        Envelope::fit(&df, &features, lo, hi)
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
        let balanced = balance(
            &fa,
            &df,
            &features,
            &augmentation,
            params.max_per_class,
            &mut rng,
        );
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
                summary.cv_balanced_accuracy =
                    Some(model.cross_validation().chosen.balanced_accuracy);
                summary.support_vectors = Some(model.support_vectors().len());
                svm = Some(model);
            }
            Err(e) => {
                reason = Some(format!(
                    "the classifier could not be trained ({e}); every candidate is kept"
                ))
            }
        }
    }
    summary.inactive_reason = reason.clone();

    let mut filter = FalseAlarmFilter {
        features,
        svm,
        envelope,
        defect_envelope,
        thresholds,
        p_cut: params.p_cut,
        grow: params.grow,
        describe: params.describe,
        inactive_reason: reason,
    };
    summary.requested_p_cut = params.p_cut;
    summary.synthetic_recall_loss_at_requested_p_cut = RecallLoss::measure(&filter, held_back);
    if let Some(budget) = params.recall_loss_budget {
        filter.p_cut = braked_p_cut(&filter, held_back, params.p_cut, budget);
    }
    summary.p_cut = filter.p_cut;
    summary.synthetic_recall_loss = RecallLoss::measure(&filter, held_back);
    (filter, summary)
}

/// Finds the smallest cut at or above `p_cut` at which the filter suppresses at most `budget` of the
/// held-back synthetic defect candidates, by count and by area. The cut only ever rises, so the
/// brake can make the filter stricter but never more aggressive than `p_cut`.
pub fn braked_p_cut(
    filter: &FalseAlarmFilter,
    held_back: &[Candidate],
    p_cut: f64,
    budget: f64,
) -> f64 {
    let verdicts: Vec<(Option<f64>, bool, f64)> = held_back
        .iter()
        .map(|c| {
            let judgement = filter.judge(c);
            let suppressible = judgement.inside_envelope && !judgement.like_defect;
            (
                judgement.probability,
                suppressible,
                c.descriptor.get(Attribute::Area),
            )
        })
        .collect();
    brake(&verdicts, p_cut, budget)
}

/// Computes the brake from `(probability, suppressible by the envelopes, area)` of each
/// held-back candidate.
fn brake(verdicts: &[(Option<f64>, bool, f64)], p_cut: f64, budget: f64) -> f64 {
    if verdicts.is_empty() {
        return p_cut;
    }
    let total = verdicts.len() as f64;
    let total_area: f64 = verdicts
        .iter()
        .map(|v| v.2)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);

    // Candidates suppressed at `p_cut`, most confident first.
    let mut at_risk: Vec<(f64, f64)> = verdicts
        .iter()
        .filter_map(|&(p, inside, area)| p.filter(|&p| inside && p >= p_cut).map(|p| (p, area)))
        .collect();
    at_risk.sort_by(|a, b| b.0.total_cmp(&a.0));

    // Keep the longest prefix within budget; the cut goes just above the first one left out.
    let mut count = 0.0;
    let mut area = 0.0;
    for &(p, a) in &at_risk {
        count += 1.0;
        area += a;
        if count / total > budget || area / total_area > budget {
            return p_cut.max(next_up(p));
        }
    }
    p_cut
}

/// Returns the smallest `f64` above a finite, non-negative `x`.
fn next_up(x: f64) -> f64 {
    f64::from_bits(x.to_bits() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brake_keeps_cut_within_budget() {
        // 100 held-back candidates of area 1; four are suppressed at 0.9 (p = 0.99, 0.97, 0.95,
        // 0.91). A 2 % budget allows the two surest ones, so the cut moves just above 0.95.
        let mut verdicts = vec![(Some(0.1), true, 1.0); 96];
        for p in [0.99, 0.97, 0.95, 0.91] {
            verdicts.push((Some(p), true, 1.0));
        }
        let cut = brake(&verdicts, 0.9, 0.02);
        assert!(cut > 0.95, "{cut}");
        assert!(cut < 0.950001, "{cut}");
        assert_eq!(brake(&verdicts, 0.9, 0.05), 0.9, "within budget: unchanged");
    }

    #[test]
    fn brake_counts_area_and_envelope() {
        // One large candidate outside the envelope is never suppressed, so it does not count.
        // One large candidate inside it breaks the area budget on its own.
        let mut verdicts = vec![(Some(0.1), true, 1.0); 98];
        verdicts.push((Some(0.99), false, 500.0));
        verdicts.push((Some(0.95), true, 50.0));
        let cut = brake(&verdicts, 0.9, 0.05);
        assert!(cut > 0.95, "{cut}");
    }

    #[test]
    fn brake_never_lowers_the_cut() {
        let verdicts = vec![(Some(0.5), true, 1.0); 10];
        assert_eq!(brake(&verdicts, 0.9, 0.0), 0.9);
        assert_eq!(brake(&[], 0.9, 0.0), 0.9);
    }
}
