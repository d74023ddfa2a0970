//! Numeric prior values: a fixed number, a uniform range, a union of ranges or a normal, and
//! the domain each key's values must stay in.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Deserialize;

use super::error::PriorError;

/// Normals are clipped at this many standard deviations from the mean, so that every value has
/// a finite support that `check_image_size` can bound.
pub const NORMAL_CLIP_STD: f64 = 4.0;

/// A numeric value as written in the file, before checking.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a number, a range [lo, hi], a list of ranges [[lo, hi], ...] or { mean = .., std = .. }"
)]
pub(crate) enum RawValue {
    Fixed(f64),
    Range(Vec<f64>),
    Ranges(Vec<Vec<f64>>),
    Normal(RawNormal),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNormal {
    mean: f64,
    std: f64,
    min: Option<f64>,
    max: Option<f64>,
}

/// A checked distribution of one numeric key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Always this number.
    Fixed(f64),
    /// Uniform on `lo..=hi`.
    Uniform { lo: f64, hi: f64 },
    /// Uniform on the union of disjoint or touching ranges: a range is picked with probability
    /// proportional to its length, then a value uniformly inside it.
    Union(Vec<(f64, f64)>),
    /// Normal with the given mean and standard deviation, clipped to `min..=max`. Both bounds
    /// are at most `NORMAL_CLIP_STD` standard deviations from the mean.
    Normal {
        mean: f64,
        std: f64,
        min: f64,
        max: f64,
    },
}

impl Value {
    /// Draws one value.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        match *self {
            Value::Fixed(v) => v,
            Value::Uniform { lo, hi } => uniform(lo, hi, rng),
            Value::Union(ref ranges) => {
                let total: f64 = ranges.iter().map(|(lo, hi)| hi - lo).sum();
                if total <= 0.0 {
                    let (lo, _) = ranges[rng.gen_range(0..ranges.len())];
                    return lo;
                }
                let mut pick = rng.gen_range(0.0..total);
                for &(lo, hi) in ranges {
                    if pick < hi - lo {
                        return lo + pick;
                    }
                    pick -= hi - lo;
                }
                ranges[ranges.len() - 1].1
            }
            Value::Normal {
                mean,
                std,
                min,
                max,
            } => {
                let noise: f64 = StandardNormal.sample(rng);
                (mean + std * noise).clamp(min, max)
            }
        }
    }

    /// Smallest and largest value `sample` can return.
    pub fn support(&self) -> (f64, f64) {
        match *self {
            Value::Fixed(v) => (v, v),
            Value::Uniform { lo, hi } => (lo, hi),
            Value::Union(ref ranges) => {
                let lo = ranges.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
                let hi = ranges.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
                (lo, hi)
            }
            Value::Normal { min, max, .. } => (min, max),
        }
    }

    /// Largest value `sample` can return.
    pub fn max(&self) -> f64 {
        self.support().1
    }
}

fn uniform(lo: f64, hi: f64, rng: &mut ChaCha8Rng) -> f64 {
    if lo >= hi {
        lo
    } else {
        rng.gen_range(lo..=hi)
    }
}

/// The values a key accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Domain {
    /// A length in pixels, `> 0`.
    Size,
    /// A closed interval.
    Closed(f64, f64),
    /// An interval open at the bottom, `lo < v <= hi`.
    OpenBelow(f64, f64),
}

impl Domain {
    fn contains(self, v: f64) -> bool {
        match self {
            Domain::Size => v > 0.0,
            Domain::Closed(lo, hi) => (lo..=hi).contains(&v),
            Domain::OpenBelow(lo, hi) => v > lo && v <= hi,
        }
    }

    fn describe(self) -> String {
        match self {
            Domain::Size => "range of sizes, > 0 px".to_string(),
            Domain::Closed(lo, hi) => format!("range {lo}..={hi}"),
            Domain::OpenBelow(lo, hi) => format!("range {lo} < value <= {hi}"),
        }
    }
}

/// Checks a raw value of `key` and returns its distribution; its whole support must lie in
/// `domain`.
pub(crate) fn check_value(raw: &RawValue, key: &str, domain: Domain) -> Result<Value, PriorError> {
    let value = match raw {
        RawValue::Fixed(v) => {
            finite(key, &[*v])?;
            Value::Fixed(*v)
        }
        RawValue::Range(bounds) => {
            let (lo, hi) = check_range(key, bounds)?;
            Value::Uniform { lo, hi }
        }
        RawValue::Ranges(ranges) => {
            if ranges.is_empty() {
                return Err(PriorError::EmptyRange {
                    key: key.to_string(),
                    value: "[]".to_string(),
                });
            }
            let mut checked = ranges
                .iter()
                .map(|r| check_range(key, r))
                .collect::<Result<Vec<_>, _>>()?;
            checked.sort_by(|a, b| a.0.total_cmp(&b.0));
            Value::Union(checked)
        }
        RawValue::Normal(normal) => check_normal(key, normal)?,
    };

    let (lo, hi) = value.support();
    for v in [lo, hi] {
        if domain.contains(v) {
            continue;
        }
        if matches!(domain, Domain::Size) {
            return Err(PriorError::NegativeSize {
                key: key.to_string(),
                value: v,
            });
        }
        return Err(PriorError::OutOfDomain {
            key: key.to_string(),
            value: v,
            domain: domain.describe(),
        });
    }
    Ok(value)
}

fn check_range(key: &str, bounds: &[f64]) -> Result<(f64, f64), PriorError> {
    let written = format!("{bounds:?}");
    match bounds {
        [] => Err(PriorError::EmptyRange {
            key: key.to_string(),
            value: written,
        }),
        [lo, hi] => {
            finite(key, bounds)?;
            if lo > hi {
                return Err(PriorError::InvertedRange {
                    key: key.to_string(),
                    value: written,
                });
            }
            Ok((*lo, *hi))
        }
        _ => Err(PriorError::RangeLength {
            key: key.to_string(),
            value: written,
            len: bounds.len(),
        }),
    }
}

fn check_normal(key: &str, normal: &RawNormal) -> Result<Value, PriorError> {
    let RawNormal {
        mean,
        std,
        min,
        max,
    } = *normal;
    finite(key, &[mean, std])?;
    if std <= 0.0 {
        return Err(PriorError::NonPositiveStd {
            key: key.to_string(),
            std,
        });
    }

    let clip_lo = mean - NORMAL_CLIP_STD * std;
    let clip_hi = mean + NORMAL_CLIP_STD * std;
    let min = min.unwrap_or(clip_lo);
    let max = max.unwrap_or(clip_hi);
    finite(key, &[min, max])?;
    if min > max {
        return Err(PriorError::InvertedRange {
            key: key.to_string(),
            value: format!("min = {min}, max = {max}"),
        });
    }
    let min = min.max(clip_lo);
    let max = max.min(clip_hi);
    if min > max {
        return Err(PriorError::EmptyRange {
            key: key.to_string(),
            value: format!(
                "{{ mean = {mean}, std = {std} }} clipped to {min}..={max}, which lies beyond {NORMAL_CLIP_STD} std of the mean"
            ),
        });
    }
    Ok(Value::Normal {
        mean,
        std,
        min,
        max,
    })
}

fn finite(key: &str, values: &[f64]) -> Result<(), PriorError> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(PriorError::NonFinite {
            key: key.to_string(),
            value: v.to_string(),
        }),
        None => Ok(()),
    }
}
