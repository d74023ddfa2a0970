//! Computing the descriptor of every labelled region: one pass over the labels for all
//! attributes, plus one local pass per region for the ring that `contrast` compares against.
//!
//! The second-moment attributes follow scikit-image 0.26 `regionprops`: `major_axis` and
//! `minor_axis` are `4 * sqrt(eigenvalue)` of the region's central second-moment covariance,
//! and `orientation` is `0.5 * atan2(2 * cov_xy, var_y - var_x)`, the angle from the row axis
//! (pointing down) to the major axis, positive towards +x.

use std::f64::consts::FRAC_PI_4;

use image::Rgb32FImage;
use serde::{Deserialize, Serialize};

use super::attribute::Attribute;
use super::descriptor::{BBox, Candidate, Descriptor};
use super::dilation::RegionDilation;
use super::label::{label_components, Components, Labels, Run};
use crate::imageio::luma;
use crate::map::AnomalyMap;

/// Settings of [`describe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DescribeParams {
    /// Width in pixels of the ring whose mean luma `contrast` subtracts from the region's. The
    /// ring contains the pixels outside the region at Chebyshev distance `1..=ring_width`.
    pub ring_width: usize,
}

impl Default for DescribeParams {
    fn default() -> Self {
        Self { ring_width: 5 }
    }
}

/// Running sums over the pixels of one region.
#[derive(Debug, Clone)]
struct RegionSums {
    area: u64,
    min_x: usize,
    max_x: usize,
    min_y: usize,
    max_y: usize,
    sum_x: u64,
    sum_y: u64,
    sum_xx: u64,
    sum_yy: u64,
    sum_xy: u64,
    peak_score: f32,
    sum_score: f64,
    sum_rgb: [f64; 3],
    sum_luma: f64,
}

impl Default for RegionSums {
    fn default() -> Self {
        Self {
            area: 0,
            min_x: usize::MAX,
            max_x: 0,
            min_y: usize::MAX,
            max_y: 0,
            sum_x: 0,
            sum_y: 0,
            sum_xx: 0,
            sum_yy: 0,
            sum_xy: 0,
            peak_score: f32::NEG_INFINITY,
            sum_score: 0.0,
            sum_rgb: [0.0; 3],
            sum_luma: 0.0,
        }
    }
}

/// Describes every labelled region: one candidate per label in `1..=labels.count` that has
/// pixels, in label order.
///
/// `map` supplies `peak_score` and `mean_score`, and `image` the colour attributes and
/// `contrast`. The ring that `contrast` compares against contains every pixel outside the
/// region within `params.ring_width`, pixels of other regions included, clipped to the image.
/// When the ring is empty, `contrast` is 0.
///
/// # Panics
/// Panics when `map` or `image` differs in size from `labels`, or when a label exceeds
/// `labels.count`.
pub fn describe(
    labels: &Labels,
    map: &AnomalyMap,
    image: &Rgb32FImage,
    params: &DescribeParams,
) -> Vec<Candidate> {
    describe_runs(labels, &labels.runs(), map, image, params)
}

/// Describes the regions of `components` as [`describe`] does, reading their pixels from the
/// runs instead of scanning every label.
///
/// # Panics
/// As [`describe`].
pub fn describe_components(
    components: &Components,
    map: &AnomalyMap,
    image: &Rgb32FImage,
    params: &DescribeParams,
) -> Vec<Candidate> {
    describe_runs(&components.labels, &components.runs, map, image, params)
}

