//! Building blocks of normalising flows shared by the flow detectors: affine coupling blocks with
//! fixed channel permutations, convolutional subnets, seeded parameter creation and the
//! training loop with early stopping.

mod conv;
mod coupling;
mod error;
mod param;
mod train;
mod unfold;

pub use conv::{conv2d_same, ConvSubnet};
pub use coupling::{soft_clamp, AffineCoupling, ChannelPermutation, CouplingStack, Subnet};
pub use error::FlowError;
pub use param::{ParamInit, ParamSource};
pub use train::{
    train, EpochRecord, StopReason, TrainEvent, TrainLog, TrainParams, TrainValidParams,
};
pub use unfold::{fold, unfold};
