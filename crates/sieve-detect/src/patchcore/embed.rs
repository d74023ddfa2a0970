//! Patch embeddings for PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly
//! Detection", CVPR 2022): local aggregation of backbone feature maps, resizing to the finest
//! grid, and channel concatenation.

use candle_core::{DType, Tensor};

use super::params::check_neighbourhood;
use super::PatchCoreError;

/// Turns the feature maps of a batch of images into one embedding row per patch.
///
/// `features` are maps of one batch, the finest first: `(b, c1, h, w)`, then maps such as
/// `(b, c2, h/2, w/2)` whose grids are no finer. Each map is averaged over a
/// `neighbourhood`×`neighbourhood` window with stride 1 and the same output size, where cells
/// outside the map are left out of the mean rather than counted as zeros. Coarser maps are then
/// resized bilinearly to `h`×`w` (half-pixel centres, as `align_corners=False` in PyTorch), and
/// the channels are concatenated in the order of the maps.
///
/// Returns `(b*h*w, c1+c2+...)` as f32 on the device of the first map, image by image, each in
/// raster order (row `i*h*w + y*w + x` is cell `(y, x)` of image `i`).
pub fn embed(features: &[Tensor], neighbourhood: usize) -> Result<Tensor, PatchCoreError> {
    check_neighbourhood(neighbourhood)?;
    let first = features.first().ok_or(PatchCoreError::NoFeatureMaps)?;
    let (batch, _, height, width) = map_dims(first, 0)?;
    let mut channels = Vec::with_capacity(features.len());
    for (index, map) in features.iter().enumerate() {
        let (b, c, h, w) = map_dims(map, index)?;
        if b != batch || h > height || w > width || h == 0 || w == 0 {
            return Err(PatchCoreError::FeatureMapShape {
                index,
                shape: map.dims().to_vec(),
                batch,
                height,
                width,
            });
        }
        channels.push(c);
    }
    let dim: usize = channels.iter().sum();
    let cells = height * width;

    let mut rows = vec![0f32; batch * cells * dim];
    let mut offset = 0;
    for (map, &c) in features.iter().zip(&channels) {
        let (_, _, h, w) = map.dims4()?;
        let values = map.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        for (image, planes) in values.chunks_exact(c * h * w).enumerate() {
            let image_rows = &mut rows[image * cells * dim..(image + 1) * cells * dim];
            for (channel, plane) in planes.chunks_exact(h * w).enumerate() {
                let pooled = box_mean(plane, h, w, neighbourhood);
                let resized = if (h, w) == (height, width) {
                    pooled
                } else {
                    resize_bilinear(&pooled, h, w, height, width)
                };
                for (cell, value) in resized.into_iter().enumerate() {
                    image_rows[cell * dim + offset + channel] = value;
                }
            }
        }
        offset += c;
    }

    Ok(Tensor::from_vec(
        rows,
        (batch * cells, dim),
        first.device(),
    )?)
}

fn map_dims(map: &Tensor, index: usize) -> Result<(usize, usize, usize, usize), PatchCoreError> {
    map.dims4().map_err(|_| PatchCoreError::FeatureMapRank {
        index,
        shape: map.dims().to_vec(),
    })
}

/// Averages an `h`×`w` plane over a `window`×`window` box centred on each cell, dividing by the
/// number of cells of the box that lie inside the plane.
fn box_mean(plane: &[f32], h: usize, w: usize, window: usize) -> Vec<f32> {
    let radius = window / 2;
    let span =
        |centre: usize, len: usize| centre.saturating_sub(radius)..(centre + radius + 1).min(len);

    let mut row_sums = vec![0f32; h * w];
    for y in 0..h {
        let row = &plane[y * w..(y + 1) * w];
        for x in 0..w {
            row_sums[y * w + x] = row[span(x, w)].iter().sum();
        }
    }

    let mut means = vec![0f32; h * w];
    for y in 0..h {
        let rows = span(y, h);
        let row_count = rows.len();
        for x in 0..w {
            let sum: f32 = rows.clone().map(|yy| row_sums[yy * w + x]).sum();
            let count = row_count * span(x, w).len();
            means[y * w + x] = sum / count as f32;
        }
    }
    means
}

