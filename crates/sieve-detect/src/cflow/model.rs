//! The CFlow model: per backbone feature scale, a stack of affine coupling blocks over single
//! feature vectors whose fully connected subnets also take the positional encoding of the
//! vector. This file covers inference and the loss, and [`super::fit`] covers training.
//!
//! The log-likelihood of a vector `x` with `c` channels, normalised by `c`, is
//! `(log N(z; 0, I) + log|det J|) / c` with `z` the flow's output. The anomaly map is
//! `-exp` of it, per scale, upsampled and summed, so higher means more anomalous.

use std::f64::consts::PI;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use sieve_core::AnomalyMap;

use super::encoding::positional_encoding;
use super::params::CFlowValidParams;
use super::CFlowError;
use crate::flow::{AffineCoupling, CouplingStack, FcSubnet, ParamSource};

/// Feature vectors scored at once when computing maps, which bounds the memory of the
/// subnets' hidden units.
const MAP_CHUNK: usize = 8192;

/// A CFlow model over feature maps of fixed channel counts.
pub struct CFlowModel {
    params: CFlowValidParams,
    channels: Vec<usize>,
    flows: Vec<CouplingStack<FcSubnet>>,
    /// The same flows with untracked parameters, for anomaly maps.
    inference: Vec<CouplingStack<FcSubnet>>,
    /// Per scale, the log-likelihood subtracted before `exp` in the maps.
    references: Vec<f64>,
    varmap: VarMap,
    device: Device,
}

impl CFlowModel {
    /// Builds a new model over feature vectors with `channels` channels per scale, the finest
    /// scale first, with weights drawn from `params.seed()`.
    pub fn new(
        params: CFlowValidParams,
        channels: &[usize],
        device: &Device,
    ) -> Result<Self, CFlowError> {
        let source = ParamSource::seeded(params.seed(), device);
        Self::from_source(params, channels, source, device)
    }

