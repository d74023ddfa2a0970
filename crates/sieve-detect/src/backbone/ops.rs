//! CPU kernels of the backbone: TensorFlow "SAME" padding, a direct depthwise convolution, and a
//! fused per-channel bias with optional ReLU6, all on contiguous f32 `(b, c, h, w)` data.
//!
//! candle's grouped convolution runs one convolution per group, which is slow for depthwise
//! layers with hundreds of channels. The kernel here convolves all channel planes in one call,
//! in parallel on the rayon thread pool.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, InplaceOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Returns the (before, after) zero padding of TensorFlow's "SAME" mode for one spatial axis.
///
/// The output has `ceil(input / stride)` positions; the total padding is
/// `max((ceil(input / stride) - 1) * stride + kernel - input, 0)`, with the smaller half before.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = ((output.saturating_sub(1)) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// Applies a depthwise convolution with "SAME" padding and no bias.
///
/// `x` is `(b, c, h, w)` and `weight` is `(c, 1, k, k)`, both f32 on the CPU; the result is
/// `(b, c, ceil(h / stride), ceil(w / stride))`.
pub fn depthwise_conv2d(x: &Tensor, weight: &Tensor, stride: usize) -> candle_core::Result<Tensor> {
    let (c, one, k, k2) = weight.dims4()?;
    if one != 1 || k != k2 || stride == 0 {
        bail!(
            "depthwise_conv2d: weight shape {:?} with stride {stride}, expected (c, 1, k, k) and \
             a stride of at least 1",
            weight.dims()
        );
    }
    let op = DepthwiseConv {
        weight: weight.flatten_all()?.to_vec1::<f32>()?,
        bias: vec![0.0; c],
        kernel: k,
        stride,
        relu6: false,
    };
    x.contiguous()?.apply_op1_no_bwd(&op)
}

/// A depthwise convolution with "SAME" padding, a per-channel bias and an optional ReLU6.
#[derive(Clone, Debug)]
pub(crate) struct DepthwiseConv {
    /// `(c, k, k)` weights, row-major.
    pub weight: Vec<f32>,
    /// One bias per channel.
    pub bias: Vec<f32>,
    pub kernel: usize,
    pub stride: usize,
    pub relu6: bool,
}

impl CustomOp1 for DepthwiseConv {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            bail!(
                "depthwise-conv2d: input dtype {:?}, expected F32",
                storage.dtype()
            );
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("depthwise-conv2d: the input is not contiguous; call .contiguous() first");
        };
        let &[b, c, h, w] = layout.dims() else {
            bail!(
                "depthwise-conv2d: input shape {:?}, expected (b, c, h, w)",
                layout.dims()
            );
        };
        let k = self.kernel;
        if self.bias.len() != c || self.weight.len() != c * k * k {
            bail!(
                "depthwise-conv2d: {c} input channels, but weights for {} channels",
                self.bias.len()
            );
        }
        let input = &data[start..end];

        let s = self.stride;
        let (oh, ow) = (h.div_ceil(s), w.div_ceil(s));
        let (pad_top, _) = same_padding(h, k, s);
        let (pad_left, _) = same_padding(w, k, s);
        let mut output = vec![0f32; b * c * oh * ow];
        if output.is_empty() {
            return Ok((CpuStorage::F32(output), Shape::from((b, c, oh, ow))));
        }

        output
            .par_chunks_mut(oh * ow)
            .enumerate()
            .for_each(|(plane, out)| {
                let channel = plane % c;
                let geometry = PlaneGeometry {
                    h,
                    w,
                    ow,
                    k,
                    stride: s,
                    pad_top,
                    pad_left,
                };
                depthwise_plane(
                    &input[plane * h * w..(plane + 1) * h * w],
                    &self.weight[channel * k * k..(channel + 1) * k * k],
                    self.bias[channel],
                    self.relu6,
                    &geometry,
                    out,
                );
            });
        Ok((CpuStorage::F32(output), Shape::from((b, c, oh, ow))))
    }
}

