//! Suppression of false-alarm regions in an anomaly map, toward the background level.
//!
//! A suppressed region's pixels (its component at `t`, grown by `grow` pixels but never into
//! another candidate) become `b + f * (A - b)` with `f = min(1, (1 - p) * (t - b) / (peak - b))`.
//! The region drops below `t` but never below the background `b`, keeps its internal ordering,
//! and drops deeper the surer the classifier is. Pixels already below `b` are left alone.

use crate::map::AnomalyMap;
use crate::regions::{BBox, Labels, RegionDilation};

/// One region to suppress: its label in `Labels`, its bounding box, its peak score and its
/// false-alarm probability.
#[derive(Debug, Clone, Copy)]
pub struct Suppression {
    pub label: u32,
    pub bbox: BBox,
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

/// Lowers the regions in `suppressions` in place, one after another. `labels` are the
/// components of `map >= t`, and each suppression's `bbox` must be the bounding box of its
/// label there.
pub fn suppress(
    map: &mut AnomalyMap,
    labels: &Labels,
    suppressions: &[Suppression],
    t: f32,
    b: f32,
    grow: usize,
) {
    let mut dilation = RegionDilation::default();
    for s in suppressions {
        let f = scale_factor(s.probability, t, b, s.peak);
        // The region and every pixel within `grow` of it, except the pixels of other
        // candidates.
        dilation.visit_label(labels, s.label, s.bbox, grow, false, |y, x0, x1| {
            let row = y * labels.width;
            for i in row + x0..row + x1 {
                let own = labels.labels[i];
                if own != s.label && own != 0 {
                    continue;
                }
                let v = &mut map.data[i];
                if *v > b {
                    *v = b + f * (*v - b);
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::{label, threshold};
    use proptest::prelude::*;

    /// Bounding box of `label`, found by scanning every pixel.
    fn bounds(labels: &Labels, label: u32) -> BBox {
        let pixels: Vec<(usize, usize)> = (0..labels.height)
            .flat_map(|y| (0..labels.width).map(move |x| (x, y)))
            .filter(|&(x, y)| labels.get(x, y) == label)
            .collect();
        let x0 = pixels.iter().map(|p| p.0).min().unwrap();
        let x1 = pixels.iter().map(|p| p.0).max().unwrap();
        let y0 = pixels.iter().map(|p| p.1).min().unwrap();
        let y1 = pixels.iter().map(|p| p.1).max().unwrap();
        BBox {
            x: x0,
            y: y0,
            width: x1 - x0 + 1,
            height: y1 - y0 + 1,
        }
    }

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
                bbox: bounds(&labels, first),
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

    /// Lowers the regions by testing every pixel of the map against every suppression, with
    /// the Chebyshev distance to the region taken by looking around the pixel.
    fn suppress_by_scanning(
        map: &mut AnomalyMap,
        labels: &Labels,
        suppressions: &[Suppression],
        t: f32,
        b: f32,
        grow: usize,
    ) {
        let (w, h) = (labels.width, labels.height);
        for s in suppressions {
            let f = scale_factor(s.probability, t, b, s.peak);
            for y in 0..h {
                for x in 0..w {
                    let own = labels.get(x, y);
                    let near = (y.saturating_sub(grow)..(y + grow + 1).min(h)).any(|yy| {
                        (x.saturating_sub(grow)..(x + grow + 1).min(w))
                            .any(|xx| labels.get(xx, yy) == s.label)
                    });
                    if own == s.label || (own == 0 && near) {
                        let v = &mut map.data[y * w + x];
                        if *v > b {
                            *v = b + f * (*v - b);
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn suppress_matches_pixel_scan(
            (width, height, scores) in (1usize..24, 1usize..16).prop_flat_map(|(w, h)| {
                (Just(w), Just(h), proptest::collection::vec(0.0f32..2.0, w * h))
            }),
            chosen in proptest::collection::vec(proptest::bool::ANY, 8),
            grow in 0usize..4,
        ) {
            let (t, b) = (1.2, 0.4);
            let map = AnomalyMap::from_vec(width, height, scores);
            let labels = label(&threshold(&map, t));
            let suppressions: Vec<Suppression> = (1..=labels.count)
                .filter(|&l| chosen[l as usize % chosen.len()])
                .map(|l| Suppression {
                    label: l,
                    bbox: bounds(&labels, l),
                    peak: 1.9,
                    probability: 0.5 + 0.05 * f64::from(l % 9),
                })
                .collect();

            let mut fast = map.clone();
            suppress(&mut fast, &labels, &suppressions, t, b, grow);
            let mut plain = map.clone();
            suppress_by_scanning(&mut plain, &labels, &suppressions, t, b, grow);
            prop_assert_eq!(fast, plain);
        }
    }
}
