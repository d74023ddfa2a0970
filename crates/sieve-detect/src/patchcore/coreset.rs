//! Greedy k-centre coreset selection for the PatchCore memory bank (Roth et al., "Towards
//! Total Recall in Industrial Anomaly Detection", CVPR 2022).
//!
//! Each step adds the patch farthest from the patches selected so far. The selection is exact
//! for the distances it uses, but it skips distance computations that the triangle inequality
//! shows cannot change a patch's nearest selected patch: patches are grouped by their nearest
//! selected patch, and a new one visits only the groups it can reach.

use std::borrow::Cow;

use candle_core::{Device, Tensor};
use half::f16;
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

/// Centres per parallel task when testing which clusters a new centre can change.
const CENTRE_CHUNK: usize = 1_024;

/// A new centre scans every row in order, instead of the members of the clusters it can
/// reach, when those clusters hold more than one row in this many.
const DENSE_SHARE_INVERSE: usize = 4;

/// Principal directions used for the lower bound on centre-to-centre distances.
const BOUND_DIMS: usize = 16;

/// Rows sampled to estimate the principal directions.
const BASIS_SAMPLE: usize = 16_384;

/// Subspace iterations that refine the principal directions.
const BASIS_ITERATIONS: usize = 20;

/// Seed of the starting basis of the subspace iteration. It affects only speed, never the
/// selection.
const BASIS_SEED: u64 = 0x5EED;

/// The patches picked by [`greedy_coreset`].
#[derive(Clone, Debug, PartialEq)]
pub struct CoresetSelection {
    /// Indices of the selected rows, in the order they were picked.
    pub indices: Vec<usize>,
    /// Largest distance from any row to its nearest selected row, measured on the f16 values
    /// the selection uses, in the projected space when a projection was used.
    pub covering_radius: f32,
}

/// Selects up to `size` of the `rows.len() / dim` rows of `rows` (row-major) by greedy
/// k-centre selection.
///
/// The first row is drawn at random with `seed`. Each further step picks the row whose
/// distance to its nearest selected row is largest, the smallest index on ties. Distances are
/// Euclidean, measured after a Gaussian random projection to `projection_dim` columns (entries
/// drawn with `seed`, variance `1 / projection_dim`) when `projection_dim < dim`, and on the
/// rows themselves otherwise. The points are then stored in f16, which halves the memory the
/// selection streams through at every step, and distances are computed in f32 from those
/// values. Selection stops early when every row coincides with a selected
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
    let basis = principal_basis(&points, width, BOUND_DIMS.min(width));
    let points = to_half(&points);

    let capacity = size.min(count).max(1);
    let mut search = Search::new(&points, width, basis, start, capacity);
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

/// Converts f32 values to f16, rounding to nearest.
fn to_half(values: &[f32]) -> Vec<f16> {
    values
        .par_chunks(PROJECTION_CHUNK)
        .flat_map_iter(|chunk| chunk.iter().map(|&v| f16::from_f32(v)))
        .collect()
}

/// Squared Euclidean distance between an f16 row and an f32 point, computed in f32.
///
/// The sum runs in 16 lanes in a fixed order, with a separate multiply and add, so the AVX2
/// path and the portable path return the same bits.
fn half_distance(row: &[f16], point: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU supports AVX2 and F16C, the only requirements of the called function.
        return unsafe { half_distance_f16c(row, point) };
    }
    half_distance_lanes(row, point)
}

fn half_distance_lanes(row: &[f16], point: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0f32; LANES];
    let mut row_chunks = row.chunks_exact(LANES);
    let mut point_chunks = point.chunks_exact(LANES);
    for (x, y) in (&mut row_chunks).zip(&mut point_chunks) {
        for lane in 0..LANES {
            let d = x[lane].to_f32() - y[lane];
            lanes[lane] += d * d;
        }
    }
    lanes.iter().sum::<f32>() + half_distance_tail(row_chunks.remainder(), point_chunks.remainder())
}

