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
        Self {
            points,
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
                vec![0.0; self.len()]
            };
            let x = self.point(i);
            for (j, value) in buffer.iter_mut().enumerate() {
                *value = rbf(x, self.point(j), self.gamma);
            }
            self.rows[i] = Some(buffer);
            self.cached.push_back(i);
        }
        self.rows[i].as_deref().expect("row was just computed")
    }
}
