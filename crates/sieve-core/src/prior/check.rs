//! The validated prior and the checks that turn a parsed file into it.

use std::path::Path;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::PriorError;
use super::raw::{RawAugment, RawDefect, RawPrior, ShapeKind};
use super::value::{check_value, Domain, RawValue, Value};
use crate::regions::Attribute;

/// Seeded draws tried at check time before a joint constraint is declared unsatisfiable.
pub const CONSTRAINT_CHECK_DRAWS: usize = 2_000;

/// Seed of the draws that test joint constraints, fixed so that a file is accepted or
/// rejected the same way every time.
const CONSTRAINT_CHECK_SEED: u64 = 0x5eed;

/// A checked prior: what real defects of one product look like, which attributes describe a
/// candidate, and how the filter may augment its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Prior {
    features: Vec<Attribute>,
    envelope: Vec<Attribute>,
    kinds: Vec<DefectKind>,
    augment: Augment,
}

/// One checked `[[defect]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct DefectKind {
    name: String,
    shape: Shape,
    area: Option<(f64, f64)>,
    center_x: Value,
    center_y: Value,
    angle: Value,
    contrast: Value,
    edge: Value,
    texture: Value,
    tint: Option<[f32; 3]>,
    weight: f64,
}

/// The size parameters of a defect kind, in pixels of the original image.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A square of side `size`.
    Square {
        size: Value,
    },
    Rectangle(Sides),
    Ellipse(Sides),
    /// A circle of diameter `size`.
    Circle {
        size: Value,
    },
    /// A straight band with flat ends.
    Line {
        length: Value,
        thickness: Value,
    },
    /// `segments` straight pieces of equal length with round joins; each joint turns by an
    /// angle drawn uniformly in `-bend..=bend` degrees.
    Polyline {
        length: Value,
        thickness: Value,
        segments: Value,
        bend: Value,
    },
    /// A star-shaped blob of mean diameter `size` whose radius varies by up to
    /// `irregularity` (a fraction of the mean radius) around its outline.
    Blob {
        size: Value,
        irregularity: Value,
    },
}

/// Width and height of a rectangle or ellipse (the ellipse's axes).
#[derive(Debug, Clone, PartialEq)]
pub enum Sides {
    /// Independent `width` and `height`, optionally constrained by an `aspect` range
    /// (width / height) that draws are rejected against.
    WidthHeight {
        width: Value,
        height: Value,
        aspect: Option<(f64, f64)>,
    },
    /// `size` is the geometric mean side `sqrt(width * height)` and `aspect` is
    /// `width / height`, so `width = size * sqrt(aspect)` and `height = size / sqrt(aspect)`.
    SizeAspect { size: Value, aspect: Value },
}

/// One draw of a kind's size parameters, in pixels, before it is placed in an image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeDraw {
    /// Squares, rectangles and lines (`width` is the line's length).
    Box {
        width: f64,
        height: f64,
    },
    /// Circles and ellipses, `width` and `height` the full axes.
    Ellipse {
        width: f64,
        height: f64,
    },
    Polyline {
        length: f64,
        thickness: f64,
        segments: u32,
        bend: f64,
    },
    Blob {
        size: f64,
        irregularity: f64,
    },
}

impl ShapeDraw {
    /// Nominal area in square pixels; a blob counts as the disc of its mean diameter.
    pub fn area(&self) -> f64 {
        match *self {
            ShapeDraw::Box { width, height } => width * height,
            ShapeDraw::Ellipse { width, height } => std::f64::consts::PI * width * height / 4.0,
            ShapeDraw::Polyline {
                length, thickness, ..
            } => length * thickness,
            ShapeDraw::Blob { size, .. } => std::f64::consts::PI * size * size / 4.0,
        }
    }

    /// Width over height before rotation; a polyline's is length over thickness.
    pub fn aspect(&self) -> f64 {
        match *self {
            ShapeDraw::Box { width, height } | ShapeDraw::Ellipse { width, height } => {
                width / height
            }
            ShapeDraw::Polyline {
                length, thickness, ..
            } => length / thickness,
            ShapeDraw::Blob { .. } => 1.0,
        }
    }
}

