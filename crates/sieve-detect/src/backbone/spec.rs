//! The layer table of EfficientNet-Lite0 (Tan and Le, "EfficientNet: Rethinking Model Scaling for
//! Convolutional Neural Networks", ICML 2019, with the "Lite" changes: no squeeze-excitation,
//! ReLU6 in place of swish, and a fixed stem and head).

/// One MBConv block: an optional 1×1 expansion, a depthwise `kernel`×`kernel` convolution with
/// `stride`, and a 1×1 projection, with a residual add when the stride is 1 and the channel
/// counts match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSpec {
    /// Side of the depthwise kernel.
    pub kernel: usize,
    /// Stride of the depthwise convolution.
    pub stride: usize,
    /// Expansion ratio; 1 means the block has no expansion convolution.
    pub expand_ratio: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Total stride of the block's output relative to the network input.
    pub output_stride: usize,
}

impl BlockSpec {
    /// Channels after the expansion convolution, which the depthwise convolution keeps.
    pub fn hidden_channels(&self) -> usize {
        self.in_channels * self.expand_ratio
    }

    /// Returns whether the block adds its input to its output.
    pub fn has_residual(&self) -> bool {
        self.stride == 1 && self.in_channels == self.out_channels
    }
}

const fn block(
    kernel: usize,
    stride: usize,
    expand_ratio: usize,
    in_channels: usize,
    out_channels: usize,
    output_stride: usize,
) -> BlockSpec {
    BlockSpec {
        kernel,
        stride,
        expand_ratio,
        in_channels,
        out_channels,
        output_stride,
    }
}

/// The 16 MBConv blocks in order. The seven stages are (repeats, kernel, stride, expansion,
/// output channels): (1,3,1,1,16), (2,3,2,6,24), (2,5,2,6,40), (3,3,2,6,80), (3,5,1,6,112),
/// (4,5,2,6,192), (1,3,1,6,320). Only the first block of a stage has the stage's stride.
pub const BLOCKS: [BlockSpec; 16] = [
    block(3, 1, 1, 32, 16, 2),
    block(3, 2, 6, 16, 24, 4),
    block(3, 1, 6, 24, 24, 4),
    block(5, 2, 6, 24, 40, 8),
    block(5, 1, 6, 40, 40, 8),
    block(3, 2, 6, 40, 80, 16),
    block(3, 1, 6, 80, 80, 16),
    block(3, 1, 6, 80, 80, 16),
    block(5, 1, 6, 80, 112, 16),
    block(5, 1, 6, 112, 112, 16),
    block(5, 1, 6, 112, 112, 16),
    block(5, 2, 6, 112, 192, 32),
    block(5, 1, 6, 192, 192, 32),
    block(5, 1, 6, 192, 192, 32),
    block(5, 1, 6, 192, 192, 32),
    block(3, 1, 6, 192, 320, 32),
];

/// The blocks whose outputs [`super::EfficientNetLite0::features`] returns: the ends of stages
/// 2, 3 and 5.
pub const FEATURE_BLOCKS: [usize; 3] = [2, 4, 10];
/// Channels of the feature maps, in the order of [`FEATURE_BLOCKS`].
pub const FEATURE_CHANNELS: [usize; 3] = [24, 40, 112];
/// Strides of the feature maps relative to the input, in the order of [`FEATURE_BLOCKS`].
pub const FEATURE_STRIDES: [usize; 3] = [4, 8, 16];

/// Output classes of the ImageNet classifier head.
pub const NUM_CLASSES: usize = 1000;

/// Channels of the stem convolution.
pub(crate) const STEM_CHANNELS: usize = 32;
/// Channels of the 1×1 head convolution before pooling.
pub(crate) const HEAD_CHANNELS: usize = 1280;
/// Epsilon of every BatchNorm layer, as in the TensorFlow original.
pub(crate) const BATCH_NORM_EPS: f64 = 1e-3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_chain_and_strides_multiply() {
        let mut channels = STEM_CHANNELS;
        let mut stride = 2;
        for (i, spec) in BLOCKS.iter().enumerate() {
            assert_eq!(spec.in_channels, channels, "block {i} input channels");
            stride *= spec.stride;
            assert_eq!(spec.output_stride, stride, "block {i} output stride");
            channels = spec.out_channels;
        }
        for ((&b, &c), &s) in FEATURE_BLOCKS
            .iter()
            .zip(&FEATURE_CHANNELS)
            .zip(&FEATURE_STRIDES)
        {
            assert_eq!(BLOCKS[b].out_channels, c);
            assert_eq!(BLOCKS[b].output_stride, s);
        }
    }
}
