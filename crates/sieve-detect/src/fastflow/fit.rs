//! Training of a FastFlow model on cached backbone features: the seeded held-out split, the
//! feature cache, and the training loop with early stopping on the held-out images.

use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::model::FastFlowModel;
use super::params::FastFlowValidParams;
use super::FastFlowError;
use crate::flow::{train, FeatureCache, TrainEvent, TrainLog};

/// Facts about the data a FastFlow model was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FastFlowFit {
    /// Number of training images given, held-out ones included.
    pub images: usize,
    /// Indices into the training images of those held out of training, ascending.
    pub held_out: Vec<usize>,
    /// Memory the feature cache took, in MiB.
    pub cache_mib: f64,
    /// Loss per epoch and why training stopped.
    pub log: TrainLog,
}

/// Splits `0..images` into training and held-out indices, both ascending. The held-out ones
/// are a uniformly random draw of [`FastFlowValidParams::held_out_count`] indices, seeded.
pub fn split_held_out(
    images: usize,
    params: &FastFlowValidParams,
) -> Result<(Vec<usize>, Vec<usize>), FastFlowError> {
    if images < 2 {
        return Err(FastFlowError::TooFewImages { images });
    }
    Ok(crate::flow::split_held_out(
        images,
        params.held_out_count(images),
        params.seed(),
    ))
}