/// Sizes shared by every plane of one depthwise convolution.
struct PlaneGeometry {
    h: usize,
    w: usize,
    ow: usize,
    k: usize,
    stride: usize,
    pad_top: usize,
    pad_left: usize,
}

/// Convolves one `(h, w)` plane into one `(oh, ow)` plane, row by row: each output row starts at
/// the bias and accumulates `k * k` weighted input rows, clipped to the part inside the input.
fn depthwise_plane(
    input: &[f32],
    weight: &[f32],
    bias: f32,
    relu6: bool,
    g: &PlaneGeometry,
    output: &mut [f32],
) {
    // For each kernel column, the output columns whose input column lies inside the image.
    let column_ranges: Vec<(usize, usize)> = (0..g.k)
        .map(|kx| {
            let first = g.pad_left.saturating_sub(kx).div_ceil(g.stride);
            match (g.w + g.pad_left).checked_sub(kx + 1) {
                Some(reach) => (first, (reach / g.stride + 1).min(g.ow)),
                // The kernel column lies right of the padded image for every output column.
                None => (0, 0),
            }
        })
        .collect();

    for (oy, out_row) in output.chunks_exact_mut(g.ow).enumerate() {
        out_row.fill(bias);
        for ky in 0..g.k {
            let Some(iy) = (oy * g.stride + ky).checked_sub(g.pad_top) else {
                continue;
            };
            if iy >= g.h {
                continue;
            }
            let in_row = &input[iy * g.w..(iy + 1) * g.w];
            for (kx, &(first, end)) in column_ranges.iter().enumerate() {
                if first >= end {
                    continue;
                }
                let wv = weight[ky * g.k + kx];
                // Input column of output column `first`; never negative by the choice of `first`.
                let ix0 = first * g.stride + kx - g.pad_left;
                let out = &mut out_row[first..end];
                if g.stride == 1 {
                    let len = out.len();
                    for (o, &i) in out.iter_mut().zip(&in_row[ix0..ix0 + len]) {
                        *o += wv * i;
                    }
                } else {
                    for (o, &i) in out.iter_mut().zip(in_row[ix0..].iter().step_by(g.stride)) {
                        *o += wv * i;
                    }
                }
            }
        }
        if relu6 {
            for o in out_row.iter_mut() {
                *o = o.clamp(0.0, 6.0);
            }
        }
    }
}

/// Adds a per-channel bias to a `(b, c, ...)` tensor in place, then optionally applies ReLU6.
#[derive(Clone, Debug)]
pub(crate) struct BiasActivation<'a> {
    pub bias: &'a [f32],
    pub relu6: bool,
}

