//! CFlow (Gudovskiy, Ishizaka and Kozuka, "CFLOW-AD: Real-Time Unsupervised Anomaly Detection
//! with Localization via Conditional Normalizing Flows", WACV 2022): per backbone feature
//! scale, a normalising flow over single feature vectors, conditioned on a 2D sinusoidal
//! encoding of their position and trained on random batches of vectors from the features of
//! defect-free images. Positions whose vectors are unlikely score high.

mod encoding;
mod error;
mod fit;
mod model;
mod params;
mod store;

pub use encoding::positional_encoding;
pub use error::CFlowError;
pub use fit::{fit_model, split_held_out, CFlowFit};
pub use model::CFlowModel;
pub use params::{CFlowParams, CFlowValidParams};
pub use store::{MODEL_FILE, SETTINGS_FILE};
