//! The PatchCore memory bank (Roth et al., "Towards Total Recall in Industrial Anomaly
//! Detection", CVPR 2022): collecting training patches, fitting the coreset bank, and scoring
//! patches by the distance to their nearest bank row. Higher scores mean more anomalous.

use std::fmt;

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use super::coreset::greedy_coreset;
use super::embed::embed;
use super::params::PatchCoreValidParams;
use super::search::BankIndex;
use super::PatchCoreError;

/// Collects the patch embeddings of defect-free training images before fitting.
///
/// Rows are appended to one buffer without a second copy, so the builder keeps
/// `patches × dim × 4` bytes, for example 450 MB for 714 images of 1,024 patches of 152
/// values.
#[derive(Clone, Debug)]
pub struct PatchCoreBuilder {
    dim: usize,
    grid: (usize, usize),
    rows: Vec<f32>,
    row_images: Vec<u32>,
    images: usize,
}

impl PatchCoreBuilder {
    /// Starts an empty builder for embeddings of `dim` values on a patch grid of
    /// `grid = (height, width)` cells per image.
    pub fn new(dim: usize, grid: (usize, usize)) -> Result<Self, PatchCoreError> {
        for (what, value) in [
            ("embedding width", dim),
            ("grid height", grid.0),
            ("grid width", grid.1),
        ] {
            if value == 0 {
                return Err(PatchCoreError::InvalidSize { what, value });
            }
        }
        Ok(Self {
            dim,
            grid,
            rows: Vec::new(),
            row_images: Vec::new(),
            images: 0,
        })
    }

    /// Reserves room for `images` more images, so the buffer is allocated once.
    pub fn reserve(&mut self, images: usize) {
        let patches = images * self.grid.0 * self.grid.1;
        self.rows.reserve_exact(patches * self.dim);
        self.row_images.reserve_exact(patches);
    }

    /// Appends the embedding of one image, `(height*width, dim)` as [`embed`] returns it.
    pub fn push(&mut self, image_id: u32, embedding: &Tensor) -> Result<(), PatchCoreError> {
        let (_, dim) = embedding.dims2().map_err(|_| self.shape_error(embedding))?;
        if dim != self.dim {
            return Err(self.shape_error(embedding));
        }
        let values = embedding
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        self.push_rows(image_id, &values)
    }

    /// Appends the embedding of one image given as row-major values, `height*width*dim` long.
    pub fn push_rows(&mut self, image_id: u32, rows: &[f32]) -> Result<(), PatchCoreError> {
        let (height, width) = self.grid;
        let expected = height * width;
        if rows.len() != expected * self.dim {
            return Err(PatchCoreError::PatchCount {
                image_id,
                expected,
                found: rows.len() / self.dim,
                height,
                width,
            });
        }
        self.rows.extend_from_slice(rows);
        self.row_images
            .extend(std::iter::repeat_n(image_id, expected));
        self.images += 1;
        Ok(())
    }

    /// Appends the embedding of one image whose patch grid differs from the builder's nominal
    /// grid, as when images keep their aspect ratio: any non-zero number of `dim`-wide rows.
    pub fn push_any_grid(
        &mut self,
        image_id: u32,
        embedding: &Tensor,
    ) -> Result<(), PatchCoreError> {
        let (rows, dim) = embedding.dims2().map_err(|_| self.shape_error(embedding))?;
        if dim != self.dim || rows == 0 {
            return Err(self.shape_error(embedding));
        }
        let values = embedding
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        self.rows.extend_from_slice(&values);
        self.row_images.extend(std::iter::repeat_n(image_id, rows));
        self.images += 1;
        Ok(())
    }

    /// Number of patches collected so far.
    pub fn patches(&self) -> usize {
        self.row_images.len()
    }