fn half_distance_tail(row: &[f16], point: &[f32]) -> f32 {
    row.iter()
        .zip(point)
        .map(|(x, y)| {
            let d = x.to_f32() - y;
            d * d
        })
        .sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn half_distance_f16c(row: &[f16], point: &[f32]) -> f32 {
    use std::arch::x86_64::{
        __m128i, _mm256_add_ps, _mm256_cvtph_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps,
        _mm256_storeu_ps, _mm256_sub_ps, _mm_loadu_si128,
    };
    let n = row.len().min(point.len()) / 16 * 16;
    let mut lanes = [0f32; 16];
    // SAFETY: every load reads 8 values at offsets below `n`, which is within both slices, and
    // the store writes 16 values into `lanes`.
    unsafe {
        let (mut low, mut high) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (r, p) = (row.as_ptr(), point.as_ptr());
        let mut i = 0;
        while i < n {
            let x0 = _mm256_cvtph_ps(_mm_loadu_si128(r.add(i) as *const __m128i));
            let x1 = _mm256_cvtph_ps(_mm_loadu_si128(r.add(i + 8) as *const __m128i));
            let d0 = _mm256_sub_ps(x0, _mm256_loadu_ps(p.add(i)));
            let d1 = _mm256_sub_ps(x1, _mm256_loadu_ps(p.add(i + 8)));
            low = _mm256_add_ps(low, _mm256_mul_ps(d0, d0));
            high = _mm256_add_ps(high, _mm256_mul_ps(d1, d1));
            i += 16;
        }
        _mm256_storeu_ps(lanes.as_mut_ptr(), low);
        _mm256_storeu_ps(lanes.as_mut_ptr().add(8), high);
    }
    lanes.iter().sum::<f32>() + half_distance_tail(&row[n..], &point[n..])
}

/// State of the greedy selection. Every row belongs to the cluster of its nearest centre, and
/// each cluster stores its farthest member.
///
/// Adding a centre `x` can only move rows of a cluster `c` whose centre lies within twice the
/// cluster's radius of `x`. The reason is the triangle inequality: a member at distance `r`
/// from `c` is at least `|c - x| - r` from `x`, and that is at least `r` when `|c - x| >= 2 r`. Clusters are ruled out first by a lower bound
/// on `|c - x|` from a few principal directions of the rows, so most centres are never read in
/// full and most rows are never visited.
struct Search<'a> {
    points: &'a [f16],
    width: usize,
    /// Orthonormal basis (`BOUND_DIMS` rows of `width`) of the rows' leading principal
    /// directions. Distances measured in it never exceed the full distances.
    basis: Vec<f32>,
    bound_dims: usize,
    /// Row index of each centre, in the order picked.
    centres: Vec<u32>,
    /// Coordinates of each centre in `basis`, `bound_dims` per centre.
    centre_coords: Vec<f32>,
    /// Rows of each centre's cluster, in increasing order.
    members: Vec<Vec<u32>>,
    /// Slot in `centres` of every row's nearest centre.
    nearest: Vec<u32>,
    /// Squared distance of every row to its nearest centre.
    nearest_sq: Vec<f32>,
    /// Farthest member of each cluster, as a max-tree over cluster slots.
    tree: FarthestTree,
}

impl<'a> Search<'a> {
    fn new(
        points: &'a [f16],
        width: usize,
        basis: Vec<f32>,
        start: usize,
        capacity: usize,
    ) -> Self {
        let count = points.len() / width;
        let bound_dims = basis.len() / width;
        let mut search = Self {
            points,
            width,
            basis,
            bound_dims,
            centres: Vec::with_capacity(capacity),
            centre_coords: Vec::with_capacity(capacity * bound_dims),
            members: Vec::with_capacity(capacity),
            nearest: vec![0; count],
            nearest_sq: vec![f32::INFINITY; count],
            tree: FarthestTree::new(capacity.max(1)),
        };
        search.add_first_centre(start);
        search
    }

