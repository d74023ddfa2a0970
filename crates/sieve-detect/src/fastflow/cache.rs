//! Backbone features of the training images, computed once and kept in memory in f16 while a
//! flow trains on them for several epochs.

use candle_core::{DType, Device, Tensor};

use super::FastFlowError;

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
    pub fn push(&mut self, features: &[Tensor]) -> Result<(), FastFlowError> {
        if let Some(first) = self.images.first() {
            let expected: Vec<Vec<usize>> = first.iter().map(|t| t.dims().to_vec()).collect();
            let found: Vec<Vec<usize>> = features.iter().map(|t| t.dims().to_vec()).collect();
            if expected != found {
                return Err(FastFlowError::FeatureShape {
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
    fn push_rejects_other_shapes() {
        let mut cache = FeatureCache::new();
        let map = |h| Tensor::zeros((1, 2, h, h), DType::F32, &Device::Cpu).unwrap();
        cache.push(&[map(4)]).unwrap();
        assert!(matches!(
            cache.push(&[map(5)]),
            Err(FastFlowError::FeatureShape { index: 1, .. })
        ));
    }
}
