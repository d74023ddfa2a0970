//! Addition of a per-channel bias to `(b, c, n)` tensors as a candle custom operation with a
//! gradient, for the CPU.
//!
//! candle's `broadcast_add` computes the bias gradient with a general reduction over
//! dimensions 0 and 2, which walks the gradient element by element through its strides. Here
//! each `(image, channel)` row of `n` values is summed as one contiguous slice.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Returns `x + bias` for `x` `(b, c, n)` and `bias` `(c)`, the bias added along dimension 1.
///
/// On the CPU in f32 or f64 this runs as [`ChannelBias`]. Elsewhere it falls back to
/// `broadcast_add`, which runs on every device.
pub fn add_channel_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let (_, c, _) = x.dims3()?;
    let fast = x.device().is_cpu()
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && bias.dtype() == x.dtype();
    if fast {
        x.contiguous()?.apply_op2(&bias.contiguous()?, ChannelBias)
    } else {
        x.broadcast_add(&bias.reshape((1, c, 1))?)
    }
}

/// `x + bias` along dimension 1, whose gradient sums each channel's rows directly.
struct ChannelBias;

/// Sums `(b, c, n)` over dimensions 0 and 2 into `(c)`, with no gradient of its own.
struct ChannelSum;

fn contiguous<'a, T>(values: &'a [T], layout: &Layout, op: &'static str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => Err(candle_core::Error::RequiresContiguous { op }),
    }
}

fn add_bias<T: candle_core::WithDType>(x: &[T], bias: &[T], n: usize) -> Vec<T> {
    let mut out = x.to_vec();
    if n == 0 {
        return out;
    }
    out.par_chunks_mut(n)
        .with_min_len(8)
        .enumerate()
        .for_each(|(row, values)| {
            let b = bias[row % bias.len()];
            for value in values.iter_mut() {
                *value += b;
            }
        });
    out
}

/// Sums one row in eight interleaved partial sums, so that the loop vectorises.
fn row_sum<T: candle_core::WithDType>(row: &[T]) -> T {
    const LANES: usize = 8;
    let mut lanes = [T::zero(); LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane += value;
        }
    }
    let mut total = T::zero();
    for &value in lanes.iter().chain(tail) {
        total += value;
    }
    total
}

fn channel_sums<T: candle_core::WithDType>(x: &[T], (b, c, n): (usize, usize, usize)) -> Vec<T> {
    let rows: Vec<T> = if n == 0 {
        vec![T::zero(); b * c]
    } else {
        x.par_chunks(n).with_min_len(8).map(row_sum).collect()
    };
    let mut sums = vec![T::zero(); c];
    for image in rows.chunks_exact(c.max(1)) {
        for (sum, &value) in sums.iter_mut().zip(image) {
            *sum += value;
        }
    }
    sums
}

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "channel-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, n) = l1.shape().dims3()?;
        if l2.shape().dims() != [c] {
            return Err(candle_core::Error::Msg(format!(
                "channel-bias: bias shape {:?}, expected ({c}) for input {:?}",
                l2.shape().dims(),
                l1.shape().dims()
            )));
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(bias)) => CpuStorage::F32(add_bias(
                contiguous(x, l1, self.name())?,
                contiguous(bias, l2, self.name())?,
                n,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(bias)) => CpuStorage::F64(add_bias(
                contiguous(x, l1, self.name())?,
                contiguous(bias, l2, self.name())?,
                n,
            )),
            _ => {
                return Err(candle_core::Error::DTypeMismatchBinaryOp {
                    lhs: s1.dtype(),
                    rhs: s2.dtype(),
                    op: self.name(),
                })
            }
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad_bias = grad_res.contiguous()?.apply_op1_no_bwd(&ChannelSum)?;
        Ok((Some(grad_res.clone()), Some(grad_bias)))
    }
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel-sum"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims3()?;
        let out = match storage {
            CpuStorage::F32(x) => {
                CpuStorage::F32(channel_sums(contiguous(x, layout, self.name())?, dims))
            }
            CpuStorage::F64(x) => {
                CpuStorage::F64(channel_sums(contiguous(x, layout, self.name())?, dims))
            }
            other => {
                return Err(candle_core::Error::UnsupportedDTypeForOp(
                    other.dtype(),
                    self.name(),
                ))
            }
        };
        Ok((out, Shape::from(dims.1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn ramp(shape: &[usize], scale: f64) -> Tensor {
        let count: usize = shape.iter().product();
        let values: Vec<f64> = (0..count)
            .map(|i| ((i * 7919 % 101) as f64 / 101.0 - 0.5) * scale)
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn channel_bias_matches_broadcast_add() {
        // Rows of 19 values leave a tail after the eight lanes of the sum.
        for shape in [[2, 3, 19], [1, 1, 1], [3, 2, 8]] {
            let x = Var::from_tensor(&ramp(&shape, 2.0)).unwrap();
            let bias = Var::from_tensor(&ramp(&shape[1..2], 1.0)).unwrap();
            let g = ramp(&shape, 3.0);

            let fast = add_channel_bias(&x, &bias).unwrap();
            let reference = x
                .broadcast_add(&bias.reshape((1, shape[1], 1)).unwrap())
                .unwrap();
            assert_eq!(
                fast.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                reference.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
                "forward of {shape:?}"
            );

            let grads_of = |y: &Tensor| {
                let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let of = |var: &Var| {
                    let grad = grads.get(var).unwrap().flatten_all().unwrap();
                    grad.to_vec1::<f64>().unwrap()
                };
                (of(&x), of(&bias))
            };
            let (fast_x, fast_bias) = grads_of(&fast);
            let (reference_x, reference_bias) = grads_of(&reference);
            assert_eq!(fast_x, reference_x, "gradient of x for {shape:?}");
            for (a, b) in fast_bias.iter().zip(&reference_bias) {
                assert!(
                    (a - b).abs() < 1e-12,
                    "bias gradient for {shape:?}: {a} vs {b}"
                );
            }
        }
    }
}
