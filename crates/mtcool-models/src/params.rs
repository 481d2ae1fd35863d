//! Parameter creation with names that follow the module tree and a seeded initialisation.
//!
//! candle's CPU backend cannot be seeded, so every parameter is drawn here from the run's
//! ChaCha generator and stored as a [`Var`] in a [`VarMap`] (which also gives safetensors
//! checkpoints). Names come from the `pp` chain, e.g. `encoder.conv1.task0.weight`.
//!
//! Non-trainable state (BatchNorm running statistics) goes to a second store, the builder's
//! [`ParamBuilder::buffers`], under the same naming scheme: optimisers never see it, checkpoints
//! save it beside the parameters.

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
    buffers: VarMap,
    prefix: Vec<String>,
    device: Device,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl ParamBuilder {
    /// A builder storing into `vars`, drawing initial values from a generator seeded with `seed`.
    pub fn new(vars: VarMap, device: &Device, seed: u64) -> Self {
        Self {
            vars,
            buffers: VarMap::new(),
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

    /// The store of non-trainable state (running statistics) created so far.
    pub fn buffers(&self) -> &VarMap {
        &self.buffers
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
        let values = self.draw_uniform(name, shape.elem_count(), bound)?;
        self.insert(&self.vars, name, values, shape)
    }

    /// A non-trainable buffer of `shape` filled with `value`, stored in [`Self::buffers`]
    /// (draws nothing from the generator).
    pub fn buffer(&self, name: &str, shape: impl Into<Shape>, value: f32) -> Result<Var> {
        let shape = shape.into();
        let values = vec![value; shape.elem_count()];
        self.insert(&self.buffers, name, values, shape)
    }

    /// A trainable parameter of `shape` filled with `value` (draws nothing from the generator).
    pub fn constant(&self, name: &str, shape: impl Into<Shape>, value: f32) -> Result<Var> {
        let shape = shape.into();
        let values = vec![value; shape.elem_count()];
        self.insert(&self.vars, name, values, shape)
    }

    /// `count` values drawn from Uniform[−bound, bound] (`name` only labels errors).
    pub(crate) fn draw_uniform(&self, name: &str, count: usize, bound: f64) -> Result<Vec<f32>> {
        let dist = Uniform::new_inclusive(-bound as f32, bound as f32)
            .map_err(|e| candle_core::Error::Msg(format!("{}: {e}", self.path(name))))?;
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("parameter RNG poisoned".into()))?;
        Ok((0..count).map(|_| dist.sample(&mut *rng)).collect())
    }

    /// Stores `values` as the trainable parameter `name` of `shape`.
    pub(crate) fn parameter(&self, name: &str, values: Vec<f32>, shape: Shape) -> Result<Var> {
        self.insert(&self.vars, name, values, shape)
    }

    fn insert(&self, store: &VarMap, name: &str, values: Vec<f32>, shape: Shape) -> Result<Var> {
        let path = self.path(name);
        let var = Var::from_vec(values, shape, &self.device)?;
        let mut data = store
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
