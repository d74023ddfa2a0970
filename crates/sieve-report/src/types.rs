//! The report's data: metrics, thresholds, filter training, safety, timing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sieve_core::filter::{RecallLoss, SynthesisStats, Thresholds, TrainingSummary};
use sieve_core::metrics::{MetricError, F1};

/// Metrics of one output (baseline or filtered). A metric that is undefined on this data (for
/// example AUROC with one class only) is `None`, with the reason in `undefined`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSet {
    pub image_auroc: Option<f64>,
    pub pixel_auroc: Option<f64>,
    pub pixel_aupro: Option<f64>,
    /// Image F1 at the deployable image threshold.
    pub image_f1: Option<f64>,
    /// Pixel F1 at the deployable pixel threshold.
    pub pixel_f1: Option<f64>,
    /// Best image F1 over all thresholds of the test split (an oracle, for comparison only).
    pub image_f1_max: Option<f64>,
    /// Best pixel F1 over all thresholds of the test split (an oracle, for comparison only).
    pub pixel_f1_max: Option<f64>,
    pub image_f1_detail: Option<F1>,
    pub pixel_f1_detail: Option<F1>,
    pub image_f1_max_detail: Option<F1>,
    pub pixel_f1_max_detail: Option<F1>,
    /// Reasons for metrics that are `None`, keyed by metric name.
    pub undefined: BTreeMap<String, String>,
}

impl MetricSet {
    /// Stores a scalar metric or the reason it is undefined.
    pub fn set(&mut self, name: &str, value: Result<f64, MetricError>) {
        let slot = match name {
            "image_auroc" => &mut self.image_auroc,
            "pixel_auroc" => &mut self.pixel_auroc,
            "pixel_aupro" => &mut self.pixel_aupro,
            _ => panic!("unknown scalar metric {name}"),
        };
        match value {
            Ok(v) => *slot = Some(v),
            Err(e) => {
                *slot = None;
                self.undefined.insert(name.to_string(), e.to_string());
            }
        }
    }

    /// Stores an F1 metric and its detail or the reason it is undefined.
    pub fn set_f1(&mut self, name: &str, value: Result<F1, MetricError>) {
        let (slot, detail) = match name {
            "image_f1" => (&mut self.image_f1, &mut self.image_f1_detail),
            "pixel_f1" => (&mut self.pixel_f1, &mut self.pixel_f1_detail),
            "image_f1_max" => (&mut self.image_f1_max, &mut self.image_f1_max_detail),
            "pixel_f1_max" => (&mut self.pixel_f1_max, &mut self.pixel_f1_max_detail),
            _ => panic!("unknown F1 metric {name}"),
        };
        match value {
            Ok(f1) => {
                *slot = Some(f1.f1);
                *detail = Some(f1);
            }
            Err(e) => {
                *slot = None;
                *detail = None;
                self.undefined.insert(name.to_string(), e.to_string());
            }
        }
    }
}

/// A metric of [`MetricSet`]: its display name, its key in `report.json`, and its getter.
pub type MetricRow = (&'static str, &'static str, fn(&MetricSet) -> Option<f64>);

/// The metrics of a report table, in display order.
pub const METRIC_ROWS: [MetricRow; 7] = [
    ("image AUROC", "image_auroc", |m| m.image_auroc),
    ("pixel AUROC", "pixel_auroc", |m| m.pixel_auroc),
    ("pixel AUPRO (FPR <= 0.3)", "pixel_aupro", |m| m.pixel_aupro),
    ("image F1 at t_img", "image_f1", |m| m.image_f1),
    ("pixel F1 at t", "pixel_f1", |m| m.pixel_f1),
    ("image F1-max (oracle)", "image_f1_max", |m| m.image_f1_max),
    ("pixel F1-max (oracle)", "pixel_f1_max", |m| m.pixel_f1_max),
];

/// Candidate counts on the test split.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestCandidateCounts {
    /// Candidates on defect-free test images, all of them false alarms.
    pub good_candidates: usize,
    pub good_candidates_suppressed: usize,
    /// Candidates on defect test images that touch the ground truth.
    pub gt_candidates: usize,
    pub gt_candidates_suppressed: usize,
    /// Area of the suppressed ground-truth candidates over the area of all of them.
    pub gt_area_share_suppressed: Option<f64>,
    /// Candidates on defect test images that touch no ground truth.
    pub other_candidates: usize,
    pub other_candidates_suppressed: usize,
}

