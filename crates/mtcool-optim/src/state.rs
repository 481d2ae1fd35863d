//! What a method remembers between steps, so a run can be saved after an epoch and resumed
//! from there with the same numbers as if it had never stopped: optimiser moments, learned
//! loss scales (tensors) and plain numbers such as FAMO's logits or DWA's loss history
//! (JSON values).

use std::collections::{BTreeMap, HashMap};

use candle_core::{Tensor, TensorId, Var};
use mtcool_models::MultiTaskModel;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{OptimError, Result};
use crate::optimizer::Optimizer;

/// The model's name of each of its variables (`heads.task1.bias`), by tensor id: optimiser
/// state is saved by name, since a model lists its parameters in no fixed order.
#[derive(Debug, Clone, Default)]
pub struct VarNames(HashMap<TensorId, String>);

impl VarNames {
    /// The names of `model`'s parameters.
    pub fn of(model: &dyn MultiTaskModel) -> Result<Self> {
        let data = model
            .vars()
            .data()
            .lock()
            .map_err(|_| state_error("the parameter store is poisoned".into()))?;
        Ok(Self(
            data.iter()
                .map(|(name, var)| (var.id(), name.clone()))
                .collect(),
        ))
    }

    /// The name of `var`, or `#i` (its position `i` in its optimiser) for a variable the model
    /// does not own (a method's learned loss scales).
    pub fn name(&self, var: &Var, i: usize) -> String {
        self.0
            .get(&var.id())
            .cloned()
            .unwrap_or_else(|| format!("#{i}"))
    }
}

/// A method's state between steps: named tensors and named JSON values. Nested parts are
/// prefixed with their owner (`optimiser.3.first`, `task1.optimiser.0.velocity`).
#[derive(Debug, Clone, Default)]
pub struct MethodState {
    tensors: BTreeMap<String, Tensor>,
    values: BTreeMap<String, serde_json::Value>,
}

fn state_error(problem: String) -> OptimError {
    OptimError::State { problem }
}

impl MethodState {
    /// A state from saved parts.
    pub fn from_parts(
        tensors: BTreeMap<String, Tensor>,
        values: BTreeMap<String, serde_json::Value>,
    ) -> Self {
        Self { tensors, values }
    }

    /// Its named tensors.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }

    /// Its named values.
    pub fn values(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.values
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty() && self.values.is_empty()
    }

    /// Keeps a copy of `tensor` under `name` (in storage of its own: a variable's later
    /// in-place updates do not reach it).
    pub fn put_tensor(&mut self, name: impl Into<String>, tensor: &Tensor) -> Result<()> {
        self.tensors.insert(name.into(), tensor.detach().copy()?);
        Ok(())
    }

    /// Keeps `value` under `name`.
    pub fn put<T: Serialize>(&mut self, name: impl Into<String>, value: &T) -> Result<()> {
        let name = name.into();
        let value = serde_json::to_value(value)
            .map_err(|e| state_error(format!("`{name}` cannot be saved: {e}")))?;
        self.values.insert(name, value);
        Ok(())
    }

    /// The tensor saved under `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| state_error(format!("tensor `{name}` is missing")))
    }

    /// The tensor saved under `name`, if any.
    pub fn maybe_tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// The value saved under `name`.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let value = self
            .values
            .get(name)
            .ok_or_else(|| state_error(format!("value `{name}` is missing")))?;
        serde_json::from_value(value.clone())
            .map_err(|e| state_error(format!("value `{name}` is unreadable: {e}")))
    }

    /// Adds every entry of `inner` under `prefix.`.
    pub fn nest(&mut self, prefix: &str, inner: MethodState) {
        for (name, tensor) in inner.tensors {
            self.tensors.insert(format!("{prefix}.{name}"), tensor);
        }
        for (name, value) in inner.values {
            self.values.insert(format!("{prefix}.{name}"), value);
        }
    }

    /// The entries under `prefix.`, with the prefix taken off.
    pub fn scope(&self, prefix: &str) -> MethodState {
        let head = format!("{prefix}.");
        let strip = |name: &String| name.strip_prefix(&head).map(str::to_string);
        Self {
            tensors: self
                .tensors
                .iter()
                .filter_map(|(n, t)| strip(n).map(|n| (n, t.clone())))
                .collect(),
            values: self
                .values
                .iter()
                .filter_map(|(n, v)| strip(n).map(|n| (n, v.clone())))
                .collect(),
        }
    }

    /// Keeps the values of `vars` as `0`, `1`, ... (a method's own learnable variables).
    pub fn put_vars(&mut self, vars: &[Var]) -> Result<()> {
        for (i, var) in vars.iter().enumerate() {
            self.put_tensor(i.to_string(), var.as_tensor())?;
        }
        Ok(())
    }

    /// Sets `vars` from the tensors [`MethodState::put_vars`] kept, checking their shapes.
    pub fn restore_vars(&self, vars: &[Var]) -> Result<()> {
        for (i, var) in vars.iter().enumerate() {
            let value = matching(self.tensor(&i.to_string())?, var, &i.to_string())?;
            var.set(&value)?;
        }
        Ok(())
    }
}

