//! Detectors of sieve on candle: the frozen ImageNet backbone, PatchCore, FastFlow, CFlow,
//! the normalising-flow building blocks, and the reader of legacy PyTorch checkpoints.

pub mod backbone;
pub mod cflow;
pub mod detector;
pub mod fastflow;
pub mod flow;
pub mod patchcore;
mod pool;
pub mod pth;
pub mod weights;