/// How much real-defect signal the filter removes, estimated and measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SafetyReport {
    /// Share of held-back synthetic defect candidates the filter suppresses (label-free).
    pub synthetic_recall_loss: RecallLoss,
    /// The same share on labelled validation defect images, when the data set has them.
    pub validation_recall_loss: Option<RecallLoss>,
    /// The same share measured on the test split's ground truth.
    pub test_recall_loss: Option<RecallLoss>,
    /// Warnings shown to the user.
    pub warnings: Vec<String>,
    #[serde(flatten)]
    pub test: TestCandidateCounts,
    /// Whether the estimate comes from a detector in the loop (`detector`) or from the footprint
    /// model of imported maps (`footprint`, a weaker estimate).
    pub estimate_source: String,
}

/// One candidate of the test split with the filter's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRow {
    /// The image, as `<type>/<file name>`.
    pub image: String,
    pub bbox: sieve_core::regions::BBox,
    pub descriptor: sieve_core::regions::Descriptor,
    pub probability: Option<f64>,
    pub inside_envelope: bool,
    /// Whether the candidate lies within the synthetic defects' feature ranges.
    pub like_defect: bool,
    pub suppressed: bool,
    /// Whether the region touches the ground truth.
    pub touches_defect: bool,
}

/// Wall time of each stage, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub stages: BTreeMap<String, f64>,
    pub total: f64,
    /// Images processed per stage, so that per-image times can be derived.
    pub images: BTreeMap<String, usize>,
    /// Peak resident memory of the process in MiB (Linux `VmHWM`), when known.
    pub peak_memory_mib: Option<f64>,
    /// Mean milliseconds per test image in the detector (backbone, search, upsampling,
    /// smoothing), each image timed on its own thread.
    pub detector_ms_per_image: Option<f64>,
    /// Mean milliseconds per test image in the filter (labelling, descriptors, classifier,
    /// suppression).
    pub filter_ms_per_image: Option<f64>,
}

/// Summary of the fitted detector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetectorSummary {
    pub name: String,
    pub backbone: String,
    pub input: String,
    pub settings: serde_json::Value,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub sieve_version: String,
    pub command: String,
    pub data: String,
    pub prior: String,
    pub detector: DetectorSummary,
    pub test_images: usize,
    pub test_defect_images: usize,
    pub thresholds: Option<Thresholds>,
    pub baseline: MetricSet,
    pub filtered: MetricSet,
    pub filter: TrainingSummary,
    pub synthesis: SynthesisStats,
    pub filter_settings: serde_json::Value,
    pub safety: SafetyReport,
    pub timing: Timing,
    pub model_dir: String,
    pub notes: Vec<String>,
    /// Every candidate of the test split.
    pub candidates: Vec<CandidateRow>,
    /// Every image of the test split with its scores and verdicts.
    #[serde(default)]
    pub images: Vec<ImageRow>,
    /// The figures written beside the report, when any.
    #[serde(default)]
    pub figures: Option<FigureIndex>,
}

/// One image of the test split with its image scores and verdicts at the image threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRow {
    /// The image, as `<type>/<file name>`.
    pub image: String,
    /// Whether the ground truth marks the image defective.
    pub labelled_defective: bool,
    /// Maximum of the baseline map.
    pub baseline_score: f32,
    /// Maximum of the filtered map.
    pub filtered_score: f32,
    /// Whether the baseline score is at or above the image threshold.
    pub baseline_defective: bool,
    /// Whether the filtered score is at or above the image threshold: the deployed verdict.
    pub filtered_defective: bool,
}

/// A figure file, its path relative to the report folder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FigureFile {
    pub title: String,
    pub path: String,
}

/// The figures of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FigureIndex {
    /// Score distributions and ROC and PRO curves.
    pub charts: Vec<FigureFile>,
    /// Comparison figures of test images, titled by image name.
    pub comparisons: Vec<FigureFile>,
    /// Number of test images; `comparisons` covers a sample of them or all.
    pub test_images: usize,
    /// How the images with a comparison figure were chosen.
    pub selection: String,
    /// Charts left out and why.
    pub notes: Vec<String>,
}
