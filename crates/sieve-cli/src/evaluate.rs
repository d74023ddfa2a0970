//! Evaluation on a labelled split: baseline and filtered maps of every image, the metrics of
//! both, and how the filter treated candidates on defect-free images and on the ground truth.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use rayon::prelude::*;
use sieve_core::dataset::Sample;
use sieve_core::filter::{FalseAlarmFilter, JudgedCandidate, RecallLoss};
use sieve_core::imageio::{load_mask_for, load_rgb};
use sieve_core::metrics::{aupro, auroc, f1_at, f1_max};
use sieve_core::regions::Attribute;
use sieve_core::{AnomalyMap, Mask};
use sieve_detect::detector::Detector;
use sieve_report::{CandidateRow, ImageRow, MetricSet, TestCandidateCounts};

use crate::progress::Bars;

/// Upper end of the false-positive rate over which AUPRO is integrated.
pub const AUPRO_FPR_LIMIT: f64 = 0.3;

/// One evaluated image.
pub struct ImageResult {
    pub name: String,
    pub path: PathBuf,
    pub baseline: AnomalyMap,
    pub filtered: AnomalyMap,
    pub mask: Mask,
    pub defective: bool,
    /// Every candidate with the filter's verdict and whether it touches the ground truth.
    pub candidates: Vec<(JudgedCandidate, bool)>,
    /// Seconds spent in the detector (backbone and scoring, upsampling, smoothing).
    pub detector_seconds: f64,
    /// Seconds spent in the filter (candidates, descriptors, classifier, suppression).
    pub filter_seconds: f64,
}

impl ImageResult {
    /// Candidates touching the ground truth.
    pub fn gt_candidates(&self) -> impl Iterator<Item = &JudgedCandidate> {
        self.candidates.iter().filter(|(_, t)| *t).map(|(c, _)| c)
    }
}

/// Metrics and candidate counts of a split.
pub struct Evaluation {
    pub baseline: MetricSet,
    pub filtered: MetricSet,
    pub counts: TestCandidateCounts,
    pub rows: Vec<CandidateRow>,
    /// One row per image: scores and verdicts at the image threshold.
    pub image_rows: Vec<ImageRow>,
    pub recall_loss: RecallLoss,
    pub images: usize,
    pub defect_images: usize,
    /// Mean seconds per image in the detector and in the filter, measured per image on one
    /// thread each while images run in parallel.
    pub detector_seconds_per_image: f64,
    pub filter_seconds_per_image: f64,
}

