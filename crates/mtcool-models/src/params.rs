//! Parameter creation with names that follow the module tree and a seeded initialisation.
//!
//! candle's CPU backend cannot be seeded, so every parameter is drawn here from the run's
//! ChaCha generator and stored as a [`Var`] in a [`VarMap`] (which also gives safetensors
//! checkpoints). Names come from the `pp` chain, e.g. `encoder.conv1.task0.weight`.

use std::sync::{Arc, Mutex};

use candle_core::{Device, Result, Shape, Var};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

/// Creates named, seeded parameters under a prefix (the counterpart of candle-nn's
/// `VarBuilder`, but with a reproducible initialisation).
#[derive(Clone)]
pub struct ParamBuilder {
    vars: VarMap,
    prefix: Vec<String>,
    device: Device,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl ParamBuilder {
    /// A builder storing into `vars`, drawing initial values from a generator seeded with `seed`.
    pub fn new(vars: VarMap, device: &Device, seed: u64) -> Self {
        Self {
            vars,
            prefix: Vec::new(),
            device: device.clone(),
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))),
        }
    }

    /// A builder for the sub-module `name` (appends `name.` to every parameter name).
    pub fn pp(&self, name: impl ToString) -> Self {
        let mut sub = self.clone();
        sub.prefix.push(name.to_string());
        sub
    }

    /// The device parameters are created on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The store holding every parameter created so far.
    pub fn vars(&self) -> &VarMap {
        &self.vars
    }

    fn path(&self, name: &str) -> String {
        let mut parts = self.prefix.clone();
        parts.push(name.to_string());
        parts.join(".")
    }

    /// A parameter of `shape` drawn element-wise from Uniform[−bound, bound] (PyTorch's default
    /// initialisation of convolutions and linear layers uses bound = 1/√fan_in).
    pub fn uniform(&self, name: &str, shape: impl Into<Shape>, bound: f64) -> Result<Var> {
        let shape = shape.into();
        let path = self.path(name);
        let values: Vec<f32> = {
            let dist = Uniform::new_inclusive(-bound as f32, bound as f32)
                .map_err(|e| candle_core::Error::Msg(format!("{path}: {e}")))?;
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| candle_core::Error::Msg("parameter RNG poisoned".into()))?;
            (0..shape.elem_count())
                .map(|_| dist.sample(&mut *rng))
                .collect()
        };
        let var = Var::from_vec(values, shape, &self.device)?;
        let mut data = self
            .vars
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("parameter store poisoned".into()))?;
        if data.contains_key(&path) {
            candle_core::bail!("parameter `{path}` created twice");
        }
        data.insert(path, var.clone());
        Ok(var)
    }
}

/// Total number of scalar parameters in `vars`.
pub fn count(vars: &[Var]) -> usize {
    vars.iter().map(|v| v.elem_count()).sum()
}
