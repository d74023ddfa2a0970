//! The loss `0.5 * |z|^2 - log|det J|` of a stack of convolutional coupling blocks and its
//! gradient with respect to the subnet parameters, computed by hand on the CPU in f32.
//!
//! candle's autograd allocates a fresh tensor for every operation and every gradient, and
//! zero-fills each gradient before adding to it. On the small feature maps of a flow those
//! allocations, page faults and elementwise passes cost more than the matrix products. Here one
//! image of one scale runs forward and backward through the whole stack in buffers it owns.
//! Each block's clamp, exponential, scale and shift is one pass. The convolutions are im2col
//! products through `gemm`, and the channel permutation copies rows. Images run in parallel,
//! each with single-threaded products, and their gradients are summed at the end.
//!
//! Columns here are in `(c, dy, dx)` order, the row-major order of a `(c_out, c_in, k, k)`
//! weight, so each weight is used as a `(c_out, c_in*k*k)` matrix without a copy.

use candle_core::{DType, Result, Tensor};
use gemm::Parallelism;

use super::affine_row::{affine_row, AffineRow};
use super::conv::ConvSubnet;
use super::coupling::{AffineCoupling, CouplingStack};
use super::unfold::inside;

/// Added to the variance of the layer norm, as in `fastflow::layer_norm`.
const LAYER_NORM_EPS: f32 = 1e-5;

/// One coupling block's parameters as f32 values, with its permutation and sizes.
struct Block {
    /// `(hidden, passive * k * k)`.
    weight1: Vec<f32>,
    bias1: Vec<f32>,
    /// `(2 * active, hidden * k * k)`.
    weight2: Vec<f32>,
    bias2: Vec<f32>,
    /// Output channel `i` of the permutation is channel `order[i]` of the block's output.
    order: Vec<usize>,
    kernel: usize,
    hidden: usize,
    clamp: f32,
}

/// The parameters of a stack of convolutional coupling blocks, copied out of their tensors.
pub struct ConvStackWeights {
    channels: usize,
    blocks: Vec<Block>,
}

/// The gradient of one stack's parameters, per block in the order of [`ConvSubnet::tensors`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConvStackGradient {
    pub blocks: Vec<[Vec<f32>; 4]>,
}

impl ConvStackGradient {
    fn zeros(weights: &ConvStackWeights) -> Self {
        let blocks = weights
            .blocks
            .iter()
            .map(|block| {
                [
                    vec![0.0; block.weight1.len()],
                    vec![0.0; block.bias1.len()],
                    vec![0.0; block.weight2.len()],
                    vec![0.0; block.bias2.len()],
                ]
            })
            .collect();
        Self { blocks }
    }

    /// Adds `other`, a gradient of the same stack, to this one.
    pub fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.blocks.iter_mut().zip(&other.blocks) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
    }
}

