//! The frozen ImageNet backbone: EfficientNet-Lite0 on candle, CPU inference only.

mod error;
mod image;
mod model;
mod ops;
mod pointwise;
mod spec;

pub use error::BackboneError;
pub use image::{image_to_tensor, images_to_tensor, IMAGENET_MEAN, IMAGENET_STD};
pub use model::EfficientNetLite0;
pub use ops::{depthwise_conv2d, same_padding};
pub use spec::{BlockSpec, BLOCKS, FEATURE_BLOCKS, FEATURE_CHANNELS, FEATURE_STRIDES, NUM_CLASSES};
