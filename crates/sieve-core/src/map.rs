//! Anomaly maps and binary masks: dense row-major grids of one value per pixel.

use serde::{Deserialize, Serialize};

/// A per-pixel anomaly score grid, `(height, width)` row-major; higher means more anomalous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyMap {
    pub width: usize,
    pub height: usize,
    pub data: Vec<f32>,
}

impl AnomalyMap {
    /// Creates a map of the given size filled with `value`.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Wraps row-major `data`; panics when its length is not `width * height`.
    pub fn from_vec(width: usize, height: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            width * height,
            "map data length must be width * height"
        );
        Self {
            width,
            height,
            data,
        }
    }

    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Returns the maximum score, or `f32::NEG_INFINITY` for an empty map.
    pub fn max(&self) -> f32 {
        self.data.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    /// Resizes with bilinear interpolation, pixel centres aligned (`align_corners = false`).
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Self {
        let mut out = Vec::with_capacity(width * height);
        if self.width == 0 || self.height == 0 {
            return Self::filled(width, height, 0.0);
        }
        let scale_x = self.width as f32 / width as f32;
        let scale_y = self.height as f32 / height as f32;
        // Source columns and weights are the same for every output row, so they are found once.
        let columns: Vec<(usize, usize, f32)> = (0..width)
            .map(|x| {
                let sx = ((x as f32 + 0.5) * scale_x - 0.5).clamp(0.0, (self.width - 1) as f32);
                let x0 = sx.floor() as usize;
                (x0, (x0 + 1).min(self.width - 1), sx - x0 as f32)
            })
            .collect();
        for y in 0..height {
            let sy = ((y as f32 + 0.5) * scale_y - 0.5).clamp(0.0, (self.height - 1) as f32);
            let y0 = sy.floor() as usize;
            let y1 = (y0 + 1).min(self.height - 1);
            let wy = sy - y0 as f32;
            let upper = &self.data[y0 * self.width..(y0 + 1) * self.width];
            let lower = &self.data[y1 * self.width..(y1 + 1) * self.width];
            for &(x0, x1, wx) in &columns {
                let top = upper[x0] * (1.0 - wx) + upper[x1] * wx;
                let bottom = lower[x0] * (1.0 - wx) + lower[x1] * wx;
                out.push(top * (1.0 - wy) + bottom * wy);
            }
        }
        Self::from_vec(width, height, out)
    }

    /// Smooths with a separable Gaussian of standard deviation `sigma` pixels, truncated at
    /// 4 sigma, borders reflected. `sigma <= 0` returns an unchanged copy.
    pub fn gaussian_blur(&self, sigma: f32) -> Self {
        if sigma <= 0.0 || self.data.is_empty() {
            return self.clone();
        }
        let radius = (4.0 * sigma).ceil() as isize;
        let kernel: Vec<f32> = (-radius..=radius)
            .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
            .collect();
        let norm: f32 = kernel.iter().sum();
        let kernel: Vec<f32> = kernel.iter().map(|k| k / norm).collect();

        let (w, h) = (self.width, self.height);
        // Horizontal pass: each row is copied once with `radius` reflected values on either
        // side, so the taps read a contiguous slice. Each output still sums its taps in
        // kernel order, so the result equals the direct per-pixel sum bit for bit.
        let reach = radius as usize;
        let source: Vec<usize> = (0..w + 2 * reach)
            .map(|i| reflect(i as isize - radius, w))
            .collect();
        let mut padded = vec![0.0f32; w + 2 * reach];
        let mut rows = vec![0.0f32; w * h];
        for y in 0..h {
            let row = &self.data[y * w..(y + 1) * w];
            for (value, &sx) in padded.iter_mut().zip(&source) {
                *value = row[sx];
            }
            let out = &mut rows[y * w..(y + 1) * w];
            for (k, weight) in kernel.iter().enumerate() {
                for (acc, value) in out.iter_mut().zip(&padded[k..k + w]) {
                    *acc += weight * value;
                }
            }
        }
        let mut out = vec![0.0f32; w * h];
        for y in 0..h {
            for (k, weight) in kernel.iter().enumerate() {
                let sy = reflect(y as isize + k as isize - radius, h);
                let src = &rows[sy * w..(sy + 1) * w];
                let dst = &mut out[y * w..(y + 1) * w];
                for (d, s) in dst.iter_mut().zip(src) {
                    *d += weight * s;
                }
            }
        }
        Self::from_vec(w, h, out)
    }
}

/// Reflects an index into `0..len` (`d c b | a b c d | c b a`), as scipy's `mirror` mode.
fn reflect(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let mut i = i.rem_euclid(period);
    if i >= len as isize {
        i = period - i;
    }
    i as usize
}

/// A binary mask, `(height, width)` row-major; `true` marks a defect pixel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub data: Vec<bool>,
}