/// Describes the regions of `labels`, whose labelled pixels `runs` lists in raster order.
fn describe_runs(
    labels: &Labels,
    runs: &[Run],
    map: &AnomalyMap,
    image: &Rgb32FImage,
    params: &DescribeParams,
) -> Vec<Candidate> {
    let (width, height) = (labels.width, labels.height);
    assert_eq!(
        (map.width, map.height),
        (width, height),
        "anomaly map is {}x{} but the labels are {width}x{height}; label the map itself",
        map.width,
        map.height
    );
    assert_eq!(
        (image.width() as usize, image.height() as usize),
        (width, height),
        "image is {}x{} but the labels are {width}x{height}; resize the image to the map first",
        image.width(),
        image.height()
    );

    let mut sums = vec![RegionSums::default(); labels.count as usize];
    let pixels = image.as_raw();

    // Runs in raster order visit each region's pixels in raster order, so the floating-point
    // sums are the same as in a pixel-by-pixel scan.
    for run in runs {
        let l = run.label;
        let s = sums
            .get_mut((l as usize).wrapping_sub(1))
            .unwrap_or_else(|| {
                panic!(
                    "label {l} at ({}, {}) exceeds the label count {}",
                    run.x0, run.y, labels.count
                )
            });
        s.add_run_geometry(run.y, run.x0, run.x1);
        let start = run.y * width;
        for i in start + run.x0..start + run.x1 {
            s.add_pixel_values(map.data[i], &pixels[3 * i..3 * i + 3]);
        }
    }

    // The runs of each region, grouped by label, in raster order within each region.
    let mut first_run = vec![0usize; sums.len() + 1];
    for run in runs {
        first_run[run.label as usize] += 1;
    }
    for k in 1..first_run.len() {
        first_run[k] += first_run[k - 1];
    }
    let mut grouped = runs.to_vec();
    let mut next = first_run.clone();
    for run in runs {
        let k = run.label as usize - 1;
        grouped[next[k]] = *run;
        next[k] += 1;
    }

    let mut dilation = RegionDilation::default();
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.area > 0)
        .map(|(k, s)| {
            let label = k as u32 + 1;
            let bbox = BBox {
                x: s.min_x,
                y: s.min_y,
                width: s.max_x - s.min_x + 1,
                height: s.max_y - s.min_y + 1,
            };
            let mut descriptor = region_descriptor(s, bbox, width, height);
            let inside_luma = descriptor.get(Attribute::MeanLuma);
            let region_runs = &grouped[first_run[k]..first_run[k + 1]];
            let contrast = ring_mean_luma(region_runs, image, params.ring_width, &mut dilation)
                .map_or(0.0, |ring| inside_luma - ring);
            descriptor.set(Attribute::Contrast, contrast);
            Candidate {
                label,
                bbox,
                descriptor,
            }
        })
        .collect()
}

/// Thresholds `map` at `t` (a pixel is on when its score is at least `t`), labels the
/// 8-connected components and describes them.
///
/// ```
/// use image::Rgb32FImage;
/// use sieve_core::regions::{candidates, Attribute, DescribeParams};
/// use sieve_core::AnomalyMap;
///
/// let map = AnomalyMap::from_vec(6, 4, vec![
///     0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
///     0.0, 0.9, 0.8, 0.7, 0.0, 0.0,
///     0.0, 0.8, 0.6, 0.5, 0.0, 0.0,
///     0.0, 0.0, 0.0, 0.0, 0.0, 0.9,
/// ]);
/// let image = Rgb32FImage::from_pixel(6, 4, image::Rgb([0.5, 0.5, 0.5]));
/// let (labels, found) = candidates(&map, &image, 0.5, &DescribeParams::default());
///
/// assert_eq!(labels.count, 2);
/// let block = &found[0].descriptor;
/// assert_eq!(block.get(Attribute::Area), 6.0);
/// assert_eq!(block.get(Attribute::Aspect), 1.5);
/// assert_eq!(block.get(Attribute::PeakScore), 0.9f32 as f64);
/// // The centroid is pixel (2, 1.5), whose centre lies at (2.5 / 6, 2 / 4).
/// assert!((block.get(Attribute::CenterX) - 2.5 / 6.0).abs() < 1e-12);
/// assert!((block.get(Attribute::CenterY) - 0.5).abs() < 1e-12);
/// ```
pub fn candidates(
    map: &AnomalyMap,
    image: &Rgb32FImage,
    t: f32,
    params: &DescribeParams,
) -> (Labels, Vec<Candidate>) {
    let components = label_components(map, t);
    let found = describe_components(&components, map, image, params);
    (components.labels, found)
}

