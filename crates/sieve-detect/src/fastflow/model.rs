//! The FastFlow model (Yu et al., "FastFlow: Unsupervised Anomaly Detection and Localization
//! via 2D Normalizing Flows", 2021): one 2D normalising flow per backbone feature scale, and
//! the anomaly map from its latent variables. Inference and loss only; training lives in
//! [`super::fit`].
//!
//! Each scale's features are layer-normalised over `(c, h, w)`, then mapped by a stack of
//! affine coupling blocks whose subnets alternate 3×3 and 1×1 convolutions. Higher map values
//! mean more anomalous.
//!
//! By default a position scores `-exp(-0.5 * mean_c z^2)`, as in the FastFlow paper. That map
//! leaves out the log-determinant of the Jacobian. [`FastFlowMap::Likelihood`] scores the
//! negative log-likelihood under the flow instead, which keeps it.

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use rayon::prelude::*;
use sieve_core::AnomalyMap;

use super::params::{FastFlowMap, FastFlowValidParams};
use super::FastFlowError;
use crate::flow::{
    AffineCoupling, ConvStackGradient, ConvStackWeights, ConvSubnet, CouplingStack, ParamSource,
};

/// Added to the variance in the layer norm, as PyTorch's `nn.LayerNorm` default.
const LAYER_NORM_EPS: f64 = 1e-5;

/// A FastFlow model over feature maps of fixed channel counts.
pub struct FastFlowModel {
    params: FastFlowValidParams,
    channels: Vec<usize>,
    flows: Vec<CouplingStack<ConvSubnet>>,
    /// The same flows with untracked parameters, for anomaly maps.
    inference: Vec<CouplingStack<ConvSubnet>>,
    varmap: VarMap,
    device: Device,
}

impl FastFlowModel {
    /// Builds a new model over feature maps with `channels` channels, the finest scale first,
    /// with weights drawn from `params.seed()`.
    pub fn new(
        params: FastFlowValidParams,
        channels: &[usize],
        device: &Device,
    ) -> Result<Self, FastFlowError> {
        let source = ParamSource::seeded(params.seed(), device);
        Self::from_source(params, channels, source, device)
    }

