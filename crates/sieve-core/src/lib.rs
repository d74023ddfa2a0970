//! Core of sieve: anomaly maps, candidate regions and their descriptors, defect priors and
//! synthesis, the SVM false-alarm filter, thresholds, metrics and datasets.
//!
//! Conventions used throughout: images and maps are row-major, `(height, width)`, with `x` the
//! column. A higher anomaly score means more anomalous. Pixel values of images are `0..=1`.

pub mod dataset;
pub mod demo;
pub mod filter;
pub mod fsutil;
pub mod imageio;
pub mod map;
pub mod mapio;
pub mod metrics;
pub mod pages;
pub mod prior;
pub mod regions;
pub mod svm;
pub mod synth;

pub use map::{AnomalyMap, Mask};