    fn row(&self, index: usize) -> &'a [f16] {
        let points: &'a [f16] = self.points;
        &points[index * self.width..(index + 1) * self.width]
    }

    /// Returns row `index` converted to f32.
    fn row_f32(&self, index: usize) -> Vec<f32> {
        self.row(index).iter().map(|v| v.to_f32()).collect()
    }

    fn farthest(&self) -> (f32, u32) {
        self.tree.root()
    }

    fn push_centre(&mut self, index: u32) -> usize {
        let coords = project_onto(&self.basis, &self.row_f32(index as usize), self.bound_dims);
        self.centre_coords.extend_from_slice(&coords);
        self.centres.push(index);
        self.centres.len() - 1
    }

    fn add_first_centre(&mut self, index: usize) {
        self.push_centre(index as u32);
        let centre = self.row_f32(index);
        let centre = centre.as_slice();
        let width = self.width;
        let points = self.points;
        self.nearest_sq
            .par_chunks_mut(ROW_CHUNK)
            .enumerate()
            .for_each(|(chunk, distances)| {
                let first = chunk * ROW_CHUNK;
                for (offset, distance_sq) in distances.iter_mut().enumerate() {
                    let i = first + offset;
                    *distance_sq = half_distance(&points[i * width..(i + 1) * width], centre);
                }
            });
        let members: Vec<u32> = (0..self.nearest_sq.len() as u32).collect();
        let farthest = farthest_member(&members, &self.nearest_sq);
        self.members.push(members);
        self.tree.set(0, farthest);
    }

    /// Makes row `index` a centre: every row nearer to it than to its current nearest centre
    /// moves to its cluster.
    fn add_centre(&mut self, index: u32) {
        let new_slot = self.push_centre(index);
        let new_centre = self.row_f32(index as usize);
        let new_centre = new_centre.as_slice();
        let reach = self.reachable_clusters(new_slot, new_centre);

        // Visiting the reachable clusters member by member reads rows in scattered order. When
        // they hold a large share of all rows, one sequential pass over every row is faster.
        let visits: usize = reach
            .iter()
            .zip(&self.members)
            .filter(|(centre_sq, _)| centre_sq.is_finite())
            .map(|(_, members)| members.len())
            .sum();
        let moved = if visits * DENSE_SHARE_INVERSE > self.nearest.len() {
            self.scan_all_rows(&reach, new_centre)
        } else {
            self.scan_clusters(&reach, new_centre)
        };

        let mut changed = Vec::new();
        let mut new_members = Vec::with_capacity(moved.len());
        for &(row, distance_sq) in &moved {
            let old_slot = self.nearest[row as usize] as usize;
            if reach[old_slot].is_finite() {
                changed.push(old_slot);
            }
            self.nearest[row as usize] = new_slot as u32;
            self.nearest_sq[row as usize] = distance_sq;
            new_members.push(row);
        }
        changed.sort_unstable();
        changed.dedup();

        // Drop the moved rows from the clusters they left.
        let mut lists: Vec<(usize, Vec<u32>)> = changed
            .iter()
            .map(|&slot| (slot, std::mem::take(&mut self.members[slot])))
            .collect();
        let (nearest, nearest_sq) = (&self.nearest, &self.nearest_sq);
        let farthest: Vec<(f32, u32)> = lists
            .par_iter_mut()
            .map(|(slot, members)| {
                members.retain(|&row| nearest[row as usize] as usize == *slot);
                farthest_member(members, nearest_sq)
            })
            .collect();
        for ((slot, members), farthest) in lists.into_iter().zip(farthest) {
            self.members[slot] = members;
            self.tree.set(slot, farthest);
        }

        new_members.sort_unstable();
        let farthest = farthest_member(&new_members, &self.nearest_sq);
        self.members.push(new_members);
        self.tree.set(new_slot, farthest);
    }

    /// Returns, for every earlier cluster slot, the squared distance from its centre to the new
    /// centre when the cluster's radius reaches halfway to it, and infinity otherwise. Clusters
    /// are ruled out first by the lower bound in the principal basis, then by the full
    /// distance.
    fn reachable_clusters(&self, new_slot: usize, new_centre: &[f32]) -> Vec<f32> {
        let dims = self.bound_dims;
        let new_coords = &self.centre_coords[new_slot * dims..(new_slot + 1) * dims];
        (0..new_slot)
            .into_par_iter()
            .with_min_len(CENTRE_CHUNK)
            .map(|slot| {
                let reach_sq = 4.0 * (1.0 + PRUNE_SLACK) * self.tree.leaf(slot).0;
                let coords = &self.centre_coords[slot * dims..(slot + 1) * dims];
                if squared_distance(coords, new_coords) >= reach_sq {
                    return f32::INFINITY;
                }
                let centre_sq = half_distance(self.row(self.centres[slot] as usize), new_centre);
                if centre_sq < reach_sq {
                    centre_sq
                } else {
                    f32::INFINITY
                }
            })
            .collect()
    }

    /// Returns the rows that move to the new centre, with their new squared distances, in row
    /// order, visiting the members of the reachable clusters only.
    fn scan_clusters(&self, reach: &[f32], new_centre: &[f32]) -> Vec<(u32, f32)> {
        let reachable: Vec<usize> = (0..reach.len())
            .filter(|&slot| reach[slot].is_finite())
            .collect();
        let moved: Vec<Vec<(u32, f32)>> = reachable
            .par_iter()
            .map(|&slot| {
                let members = &self.members[slot];
                if members.len() > ROW_CHUNK {
                    members
                        .par_chunks(ROW_CHUNK)
                        .map(|rows| self.moved_rows(rows.iter().copied(), reach, new_centre))
                        .reduce(Vec::new, |mut a, b| {
                            a.extend(b);
                            a
                        })
                } else {
                    self.moved_rows(members.iter().copied(), reach, new_centre)
                }
            })
            .collect();
        let mut moved: Vec<(u32, f32)> = moved.into_iter().flatten().collect();
        moved.sort_unstable_by_key(|&(row, _)| row);
        moved
    }

    /// Returns the rows that move to the new centre, with their new squared distances, in row
    /// order, in one pass over all rows.
    fn scan_all_rows(&self, reach: &[f32], new_centre: &[f32]) -> Vec<(u32, f32)> {
        let count = self.nearest.len();
        (0..count.div_ceil(ROW_CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let rows = chunk * ROW_CHUNK..count.min((chunk + 1) * ROW_CHUNK);
                self.moved_rows(rows.map(|row| row as u32), reach, new_centre)
            })
            .reduce(Vec::new, |mut a, b| {
                a.extend(b);
                a
            })
    }

    /// Returns those of `rows` that are nearer to the new centre than to their own.
    ///
    /// A row at distance `r` from its centre stays nearer to it unless the two centres are less
    /// than `2 r` apart, so the full distance is computed only for rows that pass that test.
    fn moved_rows(
        &self,
        rows: impl Iterator<Item = u32>,
        reach: &[f32],
        new_centre: &[f32],
    ) -> Vec<(u32, f32)> {
        let mut moved = Vec::new();
        for row in rows {
            let centre_sq = reach[self.nearest[row as usize] as usize];
            let distance_sq = self.nearest_sq[row as usize];
            if centre_sq < 4.0 * (1.0 + PRUNE_SLACK) * distance_sq {
                let candidate = half_distance(self.row(row as usize), new_centre);
                if candidate < distance_sq {
                    moved.push((row, candidate));
                }
            }
        }
        moved
    }
}

