//! The training loop of a flow: AdamW on seeded shuffled mini-batches, one held-out loss per
//! epoch, early stopping on it, and the weights of the best epoch kept. It does not depend on
//! the model, because callers pass closures that compute the mean loss of a list of samples.

use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::FlowError;

/// Unchecked training settings. Call [`TrainParams::check`] once for [`TrainValidParams`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// AdamW step size. Default 0.001, as anomalib's FastFlow.
    pub learning_rate: f64,
    /// Decoupled AdamW weight decay. Default 0.00001, as anomalib's FastFlow.
    pub weight_decay: f64,
    /// Largest number of passes over the training samples. Default 8.
    pub epochs: usize,
    /// Samples per optimiser step. Default 8.
    pub batch_size: usize,
    /// Epochs without a lower held-out loss after which training stops. Default 2.
    pub patience: usize,
    /// Seed of the shuffling. Default 0.
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            weight_decay: 1e-5,
            epochs: 8,
            batch_size: 8,
            patience: 2,
            seed: 0,
        }
    }
}

impl TrainParams {
    /// Checks every setting and returns the validated form.
    pub fn check(&self) -> Result<TrainValidParams, FlowError> {
        let lr = self.learning_rate;
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(FlowError::InvalidLearningRate { value: lr });
        }
        let decay = self.weight_decay;
        if !(decay >= 0.0 && decay.is_finite()) {
            return Err(FlowError::InvalidWeightDecay { value: decay });
        }
        for (name, value, example) in [
            ("epochs", self.epochs, 8),
            ("batch_size", self.batch_size, 8),
            ("patience", self.patience, 2),
        ] {
            if value == 0 {
                return Err(FlowError::InvalidCount { name, example });
            }
        }
        Ok(TrainValidParams(self.clone()))
    }
}

/// Training settings that passed [`TrainParams::check`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainValidParams(TrainParams);

impl TrainValidParams {
    pub fn as_params(&self) -> &TrainParams {
        &self.0
    }
}

/// The result of a training closure for one batch: its mean loss and the gradient of that loss.
pub trait BatchLoss {
    /// Returns the loss value and the gradient of every parameter.
    fn into_gradient(self) -> candle_core::Result<(f64, GradStore)>;
}

/// A scalar loss with its graph attached: candle's autograd computes the gradient.
impl BatchLoss for Tensor {
    fn into_gradient(self) -> candle_core::Result<(f64, GradStore)> {
        let value = self.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        Ok((value, self.backward()?))
    }
}

/// A loss whose gradient was computed already.
impl BatchLoss for (f64, GradStore) {
    fn into_gradient(self) -> candle_core::Result<(f64, GradStore)> {
        Ok(self)
    }
}

/// The result of a held-out closure for one batch: its mean loss.
pub trait LossValue {
    fn value(self) -> candle_core::Result<f64>;
}

impl LossValue for Tensor {
    fn value(self) -> candle_core::Result<f64> {
        self.detach()
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()
    }
}

impl LossValue for f64 {
    fn value(self) -> candle_core::Result<f64> {
        Ok(self)
    }
}

/// Progress of training, reported after every optimiser step and every epoch.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// One optimiser step; `epoch` and `batch` count from 1.
    Step {
        epoch: usize,
        epochs: usize,
        batch: usize,
        batches: usize,
        samples: usize,
        loss: f64,
    },
    /// One finished epoch.
    Epoch(EpochRecord),
}

/// Losses and speed of one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples, weighted by batch size.
    pub train_loss: f64,
    /// Mean loss of the held-out samples after the epoch, when there are any.
    pub held_out_loss: Option<f64>,
    /// Training samples per second of the optimiser steps, held-out loss excluded.
    pub samples_per_second: f64,
    /// Wall time of the epoch, held-out loss included, in seconds.
    pub seconds: f64,
}

/// Reason training ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All epochs ran.
    EpochLimit,
    /// The held-out loss did not improve for `patience` epochs.
    EarlyStop,
}

