//! Exact nearest-neighbour search in the PatchCore memory bank (Roth et al., "Towards Total
//! Recall in Industrial Anomaly Detection", CVPR 2022).

use std::borrow::Cow;

use candle_core::{Device, Storage, Tensor};
use rayon::prelude::*;

use super::coreset::squared_distance;
use super::PatchCoreError;

/// Upper bound on the entries of one block of query-bank dot products (16 MB of f32).
const BLOCK_ENTRIES: usize = 1 << 22;

/// Memory bank rows with what the search needs precomputed.
#[derive(Clone, Debug)]
pub(crate) struct BankIndex {
    dim: usize,
    /// `(m, dim)`, for the matrix products.
    bank: Tensor,
    /// The same rows, row-major, for the exact distance of each nearest row.
    rows: Vec<f32>,
    norms_sq: Vec<f32>,
    images: Vec<u32>,
}

impl BankIndex {
    /// Indexes `rows` (`images.len()` rows of `dim` values), where `images[j]` is the source
    /// image of row `j`.
    pub(crate) fn new(
        rows: Vec<f32>,
        images: Vec<u32>,
        dim: usize,
    ) -> Result<Self, PatchCoreError> {
        let bank = Tensor::from_slice(&rows, (images.len(), dim), &Device::Cpu)?;
        let norms_sq = rows
            .chunks_exact(dim)
            .map(|row| row.iter().map(|v| v * v).sum())
            .collect();
        Ok(Self {
            dim,
            bank,
            rows,
            norms_sq,
            images,
        })
    }

    pub(crate) fn bank(&self) -> &Tensor {
        &self.bank
    }

    pub(crate) fn images(&self) -> &[u32] {
        &self.images
    }

    fn row(&self, index: usize) -> &[f32] {
        &self.rows[index * self.dim..(index + 1) * self.dim]
    }

    /// Returns the Euclidean distance of each query row to its nearest bank row, leaving out
    /// bank rows whose source image is `exclude`.
    ///
    /// The nearest row is found with `|q|^2 + |b|^2 - 2 q.b` from blocked matrix products, and
    /// its distance is then recomputed directly, so a query equal to a bank row scores 0.
    /// A query containing NaN scores NaN.
    pub(crate) fn nearest(
        &self,
        queries: &[f32],
        exclude: Option<u32>,
    ) -> Result<Vec<f32>, PatchCoreError> {
        let dim = self.dim;
        let bank_len = self.images.len();
        if let Some(image_id) = exclude {
            if self.images.iter().all(|&image| image == image_id) {
                return Err(PatchCoreError::EverythingExcluded { image_id });
            }
        }
        let block_rows = (BLOCK_ENTRIES / bank_len.max(1)).clamp(16, 4_096);
        let bank_t = self.bank.t()?; // (dim, m)

        // Excluded rows get an infinite norm, so the scan needs no branch for them.
        let norms_sq: Cow<[f32]> = match exclude {
            None => Cow::Borrowed(&self.norms_sq),
            Some(image_id) => Cow::Owned(
                self.norms_sq
                    .iter()
                    .zip(&self.images)
                    .map(|(&norm, &image)| {
                        if image == image_id {
                            f32::INFINITY
                        } else {
                            norm
                        }
                    })
                    .collect(),
            ),
        };

        let mut distances = Vec::with_capacity(queries.len() / dim);
        for block in queries.chunks(block_rows * dim) {
            let block_len = block.len() / dim;
            let block_tensor = Tensor::from_slice(block, (block_len, dim), &Device::Cpu)?;
            let dots = block_tensor.matmul(&bank_t)?.contiguous()?; // (block, m)
            let (storage, layout) = dots.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else {
                unreachable!("the bank lives on the CPU");
            };
            let dots = &cpu.as_slice::<f32>()?[layout.start_offset()..][..block_len * bank_len];

            let nearest: Vec<f32> = block
                .par_chunks_exact(dim)
                .zip(dots.par_chunks_exact(bank_len))
                .map(|(query, query_dots)| {
                    let best = nearest_row(query_dots, &norms_sq);
                    squared_distance(query, self.row(best)).max(0.0).sqrt()
                })
                .collect();
            distances.extend(nearest);
        }
        Ok(distances)
    }
}

