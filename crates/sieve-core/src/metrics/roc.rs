//! ROC curve and the area under it (AUROC), with ties handled as scikit-learn's `roc_curve`
//! and `roc_auc_score` (version 1.9) handle them: one curve point per distinct score, joined by
//! straight lines.

use serde::Serialize;

use super::sweep::SortedScores;
use super::{LabelClass, MetricError};

/// ROC curve points, one per distinct score from high to low, after a first point `(0, 0)`.
///
/// `thresholds[0]` is `f64::INFINITY` (serialised to JSON as `null`) as in scikit-learn 1.3
/// and later. Every other threshold is a score, and point `i` counts scores `>= thresholds[i]`
/// as positive. No point is dropped, as with scikit-learn's `drop_intermediate=False`. JSON
/// cannot read the `null` threshold back into `f64`, so the type is only serialisable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// Computes the ROC curve of `scores` against `labels` (`true` means anomalous).
///
/// Needs both classes and finite scores. Memory is four bytes per score on top of the input
/// and the curve, and eight while the scores are sorted.
pub fn roc_curve(scores: &[f32], labels: &[bool]) -> Result<RocCurve, MetricError> {
    let sorted = SortedScores::from_labelled(scores, labels, "ROC curve")?;
    sorted.require("ROC curve", &[LabelClass::Positive, LabelClass::Negative])?;
    let positives = sorted.positives.len() as f64;
    let negatives = sorted.negatives.len() as f64;

    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    for step in sorted.sweep() {
        curve.fpr.push(step.false_positives as f64 / negatives);
        curve.tpr.push(step.true_positives as f64 / positives);
        curve.thresholds.push(f64::from(step.threshold));
    }
    Ok(curve)
}

/// Computes the area under the ROC curve of `scores` against `labels` (`true` means anomalous).
///
/// The area is the Mann-Whitney U statistic: the share of positive-negative pairs in which the
/// positive scores higher, where a tie counts one half. This equals the trapezoid area under
/// the curve that [`roc_curve`] returns. It is counted in integers, so the only rounding is the
/// final division. Needs both classes and finite scores. Memory is eight bytes per score on top
/// of the input while the scores are sorted (400 MB for 50 million scores).
pub fn auroc(scores: &[f32], labels: &[bool]) -> Result<f64, MetricError> {
    let sorted = SortedScores::from_labelled(scores, labels, "AUROC")?;
    sorted.require("AUROC", &[LabelClass::Positive, LabelClass::Negative])?;

    let doubled_u = doubled_mann_whitney_u(&sorted.positives, &sorted.negatives);
    let pairs = sorted.positives.len() as f64 * sorted.negatives.len() as f64;
    Ok(doubled_u as f64 / (2.0 * pairs))
}

