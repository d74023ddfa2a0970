//! Candidates of random small maps, 0x0 and 1x1 included, against a naive reference written
//! independently of the library: flood fill for the regions, sums over pixel pairs for the
//! second moments, and a distance test against every region pixel for the contrast ring.

use std::collections::VecDeque;

use image::{Rgb, Rgb32FImage};
use proptest::prelude::*;
use sieve_core::imageio::luma;
use sieve_core::regions::{candidates, Attribute, BBox, DescribeParams};
use sieve_core::AnomalyMap;

/// A random case: map scores on a coarse grid of levels (so that ties with the threshold
/// occur), an RGB image, a threshold and a ring width.
#[derive(Debug, Clone)]
struct Case {
    width: usize,
    height: usize,
    scores: Vec<f32>,
    rgb: Vec<f32>,
    threshold: f32,
    ring_width: usize,
}

fn arbitrary_case() -> impl Strategy<Value = Case> {
    (0usize..10, 0usize..10, 0usize..4, 0u8..5).prop_flat_map(|(width, height, ring, level)| {
        let n = width * height;
        (
            proptest::collection::vec(0u8..5, n),
            proptest::collection::vec(0u8..=20, 3 * n),
        )
            .prop_map(move |(levels, colours)| Case {
                width,
                height,
                scores: levels.iter().map(|&l| l as f32 * 0.25).collect(),
                rgb: colours.iter().map(|&c| c as f32 / 20.0).collect(),
                threshold: level as f32 * 0.25,
                ring_width: ring,
            })
    })
}

/// Pixels `(x, y)` of each 8-connected region of `score >= t`, regions in raster order of
/// their first pixel.
fn flood_fill(case: &Case) -> Vec<Vec<(usize, usize)>> {
    let (w, h) = (case.width, case.height);
    let on = |x: usize, y: usize| case.scores[y * w + x] >= case.threshold;
    let mut seen = vec![false; w * h];
    let mut regions = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if !on(x, y) || seen[y * w + x] {
                continue;
            }
            seen[y * w + x] = true;
            let mut pixels = Vec::new();
            let mut queue = VecDeque::from([(x, y)]);
            while let Some((px, py)) = queue.pop_front() {
                pixels.push((px, py));
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (nx, ny) = (px as i64 + dx, py as i64 + dy);
                        if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                            continue;
                        }
                        let (nx, ny) = (nx as usize, ny as usize);
                        if on(nx, ny) && !seen[ny * w + nx] {
                            seen[ny * w + nx] = true;
                            queue.push_back((nx, ny));
                        }
                    }
                }
            }
            regions.push(pixels);
        }
    }
    regions
}

/// `n^2` times the covariance of `a` and `b`, as half the sum over all ordered pairs of
/// `(a_i - a_j) * (b_i - b_j)`: exact in integers, with no mean subtracted.
fn pair_sum(a: &[i64], b: &[i64]) -> i64 {
    let mut sum = 0;
    for i in 0..a.len() {
        for j in 0..a.len() {
            sum += (a[i] - a[j]) * (b[i] - b[j]);
        }
    }
    sum / 2
}

fn pixel_luma(case: &Case, x: usize, y: usize) -> f64 {
    let k = 3 * (y * case.width + x);
    luma([case.rgb[k], case.rgb[k + 1], case.rgb[k + 2]]) as f64
}

/// Every attribute of one region, computed the slow way, in `Attribute::ALL` order.
fn reference_descriptor(case: &Case, pixels: &[(usize, usize)]) -> Vec<(Attribute, f64)> {
    let (w, h) = (case.width as f64, case.height as f64);
    let n = pixels.len() as f64;
    let xs: Vec<i64> = pixels.iter().map(|p| p.0 as i64).collect();
    let ys: Vec<i64> = pixels.iter().map(|p| p.1 as i64).collect();
    let (min_x, max_x) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
    let (min_y, max_y) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
    let (bw, bh) = ((max_x - min_x + 1) as f64, (max_y - min_y + 1) as f64);

    let cx = xs.iter().sum::<i64>() as f64 / n + 0.5;
    let cy = ys.iter().sum::<i64>() as f64 / n + 0.5;
    let dist =
        ((cx - w / 2.0).powi(2) + (cy - h / 2.0).powi(2)).sqrt() / (0.5 * (w * w + h * h).sqrt());

    // Covariance from exact pair sums; eigenvalues from the characteristic polynomial.
    let n2 = n * n;
    let (sxx, syy, sxy) = (pair_sum(&xs, &xs), pair_sum(&ys, &ys), pair_sum(&xs, &ys));
    let (a, c, b) = (sxx as f64 / n2, syy as f64 / n2, sxy as f64 / n2);
    let trace = a + c;
    let det = a * c - b * b;
    let root = (trace * trace / 4.0 - det).max(0.0).sqrt();
    let (l1, l2) = ((trace / 2.0 + root).max(0.0), (trace / 2.0 - root).max(0.0));
    // scikit-image's orientation, ties decided on the exact integer sums.
    let orientation = if sxx == syy {
        if sxy > 0 {
            std::f64::consts::FRAC_PI_4
        } else {
            -std::f64::consts::FRAC_PI_4
        }
    } else {
        0.5 * (2.0 * b).atan2(c - a)
    };

    let score = |&(x, y): &(usize, usize)| case.scores[y * case.width + x] as f64;
    let channel = |k: usize| {
        pixels
            .iter()
            .map(|&(x, y)| case.rgb[3 * (y * case.width + x) + k] as f64)
            .sum::<f64>()
            / n
    };
    let mean_luma = pixels
        .iter()
        .map(|&(x, y)| pixel_luma(case, x, y))
        .sum::<f64>()
        / n;

    // The ring: pixels outside the region within Chebyshev distance ring_width of it.
    let mut ring = Vec::new();
    for y in 0..case.height {
        for x in 0..case.width {
            if pixels.contains(&(x, y)) || case.ring_width == 0 {
                continue;
            }
            let near = pixels
                .iter()
                .any(|&(px, py)| px.abs_diff(x).max(py.abs_diff(y)) <= case.ring_width);
            if near {
                ring.push(pixel_luma(case, x, y));
            }
        }
    }
    let contrast = if ring.is_empty() {
        0.0
    } else {
        mean_luma - ring.iter().sum::<f64>() / ring.len() as f64
    };

    vec![
        (Attribute::Area, n),
        (Attribute::Width, bw),
        (Attribute::Height, bh),
        (Attribute::BboxArea, bw * bh),
        (Attribute::Aspect, bw / bh),
        (Attribute::Fill, n / (bw * bh)),
        (Attribute::CenterX, cx / w),
        (Attribute::CenterY, cy / h),
        (Attribute::DistCenter, dist),
        (Attribute::MajorAxis, 4.0 * l1.sqrt()),
        (Attribute::MinorAxis, 4.0 * l2.sqrt()),
        (Attribute::Orientation, orientation),
        (
            Attribute::PeakScore,
            pixels.iter().map(score).fold(f64::MIN, f64::max),
        ),
        (
            Attribute::MeanScore,
            pixels.iter().map(score).sum::<f64>() / n,
        ),
        (Attribute::MeanR, channel(0)),
        (Attribute::MeanG, channel(1)),
        (Attribute::MeanB, channel(2)),
        (Attribute::MeanLuma, mean_luma),
        (Attribute::Contrast, contrast),
    ]
}

