//! Parameters live outside the tape.
//!
//! A [`ParamStore`] keeps every parameter's values and gradient in two flat `Vec<f64>`s
//! (one slice per parameter). Because the tape only *copies* a parameter in as a leaf
//! ([`crate::Tape::param`]) and writes gradients back with
//! [`crate::Tape::accumulate_param_grads`], the tape can be cleared and reused every step
//! while the parameters persist, and an optimiser can update all of them in one flat loop
//! ([`ParamStore::values_and_grads_mut`]).
//!
//! Names are looked up only at set-up ([`ParamStore::id`]); the hot path uses [`ParamId`]s.

use crate::error::{AdError, Result};
use crate::shape::Shape;
use ndarray::{ArrayBase, ArrayViewD, Data, Dimension, IxDyn};
use std::ops::Range;

/// Handle of a parameter in a [`ParamStore`] (its registration index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(pub(crate) u32);

impl ParamId {
    /// The registration index (0 for the first parameter added).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    shape: Shape,
    off: usize,
}

/// Named parameters and their gradients, stored flat.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    entries: Vec<Entry>,
    values: Vec<f64>,
    grads: Vec<f64>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a parameter with row-major `data`. Names must be unique.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        dims: &[usize],
        data: &[f64],
    ) -> Result<ParamId> {
        let name = name.into();
        let shape = Shape::new(dims)?;
        if data.len() != shape.numel() {
            return Err(AdError::DataLen {
                op: "ParamStore::add",
                len: data.len(),
                shape,
                need: shape.numel(),
            });
        }
        if self.entries.iter().any(|e| e.name == name) {
            return Err(AdError::DuplicateParam(name));
        }
        let off = self.values.len();
        self.values.extend_from_slice(data);
        self.grads.resize(self.values.len(), 0.0);
        self.entries.push(Entry { name, shape, off });
        Ok(ParamId(self.entries.len() as u32 - 1))
    }

    /// Register a parameter from an ndarray (any layout; copied in logical order).
    pub fn add_array<S, D>(
        &mut self,
        name: impl Into<String>,
        a: &ArrayBase<S, D>,
    ) -> Result<ParamId>
    where
        S: Data<Elem = f64>,
        D: Dimension,
    {
        let data: Vec<f64> = a.iter().copied().collect();
        self.add(name, a.shape(), &data)
    }

    /// The handle of a named parameter.
    pub fn id(&self, name: &str) -> Result<ParamId> {
        self.entries
            .iter()
            .position(|e| e.name == name)
            .map(|i| ParamId(i as u32))
            .ok_or_else(|| AdError::UnknownParam(name.to_string()))
    }

    fn entry(&self, id: ParamId) -> &Entry {
        &self.entries[id.index()]
    }

    /// Number of parameters (tensors).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no parameter is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of scalars over all parameters.
    pub fn num_scalars(&self) -> usize {
        self.values.len()
    }

    /// All handles, in registration order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        (0..self.entries.len() as u32).map(ParamId)
    }

    /// The parameter's name.
    pub fn name(&self, id: ParamId) -> &str {
        &self.entry(id).name
    }

    /// The parameter's shape.
    pub fn shape(&self, id: ParamId) -> Shape {
        self.entry(id).shape
    }

    /// Where the parameter sits in the flat [`values`](Self::values)/[`grads`](Self::grads).
    pub fn range(&self, id: ParamId) -> Range<usize> {
        let e = self.entry(id);
        e.off..e.off + e.shape.numel()
    }

    /// The parameter's values (row-major).
    pub fn value(&self, id: ParamId) -> &[f64] {
        &self.values[self.range(id)]
    }

    /// Mutable values (for initialisation, loading, optimisers, finite differences).
    pub fn value_mut(&mut self, id: ParamId) -> &mut [f64] {
        let r = self.range(id);
        &mut self.values[r]
    }

    /// The parameter's values as an ndarray view.
    pub fn view(&self, id: ParamId) -> ArrayViewD<'_, f64> {
        ArrayViewD::from_shape(IxDyn(self.shape(id).dims()), self.value(id))
            .expect("stored length matches shape")
    }

    /// The parameter's accumulated gradient.
    pub fn grad(&self, id: ParamId) -> &[f64] {
        &self.grads[self.range(id)]
    }

    /// Mutable gradient (for clipping or manual accumulation).
    pub fn grad_mut(&mut self, id: ParamId) -> &mut [f64] {
        let r = self.range(id);
        &mut self.grads[r]
    }

    /// All values, flat, in registration order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// All values, flat and mutable.
    pub fn values_mut(&mut self) -> &mut [f64] {
        &mut self.values
    }

    /// All gradients, flat.
    pub fn grads(&self) -> &[f64] {
        &self.grads
    }

    /// Values (mutable) and gradients together, for an optimiser's single flat loop.
    pub fn values_and_grads_mut(&mut self) -> (&mut [f64], &[f64]) {
        (&mut self.values, &self.grads)
    }

    /// Values and gradients (mutable) together, for a penalty that adds to every gradient
    /// a function of its value (a prior toward other weights).
    pub fn values_and_grads_of_penalty(&mut self) -> (&[f64], &mut [f64]) {
        (&self.values, &mut self.grads)
    }

    /// Adds another store's gradients to these (the same parameters: a copy of this store
    /// that a separate tape computed gradients into).
    pub fn add_grads(&mut self, other: &ParamStore) {
        assert_eq!(
            self.grads.len(),
            other.grads.len(),
            "gradients of a store with other parameters"
        );
        for (g, o) in self.grads.iter_mut().zip(&other.grads) {
            *g += o;
        }
    }

    /// Set every gradient to zero (gradients accumulate across backward passes otherwise).
    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_basics() {
        let mut s = ParamStore::new();
        let a = s.add("a", &[2, 2], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        let b = s.add_array("b", &ndarray::arr1(&[5.0, 6.0])).unwrap();
        assert_eq!(s.id("b").unwrap(), b);
        assert!(matches!(s.id("c"), Err(AdError::UnknownParam(_))));
        assert!(matches!(
            s.add("a", &[1], &[0.0]),
            Err(AdError::DuplicateParam(_))
        ));
        assert!(s.add("c", &[3], &[0.0]).is_err());
        assert_eq!(s.value(b), &[5.0, 6.0]);
        assert_eq!(s.view(a)[[1, 0]], 3.0);
        assert_eq!(s.num_scalars(), 6);
        s.grad_mut(a)[0] = 1.0;
        s.zero_grad();
        assert!(s.grads().iter().all(|&g| g == 0.0));
        assert_eq!(s.range(b), 4..6);
    }
}
