//! Sorted scores split by class, and a sweep over their distinct values from high to low.
//!
//! Scores are stored as order-preserving `u32` keys so that sorting needs no float comparison
//! and memory stays at four bytes per score (eight for positives that carry a region id). The
//! keys are sorted with a least-significant-digit radix sort, which needs a second buffer of
//! the same size while it runs.

use super::{LabelClass, MetricError};
use crate::pages::advise_huge_pages;

/// Bits of one radix sort digit: 2,048 buckets, whose counters stay in the L1 or L2 cache.
const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;

/// Maps a finite score to a `u32` whose unsigned order is the float order.
///
/// `-0.0` maps to the key of `+0.0`, so both are one threshold as in NumPy comparisons.
pub(crate) fn score_key(score: f32) -> u32 {
    // Adding +0.0 turns -0.0 into +0.0 and leaves every other finite value unchanged.
    let bits = (score + 0.0).to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverts [`score_key`].
pub(crate) fn key_score(key: u32) -> f32 {
    if key & 0x8000_0000 != 0 {
        f32::from_bits(key & 0x7fff_ffff)
    } else {
        f32::from_bits(!key)
    }
}

/// A sorted entry of one class: a plain score key, or a key with a payload in the low bits.
pub(crate) trait Keyed: Copy + Ord + Default {
    /// Width of the entry in bits.
    const BITS: u32;

    fn key(self) -> u32;

    /// Returns the entry as an unsigned integer with the same order.
    fn bits(self) -> u64;
}

impl Keyed for u32 {
    const BITS: u32 = u32::BITS;

    fn key(self) -> u32 {
        self
    }

    fn bits(self) -> u64 {
        u64::from(self)
    }
}

/// The key sits in the high 32 bits, so sorting the `u64` sorts by score first.
impl Keyed for u64 {
    const BITS: u32 = u64::BITS;

    fn key(self) -> u32 {
        (self >> 32) as u32
    }

    fn bits(self) -> u64 {
        self
    }
}

/// Sorts `items` ascending with a least-significant-digit radix sort on digits of
/// [`DIGIT_BITS`] bits. One pass counts every digit, then each digit that differs between
/// items takes one stable scatter pass into a second buffer. The result equals
/// `sort_unstable`'s, because equal entries are indistinguishable.
pub(crate) fn radix_sort<P: Keyed>(items: &mut Vec<P>) {
    let digits = P::BITS.div_ceil(DIGIT_BITS) as usize;
    let digit =
        |item: P, d: usize| (item.bits() >> (d as u32 * DIGIT_BITS)) as usize & (BUCKETS - 1);

    let mut counts = vec![[0usize; BUCKETS]; digits];
    for &item in items.iter() {
        for (d, count) in counts.iter_mut().enumerate() {
            count[digit(item, d)] += 1;
        }
    }

    let mut scratch = vec![P::default(); items.len()];
    advise_huge_pages(&scratch);
    for (d, count) in counts.iter().enumerate() {
        // A digit shared by every item leaves the order as it is.
        if count.contains(&items.len()) {
            continue;
        }
        let mut next = [0usize; BUCKETS];
        let mut start = 0;
        for (next, &c) in next.iter_mut().zip(count) {
            *next = start;
            start += c;
        }
        for &item in items.iter() {
            let bucket = digit(item, d);
            scratch[next[bucket]] = item;
            next[bucket] += 1;
        }
        std::mem::swap(items, &mut scratch);
    }
}

/// Scores of both classes, each sorted ascending by key.
pub(crate) struct SortedScores<P> {
    pub positives: Vec<P>,
    pub negatives: Vec<u32>,
}

impl<P: Keyed> SortedScores<P> {
    /// Sorts both classes in place and wraps them.
    pub fn new(mut positives: Vec<P>, mut negatives: Vec<u32>) -> Self {
        radix_sort(&mut positives);
        radix_sort(&mut negatives);
        Self {
            positives,
            negatives,
        }
    }

    /// Returns `OneClass` for `metric` when a class listed in `required` has no sample.
    pub fn require(
        &self,
        metric: &'static str,
        required: &[LabelClass],
    ) -> Result<(), MetricError> {
        for &class in required {
            let count = match class {
                LabelClass::Positive => self.positives.len(),
                LabelClass::Negative => self.negatives.len(),
            };
            if count == 0 {
                return Err(MetricError::OneClass {
                    metric,
                    missing: class,
                });
            }
        }
        Ok(())
    }

    /// Iterates over the distinct scores from the highest to the lowest.
    pub fn sweep(&self) -> Sweep<'_, P> {
        Sweep {
            positives: &self.positives,
            negatives: &self.negatives,
            true_positives: 0,
            false_positives: 0,
        }
    }
}

impl SortedScores<u32> {
    /// Checks paired scores and labels and sorts them by class.
    pub fn from_labelled(
        scores: &[f32],
        labels: &[bool],
        metric: &'static str,
    ) -> Result<Self, MetricError> {
        check_scores(scores, labels, metric)?;

        let positive_count = labels.iter().filter(|&&label| label).count();
        let mut positives = Vec::with_capacity(positive_count);
        let mut negatives = Vec::with_capacity(labels.len() - positive_count);
        advise_huge_pages(&positives);
        advise_huge_pages(&negatives);
        for (&score, &label) in scores.iter().zip(labels) {
            if label {
                positives.push(score_key(score));
            } else {
                negatives.push(score_key(score));
            }
        }
        Ok(Self::new(positives, negatives))
    }
}

