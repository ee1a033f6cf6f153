//! The simulated-dataset file (HDF5) that `ablate simulate` writes and pre-training
//! reads: one place for its layout (`ablate simulate --help` documents it).

use crate::errors::OrUsage;
use crate::errors::{Context, Result};
use crate::{h5, provenance};
use hdf5_metno as hdf5;
use ionode_physics::simulate::{Dataset, SimulationConfig};
use ndarray::Array1;
use std::path::Path;

/// Writes the dataset and its provenance.
pub fn write(
    path: &std::path::Path,
    data: &Dataset,
    config: &SimulationConfig,
    config_json: &serde_json::Value,
) -> Result<()> {
    let membrane = &config.membrane;
    let git = provenance::git_state();
    h5::create_atomically(path, |file| {
        h5::dataset(file, "feed", &data.feed, Some("mol/m3"))?;
        h5::dataset(file, "mask", &data.mask, None)?;
        h5::dataset(file, "flux_m_s", data.fluxes_m_s.as_slice(), Some("m/s"))?;
        h5::dataset(file, "permeate", &data.permeate, Some("mol/m3"))?;
        h5::dataset(file, "rejection", &data.rejection, Some("1"))?;
        h5::dataset(file, "pressure_pa", &data.pressure_pa, Some("Pa"))?;
        h5::dataset(file, "status", &data.status, None)?;
        h5::dataset(
            file,
            "temperature_k",
            data.temperature_k.as_slice(),
            Some("K"),
        )?;
        h5::string_dataset(file, "species", &data.species)?;
        h5::dataset(file, "charge", data.charges.as_slice(), None)?;

        let failures = file
            .create_group("failures")
            .context("cannot create group 'failures'")?;
        let f = &data.failures;
        let sample: Array1<u64> = f.iter().map(|x| x.sample as u64).collect();
        let flux_index: Array1<u64> = f.iter().map(|x| x.flux_index as u64).collect();
        let jv: Array1<f64> = f.iter().map(|x| x.jv_m_s).collect();
        let message: Vec<String> = f.iter().map(|x| x.message.clone()).collect();
        h5::dataset(&failures, "sample", &sample, None)?;
        h5::dataset(&failures, "flux_index", &flux_index, None)?;
        h5::dataset(&failures, "jv_m_s", &jv, Some("m/s"))?;
        h5::string_dataset(&failures, "message", &message)?;

        h5::attr_str(file, "generator", "ionode ablate simulate")?;
        h5::attr_str(file, "ionode_version", env!("CARGO_PKG_VERSION"))?;
        h5::attr_str(file, "git_commit", &git.commit)?;
        if let Some(dirty) = git.dirty {
            h5::attr_scalar(file, "git_dirty", dirty)?;
        }
        h5::attr_scalar(file, "synthetic", true)?;
        h5::attr_str(file, "created_utc", &crate::provenance::now_utc())?;
        h5::attr_str(
            file,
            "command_line",
            &crate::record::command_line(std::env::args()),
        )?;
        h5::attr_str(
            file,
            "description",
            "Simulated (synthetic) DSPM-DE nanofiltration data from ionode-physics, not measurements: \
             random electroneutral feeds solved at each water flux of the grid. status 1 marks \
             points that did not solve (zero permeate, listed in failures/).",
        )?;
        h5::attr_str(file, "config_json", &config_json.to_string())?;
        h5::attr_scalar(file, "membrane_pore_radius_m", membrane.pore_radius_m)?;
        h5::attr_scalar(
            file,
            "membrane_effective_thickness_m",
            membrane.effective_thickness_m,
        )?;
        h5::attr_scalar(
            file,
            "membrane_charge_density_mol_m3",
            membrane.charge_density_mol_m3,
        )?;
        h5::attr_scalar(file, "membrane_pore_dielectric", membrane.pore_dielectric)?;
        h5::attr_scalar(file, "seed", config.seed)?;
        h5::attr_scalar(file, "n_samples", data.feed.nrows() as u64)?;
        h5::attr_scalar(file, "n_failed", data.failures.len() as u64)?;
        Ok(())
    })
}

/// Loads a simulated dataset back from `ablate simulate`'s HDF5 file.
pub fn read(path: &Path) -> Result<Dataset> {
    crate::limits::check_input(path, crate::limits::MAX_HDF5_FILE_BYTES)
        .or_usage(|| format!("cannot open pre-training set '{}'", path.display()))?;
    let file =
        h5::open(path).or_usage(|| format!("cannot open pre-training set '{}'", path.display()))?;
    let ctx = |name: &str| format!("pre-training set '{}': dataset '{name}'", path.display());
    let species = h5::read_strings(&file, "species").with_context(|| ctx("species"))?;
    // Each feed's temperature; files written before temperature ranges existed record one
    // temperature in their generator config.
    let n_samples = h5::open_dataset(&file, "feed")
        .map(|d| d.shape().first().copied().unwrap_or(0))
        .with_context(|| ctx("feed"))?;
    let temperature_k = if file.link_exists("temperature_k") {
        h5::open_dataset(&file, "temperature_k")
            .and_then(|d| d.read_raw::<f64>())
            .with_context(|| ctx("temperature_k"))?
    } else {
        let config: hdf5::types::VarLenUnicode = file
            .attr("config_json")
            .and_then(|a| a.read_scalar())
            .with_context(|| ctx("config_json (attribute)"))?;
        let t = serde_json::from_str::<serde_json::Value>(config.as_str())
            .ok()
            .and_then(|c| c["temperature_k"].as_f64())
            .with_context(|| {
                format!(
                    "pre-training set '{}': no temperature_k dataset and none in config_json (not written by ablate simulate?)",
                    path.display()
                )
            })?;
        vec![t; n_samples]
    };
    Ok(Dataset {
        temperature_k,
        charges: h5::open_dataset(&file, "charge")
            .and_then(|d| d.read_raw::<i32>())
            .with_context(|| ctx("charge"))?,
        fluxes_m_s: h5::open_dataset(&file, "flux_m_s")
            .and_then(|d| d.read_raw::<f64>())
            .with_context(|| ctx("flux_m_s"))?,
        feed: h5::open_dataset(&file, "feed")
            .and_then(|d| d.read_2d::<f64>())
            .with_context(|| ctx("feed"))?,
        mask: h5::open_dataset(&file, "mask")
            .and_then(|d| d.read_2d::<u8>())
            .with_context(|| ctx("mask"))?,
        permeate: h5::open_dataset(&file, "permeate")
            .and_then(|d| d.read::<f64, ndarray::Ix3>())
            .with_context(|| ctx("permeate"))?,
        rejection: h5::open_dataset(&file, "rejection")
            .and_then(|d| d.read::<f64, ndarray::Ix3>())
            .with_context(|| ctx("rejection"))?,
        pressure_pa: h5::open_dataset(&file, "pressure_pa")
            .and_then(|d| d.read_2d::<f64>())
            .with_context(|| ctx("pressure_pa"))?,
        status: h5::open_dataset(&file, "status")
            .and_then(|d| d.read_2d::<u8>())
            .with_context(|| ctx("status"))?,
        species,
        failures: Vec::new(),
    })
}
