//! RBF kernel `K(a, b) = exp(-gamma * |a - b|^2)` and a bounded cache of kernel-matrix rows.

use std::collections::VecDeque;

/// Returns `exp(-gamma * |a - b|^2)`.
pub(crate) fn rbf(a: &[f64], b: &[f64], gamma: f64) -> f64 {
    let squared_distance: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (-gamma * squared_distance).exp()
}

/// Rows of the kernel matrix of `n` points, computed on first use and kept until the cache is
/// full, then evicted first in, first out.
pub(crate) struct KernelRows<'a> {
    /// Points, row-major `(n, dim)`.
    points: &'a [f64],
    /// The same points column-major, `(dim, n)`, so that a row's distances are computed one
    /// coordinate at a time over contiguous memory.
    columns: Vec<f64>,
    dim: usize,
    gamma: f64,
    rows: Vec<Option<Vec<f64>>>,
    cached: VecDeque<usize>,
    capacity: usize,
}

impl<'a> KernelRows<'a> {
    /// Creates an empty cache over `points` `(n, dim)` holding rows within `cache_bytes`, but
    /// always at least two rows (the two variables of an SMO step).
    pub(crate) fn new(points: &'a [f64], dim: usize, gamma: f64, cache_bytes: usize) -> Self {
        let n = points.len() / dim;
        let row_bytes = (n * std::mem::size_of::<f64>()).max(1);
        let columns = (0..dim)
            .flat_map(|d| points.iter().skip(d).step_by(dim).copied())
            .collect();
        Self {
            points,
            columns,
            dim,
            gamma,
            rows: vec![None; n],
            cached: VecDeque::new(),
            capacity: (cache_bytes / row_bytes).max(2),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Returns the point `i` `(dim,)`.
    pub(crate) fn point(&self, i: usize) -> &'a [f64] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }

    /// Returns row `i` of the kernel matrix, `K(x_i, x_j)` for every `j`.
    pub(crate) fn row(&mut self, i: usize) -> &[f64] {
        if self.rows[i].is_none() {
            let mut buffer = if self.cached.len() >= self.capacity {
                let evicted = self.cached.pop_front().expect("cache holds rows");
                self.rows[evicted].take().expect("evicted row is cached")
            } else {
                Vec::with_capacity(self.len())
            };
            self.fill_row(i, &mut buffer);
            self.rows[i] = Some(buffer);
            self.cached.push_back(i);
        }
        self.rows[i].as_deref().expect("row was just computed")
    }

    /// Writes row `i` into `buffer`, with the same rounding as [`rbf`]: the squared
    /// differences are summed coordinate by coordinate in order, then `exp(-gamma * sum)`.
    fn fill_row(&self, i: usize, buffer: &mut Vec<f64>) {
        let n = self.len();
        let x = self.point(i);
        let mut columns = self.columns.chunks_exact(n.max(1));

        buffer.clear();
        match columns.next() {
            Some(first) => buffer.extend(first.iter().map(|&p| (x[0] - p) * (x[0] - p))),
            None => buffer.resize(n, 0.0),
        }
        for (&coordinate, column) in x.iter().skip(1).zip(columns) {
            for (sum, &p) in buffer.iter_mut().zip(column) {
                *sum += (coordinate - p) * (coordinate - p);
            }
        }
        for value in buffer.iter_mut() {
            *value = (-self.gamma * *value).exp();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rows_match_rbf_exactly(
            (dim, points) in (1usize..6).prop_flat_map(|dim| {
                (Just(dim), proptest::collection::vec(-3.0f64..3.0, dim..dim * 40))
            }),
            gamma in 0.01f64..4.0,
        ) {
            let points = &points[..points.len() / dim * dim];
            // A cache of two rows makes later rows reuse evicted buffers.
            let mut rows = KernelRows::new(points, dim, gamma, 1);
            for i in 0..rows.len() {
                let x = rows.point(i).to_vec();
                let expected: Vec<f64> = (0..rows.len()).map(|j| rbf(&x, rows.point(j), gamma)).collect();
                prop_assert_eq!(rows.row(i), &expected[..]);
            }
        }
    }
}
