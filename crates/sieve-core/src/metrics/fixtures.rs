//! Deterministic test fixtures, generated the same way by `scripts/metrics_reference.py`.
//!
//! Both use the Numerical Recipes 32-bit linear congruential generator, so the reference
//! values printed by the script apply to exactly these scores, labels and masks.

use crate::{AnomalyMap, Mask};

/// Advances the LCG: `state * 1664525 + 1013904223` modulo 2^32.
pub fn lcg(state: u32) -> u32 {
    state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223)
}

/// Returns `count` scores on `levels` distinct values `(level - levels / 2) / 16`, where higher
/// levels are more often labelled positive.
pub fn scored_fixture(count: usize, levels: u32, seed: u32) -> (Vec<f32>, Vec<bool>) {
    let mut state = seed;
    let mut scores = Vec::with_capacity(count);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        state = lcg(state);
        let level = (state >> 16) % levels;
        state = lcg(state);
        let draw = (state >> 16) % 1024;
        labels.push(draw < 256 + (512 * level) / levels);
        scores.push((level as f32 - (levels / 2) as f32) / 16.0);
    }
    (scores, labels)
}

pub const PRO_WIDTH: usize = 12;
pub const PRO_HEIGHT: usize = 9;

/// Defect rectangles per image as `(x0, y0, x1, y1)`, end exclusive. Image 0 has a 4x3 block, a
/// diagonal chain of three pixels (one 8-connected region) and a single pixel. Image 1 is
/// defect-free. Image 2 has a band, a diagonal pair and a corner pixel.
const PRO_RECTANGLES: [&[(usize, usize, usize, usize)]; 3] = [
    &[
        (2, 1, 6, 4),
        (7, 5, 8, 6),
        (8, 6, 9, 7),
        (9, 7, 10, 8),
        (10, 1, 11, 2),
    ],
    &[],
    &[(0, 6, 12, 9), (5, 2, 6, 3), (6, 3, 7, 4), (0, 0, 1, 1)],
];

/// Returns three 12x9 maps and masks. Scores lie on a 1/8 grid, and defect pixels score 10
/// levels higher.
pub fn pro_fixture(seed: u32) -> (Vec<AnomalyMap>, Vec<Mask>) {
    let mut state = seed;
    let mut maps = Vec::new();
    let mut masks = Vec::new();
    for rectangles in PRO_RECTANGLES {
        let mut mask = Mask::empty(PRO_WIDTH, PRO_HEIGHT);
        for &(x0, y0, x1, y1) in rectangles {
            for y in y0..y1 {
                for x in x0..x1 {
                    mask.data[y * PRO_WIDTH + x] = true;
                }
            }
        }

        let mut scores = Vec::with_capacity(PRO_WIDTH * PRO_HEIGHT);
        for &defect in &mask.data {
            state = lcg(state);
            let mut level = (state >> 16) % 32;
            if defect {
                level += 10;
            }
            scores.push(level as f32 / 8.0);
        }
        maps.push(AnomalyMap::from_vec(PRO_WIDTH, PRO_HEIGHT, scores));
        masks.push(mask);
    }
    (maps, masks)
}
