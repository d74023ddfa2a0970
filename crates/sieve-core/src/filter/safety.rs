//! The label-free safety estimate: the share of held-back synthetic defect candidates that the
//! filter would suppress, by count and weighted by area.

use serde::{Deserialize, Serialize};

use crate::filter::model::FalseAlarmFilter;
use crate::regions::{Attribute, Candidate};

/// Share of the candidates on real or synthetic defects that the filter suppresses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecallLoss {
    pub candidates: usize,
    pub suppressed: usize,
    /// `suppressed / candidates`; `None` when there is no candidate.
    pub share: Option<f64>,
    /// Suppressed area over total area of the candidates; `None` when there is no candidate.
    pub area_share: Option<f64>,
}

/// Share of suppressed candidates above which a model carries a safety warning.
pub const WARNING_SHARE: f64 = 0.05;

impl RecallLoss {
    /// Measures the loss on candidates known to lie on defects.
    pub fn measure<'a>(
        filter: &FalseAlarmFilter,
        defects: impl IntoIterator<Item = &'a Candidate>,
    ) -> Self {
        let mut out = RecallLoss::default();
        let mut area = 0.0;
        let mut area_suppressed = 0.0;
        for candidate in defects {
            let a = candidate.descriptor.get(Attribute::Area);
            out.candidates += 1;
            area += a;
            if filter.judge(candidate).suppressed {
                out.suppressed += 1;
                area_suppressed += a;
            }
        }
        if out.candidates > 0 {
            out.share = Some(out.suppressed as f64 / out.candidates as f64);
            out.area_share = Some(area_suppressed / area.max(f64::MIN_POSITIVE));
        }
        out
    }

    /// Returns whether either share exceeds [`WARNING_SHARE`].
    pub fn warns(&self) -> bool {
        self.share.is_some_and(|s| s > WARNING_SHARE)
            || self.area_share.is_some_and(|s| s > WARNING_SHARE)
    }
}
