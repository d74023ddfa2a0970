//! Backbone features of the training images, computed once and kept in memory in f16 while a
//! flow trains on them for several epochs, and the memory check before caching.

use candle_core::{DType, Device, Tensor};

use super::FlowError;

/// Feature maps of equally sized images, one `(1, c_i, h_i, w_i)` f16 tensor per scale each.
pub struct FeatureCache {
    images: Vec<Vec<Tensor>>,
    bytes_per_image: usize,
}

impl FeatureCache {
    /// Starts an empty cache.
    pub fn new() -> Self {
        Self {
            images: Vec::new(),
            bytes_per_image: 0,
        }
    }

    /// Bytes the features of one image take in the cache.
    pub fn bytes_per_image(features: &[Tensor]) -> usize {
        features
            .iter()
            .map(|map| map.elem_count() * DType::F16.size_in_bytes())
            .sum()
    }

    /// Stores the features of the next image, `(1, c_i, h_i, w_i)` per scale, as f16 on the
    /// CPU. Every image must have the shapes of the first.
    pub fn push(&mut self, features: &[Tensor]) -> Result<(), FlowError> {
        if let Some(first) = self.images.first() {
            let expected: Vec<Vec<usize>> = first.iter().map(|t| t.dims().to_vec()).collect();
            let found: Vec<Vec<usize>> = features.iter().map(|t| t.dims().to_vec()).collect();
            if expected != found {
                return Err(FlowError::FeatureShape {
                    index: self.images.len(),
                    expected,
                    found,
                });
            }
        } else {
            self.bytes_per_image = Self::bytes_per_image(features);
        }
        let stored = features
            .iter()
            .map(|map| map.to_device(&Device::Cpu)?.to_dtype(DType::F16))
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.images.push(stored);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Bytes the cached features take.
    pub fn bytes(&self) -> usize {
        self.bytes_per_image * self.images.len()
    }

    /// Fails when the features of `images` images, sized like `features`, would exceed
    /// `max_bytes` in the cache.
    pub fn check_size(
        features: &[Tensor],
        images: usize,
        max_bytes: usize,
    ) -> Result<(), FlowError> {
        let needed = Self::bytes_per_image(features).saturating_mul(images);
        if needed > max_bytes {
            return Err(FlowError::CacheTooLarge {
                images,
                needed_mib: needed.div_ceil(1 << 20),
                limit_mib: max_bytes >> 20,
            });
        }
        Ok(())
    }

    /// Lists the feature vectors of scale `scale` of images `indices` as one
    /// `(indices.len() * h * w, c)` f16 tensor on the CPU. Row `i * h * w + y * w + x` is the
    /// vector at position `(y, x)` of image `indices[i]`.
    ///
    /// # Panics
    /// When `indices` is empty or an index is out of range.
    pub fn fibers(&self, scale: usize, indices: &[usize]) -> candle_core::Result<Tensor> {
        assert!(!indices.is_empty(), "fibers need at least one image");
        let rows = indices
            .iter()
            .map(|&i| {
                let (_, c, h, w) = self.images[i][scale].dims4()?;
                self.images[i][scale].reshape((c, h * w))?.t()?.contiguous()
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&rows, 0)
    }

    /// Stacks the features of images `indices` into one `(n, c_i, h_i, w_i)` f32 tensor per
    /// scale on `device`.
    ///
    /// # Panics
    /// When `indices` is empty or an index is out of range.
    pub fn batch(&self, indices: &[usize], device: &Device) -> candle_core::Result<Vec<Tensor>> {
        assert!(!indices.is_empty(), "a batch needs at least one image");
        let scales = self.images[indices[0]].len();
        (0..scales)
            .map(|scale| {
                let maps: Vec<&Tensor> = indices.iter().map(|&i| &self.images[i][scale]).collect();
                Tensor::cat(&maps, 0)?
                    .to_dtype(DType::F32)?
                    .to_device(device)
            })
            .collect()
    }
}

impl Default for FeatureCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_stacks_in_index_order() {
        let mut cache = FeatureCache::new();
        for value in [1f32, 2.0, 3.0] {
            let fine = Tensor::full(value, (1, 2, 4, 4), &Device::Cpu).unwrap();
            let coarse = Tensor::full(-value, (1, 3, 2, 2), &Device::Cpu).unwrap();
            cache.push(&[fine, coarse]).unwrap();
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.bytes(), 3 * (32 + 12) * 2);

        let batch = cache.batch(&[2, 0], &Device::Cpu).unwrap();
        assert_eq!(batch[0].dims(), &[2, 2, 4, 4]);
        assert_eq!(batch[1].dims(), &[2, 3, 2, 2]);
        assert_eq!(batch[0].dtype(), DType::F32);
        let firsts: Vec<f32> = batch[1]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .chunks(12)
            .map(|c| c[0])
            .collect();
        assert_eq!(firsts, vec![-3.0, -1.0]);
    }

    #[test]
    fn fibers_list_positions_row_major() {
        let mut cache = FeatureCache::new();
        for offset in [0f32, 100.0] {
            // Channel k at position (y, x) of a 2x3 map is offset + 10 k + 3 y + x.
            let values: Vec<f32> = (0..2 * 6)
                .map(|i| offset + (10 * (i / 6) + i % 6) as f32)
                .collect();
            cache
                .push(&[Tensor::from_vec(values, (1, 2, 2, 3), &Device::Cpu).unwrap()])
                .unwrap();
        }
        let fibers = cache.fibers(0, &[1, 0]).unwrap();
        assert_eq!(fibers.dims(), &[12, 2]);
        let rows = fibers
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        // Image 1, position (1, 2), then image 0, position (0, 1).
        assert_eq!(rows[5], vec![105.0, 115.0]);
        assert_eq!(rows[7], vec![1.0, 11.0]);
    }

    #[test]
    fn check_size_rejects_large_caches() {
        let features = [Tensor::zeros((1, 4, 16, 16), DType::F32, &Device::Cpu).unwrap()];
        // 2 KiB per image in f16.
        assert!(FeatureCache::check_size(&features, 512, 1 << 20).is_ok());
        assert!(matches!(
            FeatureCache::check_size(&features, 513, 1 << 20),
            Err(FlowError::CacheTooLarge {
                images: 513,
                needed_mib: 2,
                limit_mib: 1
            })
        ));
    }

    #[test]
    fn push_rejects_other_shapes() {
        let mut cache = FeatureCache::new();
        let map = |h| Tensor::zeros((1, 2, h, h), DType::F32, &Device::Cpu).unwrap();
        cache.push(&[map(4)]).unwrap();
        assert!(matches!(
            cache.push(&[map(5)]),
            Err(FlowError::FeatureShape { index: 1, .. })
        ));
    }
}