/// Augmentation settings that the filter uses when it balances its classes.
#[derive(Debug, Clone, PartialEq)]
pub struct Augment {
    noise: f64,
    shift: f64,
    mirror_x: bool,
    mirror_y: bool,
    copies: u32,
}

impl Default for Augment {
    fn default() -> Self {
        Self {
            noise: 0.05,
            shift: 0.0,
            mirror_x: false,
            mirror_y: false,
            copies: 3,
        }
    }
}

impl Augment {
    /// Standard deviation of the noise added to each standardised attribute.
    pub fn noise(&self) -> f64 {
        self.noise
    }

    /// Maximum translation, as a fraction of the image side.
    pub fn shift(&self) -> f64 {
        self.shift
    }

    /// Returns whether the product looks the same mirrored left to right.
    pub fn mirror_x(&self) -> bool {
        self.mirror_x
    }

    /// Returns whether the product looks the same mirrored top to bottom.
    pub fn mirror_y(&self) -> bool {
        self.mirror_y
    }

    /// Maximum number of augmented copies made of one sample.
    pub fn copies(&self) -> u32 {
        self.copies
    }
}

impl Prior {
    /// Reads and checks a prior file.
    pub fn from_path(path: &Path) -> Result<Self, PriorError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriorError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Self, PriorError> {
        let raw: RawPrior = toml::from_str(text).map_err(|err| PriorError::Parse {
            path: path.map(Path::to_owned),
            message: err.to_string().trim_end().to_string(),
        })?;
        check(&raw)
    }

    /// Attributes that form the SVM's input vector, in file order.
    pub fn features(&self) -> &[Attribute] {
        &self.features
    }

    /// Attributes checked against the false-alarm envelope.
    pub fn envelope(&self) -> &[Attribute] {
        &self.envelope
    }

    /// Defect kinds, in file order.
    pub fn kinds(&self) -> &[DefectKind] {
        &self.kinds
    }

    pub fn augment(&self) -> &Augment {
        &self.augment
    }

    /// Checks that every kind's largest shape, at the worst angle its `angle` allows, fits in
    /// a `width x height` image. A soft edge is not counted.
    pub fn check_image_size(&self, width: u32, height: u32) -> Result<(), PriorError> {
        for (index, kind) in self.kinds.iter().enumerate() {
            let (extent_width, extent_height, field) = kind.max_extent();
            if extent_width > f64::from(width) || extent_height > f64::from(height) {
                return Err(PriorError::ShapeTooLarge {
                    key: format!("defect[{index}].{field}"),
                    extent_width,
                    extent_height,
                    width,
                    height,
                });
            }
        }
        Ok(())
    }
}

impl FromStr for Prior {
    type Err = PriorError;

    /// Parses and checks the text of a prior file.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text, None)
    }
}

impl DefectKind {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// Share of this kind among synthetic defects, relative to the other kinds' weights.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// Joint constraint on the nominal area, square pixels.
    pub fn area(&self) -> Option<(f64, f64)> {
        self.area
    }

    /// Centre column, as a fraction of the image width.
    pub fn center_x(&self) -> &Value {
        &self.center_x
    }

    /// Centre row, as a fraction of the image height.
    pub fn center_y(&self) -> &Value {
        &self.center_y
    }

    /// Rotation in degrees, counter-clockwise as seen on screen.
    pub fn angle(&self) -> &Value {
        &self.angle
    }

    /// Luma of the defect minus luma of the local surface, `-1..=1`.
    pub fn contrast(&self) -> &Value {
        &self.contrast
    }

    /// Width of the soft edge in pixels.
    pub fn edge(&self) -> &Value {
        &self.edge
    }

    /// Standard deviation of the multiplicative noise inside the defect.
    pub fn texture(&self) -> &Value {
        &self.texture
    }

    /// Colour the defect takes on RGB images; `None` changes all channels equally.
    pub fn tint(&self) -> Option<[f32; 3]> {
        self.tint
    }

