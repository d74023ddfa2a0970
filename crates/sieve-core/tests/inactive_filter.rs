//! Training the filter when the data cannot support a classifier: no false alarm mined, no
//! painted defect detected, or too few of either to cross-validate. The filter must then keep
//! every candidate and give the reason, never guess.

use image::{Rgb, Rgb32FImage};
use sieve_core::filter::{train_filter, FilterParams, ThresholdSource, Thresholds};
use sieve_core::prior::Prior;
use sieve_core::regions::{candidates, Candidate, DescribeParams};
use sieve_core::AnomalyMap;

const PRIOR: &str = r#"
features = ["area", "contrast"]

[[defect]]
name = "pit"
shape = "circle"
size = [3, 6]
contrast = [-0.3, -0.1]
"#;

fn thresholds() -> Thresholds {
    Thresholds {
        pixel: 0.5,
        image: 0.6,
        background: 0.1,
        pixel_quantile: 0.995,
        image_quantile: 0.99,
        source: ThresholdSource::Deployable,
    }
}

/// A 32x32 map at the background level with square spots of the given sides and score 0.9,
/// spread along the diagonal.
fn map_with_spots(sides: &[usize]) -> AnomalyMap {
    let mut map = AnomalyMap::filled(32, 32, 0.1);
    for (k, &side) in sides.iter().enumerate() {
        let start = 1 + 8 * k;
        for y in start..start + side {
            for x in start..start + side {
                map.data[y * 32 + x] = 0.9;
            }
        }
    }
    map
}

fn image() -> Rgb32FImage {
    Rgb32FImage::from_pixel(32, 32, Rgb([0.5, 0.5, 0.5]))
}

/// Candidates of one spot per side, each on a map of its own.
fn spots(sides: &[usize]) -> Vec<Candidate> {
    sides
        .iter()
        .flat_map(|&side| {
            let (_, found) = candidates(
                &map_with_spots(&[side]),
                &image(),
                0.5,
                &DescribeParams::default(),
            );
            found
        })
        .collect()
}

/// Trains on the given samples and checks that the filter keeps every candidate of a test map
/// and leaves the map unchanged. Returns the reason.
fn inactive_reason(false_alarms: &[Candidate], defects: &[Candidate]) -> String {
    let prior: Prior = PRIOR.parse().unwrap();
    let held_back = spots(&[2, 3]);
    let (filter, summary) = train_filter(
        false_alarms,
        defects,
        &held_back,
        &prior,
        thresholds(),
        &FilterParams::default(),
    );
    assert!(filter.svm.is_none());
    assert_eq!(summary.inactive_reason, filter.inactive_reason);
    assert_eq!(summary.c, None);
    assert_eq!(summary.synthetic_recall_loss.suppressed, 0);

    let map = map_with_spots(&[2, 4, 6]);
    let filtered = filter.apply(&map, &image());
    assert_eq!(filtered.candidates.len(), 3);
    for judged in &filtered.candidates {
        assert!(!judged.judgement.suppressed, "{:?}", judged.judgement);
        assert_eq!(judged.judgement.probability, None);
    }
    assert_eq!(filtered.map, map);
    assert_eq!(filtered.image_score(), 0.9);
    summary
        .inactive_reason
        .expect("an inactive filter gives its reason")
}

#[test]
fn no_false_alarm_keeps_every_candidate() {
    let reason = inactive_reason(&[], &spots(&[2, 3, 4, 5, 6, 2, 3]));
    assert!(reason.contains("no false-alarm candidate"), "{reason}");
    assert!(reason.contains("every candidate is kept"), "{reason}");
}

#[test]
fn no_detected_defect_keeps_every_candidate() {
    let reason = inactive_reason(&spots(&[5, 6, 7, 5, 6, 7]), &[]);
    assert!(
        reason.contains("no painted defect was detected"),
        "{reason}"
    );
    assert!(reason.contains("prior"), "{reason}");
}

#[test]
fn too_few_to_cross_validate_keeps_every_candidate() {
    let folds = FilterParams::default().svm.folds;
    let false_alarms = spots(&vec![6; folds - 1]);
    let defects = spots(&vec![2; folds + 3]);
    let reason = inactive_reason(&false_alarms, &defects);
    assert!(
        reason.contains(&format!("{} false alarms", folds - 1)),
        "{reason}"
    );
    assert!(reason.contains("too few samples"), "{reason}");
}
