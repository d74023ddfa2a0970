//! PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022):
//! a memory bank of locally aggregated patch features chosen by greedy coreset selection,
//! scoring each patch by the distance to its nearest bank row. There is no training loop.

mod bank;
mod coreset;
mod embed;
mod error;
mod params;
mod search;
mod store;

pub use bank::{PatchCore, PatchCoreBuilder, PatchCoreFit};
pub use coreset::{greedy_coreset, CoresetSelection};
pub use embed::embed;
pub use error::PatchCoreError;
pub use params::{PatchCoreParams, PatchCoreValidParams};
pub use store::{MODEL_FILE, SETTINGS_FILE};
