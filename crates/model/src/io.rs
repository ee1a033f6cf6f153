//! Parameters to and from a plain serde struct, for checkpoints and run files.
//!
//! The round trip through [`SavedParams`] is bit-exact (values are copied, never
//! re-computed). Whether it stays bit-exact on disk depends on the format: binary formats
//! (HDF5, bincode) are; a JSON writer must print shortest round-trip decimals and its
//! reader parse them correctly (serde_json needs its `float_roundtrip` feature for that).

use crate::error::{ModelError, Result};
use ionode_autodiff::ParamStore;
use serde::{Deserialize, Serialize};

/// Every parameter of a store: names, shapes and row-major values, in registration order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedParams {
    /// Parameter names.
    pub names: Vec<String>,
    /// Their shapes.
    pub shapes: Vec<Vec<usize>>,
    /// Their values, row-major.
    pub values: Vec<Vec<f64>>,
}

impl SavedParams {
    /// Copy every parameter out of `store`.
    pub fn from_store(store: &ParamStore) -> SavedParams {
        let mut p = SavedParams {
            names: Vec::with_capacity(store.len()),
            shapes: Vec::with_capacity(store.len()),
            values: Vec::with_capacity(store.len()),
        };
        for id in store.ids() {
            p.names.push(store.name(id).to_string());
            p.shapes.push(store.shape(id).dims().to_vec());
            p.values.push(store.value(id).to_vec());
        }
        p
    }

    /// A new store holding exactly these parameters.
    pub fn to_store(&self) -> Result<ParamStore> {
        self.check_lengths()?;
        let mut s = ParamStore::new();
        for ((n, sh), v) in self.names.iter().zip(&self.shapes).zip(&self.values) {
            s.add(n.clone(), sh, v)?;
        }
        Ok(s)
    }

    /// Overwrite the values of `store` (e.g. one a [`crate::Model`] just registered) with
    /// these, checking that names and shapes match one for one.
    pub fn load_into(&self, store: &mut ParamStore) -> Result<()> {
        self.check_lengths()?;
        if self.names.len() != store.len() {
            return Err(ModelError::Params(format!(
                "{} saved parameters, the model has {}",
                self.names.len(),
                store.len()
            )));
        }
        let ids: Vec<_> = store.ids().collect();
        for (i, id) in ids.into_iter().enumerate() {
            if store.name(id) != self.names[i] || store.shape(id).dims() != self.shapes[i] {
                return Err(ModelError::Params(format!(
                    "parameter {i}: saved `{}` {:?}, the model has `{}` {:?}",
                    self.names[i],
                    self.shapes[i],
                    store.name(id),
                    store.shape(id).dims()
                )));
            }
            store.value_mut(id).copy_from_slice(&self.values[i]);
        }
        Ok(())
    }

    fn check_lengths(&self) -> Result<()> {
        if self.shapes.len() != self.names.len() || self.values.len() != self.names.len() {
            return Err(ModelError::Params(
                "names, shapes and values differ in length".into(),
            ));
        }
        for (i, (sh, v)) in self.shapes.iter().zip(&self.values).enumerate() {
            if sh.iter().product::<usize>() != v.len() {
                return Err(ModelError::Params(format!(
                    "parameter {} has shape {sh:?} but {} values",
                    self.names[i],
                    v.len()
                )));
            }
        }
        Ok(())
    }
}
