//! Thresholding an anomaly map and labelling the 8-connected components of the mask. The
//! labeller finds the runs of on pixels of each row in one pass, joins touching runs of
//! neighbouring rows with a union-find, and then writes each run's final label.

use serde::{Deserialize, Serialize};

use crate::map::{AnomalyMap, Mask};
use crate::pages::advise_huge_pages;

/// Pixels tested together when skipping a stretch of off pixels. A whole chunk is tested
/// without branches, which the compiler vectorises.
const SKIP_CHUNK: usize = 32;

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
    label_rows(mask.width, mask.height, |y, runs| {
        push_runs(
            &mask.data[y * mask.width..(y + 1) * mask.width],
            y,
            |&on| on,
            runs,
        )
    })
    .labels
}

/// A run of pixels `x0..x1` in row `y` that all carry `label`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub y: usize,
    pub x0: usize,
    pub x1: usize,
    pub label: u32,
}

/// The 8-connected components of a mask, as dense labels and as the runs they are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    pub labels: Labels,
    /// Every labelled pixel in maximal runs, in raster order.
    pub runs: Vec<Run>,
}

/// Labels the 8-connected components of the pixels scoring at least `t`. The labels are those
/// of `label(&threshold(map, t))`, found without building the mask. Pixels with a NaN score
/// stay off.
///
/// # Panics
/// Panics when the map has `u32::MAX` pixels or more.
pub fn label_components(map: &AnomalyMap, t: f32) -> Components {
    label_rows(map.width, map.height, |y, runs| {
        push_runs(
            &map.data[y * map.width..(y + 1) * map.width],
            y,
            |&a| a >= t,
            runs,
        )
    })
}

/// Labels the components of the pixels scoring at least `t` as [`label_components`] does, and
/// copies `map` in the same pass, which reads each row once while it is in cache.
pub(crate) fn label_components_and_copy(map: &AnomalyMap, t: f32) -> (Components, AnomalyMap) {
    let mut copy = Vec::with_capacity(map.data.len());
    advise_huge_pages(&copy);
    let components = label_rows(map.width, map.height, |y, runs| {
        let row = &map.data[y * map.width..(y + 1) * map.width];
        copy.extend_from_slice(row);
        push_runs(row, y, |&a| a >= t, runs)
    });
    (
        components,
        AnomalyMap::from_vec(map.width, map.height, copy),
    )
}

impl Labels {
    /// Splits the labelled pixels into maximal runs of one label, in raster order.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs = Vec::new();
        for (y, row) in self.labels.chunks_exact(self.width.max(1)).enumerate() {
            let mut x = 0;
            while x < row.len() {
                x += skip_chunks(&row[x..], |&l| l != 0);
                while x < row.len() && row[x] == 0 {
                    x += 1;
                }
                if x == row.len() {
                    break;
                }
                let (x0, label) = (x, row[x]);
                while x < row.len() && row[x] == label {
                    x += 1;
                }
                runs.push(Run {
                    y,
                    x0,
                    x1: x,
                    label,
                });
            }
        }
        runs
    }
}

/// Returns how many leading elements of `row` lie in whole chunks of [`SKIP_CHUNK`] elements
/// none of which is `on`. Each chunk is tested without branches, which the compiler
/// vectorises.
fn skip_chunks<T>(row: &[T], on: impl Fn(&T) -> bool) -> usize {
    row.chunks_exact(SKIP_CHUNK)
        .take_while(|chunk| !chunk.iter().fold(false, |any, value| any | on(value)))
        .count()
        * SKIP_CHUNK
}

/// Appends the runs of on pixels of `row` (row `y` of the grid), left to right.
fn push_runs<T>(row: &[T], y: usize, on: impl Fn(&T) -> bool, runs: &mut Vec<Run>) {
    let width = row.len();
    let mut x = 0;
    while x < width {
        // After the skipped chunks, the scan stops inside the first chunk with an on pixel, or
        // runs through the last, partial chunk.
        x += skip_chunks(&row[x..], &on);
        while x < width && !on(&row[x]) {
            x += 1;
        }
        if x == width {
            break;
        }

        let x0 = x;
        while x < width && on(&row[x]) {
            x += 1;
        }
        runs.push(Run {
            y,
            x0,
            x1: x,
            label: 0,
        });
    }
}

