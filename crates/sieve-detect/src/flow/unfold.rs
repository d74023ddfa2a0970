//! Unfolding of feature maps into the columns of a "same"-padded convolution (im2col) and its
//! adjoint, folding (col2im), as candle custom operations with gradients, for the CPU.
//!
//! Columns of `(b, c, h, w)` for a `k`×`k` kernel are `(b, k*k*c, h*w)`, rows in `(dy, dx, c)`
//! order: row `(dy*k + dx)*c + ci`, column `y*w + x` contains input `(ci, y + dy - k/2,
//! x + dx - k/2)`, or 0 outside the map. Building them with candle's `narrow` and `cat` works
//! on every device, but its gradient pads and adds one full-size tensor per kernel tap. One
//! pass over memory each way, as here, is several times faster.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Returns the columns of `x` `(b, c, h, w)` for an odd `kernel`, on the CPU in f32 or f64.
pub fn unfold(x: &Tensor, kernel: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Unfold { kernel })
}

/// Sums columns `(b, k*k*c, h*w)` back onto `(b, c, h, w)`: the adjoint of [`unfold`].
pub fn fold(columns: &Tensor, kernel: usize, height: usize, width: usize) -> Result<Tensor> {
    columns.contiguous()?.apply_op1(Fold {
        kernel,
        height,
        width,
    })
}

struct Unfold {
    kernel: usize,
}

struct Fold {
    kernel: usize,
    height: usize,
    width: usize,
}

/// Returns the contiguous values of `storage` under `layout`, or an error naming `op`.
fn contiguous_slice<'a, T: WithDType>(
    values: &'a [T],
    layout: &Layout,
    op: &'static str,
) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => Err(candle_core::Error::RequiresContiguous { op }),
    }
}

/// Range of outputs `o` along a side of `len` cells whose source `o + d - pad` for kernel tap
/// `d` lies inside the side. Empty when the tap lies outside for every output.
pub(super) fn inside(d: usize, pad: usize, len: usize) -> std::ops::Range<usize> {
    let start = pad.saturating_sub(d);
    let end = (len + pad).saturating_sub(d).min(len);
    if start < end {
        start..end
    } else {
        0..0
    }
}

fn unfold_values<T: WithDType>(
    input: &[T],
    (b, c, h, w): (usize, usize, usize, usize),
    k: usize,
) -> Vec<T> {
    let pad = k / 2;
    let plane = h * w;
    let mut out = vec![T::zero(); b * k * k * c * plane];
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(row_index, row)| {
            let image = row_index / (k * k * c);
            let tap = row_index % (k * k * c);
            let (dy, dx, channel) = (tap / (k * c), (tap / c) % k, tap % c);
            let source_plane = &input[(image * c + channel) * plane..][..plane];
            let columns = inside(dx, pad, w);
            if columns.is_empty() {
                return;
            }
            // `columns.start + dx >= pad` by the choice of the range.
            let shift = columns.start + dx - pad;
            for y in inside(dy, pad, h) {
                let source_row = &source_plane[(y + dy - pad) * w..][..w];
                row[y * w + columns.start..y * w + columns.end]
                    .copy_from_slice(&source_row[shift..shift + columns.len()]);
            }
        });
    out
}

fn fold_values<T: WithDType>(
    columns: &[T],
    (b, c, h, w): (usize, usize, usize, usize),
    k: usize,
) -> Vec<T> {
    let pad = k / 2;
    let plane = h * w;
    let mut out = vec![T::zero(); b * c * plane];
    out.par_chunks_mut(plane)
        .enumerate()
        .for_each(|(plane_index, target)| {
            let (image, channel) = (plane_index / c, plane_index % c);
            for dy in 0..k {
                for dx in 0..k {
                    let row = (image * k * k + dy * k + dx) * c + channel;
                    let column = &columns[row * plane..][..plane];
                    let xs = inside(dx, pad, w);
                    if xs.is_empty() {
                        continue;
                    }
                    let shift = xs.start + dx - pad;
                    for y in inside(dy, pad, h) {
                        let target_row = &mut target[(y + dy - pad) * w..][..w];
                        let source = &column[y * w + xs.start..y * w + xs.end];
                        for (t, &v) in target_row[shift..shift + xs.len()].iter_mut().zip(source) {
                            *t += v;
                        }
                    }
                }
            }
        });
    out
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "unfold-same"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dims = layout.shape().dims4()?;
        let (b, c, h, w) = dims;
        let k = self.kernel;
        let shape = Shape::from((b, k * k * c, h * w));
        let out = match storage {
            CpuStorage::F32(values) => {
                let input = contiguous_slice(values, layout, self.name())?;
                CpuStorage::F32(unfold_values(input, dims, k))
            }
            CpuStorage::F64(values) => {
                let input = contiguous_slice(values, layout, self.name())?;
                CpuStorage::F64(unfold_values(input, dims, k))
            }
            other => {
                return Err(candle_core::Error::UnsupportedDTypeForOp(
                    other.dtype(),
                    self.name(),
                ))
            }
        };
        Ok((out, shape))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = arg.dims4()?;
        Ok(Some(fold(grad_res, self.kernel, h, w)?))
    }
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "fold-same"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, rows, plane) = layout.shape().dims3()?;
        let k = self.kernel;
        let (h, w) = (self.height, self.width);
        if rows % (k * k) != 0 || plane != h * w {
            return Err(candle_core::Error::Msg(format!(
                "fold-same: columns {:?} do not fit a {k}x{k} kernel over {h}x{w}",
                layout.shape().dims()
            )));
        }
        let dims = (b, rows / (k * k), h, w);
        let shape = Shape::from(dims);
        let out = match storage {
            CpuStorage::F32(values) => {
                let columns = contiguous_slice(values, layout, self.name())?;
                CpuStorage::F32(fold_values(columns, dims, k))
            }
            CpuStorage::F64(values) => {
                let columns = contiguous_slice(values, layout, self.name())?;
                CpuStorage::F64(fold_values(columns, dims, k))
            }
            other => {
                return Err(candle_core::Error::UnsupportedDTypeForOp(
                    other.dtype(),
                    self.name(),
                ))
            }
        };
        Ok((out, shape))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(unfold(grad_res, self.kernel)?))
    }
}