/// Returns the index of the first row minimising `|b|^2 - 2 q.b`, from the dot products of one
/// query with every bank row and the rows' squared norms (infinite for excluded rows).
///
/// Eight independent lanes keep their own minimum and its first index, so the compiler can use
/// vector compares and blends. The lanes are merged at the end, and the lowest index wins ties.
/// When no value is below infinity (a query with NaN, say), the first row with a finite norm is
/// returned. The caller checks that such a row exists.
fn nearest_row(query_dots: &[f32], norms_sq: &[f32]) -> usize {
    const LANES: usize = 8;
    let mut lane_min = [f32::INFINITY; LANES];
    let mut lane_index = [u32::MAX; LANES];
    let full = query_dots.len() / LANES * LANES;
    for (chunk, (dots, norms)) in query_dots[..full]
        .chunks_exact(LANES)
        .zip(norms_sq[..full].chunks_exact(LANES))
        .enumerate()
    {
        let base = (chunk * LANES) as u32;
        for lane in 0..LANES {
            let value = norms[lane] - 2.0 * dots[lane];
            let less = value < lane_min[lane];
            lane_min[lane] = if less { value } else { lane_min[lane] };
            lane_index[lane] = if less {
                base + lane as u32
            } else {
                lane_index[lane]
            };
        }
    }
    let mut best = (f32::INFINITY, u32::MAX);
    for (&value, &index) in lane_min.iter().zip(&lane_index) {
        if value < best.0 || (value == best.0 && index < best.1) {
            best = (value, index);
        }
    }
    for j in full..query_dots.len() {
        let value = norms_sq[j] - 2.0 * query_dots[j];
        if value < best.0 {
            best = (value, j as u32);
        }
    }
    if best.1 == u32::MAX {
        return norms_sq
            .iter()
            .position(|norm| norm.is_finite())
            .unwrap_or(0);
    }
    best.1 as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_rows(count: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..count * dim).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn brute_force(bank: &[f32], images: &[u32], query: &[f32], exclude: Option<u32>) -> f32 {
        let dim = query.len();
        let mut best = f64::INFINITY;
        for (row, &image) in bank.chunks_exact(dim).zip(images) {
            if Some(image) == exclude {
                continue;
            }
            let sum: f64 = row
                .iter()
                .zip(query)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum();
            best = best.min(sum);
        }
        best.sqrt() as f32
    }

    #[test]
    fn nearest_equals_brute_force() {
        let (bank_len, dim, query_len) = (700, 19, 300);
        let bank = random_rows(bank_len, dim, 1);
        let images: Vec<u32> = (0..bank_len as u32).map(|j| j % 7).collect();
        let queries = random_rows(query_len, dim, 2);
        let index = BankIndex::new(bank.clone(), images.clone(), dim).unwrap();

        for exclude in [None, Some(3)] {
            let fast = index.nearest(&queries, exclude).unwrap();
            assert_eq!(fast.len(), query_len);
            for (i, query) in queries.chunks_exact(dim).enumerate() {
                let expected = brute_force(&bank, &images, query, exclude);
                assert!(
                    (fast[i] - expected).abs() <= 1e-5 * expected.max(1.0),
                    "query {i}, exclude {exclude:?}: {} against {expected}",
                    fast[i]
                );
            }
        }
    }

    #[test]
    fn nearest_spans_several_blocks() {
        // 5,000 bank rows give blocks of 838 queries, so 2,000 queries take three blocks.
        let (bank_len, dim, query_len) = (5_000, 4, 2_000);
        let bank = random_rows(bank_len, dim, 3);
        let images = vec![0; bank_len];
        let queries = random_rows(query_len, dim, 4);
        let index = BankIndex::new(bank.clone(), images.clone(), dim).unwrap();
        let fast = index.nearest(&queries, None).unwrap();
        for i in [0, 837, 838, 1_676, 1_999] {
            let expected = brute_force(&bank, &images, &queries[i * dim..(i + 1) * dim], None);
            assert!((fast[i] - expected).abs() <= 1e-5, "query {i}");
        }
    }

    #[test]
    fn nearest_row_takes_the_first_minimum() {
        // |b|^2 - 2 q.b is -1 at rows 3, 11 and 18 and 0 elsewhere; 19 rows leave a tail of 3.
        let mut dots = vec![0.0f32; 19];
        let mut norms = vec![0.0f32; 19];
        for j in [3, 11, 18] {
            dots[j] = 1.0;
            norms[j] = 1.0;
        }
        assert_eq!(nearest_row(&dots, &norms), 3);
        norms[3] = f32::INFINITY;
        assert_eq!(nearest_row(&dots, &norms), 11);
        norms[11] = f32::INFINITY;
        assert_eq!(nearest_row(&dots, &norms), 18, "minimum in the tail");
        // A lower value in a later lane of the first chunk wins over an earlier lane.
        dots[5] = 2.0;
        norms[5] = 1.0;
        assert_eq!(nearest_row(&dots, &norms), 5);
        // NaN dot products fall back to the first row that is not excluded.
        let nan = vec![f32::NAN; 19];
        assert_eq!(nearest_row(&nan, &norms), 0);
        norms[0] = f32::INFINITY;
        assert_eq!(nearest_row(&nan, &norms), 1);
    }

    #[test]
    fn nearest_rejects_excluding_everything() {
        let index = BankIndex::new(vec![0.0, 1.0], vec![5, 5], 1).unwrap();
        assert!(matches!(
            index.nearest(&[0.5], Some(5)),
            Err(PatchCoreError::EverythingExcluded { image_id: 5 })
        ));
    }
}