    /// Draws size parameters once; `None` when the draw breaks the `area` or `aspect`
    /// constraint.
    pub fn try_draw_shape(&self, rng: &mut ChaCha8Rng) -> Option<ShapeDraw> {
        let (draw, aspect) = match &self.shape {
            Shape::Square { size } => {
                let s = size.sample(rng);
                (
                    ShapeDraw::Box {
                        width: s,
                        height: s,
                    },
                    None,
                )
            }
            Shape::Circle { size } => {
                let s = size.sample(rng);
                (
                    ShapeDraw::Ellipse {
                        width: s,
                        height: s,
                    },
                    None,
                )
            }
            Shape::Rectangle(sides) => {
                let (width, height, aspect) = sides.draw(rng);
                (ShapeDraw::Box { width, height }, aspect)
            }
            Shape::Ellipse(sides) => {
                let (width, height, aspect) = sides.draw(rng);
                (ShapeDraw::Ellipse { width, height }, aspect)
            }
            Shape::Line { length, thickness } => (
                ShapeDraw::Box {
                    width: length.sample(rng),
                    height: thickness.sample(rng),
                },
                None,
            ),
            Shape::Polyline {
                length,
                thickness,
                segments,
                bend,
            } => (
                ShapeDraw::Polyline {
                    length: length.sample(rng),
                    thickness: thickness.sample(rng),
                    segments: segments.sample(rng).round().max(1.0) as u32,
                    bend: bend.sample(rng),
                },
                None,
            ),
            Shape::Blob { size, irregularity } => (
                ShapeDraw::Blob {
                    size: size.sample(rng),
                    irregularity: irregularity.sample(rng),
                },
                None,
            ),
        };

        if let Some((lo, hi)) = aspect {
            if !(lo..=hi).contains(&draw.aspect()) {
                return None;
            }
        }
        if let Some((lo, hi)) = self.area {
            if !(lo..=hi).contains(&draw.area()) {
                return None;
            }
        }
        Some(draw)
    }

    /// Largest bounding box `(width, height)` of the shape over its sizes and angles, and the
    /// key that sets it.
    fn max_extent(&self) -> (f64, f64, &'static str) {
        let (lo, hi) = self.angle.support();
        let angles = angle_samples(lo, hi);
        let rotated_box = |w: f64, h: f64| {
            angles.iter().fold((0.0f64, 0.0f64), |(bw, bh), &(c, s)| {
                (bw.max(w * c + h * s), bh.max(w * s + h * c))
            })
        };
        let rotated_ellipse = |w: f64, h: f64| {
            angles.iter().fold((0.0f64, 0.0f64), |(bw, bh), &(c, s)| {
                let ew = ((w * c).powi(2) + (h * s).powi(2)).sqrt();
                let eh = ((w * s).powi(2) + (h * c).powi(2)).sqrt();
                (bw.max(ew), bh.max(eh))
            })
        };

        match &self.shape {
            Shape::Square { size } => {
                let (w, h) = rotated_box(size.max(), size.max());
                (w, h, "size")
            }
            Shape::Circle { size } => (size.max(), size.max(), "size"),
            Shape::Rectangle(sides) => {
                let (sw, sh, field) = sides.max_sides();
                let (w, h) = rotated_box(sw, sh);
                (w, h, field)
            }
            Shape::Ellipse(sides) => {
                let (sw, sh, field) = sides.max_sides();
                let (w, h) = rotated_ellipse(sw, sh);
                (w, h, field)
            }
            Shape::Line { length, thickness } => {
                let (w, h) = rotated_box(length.max(), thickness.max());
                (w, h, "length")
            }
            // A bent polyline can reach its full length in any direction.
            Shape::Polyline {
                length, thickness, ..
            } => {
                let reach = length.max() + thickness.max();
                (reach, reach, "length")
            }
            Shape::Blob { size, irregularity } => {
                let reach = size.max() * (1.0 + irregularity.max());
                (reach, reach, "size")
            }
        }
    }
}

impl Sides {
    /// Returns `(width, height, aspect constraint)` of one draw.
    fn draw(&self, rng: &mut ChaCha8Rng) -> (f64, f64, Option<(f64, f64)>) {
        match self {
            Sides::WidthHeight {
                width,
                height,
                aspect,
            } => (width.sample(rng), height.sample(rng), *aspect),
            Sides::SizeAspect { size, aspect } => {
                let size = size.sample(rng);
                let root = aspect.sample(rng).sqrt();
                (size * root, size / root, None)
            }
        }
    }