    /// Builds a model whose parameters come from `source`. For saved parameters this checks
    /// that their names and shapes are exactly those that `params` and `channels` describe.
    pub fn from_source(
        params: FastFlowValidParams,
        channels: &[usize],
        mut source: ParamSource,
        device: &Device,
    ) -> Result<Self, FastFlowError> {
        let mut flows = Vec::with_capacity(channels.len());
        for (scale, &c) in channels.iter().enumerate() {
            let c_in = AffineCoupling::<ConvSubnet>::passive_channels(c);
            let c_out = 2 * AffineCoupling::<ConvSubnet>::active_channels(c);
            let hidden = params.hidden_channels(c_in);
            let subnets = (0..params.steps())
                .map(|step| {
                    ConvSubnet::new(
                        &mut source,
                        &format!("scale{scale}.step{step}"),
                        c_in,
                        hidden,
                        c_out,
                        FastFlowValidParams::kernel(step),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Each scale gets its own permutations, fixed by the seed.
            let permutation_seed = params.seed().wrapping_add(1 + scale as u64);
            flows.push(CouplingStack::new(
                subnets,
                c,
                params.clamp(),
                permutation_seed,
                device,
            )?);
        }
        let inference = flows.iter().map(CouplingStack::detached).collect();
        Ok(Self {
            params,
            channels: channels.to_vec(),
            flows,
            inference,
            varmap: source.finish()?,
            device: device.clone(),
        })
    }

    pub fn params(&self) -> &FastFlowValidParams {
        &self.params
    }

    /// Channels of each scale, the finest first.
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    /// Returns the trainable parameters by name.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Device the flows run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Maps the feature maps of a batch, one `(b, c_i, h_i, w_i)` per scale, to their latent
    /// variables `z_i` of the same shapes and `log|det J_i|` `(b, h_i, w_i)`. Features may be on
    /// any device and in any float dtype. They are moved to the model's device as f32.
    pub fn forward(&self, features: &[Tensor]) -> Result<Vec<(Tensor, Tensor)>, FastFlowError> {
        self.forward_through(&self.flows, features)
    }

    /// Runs `features` through `flows`: the trained flows, or their untracked copies.
    fn forward_through(
        &self,
        flows: &[CouplingStack<ConvSubnet>],
        features: &[Tensor],
    ) -> Result<Vec<(Tensor, Tensor)>, FastFlowError> {
        self.check_features(features)?;
        features
            .iter()
            .zip(flows)
            .map(|(x, flow)| {
                let x = x.to_device(&self.device)?.to_dtype(DType::F32)?;
                Ok(flow.forward(&layer_norm(&x)?, None)?)
            })
            .collect()
    }

    /// Maps latent variables back to the layer-normalised features they came from, one
    /// `(b, c_i, h_i, w_i)` per scale. The layer norm itself is not inverted.
    pub fn inverse(&self, latents: &[Tensor]) -> Result<Vec<Tensor>, FastFlowError> {
        self.check_features(latents)?;
        latents
            .iter()
            .zip(&self.flows)
            .map(|(z, flow)| Ok(flow.inverse(&z.to_device(&self.device)?, None)?))
            .collect()
    }

    /// Returns the training loss of a batch: per scale the mean over images and positions of
    /// `0.5 * |z|^2 - log|det J|`, with `|z|^2` summed over channels, then summed over scales.
    /// A scalar with its graph attached.
    pub fn loss(&self, features: &[Tensor]) -> Result<Tensor, FastFlowError> {
        Ok(scale_losses(self.forward(features)?)?)
    }

    /// Returns the training loss of a batch, as [`Self::loss`] computes it, and its gradient
    /// with respect to every parameter, keyed by the parameter tensors for an optimiser step.
    ///
    /// On the CPU this runs the hand-written forward and backward pass of
    /// [`ConvStackWeights::image_loss`], one image and scale per task in parallel. On other
    /// devices it runs candle's autograd on [`Self::loss`].
    pub fn loss_gradients(&self, features: &[Tensor]) -> Result<(f64, GradStore), FastFlowError> {
        if !self.device.is_cpu() {
            let loss = self.loss(features)?;
            let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            return Ok((value, loss.backward()?));
        }
        let (total, sums) = self.cpu_loss(features, true)?;
        let mut grads = GradStore::default();
        for (flow, sum) in self.flows.iter().zip(sums) {
            let Some(sum) = sum else { continue };
            for ((subnet, _, _), block) in flow.blocks().zip(sum.blocks) {
                for (tensor, values) in subnet.tensors().into_iter().zip(block) {
                    let gradient = Tensor::from_vec(values, tensor.shape(), &self.device)?;
                    grads.insert(tensor, gradient);
                }
            }
        }
        Ok((total, grads))
    }

    /// Returns the value of [`Self::loss`] without a gradient graph.
    pub fn loss_value(&self, features: &[Tensor]) -> Result<f64, FastFlowError> {
        if !self.device.is_cpu() {
            let loss = self.forward_through(&self.inference, features)?;
            return Ok(scale_losses(loss)?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?);
        }
        Ok(self.cpu_loss(features, false)?.0)
    }

    /// Computes the loss of a batch on the CPU, one task per image and scale. With `gradient`
    /// it also returns the summed gradient of each scale's stack.
    fn cpu_loss(
        &self,
        features: &[Tensor],
        gradient: bool,
    ) -> Result<(f64, Vec<Option<ConvStackGradient>>), FastFlowError> {
        self.check_features(features)?;
        let stacks = self
            .flows
            .iter()
            .zip(&self.channels)
            .map(|(flow, &c)| ConvStackWeights::new(flow, c))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut tasks = Vec::new();
        for (scale, x) in features.iter().enumerate() {
            let (b, c, h, w) = x.dims4()?;
            let values: Vec<f32> = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let weight = 1.0 / (b * h * w) as f32;
            for image in values.chunks_exact(c * h * w) {
                tasks.push((scale, image.to_vec(), h, w, weight));
            }
        }
        let results: Vec<(usize, f64, Option<ConvStackGradient>)> = tasks
            .into_par_iter()
            .map(|(scale, x, h, w, weight)| {
                let (loss, grad) = stacks[scale].image_loss(&x, h, w, weight, gradient);
                (scale, loss, grad)
            })
            .collect();

        let mut total = 0.0;
        let mut sums: Vec<Option<ConvStackGradient>> = vec![None; stacks.len()];
        for (scale, loss, grad) in results {
            total += loss;
            if let Some(grad) = grad {
                match &mut sums[scale] {
                    Some(sum) => sum.add(&grad),
                    slot => *slot = Some(grad),
                }
            }
        }
        Ok((total, sums))
    }

    /// Computes the anomaly map of each image of a batch at the input size `width`×`height`.
    ///
    /// Per scale each position gets the score that [`FastFlowValidParams::map`] names, and the
    /// grid is upsampled bilinearly (half-pixel centres) to the input size. The maps of the
    /// scales are averaged.
    pub fn anomaly_maps(
        &self,
        features: &[Tensor],
        width: usize,
        height: usize,
    ) -> Result<Vec<AnomalyMap>, FastFlowError> {
        let grids = if self.device.is_cpu() {
            self.cpu_score_grids(features)?
        } else {
            self.score_grids(features)?
        };
        let batch = features[0].dim(0)?;
        let mut maps = vec![AnomalyMap::filled(width, height, 0.0); batch];
        let weight = 1.0 / grids.len() as f32;
        for &(ref scores, h, w) in &grids {
            for (map, grid) in maps.iter_mut().zip(scores.chunks_exact(h * w)) {
                let upsampled =
                    AnomalyMap::from_vec(w, h, grid.to_vec()).resize_bilinear(width, height);
                for (value, add) in map.data.iter_mut().zip(&upsampled.data) {
                    *value += weight * add;
                }
            }
        }
        Ok(maps)
    }

    /// Scores every position of every image with candle operations on the untracked flows:
    /// per scale the scores of the whole batch, `(b, h, w)` flattened, with `h` and `w`.
    fn score_grids(
        &self,
        features: &[Tensor],
    ) -> Result<Vec<(Vec<f32>, usize, usize)>, FastFlowError> {
        let latents = self.forward_through(&self.inference, features)?;
        let mut grids = Vec::with_capacity(latents.len());
        for (z, log_det) in &latents {
            let (_, c, h, w) = z.dims4()?;
            let energy = (z.sqr()?.sum(1)? * 0.5)?; // (b, h, w)
            let score = match self.params.map() {
                FastFlowMap::Likelihood => ((energy - log_det)? / c as f64)?,
                FastFlowMap::Latent => (energy / c as f64)?.neg()?.exp()?.neg()?,
            };
            let scores = score
                .to_device(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            grids.push((scores, h, w));
        }
        Ok(grids)
    }

    /// Computes the same scores as [`Self::score_grids`] with the hand-written forward pass of
    /// [`ConvStackWeights::image_scores`], one image and scale per task in parallel.
    fn cpu_score_grids(
        &self,
        features: &[Tensor],
    ) -> Result<Vec<(Vec<f32>, usize, usize)>, FastFlowError> {
        self.check_features(features)?;
        let map = self.params.map();
        let mut stacks = Vec::with_capacity(features.len());
        let mut tasks = Vec::new();
        for (scale, (x, flow)) in features.iter().zip(&self.flows).enumerate() {
            let (_, c, h, w) = x.dims4()?;
            stacks.push(ConvStackWeights::new(flow, c)?);
            let values: Vec<f32> = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            for image in values.chunks_exact(c * h * w) {
                tasks.push((scale, image.to_vec(), h, w));
            }
        }
        let scores: Vec<(usize, Vec<f32>)> = tasks
            .into_par_iter()
            .map(|(scale, image, h, w)| {
                let c = stacks[scale].channels() as f32;
                let (energy, log_det) = stacks[scale].image_scores(&image, h, w);
                let grid = energy
                    .iter()
                    .zip(&log_det)
                    .map(|(&e, &d)| match map {
                        FastFlowMap::Likelihood => (e - d) / c,
                        FastFlowMap::Latent => -(-e / c).exp(),
                    })
                    .collect();
                (scale, grid)
            })
            .collect();
        let mut grids: Vec<(Vec<f32>, usize, usize)> = features
            .iter()
            .map(|x| (Vec::new(), x.dim(2).unwrap_or(0), x.dim(3).unwrap_or(0)))
            .collect();
        // Tasks come back in order, so each scale's images are appended in batch order.
        for (scale, grid) in scores {
            grids[scale].0.extend_from_slice(&grid);
        }
        Ok(grids)
    }

    fn check_features(&self, features: &[Tensor]) -> Result<(), FastFlowError> {
        if features.len() != self.channels.len() {
            return Err(FastFlowError::ScaleCount {
                expected: self.channels.len(),
                found: features.len(),
            });
        }
        for (index, (map, &channels)) in features.iter().zip(&self.channels).enumerate() {
            let valid =
                matches!(map.dims(), &[b, c, h, w] if b > 0 && c == channels && h > 0 && w > 0);
            if !valid {
                return Err(FastFlowError::FeatureMapShape {
                    index,
                    shape: map.dims().to_vec(),
                    channels,
                });
            }
        }
        Ok(())
    }
}

/// Sums over scales the mean over images and positions of `0.5 * |z|^2 - log|det J|`.
fn scale_losses(latents: Vec<(Tensor, Tensor)>) -> candle_core::Result<Tensor> {
    let mut total: Option<Tensor> = None;
    for (z, log_det) in latents {
        let energy = (z.sqr()?.sum(1)? * 0.5)?; // (b, h, w)
        let scale_loss = (energy - log_det)?.mean_all()?;
        total = Some(match total {
            Some(sum) => (sum + scale_loss)?,
            None => scale_loss,
        });
    }
    // check_features rejects an empty list before any flow runs.
    total.ok_or_else(|| candle_core::Error::Msg("no feature scales".into()))
}

/// Normalises each image of `x` `(b, c, h, w)` to mean 0 and variance 1 over `(c, h, w)`.
///
/// NOTE: anomalib's FastFlow adds a learnable elementwise affine over `(c, h, w)` here. It is
/// left out: its Jacobian is not in the loss, so training could shrink the features toward a
/// constant to lower the loss, and it would tie the model to one input size.
pub fn layer_norm(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let flat = x.reshape((b, c * h * w))?;
    let mean = flat.mean_keepdim(D::Minus1)?;
    let centred = flat.broadcast_sub(&mean)?;
    let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_div(&(variance + LAYER_NORM_EPS)?.sqrt()?)?
        .reshape((b, c, h, w))
}
