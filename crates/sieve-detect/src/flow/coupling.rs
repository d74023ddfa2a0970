//! Affine coupling blocks (Dinh, Sohl-Dickstein and Bengio, "Density estimation using Real NVP",
//! ICLR 2017) with soft-clamped log-scales, and stacks of them with a fixed channel permutation
//! after each block.
//!
//! Tensors are `(b, c, ...)`: channels on dimension 1, any trailing dimensions (none for single
//! feature vectors, `(h, w)` for feature maps). A block splits the channels into a first part
//! of `c - c/2` channels, which passes unchanged, and a second part of `c/2` channels. Its
//! subnet computes a scale and a shift for the second part from the first part (and from an
//! optional condition). The log-determinant of the Jacobian is therefore the sum of the log-scales over
//! the channels, one value per sample and position.

use candle_core::{Device, Result, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The network inside a coupling block.
pub trait Subnet {
    /// Maps `(b, c_in, ...)` to `(b, 2 * c_out, ...)`: the raw log-scales, then the shifts, of
    /// the `c_out` channels the block transforms.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Returns a copy whose parameters share storage with these but record no gradient graph,
    /// so inference frees each intermediate as soon as it is used. Optimiser updates of the
    /// originals show in the copy.
    fn detached(&self) -> Self
    where
        Self: Sized;
}

/// Limits `s` smoothly to `(-clamp, clamp)`: `clamp * tanh(s / clamp)`, close to `s` near 0.
///
/// Bounding the log-scales keeps `exp(s)` finite, so one block can neither blow up nor
/// collapse its input.
pub fn soft_clamp(s: &Tensor, clamp: f64) -> Result<Tensor> {
    (s / clamp)?.tanh()? * clamp
}

/// One affine coupling block: `y2 = x2 * exp(s) + t` with `(s, t)` from the subnet of `x1`.
pub struct AffineCoupling<S> {
    subnet: S,
    channels: usize,
    clamp: f64,
}

impl<S: Subnet> AffineCoupling<S> {
    /// Wraps `subnet`, which must map `passive_channels(channels)` (plus any condition
    /// channels) to `2 * active_channels(channels)`.
    pub fn new(subnet: S, channels: usize, clamp: f64) -> Self {
        Self {
            subnet,
            channels,
            clamp,
        }
    }

    /// Channels that pass unchanged and feed the subnet: `c - c/2`.
    pub fn passive_channels(channels: usize) -> usize {
        channels - channels / 2
    }

    /// Channels that are scaled and shifted: `c/2`.
    pub fn active_channels(channels: usize) -> usize {
        channels / 2
    }

    /// Returns the subnet's clamped log-scales and shifts for the passive part `x1`.
    fn scale_shift(&self, x1: &Tensor, condition: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let active = Self::active_channels(self.channels);
        let input = match condition {
            Some(condition) => Tensor::cat(&[x1, condition], 1)?,
            None => x1.clone(),
        };
        let out = self.subnet.forward(&input)?; // (b, 2 * active, ...)
        let log_scale = soft_clamp(&out.narrow(1, 0, active)?, self.clamp)?;
        let shift = out.narrow(1, active, active)?;
        Ok((log_scale, shift))
    }

    /// Maps `x` `(b, c, ...)` to `y` of the same shape and returns `log|det J|`, `(b, ...)`.
    pub fn forward(&self, x: &Tensor, condition: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let passive = Self::passive_channels(self.channels);
        let active = Self::active_channels(self.channels);
        let x1 = x.narrow(1, 0, passive)?;
        let x2 = x.narrow(1, passive, active)?;

        let (log_scale, shift) = self.scale_shift(&x1, condition)?;
        let y2 = ((x2 * log_scale.exp()?)? + shift)?;
        let log_det = log_scale.sum(1)?;
        Ok((Tensor::cat(&[&x1, &y2], 1)?, log_det))
    }

    /// Maps `y` back to `x`: `x2 = (y2 - t) * exp(-s)`, with `(s, t)` computed from the
    /// unchanged `y1 = x1`.
    pub fn inverse(&self, y: &Tensor, condition: Option<&Tensor>) -> Result<Tensor> {
        let passive = Self::passive_channels(self.channels);
        let active = Self::active_channels(self.channels);
        let y1 = y.narrow(1, 0, passive)?;
        let y2 = y.narrow(1, passive, active)?;

        let (log_scale, shift) = self.scale_shift(&y1, condition)?;
        let x2 = ((y2 - shift)? * log_scale.neg()?.exp()?)?;
        Tensor::cat(&[&y1, &x2], 1)
    }
}

/// A fixed permutation of the channels (dimension 1), so that every channel is transformed by
/// some block of a stack. Its log-determinant is 0.
#[derive(Clone)]
pub struct ChannelPermutation {
    order: Vec<u32>,
    forward: Tensor,
    inverse: Tensor,
}

impl ChannelPermutation {
    /// Builds the permutation whose output channel `i` is input channel `order[i]`.
    ///
    /// # Panics
    /// When `order` is not a permutation of `0..order.len()`.
    pub fn new(order: Vec<u32>, device: &Device) -> Result<Self> {
        let mut inverse = vec![u32::MAX; order.len()];
        for (position, &channel) in order.iter().enumerate() {
            assert!(
                (channel as usize) < order.len() && inverse[channel as usize] == u32::MAX,
                "channel order {order:?} is not a permutation"
            );
            inverse[channel as usize] = position as u32;
        }
        Ok(Self {
            forward: Tensor::new(order.as_slice(), device)?,
            inverse: Tensor::new(inverse.as_slice(), device)?,
            order,
        })
    }

    /// Draws a uniformly random permutation of `channels` channels from `rng`.
    pub fn random(channels: usize, rng: &mut ChaCha8Rng, device: &Device) -> Result<Self> {
        let mut order: Vec<u32> = (0..channels as u32).collect();
        order.shuffle(rng);
        Self::new(order, device)
    }

    /// Output channel `i` is input channel `order()[i]`.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.index_select(&self.forward, 1)
    }

    pub fn invert(&self, y: &Tensor) -> Result<Tensor> {
        y.index_select(&self.inverse, 1)
    }
}

