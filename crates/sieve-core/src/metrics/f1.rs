//! F1 score at a given threshold and its maximum over all thresholds (F1-max), matching
//! scikit-learn's `f1_score` with `zero_division=0` and its `precision_recall_curve`
//! (version 1.9).

use serde::{Deserialize, Serialize};

use super::sweep::{check_scores, SortedScores};
use super::{LabelClass, MetricError};

/// F1 score with the precision, recall and threshold it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct F1 {
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
    /// Scores at or above this value are predicted positive (anomalous).
    pub threshold: f64,
}

impl F1 {
    /// Builds the scores from counts. Precision is 0 when nothing is predicted positive.
    fn from_counts(
        true_positives: u64,
        false_positives: u64,
        positives: u64,
        threshold: f64,
    ) -> Self {
        let predicted = true_positives + false_positives;
        let precision = if predicted == 0 {
            0.0
        } else {
            true_positives as f64 / predicted as f64
        };
        Self {
            f1: 2.0 * true_positives as f64 / (predicted + positives) as f64,
            precision,
            recall: true_positives as f64 / positives as f64,
            threshold,
        }
    }
}

/// Computes F1, precision and recall when scores `>= threshold` are predicted positive.
///
/// Scores are compared in `f64`, so a threshold of `0.35` excludes the score `0.35f32`, which
/// is 0.3499999940395355. Needs at least one positive label, because recall is undefined
/// otherwise. Negatives may be absent. An infinite threshold is allowed, and a NaN threshold is
/// an error.
pub fn f1_at(scores: &[f32], labels: &[bool], threshold: f64) -> Result<F1, MetricError> {
    check_scores(scores, labels, "F1")?;
    if threshold.is_nan() {
        return Err(MetricError::NanThreshold);
    }

    let mut positives = 0u64;
    let mut true_positives = 0u64;
    let mut false_positives = 0u64;
    for (&score, &label) in scores.iter().zip(labels) {
        let predicted = f64::from(score) >= threshold;
        positives += u64::from(label);
        true_positives += u64::from(label && predicted);
        false_positives += u64::from(!label && predicted);
    }
    if positives == 0 {
        return Err(MetricError::OneClass {
            metric: "F1",
            missing: LabelClass::Positive,
        });
    }
    Ok(F1::from_counts(
        true_positives,
        false_positives,
        positives,
        threshold,
    ))
}