impl RegionSums {
    /// Adds the coordinates of the pixels `x0..x1` of row `y`, in closed form.
    fn add_run_geometry(&mut self, y: usize, x0: usize, x1: usize) {
        let (n, yu) = ((x1 - x0) as u64, y as u64);
        let sum_x = sum_below(x1) - sum_below(x0);
        self.area += n;
        self.min_x = self.min_x.min(x0);
        self.max_x = self.max_x.max(x1 - 1);
        self.min_y = self.min_y.min(y);
        self.max_y = self.max_y.max(y);
        self.sum_x += sum_x;
        self.sum_y += n * yu;
        self.sum_xx += sum_of_squares_below(x1) - sum_of_squares_below(x0);
        self.sum_yy += n * yu * yu;
        self.sum_xy += sum_x * yu;
    }

    /// Adds the score and colour of one pixel.
    fn add_pixel_values(&mut self, score: f32, rgb: &[f32]) {
        self.peak_score = self.peak_score.max(score);
        self.sum_score += score as f64;
        for (sum, &c) in self.sum_rgb.iter_mut().zip(rgb) {
            *sum += c as f64;
        }
        self.sum_luma += luma([rgb[0], rgb[1], rgb[2]]) as f64;
    }
}

/// Returns `0 + 1 + ... + (k - 1)`.
fn sum_below(k: usize) -> u64 {
    let k = k as u64;
    k * k.saturating_sub(1) / 2
}

/// Returns `0^2 + 1^2 + ... + (k - 1)^2`.
fn sum_of_squares_below(k: usize) -> u64 {
    let k = k as u64;
    k.saturating_sub(1) * k * (2 * k).saturating_sub(1) / 6
}

/// Builds every attribute except `contrast`, which is left at 0.
fn region_descriptor(s: &RegionSums, bbox: BBox, width: usize, height: usize) -> Descriptor {
    let n = s.area as f64;
    let (w, h) = (width as f64, height as f64);
    let bbox_area = (bbox.width * bbox.height) as f64;

    // Centroid in continuous coordinates, where pixel (x, y) covers [x, x + 1) x [y, y + 1).
    let centre_x = s.sum_x as f64 / n + 0.5;
    let centre_y = s.sum_y as f64 / n + 0.5;
    let half_diagonal = 0.5 * w.hypot(h);
    let dist_center = (centre_x - 0.5 * w).hypot(centre_y - 0.5 * h) / half_diagonal;

    let moments = SecondMoments::from_sums(s);

    let mut values = [0.0; Attribute::ALL.len()];
    let mut put = |a: Attribute, v: f64| values[a.index()] = v;
    put(Attribute::Area, n);
    put(Attribute::Width, bbox.width as f64);
    put(Attribute::Height, bbox.height as f64);
    put(Attribute::BboxArea, bbox_area);
    put(Attribute::Aspect, bbox.width as f64 / bbox.height as f64);
    put(Attribute::Fill, n / bbox_area);
    put(Attribute::CenterX, centre_x / w);
    put(Attribute::CenterY, centre_y / h);
    put(Attribute::DistCenter, dist_center);
    put(Attribute::MajorAxis, moments.major_axis());
    put(Attribute::MinorAxis, moments.minor_axis());
    put(Attribute::Orientation, moments.orientation());
    put(Attribute::PeakScore, s.peak_score as f64);
    put(Attribute::MeanScore, s.sum_score / n);
    put(Attribute::MeanR, s.sum_rgb[0] / n);
    put(Attribute::MeanG, s.sum_rgb[1] / n);
    put(Attribute::MeanB, s.sum_rgb[2] / n);
    put(Attribute::MeanLuma, s.sum_luma / n);
    Descriptor { values }
}

