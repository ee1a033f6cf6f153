//! HDF5 writing helpers (hdf5-metno on the system libhdf5).
//!
//! Files are created under a temporary name and renamed into place ([`create_atomically`])
//! so that an interrupted run never leaves a truncated `.h5` that looks complete. Strings
//! are variable-length UTF-8 (readable from h5py as `str` after `.decode()`/`asstr()`).

use crate::errors::{Context, Result};
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Group, H5Type, Location};
use hdf5_metno as hdf5;
use ndarray::{ArrayView, Dimension};
use std::path::Path;
use std::str::FromStr;

/// Creates `path` through a temporary file: `fill` writes the content, the file is closed,
/// then renamed into place. The parent folder is created if needed.
pub fn create_atomically(path: &Path, fill: impl FnOnce(&hdf5::File) -> Result<()>) -> Result<()> {
    create_with(path, crate::output::Commit::Replace, fill)
}

/// [`create_atomically`] with the given way of taking its place.
pub fn create_with(
    path: &Path,
    commit: crate::output::Commit<'_>,
    fill: impl FnOnce(&hdf5::File) -> Result<()>,
) -> Result<()> {
    crate::output::write_with(path, commit, |tmp| {
        let file = hdf5::File::create(tmp)
            .with_context(|| format!("cannot create HDF5 file '{}'", tmp.display()))?;
        fill(&file).with_context(|| format!("while writing '{}'", tmp.display()))?;
        // Close (flush) before the rename makes the file visible.
        file.close()
            .with_context(|| format!("cannot close HDF5 file '{}'", tmp.display()))
    })
}

fn unicode(value: &str) -> Result<VarLenUnicode> {
    // Only an interior NUL byte can make this fail.
    VarLenUnicode::from_str(value).map_err(|e| crate::failed!("cannot store string {value:?}: {e}"))
}

/// A scalar UTF-8 string attribute.
pub fn attr_str(loc: &Location, name: &str, value: &str) -> Result<()> {
    let value = unicode(value)?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .with_context(|| format!("cannot write attribute '{name}'"))
}

/// A scalar numeric attribute.
pub fn attr_scalar<T: H5Type>(loc: &Location, name: &str, value: T) -> Result<()> {
    loc.new_attr::<T>()
        .create(name)
        .and_then(|a| a.write_scalar(&value))
        .with_context(|| format!("cannot write attribute '{name}'"))
}

/// A numeric dataset from an ndarray view (any rank, zero-length axes allowed), with an
/// optional `units` attribute.
pub fn dataset<'a, T, D, A>(
    group: &Group,
    name: &str,
    data: A,
    units: Option<&str>,
) -> Result<Dataset>
where
    T: H5Type + 'a,
    D: Dimension,
    A: Into<ArrayView<'a, T, D>>,
{
    let view: ArrayView<'a, T, D> = data.into();
    let ds = group
        .new_dataset::<T>()
        .shape(view.shape())
        .create(name)
        .with_context(|| format!("cannot create dataset '{name}'"))?;
    if !view.is_empty() {
        ds.write(&view)
            .with_context(|| format!("cannot write dataset '{name}'"))?;
    }
    if let Some(units) = units {
        attr_str(&ds, "units", units)?;
    }
    Ok(ds)
}

/// A 1-D dataset of UTF-8 strings.
pub fn string_dataset(group: &Group, name: &str, values: &[String]) -> Result<Dataset> {
    let data = values
        .iter()
        .map(|v| unicode(v))
        .collect::<Result<Vec<_>>>()?;
    dataset(group, name, data.as_slice(), None)
}

/// Reads a 1-D dataset of UTF-8 strings.
/// The most elements a dataset may hold to be read (2 GiB of f64): a damaged or hostile
/// file that declares more is refused before anything is allocated for it.
pub const MAX_DATASET_ELEMENTS: usize = 1 << 28;

/// Opens a dataset to read it, refusing one larger than [`MAX_DATASET_ELEMENTS`].
pub fn open_dataset(group: &Group, name: &str) -> hdf5::Result<Dataset> {
    let d = group.dataset(name)?;
    if d.size() > MAX_DATASET_ELEMENTS {
        return Err(format!(
            "{} elements, more than the most that is read, {MAX_DATASET_ELEMENTS}",
            d.size()
        )
        .into());
    }
    Ok(d)
}

pub fn read_strings(group: &Group, name: &str) -> Result<Vec<String>> {
    let values: Vec<VarLenUnicode> = group
        .dataset(name)
        .and_then(|d| d.read_raw::<VarLenUnicode>())
        .with_context(|| format!("cannot read string dataset '{name}'"))?;
    Ok(values.into_iter().map(|v| v.as_str().to_string()).collect())
}