    /// Largest width and height a draw can have, and the key that sets them.
    fn max_sides(&self) -> (f64, f64, &'static str) {
        match self {
            Sides::WidthHeight { width, height, .. } => (width.max(), height.max(), "width"),
            Sides::SizeAspect { size, aspect } => {
                let (lo, hi) = aspect.support();
                (size.max() * hi.sqrt(), size.max() / lo.sqrt(), "size")
            }
        }
    }
}

/// `(|cos|, |sin|)` of angles spread over `lo..=hi` degrees, at most a quarter degree apart;
/// a range of 180 degrees or more covers every orientation.
fn angle_samples(lo: f64, hi: f64) -> Vec<(f64, f64)> {
    let (lo, hi) = if hi - lo >= 180.0 {
        (0.0, 180.0)
    } else {
        (lo, hi)
    };
    let steps = ((hi - lo) * 4.0).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|i| {
            let radians = (lo + (hi - lo) * i as f64 / steps as f64).to_radians();
            (radians.cos().abs(), radians.sin().abs())
        })
        .collect()
}

/// Builds the validated prior from the parsed file.
fn check(raw: &RawPrior) -> Result<Prior, PriorError> {
    let features = check_attributes("features", &raw.features)?;
    let envelope = match &raw.envelope {
        Some(names) => check_attributes("envelope", names)?,
        // Every attribute by default: a candidate unlike all mined false alarms in any respect
        // is kept, which is the safe side.
        None => Attribute::ALL.to_vec(),
    };

    if raw.defect.is_empty() {
        return Err(PriorError::NoDefects);
    }
    let mut kinds = Vec::with_capacity(raw.defect.len());
    for (index, defect) in raw.defect.iter().enumerate() {
        let kind = check_defect(index, defect)?;
        if kinds.iter().any(|k: &DefectKind| k.name == kind.name) {
            return Err(PriorError::DuplicateName {
                key: format!("defect[{index}].name"),
                name: kind.name,
            });
        }
        kinds.push(kind);
    }
    if kinds.iter().all(|k| k.weight == 0.0) {
        return Err(PriorError::WeightsAllZero);
    }

    let augment = check_augment(&raw.augment)?;

    for (index, kind) in kinds.iter().enumerate() {
        check_satisfiable(index, kind)?;
    }

    Ok(Prior {
        features,
        envelope,
        kinds,
        augment,
    })
}

fn check_attributes(key: &str, names: &[String]) -> Result<Vec<Attribute>, PriorError> {
    if names.is_empty() {
        return Err(PriorError::NoAttributes {
            key: key.to_string(),
        });
    }
    let mut attributes = Vec::with_capacity(names.len());
    for name in names {
        let attribute =
            Attribute::from_name(name).map_err(|message| PriorError::UnknownAttribute {
                key: key.to_string(),
                message,
            })?;
        if attributes.contains(&attribute) {
            return Err(PriorError::DuplicateAttribute {
                key: key.to_string(),
                name: name.clone(),
            });
        }
        attributes.push(attribute);
    }
    Ok(attributes)
}

/// Valid size keys of each shape, as listed in error messages.
fn shape_keys(shape: ShapeKind) -> &'static str {
    match shape {
        ShapeKind::Square | ShapeKind::Circle => "size",
        ShapeKind::Rectangle | ShapeKind::Ellipse => {
            "width and height (with an optional aspect constraint), or size and aspect"
        }
        ShapeKind::Line => "length and thickness",
        ShapeKind::Polyline => "length, thickness, segments and bend",
        ShapeKind::Blob => "size and irregularity",
    }
}