/// Labels a `width`x`height` grid whose runs of on pixels `push_row_runs(y, runs)` appends, row
/// by row. The runs it appends carry no label yet.
fn label_rows(
    width: usize,
    height: usize,
    mut push_row_runs: impl FnMut(usize, &mut Vec<Run>),
) -> Components {
    let pixels = width * height;
    assert!(
        pixels < u32::MAX as usize,
        "mask of {width}x{height} pixels is too large to label; labels are u32"
    );

    let mut runs: Vec<Run> = Vec::new();
    // Union-find forest over provisional labels: `parent[k]` is the parent of label k, and
    // entry 0 is the background.
    let mut parent: Vec<u32> = vec![0];

    // First pass: find the runs of each row and join each run to the runs of the row above that
    // touch it, including diagonally: run `[a0, a1)` touches `[b0, b1)` when `b0 <= a1` and
    // `b1 >= a0`.
    let mut previous = 0..0;
    for y in 0..height {
        let start = runs.len();
        push_row_runs(y, &mut runs);
        let current = start..runs.len();

        let mut first_above = previous.start;
        for r in current.clone() {
            let (x0, x1) = (runs[r].x0, runs[r].x1);
            // Runs above that end left of this run end left of every later run too.
            while first_above < previous.end && runs[first_above].x1 < x0 {
                first_above += 1;
            }
            let mut assigned = 0;
            let mut above = first_above;
            while above < previous.end && runs[above].x0 <= x1 {
                let l = runs[above].label;
                if assigned == 0 {
                    assigned = l;
                } else {
                    union(&mut parent, assigned, l);
                }
                above += 1;
            }
            if assigned == 0 {
                assigned = parent.len() as u32;
                parent.push(assigned);
            }
            runs[r].label = assigned;
        }
        previous = current;
    }

    // Second pass: number the sets in raster order of their first pixel, which is the first
    // pixel of their first run, and write each run's final label.
    let mut labels = vec![0u32; pixels];
    advise_huge_pages(&labels);
    let mut final_label = vec![0u32; parent.len()];
    let mut count = 0u32;
    for run in runs.iter_mut() {
        let root = find(&mut parent, run.label) as usize;
        if final_label[root] == 0 {
            count += 1;
            final_label[root] = count;
        }
        run.label = final_label[root];
        let row = run.y * width;
        labels[row + run.x0..row + run.x1].fill(run.label);
    }

    Components {
        labels: Labels {
            width,
            height,
            labels,
            count,
        },
        runs,
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

    /// Random wide masks, mostly off, so that rows have long stretches to skip.
    fn sparse_wide_mask() -> impl Strategy<Value = Mask> {
        (0usize..100, 0usize..8).prop_flat_map(|(w, h)| {
            proptest::collection::vec(0u8..10, w * h).prop_map(move |draws| Mask {
                width: w,
                height: h,
                data: draws.iter().map(|&d| d == 0).collect(),
            })
        })
    }

    proptest! {
        #[test]
        fn label_matches_flood_fill(mask in arbitrary_mask()) {
            prop_assert_eq!(label(&mask), flood_fill_labels(&mask));
        }

        #[test]
        fn label_matches_flood_fill_on_wide_rows(mask in sparse_wide_mask()) {
            prop_assert_eq!(label(&mask), flood_fill_labels(&mask));
        }

        #[test]
        fn label_components_matches_mask_path(
            (width, scores) in (0usize..70).prop_flat_map(|w| {
                (Just(w), proptest::collection::vec(
                    prop_oneof![Just(f32::NAN), Just(0.5f32), 0.0f32..1.0], w * 5))
            }),
            t in 0.3f32..0.9,
        ) {
            let map = AnomalyMap::from_vec(width, 5, scores);
            let components = label_components(&map, t);
            let labels = label(&threshold(&map, t));
            let (copied_components, copy) = label_components_and_copy(&map, t);
            prop_assert_eq!(&copied_components, &components);
            prop_assert_eq!(copy.data.len(), map.data.len());
            prop_assert!(copy.data.iter().zip(&map.data).all(|(a, b)| a.to_bits() == b.to_bits()));
            prop_assert_eq!(&components.runs, &labels.runs());
            prop_assert_eq!(components.labels, labels);
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
