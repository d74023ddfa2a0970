//! Errors of the PatchCore detector (Roth et al., "Towards Total Recall in Industrial Anomaly
//! Detection", CVPR 2022).

use std::path::PathBuf;

/// Error raised while checking settings, embedding features, fitting, scoring, saving or
/// loading a PatchCore model.
#[derive(Debug, thiserror::Error)]
pub enum PatchCoreError {
    #[error(
        "invalid coreset_ratio {value}: expected a share in (0, 1], for example 0.01 to keep 1 % \
         of the training patches"
    )]
    InvalidCoresetRatio { value: f64 },

    #[error(
        "invalid projection_dim 0: expected at least 1, for example 128, or a value at or above \
         the embedding width to select the coreset on exact distances"
    )]
    InvalidProjectionDim,

    #[error(
        "invalid neighbourhood {value}: expected an odd window size of at least 1, for example 3"
    )]
    InvalidNeighbourhood { value: usize },

    #[error("no feature maps given: pass at least one (b, c, h, w) map, the finest first")]
    NoFeatureMaps,

    #[error("feature map {index} has shape {shape:?}: expected rank 4, (b, c, h, w)")]
    FeatureMapRank { index: usize, shape: Vec<usize> },

    #[error(
        "feature map {index} has shape {shape:?}: expected a batch of {batch} and a grid no finer \
         than {height}×{width}; pass the finest map first and maps of one batch together"
    )]
    FeatureMapShape {
        index: usize,
        shape: Vec<usize>,
        batch: usize,
        height: usize,
        width: usize,
    },

    #[error(
        "invalid {what} {value}: expected at least 1; give the embedding width and the patch \
         grid of one image"
    )]
    InvalidSize { what: &'static str, value: usize },

    #[error(
        "embedding has shape {shape:?}: expected (n, {dim}); embed the features with the same \
         backbone taps used for training"
    )]
    EmbeddingShape { shape: Vec<usize>, dim: usize },

    #[error(
        "image {image_id} has {found} patches: expected {expected}, one per cell of the \
         {height}×{width} grid; embed every image at the training input size"
    )]
    PatchCount {
        image_id: u32,
        expected: usize,
        found: usize,
        height: usize,
        width: usize,
    },

    #[error("no training patches: push the embeddings of at least one image before build")]
    NoTrainingPatches,

    #[error(
        "{rows} training patches exceed the limit of {limit}: fit on fewer images or subsample \
         their patches"
    )]
    TooManyPatches { rows: usize, limit: usize },

    #[error(
        "every memory bank row comes from image {image_id}, so excluding it leaves nothing to \
         compare with; fit on more than one image"
    )]
    EverythingExcluded { image_id: u32 },

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

    #[error("invalid model file {path}: {reason}; save the model again with this version")]
    ModelFile { path: PathBuf, reason: String },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
