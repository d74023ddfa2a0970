//! Errors raised while reading and checking a prior file.

use std::path::PathBuf;

/// Error raised when a prior file cannot be read or is invalid. Every message names the TOML key, the value found and the
/// fix. Keys of defect kinds are written `defect[i].key`, `i` counting `[[defect]]` tables
/// from 0.
#[derive(Debug, thiserror::Error)]
pub enum PriorError {
    #[error("failed to read prior file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid prior file{}: {message}", path_suffix(.path))]
    Parse {
        path: Option<PathBuf>,
        message: String,
    },
    #[error("key `{key}`: {message}; use one of the valid attribute names")]
    UnknownAttribute { key: String, message: String },
    #[error("key `{key}` lists attribute {name:?} twice; list each attribute once")]
    DuplicateAttribute { key: String, name: String },
    #[error(
        "key `{key}` is empty; list at least one attribute, for example [\"area\", \"contrast\"]"
    )]
    NoAttributes { key: String },
    #[error("no `[[defect]]` table found; describe at least one defect kind")]
    NoDefects,
    #[error("key `{key}` is {name:?}, which another defect kind already uses; give each kind its own name")]
    DuplicateName { key: String, name: String },
    #[error("key `{key}` is missing; shape {shape} needs it")]
    MissingKey { key: String, shape: String },
    #[error(
        "key `{key}` does not apply to shape {shape}; remove it, the keys of a {shape} are {valid}"
    )]
    KeyNotForShape {
        key: String,
        shape: String,
        valid: String,
    },
    #[error("key `{key}` is an empty range {value}; write a range as [lo, hi]")]
    EmptyRange { key: String, value: String },
    #[error("key `{key}` is {value}, a list of {len} numbers; write a range as [lo, hi] with two numbers")]
    RangeLength {
        key: String,
        value: String,
        len: usize,
    },
    #[error("key `{key}` is the inverted range {value} (lo > hi); swap the bounds")]
    InvertedRange { key: String, value: String },
    #[error("key `{key}` contains the non-finite number {value}; use finite numbers")]
    NonFinite { key: String, value: String },
    #[error("key `{key}` has std = {std}; the standard deviation of a normal must be positive, use a fixed number for a constant")]
    NonPositiveStd { key: String, std: f64 },
    #[error("key `{key}` allows the size {value} px; sizes must be positive, so raise the lower bound (or set `min` on a normal)")]
    NegativeSize { key: String, value: f64 },
    #[error("key `{key}` allows the value {value}, outside the valid {domain}; narrow the range (or set `min`/`max` on a normal)")]
    OutOfDomain {
        key: String,
        value: f64,
        domain: String,
    },
    #[error("key `{key}` is {value}; a weight must be a finite number >= 0")]
    InvalidWeight { key: String, value: f64 },
    #[error("every `weight` is 0; give at least one defect kind a positive weight")]
    WeightsAllZero,
    #[error(
        "key `{key}` is {value}; a tint is [r, g, b] with channels in 0..=1 and a positive luma"
    )]
    InvalidTint { key: String, value: String },
    #[error("constraint `{key}` = {value} was never met in {tries} seeded draws of the other keys; widen it or change the size ranges so they can satisfy it")]
    Unsatisfiable {
        key: String,
        value: String,
        tries: usize,
    },
    #[error("key `{key}` allows a shape of up to {extent_width:.0}x{extent_height:.0} px (width x height, at the worst angle), larger than the {width}x{height} image; lower its upper bound or limit `angle`")]
    ShapeTooLarge {
        key: String,
        extent_width: f64,
        extent_height: f64,
        width: u32,
        height: u32,
    },
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" {}", path.display()),
        None => String::new(),
    }
}