    /// Number of images collected so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Selects the coreset and returns the fitted model, freeing the collected patches.
    ///
    /// NOTE: while selecting, a projected copy of `patches × projection_dim × 4` bytes exists
    /// beside the patches (374 MB for 731,000 patches at 128), unless `projection_dim` is at
    /// least the embedding width.
    pub fn build(self, params: &PatchCoreValidParams) -> Result<PatchCore, PatchCoreError> {
        let patches = self.patches();
        if patches == 0 {
            return Err(PatchCoreError::NoTrainingPatches);
        }
        let size = params.coreset_size(patches);
        tracing::debug!(patches, size, "selecting the PatchCore coreset");

        let selection = greedy_coreset(
            &self.rows,
            self.dim,
            size,
            params.projection_dim(),
            params.seed(),
        )?;
        let mut bank = Vec::with_capacity(selection.indices.len() * self.dim);
        let mut bank_image = Vec::with_capacity(selection.indices.len());
        for &index in &selection.indices {
            bank.extend_from_slice(&self.rows[index * self.dim..(index + 1) * self.dim]);
            bank_image.push(self.row_images[index]);
        }
        drop(self.rows);

        let fit = PatchCoreFit {
            training_patches: patches,
            training_images: self.images,
            covering_radius: selection.covering_radius,
        };
        PatchCore::from_parts(params.clone(), self.grid, self.dim, bank, bank_image, fit)
    }

    fn shape_error(&self, embedding: &Tensor) -> PatchCoreError {
        PatchCoreError::EmbeddingShape {
            shape: embedding.dims().to_vec(),
            dim: self.dim,
        }
    }
}

/// Facts about the data a PatchCore model was fitted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchCoreFit {
    /// Training patches the coreset was selected from.
    pub training_patches: usize,
    /// Training images those patches came from.
    pub training_images: usize,
    /// Largest distance from a training patch to its nearest bank row, in the space the
    /// coreset was selected in (projected when the projection was on).
    pub covering_radius: f32,
}

/// A fitted PatchCore model: a memory bank of training patches and the source image of each.
#[derive(Clone, Debug)]
pub struct PatchCore {
    params: PatchCoreValidParams,
    grid: (usize, usize),
    index: BankIndex,
    fit: PatchCoreFit,
}

impl PatchCore {
    /// Assembles a model from a bank of `bank_image.len()` rows of `dim` values.
    pub(crate) fn from_parts(
        params: PatchCoreValidParams,
        grid: (usize, usize),
        dim: usize,
        bank: Vec<f32>,
        bank_image: Vec<u32>,
        fit: PatchCoreFit,
    ) -> Result<Self, PatchCoreError> {
        Ok(Self {
            params,
            grid,
            index: BankIndex::new(bank, bank_image, dim)?,
            fit,
        })
    }

    /// Embeds the feature maps of a batch with this model's aggregation window; see [`embed`].
    pub fn embed(&self, features: &[Tensor]) -> Result<Tensor, PatchCoreError> {
        embed(features, self.params.neighbourhood())
    }

    /// Scores each row of `embedding` `(n, dim)` by its Euclidean distance to the nearest bank
    /// row, leaving out bank rows taken from image `exclude_image`.
    ///
    /// Excluding the image being scored gives the out-of-fold score of a training image
    /// without refitting. Rows come back in input order; for one image in raster order they
    /// reshape to the `(height, width)` grid.
    pub fn score(
        &self,
        embedding: &Tensor,
        exclude_image: Option<u32>,
    ) -> Result<Vec<f32>, PatchCoreError> {
        let dim = self.dim();
        let shape_error = || PatchCoreError::EmbeddingShape {
            shape: embedding.dims().to_vec(),
            dim,
        };
        let (_, found) = embedding.dims2().map_err(|_| shape_error())?;
        if found != dim {
            return Err(shape_error());
        }

        let queries = embedding
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        self.index.nearest(&queries, exclude_image)
    }

    /// Memory bank, `(m, dim)` f32.
    pub fn bank(&self) -> &Tensor {
        self.index.bank()
    }

    /// Source image id of each bank row.
    pub fn bank_image(&self) -> &[u32] {
        self.index.images()
    }

    /// Width of an embedding row.
    pub fn dim(&self) -> usize {
        self.index.bank().dims()[1]
    }

    /// Patch grid of one image, `(height, width)`.
    pub fn grid(&self) -> (usize, usize) {
        self.grid
    }

    /// Settings the model was fitted with.
    pub fn params(&self) -> &PatchCoreValidParams {
        &self.params
    }

    /// Facts about the training data.
    pub fn fit(&self) -> &PatchCoreFit {
        &self.fit
    }
}