/// Returns the member with the largest squared distance to its centre, the smallest row on
/// ties, or `(-inf, u32::MAX)` for no members.
fn farthest_member(members: &[u32], nearest_sq: &[f32]) -> (f32, u32) {
    members
        .iter()
        .map(|&row| (nearest_sq[row as usize], row))
        .fold((f32::NEG_INFINITY, u32::MAX), farther)
}

/// A binary max-tree over cluster slots: each leaf stores its cluster's farthest member, each
/// inner node the farther of its children, so the root is the farthest row of all.
struct FarthestTree {
    leaves: usize,
    nodes: Vec<(f32, u32)>,
}

impl FarthestTree {
    const EMPTY: (f32, u32) = (f32::NEG_INFINITY, u32::MAX);

    fn new(slots: usize) -> Self {
        let leaves = slots.next_power_of_two();
        Self {
            leaves,
            nodes: vec![Self::EMPTY; 2 * leaves],
        }
    }

    fn root(&self) -> (f32, u32) {
        self.nodes[1]
    }

    fn leaf(&self, slot: usize) -> (f32, u32) {
        self.nodes[self.leaves + slot]
    }

    fn set(&mut self, slot: usize, value: (f32, u32)) {
        let mut node = self.leaves + slot;
        self.nodes[node] = value;
        while node > 1 {
            node /= 2;
            self.nodes[node] = farther(self.nodes[2 * node], self.nodes[2 * node + 1]);
        }
    }
}

