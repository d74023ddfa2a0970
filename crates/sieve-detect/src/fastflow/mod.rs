//! FastFlow (Yu et al., "FastFlow: Unsupervised Anomaly Detection and Localization via 2D
//! Normalizing Flows", 2021): a 2D normalising flow per backbone feature scale, trained on the
//! features of defect-free images to map them to a standard normal distribution. Positions
//! the flow finds unlikely score high.

mod error;
mod fit;
mod model;
mod params;
mod store;

pub use crate::flow::FeatureCache;
pub use error::FastFlowError;
pub use fit::{fit_model, split_held_out, FastFlowFit};
pub use model::{layer_norm, FastFlowModel};
pub use params::{FastFlowMap, FastFlowParams, FastFlowValidParams};
pub use store::{MODEL_FILE, SETTINGS_FILE};