/// Trains a new model on the cached features of images `train_ids`, stopping early on the loss
/// of images `held_out_ids`, and returns it with the training record.
///
/// `progress` receives every optimiser step and epoch.
pub fn fit_model(
    cache: &FeatureCache,
    train_ids: &[usize],
    held_out_ids: &[usize],
    params: FastFlowValidParams,
    device: &Device,
    progress: &mut dyn FnMut(&TrainEvent),
) -> Result<(FastFlowModel, TrainLog), FastFlowError> {
    if cache.is_empty() {
        return Err(FastFlowError::TooFewImages { images: 0 });
    }
    let channels: Vec<usize> = cache
        .batch(&[0], &Device::Cpu)?
        .iter()
        .map(|map| map.dim(1))
        .collect::<candle_core::Result<_>>()?;
    let model = FastFlowModel::new(params.clone(), &channels, device)?;

    let features = |ids: &[usize], batch: &[usize]| {
        let images: Vec<usize> = batch.iter().map(|&i| ids[i]).collect();
        cache.batch(&images, device)
    };
    let log = train(
        model.varmap().all_vars(),
        train_ids.len(),
        held_out_ids.len(),
        params.train(),
        |batch: &[usize]| model.loss_gradients(&features(train_ids, batch)?),
        |batch: &[usize]| model.loss_value(&features(held_out_ids, batch)?),
        progress,
    )?;
    Ok((model, log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastflow::{FastFlowMap, FastFlowModel, FastFlowParams};
    use crate::flow::TrainParams;
    use candle_core::backprop::GradStore;
    use candle_core::Tensor;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn split_is_seeded_and_disjoint() {
        let params = FastFlowParams::default().check().unwrap();
        let (train, held_out) = split_held_out(10, &params).unwrap();
        assert_eq!(held_out.len(), 2);
        assert_eq!(train.len(), 8);
        let mut all: Vec<usize> = train.iter().chain(&held_out).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(split_held_out(10, &params).unwrap().1, held_out);

        let other = FastFlowParams {
            seed: 1,
            ..FastFlowParams::default()
        };
        let draws: Vec<Vec<usize>> = (0..5)
            .map(|seed| {
                let params = FastFlowParams {
                    seed,
                    ..other.clone()
                }
                .check()
                .unwrap();
                split_held_out(10, &params).unwrap().1
            })
            .collect();
        assert!(draws.iter().any(|d| *d != held_out), "{draws:?}");
        assert!(matches!(
            split_held_out(1, &params),
            Err(FastFlowError::TooFewImages { images: 1 })
        ));
    }

    /// Eight images of two scales whose features are smooth random fields.
    fn synthetic_cache() -> FeatureCache {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut cache = FeatureCache::new();
        for _ in 0..8 {
            let mut map = |c: usize, side: usize| {
                let values: Vec<f32> = (0..c * side * side)
                    .map(|i| ((i % side) as f32 * 0.3).sin() + rng.gen_range(-0.3..0.3))
                    .collect();
                Tensor::from_vec(values, (1, c, side, side), &Device::Cpu).unwrap()
            };
            let fine = map(4, 8);
            let coarse = map(6, 4);
            cache.push(&[fine, coarse]).unwrap();
        }
        cache
    }

    fn tiny_params(seed: u64) -> FastFlowValidParams {
        FastFlowParams {
            steps: 4,
            seed,
            train: TrainParams {
                epochs: 4,
                batch_size: 3,
                learning_rate: 1e-2,
                patience: 4,
                seed,
                ..TrainParams::default()
            },
            ..FastFlowParams::default()
        }
        .check()
        .unwrap()
    }

    fn losses(seed: u64) -> Vec<f64> {
        let cache = synthetic_cache();
        let params = tiny_params(seed);
        let (train_ids, held_out) = split_held_out(cache.len(), &params).unwrap();
        let mut steps = Vec::new();
        fit_model(
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
        steps
    }

    /// The likelihood map is the per-channel negative log-likelihood of each position, and the
    /// latent map `-exp(-0.5 * mean_c z^2)`, both computed here from the flow's outputs.
    #[test]
    fn maps_score_positions_by_their_likelihood() {
        let cache = synthetic_cache();
        let params = tiny_params(5);
        let (train_ids, held_out) = split_held_out(cache.len(), &params).unwrap();
        let (model, _) = fit_model(
            &cache,
            &train_ids,
            &held_out,
            params.clone(),
            &Device::Cpu,
            &mut |_| {},
        )
        .unwrap();
        // The finest scale alone (4 channels, 8×8), so the map needs no resampling.
        let fine_weights: std::collections::HashMap<String, Tensor> = model
            .varmap()
            .data()
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.starts_with("scale0."))
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect();
        let features = vec![cache.batch(&[held_out[0]], &Device::Cpu).unwrap()[0].clone()];

        for map in [FastFlowMap::Likelihood, FastFlowMap::Latent] {
            let mut settings = params.as_params().clone();
            settings.map = map;
            let fine = FastFlowModel::from_source(
                settings.check().unwrap(),
                &[4],
                crate::flow::ParamSource::saved(fine_weights.clone(), &Device::Cpu),
                &Device::Cpu,
            )
            .unwrap();
            let (z, log_det) = fine.forward(&features).unwrap().swap_remove(0);
            let z = z.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let log_det = log_det.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            // Training moved the flow away from the identity, so the log-determinant counts.
            assert!(log_det.iter().any(|v| v.abs() > 0.01), "{log_det:?}");

            let got = fine.anomaly_maps(&features, 8, 8).unwrap().swap_remove(0);
            for p in 0..64 {
                let energy: f64 = (0..4).map(|k| 0.5 * f64::from(z[k * 64 + p]).powi(2)).sum();
                let expected = match map {
                    FastFlowMap::Likelihood => (energy - f64::from(log_det[p])) / 4.0,
                    FastFlowMap::Latent => -(-energy / 4.0).exp(),
                };
                let value = f64::from(got.data[p]);
                assert!(
                    (value - expected).abs() < 1e-5,
                    "{map:?} at {p}: {value} vs {expected}"
                );
            }
        }
    }

    /// The hand-written loss and gradient equal candle's autograd through the flows, for
    /// weights far from the identity and with both kernel sizes in every stack.
    #[test]
    fn hand_written_gradient_matches_autograd() {
        let cache = synthetic_cache();
        let params = tiny_params(9);
        let model = FastFlowModel::new(params, &[4, 6], &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let vars = model.varmap().all_vars();
        for var in &vars {
            let count = var.as_tensor().elem_count();
            let values: Vec<f32> = (0..count).map(|_| rng.gen_range(-0.4..0.4)).collect();
            var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
        let features = cache.batch(&[0, 3, 5], &Device::Cpu).unwrap();

        let loss = model.loss(&features).unwrap();
        let expected_loss = loss.to_scalar::<f32>().unwrap();
        let expected = loss.backward().unwrap();
        let (got_loss, got) = model.loss_gradients(&features).unwrap();
        let value = model.loss_value(&features).unwrap();
        // The weights move the loss well away from the identity's 0.5 per channel.
        assert!((expected_loss - 5.0).abs() > 0.5, "loss {expected_loss}");
        let tolerance = 1e-4 * f64::from(expected_loss.abs()).max(1.0);
        assert!((got_loss - f64::from(expected_loss)).abs() < tolerance);
        assert!((value - got_loss).abs() < 1e-9, "{value} vs {got_loss}");

        assert_eq!(vars.len(), 2 * 4 * 4);
        let values = |grads: &GradStore, var: &candle_core::Var| -> Vec<f32> {
            let grad = grads.get(var.as_tensor()).unwrap();
            grad.flatten_all().unwrap().to_vec1().unwrap()
        };
        for var in &vars {
            let want = values(&expected, var);
            let have = values(&got, var);
            let largest = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(largest > 1e-3, "gradient {want:?} is too small to test");
            for (a, b) in want.iter().zip(&have) {
                assert!(
                    (a - b).abs() <= 1e-4 * largest,
                    "{a} vs {b} (largest {largest})"
                );
            }
        }
    }

    #[test]
    fn training_lowers_loss_deterministically() {
        let first = losses(3);
        // 6 training images in batches of 3 for 4 epochs.
        assert_eq!(first.len(), 8);
        let start = first[0];
        let end = first[first.len() - 1];
        // A new model is the identity on layer-normalised features, so the first loss is
        // close to 0.5 per channel, summed over 4 + 6 channels, minus nothing.
        assert!((start - 5.0).abs() < 0.5, "first loss {start}");
        assert!(end < start - 0.5, "losses {first:?}");
        assert_eq!(first, losses(3));
        assert_ne!(first, losses(4));
    }
}