fn values(tensor: &Tensor) -> Result<Vec<f32>> {
    tensor.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

impl ConvStackWeights {
    /// Copies the parameters of `stack`, whose blocks transform `channels` channels.
    pub fn new(stack: &CouplingStack<ConvSubnet>, channels: usize) -> Result<Self> {
        let blocks = stack
            .blocks()
            .map(|(subnet, permutation, clamp)| {
                let [weight1, bias1, weight2, bias2] = subnet.tensors();
                let (hidden, _, kernel, _) = weight1.dims4()?;
                Ok(Block {
                    weight1: values(weight1)?,
                    bias1: values(bias1)?,
                    weight2: values(weight2)?,
                    bias2: values(bias2)?,
                    order: permutation.order().iter().map(|&i| i as usize).collect(),
                    kernel,
                    hidden,
                    clamp: clamp as f32,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { channels, blocks })
    }

    /// Channels of the features the stack transforms.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Layer-normalises one image's features `x` `(c, height, width)` over all its values,
    /// runs them through the stack, and returns per position `0.5 * |z|^2` and `log|det J|`,
    /// `(height, width)` each.
    pub fn image_scores(&self, x: &[f32], height: usize, width: usize) -> (Vec<f32>, Vec<f32>) {
        let pass = self.forward(x, height, width, false);
        let n = height * width;
        let last = &pass.z[pass.z.len() - self.channels * n..];
        let mut energy = vec![0.0f32; n];
        for row in last.chunks_exact(n) {
            for (sum, &v) in energy.iter_mut().zip(row) {
                *sum += 0.5 * v * v;
            }
        }
        (energy, pass.log_det)
    }

    /// Layer-normalises one image's features `x` `(c, height, width)` over all its values,
    /// runs them through the stack, and returns `weight * sum over positions of (0.5 * |z|^2 -
    /// log|det J|)`. With `gradient` it also returns the gradient of that value with respect
    /// to the parameters.
    pub fn image_loss(
        &self,
        x: &[f32],
        height: usize,
        width: usize,
        weight: f32,
        gradient: bool,
    ) -> (f64, Option<ConvStackGradient>) {
        let c = self.channels;
        let n = height * width;
        let pass = self.forward(x, height, width, gradient);
        let z = &pass.z;
        let last = &z[z.len() - c * n..];
        let energy: f64 = last
            .iter()
            .map(|&v| 0.5 * f64::from(v) * f64::from(v))
            .sum();
        let log_det: f64 = pass.log_det.iter().map(|&v| f64::from(v)).sum();
        let loss = f64::from(weight) * (energy - log_det);
        if !gradient {
            return (loss, None);
        }

        let geometry = Geometry { height, width };
        let passive = AffineCoupling::<ConvSubnet>::passive_channels(c);
        let active = AffineCoupling::<ConvSubnet>::active_channels(c);
        let widest = self.widest_columns();
        let mut columns = vec![0.0f32; widest * n];
        let mut grads = ConvStackGradient::zeros(self);
        // Gradient with respect to the current block's output, then its input.
        let mut g: Vec<f32> = last.iter().map(|&v| weight * v).collect();
        let mut g_y = vec![0.0f32; c * n];
        let mut g_out = vec![0.0f32; 2 * active * n];
        let mut g_hidden = vec![0.0f32; self.max_hidden() * n];
        let mut g_columns = vec![0.0f32; widest * n];

        for (index, block) in self.blocks.iter().enumerate().rev() {
            let input = &z[index * c * n..(index + 1) * c * n];
            let (x1, x2) = input.split_at(passive * n);
            let k = block.kernel;
            let hidden = &pass.hidden[index];
            let (tanh, exp) = (&pass.tanh[index], &pass.exp[index]);
            let [g_w1, g_b1, g_w2, g_b2] = &mut grads.blocks[index];

            // Undo the permutation.
            for (row, &from) in g.chunks_exact(n).zip(&block.order) {
                g_y[from * n..(from + 1) * n].copy_from_slice(row);
            }
            let (g_x1, g_y2) = g_y.split_at_mut(passive * n);

            // Through y2 = x2 * exp(s) + t, s = clamp * tanh(raw / clamp), and the -sum(s)
            // of the loss.
            let (g_raw, g_shift) = g_out.split_at_mut(active * n);
            for i in 0..active * n {
                let gy = g_y2[i];
                let e = exp[i];
                let g_s = gy * x2[i] * e - weight;
                g_raw[i] = g_s * (1.0 - tanh[i] * tanh[i]);
                g_shift[i] = gy;
                g_y2[i] = gy * e; // now the gradient of x2
            }
            for (sum, row) in g_b2.iter_mut().zip(g_out.chunks_exact(n)) {
                *sum += row.iter().sum::<f32>();
            }

            // Second convolution: its weight, then the hidden activations.
            let h = block.hidden;
            let cols2 = geometry.columns(hidden, h, k, &mut columns);
            matmul(
                g_w2,
                (2 * active, h * k * k, n),
                (&g_out, false),
                (cols2, true),
                true,
            );
            let g_hidden = &mut g_hidden[..h * n];
            if k == 1 {
                matmul(
                    g_hidden,
                    (h, n, 2 * active),
                    (&block.weight2, true),
                    (&g_out, false),
                    false,
                );
            } else {
                let g_cols = &mut g_columns[..h * k * k * n];
                matmul(
                    g_cols,
                    (h * k * k, n, 2 * active),
                    (&block.weight2, true),
                    (&g_out, false),
                    false,
                );
                g_hidden.fill(0.0);
                geometry.fold(g_cols, h, k, g_hidden);
            }
            for (g, &value) in g_hidden.iter_mut().zip(hidden) {
                if value <= 0.0 {
                    *g = 0.0;
                }
            }
            for (sum, row) in g_b1.iter_mut().zip(g_hidden.chunks_exact(n)) {
                *sum += row.iter().sum::<f32>();
            }

            // First convolution: its weight, then the passive input, which also passed
            // through unchanged.
            let cols1 = geometry.columns(x1, passive, k, &mut columns);
            matmul(
                g_w1,
                (h, passive * k * k, n),
                (g_hidden, false),
                (cols1, true),
                true,
            );
            if k == 1 {
                matmul(
                    g_x1,
                    (passive, n, h),
                    (&block.weight1, true),
                    (g_hidden, false),
                    true,
                );
            } else {
                let g_cols = &mut g_columns[..passive * k * k * n];
                matmul(
                    g_cols,
                    (passive * k * k, n, h),
                    (&block.weight1, true),
                    (g_hidden, false),
                    false,
                );
                geometry.fold(g_cols, passive, k, g_x1);
            }
            std::mem::swap(&mut g, &mut g_y);
        }
        (loss, Some(grads))
    }

    /// Runs one image through the stack. With `keep` every block's input, hidden activations,
    /// `tanh(s / clamp)` and `exp(s)` stay for the backward pass, else only the final `z`.
    fn forward(&self, x: &[f32], height: usize, width: usize, keep: bool) -> Forward {
        let c = self.channels;
        let n = height * width;
        assert_eq!(x.len(), c * n, "features of {c} x {height} x {width}");
        let geometry = Geometry { height, width };
        let passive = AffineCoupling::<ConvSubnet>::passive_channels(c);
        let active = AffineCoupling::<ConvSubnet>::active_channels(c);

        // Inputs of every block and the final z, or only the current and next maps.
        let maps = if keep { self.blocks.len() + 1 } else { 2 };
        let mut z = vec![0.0f32; maps * c * n];
        layer_norm(x, &mut z[..c * n]);
        let mut pass = Forward {
            z: Vec::new(),
            hidden: Vec::with_capacity(self.blocks.len()),
            tanh: Vec::with_capacity(self.blocks.len()),
            exp: Vec::with_capacity(self.blocks.len()),
            log_det: vec![0.0f32; n],
        };
        let mut columns = vec![0.0f32; self.widest_columns() * n];
        let mut out = vec![0.0f32; 2 * active * n];
        let mut hidden = vec![0.0f32; self.max_hidden() * n];
        let mut tanh = vec![0.0f32; active * n];
        let mut exp = vec![0.0f32; active * n];
        let mut y2 = vec![0.0f32; active * n];

        for (index, block) in self.blocks.iter().enumerate() {
            let slot = if keep { index } else { 0 };
            let (done, rest) = z.split_at_mut((slot + 1) * c * n);
            let input = &done[slot * c * n..];
            let next = &mut rest[..c * n];
            let k = block.kernel;
            let (x1, x2) = input.split_at(passive * n);

            // hidden = relu(W1 * columns(x1) + b1)
            let hidden = &mut hidden[..block.hidden * n];
            let cols1 = geometry.columns(x1, passive, k, &mut columns);
            matmul(
                hidden,
                (block.hidden, n, passive * k * k),
                (&block.weight1, false),
                (cols1, false),
                false,
            );
            for (row, &bias) in hidden.chunks_exact_mut(n).zip(&block.bias1) {
                for value in row {
                    *value = (*value + bias).max(0.0);
                }
            }

            // out = W2 * columns(hidden) + b2: raw log-scales, then shifts.
            let cols2 = geometry.columns(hidden, block.hidden, k, &mut columns);
            matmul(
                &mut out,
                (2 * active, n, block.hidden * k * k),
                (&block.weight2, false),
                (cols2, false),
                false,
            );
            let (raw, shift) = out.split_at(active * n);

            for channel in 0..active {
                let rows = channel * n..(channel + 1) * n;
                affine_row(AffineRow {
                    raw: &raw[rows.clone()],
                    shift: &shift[rows.clone()],
                    x2: &x2[rows.clone()],
                    scale_bias: block.bias2[channel],
                    shift_bias: block.bias2[active + channel],
                    clamp: block.clamp,
                    tanh: &mut tanh[rows.clone()],
                    exp: &mut exp[rows.clone()],
                    y2: &mut y2[rows],
                    log_det: &mut pass.log_det,
                });
            }

            // The permuted output: channel i is channel order[i] of (x1, y2).
            for (row, &from) in next.chunks_exact_mut(n).zip(&block.order) {
                let source = if from < passive {
                    &x1[from * n..(from + 1) * n]
                } else {
                    &y2[(from - passive) * n..(from - passive + 1) * n]
                };
                row.copy_from_slice(source);
            }
            if keep {
                pass.hidden.push(hidden.to_vec());
                pass.tanh.push(tanh.clone());
                pass.exp.push(exp.clone());
            } else {
                z.copy_within(c * n..2 * c * n, 0);
            }
        }
        if !keep {
            z.truncate(c * n);
        }
        pass.z = z;
        pass
    }

    /// Rows of the widest column matrix of any block: `k * k` times its widest input.
    fn widest_columns(&self) -> usize {
        let passive = AffineCoupling::<ConvSubnet>::passive_channels(self.channels);
        self.blocks
            .iter()
            .map(|block| block.kernel * block.kernel * passive.max(block.hidden))
            .max()
            .unwrap_or(0)
    }

    fn max_hidden(&self) -> usize {
        self.blocks.iter().map(|b| b.hidden).max().unwrap_or(0)
    }
}

/// The values of one forward pass that the loss, the scores and the backward pass read.
struct Forward {
    /// The input of every block and the final `z`, `c * n` values each, or only the final `z`.
    z: Vec<f32>,
    /// Per block, when kept: the hidden activations after the ReLU, `tanh(s / clamp)` and
    /// `exp(s)` of the clamped log-scales.
    hidden: Vec<Vec<f32>>,
    tanh: Vec<Vec<f32>>,
    exp: Vec<Vec<f32>>,
    /// `log|det J|` of each position, summed over the blocks.
    log_det: Vec<f32>,
}

/// Writes `(x - mean) / sqrt(var + eps)` of all values of `x` into `out`.
fn layer_norm(x: &[f32], out: &mut [f32]) {
    let count = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / count;
    let variance = x
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / count;
    let scale = 1.0 / (variance as f32 + LAYER_NORM_EPS).sqrt();
    let mean = mean as f32;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - mean) * scale;
    }
}

/// Height and width of the maps of one scale.
#[derive(Clone, Copy)]
struct Geometry {
    height: usize,
    width: usize,
}

impl Geometry {
    /// Returns the columns of `x` `(channels, height, width)` for a `kernel`×`kernel`
    /// convolution with "same" zero padding: `x` itself for a 1×1 kernel, else written to
    /// `scratch` with rows in `(c, dy, dx)` order.
    fn columns<'a>(
        &self,
        x: &'a [f32],
        channels: usize,
        kernel: usize,
        scratch: &'a mut [f32],
    ) -> &'a [f32] {
        if kernel == 1 {
            return x;
        }
        let (h, w) = (self.height, self.width);
        let n = h * w;
        let pad = kernel / 2;
        let cols = &mut scratch[..channels * kernel * kernel * n];
        for channel in 0..channels {
            let plane = &x[channel * n..(channel + 1) * n];
            for dy in 0..kernel {
                for dx in 0..kernel {
                    let row = (channel * kernel + dy) * kernel + dx;
                    let out = &mut cols[row * n..(row + 1) * n];
                    let xs = inside(dx, pad, w);
                    for y in 0..h {
                        let line = &mut out[y * w..(y + 1) * w];
                        let source_y = (y + dy).wrapping_sub(pad);
                        if source_y >= h || xs.is_empty() {
                            line.fill(0.0);
                            continue;
                        }
                        line[..xs.start].fill(0.0);
                        line[xs.end..].fill(0.0);
                        let from = source_y * w + xs.start + dx - pad;
                        line[xs.clone()].copy_from_slice(&plane[from..from + xs.len()]);
                    }
                }
            }
        }
        cols
    }

    /// Adds columns `(channels * k * k, height * width)` back onto `out` `(channels, height,
    /// width)`: the adjoint of [`Geometry::columns`].
    fn fold(&self, cols: &[f32], channels: usize, kernel: usize, out: &mut [f32]) {
        let (h, w) = (self.height, self.width);
        let n = h * w;
        let pad = kernel / 2;
        for channel in 0..channels {
            let plane = &mut out[channel * n..(channel + 1) * n];
            for dy in 0..kernel {
                for dx in 0..kernel {
                    let row = (channel * kernel + dy) * kernel + dx;
                    let column = &cols[row * n..(row + 1) * n];
                    let xs = inside(dx, pad, w);
                    if xs.is_empty() {
                        continue;
                    }
                    for y in 0..h {
                        let source_y = (y + dy).wrapping_sub(pad);
                        if source_y >= h {
                            continue;
                        }
                        let from = source_y * w + xs.start + dx - pad;
                        let target = &mut plane[from..from + xs.len()];
                        for (t, &v) in target.iter_mut().zip(&column[y * w + xs.start..]) {
                            *t += v;
                        }
                    }
                }
            }
        }
    }
}

/// `dst (m, n) = lhs (m, k) * rhs (k, n)`, or `dst += ...` with `accumulate`. Every matrix is
/// stored row-major. A `true` flag means the slice contains the transposed matrix, `(k, m)` for
/// `lhs` or `(n, k)` for `rhs`.
fn matmul(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_t): (&[f32], bool),
    (rhs, rhs_t): (&[f32], bool),
    accumulate: bool,
) {
    assert!(dst.len() >= m * n, "destination shorter than {m} x {n}");
    assert!(lhs.len() >= m * k, "left operand shorter than {m} x {k}");
    assert!(rhs.len() >= k * n, "right operand shorter than {k} x {n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // (row stride, column stride) of each operand.
    let (lhs_rs, lhs_cs) = if lhs_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rhs_rs, rhs_cs) = if rhs_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: the asserts above keep every index that the strides reach inside the slices,
    // and `dst` does not overlap the inputs because it is borrowed mutably.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}