/// Central second moments of a region divided by its area: the covariance of its pixel
/// coordinates.
#[derive(Debug, Clone, Copy)]
struct SecondMoments {
    var_x: f64,
    var_y: f64,
    cov_xy: f64,
}

impl SecondMoments {
    /// Computes the covariance from the integer sums exactly, as `(n * sum_xx - sum_x^2) / n^2`
    /// in 128-bit integers, so large coordinates lose nothing to cancellation.
    fn from_sums(s: &RegionSums) -> Self {
        let n = s.area as i128;
        let (sx, sy) = (s.sum_x as i128, s.sum_y as i128);
        let n2 = (n * n) as f64;
        Self {
            var_x: (n * s.sum_xx as i128 - sx * sx) as f64 / n2,
            var_y: (n * s.sum_yy as i128 - sy * sy) as f64 / n2,
            cov_xy: (n * s.sum_xy as i128 - sx * sy) as f64 / n2,
        }
    }

    /// Eigenvalues of the covariance, larger first, negatives clipped to 0.
    fn eigenvalues(&self) -> (f64, f64) {
        let half_trace = 0.5 * (self.var_x + self.var_y);
        let radius = (0.5 * (self.var_x - self.var_y)).hypot(self.cov_xy);
        (
            (half_trace + radius).max(0.0),
            (half_trace - radius).max(0.0),
        )
    }

    fn major_axis(&self) -> f64 {
        4.0 * self.eigenvalues().0.sqrt()
    }

    fn minor_axis(&self) -> f64 {
        4.0 * self.eigenvalues().1.sqrt()
    }

    /// Computes the angle in `-pi/2..=pi/2` from the row axis to the major axis. It uses
    /// scikit-image's inertia tensor `[[a, b], [b, c]] = [[var_x, -cov_xy], [-cov_xy, var_y]]`
    /// so that ties (`a == c`) resolve as there, to `pi/4` when `b < 0` and to `-pi/4` otherwise.
    fn orientation(&self) -> f64 {
        let (a, b, c) = (self.var_x, -self.cov_xy, self.var_y);
        if a - c == 0.0 {
            if b < 0.0 {
                FRAC_PI_4
            } else {
                -FRAC_PI_4
            }
        } else {
            0.5 * (-2.0 * b).atan2(c - a)
        }
    }
}

