//! Training of a CFlow model on cached backbone features: the seeded held-out split, the
//! seeded draws of feature vectors, the training loop with early stopping on the held-out
//! images, and the per-scale references of the maps.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::encoding::positional_encoding;
use super::model::CFlowModel;
use super::params::CFlowValidParams;
use super::CFlowError;
use crate::flow::{train, FeatureCache, TrainEvent, TrainLog};

/// Offsets added to the seed for the generators of the training and held-out draws, so that
/// they differ from each other and from the weight initialisation.
const TRAIN_DRAW_SEED: u64 = 0x0074_7261_696e;
const HELD_OUT_DRAW_SEED: u64 = 0x6865_6c64;

/// Facts about the data a CFlow model was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CFlowFit {
    /// Number of training images given, held-out ones included.
    pub images: usize,
    /// Indices into the training images of those held out of training, ascending.
    pub held_out: Vec<usize>,
    /// Memory the feature cache took, in MiB.
    pub cache_mib: f64,
    /// Per scale, the largest normalised log-likelihood of the held-out feature vectors after
    /// training, which the maps subtract before `exp`.
    pub references: Vec<f64>,
    /// Loss per epoch and why training stopped. Samples are feature vectors per scale.
    pub log: TrainLog,
}

/// Splits `0..images` into training and held-out indices, both ascending. The held-out ones
/// are a uniformly random draw of [`CFlowValidParams::held_out_count`] indices, seeded.
pub fn split_held_out(
    images: usize,
    params: &CFlowValidParams,
) -> Result<(Vec<usize>, Vec<usize>), CFlowError> {
    if images < 2 {
        return Err(CFlowError::TooFewImages { images });
    }
    Ok(crate::flow::split_held_out(
        images,
        params.held_out_count(images),
        params.seed(),
    ))
}

/// The feature vectors of a set of images at one scale, with the encoding of every position.
struct ScaleFibers {
    /// `(images * h * w, c)` f16 on the CPU, rows as [`FeatureCache::fibers`] orders them.
    fibers: Tensor,
    /// `(h * w, condition_dim)` f32 on the model's device.
    encoding: Tensor,
    positions: usize,
}

impl ScaleFibers {
    fn new(
        cache: &FeatureCache,
        scale: usize,
        images: &[usize],
        condition_dim: usize,
        device: &Device,
    ) -> Result<Self, CFlowError> {
        let (_, _, h, w) = cache.batch(&[images[0]], &Device::Cpu)?[scale].dims4()?;
        Ok(Self {
            fibers: cache.fibers(scale, images)?,
            encoding: positional_encoding(condition_dim, h, w, device)?,
            positions: h * w,
        })
    }

    /// Draws `count` rows uniformly and returns them as f32 on `device` with their encoded
    /// positions.
    fn draw(
        &self,
        count: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let rows = self.fibers.dim(0)?;
        let picks: Vec<u32> = (0..count).map(|_| rng.gen_range(0..rows) as u32).collect();
        let positions: Vec<u32> = picks
            .iter()
            .map(|&row| row % self.positions as u32)
            .collect();
        let picks = Tensor::new(picks.as_slice(), &Device::Cpu)?;
        let x = self
            .fibers
            .index_select(&picks, 0)?
            .to_dtype(DType::F32)?
            .to_device(device)?;
        let positions = Tensor::new(positions.as_slice(), device)?;
        Ok((x, self.encoding.index_select(&positions, 0)?))
    }
}

