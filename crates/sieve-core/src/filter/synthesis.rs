//! Defect samples with the detector in the loop: paint defects drawn from the prior into
//! defect-free images, score each painted image with a detector that has not seen the source
//! image, and keep the candidates that overlap the painted region.
//!
//! Candidates made this way pass through the same thresholding and descriptor code as real
//! ones, so they look like what the detector really produces on a defect (blurred, rounded),
//! not like the painted shape.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::filter::params::FilterParams;
use crate::imageio::load_rgb;
use crate::map::AnomalyMap;
use crate::prior::Prior;
use crate::regions::{candidates, Candidate};
use crate::synth::{paint, Painted};

/// Error returned by a scoring function; its message is shown to the user.
pub type ScoreError = Box<dyn std::error::Error + Send + Sync>;

/// The defect samples and how painting went.
#[derive(Debug, Clone, Default)]
pub struct SyntheticDefects {
    /// Candidates of training cases.
    pub train: Vec<Candidate>,
    /// Candidates of held-back cases, used only for the safety estimate.
    pub held_back: Vec<Candidate>,
    pub stats: SynthesisStats,
}

/// Counts of painted cases, for the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SynthesisStats {
    pub cases: usize,
    /// Cases with at least one candidate overlapping the painted region.
    pub detected_cases: usize,
    pub held_back_cases: usize,
    pub held_back_detected_cases: usize,
    /// Painted cases the detector missed, divided by all cases: the detector's miss rate on
    /// synthetic defects, not the filter's.
    pub miss_rate: f64,
}

/// Paints cases in batches until at least `params.min_cases` are made and
/// `params.min_held_back_candidates` held-back candidates exist, or `params.max_cases` is
/// reached. Case `i` uses its own generator seeded from `(params.seed, i)`, so the result does
/// not depend on thread scheduling. `score(painted, source_index)` must return the anomaly map
/// of `painted.image` from a detector that has not seen the source image.
pub fn synthesize<F>(
    sources: &[PathBuf],
    prior: &Prior,
    threshold: f32,
    params: &FilterParams,
    score: F,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SyntheticDefects, ScoreError>
where
    F: Fn(&Painted, usize) -> Result<AnomalyMap, ScoreError> + Sync,
{
    let mut out = SyntheticDefects::default();
    if sources.is_empty() {
        return Ok(out);
    }
    let batch = rayon::current_num_threads().max(1) * 4;
    let mut next = 0usize;
    while next < params.max_cases {
        let enough_cases = next >= params.min_cases;
        let enough_held = out.held_back.len() >= params.min_held_back_candidates;
        if enough_cases && enough_held {
            break;
        }
        let end = (next + batch).min(params.max_cases);
        let results: Vec<Result<(bool, Vec<Candidate>), ScoreError>> = (next..end)
            .into_par_iter()
            .map(|case| {
                let result = paint_case(sources, prior, threshold, params, &score, case);
                progress(1);
                result
            })
            .collect();
        for result in results {
            let (held_back, found) = result?;
            out.stats.cases += 1;
            out.stats.held_back_cases += usize::from(held_back);
            if !found.is_empty() {
                out.stats.detected_cases += 1;
                out.stats.held_back_detected_cases += usize::from(held_back);
            }
            if held_back {
                out.held_back.extend(found);
            } else {
                out.train.extend(found);
            }
        }
        next = end;
    }
    out.stats.miss_rate = if out.stats.cases > 0 {
        1.0 - out.stats.detected_cases as f64 / out.stats.cases as f64
    } else {
        0.0
    };
    Ok(out)
}

fn paint_case<F>(
    sources: &[PathBuf],
    prior: &Prior,
    threshold: f32,
    params: &FilterParams,
    score: &F,
    case: usize,
) -> Result<(bool, Vec<Candidate>), ScoreError>
where
    F: Fn(&Painted, usize) -> Result<AnomalyMap, ScoreError> + Sync,
{
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x5EED_CA5E);
    rng.set_stream(case as u64);
    let held_back = rng.gen_bool(params.holdout_share);
    let source = rng.gen_range(0..sources.len());
    let image = load_rgb(&sources[source])?;
    let painted = paint(&image, prior, &mut rng)?;
    let map = score(&painted, source)?;

    let (labels, found) = candidates(&map, &painted.image, threshold, &params.describe);
    let mut overlaps = vec![false; found.len() + 1];
    for (l, &m) in labels.labels.iter().zip(&painted.mask.data) {
        if m && *l > 0 {
            overlaps[*l as usize] = true;
        }
    }
    let kept = found
        .into_iter()
        .filter(|c| overlaps[c.label as usize])
        .collect();
    Ok((held_back, kept))
}
