//! Errors of the metrics: mismatched or empty input, one class only, invalid values.

use std::fmt;

use thiserror::Error;

/// One of the two label classes of a binary metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelClass {
    /// Anomalous samples or defect pixels (`true` labels).
    Positive,
    /// Defect-free samples or pixels (`false` labels).
    Negative,
}

impl fmt::Display for LabelClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelClass::Positive => f.write_str("positive (anomalous)"),
            LabelClass::Negative => f.write_str("negative (defect-free)"),
        }
    }
}

/// Error of a metric whose input is invalid or whose value is undefined for that input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricError {
    #[error("got {scores} scores but {labels} labels, expected one label per score")]
    LengthMismatch { scores: usize, labels: usize },

    #[error("got {maps} anomaly maps but {masks} masks, expected one mask per map")]
    CountMismatch { maps: usize, masks: usize },

    #[error(
        "image {image}: the anomaly map is {map_width}x{map_height} but its mask is \
         {mask_width}x{mask_height}, so resize the map to the mask size"
    )]
    ShapeMismatch {
        image: usize,
        map_width: usize,
        map_height: usize,
        mask_width: usize,
        mask_height: usize,
    },

    #[error(
        "image {image}: the {grid} has {len} values but width * height is {expected}, \
         so build it with a matching width and height"
    )]
    InvalidGrid {
        image: usize,
        grid: &'static str,
        len: usize,
        expected: usize,
    },

    #[error("{metric} got no samples, so it is undefined")]
    Empty { metric: &'static str },

    #[error("{metric} is undefined because the input contains no {missing} sample")]
    OneClass {
        metric: &'static str,
        missing: LabelClass,
    },

    #[error("score at index {index} is {value}, but every score must be finite")]
    NonFiniteScore { index: usize, value: f32 },

    #[error(
        "image {image}: the anomaly map score at (x {x}, y {y}) is {value}, but every score \
         must be finite"
    )]
    NonFiniteMapScore {
        image: usize,
        x: usize,
        y: usize,
        value: f32,
    },

    #[error("FPR limit {value} is invalid, expected a false positive rate in (0, 1] such as 0.3")]
    InvalidFprLimit { value: f64 },

    #[error("threshold is NaN, expected a number (infinite thresholds are allowed)")]
    NanThreshold,
}
