//! Suppression of false-alarm regions in an anomaly map, toward the background level.
//!
//! A suppressed region's pixels (its component at `t`, grown by `grow` pixels but never into
//! another candidate) become `b + f * (A - b)` with `f = min(1, (1 - p) * (t - b) / (peak - b))`.
//! The region drops below `t` but never below the background `b`, keeps its internal ordering,
//! and drops deeper the surer the classifier is. Pixels already below `b` are left alone.

use crate::map::AnomalyMap;
use crate::regions::Labels;

/// One region to suppress: its label in `Labels`, its peak score and its false-alarm probability.
#[derive(Debug, Clone, Copy)]
pub struct Suppression {
    pub label: u32,
    pub peak: f32,
    pub probability: f64,
}

/// Computes the scale factor `f` for a region with peak `peak` and false-alarm probability `p`.
pub fn scale_factor(p: f64, t: f32, b: f32, peak: f32) -> f32 {
    let span = peak - b;
    if span <= 0.0 {
        return 1.0;
    }
    (((1.0 - p) as f32) * (t - b) / span).clamp(0.0, 1.0)
}

/// Lowers the regions in `suppressions` in place. `labels` are the components of `map >= t`.
pub fn suppress(
    map: &mut AnomalyMap,
    labels: &Labels,
    suppressions: &[Suppression],
    t: f32,
    b: f32,
    grow: usize,
) {
    if suppressions.is_empty() {
        return;
    }
    let (w, h) = (map.width, map.height);
    // Bounding boxes of the suppressed labels, to keep the grown pass local.
    for s in suppressions {
        let f = scale_factor(s.probability, t, b, s.peak);
        let Some((x0, y0, x1, y1)) = label_bounds(labels, s.label) else {
            continue;
        };
        let gx0 = x0.saturating_sub(grow);
        let gy0 = y0.saturating_sub(grow);
        let gx1 = (x1 + grow).min(w - 1);
        let gy1 = (y1 + grow).min(h - 1);

        for y in gy0..=gy1 {
            for x in gx0..=gx1 {
                let own = labels.labels[y * w + x];
                let take = if own == s.label {
                    true
                } else if own == 0 {
                    near_label(labels, s.label, x, y, grow)
                } else {
                    false
                };
                if !take {
                    continue;
                }
                let v = &mut map.data[y * w + x];
                if *v > b {
                    *v = b + f * (*v - b);
                }
            }
        }
    }
}

/// Inclusive bounds `(x0, y0, x1, y1)` of a label, or `None` when absent.
fn label_bounds(labels: &Labels, label: u32) -> Option<(usize, usize, usize, usize)> {
    let w = labels.width;
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for (i, &l) in labels.labels.iter().enumerate() {
        if l != label {
            continue;
        }
        let (x, y) = (i % w, i / w);
        bounds = Some(match bounds {
            None => (x, y, x, y),
            Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
        });
    }
    bounds
}

/// Returns whether a pixel of `label` lies within Chebyshev distance `grow` of `(x, y)`.
fn near_label(labels: &Labels, label: u32, x: usize, y: usize, grow: usize) -> bool {
    let w = labels.width;
    let y0 = y.saturating_sub(grow);
    let y1 = (y + grow).min(labels.height - 1);
    let x0 = x.saturating_sub(grow);
    let x1 = (x + grow).min(w - 1);
    (y0..=y1).any(|yy| labels.labels[yy * w + x0..=yy * w + x1].contains(&label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::{label, threshold};

    #[test]
    fn scale_factor_hand_values() {
        // p = 0.95, t = 1, b = 0, peak = 2: f = 0.05 * 1 / 2 = 0.025.
        assert!((scale_factor(0.95, 1.0, 0.0, 2.0) - 0.025).abs() < 1e-7);
        // A barely-sure classifier never scales up.
        assert_eq!(scale_factor(0.0, 1.0, 0.0, 0.5), 1.0);
    }

    #[test]
    fn suppressed_region_drops_below_t_not_below_b() {
        // Row: background 0.1, a region of peak 2.0, a second candidate right beside it.
        let data = vec![0.1, 0.5, 2.0, 1.5, 0.5, 0.05, 1.2, 0.1];
        let mut map = AnomalyMap::from_vec(8, 1, data.clone());
        let t = 1.0;
        let b = 0.2;
        let labels = label(&threshold(&map, t));
        assert_eq!(labels.count, 2);
        let first = labels.labels[2];
        suppress(
            &mut map,
            &labels,
            &[Suppression {
                label: first,
                peak: 2.0,
                probability: 0.95,
            }],
            t,
            b,
            3,
        );
        let f = scale_factor(0.95, t, b, 2.0);
        assert!((map.data[2] - (b + f * (2.0 - b))).abs() < 1e-6);
        assert!(
            map.data[2] < t && map.data[3] < map.data[2],
            "order kept, below t"
        );
        assert!(
            (map.data[1] - (b + f * (0.5 - b))).abs() < 1e-6,
            "grown ring lowered"
        );
        assert_eq!(map.data[0], 0.1, "below background untouched");
        assert_eq!(map.data[5], 0.05, "below background untouched");
        assert_eq!(map.data[6], 1.2, "other candidate untouched");
    }
}