/// Resizes an `h`×`w` plane to `out_h`×`out_w` by bilinear interpolation with half-pixel
/// centres: output cell `o` samples input coordinate `(o + 0.5) * in / out - 0.5`, clamped at 0.
fn resize_bilinear(plane: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let taps = |out_len: usize, in_len: usize| -> Vec<(usize, usize, f32)> {
        let scale = in_len as f32 / out_len as f32;
        (0..out_len)
            .map(|o| {
                let source = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let low = (source as usize).min(in_len - 1);
                let high = (low + 1).min(in_len - 1);
                (low, high, source - low as f32)
            })
            .collect()
    };
    let rows = taps(out_h, h);
    let cols = taps(out_w, w);

    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, fy) in &rows {
        for &(x0, x1, fx) in &cols {
            let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
            let bottom = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Map whose value at (image, channel, y, x) is a distinct number.
    fn ramp(b: usize, c: usize, h: usize, w: usize) -> Tensor {
        let values: Vec<f32> = (0..b * c * h * w).map(|i| i as f32).collect();
        Tensor::from_vec(values, (b, c, h, w), &Device::Cpu).unwrap()
    }

    #[test]
    fn embed_shape_concatenates_channels() {
        let fine = ramp(1, 40, 32, 32);
        let coarse = ramp(1, 112, 16, 16);
        let rows = embed(&[fine, coarse], 3).unwrap();
        assert_eq!(rows.dims(), &[1024, 152]);
    }

    #[test]
    fn embed_batch_stacks_images() {
        let fine = ramp(3, 4, 8, 8);
        let coarse = ramp(3, 6, 4, 4);
        let batch = embed(&[fine.clone(), coarse.clone()], 3).unwrap();
        assert_eq!(batch.dims(), &[3 * 64, 10]);

        let second = embed(
            &[
                fine.narrow(0, 1, 1).unwrap(),
                coarse.narrow(0, 1, 1).unwrap(),
            ],
            3,
        )
        .unwrap();
        let from_batch = batch.narrow(0, 64, 64).unwrap();
        let diff = (from_batch - second).unwrap().abs().unwrap();
        assert_eq!(diff.max_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
    }

    #[test]
    fn corner_mean_leaves_out_padding() {
        // Plane 0..16 on a 4×4 grid:
        //  0  1  2  3
        //  4  5  6  7
        //  8  9 10 11
        // 12 13 14 15
        // The 3×3 window at (0, 0) contains 0, 1, 4, 5 inside the plane: mean 2.5.
        // At (1, 1) it contains 0, 1, 2, 4, 5, 6, 8, 9, 10: mean 5.
        // At (0, 3) it contains 2, 3, 6, 7: mean 4.5.
        let map = ramp(1, 1, 4, 4);
        let rows = embed(&[map], 3).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows[0][0], 2.5);
        assert_eq!(rows[5][0], 5.0);
        assert_eq!(rows[3][0], 4.5);
    }

    #[test]
    fn window_one_keeps_values() {
        let map = ramp(1, 2, 3, 3);
        let rows = embed(&[map], 1).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows[4], vec![4.0, 13.0]);
    }

    #[test]
    fn coarse_map_resized_bilinearly() {
        // A 2×2 coarse plane [[0, 4], [8, 12]] resized to 4×4 samples coordinates
        // (o + 0.5) / 2 - 0.5 = 0, 0.25, 0.75, 1 (after clamping at 0).
        // Row 0: 0, 1, 3, 4. Cell (1, 2) is at (0.25, 0.75): 3 + 0.25 * 8 = 5.
        let fine = Tensor::zeros((1, 1, 4, 4), DType::F32, &Device::Cpu).unwrap();
        let coarse =
            Tensor::from_vec(vec![0f32, 4.0, 8.0, 12.0], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let rows = embed(&[fine, coarse], 1).unwrap().to_vec2::<f32>().unwrap();
        let coarse_column: Vec<f32> = rows.iter().map(|row| row[1]).collect();
        assert_eq!(&coarse_column[0..4], &[0.0, 1.0, 3.0, 4.0]);
        assert_eq!(coarse_column[6], 5.0);
        assert_eq!(coarse_column[15], 12.0);
    }

    #[test]
    fn embed_rejects_bad_inputs() {
        let fine = ramp(1, 2, 4, 4);
        assert!(matches!(embed(&[], 3), Err(PatchCoreError::NoFeatureMaps)));
        assert!(matches!(
            embed(std::slice::from_ref(&fine), 2),
            Err(PatchCoreError::InvalidNeighbourhood { value: 2 })
        ));
        let flat = Tensor::zeros((4, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            embed(&[flat], 3),
            Err(PatchCoreError::FeatureMapRank { index: 0, .. })
        ));
        let finer = ramp(1, 2, 8, 8);
        assert!(matches!(
            embed(&[fine.clone(), finer], 3),
            Err(PatchCoreError::FeatureMapShape { index: 1, .. })
        ));
        let other_batch = ramp(2, 2, 2, 2);
        assert!(matches!(
            embed(&[fine, other_batch], 3),
            Err(PatchCoreError::FeatureMapShape { index: 1, .. })
        ));
    }
}