impl InplaceOp1 for BiasActivation<'_> {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            bail!("bias-activation: dtype {:?}, expected F32", storage.dtype());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("bias-activation: the tensor is not contiguous");
        };
        let dims = layout.dims();
        if dims.len() < 2 || dims[1] != self.bias.len() {
            bail!(
                "bias-activation: shape {dims:?}, expected (b, {}, ...)",
                self.bias.len()
            );
        }
        let channels = dims[1];
        let plane: usize = dims[2..].iter().product();
        if plane == 0 {
            return Ok(());
        }

        data[start..end]
            .par_chunks_mut(plane)
            .with_min_len(16)
            .enumerate()
            .for_each(|(index, values)| {
                let bias = self.bias[index % channels];
                if self.relu6 {
                    for v in values.iter_mut() {
                        *v = (*v + bias).clamp(0.0, 6.0);
                    }
                } else {
                    for v in values.iter_mut() {
                        *v += bias;
                    }
                }
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use rand::{Rng, SeedableRng};

    #[test]
    fn same_padding_matches_tensorflow() {
        // (input, kernel, stride) -> (before, after), worked out from the TensorFlow formula.
        let cases = [
            ((256, 3, 2), (0, 1)),
            ((224, 3, 2), (0, 1)),
            ((225, 3, 2), (1, 1)),
            ((64, 5, 2), (1, 2)),
            ((65, 5, 2), (2, 2)),
            ((16, 5, 1), (2, 2)),
            ((16, 3, 1), (1, 1)),
            ((1, 5, 2), (2, 2)),
            ((7, 1, 1), (0, 0)),
            ((8, 1, 2), (0, 0)),
        ];
        for ((input, kernel, stride), expected) in cases {
            assert_eq!(
                same_padding(input, kernel, stride),
                expected,
                "input {input}, kernel {kernel}, stride {stride}"
            );
        }
    }

    fn random_tensor(rng: &mut rand_chacha::ChaCha8Rng, dims: &[usize]) -> Tensor {
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        Tensor::from_vec(values, dims, &Device::Cpu).unwrap()
    }

    /// Computes the reference: explicit asymmetric zero padding, then candle's grouped convolution.
    fn reference(x: &Tensor, weight: &Tensor, stride: usize) -> Tensor {
        let (_, c, h, w) = x.dims4().unwrap();
        let k = weight.dim(2).unwrap();
        let (top, bottom) = same_padding(h, k, stride);
        let (left, right) = same_padding(w, k, stride);
        x.pad_with_zeros(2, top, bottom)
            .unwrap()
            .pad_with_zeros(3, left, right)
            .unwrap()
            .conv2d(weight, 0, stride, 1, c)
            .unwrap()
    }

    #[test]
    fn depthwise_matches_grouped_conv2d() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // (batch, channels, height, width, kernel, stride), odd and even sizes included.
        let cases = [
            (1, 3, 8, 8, 3, 1),
            (2, 4, 9, 7, 3, 2),
            (1, 5, 10, 11, 5, 1),
            (2, 3, 13, 12, 5, 2),
            (1, 2, 1, 1, 5, 2),
            (1, 2, 2, 3, 5, 1),
        ];
        for (b, c, h, w, k, stride) in cases {
            let x = random_tensor(&mut rng, &[b, c, h, w]);
            let weight = random_tensor(&mut rng, &[c, 1, k, k]);

            let fast = depthwise_conv2d(&x, &weight, stride).unwrap();
            let slow = reference(&x, &weight, stride);

            assert_eq!(
                fast.dims(),
                slow.dims(),
                "case {:?}",
                (b, c, h, w, k, stride)
            );
            let diff = (fast - slow)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                diff < 1e-5,
                "case {:?}: max difference {diff}",
                (b, c, h, w, k, stride)
            );
        }
    }

    #[test]
    fn depthwise_bias_and_relu6() {
        // One 3x3 plane of ones, a kernel of ones: the centre sums 9 inputs, a corner 4.
        let x = Tensor::ones((1, 1, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let op = DepthwiseConv {
            weight: vec![1.0; 9],
            bias: vec![-2.0],
            kernel: 3,
            stride: 1,
            relu6: true,
        };
        let y = x.apply_op1_no_bwd(&op).unwrap();
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Corners 4 - 2, edges 6 - 2, centre 9 - 2 clamped to 6.
        assert_eq!(y, vec![2.0, 4.0, 2.0, 4.0, 6.0, 4.0, 2.0, 4.0, 2.0]);
    }

    #[test]
    fn bias_activation_clamps() {
        let x = Tensor::new(&[[[-1f32, 3.0]], [[5.0, 9.0]]], &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 2))
            .unwrap();
        x.inplace_op1(&BiasActivation {
            bias: &[1.0, -1.0],
            relu6: true,
        })
        .unwrap();
        assert_eq!(
            x.to_vec3::<f32>().unwrap(),
            vec![vec![vec![0.0, 4.0], vec![4.0, 6.0]]]
        );
    }
}