fn check_defect(index: usize, raw: &RawDefect) -> Result<DefectKind, PriorError> {
    let key = |field: &str| format!("defect[{index}].{field}");
    let shape_name = raw.shape.name();

    let size_keys_present: [(&str, bool); 9] = [
        ("size", raw.size.is_some()),
        ("width", raw.width.is_some()),
        ("height", raw.height.is_some()),
        ("aspect", raw.aspect.is_some()),
        ("length", raw.length.is_some()),
        ("thickness", raw.thickness.is_some()),
        ("segments", raw.segments.is_some()),
        ("bend", raw.bend.is_some()),
        ("irregularity", raw.irregularity.is_some()),
    ];
    let sides_by_size = raw.size.is_some() || (raw.width.is_none() && raw.height.is_none());
    let allowed: &[&str] = match raw.shape {
        ShapeKind::Square | ShapeKind::Circle => &["size"],
        ShapeKind::Rectangle | ShapeKind::Ellipse if sides_by_size => &["size", "aspect"],
        ShapeKind::Rectangle | ShapeKind::Ellipse => &["width", "height", "aspect"],
        ShapeKind::Line => &["length", "thickness"],
        ShapeKind::Polyline => &["length", "thickness", "segments", "bend"],
        ShapeKind::Blob => &["size", "irregularity"],
    };
    if let Some((field, _)) = size_keys_present
        .iter()
        .find(|(field, present)| *present && !allowed.contains(field))
    {
        return Err(PriorError::KeyNotForShape {
            key: key(field),
            shape: shape_name.to_string(),
            valid: shape_keys(raw.shape).to_string(),
        });
    }

    let required = |field: &str, value: &Option<RawValue>, domain: Domain| match value {
        Some(value) => check_value(value, &key(field), domain),
        None => Err(PriorError::MissingKey {
            key: key(field),
            shape: shape_name.to_string(),
        }),
    };
    let optional =
        |field: &str, value: &Option<RawValue>, domain: Domain, default: Value| match value {
            Some(value) => check_value(value, &key(field), domain),
            None => Ok(default),
        };
    let aspect_domain = Domain::OpenBelow(0.0, 1.0e4);

    let shape = match raw.shape {
        ShapeKind::Square => Shape::Square {
            size: required("size", &raw.size, Domain::Size)?,
        },
        ShapeKind::Circle => Shape::Circle {
            size: required("size", &raw.size, Domain::Size)?,
        },
        ShapeKind::Rectangle | ShapeKind::Ellipse => {
            let sides = if sides_by_size {
                Sides::SizeAspect {
                    size: required("size", &raw.size, Domain::Size)?,
                    aspect: optional("aspect", &raw.aspect, aspect_domain, Value::Fixed(1.0))?,
                }
            } else {
                let aspect = match &raw.aspect {
                    Some(value) => Some(check_value(value, &key("aspect"), aspect_domain)?),
                    None => None,
                };
                Sides::WidthHeight {
                    width: required("width", &raw.width, Domain::Size)?,
                    height: required("height", &raw.height, Domain::Size)?,
                    aspect: aspect.map(|a| a.support()),
                }
            };
            if raw.shape == ShapeKind::Rectangle {
                Shape::Rectangle(sides)
            } else {
                Shape::Ellipse(sides)
            }
        }
        ShapeKind::Line => Shape::Line {
            length: required("length", &raw.length, Domain::Size)?,
            thickness: required("thickness", &raw.thickness, Domain::Size)?,
        },
        ShapeKind::Polyline => Shape::Polyline {
            length: required("length", &raw.length, Domain::Size)?,
            thickness: required("thickness", &raw.thickness, Domain::Size)?,
            segments: optional(
                "segments",
                &raw.segments,
                Domain::Closed(1.0, 64.0),
                Value::Fixed(4.0),
            )?,
            bend: optional(
                "bend",
                &raw.bend,
                Domain::Closed(0.0, 180.0),
                Value::Fixed(30.0),
            )?,
        },
        ShapeKind::Blob => Shape::Blob {
            size: required("size", &raw.size, Domain::Size)?,
            irregularity: optional(
                "irregularity",
                &raw.irregularity,
                Domain::Closed(0.0, 0.9),
                Value::Fixed(0.3),
            )?,
        },
    };

    let area = match &raw.area {
        Some(bounds) => {
            let value = check_value(
                &RawValue::Range(bounds.clone()),
                &key("area"),
                Domain::Closed(0.0, f64::MAX),
            )?;
            Some(value.support())
        }
        None => None,
    };

    let fraction = Domain::Closed(0.0, 1.0);
    let full_image = Value::Uniform { lo: 0.0, hi: 1.0 };
    let center_x = optional("center_x", &raw.center_x, fraction, full_image.clone())?;
    let center_y = optional("center_y", &raw.center_y, fraction, full_image)?;
    let angle = optional(
        "angle",
        &raw.angle,
        Domain::Closed(-360.0, 360.0),
        Value::Uniform { lo: 0.0, hi: 180.0 },
    )?;
    let contrast = check_value(&raw.contrast, &key("contrast"), Domain::Closed(-1.0, 1.0))?;
    let edge = optional(
        "edge",
        &raw.edge,
        Domain::Closed(0.0, 256.0),
        Value::Fixed(1.0),
    )?;
    let texture = optional(
        "texture",
        &raw.texture,
        Domain::Closed(0.0, 1.0),
        Value::Fixed(0.0),
    )?;
    let tint = match &raw.tint {
        Some(channels) => Some(check_tint(&key("tint"), channels)?),
        None => None,
    };
    let weight = raw.weight.unwrap_or(1.0);
    if !weight.is_finite() || weight < 0.0 {
        return Err(PriorError::InvalidWeight {
            key: key("weight"),
            value: weight,
        });
    }

    Ok(DefectKind {
        name: raw.name.clone(),
        shape,
        area,
        center_x,
        center_y,
        angle,
        contrast,
        edge,
        texture,
        tint,
        weight,
    })
}