    /// Builds a model whose parameters come from `source`. For saved parameters this checks
    /// that their names and shapes are exactly those that `params` and `channels` describe.
    pub fn from_source(
        params: CFlowValidParams,
        channels: &[usize],
        mut source: ParamSource,
        device: &Device,
    ) -> Result<Self, CFlowError> {
        let mut flows = Vec::with_capacity(channels.len());
        for (scale, &c) in channels.iter().enumerate() {
            let inputs = AffineCoupling::<FcSubnet>::passive_channels(c) + params.condition_dim();
            let outputs = 2 * AffineCoupling::<FcSubnet>::active_channels(c);
            let hidden = params.hidden_units(inputs);
            let subnets = (0..params.steps())
                .map(|step| {
                    FcSubnet::new(
                        &mut source,
                        &format!("scale{scale}.step{step}"),
                        inputs,
                        hidden,
                        outputs,
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
            references: vec![0.0; channels.len()],
            varmap: source.finish()?,
            device: device.clone(),
        })
    }

    pub fn params(&self) -> &CFlowValidParams {
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

    /// Per scale, the log-likelihood subtracted before `exp` in the maps.
    pub fn references(&self) -> &[f64] {
        &self.references
    }

    /// Sets the log-likelihood per scale that the maps subtract before `exp`, so that every
    /// scale's map is on a similar range before they are summed.
    ///
    /// # Panics
    /// When `references` does not have one value per scale.
    pub fn set_references(&mut self, references: Vec<f64>) {
        assert_eq!(
            references.len(),
            self.channels.len(),
            "one reference per scale"
        );
        self.references = references;
    }

    /// Maps feature vectors `x` `(n, c)` of scale `scale` with their encoded positions
    /// `condition` `(n, condition_dim)` to `z` `(n, c)` and `log|det J|` `(n)`. Inputs may be
    /// on any device and in any float dtype.
    pub fn forward(
        &self,
        scale: usize,
        x: &Tensor,
        condition: &Tensor,
    ) -> Result<(Tensor, Tensor), CFlowError> {
        self.forward_through(&self.flows[scale], x, condition)
    }

    /// Runs [`Self::forward`] through `flow`: a trained flow, or its untracked copy.
    fn forward_through(
        &self,
        flow: &CouplingStack<FcSubnet>,
        x: &Tensor,
        condition: &Tensor,
    ) -> Result<(Tensor, Tensor), CFlowError> {
        let x = self.to_model(x)?;
        let condition = self.to_model(condition)?;
        Ok(flow.forward(&x, Some(&condition))?)
    }

    /// Maps latent variables `z` `(n, c)` of scale `scale` back to the feature vectors.
    pub fn inverse(
        &self,
        scale: usize,
        z: &Tensor,
        condition: &Tensor,
    ) -> Result<Tensor, CFlowError> {
        let z = self.to_model(z)?;
        let condition = self.to_model(condition)?;
        Ok(self.flows[scale].inverse(&z, Some(&condition))?)
    }

    /// Returns the log-likelihood of each feature vector of `x` `(n, c)` of scale `scale`,
    /// divided by `c`: `(-0.5 |z|^2 + log|det J|) / c - 0.5 ln(2π)`, shape `(n)`.
    pub fn log_likelihood(
        &self,
        scale: usize,
        x: &Tensor,
        condition: &Tensor,
    ) -> Result<Tensor, CFlowError> {
        self.log_likelihood_through(&self.flows, scale, x, condition)
    }

    /// Computes [`Self::log_likelihood`] through `flows`: the trained flows, or their
    /// untracked copies.
    fn log_likelihood_through(
        &self,
        flows: &[CouplingStack<FcSubnet>],
        scale: usize,
        x: &Tensor,
        condition: &Tensor,
    ) -> Result<Tensor, CFlowError> {
        let (z, log_det) = self.forward_through(&flows[scale], x, condition)?;
        let c = self.channels[scale] as f64;
        let energy = (z.sqr()?.sum(1)? * -0.5)?;
        Ok((((energy + log_det)? / c)? - 0.5 * (2.0 * PI).ln())?)
    }

    /// Returns the training loss of one batch of feature vectors per scale, with the encoded
    /// positions of each: the mean negative normalised log-likelihood per scale, summed over
    /// scales. A scalar with its graph attached.
    pub fn loss(&self, batches: &[(Tensor, Tensor)]) -> Result<Tensor, CFlowError> {
        if batches.len() != self.channels.len() {
            return Err(CFlowError::ScaleCount {
                expected: self.channels.len(),
                found: batches.len(),
            });
        }
        let mut total: Option<Tensor> = None;
        for (scale, (x, condition)) in batches.iter().enumerate() {
            let scale_loss = self
                .log_likelihood(scale, x, condition)?
                .mean_all()?
                .neg()?;
            total = Some(match total {
                Some(sum) => (sum + scale_loss)?,
                None => scale_loss,
            });
        }
        Ok(total.expect("at least one scale, as every model has"))
    }

    /// Computes the anomaly map of each image of a batch, one `(b, c_i, h_i, w_i)` feature map
    /// per scale, at the input size `width`×`height`.
    ///
    /// Per scale the map is `-exp(l - r)`, with `l` the normalised log-likelihood of each
    /// position's vector and `r` the scale's reference, upsampled bilinearly (half-pixel
    /// centres) to the input size. The maps of the scales are summed.
    pub fn anomaly_maps(
        &self,
        features: &[Tensor],
        width: usize,
        height: usize,
    ) -> Result<Vec<AnomalyMap>, CFlowError> {
        self.check_features(features)?;
        let batch = features[0].dim(0)?;
        let mut maps = vec![AnomalyMap::filled(width, height, 0.0); batch];
        for (scale, map) in features.iter().enumerate() {
            let (b, c, h, w) = map.dims4()?;
            let fibers = map.permute((0, 2, 3, 1))?.reshape((b * h * w, c))?;
            let encoding = positional_encoding(self.params.condition_dim(), h, w, &self.device)?;
            let condition = encoding.repeat((b, 1))?;
            let mut scores = Vec::with_capacity(b * h * w);
            for start in (0..b * h * w).step_by(MAP_CHUNK) {
                let len = MAP_CHUNK.min(b * h * w - start);
                let likelihood = self.log_likelihood_through(
                    &self.inference,
                    scale,
                    &fibers.narrow(0, start, len)?,
                    &condition.narrow(0, start, len)?,
                )?;
                let score = ((likelihood - self.references[scale])?.exp()?.neg()?)
                    .to_device(&Device::Cpu)?
                    .to_vec1::<f32>()?;
                scores.extend(score);
            }
            for (map, grid) in maps.iter_mut().zip(scores.chunks_exact(h * w)) {
                let upsampled =
                    AnomalyMap::from_vec(w, h, grid.to_vec()).resize_bilinear(width, height);
                for (value, add) in map.data.iter_mut().zip(&upsampled.data) {
                    *value += add;
                }
            }
        }
        Ok(maps)
    }

    fn to_model(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.to_device(&self.device)?.to_dtype(DType::F32)
    }

    fn check_features(&self, features: &[Tensor]) -> Result<(), CFlowError> {
        if features.len() != self.channels.len() {
            return Err(CFlowError::ScaleCount {
                expected: self.channels.len(),
                found: features.len(),
            });
        }
        for (index, (map, &channels)) in features.iter().zip(&self.channels).enumerate() {
            let valid =
                matches!(map.dims(), &[b, c, h, w] if b > 0 && c == channels && h > 0 && w > 0);
            if !valid {
                return Err(CFlowError::FeatureMapShape {
                    index,
                    shape: map.dims().to_vec(),
                    channels,
                });
            }
        }
        Ok(())
    }
}
