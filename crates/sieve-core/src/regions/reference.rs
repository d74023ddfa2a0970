//! Naive references for the region tests: breadth-first flood fill over 8-neighbours.

use std::collections::VecDeque;

use proptest::prelude::*;

use crate::map::Mask;

/// Returns the pixels `(x, y)` of each 8-connected component of `mask`, components in raster
/// order of their first pixel.
pub fn flood_fill_components(mask: &Mask) -> Vec<Vec<(usize, usize)>> {
    let (w, h) = (mask.width, mask.height);
    let mut seen = vec![false; w * h];
    let mut components = Vec::new();
    for start in 0..w * h {
        if !mask.data[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let mut pixels = Vec::new();
        let mut queue = VecDeque::from([start]);
        while let Some(i) = queue.pop_front() {
            let (x, y) = (i % w, i / w);
            pixels.push((x, y));
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if mask.data[j] && !seen[j] {
                        seen[j] = true;
                        queue.push_back(j);
                    }
                }
            }
        }
        components.push(pixels);
    }
    components
}

/// Random masks from 0x0 to 11x11.
pub fn arbitrary_mask() -> impl Strategy<Value = Mask> {
    (0usize..12, 0usize..12).prop_flat_map(|(w, h)| {
        proptest::collection::vec(any::<bool>(), w * h).prop_map(move |data| Mask {
            width: w,
            height: h,
            data,
        })
    })
}
