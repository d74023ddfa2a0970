//! The pixels within a Chebyshev distance of one region. The region's runs are drawn as bits
//! into a window around it, one row of 64-bit words per pixel row. The window is dilated with
//! word-wide shifts and ORs, first along each row and then across the rows within the
//! distance. The work is proportional to the window's area divided by 64 and to the runs.

use super::descriptor::BBox;
use super::label::{Labels, Run};

/// Reusable buffers for the dilation of one region at a time.
#[derive(Debug, Default)]
pub(crate) struct RegionDilation {
    /// The region's runs, when taken from a label grid.
    runs: Vec<Run>,
    /// The region's pixels in the window, `(rows, words)` row-major, bit `x % 64` of word
    /// `x / 64` for window column `x`.
    inside: Vec<u64>,
    /// `inside` dilated along each row.
    along_rows: Vec<u64>,
    /// One row of the full dilation.
    dilated: Vec<u64>,
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

        // The window is the region's bounding box grown by `radius`, clipped to the grid.
        let left = runs.iter().map(|run| run.x0).min().unwrap_or(0);
        let right = runs.iter().map(|run| run.x1).max().unwrap_or(0);
        let x0 = left.saturating_sub(radius);
        let y0 = first.y.saturating_sub(radius);
        let columns = (right + radius).min(width) - x0;
        let rows = (last.y + radius + 1).min(height) - y0;
        let words = columns.div_ceil(64);
        // Rows of the window that contain region pixels.
        let (region_top, region_bottom) = (first.y - y0, last.y - y0);

        self.inside.clear();
        self.inside.resize(rows * words, 0);
        for run in runs {
            let row = &mut self.inside[(run.y - y0) * words..][..words];
            set_bits(row, run.x0 - x0, run.x1 - x0);
        }

        self.along_rows.clear();
        self.along_rows.extend_from_slice(&self.inside);
        for r in region_top..=region_bottom {
            let row = &mut self.along_rows[r * words..][..words];
            dilate_bits(row, radius, &mut self.dilated);
        }
        // Dilation toward higher columns can spill past the window's last column.
        let last_word_bits = columns - (words - 1) * 64;
        let last_word_mask = u64::MAX >> (64 - last_word_bits);

        for r in 0..rows {
            self.dilated.clear();
            self.dilated.resize(words, 0);
            let sources =
                r.saturating_sub(radius).max(region_top)..=(r + radius).min(region_bottom);
            for source in sources {
                let source_row = &self.along_rows[source * words..][..words];
                for (word, &bits) in self.dilated.iter_mut().zip(source_row) {
                    *word |= bits;
                }
            }
            self.dilated[words - 1] &= last_word_mask;
            if ring_only {
                let inside_row = &self.inside[r * words..][..words];
                for (word, &bits) in self.dilated.iter_mut().zip(inside_row) {
                    *word &= !bits;
                }
            }
            for_each_run(&self.dilated, |start, end| {
                visit(y0 + r, x0 + start, x0 + end)
            });
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

/// Sets bits `start..end` of a row of words.
fn set_bits(row: &mut [u64], start: usize, end: usize) {
    for x in start..end {
        row[x / 64] |= 1 << (x % 64);
    }
}

/// Sets every bit of `row` within `radius` of a set bit, using `scratch` as a second row.
fn dilate_bits(row: &mut [u64], radius: usize, scratch: &mut Vec<u64>) {
    scratch.clear();
    scratch.extend_from_slice(row);
    // Each step ORs the row with itself shifted by as many bits as it already covers, so the
    // covered distance doubles until it reaches `radius`.
    let mut covered = 0;
    while covered < radius {
        let step = (covered + 1).min(radius - covered);
        or_shifted_up(row, step);
        or_shifted_down(scratch, step);
        covered += step;
    }
    for (word, &bits) in row.iter_mut().zip(scratch.iter()) {
        *word |= bits;
    }
}

/// ORs bit `x - by` into bit `x` of the row, for every `x`.
fn or_shifted_up(row: &mut [u64], by: usize) {
    let (word_shift, bit_shift) = (by / 64, (by % 64) as u32);
    // Going from the last word down, every word read is still unchanged.
    for w in (word_shift..row.len()).rev() {
        let source = w - word_shift;
        let mut bits = row[source] << bit_shift;
        if bit_shift > 0 && source > 0 {
            bits |= row[source - 1] >> (64 - bit_shift);
        }
        row[w] |= bits;
    }
}

/// ORs bit `x + by` into bit `x` of the row, for every `x`.
fn or_shifted_down(row: &mut [u64], by: usize) {
    let (word_shift, bit_shift) = (by / 64, (by % 64) as u32);
    // Going from the first word up, every word read is still unchanged.
    for w in 0..row.len().saturating_sub(word_shift) {
        let source = w + word_shift;
        let mut bits = row[source] >> bit_shift;
        if bit_shift > 0 && source + 1 < row.len() {
            bits |= row[source + 1] << (64 - bit_shift);
        }
        row[w] |= bits;
    }
}

/// Calls `visit(start, end)` for each maximal run of set bits `start..end` of a row, in order.
fn for_each_run(row: &[u64], mut visit: impl FnMut(usize, usize)) {
    let mut open: Option<usize> = None;
    for (w, &word) in row.iter().enumerate() {
        let base = w * 64;
        let mut bit = 0u32;
        while bit < 64 {
            let rest = word >> bit;
            match open {
                None => {
                    if rest == 0 {
                        break;
                    }
                    bit += rest.trailing_zeros();
                    open = Some(base + bit as usize);
                }
                Some(start) => {
                    let ones = (!rest).trailing_zeros().min(64 - bit);
                    bit += ones;
                    if bit < 64 {
                        visit(start, base + bit as usize);
                        open = None;
                    }
                }
            }
        }
    }
    if let Some(start) = open {
        visit(start, row.len() * 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::Mask;
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

    /// Checks every region of `mask` against [`near_pixels`].
    fn check_regions(mask: &Mask, radius: usize, ring_only: bool) -> Result<(), TestCaseError> {
        let labels = label(mask);
        let runs = labels.runs();
        let mut dilation = RegionDilation::default();
        for l in 1..=labels.count {
            let region: Vec<Run> = runs.iter().copied().filter(|r| r.label == l).collect();
            let mut visited = Vec::new();
            dilation.visit(
                &region,
                radius,
                (labels.width, labels.height),
                ring_only,
                |y, x0, x1| {
                    visited.extend((x0..x1).map(|x| (x, y)));
                },
            );
            prop_assert_eq!(&visited, &near_pixels(&labels, l, radius, ring_only));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn dilation_spans_several_words(
            (width, draws) in (60usize..200).prop_flat_map(|w| {
                (Just(w), proptest::collection::vec(0u8..40, w * 3))
            }),
            radius in 0usize..140,
            ring_only in proptest::bool::ANY,
        ) {
            let mask = Mask { width, height: 3, data: draws.iter().map(|&d| d == 0).collect() };
            check_regions(&mask, radius, ring_only)?;
        }
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