/// The record of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainLog {
    pub epochs: Vec<EpochRecord>,
    /// Epoch whose weights the model keeps: the lowest held-out loss, or the last epoch when
    /// nothing was held out.
    pub best_epoch: usize,
    pub stop: StopReason,
}

/// Trains `vars` with AdamW.
///
/// Each epoch shuffles `0..train_samples` with a generator seeded from `params.seed`, and
/// `train_loss` returns the mean loss of each batch of sample indices, either with its graph
/// attached or with its gradient (see [`BatchLoss`]).
/// After each epoch `held_out_loss` is called on batches of `0..held_out_samples`. When that
/// mean loss has not improved for `patience` epochs, training stops. At the end the variables
/// hold the weights of the epoch with the lowest held-out loss (or of the last epoch, when
/// `held_out_samples` is 0).
pub fn train<E, L, H, B, V>(
    vars: Vec<Var>,
    train_samples: usize,
    held_out_samples: usize,
    params: &TrainValidParams,
    mut train_loss: L,
    mut held_out_loss: H,
    progress: &mut dyn FnMut(&TrainEvent),
) -> Result<TrainLog, E>
where
    E: From<FlowError> + From<candle_core::Error>,
    L: FnMut(&[usize]) -> Result<B, E>,
    H: FnMut(&[usize]) -> Result<V, E>,
    B: BatchLoss,
    V: LossValue,
{
    let params = params.as_params();
    if train_samples == 0 {
        return Err(FlowError::NoTrainingSamples.into());
    }
    let mut optimiser = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: params.learning_rate,
            weight_decay: params.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let mut order: Vec<usize> = (0..train_samples).collect();
    let batches = train_samples.div_ceil(params.batch_size);

    let mut log = TrainLog {
        epochs: Vec::new(),
        best_epoch: 0,
        stop: StopReason::EpochLimit,
    };
    let mut best: Option<(f64, Vec<Tensor>)> = None;
    let mut stale_epochs = 0;

    for epoch in 1..=params.epochs {
        let start = Instant::now();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        for (index, batch) in order.chunks(params.batch_size).enumerate() {
            let (value, grads) = train_loss(batch)?.into_gradient()?;
            if !value.is_finite() {
                return Err(FlowError::Diverged {
                    epoch,
                    batch: index + 1,
                    loss: value,
                }
                .into());
            }
            optimiser.step(&grads)?;
            loss_sum += value * batch.len() as f64;
            progress(&TrainEvent::Step {
                epoch,
                epochs: params.epochs,
                batch: index + 1,
                batches,
                samples: batch.len(),
                loss: value,
            });
        }
        let train_seconds = start.elapsed().as_secs_f64();

        let held_out = if held_out_samples > 0 {
            Some(mean_loss(
                held_out_samples,
                params.batch_size,
                &mut held_out_loss,
            )?)
        } else {
            None
        };
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / train_samples as f64,
            held_out_loss: held_out,
            samples_per_second: train_samples as f64 / train_seconds.max(1e-9),
            seconds: start.elapsed().as_secs_f64(),
        };
        progress(&TrainEvent::Epoch(record.clone()));
        log.epochs.push(record);

        let Some(loss) = held_out else {
            log.best_epoch = epoch;
            continue;
        };
        if best.as_ref().is_none_or(|(lowest, _)| loss < *lowest) {
            let weights = vars
                .iter()
                .map(|var| var.as_tensor().copy())
                .collect::<candle_core::Result<Vec<_>>>()?;
            best = Some((loss, weights));
            log.best_epoch = epoch;
            stale_epochs = 0;
        } else {
            stale_epochs += 1;
            if stale_epochs >= params.patience {
                log.stop = StopReason::EarlyStop;
                break;
            }
        }
    }

    if let Some((_, weights)) = best {
        for (var, weight) in vars.iter().zip(&weights) {
            var.set(weight)?;
        }
    }
    Ok(log)
}

