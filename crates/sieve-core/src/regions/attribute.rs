//! The catalogue of region attributes that a candidate's descriptor holds.

use serde::{Deserialize, Serialize};

/// One named attribute of a candidate region. Units: pixels for sizes, fractions of the image
/// for positions, `0..=1` for colours, radians for `Orientation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    /// Pixel count of the region.
    Area,
    /// Bounding-box width in pixels.
    Width,
    /// Bounding-box height in pixels.
    Height,
    /// Bounding-box area in pixels.
    BboxArea,
    /// Bounding-box width divided by height.
    Aspect,
    /// Area divided by bounding-box area.
    Fill,
    /// Centroid column as a fraction of the image width.
    CenterX,
    /// Centroid row as a fraction of the image height.
    CenterY,
    /// Distance of the centroid from the image centre, as a fraction of the half diagonal.
    DistCenter,
    /// Major axis length of the ellipse with the same second moments, in pixels.
    MajorAxis,
    /// Minor axis length of the ellipse with the same second moments, in pixels.
    MinorAxis,
    /// Angle from the row axis (pointing down) to the major axis, radians in `-pi/2..=pi/2`,
    /// positive towards +x, as scikit-image's `regionprops` orientation: a horizontal region
    /// has `pi/2`.
    Orientation,
    /// Maximum anomaly score inside the region.
    PeakScore,
    /// Mean anomaly score inside the region.
    MeanScore,
    MeanR,
    MeanG,
    MeanB,
    /// Mean luma inside the region.
    MeanLuma,
    /// Mean luma inside minus mean luma of a ring of pixels around the region.
    Contrast,
}

impl Attribute {
    /// Every attribute, in descriptor order.
    pub const ALL: [Attribute; 19] = [
        Attribute::Area,
        Attribute::Width,
        Attribute::Height,
        Attribute::BboxArea,
        Attribute::Aspect,
        Attribute::Fill,
        Attribute::CenterX,
        Attribute::CenterY,
        Attribute::DistCenter,
        Attribute::MajorAxis,
        Attribute::MinorAxis,
        Attribute::Orientation,
        Attribute::PeakScore,
        Attribute::MeanScore,
        Attribute::MeanR,
        Attribute::MeanG,
        Attribute::MeanB,
        Attribute::MeanLuma,
        Attribute::Contrast,
    ];

    /// Returns the attribute's name as written in prior files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Area => "area",
            Attribute::Width => "width",
            Attribute::Height => "height",
            Attribute::BboxArea => "bbox_area",
            Attribute::Aspect => "aspect",
            Attribute::Fill => "fill",
            Attribute::CenterX => "center_x",
            Attribute::CenterY => "center_y",
            Attribute::DistCenter => "dist_center",
            Attribute::MajorAxis => "major_axis",
            Attribute::MinorAxis => "minor_axis",
            Attribute::Orientation => "orientation",
            Attribute::PeakScore => "peak_score",
            Attribute::MeanScore => "mean_score",
            Attribute::MeanR => "mean_r",
            Attribute::MeanG => "mean_g",
            Attribute::MeanB => "mean_b",
            Attribute::MeanLuma => "mean_luma",
            Attribute::Contrast => "contrast",
        }
    }

    /// Position of the attribute in a descriptor's value array.
    pub fn index(self) -> usize {
        Attribute::ALL.iter().position(|&a| a == self).unwrap_or(0)
    }

    /// Parses a name; the error lists the valid names.
    pub fn from_name(name: &str) -> Result<Self, String> {
        Attribute::ALL
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                let valid: Vec<&str> = Attribute::ALL.iter().map(|a| a.name()).collect();
                format!(
                    "unknown attribute {name:?}; valid attributes are {}",
                    valid.join(", ")
                )
            })
    }

    /// Returns whether the attribute measures the anomaly map rather than the region or the image.
    /// Score attributes change when the detector changes, so priors rarely use them.
    pub fn is_score(self) -> bool {
        matches!(self, Attribute::PeakScore | Attribute::MeanScore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Attribute::ALL {
            assert_eq!(Attribute::from_name(a.name()), Ok(a));
            assert_eq!(Attribute::ALL[a.index()], a);
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = Attribute::from_name("size").unwrap_err();
        assert!(err.contains("area"), "{err}");
        assert!(err.contains("contrast"), "{err}");
    }
}
