//! Errors of the CFlow detector.

use std::path::PathBuf;

use crate::flow::FlowError;

/// Error raised while checking settings, training, scoring, saving or loading a CFlow model.
#[derive(Debug, thiserror::Error)]
pub enum CFlowError {
    #[error("invalid steps 0: expected at least 1 coupling block per scale, for example 8")]
    InvalidSteps,

    #[error("invalid condition_dim {value}: expected a positive multiple of 4, for example 128")]
    InvalidConditionDim { value: usize },

    #[error("invalid hidden_ratio {value}: expected a finite number > 0, for example 2.0")]
    InvalidHiddenRatio { value: f64 },

    #[error("invalid clamp {value}: expected a finite number > 0, for example 1.9")]
    InvalidClamp { value: f64 },

    #[error(
        "invalid held_out_share {value}: expected a share in (0, 1), for example 0.2 to hold out \
         a fifth of the training images"
    )]
    InvalidHeldOutShare { value: f64 },

    #[error("invalid {name} 0: expected at least 1, for example {example}")]
    InvalidCount { name: &'static str, example: usize },

    #[error(
        "CFlow needs at least 2 training images, one to train on and one to hold out, but got \
         {images}"
    )]
    TooFewImages { images: usize },

    #[error(
        "got {found} feature maps: expected {expected}, one per scale the model was built for"
    )]
    ScaleCount { expected: usize, found: usize },

    #[error(
        "feature map {index} has shape {shape:?}: expected (b, {channels}, h, w) as the model \
         was built for"
    )]
    FeatureMapShape {
        index: usize,
        shape: Vec<usize>,
        channels: usize,
    },

    #[error(transparent)]
    Flow(#[from] FlowError),

    #[error("failed to {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid model settings in {path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("invalid model file {path}: {reason}")]
    ModelFile { path: PathBuf, reason: String },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
