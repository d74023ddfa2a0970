//! Thresholding an anomaly map and labelling the 8-connected components of the mask, with a
//! two-pass union-find (Rosenfeld and Pfaltz, "Sequential operations in digital picture
//! processing", JACM 1966).

use serde::{Deserialize, Serialize};

use crate::map::{AnomalyMap, Mask};

/// Component labels of a mask, `(height, width)` row-major: 0 is background, and components are
/// numbered `1..=count` in raster order of their first pixel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    pub width: usize,
    pub height: usize,
    pub labels: Vec<u32>,
    pub count: u32,
}

impl Labels {
    /// Returns the label of pixel `(x, y)`. Panics when the pixel lies outside the grid.
    pub fn get(&self, x: usize, y: usize) -> u32 {
        self.labels[y * self.width + x]
    }

    /// Builds the mask of the pixels carrying `label`.
    pub fn mask(&self, label: u32) -> Mask {
        Mask {
            width: self.width,
            height: self.height,
            data: self.labels.iter().map(|&l| l == label).collect(),
        }
    }
}

/// Marks the pixels whose score is at least `t`. Pixels with a NaN score stay off.
pub fn threshold(map: &AnomalyMap, t: f32) -> Mask {
    Mask {
        width: map.width,
        height: map.height,
        data: map.data.iter().map(|&a| a >= t).collect(),
    }
}

/// Labels the 8-connected components of `mask`.
///
/// ```
/// use sieve_core::regions::{label, threshold};
/// use sieve_core::AnomalyMap;
///
/// let map = AnomalyMap::from_vec(5, 4, vec![
///     0.9, 0.0, 0.0, 0.8, 0.8,
///     0.0, 0.7, 0.0, 0.0, 0.0,
///     0.0, 0.0, 0.0, 0.0, 0.0,
///     0.6, 0.6, 0.0, 0.0, 0.9,
/// ]);
/// let labels = label(&threshold(&map, 0.5));
///
/// // The two top-left pixels touch diagonally, so they form one component.
/// assert_eq!(labels.count, 4);
/// assert_eq!(labels.labels, vec![
///     1, 0, 0, 2, 2,
///     0, 1, 0, 0, 0,
///     0, 0, 0, 0, 0,
///     3, 3, 0, 0, 4,
/// ]);
/// ```
///
/// # Panics
/// Panics when the mask has `u32::MAX` pixels or more.
pub fn label(mask: &Mask) -> Labels {
    let (width, height) = (mask.width, mask.height);
    assert!(
        mask.data.len() < u32::MAX as usize,
        "mask of {width}x{height} pixels is too large to label; labels are u32"
    );

    let mut provisional = vec![0u32; mask.data.len()];
    // Union-find forest over provisional labels: `parent[k]` is the parent of label k, and
    // entry 0 is the background.
    let mut parent: Vec<u32> = vec![0];

    // First pass: give each pixel the smallest label among its already visited neighbours
    // (west, north-west, north, north-east) and record which labels touch.
    for y in 0..height {
        let row = y * width;
        for x in 0..width {
            if !mask.data[row + x] {
                continue;
            }
            let north = |dx: isize| -> u32 {
                let nx = x as isize + dx;
                if y == 0 || nx < 0 || nx as usize >= width {
                    0
                } else {
                    provisional[row - width + nx as usize]
                }
            };
            let n = north(0);
            let assigned = if n != 0 {
                // The north pixel touches the west, north-west and north-east ones, so they
                // already share its set.
                n
            } else {
                let w = if x > 0 { provisional[row + x - 1] } else { 0 };
                let nw = north(-1);
                let ne = north(1);
                let first = [w, nw, ne].into_iter().find(|&l| l != 0);
                match first {
                    None => {
                        let fresh = parent.len() as u32;
                        parent.push(fresh);
                        fresh
                    }
                    Some(l) => {
                        if ne != 0 {
                            union(&mut parent, l, ne);
                        }
                        l
                    }
                }
            };
            provisional[row + x] = assigned;
        }
    }

    // Second pass: replace each provisional label by its set's final label, numbering sets in
    // raster order of their first pixel.
    let mut final_label = vec![0u32; parent.len()];
    let mut count = 0u32;
    for l in provisional.iter_mut() {
        if *l == 0 {
            continue;
        }
        let root = find(&mut parent, *l) as usize;
        if final_label[root] == 0 {
            count += 1;
            final_label[root] = count;
        }
        *l = final_label[root];
    }

    Labels {
        width,
        height,
        labels: provisional,
        count,
    }
}

/// Returns the root of `l`'s set, halving the path on the way.
fn find(parent: &mut [u32], mut l: u32) -> u32 {
    while parent[l as usize] != l {
        let grandparent = parent[parent[l as usize] as usize];
        parent[l as usize] = grandparent;
        l = grandparent;
    }
    l
}

/// Merges the sets of `a` and `b`, keeping the smaller root as the root of both.
fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::reference::{arbitrary_mask, flood_fill_components};
    use proptest::prelude::*;

    /// Labels built from the flood-fill reference components.
    fn flood_fill_labels(mask: &Mask) -> Labels {
        let mut labels = vec![0u32; mask.width * mask.height];
        let components = flood_fill_components(mask);
        for (k, pixels) in components.iter().enumerate() {
            for &(x, y) in pixels {
                labels[y * mask.width + x] = k as u32 + 1;
            }
        }
        Labels {
            width: mask.width,
            height: mask.height,
            labels,
            count: components.len() as u32,
        }
    }

    proptest! {
        #[test]
        fn label_matches_flood_fill(mask in arbitrary_mask()) {
            prop_assert_eq!(label(&mask), flood_fill_labels(&mask));
        }
    }

    #[test]
    fn label_of_empty_and_single_pixel() {
        let empty = label(&Mask::empty(0, 0));
        assert_eq!((empty.count, empty.labels.len()), (0, 0));

        let off = label(&Mask::empty(1, 1));
        assert_eq!((off.count, off.labels.clone()), (0, vec![0]));

        let on = Mask {
            width: 1,
            height: 1,
            data: vec![true],
        };
        assert_eq!(label(&on).labels, vec![1]);
    }

    #[test]
    fn label_joins_u_shape_late() {
        // The two arms get different provisional labels that only meet on the last row.
        let mask = Mask {
            width: 3,
            height: 3,
            data: vec![
                true, false, true, //
                true, false, true, //
                true, true, true,
            ],
        };
        let labels = label(&mask);
        assert_eq!(labels.count, 1);
        assert!(labels
            .labels
            .iter()
            .zip(&mask.data)
            .all(|(&l, &m)| (l == 1) == m));
    }

    #[test]
    fn threshold_includes_equal_and_skips_nan() {
        let map = AnomalyMap::from_vec(4, 1, vec![0.4, 0.5, 0.6, f32::NAN]);
        assert_eq!(threshold(&map, 0.5).data, vec![false, true, true, false]);
    }

    #[test]
    fn mask_of_label_selects_its_pixels() {
        let mask = Mask {
            width: 3,
            height: 1,
            data: vec![true, false, true],
        };
        assert_eq!(label(&mask).mask(2).data, vec![false, false, true]);
    }
}