impl fmt::Display for PatchCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (height, width) = self.grid;
        write!(
            f,
            "PatchCore: {} bank rows of {} values from {} patches of {} images \
             ({}×{} grid), covering radius {:.4}",
            self.bank_image().len(),
            self.dim(),
            self.fit.training_patches,
            self.fit.training_images,
            height,
            width,
            self.fit.covering_radius,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patchcore::PatchCoreParams;
    use candle_core::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const DIM: usize = 6;
    const GRID: (usize, usize) = (4, 5);

    fn random_image(rng: &mut ChaCha8Rng) -> Tensor {
        let values: Vec<f32> = (0..GRID.0 * GRID.1 * DIM)
            .map(|_| rng.gen_range(0.0..1.0))
            .collect();
        Tensor::from_vec(values, (GRID.0 * GRID.1, DIM), &Device::Cpu).unwrap()
    }

    fn fitted(images: u32, ratio: f64, seed: u64) -> (PatchCore, Vec<Tensor>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut builder = PatchCoreBuilder::new(DIM, GRID).unwrap();
        builder.reserve(images as usize);
        let mut embeddings = Vec::new();
        for image_id in 0..images {
            let embedding = random_image(&mut rng);
            builder.push(image_id, &embedding).unwrap();
            embeddings.push(embedding);
        }
        let params = PatchCoreParams {
            coreset_ratio: ratio,
            seed,
            ..PatchCoreParams::default()
        };
        (builder.build(&params.check().unwrap()).unwrap(), embeddings)
    }

    #[test]
    fn build_keeps_ratio_and_sources() {
        let (model, _) = fitted(10, 0.25, 1);
        assert_eq!(model.bank().dims(), &[50, DIM]);
        assert_eq!(model.bank_image().len(), 50);
        assert_eq!(model.fit().training_patches, 200);
        assert_eq!(model.fit().training_images, 10);
        assert!(model.bank_image().iter().all(|&image| image < 10));
    }

    #[test]
    fn exclusion_skips_own_patches() {
        let (model, embeddings) = fitted(6, 1.0, 2);
        let own = model.score(&embeddings[3], None).unwrap();
        assert!(own.iter().all(|&score| score == 0.0), "{own:?}");

        let out_of_fold = model.score(&embeddings[3], Some(3)).unwrap();
        assert_eq!(out_of_fold.len(), GRID.0 * GRID.1);
        assert!(
            out_of_fold.iter().all(|&score| score > 0.0),
            "{out_of_fold:?}"
        );

        let other = model.score(&embeddings[3], Some(4)).unwrap();
        assert_eq!(other, own);
    }

    #[test]
    fn fit_is_deterministic_for_a_seed() {
        let (first, embeddings) = fitted(8, 0.1, 3);
        let (second, _) = fitted(8, 0.1, 3);
        let first_bank = first.bank().to_vec2::<f32>().unwrap();
        assert_eq!(first_bank, second.bank().to_vec2::<f32>().unwrap());
        assert_eq!(first.bank_image(), second.bank_image());
        assert_eq!(
            first.score(&embeddings[0], Some(0)).unwrap(),
            second.score(&embeddings[0], Some(0)).unwrap()
        );
    }

    #[test]
    fn push_rejects_wrong_shapes() {
        let mut builder = PatchCoreBuilder::new(DIM, GRID).unwrap();
        let narrow = Tensor::zeros((20, DIM - 1), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            builder.push(0, &narrow),
            Err(PatchCoreError::EmbeddingShape { .. })
        ));
        let short = Tensor::zeros((19, DIM), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            builder.push(0, &short),
            Err(PatchCoreError::PatchCount { found: 19, .. })
        ));
        assert_eq!(builder.patches(), 0);
        builder.push_any_grid(3, &short).unwrap();
        assert_eq!(builder.patches(), 19);
        assert!(builder.push_any_grid(3, &narrow).is_err());
        let builder = PatchCoreBuilder::new(DIM, GRID).unwrap();
        assert!(matches!(
            builder.build(&PatchCoreParams::default().check().unwrap()),
            Err(PatchCoreError::NoTrainingPatches)
        ));
        assert!(matches!(
            PatchCoreBuilder::new(0, GRID),
            Err(PatchCoreError::InvalidSize { value: 0, .. })
        ));
    }

    #[test]
    fn score_rejects_wrong_width() {
        let (model, _) = fitted(2, 0.5, 4);
        let wide = Tensor::zeros((3, DIM + 1), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            model.score(&wide, None),
            Err(PatchCoreError::EmbeddingShape { .. })
        ));
    }
}
