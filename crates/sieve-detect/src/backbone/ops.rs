//! CPU kernels of the backbone: TensorFlow "SAME" padding and a direct depthwise convolution
//! with fused bias and optional ReLU6, on contiguous f32 `(b, c, h, w)` data.
//!
//! candle's grouped convolution runs one convolution per group, which is slow for depthwise
//! layers with hundreds of channels. The kernel here convolves all channel planes in one call,
//! in parallel on the rayon thread pool.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Shape, Tensor};
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
        let mut output = vec![0f32; b * c * oh * ow];
        if output.is_empty() {
            return Ok((CpuStorage::F32(output), Shape::from((b, c, oh, ow))));
        }

        let geometry = PlaneGeometry::new(h, w, k, s);
        output.par_chunks_mut(oh * ow).enumerate().for_each_init(
            Default::default,
            |scratch, (plane, out)| {
                let channel = plane % c;
                depthwise_plane(
                    &input[plane * h * w..(plane + 1) * h * w],
                    &self.weight[channel * k * k..(channel + 1) * k * k],
                    self.bias[channel],
                    self.relu6,
                    &geometry,
                    scratch,
                    out,
                );
            },
        );
        Ok((CpuStorage::F32(output), Shape::from((b, c, oh, ow))))
    }
}

/// Sizes shared by every plane of one depthwise convolution.
///
/// Each input plane is copied into a zero-padded buffer split into `stride × stride` phase
/// planes: padded pixel `(r, q)` is stored in phase plane `(r % stride, q % stride)` at row
/// `r / stride`, column `q / stride`. Each kernel tap `(ky, kx)` then reads one phase plane at
/// a fixed offset, with the same row pitch for every stride, so it is one contiguous
/// multiply-add over all output rows at once.
struct PlaneGeometry {
    w: usize,
    oh: usize,
    ow: usize,
    k: usize,
    stride: usize,
    pad_top: usize,
    pad_left: usize,
    /// Padded rows that some output reads: `(oh - 1) * stride + k`.
    padded_rows: usize,
    /// Padded columns that some output reads: `(ow - 1) * stride + k`.
    padded_columns: usize,
    /// Columns of a phase plane, `ceil(padded_columns / stride)`, and the row pitch of the
    /// accumulated output.
    pitch: usize,
    /// Values of a phase plane: `ceil(padded_rows / stride)` rows of `pitch`.
    phase_len: usize,
}

impl PlaneGeometry {
    fn new(h: usize, w: usize, k: usize, stride: usize) -> Self {
        let (oh, ow) = (h.div_ceil(stride), w.div_ceil(stride));
        let padded_rows = (oh - 1) * stride + k;
        let padded_columns = (ow - 1) * stride + k;
        let pitch = padded_columns.div_ceil(stride);
        Self {
            w,
            oh,
            ow,
            k,
            stride,
            pad_top: same_padding(h, k, stride).0,
            pad_left: same_padding(w, k, stride).0,
            padded_rows,
            padded_columns,
            pitch,
            phase_len: padded_rows.div_ceil(stride) * pitch,
        }
    }

    /// Offset in the padded buffer of padded pixel `(row, column)`.
    fn padded_offset(&self, row: usize, column: usize) -> usize {
        let s = self.stride;
        ((row % s) * s + column % s) * self.phase_len + (row / s) * self.pitch + column / s
    }
}

/// Convolves one `(h, w)` plane into one `(oh, ow)` plane. The plane is first copied into
/// `padded` as [`PlaneGeometry`] lays it out. Each kernel tap then adds its weighted phase
/// plane to `sums`, `oh` rows of `pitch` values whose first `ow` columns are the outputs.
fn depthwise_plane(
    input: &[f32],
    weight: &[f32],
    bias: f32,
    relu6: bool,
    g: &PlaneGeometry,
    scratch: &mut (Vec<f32>, Vec<f32>),
    output: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only requirement of the called function.
        return unsafe { depthwise_plane_avx2(input, weight, bias, relu6, g, scratch, output) };
    }
    depthwise_plane_lanes(input, weight, bias, relu6, g, scratch, output)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn depthwise_plane_avx2(
    input: &[f32],
    weight: &[f32],
    bias: f32,
    relu6: bool,
    g: &PlaneGeometry,
    scratch: &mut (Vec<f32>, Vec<f32>),
    output: &mut [f32],
) {
    depthwise_plane_lanes(input, weight, bias, relu6, g, scratch, output)
}

