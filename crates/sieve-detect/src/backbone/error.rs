//! Errors of the backbone.

use std::path::PathBuf;

use crate::pth::PthError;
use crate::weights::WeightsError;

/// Errors from loading or running the backbone.
#[derive(Debug, thiserror::Error)]
pub enum BackboneError {
    #[error(transparent)]
    Weights(#[from] WeightsError),

    #[error("failed to read the backbone weights {path}: {source}")]
    Checkpoint {
        path: PathBuf,
        source: Box<PthError>,
    },

    #[error(
        "tensor {name:?} is missing from the weights; expected an EfficientNet-Lite0 state dict \
         with names such as _conv_stem.weight and _blocks.0._depthwise_conv.weight"
    )]
    MissingTensor { name: String },

    #[error(
        "tensor {name:?} has shape {found:?} and dtype {dtype:?}, expected shape {expected:?} \
         and F32; the weights are not EfficientNet-Lite0 weights"
    )]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        dtype: candle_core::DType,
    },

    #[error(
        "the input has shape {found:?} and dtype {dtype:?}, expected (batch, 3, height, width) \
         in F32 with height and width at least 1; build it with image_to_tensor"
    )]
    InputShape {
        found: Vec<usize>,
        dtype: candle_core::DType,
    },

    #[error("block {block} does not exist; expected a block index from 0 to {max}")]
    BlockIndex { block: usize, max: usize },

    #[error("no blocks were requested; pass at least one block index, such as 2, 4 or 10")]
    NoBlocks,

    #[error(
        "the backbone runs on the CPU only, but {device} was requested; pass \
         candle_core::Device::Cpu"
    )]
    UnsupportedDevice { device: String },

    #[error("the target size is {width}x{height}; expected a width and height of at least 1")]
    ImageSize { width: u32, height: u32 },

    #[error("no images were given; pass at least one image")]
    EmptyBatch,

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
