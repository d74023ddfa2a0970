//! Candidate regions: connected components of a thresholded anomaly map and their descriptors.

mod attribute;

pub use attribute::Attribute;
