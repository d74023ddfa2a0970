//! The prior file as written: unchecked serde structs that `Prior::check` validates.

use serde::Deserialize;

use super::value::RawValue;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrior {
    pub features: Vec<String>,
    pub envelope: Option<Vec<String>>,
    #[serde(default)]
    pub defect: Vec<RawDefect>,
    #[serde(default)]
    pub augment: RawAugment,
}

/// Shapes a defect kind can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShapeKind {
    Square,
    Rectangle,
    Ellipse,
    Circle,
    Line,
    Polyline,
    Blob,
}

impl ShapeKind {
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Square => "square",
            ShapeKind::Rectangle => "rectangle",
            ShapeKind::Ellipse => "ellipse",
            ShapeKind::Circle => "circle",
            ShapeKind::Line => "line",
            ShapeKind::Polyline => "polyline",
            ShapeKind::Blob => "blob",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefect {
    pub name: String,
    pub shape: ShapeKind,
    pub size: Option<RawValue>,
    pub width: Option<RawValue>,
    pub height: Option<RawValue>,
    pub aspect: Option<RawValue>,
    pub length: Option<RawValue>,
    pub thickness: Option<RawValue>,
    pub segments: Option<RawValue>,
    pub bend: Option<RawValue>,
    pub irregularity: Option<RawValue>,
    pub area: Option<Vec<f64>>,
    pub center_x: Option<RawValue>,
    pub center_y: Option<RawValue>,
    pub angle: Option<RawValue>,
    pub contrast: RawValue,
    pub edge: Option<RawValue>,
    pub texture: Option<RawValue>,
    pub tint: Option<Vec<f64>>,
    pub weight: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAugment {
    pub noise: Option<f64>,
    pub shift: Option<f64>,
    pub mirror_x: Option<bool>,
    pub mirror_y: Option<bool>,
    pub copies: Option<u32>,
}
