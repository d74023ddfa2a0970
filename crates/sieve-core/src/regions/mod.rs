//! Candidate regions: connected components of a thresholded anomaly map and their descriptors.

mod attribute;
mod describe;
mod descriptor;
mod label;
#[cfg(test)]
mod reference;

pub use attribute::Attribute;
pub use describe::{candidates, describe, DescribeParams};
pub use descriptor::{BBox, Candidate, Descriptor};
pub use label::{label, threshold, Labels};