/// Returns twice the Mann-Whitney U statistic of two ascending key lists: the sum over
/// positives of twice the negatives below them plus the negatives equal to them.
fn doubled_mann_whitney_u(positives: &[u32], negatives: &[u32]) -> u128 {
    let mut doubled_u: u128 = 0;
    let mut below = 0;
    let mut group_start = 0;
    while group_start < positives.len() {
        let key = positives[group_start];
        let group_end = group_start
            + positives[group_start..]
                .iter()
                .take_while(|&&p| p == key)
                .count();

        // Negatives are ascending, so the count below only grows from one group to the next.
        below += negatives[below..].iter().take_while(|&&n| n < key).count();
        let equal = negatives[below..].iter().take_while(|&&n| n == key).count();
        let per_positive = 2 * below as u128 + equal as u128;
        doubled_u += per_positive * (group_end - group_start) as u128;
        group_start = group_end;
    }
    doubled_u
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

    /// Counts positive-negative pairs ordered correctly, ties as one half.
    fn naive_auroc(scores: &[f32], labels: &[bool]) -> f64 {
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for (i, &positive_score) in scores.iter().enumerate() {
            for (j, &negative_score) in scores.iter().enumerate() {
                if !labels[i] || labels[j] {
                    continue;
                }
                pairs += 1.0;
                if positive_score > negative_score {
                    wins += 1.0;
                } else if positive_score == negative_score {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    /// Computes AUROC as the trapezoid area under the ROC curve, one step per distinct score.
    fn trapezoid_auroc(scores: &[f32], labels: &[bool]) -> f64 {
        let sorted = SortedScores::from_labelled(scores, labels, "AUROC").unwrap();
        let mut doubled_area: u128 = 0;
        let mut previous_tp: u64 = 0;
        let mut previous_fp: u64 = 0;
        for step in sorted.sweep() {
            let width = u128::from(step.false_positives - previous_fp);
            doubled_area += width * u128::from(step.true_positives + previous_tp);
            previous_tp = step.true_positives;
            previous_fp = step.false_positives;
        }
        let pairs = sorted.positives.len() as f64 * sorted.negatives.len() as f64;
        doubled_area as f64 / (2.0 * pairs)
    }

    // Expected values below come from scripts/metrics_reference.py (scikit-learn 1.9.1).

    #[test]
    fn auroc_textbook_example() {
        let value = auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_close(value, 0.75, "AUROC");
    }

    #[test]
    fn auroc_all_tied_is_half() {
        let value = auroc(&[0.5; 4], &[false, true, false, true]).unwrap();
        assert_close(value, 0.5, "AUROC");
    }

    #[test]
    fn auroc_tied_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(40, 8, 7);
        assert_close(
            auroc(&scores, &labels).unwrap(),
            0.7460937499999999,
            "AUROC",
        );
    }

    #[test]
    fn auroc_large_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(3000, 4096, 2024);
        assert_eq!(labels.iter().filter(|&&l| l).count(), 1520);
        assert_close(
            auroc(&scores, &labels).unwrap(),
            0.6861364242532005,
            "AUROC",
        );
    }

    #[test]
    fn auroc_treats_signed_zeros_as_tie() {
        let value = auroc(&[-0.0, 0.0], &[true, false]).unwrap();
        assert_close(value, 0.5, "AUROC");
    }

    #[test]
    fn auroc_inverted_scores_give_zero() {
        let value = auroc(&[0.9, 0.1], &[false, true]).unwrap();
        assert_close(value, 0.0, "AUROC");
    }

    #[test]
    fn roc_curve_textbook_points() {
        let curve = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert_eq!(curve.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(curve.tpr, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        let expected_thresholds = [f64::INFINITY, 0.800000011920929, 0.4000000059604645];
        assert_eq!(curve.thresholds[..3], expected_thresholds);
        assert_eq!(
            curve.thresholds[3..],
            [0.3499999940395355, 0.10000000149011612]
        );
    }

    #[test]
    fn roc_curve_tied_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(40, 8, 7);
        let curve = roc_curve(&scores, &labels).unwrap();
        let expected_fpr = [
            0.0,
            0.0,
            0.20833333333333334,
            0.2916666666666667,
            0.3333333333333333,
            0.4166666666666667,
            0.5833333333333334,
            0.8333333333333334,
            1.0,
        ];
        let expected_tpr = [0.0, 0.25, 0.4375, 0.5, 0.875, 0.875, 0.875, 0.9375, 1.0];
        let expected_thresholds = [
            f64::INFINITY,
            0.1875,
            0.125,
            0.0625,
            0.0,
            -0.0625,
            -0.125,
            -0.1875,
            -0.25,
        ];
        assert_eq!(curve.fpr.len(), 9);
        for i in 0..9 {
            assert_close(curve.fpr[i], expected_fpr[i], &format!("fpr[{i}]"));
            assert_close(curve.tpr[i], expected_tpr[i], &format!("tpr[{i}]"));
            assert_eq!(
                curve.thresholds[i], expected_thresholds[i],
                "threshold[{i}]"
            );
        }
    }

    #[test]
    fn roc_curve_large_fixture_matches_sklearn() {
        let (scores, labels) = scored_fixture(3000, 4096, 2024);
        let curve = roc_curve(&scores, &labels).unwrap();
        assert_eq!(curve.fpr.len(), 2111);
        let expected = [
            (1, 0.0, 0.0006578947368421052, 127.75),
            (2, 0.0006756756756756757, 0.0006578947368421052, 127.6875),
            (1055, 0.3601351351351351, 0.6401315789473684, -5.25),
            (2110, 1.0, 1.0, -127.9375),
        ];
        for (i, fpr, tpr, threshold) in expected {
            assert_close(curve.fpr[i], fpr, &format!("fpr[{i}]"));
            assert_close(curve.tpr[i], tpr, &format!("tpr[{i}]"));
            assert_eq!(curve.thresholds[i], threshold, "threshold[{i}]");
        }
    }

    #[test]
    fn auroc_one_class_names_missing_class() {
        let error = auroc(&[0.1, 0.2], &[true, true]).unwrap_err();
        assert_eq!(
            error,
            MetricError::OneClass {
                metric: "AUROC",
                missing: LabelClass::Negative
            }
        );
        let error = roc_curve(&[0.1, 0.2], &[false, false]).unwrap_err();
        assert_eq!(
            error,
            MetricError::OneClass {
                metric: "ROC curve",
                missing: LabelClass::Positive
            }
        );
    }

    #[test]
    fn auroc_length_mismatch_reports_both() {
        let error = auroc(&[0.1, 0.2, 0.3], &[true, false]).unwrap_err();
        assert_eq!(
            error,
            MetricError::LengthMismatch {
                scores: 3,
                labels: 2
            }
        );
    }

    #[test]
    fn auroc_empty_input_is_error() {
        let error = auroc(&[], &[]).unwrap_err();
        assert_eq!(error, MetricError::Empty { metric: "AUROC" });
    }

    #[test]
    fn auroc_non_finite_score_reports_index() {
        let error = auroc(&[0.1, f32::NAN, 0.3], &[true, false, true]).unwrap_err();
        assert!(
            matches!(error, MetricError::NonFiniteScore { index: 1, value } if value.is_nan()),
            "{error:?}"
        );
        let error = auroc(&[0.1, f32::INFINITY], &[true, false]).unwrap_err();
        assert_eq!(
            error,
            MetricError::NonFiniteScore {
                index: 1,
                value: f32::INFINITY
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn auroc_equals_pairwise_count(
            samples in proptest::collection::vec((0u8..6, proptest::bool::ANY), 2..40)
        ) {
            let scores: Vec<f32> = samples.iter().map(|&(level, _)| f32::from(level) * 0.25).collect();
            let labels: Vec<bool> = samples.iter().map(|&(_, label)| label).collect();
            proptest::prop_assume!(labels.iter().any(|&l| l) && labels.iter().any(|&l| !l));
            let value = auroc(&scores, &labels).unwrap();
            proptest::prop_assert!((value - naive_auroc(&scores, &labels)).abs() < 1e-12);
        }

        #[test]
        fn auroc_equals_trapezoid_area(
            samples in proptest::collection::vec((0u16..400, proptest::bool::ANY), 2..2000)
        ) {
            let scores: Vec<f32> = samples.iter().map(|&(level, _)| f32::from(level) - 200.0).collect();
            let labels: Vec<bool> = samples.iter().map(|&(_, label)| label).collect();
            proptest::prop_assume!(labels.iter().any(|&l| l) && labels.iter().any(|&l| !l));
            proptest::prop_assert_eq!(auroc(&scores, &labels).unwrap(), trapezoid_auroc(&scores, &labels));
        }
    }
}