impl Mask {
    pub fn empty(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![false; width * height],
        }
    }

    pub fn get(&self, x: usize, y: usize) -> bool {
        self.data[y * self.width + x]
    }

    /// Number of `true` pixels.
    pub fn count(&self) -> usize {
        self.data.iter().filter(|&&v| v).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_constant_map() {
        let map = AnomalyMap::filled(7, 5, 2.5);
        let blurred = map.gaussian_blur(4.0);
        for v in blurred.data {
            assert!((v - 2.5).abs() < 1e-5);
        }
    }

    #[test]
    fn blur_preserves_sum_of_centred_impulse() {
        let mut map = AnomalyMap::filled(41, 41, 0.0);
        map.data[20 * 41 + 20] = 1.0;
        let blurred = map.gaussian_blur(2.0);
        let sum: f32 = blurred.data.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4);
        // The 1D kernel peak of a unit Gaussian with sigma 2 is 1 / (sqrt(2 pi) * 2) = 0.19947.
        let peak = blurred.get(20, 20);
        assert!((peak - 0.19947f32.powi(2)).abs() < 1e-4, "peak {peak}");
    }

    /// Blurs with both passes written as direct sums over reflected indices.
    fn direct_blur(map: &AnomalyMap, sigma: f32) -> Vec<f32> {
        let radius = (4.0 * sigma).ceil() as isize;
        let kernel: Vec<f32> = (-radius..=radius)
            .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
            .collect();
        let norm: f32 = kernel.iter().sum();
        let kernel: Vec<f32> = kernel.iter().map(|k| k / norm).collect();
        let (w, h) = (map.width, map.height);
        let mut rows = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let sx = reflect(x as isize + k as isize - radius, w);
                    acc += weight * map.data[y * w + sx];
                }
                rows[y * w + x] = acc;
            }
        }
        let mut out = vec![0.0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let sy = reflect(y as isize + k as isize - radius, h);
                    acc += weight * rows[sy * w + x];
                }
                out[y * w + x] = acc;
            }
        }
        out
    }

    #[test]
    fn blur_equals_direct_sums() {
        // Widths below, near and above the kernel's reach of 16 pixels at sigma 4.
        for (w, h, sigma) in [
            (1, 3, 4.0),
            (2, 2, 4.0),
            (13, 40, 4.0),
            (70, 9, 4.0),
            (33, 21, 1.5),
        ] {
            let data: Vec<f32> = (0..w * h)
                .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
                .collect();
            let map = AnomalyMap::from_vec(w, h, data);
            assert_eq!(
                map.gaussian_blur(sigma).data,
                direct_blur(&map, sigma),
                "{w}×{h}, sigma {sigma}"
            );
        }
    }

    /// Resizes with every source position and weight computed per output pixel.
    fn direct_resize(map: &AnomalyMap, width: usize, height: usize) -> Vec<f32> {
        let scale_x = map.width as f32 / width as f32;
        let scale_y = map.height as f32 / height as f32;
        let mut out = Vec::new();
        for y in 0..height {
            let sy = ((y as f32 + 0.5) * scale_y - 0.5).clamp(0.0, (map.height - 1) as f32);
            let y0 = sy.floor() as usize;
            let y1 = (y0 + 1).min(map.height - 1);
            let wy = sy - y0 as f32;
            for x in 0..width {
                let sx = ((x as f32 + 0.5) * scale_x - 0.5).clamp(0.0, (map.width - 1) as f32);
                let x0 = sx.floor() as usize;
                let x1 = (x0 + 1).min(map.width - 1);
                let wx = sx - x0 as f32;
                let top = map.get(x0, y0) * (1.0 - wx) + map.get(x1, y0) * wx;
                let bottom = map.get(x0, y1) * (1.0 - wx) + map.get(x1, y1) * wx;
                out.push(top * (1.0 - wy) + bottom * wy);
            }
        }
        out
    }

    #[test]
    fn bilinear_resize_equals_direct_sums() {
        for (w, h, to_w, to_h) in [
            (1, 1, 5, 3),
            (16, 16, 256, 256),
            (64, 48, 37, 300),
            (7, 3, 7, 3),
        ] {
            let data: Vec<f32> = (0..w * h)
                .map(|i| ((i * 7919 + 13) % 1000) as f32 / 1000.0)
                .collect();
            let map = AnomalyMap::from_vec(w, h, data);
            assert_eq!(
                map.resize_bilinear(to_w, to_h).data,
                direct_resize(&map, to_w, to_h),
                "{w}×{h} to {to_w}×{to_h}"
            );
        }
    }

    #[test]
    fn bilinear_resize_matches_hand_values() {
        // 2x1 -> 4x1 with half-pixel centres: sources at 0.25-0.5 = -0.25 (clamped 0), 0.25,
        // 0.75, 1.25 (clamped 1).
        let map = AnomalyMap::from_vec(2, 1, vec![0.0, 1.0]);
        let up = map.resize_bilinear(4, 1);
        assert_eq!(up.data, vec![0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn reflect_mirrors_without_edge_repeat() {
        assert_eq!(reflect(-1, 4), 1);
        assert_eq!(reflect(4, 4), 2);
        assert_eq!(reflect(2, 4), 2);
    }
}
