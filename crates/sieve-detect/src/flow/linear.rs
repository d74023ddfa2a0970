//! The fully connected subnet of a coupling block over single feature vectors,
//! `linear, ReLU, linear`.

use candle_core::{Result, Tensor};

use super::coupling::Subnet;
use super::param::{ParamInit, ParamSource};
use super::FlowError;

/// `linear -> ReLU -> linear`, mapping `(n, c_in)` to `(n, c_out)` through `hidden` units.
/// Weights are `(out, in)`, as PyTorch's `nn.Linear` stores them.
pub struct FcSubnet {
    /// `(hidden, c_in)`.
    weight1: Tensor,
    /// `(hidden)`.
    bias1: Tensor,
    /// `(c_out, hidden)`.
    weight2: Tensor,
    /// `(c_out)`.
    bias2: Tensor,
}

impl FcSubnet {
    /// Creates the parameters `{prefix}.fc1.weight`, `{prefix}.fc1.bias`, `{prefix}.fc2.weight`
    /// and `{prefix}.fc2.bias`.
    ///
    /// The first layer starts with PyTorch's default initialisation. The second starts at zero,
    /// so every coupling block starts as the identity, as the convolutional subnet does.
    pub fn new(
        params: &mut ParamSource,
        prefix: &str,
        c_in: usize,
        hidden: usize,
        c_out: usize,
    ) -> std::result::Result<Self, FlowError> {
        let weight1 = params.get(
            &format!("{prefix}.fc1.weight"),
            &[hidden, c_in],
            ParamInit::fan_in(c_in),
        )?;
        let bias1 = params.get(
            &format!("{prefix}.fc1.bias"),
            &[hidden],
            ParamInit::fan_in(c_in),
        )?;
        let weight2 = params.get(
            &format!("{prefix}.fc2.weight"),
            &[c_out, hidden],
            ParamInit::Zeros,
        )?;
        let bias2 = params.get(&format!("{prefix}.fc2.bias"), &[c_out], ParamInit::Zeros)?;
        Ok(Self {
            weight1,
            bias1,
            weight2,
            bias2,
        })
    }

    /// Builds the subnet from given tensors, for example in another dtype.
    pub fn from_tensors(weight1: Tensor, bias1: Tensor, weight2: Tensor, bias2: Tensor) -> Self {
        Self {
            weight1,
            bias1,
            weight2,
            bias2,
        }
    }
}

impl Subnet for FcSubnet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = x
            .matmul(&self.weight1.t()?)?
            .broadcast_add(&self.bias1)?
            .relu()?;
        hidden
            .matmul(&self.weight2.t()?)?
            .broadcast_add(&self.bias2)
    }

    fn detached(&self) -> Self {
        Self {
            weight1: self.weight1.detach(),
            bias1: self.bias1.detach(),
            weight2: self.weight2.detach(),
            bias2: self.bias2.detach(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn forward_matches_hand_computation() {
        let tensor = |values: &[f32], shape: &[usize]| {
            Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap()
        };
        // 2 inputs -> 2 hidden units -> 1 output.
        let subnet = FcSubnet::from_tensors(
            tensor(&[1.0, -1.0, 0.5, 2.0], &[2, 2]),
            tensor(&[0.0, -1.0], &[2]),
            tensor(&[3.0, -2.0], &[1, 2]),
            tensor(&[0.25], &[1]),
        );
        let x = tensor(&[2.0, 1.0, -1.0, 3.0], &[2, 2]);
        let y = subnet.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        // Row 1: hidden relu(1, 1 + 2 - 1) = (1, 2), output 3 - 4 + 0.25.
        // Row 2: hidden relu(-4, -0.5 + 6 - 1) = (0, 4.5), output -9 + 0.25.
        assert_eq!(y, vec![vec![-0.75], vec![-8.75]]);
    }
}
