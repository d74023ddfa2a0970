//! Per-region overlap (PRO) curve and the normalised area under it up to an FPR limit (AUPRO),
//! as defined by the evaluation code of Bergmann et al., "The MVTec Anomaly Detection Dataset:
//! A Comprehensive Real-World Dataset for Unsupervised Anomaly Detection", IJCV 2021.
//!
//! Ground-truth regions are the 8-connected components of each mask. At a threshold, PRO is
//! the mean over all regions of all images of the share of the region's pixels scoring at or
//! above it, and FPR is the share of pixels outside every mask scoring at or above it. Both are
//! evaluated at every distinct score. That reference code rounds FPR to `f32` to save memory,
//! while this module keeps `f64`. The difference in AUPRO is estimated at up to about 1e-7
//! from the `f32` precision, and it is 2e-9 on the test fixture.

use std::ops::ControlFlow;

use serde::Serialize;

use super::sweep::{score_key, SortedScores};
use super::{LabelClass, MetricError};
use crate::pages::advise_huge_pages;
use crate::regions::label;
use crate::{AnomalyMap, Mask};

/// PRO curve points, one per distinct pixel score from high to low, after a first point
/// `(0, 0)` at threshold `f64::INFINITY` (serialised to JSON as `null`).
///
/// Point `i` counts pixels scoring `>= thresholds[i]`. FPR rises from 0 to exactly 1. PRO
/// ends at 1 up to rounding and is clipped to at most 1, as in the MVTec code. JSON cannot
/// read the `null` threshold back into `f64`, so the type is only serialisable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProCurve {
    pub fpr: Vec<f64>,
    pub pro: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// Computes the PRO curve of anomaly `maps` against ground-truth `masks`, paired by index.
