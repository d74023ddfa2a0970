//! Painting harmless patterns (large, bright) and real defects (small, dark) onto a surface,
//! with an exact mask for each defect.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::params::DemoParams;
use super::summary::{BoundingBox, DefectKind, DefectRecord, PatternKind, PatternRecord};
use super::surface::Canvas;
use crate::map::Mask;

/// Warm tint of a stain, scaled so its luma is about 1.
const STAIN_TINT: [f32; 3] = [1.12, 1.0, 0.75];
/// Slightly cool tint of a stamp's ink, scaled so its luma is about 1.
const STAMP_TINT: [f32; 3] = [0.95, 1.0, 1.1];
/// Neutral tint of defects.
const GREY: [f32; 3] = [1.0, 1.0, 1.0];
/// Minimum gap between a defect and a harmless pattern, in pixels.
const PATTERN_GAP: f32 = 6.0;
/// Placement draws tried before the defect goes to the draw farthest from the pattern.
const PLACEMENT_TRIES: usize = 64;

/// Paints a harmless pattern of `kind` fully inside the image.
pub(super) fn paint_pattern(
    canvas: &mut Canvas,
    kind: PatternKind,
    params: &DemoParams,
    rng: &mut ChaCha8Rng,
) -> PatternRecord {
    let (diameter, contrast) = match kind {
        PatternKind::Stain => (
            draw(rng, params.stain_diameter),
            draw(rng, params.stain_contrast),
        ),
        PatternKind::Stamp => (
            draw(rng, params.stamp_diameter),
            draw(rng, params.stamp_contrast),
        ),
    };
    let margin = diameter / 2.0 + 2.0;
    let center_x = rng.gen_range(margin..=canvas.width as f32 - margin);
    let center_y = rng.gen_range(margin..=canvas.height as f32 - margin);
    let record = PatternRecord {
        kind,
        center_x,
        center_y,
        diameter,
        contrast,
    };
    match kind {
        PatternKind::Stain => paint_stain(canvas, &record, rng),
        PatternKind::Stamp => {
            let line_width = draw(rng, params.stamp_line_width);
            paint_stamp(canvas, &record, line_width, rng);
        }
    }
    record
}

/// Paints a soft-edged, slightly elliptical and wavy disc whose brightness falls from 90 % to 10 %
/// over about a quarter of its radius.
fn paint_stain(canvas: &mut Canvas, stain: &PatternRecord, rng: &mut ChaCha8Rng) {
    let radius = stain.diameter / 2.0;
    let aspect = rng.gen_range(0.8..=1.0f32);
    let rotation = rng.gen_range(0.0..PI);
    let phases = [rng.gen_range(0.0..2.0 * PI), rng.gen_range(0.0..2.0 * PI)];
    let softness = 0.25 * radius / 4.0;
    let (sin, cos) = rotation.sin_cos();

    for (x, y) in pixels_around(canvas, stain.center_x, stain.center_y, 1.5 * radius) {
        let (dx, dy) = (
            x as f32 + 0.5 - stain.center_x,
            y as f32 + 0.5 - stain.center_y,
        );
        let u = dx * cos + dy * sin;
        let v = (-dx * sin + dy * cos) / aspect;
        let angle = v.atan2(u);
        // The factor 0.87 keeps the waviest edge (1.13 times the radius) within the diameter.
        let wavy = radius
            * (1.0
                + 0.08 * (3.0 * angle + phases[0]).sin()
                + 0.05 * (5.0 * angle + phases[1]).sin())
            * 0.87;
        let weight = 1.0 / (1.0 + ((u.hypot(v) - wavy) / softness).exp());
        canvas.add(x, y, stain.contrast * weight, STAIN_TINT);
    }
}

