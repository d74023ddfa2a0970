//! Errors of the flow building blocks and of their training loop.

/// Error raised while checking training settings, creating or loading parameters, or training.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("invalid learning_rate {value}: expected a finite number > 0, for example 0.001")]
    InvalidLearningRate { value: f64 },

    #[error("invalid weight_decay {value}: expected a finite number >= 0, for example 0.00001")]
    InvalidWeightDecay { value: f64 },

    #[error("invalid {name} 0: expected at least 1, for example {example}")]
    InvalidCount { name: &'static str, example: usize },

    #[error("no training samples: pass at least one sample to train the flow on")]
    NoTrainingSamples,

    #[error(
        "the training loss is {loss} at epoch {epoch}, batch {batch}: the flow diverged; lower \
         the learning rate or the clamp"
    )]
    Diverged {
        epoch: usize,
        batch: usize,
        loss: f64,
    },

    #[error(
        "caching the features of {images} images needs {needed_mib} MiB, above max_cache_mib = \
         {limit_mib}; raise max_cache_mib, train on fewer images or lower the input size"
    )]
    CacheTooLarge {
        images: usize,
        needed_mib: usize,
        limit_mib: usize,
    },

    #[error(
        "image {index} has feature maps {found:?}, but the first image has {expected:?}; the \
         flows train on stacked features, so every training image needs the same input size: \
         use --resize stretch or images of one size"
    )]
    FeatureShape {
        index: usize,
        expected: Vec<Vec<usize>>,
        found: Vec<Vec<usize>>,
    },

    #[error(
        "parameter {name} is missing from the model file; save the model again with this version"
    )]
    MissingParameter { name: String },

    #[error(
        "parameter {name} has shape {found:?} and dtype {dtype:?} in the model file, but the \
         settings expect {expected:?} and F32; the model file and its settings do not belong \
         together"
    )]
    ParameterShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
        dtype: candle_core::DType,
    },

    #[error(
        "the model file holds parameters the settings do not describe: {names:?}; the model \
         file and its settings do not belong together"
    )]
    UnexpectedParameters { names: Vec<String> },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
