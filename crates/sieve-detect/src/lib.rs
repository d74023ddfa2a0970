//! Detectors of sieve on candle: the frozen ImageNet backbone, PatchCore, and the reader of
//! legacy PyTorch checkpoints.

pub mod backbone;
pub mod detector;
pub mod patchcore;
pub mod pth;
pub mod weights;
