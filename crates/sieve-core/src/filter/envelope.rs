//! The false-alarm envelope: per-attribute ranges of the mined false alarms. A candidate with any
//! attribute outside them is unlike every false alarm seen, so the filter never suppresses it,
//! whatever the classifier's probability.

use serde::{Deserialize, Serialize};

use crate::regions::{Attribute, Descriptor};

/// Per-attribute `[low, high]` percentile ranges of the mined false alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub attributes: Vec<Attribute>,
    pub low: Vec<f64>,
    pub high: Vec<f64>,
    /// Lower and upper percentiles the ranges were taken at, in `0..=100`.
    pub percentiles: (f64, f64),
}

impl Envelope {
    /// Takes the `low_pct` and `high_pct` percentiles (linear interpolation, as NumPy's default)
    /// of each attribute over `false_alarms`. Returns `None` for an empty set.
    pub fn fit(
        false_alarms: &[Descriptor],
        attributes: &[Attribute],
        low_pct: f64,
        high_pct: f64,
    ) -> Option<Self> {
        if false_alarms.is_empty() {
            return None;
        }
        let mut low = Vec::with_capacity(attributes.len());
        let mut high = Vec::with_capacity(attributes.len());
        for &attribute in attributes {
            let mut values: Vec<f64> = false_alarms.iter().map(|d| d.get(attribute)).collect();
            values.sort_by(f64::total_cmp);
            low.push(percentile_sorted(&values, low_pct));
            high.push(percentile_sorted(&values, high_pct));
        }
        Some(Self {
            attributes: attributes.to_vec(),
            low,
            high,
            percentiles: (low_pct, high_pct),
        })
    }

    /// Returns whether every attribute of `descriptor` lies inside its range (bounds included).
    pub fn contains(&self, descriptor: &Descriptor) -> bool {
        self.attributes
            .iter()
            .zip(self.low.iter().zip(&self.high))
            .all(|(&a, (&lo, &hi))| {
                let v = descriptor.get(a);
                v >= lo && v <= hi
            })
    }
}

/// Percentile `pct` (0..=100) of sorted, non-empty `values` with linear interpolation.
pub fn percentile_sorted(values: &[f64], pct: f64) -> f64 {
    let n = values.len();
    if n == 1 {
        return values[0];
    }
    let rank = (pct / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let below = rank.floor() as usize;
    let above = (below + 1).min(n - 1);
    let weight = rank - below as f64;
    values[below] * (1.0 - weight) + values[above] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(area: f64, contrast: f64) -> Descriptor {
        let mut d = Descriptor::default();
        d.values[Attribute::Area.index()] = area;
        d.values[Attribute::Contrast.index()] = contrast;
        d
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], 25) == 1.75 and the 99.5th is 3.985.
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((percentile_sorted(&v, 25.0) - 1.75).abs() < 1e-12);
        assert!((percentile_sorted(&v, 99.5) - 3.985).abs() < 1e-12);
    }

    #[test]
    fn envelope_rejects_outside_any_attribute() {
        let mined: Vec<Descriptor> = (0..=100)
            .map(|i| descriptor(100.0 + i as f64, 0.1))
            .collect();
        let env =
            Envelope::fit(&mined, &[Attribute::Area, Attribute::Contrast], 0.5, 99.5).unwrap();
        assert!(env.contains(&descriptor(150.0, 0.1)));
        assert!(!env.contains(&descriptor(20.0, 0.1)), "too small");
        assert!(
            !env.contains(&descriptor(150.0, -0.3)),
            "contrast unlike any false alarm"
        );
        assert!((env.low[0] - 100.5).abs() < 1e-9);
    }

    #[test]
    fn envelope_of_nothing_is_none() {
        assert!(Envelope::fit(&[], &[Attribute::Area], 0.5, 99.5).is_none());
    }
}
