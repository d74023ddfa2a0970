//! Greedy k-centre coreset selection for the PatchCore memory bank (Roth et al., "Towards
//! Total Recall in Industrial Anomaly Detection", CVPR 2022).
//!
//! Each step adds the patch farthest from the patches selected so far. The selection is exact
//! for the distances it uses, but it skips distance computations that the triangle inequality
//! shows cannot change a patch's nearest selected patch.

use std::borrow::Cow;

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::PatchCoreError;

/// Relative slack on the triangle-inequality test, so that rounding in the f32 distances never
/// skips a patch whose nearest selected patch could change.
const PRUNE_SLACK: f32 = 1e-3;

/// Rows projected per matrix product while building the projected copy.
const PROJECTION_CHUNK: usize = 8_192;

/// Rows per parallel task when updating distances to a new centre.
const ROW_CHUNK: usize = 4_096;

/// Centres per parallel task when measuring centre-to-centre distances.
const CENTRE_CHUNK: usize = 1_024;

/// The patches picked by [`greedy_coreset`].
#[derive(Clone, Debug, PartialEq)]
pub struct CoresetSelection {
    /// Indices of the selected rows, in the order they were picked.
    pub indices: Vec<usize>,
    /// Largest distance from any row to its nearest selected row, measured in the projected
    /// space when a projection was used.
    pub covering_radius: f32,
}