/// Finds the maximum F1 over all distinct scores used as thresholds, in one sorted pass.
///
/// Among thresholds with exactly the same F1 the lowest one is returned, as `argmax` over
/// scikit-learn's ascending `precision_recall_curve` thresholds does. F1 values are compared
/// as exact fractions. Needs at least one positive label, and negatives may be absent.
pub fn f1_max(scores: &[f32], labels: &[bool]) -> Result<F1, MetricError> {
    let sorted = SortedScores::from_labelled(scores, labels, "F1-max")?;
    sorted.require("F1-max", &[LabelClass::Positive])?;
    let positives = sorted.positives.len() as u64;

    // F1 = 2 tp / (tp + fp + positives), so the best step maximises tp / denominator.
    let mut best: Option<(u64, u64, f32, u64)> = None;
    for step in sorted.sweep() {
        let numerator = step.true_positives;
        let denominator = step.true_positives + step.false_positives + positives;
        let better = match best {
            None => true,
            Some((best_numerator, best_denominator, _, _)) => {
                u128::from(numerator) * u128::from(best_denominator)
                    >= u128::from(best_numerator) * u128::from(denominator)
            }
        };
        if better {
            best = Some((numerator, denominator, step.threshold, step.false_positives));
        }
    }

    let (true_positives, _, threshold, false_positives) =
        best.expect("the sweep yields at least one threshold for non-empty input");
    Ok(F1::from_counts(
        true_positives,
        false_positives,
        positives,
        f64::from(threshold),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::scored_fixture;
    use super::*;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    /// Tries every distinct score with `f1_at` and keeps the best, the lowest on ties.
    fn naive_f1_max(scores: &[f32], labels: &[bool]) -> F1 {
        let mut thresholds: Vec<f32> = scores.to_vec();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let mut best: Option<F1> = None;
        for threshold in thresholds {
            let candidate = f1_at(scores, labels, f64::from(threshold)).unwrap();
            if best.is_none_or(|b| candidate.f1 >= b.f1) {
                best = Some(candidate);
            }
        }
        best.unwrap()
    }

    // Expected values below come from scripts/metrics_reference.py (scikit-learn 1.9.1).

    #[test]
    fn f1_at_textbook_example() {
        let threshold = f64::from(0.35f32);
        let f1 = f1_at(
            &[0.1, 0.4, 0.35, 0.8],
            &[false, false, true, true],
            threshold,
        )
        .unwrap();
        assert_close(f1.f1, 0.8, "F1");
        assert_close(f1.precision, 0.6666666666666666, "precision");
        assert_close(f1.recall, 1.0, "recall");
        assert_eq!(f1.threshold, threshold);
    }

    #[test]
    fn f1_at_compares_in_f64() {
        // 0.35f32 is 0.3499999940395355, below the f64 threshold 0.35, so it is not predicted.
        let f1 = f1_at(&[0.35], &[true], 0.35).unwrap();
        assert_eq!(f1.recall, 0.0);
        let f1 = f1_at(&[0.35], &[true], f64::from(0.35f32)).unwrap();
        assert_eq!(f1.recall, 1.0);
    }

    #[test]
    fn f1_at_tied_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(40, 8, 7);
        let f1 = f1_at(&scores, &labels, 0.0).unwrap();
        assert_close(f1.f1, 0.7368421052631579, "F1");
        assert_close(f1.precision, 0.6363636363636364, "precision");
        assert_close(f1.recall, 0.875, "recall");
    }

    #[test]
    fn f1_at_large_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(3000, 4096, 2024);
        let f1 = f1_at(&scores, &labels, 40.0).unwrap();
        assert_close(f1.f1, 0.5624261520283577, "F1");
        assert_close(f1.precision, 0.7006869479882237, "precision");
        assert_close(f1.recall, 0.4697368421052632, "recall");
    }

    #[test]
    fn f1_at_no_prediction_is_zero() {
        let f1 = f1_at(&[0.1, 0.9], &[true, false], f64::INFINITY).unwrap();
        assert_eq!(f1.f1, 0.0);
        assert_eq!(f1.precision, 0.0);
        assert_eq!(f1.recall, 0.0);
    }

    #[test]
    fn f1_max_textbook_example() {
        let f1 = f1_max(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_close(f1.f1, 0.8, "F1");
        assert_eq!(f1.threshold, f64::from(0.35f32));
    }

    #[test]
    fn f1_max_tied_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(40, 8, 7);
        let f1 = f1_max(&scores, &labels).unwrap();
        assert_close(f1.f1, 0.7368421052631579, "F1");
        assert_eq!(f1.threshold, 0.0);
    }

    #[test]
    fn f1_max_large_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(3000, 4096, 2024);
        let f1 = f1_max(&scores, &labels).unwrap();
        assert_close(f1.f1, 0.6875784190715182, "F1");
        assert_eq!(f1.threshold, -86.0);
        let at_threshold = f1_at(&scores, &labels, f1.threshold).unwrap();
        assert_eq!(at_threshold, f1);
    }

    #[test]
    fn f1_max_ties_pick_lowest_threshold() {
        // Threshold 0.9 gives tp 1, fp 0: F1 = 2/3. Threshold 0.5 gives tp 2, fp 2: F1 = 2/3.
        let scores = [0.9, 0.5, 0.5, 0.5, 0.1];
        let labels = [true, true, false, false, false];
        let f1 = f1_max(&scores, &labels).unwrap();
        assert_close(f1.f1, 2.0 / 3.0, "F1");
        assert_eq!(f1.threshold, f64::from(0.5f32));
    }

    #[test]
    fn f1_accepts_missing_negatives() {
        let f1 = f1_max(&[0.2, 0.7], &[true, true]).unwrap();
        assert_eq!(f1.f1, 1.0);
        assert_eq!(f1.threshold, f64::from(0.2f32));
    }

    #[test]
    fn f1_without_positives_is_error() {
        let expected = |metric| MetricError::OneClass {
            metric,
            missing: LabelClass::Positive,
        };
        let labels = [false, false];
        assert_eq!(f1_at(&[0.1, 0.2], &labels, 0.1), Err(expected("F1")));
        assert_eq!(f1_max(&[0.1, 0.2], &labels), Err(expected("F1-max")));
    }

    #[test]
    fn f1_length_mismatch_is_error() {
        let expected = MetricError::LengthMismatch {
            scores: 1,
            labels: 2,
        };
        assert_eq!(f1_at(&[0.1], &[true, false], 0.5), Err(expected.clone()));
        assert_eq!(f1_max(&[0.1], &[true, false]), Err(expected));
    }

    #[test]
    fn f1_at_nan_threshold_is_error() {
        let error = f1_at(&[0.1], &[true], f64::NAN).unwrap_err();
        assert_eq!(error, MetricError::NanThreshold);
    }

    #[test]
    fn f1_serialises_all_fields() {
        let f1 = F1 {
            f1: 0.5,
            precision: 0.25,
            recall: 1.0,
            threshold: 2.0,
        };
        let json = serde_json::to_string(&f1).unwrap();
        assert_eq!(
            json,
            r#"{"f1":0.5,"precision":0.25,"recall":1.0,"threshold":2.0}"#
        );
        assert_eq!(serde_json::from_str::<F1>(&json).unwrap(), f1);
    }

    proptest::proptest! {
        #[test]
        fn f1_max_equals_best_f1_at(
            samples in proptest::collection::vec((0u8..6, proptest::bool::ANY), 1..40)
        ) {
            let scores: Vec<f32> = samples.iter().map(|&(level, _)| f32::from(level) * 0.25).collect();
            let labels: Vec<bool> = samples.iter().map(|&(_, label)| label).collect();
            proptest::prop_assume!(labels.iter().any(|&l| l));
            let fast = f1_max(&scores, &labels).unwrap();
            let naive = naive_f1_max(&scores, &labels);
            proptest::prop_assert!((fast.f1 - naive.f1).abs() < 1e-12);
            proptest::prop_assert_eq!(fast.threshold, naive.threshold);
        }
    }
}
