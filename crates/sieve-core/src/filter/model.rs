//! The fitted false-alarm filter: classifier, envelope and thresholds, applied to anomaly maps.

use image::Rgb32FImage;
use serde::{Deserialize, Serialize};

use crate::filter::envelope::Envelope;
use crate::filter::suppress::{suppress, Suppression};
use crate::filter::thresholds::Thresholds;
use crate::map::AnomalyMap;
use crate::regions::{
    describe_components, label_components_and_copy, Attribute, Candidate, DescribeParams, Labels,
};
use crate::svm::FalseAlarmSvm;

/// The filter's verdict on one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// False-alarm probability from the classifier; `None` when no classifier could be trained.
    pub probability: Option<f64>,
    /// Whether every envelope attribute lies inside the mined false alarms' range.
    pub inside_envelope: bool,
    /// Whether every feature lies inside the range of the synthetic defect candidates, which
    /// makes the candidate ambiguous: it could be a defect as the prior describes them.
    pub like_defect: bool,
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
    /// Returns the filtered image score: the maximum of the filtered map.
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
    /// Feature ranges of the synthetic defect candidates; `None` when switched off or when no
    /// painted defect was detected. A candidate inside them is never suppressed.
    #[serde(default)]
    pub defect_envelope: Option<Envelope>,
    pub thresholds: Thresholds,
    pub p_cut: f64,
    pub grow: usize,
    pub describe: DescribeParams,
    /// The reason no classifier was trained, when `svm` is `None`.
    pub inactive_reason: Option<String>,
}

impl FalseAlarmFilter {
    /// Judges one candidate: suppressed only when the classifier's false-alarm probability is at
    /// least `p_cut`, the candidate lies inside the false-alarm envelope, and it lies outside the
    /// synthetic defects' feature ranges.
    pub fn judge(&self, candidate: &Candidate) -> Judgement {
        let inside_envelope = self
            .envelope
            .as_ref()
            .map(|e| e.contains(&candidate.descriptor))
            .unwrap_or(true);
        let like_defect = self
            .defect_envelope
            .as_ref()
            .map(|e| e.contains(&candidate.descriptor))
            .unwrap_or(false);
        let probability = self
            .svm
            .as_ref()
            .map(|svm| svm.probability(&candidate.descriptor.vector(&self.features)));
        let suppressed =
            inside_envelope && !like_defect && probability.is_some_and(|p| p >= self.p_cut);
        Judgement {
            probability,
            inside_envelope,
            like_defect,
            suppressed,
        }
    }

    /// Finds the candidates of `map` at the pixel threshold, judges them, and lowers the
    /// suppressed ones toward the background level.
    pub fn apply(&self, map: &AnomalyMap, image: &Rgb32FImage) -> Filtered {
        let t = self.thresholds.pixel;
        let (components, mut filtered) = label_components_and_copy(map, t);
        let found = describe_components(&components, map, image, &self.describe);
        let labels = components.labels;
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
                bbox: c.candidate.bbox,
                peak: c.candidate.descriptor.get(Attribute::PeakScore) as f32,
                probability: c.judgement.probability.unwrap_or(0.0),
            })
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{Envelope, ThresholdSource};
    use crate::regions::{BBox, Descriptor};
    use crate::svm::SvmParams;

    fn candidate(area: f64, contrast: f64) -> Candidate {
        let mut descriptor = Descriptor::default();
        descriptor.set(Attribute::Area, area);
        descriptor.set(Attribute::Contrast, contrast);
        Candidate {
            label: 1,
            bbox: BBox {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
            },
            descriptor,
        }
    }

    /// Builds a filter whose classifier has learned that large bright regions are false alarms
    /// and small dark ones are defects.
    fn filter() -> FalseAlarmFilter {
        let features = vec![Attribute::Area, Attribute::Contrast];
        let mut vectors = Vec::new();
        let mut labels = Vec::new();
        for i in 0..20 {
            let jitter = i as f64;
            vectors.push(vec![400.0 + 10.0 * jitter, 0.2 + 0.005 * jitter]);
            labels.push(true);
            vectors.push(vec![20.0 + jitter, -0.2 - 0.005 * jitter]);
            labels.push(false);
        }
        let svm = SvmParams::default()
            .check()
            .unwrap()
            .fit(&vectors, &labels)
            .unwrap();
        FalseAlarmFilter {
            features,
            svm: Some(svm),
            envelope: None,
            defect_envelope: None,
            thresholds: Thresholds {
                pixel: 1.0,
                image: 1.0,
                background: 0.0,
                pixel_quantile: 0.995,
                image_quantile: 0.99,
                source: ThresholdSource::Manual,
            },
            p_cut: 0.9,
            grow: 3,
            describe: DescribeParams::default(),
            inactive_reason: None,
        }
    }

    #[test]
    fn false_alarm_like_candidate_is_suppressed() {
        let judgement = filter().judge(&candidate(450.0, 0.25));
        assert!(judgement.probability.unwrap() > 0.9);
        assert!(judgement.suppressed);
        let defect = filter().judge(&candidate(25.0, -0.21));
        assert!(!defect.suppressed);
    }

    #[test]
    fn defect_envelope_keeps_ambiguous_candidate() {
        let mut guarded = filter();
        let defects: Vec<Descriptor> = [(10.0, -0.3), (500.0, 0.3)]
            .iter()
            .map(|&(area, contrast)| candidate(area, contrast).descriptor)
            .collect();
        guarded.defect_envelope = Envelope::fit(&defects, &guarded.features.clone(), 0.0, 100.0);
        let judgement = guarded.judge(&candidate(450.0, 0.25));
        assert!(judgement.like_defect);
        assert!(!judgement.suppressed);
    }

    #[test]
    fn false_alarm_envelope_keeps_unfamiliar_candidate() {
        let mut guarded = filter();
        let mined = vec![
            candidate(400.0, 0.2).descriptor,
            candidate(600.0, 0.3).descriptor,
        ];
        guarded.envelope = Envelope::fit(&mined, &[Attribute::Area], 0.0, 100.0);
        assert!(guarded.judge(&candidate(450.0, 0.25)).suppressed);
        let unfamiliar = guarded.judge(&candidate(2000.0, 0.25));
        assert!(!unfamiliar.inside_envelope);
        assert!(!unfamiliar.suppressed);
    }
}