/// Coupling blocks, each followed by its channel permutation.
pub struct CouplingStack<S> {
    blocks: Vec<(AffineCoupling<S>, ChannelPermutation)>,
}

impl<S: Subnet> CouplingStack<S> {
    /// Stacks `subnets.len()` blocks over `channels` channels. The permutation after each block
    /// is drawn from a generator seeded with `permutation_seed`, so it is the same for the same
    /// seed whether the model is new or loaded.
    pub fn new(
        subnets: Vec<S>,
        channels: usize,
        clamp: f64,
        permutation_seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut rng = ChaCha8Rng::seed_from_u64(permutation_seed);
        let blocks = subnets
            .into_iter()
            .map(|subnet| {
                let permutation = ChannelPermutation::random(channels, &mut rng, device)?;
                Ok((AffineCoupling::new(subnet, channels, clamp), permutation))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { blocks })
    }

    /// Returns a copy whose subnets share parameters with these but record no gradient graph,
    /// as [`Subnet::detached`] describes.
    pub fn detached(&self) -> Self {
        let blocks = self
            .blocks
            .iter()
            .map(|(coupling, permutation)| {
                let coupling = AffineCoupling {
                    subnet: coupling.subnet.detached(),
                    channels: coupling.channels,
                    clamp: coupling.clamp,
                };
                (coupling, permutation.clone())
            })
            .collect();
        Self { blocks }
    }

    /// Returns each block's subnet, the permutation after it, and its log-scale bound.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (&S, &ChannelPermutation, f64)> {
        self.blocks
            .iter()
            .map(|(coupling, permutation)| (&coupling.subnet, permutation, coupling.clamp))
    }

    /// Number of coupling blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Maps `x` `(b, c, ...)` to `z` of the same shape and returns the summed `log|det J|`,
    /// `(b, ...)`.
    pub fn forward(&self, x: &Tensor, condition: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        let mut z = x.clone();
        let mut log_det: Option<Tensor> = None;
        for (coupling, permutation) in &self.blocks {
            let (y, block_log_det) = coupling.forward(&z, condition)?;
            z = permutation.apply(&y)?;
            log_det = Some(match log_det {
                Some(sum) => (sum + block_log_det)?,
                None => block_log_det,
            });
        }
        let log_det = match log_det {
            Some(sum) => sum,
            None => x.sum(1)?.zeros_like()?,
        };
        Ok((z, log_det))
    }