/// Scores and filters one labelled image.
pub fn evaluate_image(
    sample: &Sample,
    detector: &dyn Detector,
    filter: &FalseAlarmFilter,
) -> anyhow::Result<ImageResult> {
    let image = load_rgb(&sample.path)?;
    let (w, h) = (image.width() as usize, image.height() as usize);
    let mask = match &sample.mask {
        Some(path) => load_mask_for(path, &sample.path, w, h)?,
        None => Mask::empty(w, h),
    };
    let start = Instant::now();
    let baseline = detector
        .anomaly_map(&image, None)
        .with_context(|| format!("failed to score {}", sample.path.display()))?;
    let detector_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let filtered = filter.apply(&baseline, &image);
    let filter_seconds = start.elapsed().as_secs_f64();

    let mut touches = vec![false; filtered.candidates.len() + 1];
    for (&label, &m) in filtered.labels.labels.iter().zip(&mask.data) {
        if m && label > 0 {
            touches[label as usize] = true;
        }
    }
    let candidates = filtered
        .candidates
        .into_iter()
        .map(|judged| {
            let touch = touches[judged.candidate.label as usize];
            (judged, touch)
        })
        .collect();
    Ok(ImageResult {
        name: sample.name(),
        path: sample.path.clone(),
        baseline,
        filtered: filtered.map,
        mask,
        defective: sample.is_defective(),
        candidates,
        detector_seconds,
        filter_seconds,
    })
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Scores and filters every sample, in parallel, with a progress bar.
pub fn evaluate_images(
    samples: &[Sample],
    detector: &dyn Detector,
    filter: &FalseAlarmFilter,
    bars: Bars,
    message: &str,
) -> anyhow::Result<Vec<ImageResult>> {
    let bar = bars.bar(samples.len() as u64, message);
    let results: anyhow::Result<Vec<ImageResult>> = samples
        .par_iter()
        .map(|s| {
            let r = evaluate_image(s, detector, filter);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    results
}

/// Computes the metrics of baseline and filtered maps, and the candidate counts.
pub fn summarise(results: &[ImageResult], filter: &FalseAlarmFilter) -> Evaluation {
    let labels: Vec<bool> = results.iter().map(|r| r.defective).collect();
    let t = filter.thresholds;
    let mut sets = Vec::new();
    for filtered in [false, true] {
        let maps: Vec<&AnomalyMap> = results
            .iter()
            .map(|r| if filtered { &r.filtered } else { &r.baseline })
            .collect();
        let masks: Vec<&Mask> = results.iter().map(|r| &r.mask).collect();
        let image_scores: Vec<f32> = maps.iter().map(|m| m.max()).collect();

        let mut set = MetricSet::default();
        set.set("image_auroc", auroc(&image_scores, &labels));
        set.set_f1("image_f1", f1_at(&image_scores, &labels, t.image as f64));
        set.set_f1("image_f1_max", f1_max(&image_scores, &labels));
        set.set("pixel_aupro", aupro(&maps, &masks, AUPRO_FPR_LIMIT));
        {
            let pixel_scores: Vec<f32> = maps.iter().flat_map(|m| m.data.iter().copied()).collect();
            let pixel_labels: Vec<bool> =
                masks.iter().flat_map(|m| m.data.iter().copied()).collect();
            set.set("pixel_auroc", auroc(&pixel_scores, &pixel_labels));
            set.set_f1(
                "pixel_f1",
                f1_at(&pixel_scores, &pixel_labels, t.pixel as f64),
            );
            set.set_f1("pixel_f1_max", f1_max(&pixel_scores, &pixel_labels));
        }
        sets.push(set);
    }
    let filtered = sets.pop().unwrap_or_default();
    let baseline = sets.pop().unwrap_or_default();

    let mut counts = TestCandidateCounts::default();
    let mut rows = Vec::new();
    let mut gt_area = 0.0;
    let mut gt_area_suppressed = 0.0;
    for r in results {
        for (judged, touches) in &r.candidates {
            let suppressed = judged.judgement.suppressed;
            if *touches {
                let area = judged.candidate.descriptor.get(Attribute::Area);
                counts.gt_candidates += 1;
                gt_area += area;
                if suppressed {
                    counts.gt_candidates_suppressed += 1;
                    gt_area_suppressed += area;
                }
            } else if r.defective {
                counts.other_candidates += 1;
                counts.other_candidates_suppressed += usize::from(suppressed);
            } else {
                counts.good_candidates += 1;
                counts.good_candidates_suppressed += usize::from(suppressed);
            }
            rows.push(CandidateRow {
                image: r.name.clone(),
                bbox: judged.candidate.bbox,
                descriptor: judged.candidate.descriptor,
                probability: judged.judgement.probability,
                inside_envelope: judged.judgement.inside_envelope,
                like_defect: judged.judgement.like_defect,
                suppressed,
                touches_defect: *touches,
            });
        }
    }
    let image_rows = results
        .iter()
        .map(|r| {
            let (baseline_score, filtered_score) = (r.baseline.max(), r.filtered.max());
            ImageRow {
                image: r.name.clone(),
                labelled_defective: r.defective,
                baseline_score,
                filtered_score,
                baseline_defective: baseline_score >= t.image,
                filtered_defective: filtered_score >= t.image,
            }
        })
        .collect();
    if counts.gt_candidates > 0 {
        counts.gt_area_share_suppressed = Some(gt_area_suppressed / gt_area);
    }
    let recall_loss = RecallLoss {
        candidates: counts.gt_candidates,
        suppressed: counts.gt_candidates_suppressed,
        share: (counts.gt_candidates > 0)
            .then(|| counts.gt_candidates_suppressed as f64 / counts.gt_candidates as f64),
        area_share: counts.gt_area_share_suppressed,
    };
    Evaluation {
        baseline,
        filtered,
        counts,
        rows,
        image_rows,
        recall_loss,
        images: results.len(),
        defect_images: labels.iter().filter(|&&d| d).count(),
        detector_seconds_per_image: mean(results.iter().map(|r| r.detector_seconds)),
        filter_seconds_per_image: mean(results.iter().map(|r| r.filter_seconds)),
    }
}
