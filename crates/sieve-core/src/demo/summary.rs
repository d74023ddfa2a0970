//! Records of the written demo set: one per image, with its defect and harmless pattern.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Kind of a real defect; its name is the folder under `test/` and `ground_truth/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    /// A thin dark curved line.
    Scratch,
    /// A small dark round spot, darkest at its centre.
    Pit,
}

impl DefectKind {
    pub const ALL: [DefectKind; 2] = [DefectKind::Scratch, DefectKind::Pit];

    /// Folder name of this kind, as in `test/scratch`.
    pub fn name(self) -> &'static str {
        match self {
            DefectKind::Scratch => "scratch",
            DefectKind::Pit => "pit",
        }
    }
}

/// Kind of a rare but harmless pattern, present in some images of every split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// A large, faint, warm-tinted bright patch with a soft, slightly irregular edge.
    Stain,
    /// A bright printed ring with a bar across it, sharp-edged.
    Stamp,
}

/// Axis-aligned box in pixels: columns `x..x + width`, rows `y..y + height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundingBox {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// A painted defect. Its mask contains the pixels at least half covered by the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefectRecord {
    pub kind: DefectKind,
    /// Bounding box of the mask.
    pub bbox: BoundingBox,
    /// Number of mask pixels.
    pub area: usize,
    /// End-to-end (chord) length for a scratch, diameter for a pit, in pixels.
    pub length: f32,
    /// Thickness for a scratch, diameter for a pit, in pixels.
    pub width: f32,
    /// Luma change at full coverage (negative: darker than the surface).
    pub contrast: f32,
}

/// A painted harmless pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternRecord {
    pub kind: PatternKind,
    /// Centre in pixels, `x` the column.
    pub center_x: f32,
    pub center_y: f32,
    /// Outer diameter in pixels.
    pub diameter: f32,
    /// Luma change at full strength (positive: brighter than the surface).
    pub contrast: f32,
}

/// Split of an image in the MVTec AD layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Test,
}

/// One written image. Paths are relative to the data set folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoImage {
    pub path: PathBuf,
    /// Ground-truth mask, only for defective images.
    pub mask: Option<PathBuf>,
    pub split: Split,
    pub defect: Option<DefectRecord>,
    pub pattern: Option<PatternRecord>,
}

/// The written data set: its folder, image size and one record per image, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSummary {
    pub root: PathBuf,
    pub width: u32,
    pub height: u32,
    pub images: Vec<DemoImage>,
}

impl DemoSummary {
    /// Images of `train/good`.
    pub fn train(&self) -> impl Iterator<Item = &DemoImage> {
        self.images.iter().filter(|i| i.split == Split::Train)
    }

    /// Images of `test/good`.
    pub fn test_good(&self) -> impl Iterator<Item = &DemoImage> {
        self.images
            .iter()
            .filter(|i| i.split == Split::Test && i.defect.is_none())
    }

    /// Images of `test/<kind>`.
    pub fn test_defective(&self, kind: DefectKind) -> impl Iterator<Item = &DemoImage> {
        self.images
            .iter()
            .filter(move |i| i.defect.as_ref().map(|d| d.kind) == Some(kind))
    }
}

impl fmt::Display for DemoSummary {
    /// Writes one line per folder: image count and how many carry a harmless pattern.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line<'a>(
            f: &mut fmt::Formatter<'_>,
            folder: &str,
            images: impl Iterator<Item = &'a DemoImage>,
        ) -> fmt::Result {
            let (mut total, mut with_pattern) = (0, 0);
            for image in images {
                total += 1;
                with_pattern += usize::from(image.pattern.is_some());
            }
            writeln!(
                f,
                "{folder}: {total} images, {with_pattern} with a harmless pattern"
            )
        }
        writeln!(
            f,
            "demo set in {} ({}x{} RGB)",
            self.root.display(),
            self.width,
            self.height
        )?;
        line(f, "train/good", self.train())?;
        line(f, "test/good", self.test_good())?;
        for kind in DefectKind::ALL {
            line(
                f,
                &format!("test/{}", kind.name()),
                self.test_defective(kind),
            )?;
        }
        Ok(())
    }
}