/// Mean of `loss` over `0..samples` in batches of `batch_size`, weighted by batch size.
fn mean_loss<E, H, V>(samples: usize, batch_size: usize, loss: &mut H) -> Result<f64, E>
where
    E: From<candle_core::Error>,
    H: FnMut(&[usize]) -> Result<V, E>,
    V: LossValue,
{
    let indices: Vec<usize> = (0..samples).collect();
    let mut sum = 0.0;
    for batch in indices.chunks(batch_size) {
        sum += loss(batch)?.value()? * batch.len() as f64;
    }
    Ok(sum / samples as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Fits `y = a * x` to `y = 3 x` on samples x = 1..=n with the squared error.
    fn fit(epochs: usize, held_out: usize, seed: u64) -> (TrainLog, f32) {
        let a = Var::zeros(1, DType::F32, &Device::Cpu).unwrap();
        let params = TrainParams {
            learning_rate: 0.1,
            weight_decay: 0.0,
            epochs,
            batch_size: 2,
            patience: 2,
            seed,
        }
        .check()
        .unwrap();
        let loss_of = |indices: &[usize]| -> Result<Tensor, FlowError> {
            let x: Vec<f32> = indices.iter().map(|&i| (i + 1) as f32).collect();
            let x = Tensor::new(x.as_slice(), &Device::Cpu)?;
            let y = (&x * 3.0)?;
            Ok((x.broadcast_mul(a.as_tensor())? - y)?.sqr()?.mean_all()?)
        };
        let mut steps = 0;
        let log = train(
            vec![a.clone()],
            5,
            held_out,
            &params,
            loss_of,
            loss_of,
            &mut |event| {
                if matches!(event, TrainEvent::Step { .. }) {
                    steps += 1;
                }
            },
        )
        .unwrap();
        assert_eq!(steps, 3 * log.epochs.len());
        let value = a.as_tensor().to_vec1::<f32>().unwrap()[0];
        (log, value)
    }

    #[test]
    fn training_lowers_the_loss() {
        let (log, a) = fit(30, 0, 0);
        assert_eq!(log.epochs.len(), 30);
        assert_eq!(log.stop, StopReason::EpochLimit);
        assert_eq!(log.best_epoch, 30);
        assert!(
            log.epochs[29].train_loss < 0.1 * log.epochs[0].train_loss,
            "{log:?}"
        );
        assert!((a - 3.0).abs() < 0.3, "a = {a}");
    }

    #[test]
    fn same_seed_same_losses() {
        let (first, _) = fit(3, 0, 7);
        let (second, _) = fit(3, 0, 7);
        let losses = |log: &TrainLog| log.epochs.iter().map(|e| e.train_loss).collect::<Vec<_>>();
        assert_eq!(losses(&first), losses(&second));
    }

    #[test]
    fn early_stop_keeps_best_weights() {
        let (log, a) = fit(200, 5, 0);
        assert_eq!(log.stop, StopReason::EarlyStop);
        let best = &log.epochs[log.best_epoch - 1];
        let lowest = log
            .epochs
            .iter()
            .filter_map(|e| e.held_out_loss)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(best.held_out_loss, Some(lowest));
        assert_eq!(log.epochs.len(), log.best_epoch + 2);
        // The held-out loss of the kept weights is the best one recorded.
        let x: [f32; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];
        let kept: f64 = x
            .iter()
            .map(|&x| f64::from((a * x - 3.0 * x).powi(2)))
            .sum::<f64>()
            / 5.0;
        assert!(
            (kept - lowest).abs() <= 1e-4 * lowest.max(1e-3),
            "{kept} vs {lowest}"
        );
    }

    #[test]
    fn check_rejects_bad_settings() {
        let base = TrainParams::default();
        assert!(TrainParams {
            learning_rate: 0.0,
            ..base.clone()
        }
        .check()
        .is_err());
        assert!(TrainParams {
            weight_decay: -1.0,
            ..base.clone()
        }
        .check()
        .is_err());
        assert!(matches!(
            TrainParams {
                batch_size: 0,
                ..base.clone()
            }
            .check(),
            Err(FlowError::InvalidCount {
                name: "batch_size",
                ..
            })
        ));
        assert!(base.check().is_ok());
    }
}
