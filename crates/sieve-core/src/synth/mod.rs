//! Synthetic defects: draws a defect from a prior and paints it into a defect-free image, so
//! the detector can be run on it and its candidates become defect samples.
//!
//! Every random choice takes a seeded [`ChaCha8Rng`](rand_chacha::ChaCha8Rng), so a seed
//! reproduces the same image.

mod draw;
mod error;
mod paint;
mod raster;

pub use draw::{draw_defect, Defect, Outline, MAX_SHAPE_DRAWS};
pub use error::SynthError;
pub use paint::{footprint, paint, paint_defect, Painted};
pub use raster::coverage;

#[cfg(test)]
mod tests;