/// Selects up to `size` of the `rows.len() / dim` rows of `rows` (row-major) by greedy
/// k-centre selection.
///
/// The first row is drawn at random with `seed`. Each further step picks the row whose
/// distance to its nearest selected row is largest, the smallest index on ties. Distances are
/// Euclidean, measured after a Gaussian random projection to `projection_dim` columns (entries
/// drawn with `seed`, variance `1 / projection_dim`) when `projection_dim < dim`, and on the
/// rows themselves otherwise. Selection stops early when every row coincides with a selected
/// row, so the result can be shorter than `size`.
pub fn greedy_coreset(
    rows: &[f32],
    dim: usize,
    size: usize,
    projection_dim: usize,
    seed: u64,
) -> Result<CoresetSelection, PatchCoreError> {
    if dim == 0 {
        return Err(PatchCoreError::InvalidSize {
            what: "embedding width",
            value: dim,
        });
    }
    if projection_dim == 0 {
        return Err(PatchCoreError::InvalidProjectionDim);
    }
    let count = rows.len() / dim;
    if count == 0 || count * dim != rows.len() {
        return Err(PatchCoreError::NoTrainingPatches);
    }
    if count > u32::MAX as usize {
        return Err(PatchCoreError::TooManyPatches {
            rows: count,
            limit: u32::MAX as usize,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = rng.gen_range(0..count);
    let points = if projection_dim < dim {
        Cow::Owned(project(rows, dim, projection_dim, &mut rng)?)
    } else {
        Cow::Borrowed(rows)
    };
    let width = dim.min(projection_dim);

    let mut search = Search::new(&points, width, start);
    let mut indices = vec![start];
    while indices.len() < size.min(count) {
        let (radius_sq, farthest) = search.farthest();
        if radius_sq <= 0.0 {
            break;
        }
        search.add_centre(farthest);
        indices.push(farthest as usize);
    }

    Ok(CoresetSelection {
        indices,
        covering_radius: search.farthest().0.sqrt(),
    })
}

/// Multiplies `rows` (n, dim) by a random Gaussian matrix (dim, width) in chunks.
fn project(
    rows: &[f32],
    dim: usize,
    width: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f32>, PatchCoreError> {
    let scale = (width as f32).sqrt().recip();
    let matrix: Vec<f32> = (0..dim * width)
        .map(|_| rng.sample::<f32, _>(StandardNormal) * scale)
        .collect();
    let matrix = Tensor::from_vec(matrix, (dim, width), &Device::Cpu)?;

    let mut projected = Vec::with_capacity(rows.len() / dim * width);
    for chunk in rows.chunks(PROJECTION_CHUNK * dim) {
        let chunk = Tensor::from_slice(chunk, (chunk.len() / dim, dim), &Device::Cpu)?;
        let product = chunk.matmul(&matrix)?; // (chunk, width)
        projected.extend(product.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(projected)
}

/// Squared Euclidean distance, summed in 16 independent lanes so the compiler vectorises it
/// without a long chain of dependent additions. The summation order is fixed by the source,
/// so the result does not depend on the vector width the CPU offers.
pub(crate) fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of the called function.
        return unsafe { squared_distance_avx2(a, b) };
    }
    squared_distance_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn squared_distance_avx2(a: &[f32], b: &[f32]) -> f32 {
    squared_distance_lanes(a, b)
}

#[inline(always)]
fn squared_distance_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (x, y) in (&mut a_chunks).zip(&mut b_chunks) {
        for lane in 0..LANES {
            let d = x[lane] - y[lane];
            lanes[lane] += d * d;
        }
    }
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    lanes.iter().sum::<f32>() + tail
}

/// State of the greedy selection: for every row, its nearest centre and the squared distance
/// to it.
struct Search<'a> {
    points: &'a [f32],
    width: usize,
    /// Row index of each centre, in the order picked.
    centres: Vec<u32>,
    /// Position in `centres` of each row's nearest centre.
    nearest: Vec<u32>,
    nearest_sq: Vec<f32>,
    /// Squared distances between the newest centre and every centre, reused between steps.
    centre_sq: Vec<f32>,
    /// Largest entry of `nearest_sq` and its row, the smallest row on ties.
    farthest: (f32, u32),
}

impl<'a> Search<'a> {
    fn new(points: &'a [f32], width: usize, start: usize) -> Self {
        let count = points.len() / width;
        let mut search = Self {
            points,
            width,
            centres: Vec::new(),
            nearest: vec![0; count],
            nearest_sq: vec![f32::INFINITY; count],
            centre_sq: Vec::new(),
            farthest: (f32::INFINITY, 0),
        };
        search.add_centre(start as u32);
        search
    }

    fn farthest(&self) -> (f32, u32) {
        self.farthest
    }

    /// Makes row `index` a centre: every row nearer to it than to its current nearest centre
    /// is reassigned, and the farthest row is found in the same pass.
    ///
    /// A row at distance `r` from its nearest centre `c` needs no distance computation when
    /// `|c - new|^2 >= 4 r^2`, because the triangle inequality then puts it at least `r` from
    /// the new centre. The test reads only `nearest` and `nearest_sq`, so rows it clears are
    /// never loaded.
    fn add_centre(&mut self, index: u32) {
        let (points, width) = (self.points, self.width);
        let row = |i: usize| &points[i * width..(i + 1) * width];
        let new_centre = row(index as usize);
        let slot = self.centres.len() as u32;
        self.centres.push(index);
        self.centres
            .par_iter()
            .with_min_len(CENTRE_CHUNK)
            .map(|&centre| squared_distance(row(centre as usize), new_centre))
            .collect_into_vec(&mut self.centre_sq);
        let centre_sq = &self.centre_sq;

        self.farthest = self
            .nearest
            .par_chunks_mut(ROW_CHUNK)
            .zip(self.nearest_sq.par_chunks_mut(ROW_CHUNK))
            .enumerate()
            .map(|(chunk, (nearest, nearest_sq))| {
                let first = chunk * ROW_CHUNK;
                let mut farthest = (f32::NEG_INFINITY, u32::MAX);
                for (offset, (centre, distance_sq)) in
                    nearest.iter_mut().zip(nearest_sq.iter_mut()).enumerate()
                {
                    let i = first + offset;
                    let bound = centre_sq[*centre as usize];
                    if bound < 4.0 * (1.0 + PRUNE_SLACK) * *distance_sq {
                        let candidate = squared_distance(row(i), new_centre);
                        if candidate < *distance_sq {
                            *distance_sq = candidate;
                            *centre = slot;
                        }
                    }
                    if *distance_sq > farthest.0 {
                        farthest = (*distance_sq, i as u32);
                    }
                }
                farthest
            })
            .reduce(|| (f32::NEG_INFINITY, u32::MAX), farther);
    }
}

/// Returns the farther of two (squared distance, row) pairs, the smaller row on ties.
fn farther(a: (f32, u32), b: (f32, u32)) -> (f32, u32) {
    if b.0 > a.0 || (b.0 == a.0 && b.1 < a.1) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::Distribution;

    /// Greedy k-centre selection by the definition: a full distance pass per step.
    fn naive_coreset(points: &[f32], width: usize, size: usize, start: usize) -> Vec<usize> {
        let count = points.len() / width;
        let row = |i: usize| &points[i * width..(i + 1) * width];
        let mut nearest_sq = vec![f32::INFINITY; count];
        let mut picked = vec![start];
        let mut last = start;
        loop {
            for (i, d) in nearest_sq.iter_mut().enumerate() {
                *d = d.min(squared_distance(row(i), row(last)));
            }
            if picked.len() == size {
                return picked;
            }
            let mut best = 0;
            for i in 1..count {
                if nearest_sq[i] > nearest_sq[best] {
                    best = i;
                }
            }
            if nearest_sq[best] == 0.0 {
                return picked;
            }
            picked.push(best);
            last = best;
        }
    }

    fn start_for(seed: u64, count: usize) -> usize {
        ChaCha8Rng::seed_from_u64(seed).gen_range(0..count)
    }

    fn gaussian_rows(count: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count * dim)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect()
    }

    #[test]
    fn coreset_order_on_a_line() {
        // Points on a line at 0, 1, 2, 3 and 10, worked out by hand for every start. The second
        // pick is the point farthest from the start. The third is the point whose distance to
        // the nearer of the first two is largest.
        let rows = [0f32, 1.0, 2.0, 3.0, 10.0];
        let expected = [
            [0, 4, 3], // from 0: 10, then 3 (3 from 0) beats 2 (2 from 0)
            [1, 4, 3], // from 1: 10, then 3 (2 from 1) beats 0 (1 from 1)
            [2, 4, 0], // from 2: 10, then 0 (2 from 2) beats 3 (1 from 2)
            [3, 4, 0], // from 3: 10, then 0 (3 from 3)
            [4, 0, 3], // from 10: 0, then 3 (3 from 0) beats 2 (2 from 0)
        ];
        let mut starts_seen = [false; 5];
        for seed in 0..40 {
            let start = start_for(seed, rows.len());
            starts_seen[start] = true;
            let picked = greedy_coreset(&rows, 1, 3, 1, seed).unwrap().indices;
            assert_eq!(picked, expected[start], "seed {seed}, start {start}");
        }
        assert_eq!(starts_seen, [true; 5]);
    }

    #[test]
    fn coreset_picks_one_per_cluster() {
        let centres = [
            [0f32, 0.0, 0.0],
            [50.0, 0.0, 0.0],
            [0.0, 50.0, 0.0],
            [0.0, 0.0, 50.0],
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for point in 0..200 {
            let label = point % centres.len();
            for &c in &centres[label] {
                rows.push(c + rng.gen_range(-1.0f32..1.0));
            }
            labels.push(label);
        }
        for seed in 0..5 {
            let picked = greedy_coreset(&rows, 3, 4, 3, seed).unwrap().indices;
            let mut seen: Vec<usize> = picked.iter().map(|&i| labels[i]).collect();
            seen.sort_unstable();
            assert_eq!(seen, vec![0, 1, 2, 3], "seed {seed}");
        }
    }

    #[test]
    fn coreset_matches_naive_selection() {
        let (count, dim) = (3_000, 12);
        let rows = gaussian_rows(count, dim, 11);
        let fast = greedy_coreset(&rows, dim, 300, dim, 5).unwrap();
        let naive = naive_coreset(&rows, dim, 300, start_for(5, count));
        assert_eq!(fast.indices, naive);
    }

    #[test]
    fn coreset_matches_naive_on_clustered_rows() {
        // Tight clusters let the triangle-inequality test skip most rows, so this exercises
        // the skipping path.
        let (count, dim) = (6_000, 8);
        let mut rows = gaussian_rows(count, dim, 12);
        for (i, value) in rows.iter_mut().enumerate() {
            let cluster = (i / dim) % 5;
            *value = *value * 0.1 + 20.0 * cluster as f32 * ((i % dim) == cluster) as u8 as f32;
        }
        let fast = greedy_coreset(&rows, dim, 400, dim, 9).unwrap();
        let naive = naive_coreset(&rows, dim, 400, start_for(9, count));
        assert_eq!(fast.indices, naive);
    }

    #[test]
    fn covering_radius_bounds_every_row() {
        let (count, dim) = (500, 6);
        let rows = gaussian_rows(count, dim, 13);
        let selection = greedy_coreset(&rows, dim, 50, dim, 1).unwrap();
        let row = |i: usize| &rows[i * dim..(i + 1) * dim];
        let worst = (0..count)
            .map(|i| {
                selection
                    .indices
                    .iter()
                    .map(|&j| squared_distance(row(i), row(j)))
                    .fold(f32::INFINITY, f32::min)
            })
            .fold(0.0, f32::max);
        assert!((worst.sqrt() - selection.covering_radius).abs() < 1e-5);
    }

    #[test]
    fn coreset_stops_when_rows_repeat() {
        let rows = [1f32, 1.0, 2.0, 2.0, 1.0, 1.0];
        let selection = greedy_coreset(&rows, 2, 3, 2, 0).unwrap();
        assert_eq!(selection.indices.len(), 2);
        assert_eq!(selection.covering_radius, 0.0);
    }

    #[test]
    fn coreset_is_deterministic_for_a_seed() {
        let (count, dim) = (2_000, 32);
        let rows = gaussian_rows(count, dim, 14);
        let first = greedy_coreset(&rows, dim, 100, 16, 21).unwrap();
        let second = greedy_coreset(&rows, dim, 100, 16, 21).unwrap();
        let other = greedy_coreset(&rows, dim, 100, 16, 22).unwrap();
        assert_eq!(first, second);
        assert_ne!(first.indices, other.indices);
    }

    #[test]
    fn projection_keeps_distances_roughly() {
        // With 64 of 256 columns the projected squared distance of a row pair stays within a
        // factor of about 1 ± 0.5 of the original with high probability.
        let (count, dim, width) = (50, 256, 64);
        let rows = gaussian_rows(count, dim, 15);
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let projected = project(&rows, dim, width, &mut rng).unwrap();
        for i in 1..count {
            let original = squared_distance(&rows[..dim], &rows[i * dim..(i + 1) * dim]);
            let reduced =
                squared_distance(&projected[..width], &projected[i * width..(i + 1) * width]);
            let ratio = reduced / original;
            assert!((0.4..1.6).contains(&ratio), "pair 0-{i}: ratio {ratio}");
        }
    }
}
