//! Errors raised while painting synthetic defects.

use crate::prior::PriorError;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot paint into a {width}x{height} image; both sides must be at least 1 pixel")]
    EmptyImage { width: u32, height: u32 },
    #[error("the prior does not fit the image: {0}")]
    Prior(#[from] PriorError),
    #[error("constraint `{key}.area` or `{key}.aspect` of defect {kind:?} was not met in {tries} draws; widen it or change the size ranges")]
    ConstraintNotMet {
        key: String,
        kind: String,
        tries: usize,
    },
}