    /// Maps `z` back to `x`, undoing the blocks in reverse order.
    pub fn inverse(&self, z: &Tensor, condition: Option<&Tensor>) -> Result<Tensor> {
        let mut x = z.clone();
        for (coupling, permutation) in self.blocks.iter().rev() {
            let y = permutation.invert(&x)?;
            x = coupling.inverse(&y, condition)?;
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConvSubnet, FcSubnet};
    use candle_core::DType;
    use rand::Rng;

    fn random(shape: &[usize], scale: f64, rng: &mut ChaCha8Rng) -> Tensor {
        let count: usize = shape.iter().product();
        let values: Vec<f64> = (0..count).map(|_| rng.gen_range(-scale..scale)).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// Builds a stack of `kernels.len()` blocks over `channels` channels in `dtype`, with random
    /// subnet weights uniform in `[-scale, scale)` whose outputs are far from zero, so every
    /// block scales and shifts.
    fn stack(
        channels: usize,
        kernels: &[usize],
        seed: u64,
        dtype: DType,
        scale: f64,
    ) -> CouplingStack<ConvSubnet> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c_in = AffineCoupling::<ConvSubnet>::passive_channels(channels);
        let c_out = 2 * AffineCoupling::<ConvSubnet>::active_channels(channels);
        let hidden = 4;
        let mut param = |shape: &[usize]| random(shape, scale, &mut rng).to_dtype(dtype).unwrap();
        let subnets = kernels
            .iter()
            .map(|&k| {
                ConvSubnet::from_tensors(
                    param(&[hidden, c_in, k, k]),
                    param(&[hidden]),
                    param(&[c_out, hidden, k, k]),
                    param(&[c_out]),
                )
            })
            .collect();
        CouplingStack::new(subnets, channels, 2.0, seed, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// `log|det m|` of a square row-major matrix by Gaussian elimination with partial pivoting.
    fn log_abs_det(mut m: Vec<f64>, n: usize) -> f64 {
        let mut sum = 0.0;
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&a, &b| m[a * n + col].abs().total_cmp(&m[b * n + col].abs()))
                .unwrap();
            for k in 0..n {
                m.swap(col * n + k, pivot * n + k);
            }
            let p = m[col * n + col];
            sum += p.abs().ln();
            for row in col + 1..n {
                let factor = m[row * n + col] / p;
                for k in col..n {
                    m[row * n + k] -= factor * m[col * n + k];
                }
            }
        }
        sum
    }

    #[test]
    fn stack_inverse_recovers_input() {
        // f32, the dtype the detectors run in, with weights that keep |z| near the range a
        // trained flow produces (far larger |z| leave fewer significant bits after the point).
        let flow = stack(5, &[3, 1, 3, 1], 11, DType::F32, 0.3);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x = random(&[2, 5, 4, 6], 2.0, &mut rng)
            .to_dtype(DType::F32)
            .unwrap();
        assert_eq!(flow.len(), 4);

        let (z, log_det) = flow.forward(&x, None).unwrap();
        assert_eq!(z.dims(), x.dims());
        assert_eq!(log_det.dims(), &[2, 4, 6]);
        // The transform is far from the identity, so recovering x is not trivial.
        assert!(max_abs_diff(&z, &x) > 0.5);
        let largest = z
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(largest < 20.0, "max |z| = {largest}");
        let back = flow.inverse(&z, None).unwrap();
        let error = max_abs_diff(&back, &x);
        assert!(error < 1e-4, "inverse error {error}");
    }

    #[test]
    fn log_det_matches_numerical_jacobian() {
        // 3 channels on a 2x2 grid: the Jacobian is 12x12, and 3x3 kernels mix positions.
        let flow = stack(3, &[3, 1, 3], 5, DType::F64, 0.8);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let shape = [1, 3, 2, 2];
        let n = 12;
        let x = random(&shape, 1.5, &mut rng);
        let (_, log_det) = flow.forward(&x, None).unwrap();
        let analytic = log_det.sum_all().unwrap().to_scalar::<f64>().unwrap();

        let base: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
        let output = |values: &[f64]| -> Vec<f64> {
            let input = Tensor::from_vec(values.to_vec(), &shape, &Device::Cpu).unwrap();
            let (z, _) = flow.forward(&input, None).unwrap();
            z.flatten_all().unwrap().to_vec1().unwrap()
        };
        let step = 1e-6;
        let mut jacobian = vec![0.0; n * n];
        for i in 0..n {
            let mut plus = base.clone();
            let mut minus = base.clone();
            plus[i] += step;
            minus[i] -= step;
            let (up, down) = (output(&plus), output(&minus));
            for o in 0..n {
                jacobian[o * n + i] = (up[o] - down[o]) / (2.0 * step);
            }
        }
        let numerical = log_abs_det(jacobian, n);

        assert!(
            analytic.abs() > 0.5,
            "log-det {analytic} is too close to 0 to test"
        );
        assert!(
            (analytic - numerical).abs() < 1e-6,
            "analytic {analytic}, numerical {numerical}"
        );
    }

    /// Builds a stack of `blocks` fully connected blocks over `channels` channels in f64 that
    /// take a condition of `condition` values, with random weights in `[-scale, scale)`.
    fn conditional_stack(
        channels: usize,
        condition: usize,
        blocks: usize,
        seed: u64,
        scale: f64,
    ) -> CouplingStack<FcSubnet> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c_in = AffineCoupling::<FcSubnet>::passive_channels(channels) + condition;
        let c_out = 2 * AffineCoupling::<FcSubnet>::active_channels(channels);
        let hidden = 6;
        let mut param = |shape: &[usize]| random(shape, scale, &mut rng);
        let subnets = (0..blocks)
            .map(|_| {
                FcSubnet::from_tensors(
                    param(&[hidden, c_in]),
                    param(&[hidden]),
                    param(&[c_out, hidden]),
                    param(&[c_out]),
                )
            })
            .collect();
        CouplingStack::new(subnets, channels, 1.9, seed, &Device::Cpu).unwrap()
    }