/// Returns an orthonormal basis (`dims` rows of `width`, row-major) of the leading principal
/// directions of `points`, estimated on an evenly spaced sample of rows.
///
/// Any orthonormal basis gives a valid lower bound on distances. The principal directions make
/// that bound tight, because they carry most of the spread between rows. The basis comes from
/// a fixed number of subspace iterations on the sample covariance, orthonormalised by
/// Gram-Schmidt after each step.
fn principal_basis(points: &[f32], width: usize, dims: usize) -> Vec<f32> {
    let count = points.len() / width;
    let stride = count.div_ceil(BASIS_SAMPLE).max(1);
    let sample: Vec<&[f32]> = (0..count)
        .step_by(stride)
        .map(|i| &points[i * width..(i + 1) * width])
        .collect();

    let mut mean = vec![0f64; width];
    for row in &sample {
        for (m, &v) in mean.iter_mut().zip(row.iter()) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= sample.len() as f64);
    let covariance = sample
        .par_chunks(256)
        .map(|rows| {
            let mut sum = vec![0f64; width * width];
            let mut centred = vec![0f64; width];
            for row in rows {
                for ((c, &v), m) in centred.iter_mut().zip(row.iter()).zip(&mean) {
                    *c = v as f64 - m;
                }
                for a in 0..width {
                    let ca = centred[a];
                    let line = &mut sum[a * width..(a + 1) * width];
                    for (s, &cb) in line.iter_mut().zip(&centred) {
                        *s += ca * cb;
                    }
                }
            }
            sum
        })
        .reduce(
            || vec![0f64; width * width],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );

    // Start from a fixed pseudo-random basis so that no principal direction is missed by
    // construction, then iterate.
    let mut rng = ChaCha8Rng::seed_from_u64(BASIS_SEED);
    let mut basis: Vec<f64> = (0..dims * width)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect();
    orthonormalise(&mut basis, width);
    for _ in 0..BASIS_ITERATIONS {
        let mut next = vec![0f64; dims * width];
        for (out, vector) in next.chunks_exact_mut(width).zip(basis.chunks_exact(width)) {
            for (a, o) in out.iter_mut().enumerate() {
                let line = &covariance[a * width..(a + 1) * width];
                *o = line.iter().zip(vector).map(|(c, v)| c * v).sum();
            }
        }
        basis = next;
        orthonormalise(&mut basis, width);
    }
    basis.iter().map(|&v| v as f32).collect()
}

/// Orthonormalises the rows of `vectors` in place by modified Gram-Schmidt, run twice for
/// accuracy. A row that vanishes against the earlier ones is replaced by a unit axis that is
/// orthogonal to them.
fn orthonormalise(vectors: &mut [f64], width: usize) {
    let dims = vectors.len() / width;
    for _ in 0..2 {
        for i in 0..dims {
            let (done, rest) = vectors.split_at_mut(i * width);
            let current = &mut rest[..width];
            for earlier in done.chunks_exact(width) {
                let dot: f64 = earlier.iter().zip(current.iter()).map(|(a, b)| a * b).sum();
                current
                    .iter_mut()
                    .zip(earlier)
                    .for_each(|(c, e)| *c -= dot * e);
            }
            let norm = current.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 1e-12 {
                current.iter_mut().for_each(|v| *v /= norm);
            } else {
                replace_with_free_axis(done, current, width);
            }
        }
    }
}

