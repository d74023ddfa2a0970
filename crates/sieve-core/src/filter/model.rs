//! The fitted false-alarm filter: classifier, envelope and thresholds, applied to anomaly maps.

use image::Rgb32FImage;
use serde::{Deserialize, Serialize};

use crate::filter::envelope::Envelope;
use crate::filter::suppress::{suppress, Suppression};
use crate::filter::thresholds::Thresholds;
use crate::map::AnomalyMap;
use crate::regions::{candidates, Attribute, Candidate, DescribeParams, Labels};
use crate::svm::FalseAlarmSvm;

/// The filter's verdict on one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// False-alarm probability from the classifier; `None` when no classifier could be trained.
    pub probability: Option<f64>,
    /// Whether every envelope attribute lies inside the mined false alarms' range.
    pub inside_envelope: bool,
    /// Whether the region is suppressed in the filtered map.
    pub suppressed: bool,
}

/// A candidate with the filter's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JudgedCandidate {
    #[serde(flatten)]
    pub candidate: Candidate,
    #[serde(flatten)]
    pub judgement: Judgement,
}

/// The result of filtering one map.
#[derive(Debug, Clone)]
pub struct Filtered {
    pub map: AnomalyMap,
    pub labels: Labels,
    pub candidates: Vec<JudgedCandidate>,
}

impl Filtered {
    /// The filtered image score: the maximum of the filtered map.
    pub fn image_score(&self) -> f32 {
        self.map.max()
    }
}

/// A trained false-alarm filter. It never changes the detector: it only lowers candidate
/// regions that it judges false alarms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FalseAlarmFilter {
    pub features: Vec<Attribute>,
    /// The classifier; `None` when training found too few samples, and then every candidate
    /// is kept.
    pub svm: Option<FalseAlarmSvm>,
    /// The envelope; `None` when switched off or when no false alarm was mined.
    pub envelope: Option<Envelope>,
    pub thresholds: Thresholds,
    pub p_cut: f64,
    pub grow: usize,
    pub describe: DescribeParams,
    /// Why no classifier was trained, when `svm` is `None`.
    pub inactive_reason: Option<String>,
}

impl FalseAlarmFilter {
    /// Judges one candidate: suppressed only when the classifier's false-alarm probability is at
    /// least `p_cut` and the candidate lies inside the envelope.
    pub fn judge(&self, candidate: &Candidate) -> Judgement {
        let inside_envelope = self
            .envelope
            .as_ref()
            .map(|e| e.contains(&candidate.descriptor))
            .unwrap_or(true);
        let probability = self
            .svm
            .as_ref()
            .map(|svm| svm.probability(&candidate.descriptor.vector(&self.features)));
        let suppressed = inside_envelope && probability.is_some_and(|p| p >= self.p_cut);
        Judgement {
            probability,
            inside_envelope,
            suppressed,
        }
    }

    /// Finds the candidates of `map` at the pixel threshold, judges them, and lowers the
    /// suppressed ones toward the background level.
    pub fn apply(&self, map: &AnomalyMap, image: &Rgb32FImage) -> Filtered {
        let t = self.thresholds.pixel;
        let (labels, found) = candidates(map, image, t, &self.describe);
        let judged: Vec<JudgedCandidate> = found
            .into_iter()
            .map(|candidate| {
                let judgement = self.judge(&candidate);
                JudgedCandidate {
                    candidate,
                    judgement,
                }
            })
            .collect();

        let suppressions: Vec<Suppression> = judged
            .iter()
            .filter(|c| c.judgement.suppressed)
            .map(|c| Suppression {
                label: c.candidate.label,
                peak: c.candidate.descriptor.get(Attribute::PeakScore) as f32,
                probability: c.judgement.probability.unwrap_or(0.0),
            })
            .collect();
        let mut filtered = map.clone();
        suppress(
            &mut filtered,
            &labels,
            &suppressions,
            t,
            self.thresholds.background,
            self.grow,
        );

        Filtered {
            map: filtered,
            labels,
            candidates: judged,
        }
    }
}
