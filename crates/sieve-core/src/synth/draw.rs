//! Drawing one concrete defect from a prior: its kind, size, outline, place and appearance.

use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::error::SynthError;
use crate::prior::{Prior, ShapeDraw};

/// Draws tried per defect before an `area` or `aspect` constraint counts as unmet. Checking
/// a prior already proved that some draws meet it, so this limit is reached only when a
/// constraint is met very rarely.
pub const MAX_SHAPE_DRAWS: usize = 10_000;

/// Harmonics `2..=BLOB_HARMONICS + 1` of the radius function that shapes a blob.
const BLOB_HARMONICS: usize = 4;

/// One drawn defect, placed in an image. Lengths and positions are pixels; the origin is the
/// top-left corner of the image, and pixel `(x, y)` covers `x..x + 1`, `y..y + 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Defect {
    /// Name of the defect kind it was drawn from.
    pub kind: String,
    /// Outline around the centre, before rotation.
    pub outline: Outline,
    /// Centre `[x, y]`.
    pub center: [f32; 2],
    /// Rotation, degrees counter-clockwise as seen on screen.
    pub angle: f32,
    /// Luma of the defect minus luma of the local surface.
    pub contrast: f32,
    /// Width of the soft edge.
    pub edge: f32,
    /// Standard deviation of the multiplicative noise inside.
    pub texture: f32,
    /// Colour the defect takes on RGB images.
    pub tint: Option<[f32; 3]>,
}

/// Outline of a defect in its own frame: centred on the origin, not rotated.
#[derive(Debug, Clone, PartialEq)]
pub enum Outline {
    /// Axis-aligned box; squares, rectangles and lines.
    Box { width: f32, height: f32 },
    /// Axis-aligned ellipse with full axes `width` and `height`; circles and ellipses.
    Ellipse { width: f32, height: f32 },
    /// Connected straight segments of the given thickness, with round joins and ends.
    Polyline {
        points: Vec<[f32; 2]>,
        thickness: f32,
    },
    /// Star-shaped blob whose radius at polar angle `phi` is
    /// `radius * (1 + sum_k amplitude_k * cos(k * phi + phase_k))` for `k = 2, 3, ...`.
    Blob {
        radius: f32,
        /// `[amplitude, phase]` of harmonics 2, 3, ...; the amplitudes sum to the drawn
        /// irregularity.
        harmonics: Vec<[f32; 2]>,
    },
}

impl Outline {
    /// Distance from the centre to the farthest point of the outline.
    pub fn reach(&self) -> f32 {
        match self {
            Outline::Box { width, height } => 0.5 * width.hypot(*height),
            Outline::Ellipse { width, height } => 0.5 * width.max(*height),
            Outline::Polyline { points, thickness } => {
                let far = points.iter().map(|p| p[0].hypot(p[1])).fold(0.0, f32::max);
                far + 0.5 * thickness
            }
            Outline::Blob { radius, harmonics } => {
                radius * (1.0 + harmonics.iter().map(|h| h[0]).sum::<f32>())
            }
        }
    }
}

/// Draws a defect for a `width x height` image: a kind by weight, then its parameters until
/// the kind's constraints hold.
pub fn draw_defect(
    prior: &Prior,
    width: u32,
    height: u32,
    rng: &mut ChaCha8Rng,
) -> Result<Defect, SynthError> {
    let kinds = prior.kinds();
    // Checking the prior guaranteed finite weights >= 0 with a positive sum.
    let weights =
        WeightedIndex::new(kinds.iter().map(|k| k.weight())).expect("checked prior weights");
    let index = weights.sample(rng);
    let kind = &kinds[index];

    let shape = (0..MAX_SHAPE_DRAWS)
        .find_map(|_| kind.try_draw_shape(rng))
        .ok_or_else(|| SynthError::ConstraintNotMet {
            key: format!("defect[{index}]"),
            kind: kind.name().to_string(),
            tries: MAX_SHAPE_DRAWS,
        })?;
    let outline = build_outline(shape, rng);

    let center = [
        (kind.center_x().sample(rng) * f64::from(width)) as f32,
        (kind.center_y().sample(rng) * f64::from(height)) as f32,
    ];
    Ok(Defect {
        kind: kind.name().to_string(),
        outline,
        center,
        angle: kind.angle().sample(rng) as f32,
        contrast: kind.contrast().sample(rng) as f32,
        edge: kind.edge().sample(rng) as f32,
        texture: kind.texture().sample(rng) as f32,
        tint: kind.tint(),
    })
}

fn build_outline(shape: ShapeDraw, rng: &mut ChaCha8Rng) -> Outline {
    match shape {
        ShapeDraw::Box { width, height } => Outline::Box {
            width: width as f32,
            height: height as f32,
        },
        ShapeDraw::Ellipse { width, height } => Outline::Ellipse {
            width: width as f32,
            height: height as f32,
        },
        ShapeDraw::Polyline {
            length,
            thickness,
            segments,
            bend,
        } => Outline::Polyline {
            points: polyline_points(length as f32, segments, bend as f32, rng),
            thickness: thickness as f32,
        },
        ShapeDraw::Blob { size, irregularity } => {
            let raw: Vec<f32> = (0..BLOB_HARMONICS)
                .map(|_| rng.gen_range(0.1..1.0))
                .collect();
            let total: f32 = raw.iter().sum();
            let harmonics = raw
                .iter()
                .map(|a| {
                    let phase = rng.gen_range(0.0..std::f32::consts::TAU);
                    [a / total * irregularity as f32, phase]
                })
                .collect();
            Outline::Blob {
                radius: 0.5 * size as f32,
                harmonics,
            }
        }
    }
}

/// Vertices of a polyline of total `length` in `segments` equal pieces, starting along the
/// x axis and turning by up to `bend` degrees at each joint, centred on its bounding box.
fn polyline_points(length: f32, segments: u32, bend: f32, rng: &mut ChaCha8Rng) -> Vec<[f32; 2]> {
    let piece = length / segments as f32;
    let mut heading = 0.0f32;
    let mut points = vec![[0.0f32, 0.0f32]];

    for i in 0..segments {
        if i > 0 && bend > 0.0 {
            heading += rng.gen_range(-bend..=bend).to_radians();
        }
        let [x, y] = points[points.len() - 1];
        points.push([x + piece * heading.cos(), y - piece * heading.sin()]);
    }

    let (min_x, max_x, min_y, max_y) = points.iter().fold(
        (
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ),
        |(a, b, c, d), p| (a.min(p[0]), b.max(p[0]), c.min(p[1]), d.max(p[1])),
    );
    let (mid_x, mid_y) = (0.5 * (min_x + max_x), 0.5 * (min_y + max_y));
    points
        .iter()
        .map(|p| [p[0] - mid_x, p[1] - mid_y])
        .collect()
}
