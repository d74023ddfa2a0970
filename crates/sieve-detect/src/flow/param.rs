//! Creation of a flow's trainable parameters: drawn from a seeded generator for a new model, or
//! taken from a saved model with their names and shapes checked. Either way every parameter is
//! registered as a variable in one `VarMap`, which the optimiser trains and the model file
//! stores.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::FlowError;

/// Initial values of a new parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamInit {
    /// Uniform in `[-bound, bound]`.
    Uniform { bound: f64 },
    /// All zeros.
    Zeros,
}

impl ParamInit {
    /// PyTorch's default for convolution and linear weights and biases: uniform in
    /// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`.
    pub fn fan_in(fan_in: usize) -> Self {
        Self::Uniform {
            bound: 1.0 / (fan_in.max(1) as f64).sqrt(),
        }
    }
}

enum Origin {
    Seeded(Box<ChaCha8Rng>),
    Saved(HashMap<String, Tensor>),
}

/// Source of named parameters, all f32 on one device, each registered in [`Self::varmap`].
///
/// NOTE: candle's own CPU random generator cannot be seeded, so new parameters are drawn here
/// from ChaCha8 and then moved to the device.
pub struct ParamSource {
    origin: Origin,
    varmap: VarMap,
    device: Device,
}

impl ParamSource {
    /// Draws new parameters from a generator seeded with `seed`, in the order they are requested.
    pub fn seeded(seed: u64, device: &Device) -> Self {
        Self {
            origin: Origin::Seeded(Box::new(ChaCha8Rng::seed_from_u64(seed))),
            varmap: VarMap::new(),
            device: device.clone(),
        }
    }

    /// Takes parameters from `tensors`, as read from a model file.
    pub fn saved(tensors: HashMap<String, Tensor>, device: &Device) -> Self {
        Self {
            origin: Origin::Saved(tensors),
            varmap: VarMap::new(),
            device: device.clone(),
        }
    }

    /// Returns parameter `name` of shape `shape`, registered as a variable. A new parameter takes
    /// values from `init`. A saved one must exist with exactly that shape in f32.
    pub fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        init: ParamInit,
    ) -> Result<Tensor, FlowError> {
        let tensor = match &mut self.origin {
            Origin::Seeded(rng) => {
                let count: usize = shape.iter().product();
                let values: Vec<f32> = match init {
                    ParamInit::Uniform { bound } => (0..count)
                        .map(|_| rng.gen_range(-bound..=bound) as f32)
                        .collect(),
                    ParamInit::Zeros => vec![0.0; count],
                };
                Tensor::from_vec(values, shape, &Device::Cpu)?
            }
            Origin::Saved(tensors) => {
                let tensor = tensors
                    .remove(name)
                    .ok_or_else(|| FlowError::MissingParameter { name: name.into() })?;
                if tensor.dims() != shape || tensor.dtype() != DType::F32 {
                    return Err(FlowError::ParameterShape {
                        name: name.into(),
                        expected: shape.to_vec(),
                        found: tensor.dims().to_vec(),
                        dtype: tensor.dtype(),
                    });
                }
                tensor
            }
        };

        let var = Var::from_tensor(&tensor.to_device(&self.device)?)?;
        let value = var.as_tensor().clone();
        self.varmap
            .data()
            .lock()
            .expect("no thread panicked while holding the VarMap lock")
            .insert(name.to_string(), var);
        Ok(value)
    }

    /// Returns the variables of every parameter requested, and fails when a saved model contains
    /// parameters that were never requested.
    pub fn finish(self) -> Result<VarMap, FlowError> {
        if let Origin::Saved(rest) = self.origin {
            if !rest.is_empty() {
                let mut names: Vec<String> = rest.into_keys().collect();
                names.sort();
                return Err(FlowError::UnexpectedParameters { names });
            }
        }
        Ok(self.varmap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_values_repeat_and_stay_in_bounds() {
        let draw = |seed| {
            let mut source = ParamSource::seeded(seed, &Device::Cpu);
            let tensor = source
                .get("w", &[3, 4], ParamInit::Uniform { bound: 0.5 })
                .unwrap();
            tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let first = draw(1);
        assert_eq!(first, draw(1));
        assert_ne!(first, draw(2));
        assert!(first.iter().all(|v| v.abs() <= 0.5), "{first:?}");
    }

    #[test]
    fn saved_parameters_are_checked() {
        let tensors = HashMap::from([
            (
                "a".to_string(),
                Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
            ),
            (
                "b".to_string(),
                Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
            ),
        ]);
        let mut source = ParamSource::saved(tensors.clone(), &Device::Cpu);
        assert!(matches!(
            source.get("a", &[4], ParamInit::Zeros),
            Err(FlowError::ParameterShape { .. })
        ));
        assert!(matches!(
            source.get("c", &[3], ParamInit::Zeros),
            Err(FlowError::MissingParameter { .. })
        ));

        let mut source = ParamSource::saved(tensors, &Device::Cpu);
        source.get("a", &[2, 2], ParamInit::Zeros).unwrap();
        let error = source.finish().err().expect("b was never requested");
        assert!(matches!(error, FlowError::UnexpectedParameters { names } if names == ["b"]));
    }
}