/// Checks that scores and labels pair up, are not empty and that every score is finite.
pub(crate) fn check_scores(
    scores: &[f32],
    labels: &[bool],
    metric: &'static str,
) -> Result<(), MetricError> {
    if scores.len() != labels.len() {
        return Err(MetricError::LengthMismatch {
            scores: scores.len(),
            labels: labels.len(),
        });
    }
    if scores.is_empty() {
        return Err(MetricError::Empty { metric });
    }
    if let Some(index) = scores.iter().position(|score| !score.is_finite()) {
        return Err(MetricError::NonFiniteScore {
            index,
            value: scores[index],
        });
    }
    Ok(())
}

/// One distinct score of the sweep and the counts at or above it.
pub(crate) struct Step<'a, P> {
    pub threshold: f32,
    /// Positives with a score at or above `threshold`.
    pub true_positives: u64,
    /// Negatives with a score at or above `threshold`.
    pub false_positives: u64,
    /// The positives whose score equals `threshold`.
    pub new_positives: &'a [P],
}

/// Iterator over distinct scores, highest first, built by [`SortedScores::sweep`].
pub(crate) struct Sweep<'a, P> {
    /// Positives not yet passed, sorted ascending, so the next ones sit at the end.
    positives: &'a [P],
    negatives: &'a [u32],
    true_positives: u64,
    false_positives: u64,
}

impl<'a, P: Keyed> Iterator for Sweep<'a, P> {
    type Item = Step<'a, P>;

    fn next(&mut self) -> Option<Self::Item> {
        let top_positive = self.positives.last().map(|p| p.key());
        let top_negative = self.negatives.last().copied();
        let key = top_positive.max(top_negative)?;

        let positive_start = self.positives.len()
            - self
                .positives
                .iter()
                .rev()
                .take_while(|p| p.key() == key)
                .count();
        let new_positives = &self.positives[positive_start..];
        self.positives = &self.positives[..positive_start];

        let negative_start = self.negatives.len()
            - self
                .negatives
                .iter()
                .rev()
                .take_while(|&&n| n == key)
                .count();
        let new_negatives = self.negatives.len() - negative_start;
        self.negatives = &self.negatives[..negative_start];

        self.true_positives += new_positives.len() as u64;
        self.false_positives += new_negatives as u64;
        Some(Step {
            threshold: key_score(key),
            true_positives: self.true_positives,
            false_positives: self.false_positives,
            new_positives,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_key_preserves_order() {
        let scores = [
            f32::MIN,
            -1.5,
            -f32::MIN_POSITIVE,
            0.0,
            f32::MIN_POSITIVE,
            1.0,
            f32::MAX,
        ];
        for pair in scores.windows(2) {
            assert!(score_key(pair[0]) < score_key(pair[1]), "{pair:?}");
        }
        for score in scores {
            assert_eq!(key_score(score_key(score)), score);
        }
    }

    proptest::proptest! {
        #[test]
        fn radix_sort_matches_sort_unstable_u32(
            mut items in proptest::collection::vec(proptest::num::u32::ANY, 0..300),
            high_bits in 0u32..4,
        ) {
            // Clearing high bits makes some digits equal in every item, so their passes are skipped.
            let mask = u32::MAX >> (high_bits * 11).min(31);
            items.iter_mut().for_each(|item| *item &= mask);
            let mut expected = items.clone();
            expected.sort_unstable();
            radix_sort(&mut items);
            proptest::prop_assert_eq!(items, expected);
        }

        #[test]
        fn radix_sort_matches_sort_unstable_u64(
            keys in proptest::collection::vec(0u32..50, 0..300),
            regions in proptest::collection::vec(proptest::num::u64::ANY, 300),
        ) {
            // Keys in the high half and small region ids in the low half, as the PRO curve
            // stores defect pixels, with many ties in the key.
            let mut items: Vec<u64> = keys
                .iter()
                .zip(&regions)
                .map(|(&key, &region)| (u64::from(key) << 32) | (region % 5000))
                .collect();
            let mut expected = items.clone();
            expected.sort_unstable();
            radix_sort(&mut items);
            proptest::prop_assert_eq!(items, expected);
        }
    }

    #[test]
    fn score_key_merges_signed_zeros() {
        assert_eq!(score_key(-0.0), score_key(0.0));
    }

    #[test]
    fn sweep_groups_ties_across_classes() {
        let sorted =
            SortedScores::from_labelled(&[0.5, 0.5, 0.2, 0.9], &[true, false, true, false], "test")
                .unwrap();
        let steps: Vec<(f32, u64, u64, usize)> = sorted
            .sweep()
            .map(|s| {
                (
                    s.threshold,
                    s.true_positives,
                    s.false_positives,
                    s.new_positives.len(),
                )
            })
            .collect();
        assert_eq!(steps, vec![(0.9, 0, 1, 0), (0.5, 1, 2, 1), (0.2, 2, 2, 1)]);
    }
}
