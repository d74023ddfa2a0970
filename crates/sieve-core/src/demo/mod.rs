//! A small synthetic inspection set in the MVTec AD layout, for trying the toolkit without real
//! data: a brushed-metal surface, rare harmless bright patterns (stains, stamps) that a
//! detector flags as false alarms, and small dark defects (scratches, pits) with exact masks.

mod error;
mod generate;
mod layout;
mod paint;
mod params;
mod summary;
mod surface;

#[cfg(test)]
mod tests;

pub use error::DemoError;
pub use generate::generate;
pub use layout::MARKER;
pub use params::{CheckedDemoParams, DemoParams, SurfaceParams, MAX_SIDE, MIN_SIDE};
pub use summary::{
    BoundingBox, DefectKind, DefectRecord, DemoImage, DemoSummary, PatternKind, PatternRecord,
    Split,
};
