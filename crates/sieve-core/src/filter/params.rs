//! Settings of the false-alarm filter, with their defaults and checks.

use serde::{Deserialize, Serialize};

use crate::regions::DescribeParams;
use crate::svm::SvmParams;

/// Unchecked filter settings; [`FilterParams::check`] validates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterParams {
    /// Smallest false-alarm probability at which a candidate is suppressed. High by default so
    /// that only candidates the classifier is sure of are touched.
    pub p_cut: f64,
    /// Largest share of held-back synthetic defect candidates the filter may suppress, by count
    /// and by area. When the share at `p_cut` is larger, the cut is raised until it fits; it is
    /// never lowered. `None` switches the brake off. The default is a fifth of the 5 % warning
    /// level because the synthetic estimate is known to read below the real loss.
    pub recall_loss_budget: Option<f64>,
    /// Pixels by which a suppressed region grows beyond its component at `t` (never into another
    /// candidate), so the smoothed shoulder of the region is lowered too.
    pub grow: usize,
    /// Whether the false-alarm envelope guards suppression (a candidate unlike every mined false
    /// alarm is never suppressed).
    pub envelope: bool,
    /// Whether a candidate whose features all lie within the range of the synthetic defect
    /// candidates is kept whatever its false-alarm probability. Such a candidate could be a defect as the
    /// prior describes them, and the filter leaves ambiguous candidates alone.
    pub defect_envelope: bool,
    /// Lower and upper percentiles (0..=100) of the mined false alarms that bound the
    /// false-alarm envelope. Trimming the extremes narrows where suppression may happen.
    pub envelope_percentiles: (f64, f64),
    /// Lower and upper percentiles (0..=100) of the synthetic defect candidates that bound the
    /// defect range. The default takes the whole range: this guard protects candidates, so
    /// trimming its extremes would leave the least typical painted defects unprotected (with
    /// eight attributes, 0.5-99.5 % trimming leaves several percent of them outside).
    pub defect_envelope_percentiles: (f64, f64),
    /// Share of painted cases held back from training to estimate the synthetic recall loss.
    pub holdout_share: f64,
    /// Painted cases made at least.
    pub min_cases: usize,
    /// Painted cases made at most, even when too few held-back candidates were detected.
    pub max_cases: usize,
    /// Held-back candidates wanted before painting stops (after `min_cases`). With 200, the
    /// 1 % recall-loss budget allows two suppressed candidates, so the brake does not hang on a
    /// single candidate.
    pub min_held_back_candidates: usize,
    /// Largest number of training samples per class after balancing.
    pub max_per_class: usize,
    /// Seed of every random draw of the filter.
    pub seed: u64,
    pub svm: SvmParams,
    pub describe: DescribeParams,
}

impl Default for FilterParams {
    fn default() -> Self {
        Self {
            p_cut: 0.9,
            recall_loss_budget: Some(0.01),
            grow: 3,
            envelope: true,
            defect_envelope: true,
            envelope_percentiles: (0.5, 99.5),
            defect_envelope_percentiles: (0.0, 100.0),
            holdout_share: 0.2,
            min_cases: 300,
            max_cases: 1500,
            min_held_back_candidates: 200,
            max_per_class: 1000,
            seed: 0,
            // C above 100 rarely wins on overlapping classes and makes the solver slow there.
            svm: SvmParams {
                c_grid: vec![0.1, 1.0, 10.0, 100.0],
                ..SvmParams::default()
            },
            describe: DescribeParams::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FilterParamsError {
    #[error("p_cut = {0} is outside 0..=1; a false-alarm probability cut such as 0.9 is expected")]
    PCut(f64),
    #[error("recall_loss_budget = {0} is outside 0..=1; a share such as 0.01 is expected")]
    Budget(f64),
    #[error("holdout_share = {0} must be in 0..1 (exclusive); 0.2 holds a fifth of the painted cases back")]
    Holdout(f64),
    #[error("envelope percentiles ({0}, {1}) must satisfy 0 <= low < high <= 100, for example (0.5, 99.5)")]
    Percentiles(f64, f64),
    #[error("min_cases = {min} is larger than max_cases = {max}; raise max_cases")]
    Cases { min: usize, max: usize },
    #[error("max_per_class = {0} is too small to cross-validate; use at least 10")]
    PerClass(usize),
}

impl FilterParams {
    /// Checks every rule, returning the first broken one.
    pub fn check(self) -> Result<Self, FilterParamsError> {
        if !(0.0..=1.0).contains(&self.p_cut) {
            return Err(FilterParamsError::PCut(self.p_cut));
        }
        if let Some(budget) = self.recall_loss_budget {
            if !(0.0..=1.0).contains(&budget) {
                return Err(FilterParamsError::Budget(budget));
            }
        }
        if !(self.holdout_share > 0.0 && self.holdout_share < 1.0) {
            return Err(FilterParamsError::Holdout(self.holdout_share));
        }
        for (lo, hi) in [self.envelope_percentiles, self.defect_envelope_percentiles] {
            if !(0.0 <= lo && lo < hi && hi <= 100.0) {
                return Err(FilterParamsError::Percentiles(lo, hi));
            }
        }
        if self.min_cases > self.max_cases {
            return Err(FilterParamsError::Cases {
                min: self.min_cases,
                max: self.max_cases,
            });
        }
        if self.max_per_class < 10 {
            return Err(FilterParamsError::PerClass(self.max_per_class));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_check() {
        assert!(FilterParams::default().check().is_ok());
    }

    #[test]
    fn out_of_range_p_cut_is_rejected() {
        let p = FilterParams {
            p_cut: 1.5,
            ..Default::default()
        };
        assert_eq!(p.check().unwrap_err(), FilterParamsError::PCut(1.5));
    }
}