///
/// Each map must have the size of its mask, but images may differ in size. Images with an empty
/// mask contribute only defect-free pixels. Needs at least one defect region and one
/// defect-free pixel over all images, and finite scores.
pub fn pro_curve(maps: &[&AnomalyMap], masks: &[&Mask]) -> Result<ProCurve, MetricError> {
    let pixels = LabelledPixels::collect(maps, masks, "PRO curve")?;

    let mut curve = ProCurve {
        fpr: vec![0.0],
        pro: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    pixels.sweep(|threshold, fpr, pro| {
        curve.fpr.push(fpr);
        curve.pro.push(pro);
        curve.thresholds.push(f64::from(threshold));
        ControlFlow::Continue(())
    });
    Ok(curve)
}

/// Computes AUPRO: the area under the PRO curve from FPR 0 to `fpr_limit`, divided by
/// `fpr_limit`, so that a perfect detector scores 1.
///
/// The curve is integrated with the trapezoid rule and interpolated linearly at the limit.
/// `fpr_limit` must lie in `(0, 1]`. 0.3 is the usual choice for MVTec AD. Inputs and errors
/// are those of [`pro_curve`]. Memory is about four bytes per defect-free pixel and eight per
/// defect pixel, twice that while they are sorted, and the curve itself is never stored.
pub fn aupro(maps: &[&AnomalyMap], masks: &[&Mask], fpr_limit: f64) -> Result<f64, MetricError> {
    if !(fpr_limit > 0.0 && fpr_limit <= 1.0) {
        return Err(MetricError::InvalidFprLimit { value: fpr_limit });
    }
    let pixels = LabelledPixels::collect(maps, masks, "AUPRO")?;

    let mut integral = TrapezoidToLimit::new(fpr_limit);
    pixels.sweep(|_, fpr, pro| integral.push(fpr, pro));
    Ok(integral.area / fpr_limit)
}

/// Pixel scores of all images, sorted by class, with the region id of each defect pixel.
struct LabelledPixels {
    /// Defect pixels as `score_key << 32 | region id`.
    sorted: SortedScores<u64>,
    /// `1 / size` of each region, indexed by region id.
    inverse_sizes: Vec<f64>,
}

impl LabelledPixels {
    /// Checks the inputs, labels the regions of every mask and sorts all pixel scores.
    fn collect(
        maps: &[&AnomalyMap],
        masks: &[&Mask],
        metric: &'static str,
    ) -> Result<Self, MetricError> {
        check_images(maps, masks, metric)?;

        let defect_pixels: usize = masks.iter().map(|mask| mask.count()).sum();
        let pixels: usize = masks.iter().map(|mask| mask.data.len()).sum();
        let mut positives: Vec<u64> = Vec::with_capacity(defect_pixels);
        let mut negatives: Vec<u32> = Vec::with_capacity(pixels - defect_pixels);
        advise_huge_pages(&positives);
        advise_huge_pages(&negatives);
        let mut inverse_sizes: Vec<f64> = Vec::new();
        for (map, mask) in maps.iter().zip(masks) {
            let first_region = inverse_sizes.len();
            let labels = label_regions(mask);
            let region_count = labels.iter().copied().max().unwrap_or(0) as usize;
            let mut sizes = vec![0u32; region_count];
            for &label in labels.iter().filter(|&&label| label > 0) {
                sizes[label as usize - 1] += 1;
            }
            inverse_sizes.extend(sizes.iter().map(|&size| 1.0 / f64::from(size)));

            for (&score, &label) in map.data.iter().zip(labels.iter()) {
                let key = score_key(score);
                if label == 0 {
                    negatives.push(key);
                } else {
                    let region = (first_region + label as usize - 1) as u64;
                    positives.push(u64::from(key) << 32 | region);
                }
            }
        }

        let sorted = SortedScores::new(positives, negatives);
        sorted.require(metric, &[LabelClass::Positive, LabelClass::Negative])?;
        Ok(Self {
            sorted,
            inverse_sizes,
        })
    }

    /// Calls `visit(threshold, fpr, pro)` at each distinct score from high to low, until it
    /// returns `Break`.
    fn sweep(&self, mut visit: impl FnMut(f32, f64, f64) -> ControlFlow<()>) {
        let negatives = self.sorted.negatives.len() as f64;
        let regions = self.inverse_sizes.len() as f64;

        // Sum over regions of the covered share of each region.
        let mut covered = 0.0;
        for step in self.sorted.sweep() {
            for &pixel in step.new_positives {
                covered += self.inverse_sizes[(pixel & 0xffff_ffff) as usize];
            }
            let fpr = step.false_positives as f64 / negatives;
            let pro = (covered / regions).min(1.0);
            if visit(step.threshold, fpr, pro).is_break() {
                return;
            }
        }
    }
}

/// Checks counts, sizes and scores of paired maps and masks.
fn check_images(
    maps: &[&AnomalyMap],
    masks: &[&Mask],
    metric: &'static str,
) -> Result<(), MetricError> {
    if maps.len() != masks.len() {
        return Err(MetricError::CountMismatch {
            maps: maps.len(),
            masks: masks.len(),
        });
    }
    if maps.is_empty() {
        return Err(MetricError::Empty { metric });
    }

    for (image, (map, mask)) in maps.iter().zip(masks).enumerate() {
        if (map.width, map.height) != (mask.width, mask.height) {
            return Err(MetricError::ShapeMismatch {
                image,
                map_width: map.width,
                map_height: map.height,
                mask_width: mask.width,
                mask_height: mask.height,
            });
        }
        let expected = mask.width * mask.height;
        for (grid, len) in [("anomaly map", map.data.len()), ("mask", mask.data.len())] {
            if len != expected {
                return Err(MetricError::InvalidGrid {
                    image,
                    grid,
                    len,
                    expected,
                });
            }
        }
        if let Some(index) = map.data.iter().position(|score| !score.is_finite()) {
            return Err(MetricError::NonFiniteMapScore {
                image,
                x: index % map.width,
                y: index / map.width,
                value: map.data[index],
            });
        }
    }
    Ok(())
}

/// Labels the 8-connected defect regions of `mask` as `1..=n` in raster order of their first
/// pixel, and defect-free pixels as 0.
fn label_regions(mask: &Mask) -> Vec<u32> {
    label(mask).labels
}

/// Trapezoid integral of a curve from its first point `(0, 0)` up to `x = limit`, fed one
/// point at a time with non-decreasing `x`.
struct TrapezoidToLimit {
    limit: f64,
    previous: (f64, f64),
    area: f64,
}

impl TrapezoidToLimit {
    fn new(limit: f64) -> Self {
        Self {
            limit,
            previous: (0.0, 0.0),
            area: 0.0,
        }
    }

    /// Adds the segment to `(x, y)`, and returns `Break` once the limit has been passed.
    fn push(&mut self, x: f64, y: f64) -> ControlFlow<()> {
        let (previous_x, previous_y) = self.previous;
        if x <= self.limit {
            self.area += 0.5 * (y + previous_y) * (x - previous_x);
            self.previous = (x, y);
            return ControlFlow::Continue(());
        }

        // The segment crosses the limit: integrate up to a point interpolated on it.
        if previous_x < self.limit {
            let y_at_limit =
                previous_y + (y - previous_y) * (self.limit - previous_x) / (x - previous_x);
            self.area += 0.5 * (y_at_limit + previous_y) * (self.limit - previous_x);
        }
        ControlFlow::Break(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::pro_fixture;
    use super::*;

    fn assert_close(actual: f64, expected: f64, quantity: &str) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "{quantity}: got {actual}, expected {expected}"
        );
    }

    fn map(width: usize, height: usize, scores: &[f32]) -> AnomalyMap {
        AnomalyMap::from_vec(width, height, scores.to_vec())
    }

    fn mask(width: usize, height: usize, pixels: &[u8]) -> Mask {
        Mask {
            width,
            height,
            data: pixels.iter().map(|&p| p == 1).collect(),
        }
    }

    /// Two images by hand.
    ///
    /// Image 0 is 5x1 with scores [0.9, 0.1, 0.6, 0.8, 0.3] and mask [1, 0, 0, 1, 1]: region A
    /// is pixel 0 (size 1), region B is pixels 3 and 4 (size 2). Image 1 is 2x1 with scores
    /// [0.7, 0.3] and an empty mask. So 4 defect-free pixels and 2 regions.
    ///
    /// | threshold | A   | B   | PRO             | false positives | FPR  |
    /// |-----------|-----|-----|-----------------|-----------------|------|
    /// | 0.9       | 1   | 0   | (1 + 0) / 2     | 0               | 0    |
    /// | 0.8       | 1   | 1/2 | 0.75            | 0               | 0    |
    /// | 0.7       | 1   | 1/2 | 0.75            | 1 (image 1)     | 0.25 |
    /// | 0.6       | 1   | 1/2 | 0.75            | 2               | 0.5  |
    /// | 0.3       | 1   | 1   | 1               | 3 (tie, img 1)  | 0.75 |
    /// | 0.1       | 1   | 1   | 1               | 4               | 1    |
    ///
    /// Integrals: to FPR 0.25 the curve is flat at 0.75, area 0.1875, AUPRO 0.75. To 0.6 it is
    /// 0.75 * 0.5 = 0.375 plus the sloped segment from (0.5, 0.75) towards (0.75, 1), which is
    /// 0.85 at 0.6, adding (0.75 + 0.85) / 2 * 0.1 = 0.08, so AUPRO = 0.455 / 0.6 = 0.758333.
    /// To 1 it is 0.375 + (0.75 + 1) / 2 * 0.25 + 0.25 = 0.84375.
    fn hand_case() -> (Vec<AnomalyMap>, Vec<Mask>) {
        let maps = vec![
            map(5, 1, &[0.9, 0.1, 0.6, 0.8, 0.3]),
            map(2, 1, &[0.7, 0.3]),
        ];
        let masks = vec![mask(5, 1, &[1, 0, 0, 1, 1]), mask(2, 1, &[0, 0])];
        (maps, masks)
    }

    fn refs<T>(items: &[T]) -> Vec<&T> {
        items.iter().collect()
    }

    #[test]
    fn pro_curve_hand_case() {
        let (maps, masks) = hand_case();
        let curve = pro_curve(&refs(&maps), &refs(&masks)).unwrap();
        assert_eq!(curve.fpr, vec![0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(curve.pro, vec![0.0, 0.5, 0.75, 0.75, 0.75, 1.0, 1.0]);
        let thresholds: Vec<f64> = [0.9f32, 0.8, 0.7, 0.6, 0.3, 0.1]
            .iter()
            .map(|&t| f64::from(t))
            .collect();
        assert_eq!(curve.thresholds[0], f64::INFINITY);
        assert_eq!(curve.thresholds[1..], thresholds);
    }

    #[test]
    fn aupro_hand_case() {
        let (maps, masks) = hand_case();
        let (maps, masks) = (refs(&maps), refs(&masks));
        assert_close(aupro(&maps, &masks, 0.25).unwrap(), 0.75, "limit 0.25");
        assert_close(aupro(&maps, &masks, 0.6).unwrap(), 0.455 / 0.6, "limit 0.6");
        assert_close(aupro(&maps, &masks, 1.0).unwrap(), 0.84375, "limit 1");
    }

    // Expected values below come from the NumPy/SciPy port of the MVTec evaluation in
    // scripts/metrics_reference.py, which computes FPR in float64 as this module does.

    #[test]
    fn aupro_fixture_matches_reference_port() {
        let (maps, masks) = pro_fixture(99);
        let (maps, masks) = (refs(&maps), refs(&masks));
        let expected = [
            (0.05, 0.5570898425975098),
            (0.3, 0.6541384414153928),
            (1.0, 0.8326965441277704),
        ];
        for (limit, value) in expected {
            let actual = aupro(&maps, &masks, limit).unwrap();
            assert_close(actual, value, &format!("AUPRO to FPR {limit}"));
        }
    }

    #[test]
    fn pro_curve_fixture_matches_reference_port() {
        let (maps, masks) = pro_fixture(99);
        let curve = pro_curve(&refs(&maps), &refs(&masks)).unwrap();
        // The port appends a final (1, 1) point, so it has one point more.
        assert_eq!(curve.fpr.len(), 43);
        let expected = [
            (1, 0.0, 0.05555555555555555),
            (2, 0.0, 0.1388888888888889),
            (10, 0.0, 0.5555555555555555),
            (42, 1.0, 0.9999999999999992),
        ];
        for (i, fpr, pro) in expected {
            assert_close(curve.fpr[i], fpr, &format!("fpr[{i}]"));
            assert_close(curve.pro[i], pro, &format!("pro[{i}]"));
        }
    }

    #[test]
    fn pro_regions_are_eight_connected() {
        // Pixels (0, 0) and (1, 1) touch diagonally and form one region of size 2, and (3, 1) is
        // a second region. Only (0, 0) scores 1, so PRO there is (1/2 + 0) / 2 = 0.25. With
        // 4-connectivity it would be (1 + 0 + 0) / 3.
        let maps = [map(4, 2, &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])];
        let masks = [mask(4, 2, &[1, 0, 0, 0, 0, 1, 0, 1])];
        let curve = pro_curve(&refs(&maps), &refs(&masks)).unwrap();
        assert_eq!(curve.pro, vec![0.0, 0.25, 1.0]);
        assert_eq!(curve.fpr, vec![0.0, 0.0, 1.0]);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn region_labels_match_imageproc(
            (width, pixels) in (0usize..30).prop_flat_map(|w| {
                (Just(w), proptest::collection::vec(0u8..3, w * 7))
            })
        ) {
            use image::GrayImage;
            use imageproc::region_labelling::{connected_components, Connectivity};

            let mask = Mask { width, height: 7, data: pixels.iter().map(|&p| p == 0).collect() };
            let image = GrayImage::from_raw(
                width as u32,
                7,
                mask.data.iter().map(|&defect| u8::from(defect)).collect(),
            )
            .unwrap();
            let expected = connected_components(&image, Connectivity::Eight, image::Luma([0u8]));
            prop_assert_eq!(label_regions(&mask), expected.into_raw());
        }
    }

    #[test]
    fn aupro_without_regions_is_error() {
        let maps = [map(2, 1, &[0.1, 0.2])];
        let masks = [mask(2, 1, &[0, 0])];
        let error = aupro(&refs(&maps), &refs(&masks), 0.3).unwrap_err();
        assert_eq!(
            error,
            MetricError::OneClass {
                metric: "AUPRO",
                missing: LabelClass::Positive
            }
        );
    }

    #[test]
    fn aupro_without_defect_free_pixels_is_error() {
        let maps = [map(2, 1, &[0.1, 0.2])];
        let masks = [mask(2, 1, &[1, 1])];
        let error = aupro(&refs(&maps), &refs(&masks), 0.3).unwrap_err();
        assert_eq!(
            error,
            MetricError::OneClass {
                metric: "AUPRO",
                missing: LabelClass::Negative
            }
        );
    }

    #[test]
    fn aupro_checks_inputs() {
        let maps = [map(2, 1, &[0.1, 0.2])];
        let masks = [mask(2, 1, &[1, 0])];
        let (maps, masks) = (refs(&maps), refs(&masks));

        assert_eq!(
            aupro(&maps, &[], 0.3),
            Err(MetricError::CountMismatch { maps: 1, masks: 0 })
        );
        assert_eq!(
            aupro(&[], &[], 0.3),
            Err(MetricError::Empty { metric: "AUPRO" })
        );
        for limit in [0.0, -0.1, 1.5, f64::NAN] {
            let error = aupro(&maps, &masks, limit).unwrap_err();
            assert!(
                matches!(error, MetricError::InvalidFprLimit { .. }),
                "limit {limit}: {error:?}"
            );
        }

        let tall_mask = mask(1, 2, &[1, 0]);
        assert_eq!(
            aupro(&maps, &[&tall_mask], 0.3),
            Err(MetricError::ShapeMismatch {
                image: 0,
                map_width: 2,
                map_height: 1,
                mask_width: 1,
                mask_height: 2
            })
        );

        let short_map = AnomalyMap {
            width: 2,
            height: 1,
            data: vec![0.1],
        };
        assert_eq!(
            aupro(&[&short_map], &masks, 0.3),
            Err(MetricError::InvalidGrid {
                image: 0,
                grid: "anomaly map",
                len: 1,
                expected: 2
            })
        );

        let nan_map = map(2, 1, &[0.1, f32::NAN]);
        let error = aupro(&[&nan_map], &masks, 0.3).unwrap_err();
        assert!(
            matches!(error, MetricError::NonFiniteMapScore { image: 0, x: 1, y: 0, value } if value.is_nan()),
            "{error:?}"
        );
    }
}