/// Sets `current` to the first unit axis, made orthogonal to the rows of `done`, that keeps a
/// non-zero length.
fn replace_with_free_axis(done: &[f64], current: &mut [f64], width: usize) {
    for axis in 0..width {
        current
            .iter_mut()
            .enumerate()
            .for_each(|(j, v)| *v = (j == axis) as u8 as f64);
        for earlier in done.chunks_exact(width) {
            let dot = earlier[axis];
            current
                .iter_mut()
                .zip(earlier)
                .for_each(|(c, e)| *c -= dot * e);
        }
        let norm = current.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > 1e-6 {
            current.iter_mut().for_each(|v| *v /= norm);
            return;
        }
    }
}

/// Returns the coordinates of `row` in the `dims` basis vectors of `basis`.
fn project_onto(basis: &[f32], row: &[f32], dims: usize) -> Vec<f32> {
    let width = row.len();
    (0..dims)
        .map(|d| {
            basis[d * width..(d + 1) * width]
                .iter()
                .zip(row)
                .map(|(b, v)| b * v)
                .sum()
        })
        .collect()
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

    /// Greedy k-centre selection by the definition: a full distance pass per step, on the rows
    /// rounded to f16 as the selection stores them.
    fn naive_coreset(points: &[f32], width: usize, size: usize, start: usize) -> Vec<usize> {
        let count = points.len() / width;
        let rounded = to_half(points);
        let row = |i: usize| &rounded[i * width..(i + 1) * width];
        let row_f32 = |i: usize| row(i).iter().map(|v| v.to_f32()).collect::<Vec<f32>>();
        let mut nearest_sq = vec![f32::INFINITY; count];
        let mut picked = vec![start];
        let mut last = start;
        loop {
            let centre = row_f32(last);
            for (i, d) in nearest_sq.iter_mut().enumerate() {
                *d = d.min(half_distance(row(i), &centre));
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
        let rounded: Vec<f32> = to_half(&rows).iter().map(|v| v.to_f32()).collect();
        let row = |i: usize| &rounded[i * dim..(i + 1) * dim];
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
    fn coreset_matches_naive_on_wide_clustered_rows() {
        // With 48 columns the lower bound uses 16 principal directions of 48, so clusters are
        // ruled out by the bound before their full distance is read.
        let (count, dim) = (4_000, 48);
        let mut rows = gaussian_rows(count, dim, 17);
        let centres = gaussian_rows(20, dim, 18);
        for (i, row) in rows.chunks_exact_mut(dim).enumerate() {
            let centre = &centres[(i % 20) * dim..(i % 20 + 1) * dim];
            for (value, c) in row.iter_mut().zip(centre) {
                *value = 6.0 * c + 0.3 * *value;
            }
        }
        let fast = greedy_coreset(&rows, dim, 500, dim, 3).unwrap();
        let naive = naive_coreset(&rows, dim, 500, start_for(3, count));
        assert_eq!(fast.indices, naive);
    }

    #[test]
    fn half_distance_paths_agree() {
        for width in [1, 15, 16, 17, 128, 152] {
            let row = to_half(&gaussian_rows(1, width, 19));
            let point = gaussian_rows(1, width, 20);
            let portable = half_distance_lanes(&row, &point);
            let expected: f64 = row
                .iter()
                .zip(&point)
                .map(|(a, b)| (a.to_f64() - *b as f64).powi(2))
                .sum();
            assert_eq!(half_distance(&row, &point), portable, "width {width}");
            assert!(((portable as f64) - expected).abs() <= 1e-5 * expected.max(1.0));
        }
    }

    #[test]
    fn principal_basis_is_orthonormal() {
        let (count, dim, dims) = (3_000, 24, 16);
        let rows = gaussian_rows(count, dim, 21);
        let basis = principal_basis(&rows, dim, dims);
        for i in 0..dims {
            for j in 0..dims {
                let dot: f32 = (0..dim)
                    .map(|k| basis[i * dim + k] * basis[j * dim + k])
                    .sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-5, "rows {i} and {j}: {dot}");
            }
        }
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