/// Paints a ring of outer diameter `stamp.diameter` and a bar through its centre, both
/// `line_width` wide with anti-aliased edges.
fn paint_stamp(canvas: &mut Canvas, stamp: &PatternRecord, line_width: f32, rng: &mut ChaCha8Rng) {
    let mid_radius = stamp.diameter / 2.0 - line_width / 2.0;
    let bar_angle = rng.gen_range(0.0..PI);
    let bar = (
        [
            stamp.center_x - mid_radius * bar_angle.cos(),
            stamp.center_y - mid_radius * bar_angle.sin(),
        ],
        [
            stamp.center_x + mid_radius * bar_angle.cos(),
            stamp.center_y + mid_radius * bar_angle.sin(),
        ],
    );
    let half = line_width / 2.0;

    for (x, y) in pixels_around(
        canvas,
        stamp.center_x,
        stamp.center_y,
        stamp.diameter / 2.0 + 1.0,
    ) {
        let point = [x as f32 + 0.5, y as f32 + 0.5];
        let radial = (point[0] - stamp.center_x).hypot(point[1] - stamp.center_y);
        let ring = coverage(half, (radial - mid_radius).abs());
        let across = coverage(half, segment_distance(point, bar.0, bar.1));
        let ink = ring.max(across);
        if ink > 0.0 {
            canvas.add(x, y, stamp.contrast * ink, STAMP_TINT);
        }
    }
}

/// Paints a defect of `kind` away from `avoid`, returning its record and mask.
pub(super) fn paint_defect(
    canvas: &mut Canvas,
    kind: DefectKind,
    params: &DemoParams,
    avoid: Option<&PatternRecord>,
    rng: &mut ChaCha8Rng,
) -> (DefectRecord, Mask) {
    let contrast = draw(rng, params.defect_contrast);
    let (length, width) = match kind {
        DefectKind::Scratch => (
            draw(rng, params.scratch_length),
            draw(rng, params.scratch_thickness),
        ),
        DefectKind::Pit => {
            let diameter = draw(rng, params.pit_diameter);
            (diameter, diameter)
        }
    };
    let extent = length / 2.0 + width;
    let (cx, cy) = place(canvas, extent, avoid, rng);

    let mut mask = Mask::empty(canvas.width, canvas.height);
    match kind {
        DefectKind::Scratch => {
            let curve = scratch_curve([cx, cy], length, rng);
            paint_scratch(canvas, &mut mask, &curve, width, contrast);
        }
        DefectKind::Pit => paint_pit(canvas, &mut mask, [cx, cy], width / 2.0, contrast),
    }
    let record = DefectRecord {
        kind,
        bbox: mask_bbox(&mask),
        area: mask.count(),
        length,
        width,
        contrast,
    };
    (record, mask)
}

/// Draws a defect centre at least `extent + 3` pixels inside the borders and clear of `avoid`.
/// When no draw is clear, it takes the one farthest from the pattern.
fn place(
    canvas: &Canvas,
    extent: f32,
    avoid: Option<&PatternRecord>,
    rng: &mut ChaCha8Rng,
) -> (f32, f32) {
    let margin = extent + 3.0;
    let mut best = (0.0, 0.0);
    let mut best_clearance = f32::NEG_INFINITY;
    for _ in 0..PLACEMENT_TRIES {
        let x = rng.gen_range(margin..=canvas.width as f32 - margin);
        let y = rng.gen_range(margin..=canvas.height as f32 - margin);
        let Some(pattern) = avoid else {
            return (x, y);
        };
        let distance = (x - pattern.center_x).hypot(y - pattern.center_y);
        let clearance = distance - pattern.diameter / 2.0 - extent;
        if clearance >= PATTERN_GAP {
            return (x, y);
        }
        if clearance > best_clearance {
            best_clearance = clearance;
            best = (x, y);
        }
    }
    best
}

