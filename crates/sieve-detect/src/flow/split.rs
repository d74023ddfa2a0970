//! The seeded split of the training images into those a flow trains on and those held out for
//! early stopping and out-of-fold maps.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Number of held-out images out of `images`: `share * images` rounded, at least 1 and at most
/// `images - 1`, so both parts are non-empty when `images` is at least 2.
pub fn held_out_count(share: f64, images: usize) -> usize {
    let count = (share * images as f64).round() as usize;
    count.clamp(1, images.saturating_sub(1).max(1))
}

/// Splits `0..images` into training and held-out indices, both ascending. The `held_out`
/// held-out indices are a uniformly random draw from a generator seeded with `seed`.
///
/// # Panics
/// When `held_out > images`.
pub fn split_held_out(images: usize, held_out: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..images).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (held, rest) = order.split_at(held_out);
    let (mut train, mut held) = (rest.to_vec(), held.to_vec());
    train.sort_unstable();
    held.sort_unstable();
    (train, held)
}