/// Compares two attribute values. Axis lengths are square roots of eigenvalues, so near a zero
/// eigenvalue rounding of `1e-16` becomes `4e-8`; they are compared as eigenvalues instead.
fn close(attribute: Attribute, found: f64, expected: f64) -> bool {
    match attribute {
        Attribute::MajorAxis | Attribute::MinorAxis => {
            ((found / 4.0).powi(2) - (expected / 4.0).powi(2)).abs() < 1e-9
        }
        _ => (found - expected).abs() <= 1e-9 * expected.abs().max(1.0),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn candidates_match_naive_reference(case in arbitrary_case()) {
        let map = AnomalyMap::from_vec(case.width, case.height, case.scores.clone());
        let image = Rgb32FImage::from_raw(case.width as u32, case.height as u32, case.rgb.clone())
            .unwrap();
        let params = DescribeParams { ring_width: case.ring_width };
        let (labels, found) = candidates(&map, &image, case.threshold, &params);
        let regions = flood_fill(&case);

        prop_assert_eq!(labels.count as usize, regions.len());
        prop_assert_eq!(found.len(), regions.len());
        for (candidate, pixels) in found.iter().zip(&regions) {
            // The labels mark exactly the region's pixels.
            for y in 0..case.height {
                for x in 0..case.width {
                    let inside = labels.get(x, y) == candidate.label;
                    prop_assert_eq!(inside, pixels.contains(&(x, y)), "pixel ({}, {})", x, y);
                }
            }
            let min_x = pixels.iter().map(|p| p.0).min().unwrap();
            let min_y = pixels.iter().map(|p| p.1).min().unwrap();
            let bbox = BBox {
                x: min_x,
                y: min_y,
                width: pixels.iter().map(|p| p.0).max().unwrap() - min_x + 1,
                height: pixels.iter().map(|p| p.1).max().unwrap() - min_y + 1,
            };
            prop_assert_eq!(candidate.bbox, bbox);
            for (attribute, expected) in reference_descriptor(&case, pixels) {
                let value = candidate.descriptor.get(attribute);
                prop_assert!(
                    close(attribute, value, expected),
                    "{}: found {}, expected {}", attribute.name(), value, expected
                );
            }
        }
    }
}

#[test]
fn empty_and_single_pixel_maps() {
    let params = DescribeParams::default();
    let (labels, found) = candidates(
        &AnomalyMap::filled(0, 0, 0.0),
        &Rgb32FImage::new(0, 0),
        0.5,
        &params,
    );
    assert_eq!((labels.count, found.len()), (0, 0));

    let image = Rgb32FImage::from_pixel(1, 1, Rgb([0.2, 0.4, 0.6]));
    let (_, below) = candidates(&AnomalyMap::filled(1, 1, 0.4), &image, 0.5, &params);
    assert!(below.is_empty());

    let (labels, found) = candidates(&AnomalyMap::filled(1, 1, 0.5), &image, 0.5, &params);
    assert_eq!(labels.labels, [1]);
    assert_eq!(found.len(), 1);
    let d = &found[0].descriptor;
    assert_eq!(d.get(Attribute::Area), 1.0);
    assert_eq!(d.get(Attribute::CenterX), 0.5);
    assert_eq!(d.get(Attribute::DistCenter), 0.0);
    assert_eq!(d.get(Attribute::MajorAxis), 0.0);
    // With no pixel around it, the ring is empty and the contrast is 0.
    assert_eq!(d.get(Attribute::Contrast), 0.0);
    assert!((d.get(Attribute::MeanG) - 0.4).abs() < 1e-7);
}