    #[test]
    fn conditional_stack_inverts() {
        let flow = conditional_stack(5, 4, 4, 21, 0.6);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = random(&[7, 5], 2.0, &mut rng);
        let condition = random(&[7, 4], 1.0, &mut rng);

        let (z, log_det) = flow.forward(&x, Some(&condition)).unwrap();
        assert_eq!(z.dims(), &[7, 5]);
        assert_eq!(log_det.dims(), &[7]);
        assert!(max_abs_diff(&z, &x) > 0.5);
        let back = flow.inverse(&z, Some(&condition)).unwrap();
        let error = max_abs_diff(&back, &x);
        assert!(error < 1e-10, "inverse error {error}");

        // The condition changes the transform, so inverting with another one fails.
        let other = random(&[7, 4], 1.0, &mut rng);
        let (z_other, _) = flow.forward(&x, Some(&other)).unwrap();
        assert!(max_abs_diff(&z_other, &z) > 1e-2);
    }

    #[test]
    fn conditional_log_det_matches_jacobian() {
        // 3 channels, condition of 2 values, 3 vectors: the Jacobian over all inputs is 9x9 and
        // block diagonal, so its log-determinant is the sum of the per-vector ones.
        let flow = conditional_stack(3, 2, 3, 6, 0.8);
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let shape = [3, 3];
        let n = 9;
        let x = random(&shape, 1.5, &mut rng);
        let condition = random(&[3, 2], 1.0, &mut rng);
        let (_, log_det) = flow.forward(&x, Some(&condition)).unwrap();
        let analytic = log_det.sum_all().unwrap().to_scalar::<f64>().unwrap();

        let base: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
        let output = |values: &[f64]| -> Vec<f64> {
            let input = Tensor::from_vec(values.to_vec(), &shape, &Device::Cpu).unwrap();
            let (z, _) = flow.forward(&input, Some(&condition)).unwrap();
            z.flatten_all().unwrap().to_vec1().unwrap()
        };
        let step = 1e-6;
        let mut jacobian = vec![0.0; n * n];
        for i in 0..n {
            let mut plus = base.clone();
            let mut minus = base.clone();
            plus[i] += step;
            minus[i] -= step;
            let (up, down) = (output(&plus), output(&minus));
            for o in 0..n {
                jacobian[o * n + i] = (up[o] - down[o]) / (2.0 * step);
            }
        }
        let numerical = log_abs_det(jacobian, n);

        assert!(
            analytic.abs() > 0.5,
            "log-det {analytic} is too close to 0 to test"
        );
        assert!(
            (analytic - numerical).abs() < 1e-6,
            "analytic {analytic}, numerical {numerical}"
        );
    }

    #[test]
    fn permutation_round_trips() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let permutation = ChannelPermutation::random(6, &mut rng, &Device::Cpu).unwrap();
        let mut sorted = permutation.order().to_vec();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4, 5]);
        let x = Tensor::arange(0f32, 12.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 6))
            .unwrap();
        let y = permutation.apply(&x).unwrap();
        let first: Vec<u32> = y.to_vec2::<f32>().unwrap()[0]
            .iter()
            .map(|&v| v as u32)
            .collect();
        assert_eq!(first, permutation.order());
        assert_eq!(
            permutation.invert(&y).unwrap().to_vec2::<f32>().unwrap(),
            x.to_vec2::<f32>().unwrap()
        );
    }

    #[test]
    fn soft_clamp_bounds_and_keeps_small_values() {
        let s = Tensor::new(&[-100f32, -0.01, 0.0, 0.01, 100.0], &Device::Cpu).unwrap();
        let clamped = soft_clamp(&s, 2.0).unwrap().to_vec1::<f32>().unwrap();
        assert!((clamped[0] + 2.0).abs() < 1e-6, "{clamped:?}");
        assert!((clamped[4] - 2.0).abs() < 1e-6, "{clamped:?}");
        assert!((clamped[1] + 0.01).abs() < 1e-6, "{clamped:?}");
        assert!((clamped[3] - 0.01).abs() < 1e-6, "{clamped:?}");
        assert_eq!(clamped[2], 0.0);
    }
}
