//! Errors of the demo data set generator: invalid parameters and file-system failures.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("train_count is 0; the data set needs at least one defect-free training image")]
    NoTrainImages,
    #[error(
        "image size {width}x{height} is invalid; both sides must be between {min} and {max} pixels"
    )]
    ImageSize {
        width: u32,
        height: u32,
        min: u32,
        max: u32,
    },
    #[error("{name} = [{min}, {max}] is invalid; give a range [min, max] of finite numbers with min <= max")]
    InvalidRange {
        name: &'static str,
        min: f32,
        max: f32,
    },
    #[error("{name} = [{min}, {max}] must be positive; give a range of sizes above 0 pixels")]
    NonPositiveSize {
        name: &'static str,
        min: f32,
        max: f32,
    },
    #[error("{name} = {value} is not a share; give a value between 0 and 1")]
    InvalidShare { name: &'static str, value: f64 },
    #[error("{name} = [{min}, {max}] must lie within [-1, 0) because defects are darker than the surface")]
    DefectNotDarker {
        name: &'static str,
        min: f32,
        max: f32,
    },
    #[error("{name} = [{min}, {max}] must lie within (0, 1] because harmless patterns are brighter than the surface")]
    PatternNotBrighter {
        name: &'static str,
        min: f32,
        max: f32,
    },
    #[error("{name} reaches {value} pixels but the {width}x{height} image allows at most {limit}; lower {name} or enlarge the image")]
    ShapeTooLarge {
        name: &'static str,
        value: f32,
        limit: f32,
        width: u32,
        height: u32,
    },
    #[error("{name} = {value} is invalid; give a finite value of at least 0")]
    NegativeAmplitude { name: &'static str, value: f32 },
    #[error("{name} = {value} is invalid; give a finite number")]
    NotFinite { name: &'static str, value: f32 },
    #[error("surface.base_rgb = {value:?} is invalid; give three channels between 0 and 1")]
    InvalidColor { value: [f32; 3] },
    #[error("{path} exists and is not a folder; pass a new or empty folder")]
    NotAFolder { path: PathBuf },
    #[error("folder {path} is not empty and was not written by the demo generator (no {marker} file); pass a new or empty folder")]
    ForeignFolder { path: PathBuf, marker: &'static str },
    #[error("demo marker {path} is invalid ({reason}); delete the folder or pass a new one")]
    InvalidMarker { path: PathBuf, reason: String },
    #[error("failed to encode image {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("failed to write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