impl MethodState {
    /// The state of a method made of one optimiser, its own variables `vars` and a memory of
    /// plain values: `optimiser.*`, `vars.*` and `memory`.
    pub fn of_parts(
        names: &VarNames,
        optimiser: &Optimizer,
        vars: &[Var],
        memory: serde_json::Value,
    ) -> Result<MethodState> {
        let mut state = MethodState::default();
        state.nest("optimiser", optimiser.state(names)?);
        let mut own = MethodState::default();
        own.put_vars(vars)?;
        state.nest("vars", own);
        state.put("memory", &memory)?;
        Ok(state)
    }

    /// Restores what [`MethodState::of_parts`] saved into `optimiser` and `vars`, and gives
    /// back the memory.
    pub fn restore_parts(
        &self,
        names: &VarNames,
        optimiser: &mut Optimizer,
        vars: &[Var],
    ) -> Result<serde_json::Value> {
        optimiser.restore(names, &self.scope("optimiser"))?;
        self.scope("vars").restore_vars(vars)?;
        self.get("memory")
    }
}

/// A method's memory of plain values as JSON.
pub(crate) fn to_memory<T: Serialize>(memory: &T) -> Result<serde_json::Value> {
    serde_json::to_value(memory).map_err(|e| state_error(format!("memory cannot be saved: {e}")))
}

/// A method's memory back from JSON.
pub(crate) fn from_memory<T: DeserializeOwned>(memory: &serde_json::Value) -> Result<T> {
    serde_json::from_value(memory.clone())
        .map_err(|e| state_error(format!("memory is unreadable: {e}")))
}

/// `saved` on `var`'s device and dtype, if it has `var`'s shape.
pub(crate) fn matching(saved: &Tensor, var: &Var, name: &str) -> Result<Tensor> {
    if saved.dims() != var.dims() {
        return Err(state_error(format!(
            "`{name}` has shape {:?} in the saved state but {:?} here",
            saved.dims(),
            var.dims()
        )));
    }
    Ok(saved.to_device(var.device())?.to_dtype(var.dtype())?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::Device;

    #[test]
    fn nested_entries_come_back_under_their_scope() {
        let mut inner = MethodState::default();
        inner.put("steps", &3usize).unwrap();
        inner
            .put_tensor("m", &Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap())
            .unwrap();
        let mut outer = MethodState::default();
        outer.nest("task1", inner);
        assert!(outer.tensor("task1.m").is_ok());
        let back = outer.scope("task1");
        assert_eq!(back.get::<usize>("steps").unwrap(), 3);
        assert!(outer.scope("task0").is_empty());
    }

    #[test]
    fn vars_are_restored_and_shapes_checked() {
        let a = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let mut state = MethodState::default();
        state.put_vars(std::slice::from_ref(&a)).unwrap();
        let b = Var::new(&[0f32, 0.0], &Device::Cpu).unwrap();
        state.restore_vars(std::slice::from_ref(&b)).unwrap();
        assert_eq!(b.to_vec1::<f32>().unwrap(), vec![1.0, 2.0]);
        let wrong = Var::new(&[0f32, 0.0, 0.0], &Device::Cpu).unwrap();
        let err = state.restore_vars(&[wrong]).unwrap_err().to_string();
        assert!(
            err.contains("shape [2] in the saved state but [3]"),
            "{err}"
        );
        let err = MethodState::default().get::<f64>("x").unwrap_err();
        assert!(err.to_string().contains("`x` is missing"), "{err}");
    }
}