/// Trains a new model on the cached features of images `train_ids`, stopping early on the loss
/// of feature vectors drawn once from images `held_out_ids`, and returns it with the training
/// record.
///
/// Each optimiser step draws `batch_size` feature vectors per scale, uniformly over the
/// training images and positions, from a generator seeded with `params.seed()`. An epoch is
/// `fibers_per_epoch` of them. After training, each scale's reference is set to the largest
/// normalised log-likelihood of its held-out vectors. `progress` receives every optimiser step
/// and epoch.
pub fn fit_model(
    cache: &FeatureCache,
    train_ids: &[usize],
    held_out_ids: &[usize],
    params: CFlowValidParams,
    device: &Device,
    progress: &mut dyn FnMut(&TrainEvent),
) -> Result<(CFlowModel, TrainLog), CFlowError> {
    if train_ids.is_empty() || held_out_ids.is_empty() {
        return Err(CFlowError::TooFewImages {
            images: train_ids.len() + held_out_ids.len(),
        });
    }
    let channels: Vec<usize> = cache
        .batch(&[train_ids[0]], &Device::Cpu)?
        .iter()
        .map(|map| map.dim(1))
        .collect::<candle_core::Result<_>>()?;
    let mut model = CFlowModel::new(params.clone(), &channels, device)?;
    let dim = params.condition_dim();

    let training = (0..channels.len())
        .map(|scale| ScaleFibers::new(cache, scale, train_ids, dim, device))
        .collect::<Result<Vec<_>, _>>()?;
    // The held-out vectors are drawn once, so every epoch is judged on the same ones.
    let mut held_out_rng = ChaCha8Rng::seed_from_u64(params.seed() ^ HELD_OUT_DRAW_SEED);
    let held_out = (0..channels.len())
        .map(|scale| {
            let fibers = ScaleFibers::new(cache, scale, held_out_ids, dim, device)?;
            Ok(fibers.draw(params.held_out_fibers(), &mut held_out_rng, device)?)
        })
        .collect::<Result<Vec<_>, CFlowError>>()?;

    let mut train_rng = ChaCha8Rng::seed_from_u64(params.seed() ^ TRAIN_DRAW_SEED);
    let log = {
        let model = &model;
        train(
            model.varmap().all_vars(),
            params.fibers_per_epoch(),
            params.held_out_fibers(),
            params.train(),
            // The training loop's shuffled indices only set the batch size: every step draws
            // new vectors.
            |batch: &[usize]| -> Result<Tensor, CFlowError> {
                let batches = training
                    .iter()
                    .map(|scale| scale.draw(batch.len(), &mut train_rng, device))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                model.loss(&batches)
            },
            |batch: &[usize]| -> Result<Tensor, CFlowError> {
                let rows: Vec<u32> = batch.iter().map(|&i| i as u32).collect();
                let rows = Tensor::new(rows.as_slice(), device)?;
                let batches = held_out
                    .iter()
                    .map(|(x, c)| Ok((x.index_select(&rows, 0)?, c.index_select(&rows, 0)?)))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                model.loss(&batches)
            },
            progress,
        )?
    };

    let references = held_out
        .iter()
        .enumerate()
        .map(|(scale, (x, c))| {
            let likelihood = model.log_likelihood(scale, x, c)?.max_all()?;
            Ok(f64::from(likelihood.to_scalar::<f32>()?))
        })
        .collect::<Result<Vec<_>, CFlowError>>()?;
    model.set_references(references);
    Ok((model, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cflow::CFlowParams;
    use crate::flow::TrainParams;

    /// Eight images of two scales whose features vary smoothly with the position, plus noise.
    fn synthetic_cache() -> FeatureCache {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut cache = FeatureCache::new();
        for _ in 0..8 {
            let mut map = |c: usize, side: usize| {
                let values: Vec<f32> = (0..c * side * side)
                    .map(|i| 1.5 * ((i % side) as f32 * 0.3).sin() + rng.gen_range(-0.3..0.3))
                    .collect();
                Tensor::from_vec(values, (1, c, side, side), &Device::Cpu).unwrap()
            };
            let fine = map(4, 8);
            let coarse = map(6, 4);
            cache.push(&[fine, coarse]).unwrap();
        }
        cache
    }

    fn tiny_params(seed: u64) -> CFlowValidParams {
        CFlowParams {
            steps: 4,
            condition_dim: 8,
            fibers_per_epoch: 256,
            held_out_fibers: 64,
            seed,
            train: TrainParams {
                epochs: 4,
                batch_size: 32,
                learning_rate: 1e-2,
                patience: 4,
                seed,
                ..TrainParams::default()
            },
            ..CFlowParams::default()
        }
        .check()
        .unwrap()
    }

    fn run(seed: u64) -> (Vec<f64>, CFlowModel) {
        let cache = synthetic_cache();
        let params = tiny_params(seed);
        let (train_ids, held_out) = split_held_out(cache.len(), &params).unwrap();
        let mut steps = Vec::new();
        let (model, _) = fit_model(
            &cache,
            &train_ids,
            &held_out,
            params,
            &Device::Cpu,
            &mut |event| {
                if let TrainEvent::Step { loss, .. } = event {
                    steps.push(*loss);
                }
            },
        )
        .unwrap();
        (steps, model)
    }

    #[test]
    fn training_lowers_loss_deterministically() {
        let (first, model) = run(3);
        // 256 vectors per epoch in batches of 32 for 4 epochs.
        assert_eq!(first.len(), 32);
        let start = first[0];
        let end = first[first.len() - 1];
        // A new model is the identity, so the first loss is the normalised negative
        // log-likelihood of the features under N(0, I): 0.5 ln(2 pi) + 0.5 mean(x^2) per scale,
        // about 0.92 + 0.6 for these features, summed over 2 scales.
        assert!((start - 3.0).abs() < 0.5, "first loss {start}");
        assert!(end < start - 0.5, "losses {first:?}");
        assert_eq!(first, run(3).0);
        assert_ne!(first, run(4).0);
        assert_eq!(model.references().len(), 2);
        assert!(model.references().iter().all(|r| r.is_finite()));
    }
}