/// Samples a gently bowed curve (a quadratic Bézier) of chord `length` centred on `center`.
fn scratch_curve(center: [f32; 2], length: f32, rng: &mut ChaCha8Rng) -> Vec<[f32; 2]> {
    let angle = rng.gen_range(0.0..PI);
    let bow = rng.gen_range(-0.15..=0.15) * length;
    let (sin, cos) = angle.sin_cos();
    let start = [
        center[0] - cos * length / 2.0,
        center[1] - sin * length / 2.0,
    ];
    let end = [
        center[0] + cos * length / 2.0,
        center[1] + sin * length / 2.0,
    ];
    // The control point sits at twice the bow so the curve's midpoint is `bow` off the chord.
    let control = [center[0] - sin * 2.0 * bow, center[1] + cos * 2.0 * bow];
    let steps = length.ceil().max(8.0) as usize;
    (0..=steps)
        .map(|i| {
            let t = i as f32 / steps as f32;
            let (a, b, c) = ((1.0 - t) * (1.0 - t), 2.0 * t * (1.0 - t), t * t);
            [
                a * start[0] + b * control[0] + c * end[0],
                a * start[1] + b * control[1] + c * end[1],
            ]
        })
        .collect()
}

fn paint_scratch(
    canvas: &mut Canvas,
    mask: &mut Mask,
    curve: &[[f32; 2]],
    thickness: f32,
    contrast: f32,
) {
    let half = thickness / 2.0;
    let (min_x, max_x) = bounds(curve.iter().map(|p| p[0]), half + 1.0, canvas.width);
    let (min_y, max_y) = bounds(curve.iter().map(|p| p[1]), half + 1.0, canvas.height);
    for y in min_y..max_y {
        for x in min_x..max_x {
            let point = [x as f32 + 0.5, y as f32 + 0.5];
            let distance = curve
                .windows(2)
                .map(|s| segment_distance(point, s[0], s[1]))
                .fold(f32::INFINITY, f32::min);
            let cover = coverage(half, distance);
            if cover > 0.0 {
                canvas.add(x, y, contrast * cover, GREY);
            }
            if distance <= half {
                mask.data[y * mask.width + x] = true;
            }
        }
    }
}

/// Paints a round pit, darkest at its centre and three quarters as dark at its rim.
fn paint_pit(canvas: &mut Canvas, mask: &mut Mask, center: [f32; 2], radius: f32, contrast: f32) {
    for (x, y) in pixels_around(canvas, center[0], center[1], radius + 1.0) {
        let distance = (x as f32 + 0.5 - center[0]).hypot(y as f32 + 0.5 - center[1]);
        let cover = coverage(radius, distance);
        if cover > 0.0 {
            let depth = 0.75 + 0.25 * (1.0 - (distance / radius).powi(2)).max(0.0);
            canvas.add(x, y, contrast * cover * depth, GREY);
        }
        if distance <= radius {
            mask.data[y * mask.width + x] = true;
        }
    }
}

/// Share of a pixel covered by a shape whose edge lies `half` pixels from its axis, for a pixel
/// centre `distance` pixels from that axis: a one-pixel linear ramp across the edge.
fn coverage(half: f32, distance: f32) -> f32 {
    (half - distance + 0.5).clamp(0.0, 1.0)
}