/// Computes [`depthwise_plane`], inlined into a baseline and an AVX2 build.
#[inline(always)]
fn depthwise_plane_lanes(
    input: &[f32],
    weight: &[f32],
    bias: f32,
    relu6: bool,
    g: &PlaneGeometry,
    (padded, sums): &mut (Vec<f32>, Vec<f32>),
    output: &mut [f32],
) {
    let s = g.stride;
    // Every plane of one convolution writes the same cells, so the padding cells of a buffer
    // reused from the previous plane are still zero.
    let size = s * s * g.phase_len;
    if padded.len() != size {
        padded.clear();
        padded.resize(size, 0.0);
    }
    // Input columns that land inside the padded columns. SAME padding can leave the last
    // rows and columns of the input unread.
    let columns = g.w.min(g.padded_columns - g.pad_left);
    for (iy, in_row) in input.chunks_exact(g.w).enumerate() {
        let row = iy + g.pad_top;
        if row >= g.padded_rows {
            break;
        }
        let in_row = &in_row[..columns];
        if s == 1 {
            let start = g.padded_offset(row, g.pad_left);
            padded[start..start + columns].copy_from_slice(in_row);
            continue;
        }
        if s == 2 {
            scatter_pairs(in_row, row, g, padded);
            continue;
        }
        for phase in 0..s {
            // The first padded column of this phase that contains an input column, and that
            // input column.
            let first = g.pad_left.saturating_sub(phase).div_ceil(s) * s + phase;
            let column = first - g.pad_left;
            if column >= columns {
                continue;
            }
            let start = g.padded_offset(row, first);
            let values = in_row[column..].iter().step_by(s);
            for (slot, &value) in padded[start..].iter_mut().zip(values) {
                *slot = value;
            }
        }
    }

    // The last output is at `(oh - 1) * pitch + ow - 1`. Columns past `ow` are never read.
    // The first tap sets the sums and the others add to them.
    let len = (g.oh - 1) * g.pitch + g.ow;
    sums.clear();
    sums.extend(padded[..len].iter().map(|&value| weight[0] * value));
    for ky in 0..g.k {
        for kx in 0..g.k {
            if ky == 0 && kx == 0 {
                continue;
            }
            let wv = weight[ky * g.k + kx];
            let start = g.padded_offset(ky, kx);
            for (sum, &value) in sums.iter_mut().zip(&padded[start..start + len]) {
                *sum += wv * value;
            }
        }
    }

    for (out_row, sum_row) in output.chunks_exact_mut(g.ow).zip(sums.chunks(g.pitch)) {
        for (o, &sum) in out_row.iter_mut().zip(sum_row) {
            *o = sum + bias;
        }
        if relu6 {
            for o in out_row.iter_mut() {
                *o = o.clamp(0.0, 6.0);
            }
        }
    }
}

/// Copies the input row `values` into padded row `row` at stride 2, two input columns at a
/// time: one to each column phase.
#[inline(always)]
fn scatter_pairs(values: &[f32], row: usize, g: &PlaneGeometry, padded: &mut [f32]) {
    // An input column at an odd padded column comes first when the left padding is odd.
    let lead = g.pad_left % 2;
    if lead == 1 {
        if let Some(&value) = values.first() {
            padded[g.padded_offset(row, g.pad_left)] = value;
        }
    }
    let Some(rest) = values.get(lead..) else {
        return;
    };
    // Padded column `pad_left + lead` is even, so pairs start there. The odd column phase
    // follows the even one in the buffer.
    let even_start = g.padded_offset(row, g.pad_left + lead);
    let odd_start = g.padded_offset(row, g.pad_left + lead + 1);
    let pairs = rest.len() / 2;
    let (low, high) = padded.split_at_mut(odd_start);
    let even = &mut low[even_start..even_start + pairs];
    let odd = &mut high[..pairs];
    for ((e, o), pair) in even
        .iter_mut()
        .zip(odd.iter_mut())
        .zip(rest.chunks_exact(2))
    {
        *e = pair[0];
        *o = pair[1];
    }
    if rest.len() % 2 == 1 {
        padded[even_start + pairs] = rest[rest.len() - 1];
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
            (1, 2, 8, 8, 1, 2),
            (1, 2, 7, 8, 3, 3),
            (2, 3, 16, 15, 5, 2),
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
}
