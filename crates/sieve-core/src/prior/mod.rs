//! Prior files: what the real defects of one product look like in the image, written down in
//! TOML, and which region attributes the false-alarm filter uses.
//!
//! A file is parsed into unchecked structs and then checked once into [`Prior`], so code
//! given a `Prior` can trust every value in it. Sizes are pixels of the original image.
//!
//! # Schema
//!
//! Top level:
//! - `features`: attribute names (see [`Attribute`](crate::regions::Attribute))
//!   that form the SVM's input vector, in order.
//! - `envelope` (optional): attributes that the false-alarm envelope checks; defaults to
//!   every attribute of the descriptor.
//! - `[[defect]]`: one table per defect kind, at least one.
//! - `[augment]` (optional): how the filter augments samples when it balances classes.
//!
//! Every numeric key of a defect kind takes one of four forms:
//! - a fixed number: `edge = 1.5`;
//! - a uniform range: `size = [8, 20]`;
//! - a uniform choice from a union of ranges, each picked in proportion to its length:
//!   `center_x = [[0.0, 0.1], [0.9, 1.0]]`;
//! - a normal, clipped at 4 standard deviations and optionally at `min`/`max`:
//!   `contrast = { mean = -0.2, std = 0.05, max = -0.05 }`.
//!
//! Keys of a `[[defect]]` table:
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `name` | unique name of the kind | required |
//! | `shape` | `square`, `rectangle`, `ellipse`, `circle`, `line`, `polyline` or `blob` | required |
//! | `size` | side of a square, diameter of a circle, mean diameter of a blob, or `sqrt(width * height)` of a rectangle or ellipse given with `aspect` | required where used |
//! | `width`, `height` | sides of a rectangle, axes of an ellipse | required where used |
//! | `aspect` | width / height: a parameter next to `size`, a constraint next to `width` and `height` | 1 with `size` |
//! | `length`, `thickness` | of a line or polyline | required where used |
//! | `segments` | straight pieces of a polyline, rounded to an integer in 1..=64 | 4 |
//! | `bend` | a polyline's maximum turn at each joint, degrees | 30 |
//! | `irregularity` | how far a blob's radius varies, fraction of the mean radius, 0..=0.9 | 0.3 |
//! | `area` | `[lo, hi]` constraint on the nominal area, px² | none |
//! | `center_x`, `center_y` | centre as a fraction of the image width and height | `[0, 1]` |
//! | `angle` | rotation, degrees | `[0, 180]` |
//! | `contrast` | luma of the defect minus luma of the local surface, -1..=1 | required |
//! | `edge` | width of the soft edge, px | 1 |
//! | `texture` | standard deviation of multiplicative noise inside the defect | 0 |
//! | `tint` | `[r, g, b]` colour the defect takes on RGB images | none (all channels alike) |
//! | `weight` | share of this kind among synthetic defects | 1 |
//!
//! A square has `width = height` by construction. The `area` and `aspect` constraints are met
//! by rejection sampling. Checking the file rejects a constraint that none of 2,000 seeded
//! draws meets.
//!
//! Keys of `[augment]`: `noise` (standard deviation added to each standardised attribute,
//! default 0.05), `shift` (maximum translation, fraction of the image side, default 0),
//! `mirror_x` and `mirror_y` (whether the product allows mirror symmetry, default false),
//! `copies` (maximum augmented copies per sample, default 3).
//!
//! # Example
//!
//! ```
//! use sieve_core::prior::Prior;
//!
//! let prior: Prior = r#"
//! features = ["area", "width", "height", "aspect", "contrast"]
//! envelope = ["area", "contrast"]
//!
//! [[defect]]
//! name = "dent"
//! shape = "square"
//! size = [10, 18]
//! center_x = [0.35, 0.65]
//! center_y = [0.35, 0.65]
//! contrast = [-0.30, -0.10]
//! edge = [1.0, 3.0]
//! weight = 2.0
//!
//! [[defect]]
//! name = "stain"
//! shape = "rectangle"
//! width = [10, 60]
//! height = [10, 60]
//! aspect = [0.5, 2.0]
//! area = [200, 1500]
//! contrast = { mean = 0.15, std = 0.05, min = 0.05 }
//! texture = 0.05
//! tint = [0.8, 0.6, 0.3]
//!
//! [[defect]]
//! name = "scratch"
//! shape = "polyline"
//! length = [40, 200]
//! thickness = [1, 4]
//! segments = [2, 6]
//! bend = 20
//! center_x = [[0.0, 0.2], [0.8, 1.0]]
//! contrast = [-0.4, -0.1]
//!
//! [augment]
//! noise = 0.05
//! shift = 0.1
//! mirror_x = true
//! copies = 4
//! "#
//! .parse()?;
//!
//! assert_eq!(prior.kinds().len(), 3);
//! prior.check_image_size(256, 256)?;
//! assert!(prior.check_image_size(100, 100).is_err());
//! # Ok::<(), sieve_core::prior::PriorError>(())
//! ```

mod check;
mod error;
mod raw;
mod value;

pub use check::{Augment, DefectKind, Prior, Shape, ShapeDraw, Sides, CONSTRAINT_CHECK_DRAWS};
pub use error::PriorError;
pub use raw::ShapeKind;
pub use value::{Value, NORMAL_CLIP_STD};

#[cfg(test)]
mod tests;