fn segment_distance(point: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length_sq = dx * dx + dy * dy;
    let t = if length_sq > 0.0 {
        (((point[0] - a[0]) * dx + (point[1] - a[1]) * dy) / length_sq).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (point[0] - a[0] - t * dx).hypot(point[1] - a[1] - t * dy)
}

/// Returns the pixel index range `[min, max)` covering `values` widened by `pad`, clipped to `0..limit`.
fn bounds(values: impl Iterator<Item = f32>, pad: f32, limit: usize) -> (usize, usize) {
    let (low, high) = values.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let min = (low - pad).floor().max(0.0) as usize;
    let max = ((high + pad).ceil().max(0.0) as usize).min(limit);
    (min, max)
}

/// Lists the pixels of the square of half side `radius` around `(cx, cy)`, clipped to the canvas.
fn pixels_around(canvas: &Canvas, cx: f32, cy: f32, radius: f32) -> Vec<(usize, usize)> {
    let (min_x, max_x) = bounds([cx].into_iter(), radius, canvas.width);
    let (min_y, max_y) = bounds([cy].into_iter(), radius, canvas.height);
    (min_y..max_y)
        .flat_map(|y| (min_x..max_x).map(move |x| (x, y)))
        .collect()
}

/// Returns the bounding box of the `true` pixels, all zeros for an empty mask.
fn mask_bbox(mask: &Mask) -> BoundingBox {
    let mut x_range = (usize::MAX, 0);
    let mut y_range = (usize::MAX, 0);
    for y in 0..mask.height {
        for x in 0..mask.width {
            if mask.get(x, y) {
                x_range = (x_range.0.min(x), x_range.1.max(x + 1));
                y_range = (y_range.0.min(y), y_range.1.max(y + 1));
            }
        }
    }
    if x_range.0 == usize::MAX {
        return BoundingBox {
            x: 0,
            y: 0,
            width: 0,
            height: 0,
        };
    }
    BoundingBox {
        x: x_range.0,
        y: y_range.0,
        width: x_range.1 - x_range.0,
        height: y_range.1 - y_range.0,
    }
}

/// Draws uniformly from a checked `[min, max]` range; a range of one value returns it.
fn draw(rng: &mut ChaCha8Rng, range: [f32; 2]) -> f32 {
    rng.gen_range(range[0]..=range[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn flat_canvas(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            data: vec![[0.5; 3]; width * height],
        }
    }

    #[test]
    fn coverage_ramps_across_edge() {
        assert_eq!(coverage(1.0, 0.0), 1.0);
        assert_eq!(coverage(1.0, 1.0), 0.5);
        assert_eq!(coverage(1.0, 1.5), 0.0);
    }

    #[test]
    fn pit_mask_matches_painted_disc() {
        let mut canvas = flat_canvas(32, 32);
        let mut mask = Mask::empty(32, 32);
        paint_pit(&mut canvas, &mut mask, [16.0, 16.0], 3.0, -0.2);

        // Pixel centres within 3 px of (16, 16): offsets of 0.5, 1.5 and 2.5 px on each axis,
        // except the four 2.5-by-2.5 corners per quadrant pair, give 32 pixels.
        assert_eq!(mask.count(), 32);
        assert!(mask.get(15, 15));
        assert!(mask.get(16, 16));
        assert!(!mask.get(19, 16));
        assert!(canvas.data[16 * 32 + 16][0] < 0.5 - 0.19);
        assert_eq!(canvas.data[0], [0.5; 3]);
    }

    #[test]
    fn scratch_mask_follows_straight_line() {
        let mut canvas = flat_canvas(40, 20);
        let mut mask = Mask::empty(40, 20);
        let curve = [[5.0, 10.0], [35.0, 10.0]];
        paint_scratch(&mut canvas, &mut mask, &curve, 2.0, -0.2);

        // Rows 9 and 10 have centres 0.5 px from y = 10. The round caps add columns 4 and 35,
        // whose centres are 0.71 px from the end points.
        assert_eq!(mask.count(), 64);
        assert_eq!(
            mask_bbox(&mask),
            BoundingBox {
                x: 4,
                y: 9,
                width: 32,
                height: 2
            }
        );
        assert!(canvas.data[9 * 40 + 20][0] < 0.31);
        assert_eq!(canvas.data[5 * 40 + 20], [0.5; 3]);
    }

    #[test]
    fn defect_keeps_clear_of_pattern() {
        let params = DemoParams::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let mut canvas = flat_canvas(192, 160);
            let pattern = paint_pattern(&mut canvas, PatternKind::Stain, &params, &mut rng);
            let (record, _) = paint_defect(
                &mut canvas,
                DefectKind::Scratch,
                &params,
                Some(&pattern),
                &mut rng,
            );
            let cx = record.bbox.x as f32 + record.bbox.width as f32 / 2.0;
            let cy = record.bbox.y as f32 + record.bbox.height as f32 / 2.0;
            let distance = (cx - pattern.center_x).hypot(cy - pattern.center_y);
            assert!(
                distance > pattern.diameter / 2.0,
                "scratch at ({cx}, {cy}) inside stain {pattern:?}"
            );
        }
    }

    #[test]
    fn empty_mask_has_empty_bbox() {
        assert_eq!(mask_bbox(&Mask::empty(4, 3)).width, 0);
    }
}