/// Returns the mean luma of the pixels outside the region with runs `runs` within Chebyshev
/// distance `ring_width` of it, or `None` when there are none. The pixels are summed in raster
/// order. `dilation` contains reusable buffers.
fn ring_mean_luma(
    runs: &[Run],
    image: &Rgb32FImage,
    ring_width: usize,
    dilation: &mut RegionDilation,
) -> Option<f64> {
    if ring_width == 0 {
        return None;
    }

    let (width, height) = (image.width() as usize, image.height() as usize);
    let pixels = image.as_raw();
    let mut sum = 0.0f64;
    let mut count = 0u64;
    dilation.visit(runs, ring_width, (width, height), true, |y, x0, x1| {
        for i in y * width + x0..y * width + x1 {
            let p = 3 * i;
            sum += luma([pixels[p], pixels[p + 1], pixels[p + 2]]) as f64;
        }
        count += (x1 - x0) as u64;
    });
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Mask;
    use crate::regions::label;
    use crate::regions::reference::{arbitrary_mask, flood_fill_components};
    use image::Rgb;
    use proptest::prelude::*;

    /// Builds a mask from rows of `#` (on) and `.` (off).
    fn grid(rows: &[&str]) -> Mask {
        let width = rows.first().map_or(0, |r| r.len());
        Mask {
            width,
            height: rows.len(),
            data: rows
                .iter()
                .flat_map(|r| r.bytes().map(|b| b == b'#'))
                .collect(),
        }
    }

    /// Describes the components of `mask` on a zero map and a grey image.
    fn describe_mask(mask: &Mask) -> Vec<Candidate> {
        let labels = label(mask);
        let map = AnomalyMap::filled(mask.width, mask.height, 0.0);
        let image = Rgb32FImage::from_pixel(mask.width as u32, mask.height as u32, Rgb([0.5; 3]));
        describe(&labels, &map, &image, &DescribeParams::default())
    }

    fn assert_close(name: &str, found: f64, expected: f64) {
        assert!(
            (found - expected).abs() < 1e-9,
            "{name}: found {found}, expected {expected}"
        );
    }

    #[test]
    fn rectangle_hand_values() {
        // A 3x2 rectangle with its top-left pixel at (1, 1) in a 6x4 image.
        let found = describe_mask(&grid(&["......", ".###..", ".###..", "......"]));
        assert_eq!(found.len(), 1);
        let d = &found[0].descriptor;
        assert_eq!(
            found[0].bbox,
            BBox {
                x: 1,
                y: 1,
                width: 3,
                height: 2
            }
        );

        assert_close("area", d.get(Attribute::Area), 6.0);
        assert_close("width", d.get(Attribute::Width), 3.0);
        assert_close("height", d.get(Attribute::Height), 2.0);
        assert_close("bbox_area", d.get(Attribute::BboxArea), 6.0);
        assert_close("aspect", d.get(Attribute::Aspect), 1.5);
        assert_close("fill", d.get(Attribute::Fill), 1.0);
        // The mean pixel (2, 1.5) has its centre (2.5, 2) 0.5 px left of the image centre (3, 2).
        assert_close("center_x", d.get(Attribute::CenterX), 2.5 / 6.0);
        assert_close("center_y", d.get(Attribute::CenterY), 0.5);
        assert_close(
            "dist_center",
            d.get(Attribute::DistCenter),
            0.5 / 13f64.sqrt(),
        );
        // Columns 1, 2, 3 give var_x = 2/3, rows 1, 2 give var_y = 1/4, and cov_xy = 0.
        assert_close(
            "major_axis",
            d.get(Attribute::MajorAxis),
            4.0 * (2.0f64 / 3.0).sqrt(),
        );
        assert_close("minor_axis", d.get(Attribute::MinorAxis), 2.0);
        // The major axis is horizontal, a right angle from the row axis.
        assert_close(
            "orientation",
            d.get(Attribute::Orientation),
            std::f64::consts::FRAC_PI_2,
        );
    }

    #[test]
    // The expected values are scikit-image's output as printed, multiples of pi included.
    #[allow(clippy::approx_constant)]
    fn moments_match_scikit_image() {
        // (shape, area, centroid column, centroid row, axis_major_length, axis_minor_length,
        // orientation) from scripts/regionprops_reference.py, scikit-image 0.26.0.
        let expected = [
            (
                "rectangle",
                6.0,
                2.0,
                1.5,
                3.265986323710904,
                2.0,
                1.5707963267948966,
            ),
            (
                "l_shape",
                6.0,
                0.5,
                2.0,
                5.033222956847166,
                2.3094010767585034,
                0.46364760900080615,
            ),
            (
                "backslash",
                4.0,
                1.5,
                1.5,
                6.324555320336759,
                0.0,
                0.7853981633974483,
            ),
            (
                "slash",
                4.0,
                1.5,
                1.5,
                6.324555320336759,
                0.0,
                -0.7853981633974483,
            ),
            ("square", 4.0, 0.5, 0.5, 2.0, 2.0, -0.7853981633974483),
            (
                "blob",
                23.0,
                3.3043478260869565,
                2.3043478260869565,
                7.542355872984641,
                4.082955282621335,
                1.167460552084142,
            ),
        ];
        let shapes: [(&str, &[&str]); 6] = [
            ("rectangle", &["......", ".###..", ".###..", "......"]),
            ("l_shape", &["#...", "#...", "#...", "###."]),
            ("backslash", &["#...", ".#..", "..#.", "...#"]),
            ("slash", &["...#", "..#.", ".#..", "#..."]),
            ("square", &["##", "##"]),
            (
                "blob",
                &["..##....", ".####...", "######..", ".#######", "...####."],
            ),
        ];

        for ((name, rows), (ref_name, area, col, row, major, minor, orientation)) in
            shapes.iter().zip(expected)
        {
            assert_eq!(*name, ref_name);
            let mask = grid(rows);
            let found = describe_mask(&mask);
            assert_eq!(found.len(), 1, "{name}");
            let d = &found[0].descriptor;
            let (w, h) = (mask.width as f64, mask.height as f64);
            assert_close(name, d.get(Attribute::Area), area);
            assert_close(name, d.get(Attribute::CenterX) * w - 0.5, col);
            assert_close(name, d.get(Attribute::CenterY) * h - 0.5, row);
            assert_close(name, d.get(Attribute::MajorAxis), major);
            assert_close(name, d.get(Attribute::MinorAxis), minor);
            assert_close(name, d.get(Attribute::Orientation), orientation);
        }
    }

    #[test]
    fn moments_exact_far_from_origin() {
        let mut near = RegionSums::default();
        let mut far = RegionSums::default();
        for (y, x0, x1) in [(0, 0, 3), (1, 0, 2), (2, 3, 4)] {
            near.add_run_geometry(y, x0, x1);
            far.add_run_geometry(y + 15_000, x0 + 16_000, x1 + 16_000);
        }
        let (a, b) = (
            SecondMoments::from_sums(&near),
            SecondMoments::from_sums(&far),
        );
        assert_eq!(a.var_x, b.var_x);
        assert_eq!(a.var_y, b.var_y);
        assert_eq!(a.cov_xy, b.cov_xy);
    }

    #[test]
    fn run_geometry_matches_pixel_sums() {
        for (y, x0, x1) in [(0, 0, 1), (3, 0, 7), (9, 5, 6), (12_000, 16_000, 16_383)] {
            let mut by_run = RegionSums::default();
            by_run.add_run_geometry(y, x0, x1);
            let mut by_pixel = RegionSums::default();
            for x in x0..x1 {
                by_pixel.add_run_geometry(y, x, x + 1);
            }
            let (xs, yu) = ((x0 as u64..x1 as u64), y as u64);
            assert_eq!(by_run.area, (x1 - x0) as u64);
            assert_eq!(by_run.sum_x, xs.clone().sum::<u64>());
            assert_eq!(by_run.sum_xx, xs.clone().map(|x| x * x).sum::<u64>());
            assert_eq!(by_run.sum_xy, xs.map(|x| x * yu).sum::<u64>());
            assert_eq!(by_run.sum_y, by_pixel.sum_y);
            assert_eq!(by_run.sum_yy, by_pixel.sum_yy);
            assert_eq!(
                (by_run.min_x, by_run.max_x),
                (by_pixel.min_x, by_pixel.max_x)
            );
            assert_eq!(
                (by_run.min_y, by_run.max_y),
                (by_pixel.min_y, by_pixel.max_y)
            );
        }
    }

    #[test]
    fn colour_and_score_means() {
        // The region is the two left pixels, and the third pixel is background.
        let map = AnomalyMap::from_vec(3, 1, vec![0.75, 0.25, 0.0]);
        let image =
            Rgb32FImage::from_raw(3, 1, vec![1.0, 0.0, 0.5, 0.0, 1.0, 0.5, 0.25, 0.25, 0.25])
                .unwrap();
        let (_, found) = candidates(&map, &image, 0.2, &DescribeParams::default());
        assert_eq!(found.len(), 1);
        let d = &found[0].descriptor;

        assert_close("peak_score", d.get(Attribute::PeakScore), 0.75);
        assert_close("mean_score", d.get(Attribute::MeanScore), 0.5);
        assert_close("mean_r", d.get(Attribute::MeanR), 0.5);
        assert_close("mean_g", d.get(Attribute::MeanG), 0.5);
        assert_close("mean_b", d.get(Attribute::MeanB), 0.5);
        // BT.601 luma of pixels (1, 0, 0.5) and (0, 1, 0.5) is 0.356 and 0.644 (f32 sums).
        let inside = (luma([1.0, 0.0, 0.5]) as f64 + luma([0.0, 1.0, 0.5]) as f64) / 2.0;
        assert_close("mean_luma", d.get(Attribute::MeanLuma), inside);
        assert!((inside - 0.5).abs() < 1e-6);
        // The ring is the single background pixel.
        assert_close(
            "contrast",
            d.get(Attribute::Contrast),
            inside - luma([0.25; 3]) as f64,
        );
    }

    /// Builds a 9x9 image with grey 1 at the centre pixel, 0.25 on the 3x3 around it and 0.75
    /// elsewhere, and a map that is on at the centre only.
    fn centre_pixel_case() -> (AnomalyMap, Rgb32FImage) {
        let mut map = AnomalyMap::filled(9, 9, 0.0);
        map.data[4 * 9 + 4] = 1.0;
        let image = Rgb32FImage::from_fn(9, 9, |x, y| {
            let d = x.abs_diff(4).max(y.abs_diff(4));
            Rgb([match d {
                0 => 1.0,
                1 => 0.25,
                _ => 0.75,
            }; 3])
        });
        (map, image)
    }

    fn contrast_with(map: &AnomalyMap, image: &Rgb32FImage, ring_width: usize) -> f64 {
        let (_, found) = candidates(map, image, 0.5, &DescribeParams { ring_width });
        assert_eq!(found.len(), 1);
        found[0].descriptor.get(Attribute::Contrast)
    }

    #[test]
    fn contrast_ring_is_chebyshev() {
        let (map, image) = centre_pixel_case();
        let grey = |v: f32| luma([v; 3]) as f64;

        // Width 1: the 8 neighbours only.
        assert_close(
            "ring 1",
            contrast_with(&map, &image, 1),
            grey(1.0) - grey(0.25),
        );
        // Width 2: 8 neighbours at 0.25 and the 16 pixels of the next square at 0.75.
        let ring2 = (8.0 * grey(0.25) + 16.0 * grey(0.75)) / 24.0;
        assert_close("ring 2", contrast_with(&map, &image, 2), grey(1.0) - ring2);
        // Width 5 reaches past the border, which clips the ring to the other 80 pixels.
        let ring5 = (8.0 * grey(0.25) + 72.0 * grey(0.75)) / 80.0;
        assert_close("ring 5", contrast_with(&map, &image, 5), grey(1.0) - ring5);
    }

    #[test]
    fn contrast_zero_without_ring() {
        let (map, image) = centre_pixel_case();
        assert_eq!(contrast_with(&map, &image, 0), 0.0);

        let full = AnomalyMap::filled(3, 2, 1.0);
        let image = Rgb32FImage::from_pixel(3, 2, Rgb([0.8; 3]));
        assert_eq!(contrast_with(&full, &image, 5), 0.0);
    }

    #[test]
    fn contrast_ring_counts_other_regions() {
        // Two single-pixel regions two apart: the other region lies in the ring of width 2.
        let map = AnomalyMap::from_vec(3, 1, vec![1.0, 0.0, 1.0]);
        let image =
            Rgb32FImage::from_raw(3, 1, vec![1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5]).unwrap();
        let (_, found) = candidates(&map, &image, 0.5, &DescribeParams { ring_width: 2 });
        let contrast = found[0].descriptor.get(Attribute::Contrast);
        assert_close(
            "contrast",
            contrast,
            luma([1.0; 3]) as f64 - luma([0.25; 3]) as f64,
        );
    }

    #[test]
    fn candidates_of_empty_map() {
        let map = AnomalyMap::filled(0, 0, 0.0);
        let image = Rgb32FImage::new(0, 0);
        let (labels, found) = candidates(&map, &image, 0.5, &DescribeParams::default());
        assert_eq!(labels.count, 0);
        assert!(found.is_empty());
    }

    #[test]
    #[should_panic(expected = "resize the image")]
    fn describe_rejects_image_of_other_size() {
        let map = AnomalyMap::filled(4, 3, 1.0);
        let image = Rgb32FImage::new(3, 4);
        candidates(&map, &image, 0.5, &DescribeParams::default());
    }

    #[test]
    fn params_default_in_toml() {
        let params: DescribeParams = toml::from_str("").unwrap();
        assert_eq!(params, DescribeParams::default());
        assert_eq!(params.ring_width, 5);
    }

    /// Splits every labelled pixel into its own run, in raster order.
    fn pixel_runs(labels: &Labels) -> Vec<Run> {
        (0..labels.height)
            .flat_map(|y| (0..labels.width).map(move |x| (x, y)))
            .filter(|&(x, y)| labels.get(x, y) != 0)
            .map(|(x, y)| Run {
                y,
                x0: x,
                x1: x + 1,
                label: labels.get(x, y),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn candidates_match_pixel_by_pixel_sums(
            (width, scores, greys) in (1usize..40).prop_flat_map(|w| {
                (
                    Just(w),
                    proptest::collection::vec(0.0f32..1.0, w * 6),
                    proptest::collection::vec(0.0f32..1.0, w * 6),
                )
            }),
        ) {
            let map = AnomalyMap::from_vec(width, 6, scores);
            let image = Rgb32FImage::from_fn(width as u32, 6, |x, y| {
                let g = greys[y as usize * width + x as usize];
                Rgb([g, 1.0 - g, 0.5 * g])
            });
            let params = DescribeParams { ring_width: 2 };

            let (labels, found) = candidates(&map, &image, 0.6, &params);
            let by_pixel = describe_runs(&labels, &pixel_runs(&labels), &map, &image, &params);
            prop_assert_eq!(&found, &by_pixel);
            prop_assert_eq!(found, describe(&labels, &map, &image, &params));
        }

        #[test]
        fn geometry_matches_flood_fill(mask in arbitrary_mask()) {
            let found = describe_mask(&mask);
            let components = flood_fill_components(&mask);
            prop_assert_eq!(found.len(), components.len());

            let (w, h) = (mask.width as f64, mask.height as f64);
            for (candidate, pixels) in found.iter().zip(&components) {
                let d = &candidate.descriptor;
                let n = pixels.len() as f64;
                let min_x = pixels.iter().map(|p| p.0).min().unwrap();
                let max_x = pixels.iter().map(|p| p.0).max().unwrap();
                let min_y = pixels.iter().map(|p| p.1).min().unwrap();
                let max_y = pixels.iter().map(|p| p.1).max().unwrap();
                let mean_x = pixels.iter().map(|p| p.0 as f64).sum::<f64>() / n;
                let mean_y = pixels.iter().map(|p| p.1 as f64).sum::<f64>() / n;

                prop_assert_eq!(d.get(Attribute::Area), n);
                prop_assert_eq!(
                    candidate.bbox,
                    BBox { x: min_x, y: min_y, width: max_x - min_x + 1, height: max_y - min_y + 1 }
                );
                prop_assert!((d.get(Attribute::CenterX) - (mean_x + 0.5) / w).abs() < 1e-12);
                prop_assert!((d.get(Attribute::CenterY) - (mean_y + 0.5) / h).abs() < 1e-12);
                prop_assert!(d.get(Attribute::MinorAxis) <= d.get(Attribute::MajorAxis));
                prop_assert!(d.get(Attribute::Orientation).abs() <= std::f64::consts::FRAC_PI_2);
            }
        }
    }
}
