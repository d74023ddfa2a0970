//! Candidate regions: connected components of a thresholded anomaly map and their descriptors.

mod attribute;
mod describe;
mod descriptor;
mod dilation;
mod label;
#[cfg(test)]
mod reference;

pub use attribute::Attribute;
pub use describe::{candidates, describe, describe_components, DescribeParams};
pub use descriptor::{BBox, Candidate, Descriptor};
pub(crate) use dilation::RegionDilation;
pub(crate) use label::label_components_and_copy;
pub use label::{label, label_components, threshold, Components, Labels, Run};
