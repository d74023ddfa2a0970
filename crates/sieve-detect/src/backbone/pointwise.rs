//! Convolutions as direct `gemm` products: the 1×1 convolutions of the blocks and the 3×3
//! stride-2 stem after im2col.
//!
//! The destination starts as the bias, plus the residual where a block has one, and the
//! product is accumulated onto it. candle's matmul would zero-fill a fresh output and need a
//! separate pass for the bias and another for the residual sum.

use candle_core::{CpuStorage, Device, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// Calls `f` with the values of `x`, a contiguous f32 tensor on the CPU, without copying them.
pub(super) fn with_cpu_f32<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(values)) = &*storage else {
        candle_core::bail!("expected an f32 tensor on the CPU, found {:?}", x.dtype());
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor");
    };
    Ok(f(&values[start..end]))
}

/// Returns `weight (m, k) * columns[i] (k, n) + bias (+ residual[i])` for every image `i` of
/// `columns` `(b, k, n)`, `(b, m, n)` in all, clamped to `[0, 6]` with `relu6`.
pub(super) fn conv_matmul(
    columns: &[f32],
    (k, n): (usize, usize),
    weight: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    relu6: bool,
) -> Vec<f32> {
    let m = bias.len();
    assert_eq!(weight.len(), m * k, "weight of {m} x {k}");
    assert!(k > 0, "no input channels");
    assert!(n > 0, "no positions");
    assert!(columns.len().is_multiple_of(k * n), "columns of {k} x {n}");
    let batch = columns.len() / (k * n);
    if let Some(residual) = residual {
        assert_eq!(
            residual.len(),
            batch * m * n,
            "residual of {batch} x {m} x {n}"
        );
    }

    // Rows of n values, `(image, channel)` in order: each starts as its bias and residual,
    // written once into uninitialised memory.
    let len = batch * m * n;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(n)
        .with_min_len(16)
        .enumerate()
        .for_each(|(row, values)| {
            let bias = bias[row % m];
            match residual {
                Some(residual) => {
                    let from = &residual[row * n..(row + 1) * n];
                    for (v, &r) in values.iter_mut().zip(from) {
                        v.write(r + bias);
                    }
                }
                None => {
                    for v in values {
                        v.write(bias);
                    }
                }
            }
        });
    // SAFETY: the loop above wrote all `len` values.
    unsafe { out.set_len(len) };

    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    for (dst, image) in out.chunks_exact_mut(m * n).zip(columns.chunks_exact(k * n)) {
        // SAFETY: `dst` contains m * n values, `image` k * n and `weight` m * k, all
        // row-major with the strides given, and `dst` overlaps neither input.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                true,
                weight.as_ptr(),
                1,
                k as isize,
                image.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
    if relu6 {
        out.par_chunks_mut(4096).for_each(|values| {
            for v in values {
                *v = v.clamp(0.0, 6.0);
            }
        });
    }
    out
}

/// Returns the columns `(b, c * k * k, ho * wo)` of a `k`×`k` convolution with `stride` over
/// `x` `(b, c, h, w)` zero-padded by `top` rows and `left` columns, for an output of `ho`×`wo`.
/// Rows are in `(c, dy, dx)` order, the row-major order of a `(c_out, c, k, k)` weight.
pub(super) fn strided_columns(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    (k, stride): (usize, usize),
    (top, left): (usize, usize),
    (ho, wo): (usize, usize),
) -> Vec<f32> {
    let batch = x.len() / (c * h * w).max(1);
    let n = ho * wo;
    let mut columns = vec![0.0f32; batch * c * k * k * n];
    columns
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(row, out)| {
            let (image, tap) = (row / (c * k * k), row % (c * k * k));
            let (channel, dy, dx) = (tap / (k * k), tap / k % k, tap % k);
            let plane = &x[(image * c + channel) * h * w..][..h * w];
            for oy in 0..ho {
                let y = (oy * stride + dy).wrapping_sub(top);
                if y >= h {
                    continue;
                }
                let line = &plane[y * w..(y + 1) * w];
                for (ox, value) in out[oy * wo..(oy + 1) * wo].iter_mut().enumerate() {
                    let x = (ox * stride + dx).wrapping_sub(left);
                    if x < w {
                        *value = line[x];
                    }
                }
            }
        });
    columns
}

/// Wraps `values` as a `(b, c, h, w)` tensor on the CPU without copying them.
pub(super) fn tensor4(values: Vec<f32>, dims: (usize, usize, usize, usize)) -> Tensor {
    Tensor::from_vec(values, dims, &Device::Cpu).expect("the caller sized the values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, count: usize) -> Vec<f32> {
        (0..count).map(|_| rng.gen_range(-2.0..2.0)).collect()
    }

    /// A strided 3×3 convolution through columns and `conv_matmul` equals candle's `conv2d` on
    /// the zero-padded input, plus bias and residual, clamped to [0, 6].
    #[test]
    fn strided_conv_matches_candle() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (b, c, h, w, m) = (2, 3, 7, 6, 5);
        let (top, bottom, left, right) = (0, 1, 1, 1);
        let (ho, wo) = (
            (h + top + bottom - 3) / 2 + 1,
            (w + left + right - 3) / 2 + 1,
        );
        let x = random(&mut rng, b * c * h * w);
        let weight: Vec<f32> = random(&mut rng, m * c * 9)
            .iter()
            .map(|v| v * 0.3)
            .collect();
        let bias = random(&mut rng, m);
        let residual = random(&mut rng, b * m * ho * wo);

        let columns = strided_columns(&x, (c, h, w), (3, 2), (top, left), (ho, wo));
        let got = conv_matmul(
            &columns,
            (c * 9, ho * wo),
            &weight,
            &bias,
            Some(&residual),
            true,
        );

        let device = Device::Cpu;
        let input = Tensor::from_vec(x, (b, c, h, w), &device).unwrap();
        let padded = input
            .pad_with_zeros(2, top, bottom)
            .unwrap()
            .pad_with_zeros(3, left, right)
            .unwrap();
        let kernel = Tensor::from_vec(weight, (m, c, 3, 3), &device).unwrap();
        let convolved: Vec<f32> = padded
            .conv2d(&kernel, 0, 2, 1, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(got.len(), convolved.len());
        let mut expected = Vec::with_capacity(got.len());
        for (i, (&g, &e)) in got.iter().zip(&convolved).enumerate() {
            let want = (e + bias[i / (ho * wo) % m] + residual[i]).clamp(0.0, 6.0);
            assert!((g - want).abs() < 1e-4, "value {i}: {g} vs {want}");
            expected.push(want);
        }
        // The lower bound of the clamp is exercised, and many values lie inside it.
        let zeros = expected.iter().filter(|&&v| v == 0.0).count();
        let inside = expected.iter().filter(|&&v| v > 0.0 && v < 6.0).count();
        assert!(zeros > 0, "no value clamped to 0");
        assert!(inside > got.len() / 4, "{inside} values inside (0, 6)");
    }
}