fn check_tint(key: &str, channels: &[f64]) -> Result<[f32; 3], PriorError> {
    let invalid = || PriorError::InvalidTint {
        key: key.to_string(),
        value: format!("{channels:?}"),
    };
    let [r, g, b] = channels else {
        return Err(invalid());
    };
    let tint = [*r as f32, *g as f32, *b as f32];
    let in_range = tint.iter().all(|c| (0.0..=1.0).contains(c));
    if !in_range || crate::imageio::luma(tint) <= 0.0 {
        return Err(invalid());
    }
    Ok(tint)
}

fn check_augment(raw: &RawAugment) -> Result<Augment, PriorError> {
    let defaults = Augment::default();
    let noise = raw.noise.unwrap_or(defaults.noise);
    if !noise.is_finite() || !(0.0..=10.0).contains(&noise) {
        return Err(PriorError::OutOfDomain {
            key: "augment.noise".to_string(),
            value: noise,
            domain: "range 0..=10 (standard deviations)".to_string(),
        });
    }
    let shift = raw.shift.unwrap_or(defaults.shift);
    if !shift.is_finite() || !(0.0..=0.5).contains(&shift) {
        return Err(PriorError::OutOfDomain {
            key: "augment.shift".to_string(),
            value: shift,
            domain: "range 0..=0.5 (fraction of the image side)".to_string(),
        });
    }
    Ok(Augment {
        noise,
        shift,
        mirror_x: raw.mirror_x.unwrap_or(defaults.mirror_x),
        mirror_y: raw.mirror_y.unwrap_or(defaults.mirror_y),
        copies: raw.copies.unwrap_or(defaults.copies),
    })
}

/// Rejects a kind whose `area` or `aspect` constraint no seeded draw meets.
fn check_satisfiable(index: usize, kind: &DefectKind) -> Result<(), PriorError> {
    let mut rng = ChaCha8Rng::seed_from_u64(CONSTRAINT_CHECK_SEED);
    if (0..CONSTRAINT_CHECK_DRAWS).any(|_| kind.try_draw_shape(&mut rng).is_some()) {
        return Ok(());
    }

    let aspect = match &kind.shape {
        Shape::Rectangle(Sides::WidthHeight { aspect, .. })
        | Shape::Ellipse(Sides::WidthHeight { aspect, .. }) => *aspect,
        _ => None,
    };
    // Blame `aspect` when no draw meets it alone, otherwise `area`.
    let mut rng = ChaCha8Rng::seed_from_u64(CONSTRAINT_CHECK_SEED);
    let aspect_alone = DefectKind {
        area: None,
        ..kind.clone()
    };
    let aspect_fails = aspect.is_some()
        && !(0..CONSTRAINT_CHECK_DRAWS).any(|_| aspect_alone.try_draw_shape(&mut rng).is_some());
    let (field, (lo, hi)) = match (aspect_fails, aspect, kind.area) {
        (true, Some(bounds), _) => ("aspect", bounds),
        (_, _, Some(bounds)) => ("area", bounds),
        (_, Some(bounds), None) => ("aspect", bounds),
        (_, None, None) => unreachable!("a draw without constraints always succeeds"),
    };
    Err(PriorError::Unsatisfiable {
        key: format!("defect[{index}].{field}"),
        value: format!("[{lo}, {hi}]"),
        tries: CONSTRAINT_CHECK_DRAWS,
    })
}
