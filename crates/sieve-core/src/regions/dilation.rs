//! The pixels within a Chebyshev distance of one region, found from the region's runs: each
//! run grows by the distance to both sides and onto the rows within the distance, and the
//! grown runs of each row are merged. The work is proportional to the runs and to the pixels
//! visited, not to the region's bounding box.

use super::descriptor::BBox;
use super::label::{Labels, Run};

/// Reusable buffers for the dilation of one region at a time.
#[derive(Debug, Default)]
pub(crate) struct RegionDilation {
    /// The region's runs, when taken from a label grid.
    runs: Vec<Run>,
    /// Index into the region's runs of the first run of each row, plus an end marker.
    row_starts: Vec<usize>,
    /// Grown runs of the current row as `(x0, x1)`, then merged in place.
    spans: Vec<(usize, usize)>,
}

impl RegionDilation {
    /// Calls `visit(y, x0, x1)` for the pixels `x0..x1` of row `y` that lie within Chebyshev
    /// distance `radius` of the region, in raster order. `runs` are the region's runs of one
    /// label in raster order, on a grid of `width`x`height` pixels. With `ring_only`, the
    /// region's own pixels are left out.
    pub(crate) fn visit(
        &mut self,
        runs: &[Run],
        radius: usize,
        (width, height): (usize, usize),
        ring_only: bool,
        mut visit: impl FnMut(usize, usize, usize),
    ) {
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
            return;
        };
        let (top, bottom) = (first.y, last.y);

        // `row_starts[r]..row_starts[r + 1]` are the runs of row `top + r`.
        self.row_starts.clear();
        let mut next = 0;
        for y in top..=bottom + 1 {
            while next < runs.len() && runs[next].y < y {
                next += 1;
            }
            self.row_starts.push(next);
        }
        let runs_of_row =
            |row_starts: &[usize], y: usize| &runs[row_starts[y - top]..row_starts[y - top + 1]];

        for y in top.saturating_sub(radius)..(bottom + radius + 1).min(height) {
            self.spans.clear();
            let sources = y.saturating_sub(radius).max(top)..=(y + radius).min(bottom);
            for source in sources {
                for run in runs_of_row(&self.row_starts, source) {
                    let x0 = run.x0.saturating_sub(radius);
                    let x1 = (run.x1 + radius).min(width);
                    self.spans.push((x0, x1));
                }
            }
            merge_spans(&mut self.spans);

            let own: &[Run] = if ring_only && (top..=bottom).contains(&y) {
                runs_of_row(&self.row_starts, y)
            } else {
                &[]
            };
            // The region's own runs on this row lie inside the merged spans, sorted, so one
            // pass over both leaves the ring.
            let mut own = own.iter().peekable();
            for &(x0, x1) in &self.spans {
                let mut x = x0;
                while let Some(run) = own.next_if(|run| run.x0 < x1) {
                    if run.x0 > x {
                        visit(y, x, run.x0);
                    }
                    x = run.x1;
                }
                if x < x1 {
                    visit(y, x, x1);
                }
            }
        }
    }

    /// As [`Self::visit`], for the region `label` of `labels` whose bounding box is `bbox`.
    /// Its runs are found by scanning the box.
    pub(crate) fn visit_label(
        &mut self,
        labels: &Labels,
        label: u32,
        bbox: BBox,
        radius: usize,
        ring_only: bool,
        visit: impl FnMut(usize, usize, usize),
    ) {
        let mut runs = std::mem::take(&mut self.runs);
        runs.clear();
        for y in bbox.y..bbox.y + bbox.height {
            let row = &labels.labels[y * labels.width..][bbox.x..bbox.x + bbox.width];
            let mut x = 0;
            while x < row.len() {
                if row[x] != label {
                    x += 1;
                    continue;
                }
                let x0 = x;
                while x < row.len() && row[x] == label {
                    x += 1;
                }
                runs.push(Run {
                    y,
                    x0: bbox.x + x0,
                    x1: bbox.x + x,
                    label,
                });
            }
        }
        self.visit(
            &runs,
            radius,
            (labels.width, labels.height),
            ring_only,
            visit,
        );
        self.runs = runs;
    }
}

/// Sorts `spans` and merges overlapping and adjacent ones, in place.
fn merge_spans(spans: &mut Vec<(usize, usize)>) {
    spans.sort_unstable();
    let mut merged = 0;
    for k in 0..spans.len() {
        let (x0, x1) = spans[k];
        if merged > 0 && x0 <= spans[merged - 1].1 {
            spans[merged - 1].1 = spans[merged - 1].1.max(x1);
        } else {
            spans[merged] = (x0, x1);
            merged += 1;
        }
    }
    spans.truncate(merged);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regions::label;
    use crate::regions::reference::arbitrary_mask;
    use proptest::prelude::*;

    /// Lists the pixels within `radius` of `label` by testing every pixel's neighbourhood, in
    /// raster order.
    fn near_pixels(
        labels: &Labels,
        label: u32,
        radius: usize,
        ring_only: bool,
    ) -> Vec<(usize, usize)> {
        let (w, h) = (labels.width, labels.height);
        let mut pixels = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if ring_only && labels.get(x, y) == label {
                    continue;
                }
                let near = (y.saturating_sub(radius)..(y + radius + 1).min(h)).any(|yy| {
                    (x.saturating_sub(radius)..(x + radius + 1).min(w))
                        .any(|xx| labels.get(xx, yy) == label)
                });
                if near {
                    pixels.push((x, y));
                }
            }
        }
        pixels
    }

    proptest! {
        #[test]
        fn dilation_matches_neighbourhood_test(
            mask in arbitrary_mask(),
            radius in 0usize..4,
            ring_only in proptest::bool::ANY,
        ) {
            let labels = label(&mask);
            let runs = labels.runs();
            let mut dilation = RegionDilation::default();
            for l in 1..=labels.count {
                let region: Vec<Run> = runs.iter().copied().filter(|r| r.label == l).collect();
                let mut visited = Vec::new();
                dilation.visit(&region, radius, (labels.width, labels.height), ring_only, |y, x0, x1| {
                    visited.extend((x0..x1).map(|x| (x, y)));
                });
                prop_assert_eq!(&visited, &near_pixels(&labels, l, radius, ring_only));

                let bbox = BBox {
                    x: region.iter().map(|r| r.x0).min().unwrap(),
                    y: region[0].y,
                    width: region.iter().map(|r| r.x1).max().unwrap() - region.iter().map(|r| r.x0).min().unwrap(),
                    height: region[region.len() - 1].y - region[0].y + 1,
                };
                let mut from_labels = Vec::new();
                dilation.visit_label(&labels, l, bbox, radius, ring_only, |y, x0, x1| {
                    from_labels.extend((x0..x1).map(|x| (x, y)));
                });
                prop_assert_eq!(from_labels, visited);
            }
        }
    }
}
