//! HDF5 helpers (hdf5-metno on the system libhdf5).
//!
//! Files are created under a temporary name and renamed into place ([`create_atomically`])
//! so that an interrupted run never leaves a truncated `.h5` that looks complete. Strings
//! are variable-length UTF-8 (readable from h5py as `str` after `.decode()`/`asstr()`).
//!
//! Every file is opened and created without HDF5's file locking ([`open`], [`create`]).
//! Its lock guards a file that one process writes while another reads it; ionode never
//! does that (a file is written under a temporary name, and only the finished file is
//! renamed into place), so the lock adds no safety. It does two kinds of harm: on NFS and
//! Lustre mounts without lock support, common on clusters, every open fails; and libhdf5
//! opens files without close-on-exec, so a child process started while a file is open
//! (`git`, `sbatch`, a browser) inherits the lock and keeps it after the file is closed, and
//! opening the file again fails with errno 11 while that child lives. libhdf5 lets the
//! environment variable `HDF5_USE_FILE_LOCKING` override this either way.

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
        let file =
            create(tmp).with_context(|| format!("cannot create HDF5 file '{}'", tmp.display()))?;
        fill(&file).with_context(|| format!("while writing '{}'", tmp.display()))?;
        // Close (flush) before the rename makes the file visible.
        file.close()
            .with_context(|| format!("cannot close HDF5 file '{}'", tmp.display()))
    })
}

/// Opens an HDF5 file for reading, without file locking (see the module's doc).
pub fn open(path: &Path) -> hdf5::Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fapl(|p| p.file_locking(false))
        .open(path)
}

/// Creates (truncates) an HDF5 file for writing, without file locking (see the module's
/// doc).
pub fn create(path: &Path) -> hdf5::Result<hdf5::File> {
    hdf5::File::with_options()
        .with_fapl(|p| p.file_locking(false))
        .create(path)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Locking is a property of opening, not of the file: a file comes out the same bytes
    /// with it or without it, so files written before this change read and compare as ever.
    #[test]
    fn a_file_written_without_locking_has_the_bytes_of_one_written_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let fill = |file: &hdf5::File| {
            attr_str(file, "run_id", "r1").unwrap();
            let g = file.create_group("metrics").unwrap();
            dataset(
                &g,
                "mae",
                &ndarray::array![[0.5f64, 0.25], [1.0, 2.0]],
                Some("1"),
            )
            .unwrap();
            string_dataset(&g, "ions", &["Li+".to_string(), "Cl-".to_string()]).unwrap();
        };
        let (ours, theirs) = (dir.path().join("a.h5"), dir.path().join("b.h5"));
        let file = create(&ours).unwrap();
        fill(&file);
        file.close().unwrap();
        let file = hdf5::File::create(&theirs).unwrap();
        fill(&file);
        file.close().unwrap();
        let bytes = |p: &Path| std::fs::read(p).unwrap();
        assert!(bytes(&ours).len() > 1000);
        assert_eq!(bytes(&ours), bytes(&theirs));
    }

    /// The harm the module's doc describes, and that [`open`] avoids: a child started
    /// while a file is open keeps HDF5's lock after the file is closed.
    #[test]
    fn a_child_holding_an_inherited_descriptor_does_not_block_opening_the_file() {
        if std::env::var_os("HDF5_USE_FILE_LOCKING").is_some() {
            eprintln!("skipped: HDF5_USE_FILE_LOCKING decides the locking, not the code");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.h5");
        let locked = dir.path().join("locked.h5");
        let (ours, theirs) = (create(&path).unwrap(), hdf5::File::create(&locked).unwrap());
        attr_scalar(&ours, "n", 1u64).unwrap();
        attr_scalar(&theirs, "n", 1u64).unwrap();
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep runs");
        drop((ours, theirs));
        let reopened = open(&path);
        // libhdf5's default: the child's inherited descriptor keeps the file locked.
        let default = hdf5::File::open(&locked);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(reopened.is_ok(), "{:?}", reopened.err());
        let e = default
            .expect_err("the default lock survives in the child")
            .to_string();
        assert!(e.contains("lock"), "{e}");
    }
}
