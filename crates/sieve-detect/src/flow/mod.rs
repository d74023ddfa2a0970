//! Building blocks of normalising flows shared by the flow detectors: affine coupling blocks with
//! fixed channel permutations, convolutional and fully connected subnets, seeded parameter
//! creation, the cache of backbone features and the training loop with early stopping.

mod affine_row;
mod bias;
mod cache;
mod conv;
mod conv_grad;
mod coupling;
mod error;
mod linear;
mod param;
mod split;
mod train;
mod unfold;

pub use cache::FeatureCache;
pub use conv::{conv2d_same, ConvSubnet};
pub use conv_grad::{ConvStackGradient, ConvStackWeights};
pub use coupling::{soft_clamp, AffineCoupling, ChannelPermutation, CouplingStack, Subnet};
pub use error::FlowError;
pub use linear::FcSubnet;
pub use param::{ParamInit, ParamSource};
pub use split::{held_out_count, split_held_out};
pub use train::{
    train, EpochRecord, StopReason, TrainEvent, TrainLog, TrainParams, TrainValidParams,
};
pub use unfold::{fold, unfold};
