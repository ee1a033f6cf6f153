//! `ablate simulate`: a DSPM-DE pre-training dataset (random electroneutral feeds x a flux
//! grid) written to HDF5.
//!
//! The physics guarantees the arrays are a pure function of the configuration and the
//! seed, whatever the thread count; this command adds the file: every array, the failures
//! (a failed point is listed, never silently dropped) and enough provenance in the root
//! attributes (the full generator config as JSON, membrane values, git commit) to
//! regenerate or audit the data without the command line that made it.

use super::dspmde_point::parse_activity;
use super::Internal;
use crate::cli::{FluxSpacing, SimulateArgs};
use crate::limits::MAX_JOBS;
use crate::{h5, ions, provenance, units};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_physics::simulate::{
    simulate, Dataset, FluxGrid, SimPolarisation, SimulationConfig, Spacing,
};
use ionode_physics::{FilmModel, IonDb, SpiralWound};
use ndarray::Array1;
use serde_json::json;
use std::time::Instant;

/// Builds the generator configuration from the flags.
pub(crate) fn config(args: &SimulateArgs, db: &IonDb) -> Result<SimulationConfig> {
    let membrane = crate::membrane::resolve(&args.membrane, std::path::Path::new(""))?;
    let species = args
        .species
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| db.get(name).cloned())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("--species '{}'", args.species))?;
    if let Some(dup) = species
        .iter()
        .enumerate()
        .find(|(i, ion)| species[..*i].iter().any(|o| o.name == ion.name))
    {
        bail!(
            "--species '{}': {} is listed twice",
            args.species,
            dup.1.name
        );
    }
    let mut config = SimulationConfig::new(species, membrane, args.samples, args.seed);
    config.temperature_k = units::parse_temperature("--temperature", &args.temperature)?;
    config.temperature_max_k = args
        .temperature_max
        .as_deref()
        .map(|t| units::parse_temperature("--temperature-max", t))
        .transpose()?;
    config.activity = parse_activity(&args.activity)?;
    config.polarisation = match args.cp.trim().to_ascii_lowercase().as_str() {
        "none" => SimPolarisation::None,
        "linearised" | "linearized" => SimPolarisation::Film {
            model: FilmModel::Linearised,
            channel: SpiralWound::default(),
        },
        "exponential" => SimPolarisation::Film {
            model: FilmModel::Exponential,
            channel: SpiralWound::default(),
        },
        _ => bail!(
            "--cp '{}': expected none, linearised or exponential",
            args.cp
        ),
    };
    config.elements = args.elements;
    config.min_ions = args.min_ions;
    config.max_ions = args.max_ions.unwrap_or(config.species.len());
    config.c_min_mol_m3 = args.c_min;
    config.c_max_mol_m3 = args.c_max;
    config.fluxes = FluxGrid {
        min_m_s: units::parse_flux("--flux-min", &args.flux_min)?,
        max_m_s: units::parse_flux("--flux-max", &args.flux_max)?,
        count: args.flux_count,
        spacing: match args.flux_spacing {
            FluxSpacing::Linear => Spacing::Linear,
            FluxSpacing::Log => Spacing::Log,
        },
    };
    // Fail on bad ranges before any work (simulate() checks again, harmlessly).
    config.validate()?;
    Ok(config)
}

/// The complete generator configuration, stored as the `config_json` attribute.
fn config_json(args: &SimulateArgs, config: &SimulationConfig) -> serde_json::Value {
    let (cp, channel) = match &config.polarisation {
        SimPolarisation::None => ("none", None),
        SimPolarisation::Film { model, channel } => (
            match model {
                FilmModel::Linearised => "linearised",
                FilmModel::Exponential => "exponential",
            },
            Some(channel),
        ),
    };
    json!({
        "generator": "ionode ablate simulate",
        "model": "DSPM-DE (ionode-physics), flux-driven points",
        "membrane": {
            "preset": args.membrane,
            "pore_radius_m": config.membrane.pore_radius_m,
            "effective_thickness_m": config.membrane.effective_thickness_m,
            "charge_density_mol_m3": config.membrane.charge_density_mol_m3,
            "pore_dielectric": config.membrane.pore_dielectric,
        },
        "species": config.species,
        "seed": config.seed,
        "samples": config.samples,
        "min_ions": config.min_ions,
        "max_ions": config.max_ions,
        "c_min_mol_m3": config.c_min_mol_m3,
        "c_max_mol_m3": config.c_max_mol_m3,
        "concentration_distribution": "log-uniform, then cations/anions scaled to electroneutrality",
        "flux_grid": {
            "min_m_s": config.fluxes.min_m_s,
            "max_m_s": config.fluxes.max_m_s,
            "count": config.fluxes.count,
            "spacing": match config.fluxes.spacing { Spacing::Linear => "linear", Spacing::Log => "log" },
            "values_m_s": config.fluxes.values(),
        },
        "activity": config.activity,
        "cp": cp,
        "spiral_wound_channel": channel,
        "elements": config.elements,
        "temperature_k": config.temperature_k,
        "temperature_max_k": config.temperature_max_k,
    })
}

/// Writes the dataset and its provenance.
fn write(
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
        h5::attr_str(file, "git_dirty", &git.dirty)?;
        h5::attr_str(file, "synthetic", "true")?;
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

fn progress_bar(samples: usize) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(samples as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} simulate [{elapsed_precise}] [{bar:40}] {pos}/{len} samples ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn run(args: &SimulateArgs) -> Result<()> {
    let db = ions::load(args.ions.as_deref())?;
    let config = config(args, &db)?;
    let cfg_json = config_json(args, &config);
    tracing::info!("config: {cfg_json}");
    let start = Instant::now();
    let bar = progress_bar(config.samples);
    let tick = || bar.inc(1);
    let data = match args.threads {
        Some(n) if !(1..=MAX_JOBS).contains(&n) => {
            bail!("--threads {n}: expected 1..={MAX_JOBS} threads")
        }
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Internal(format!("cannot start {n} worker threads: {e}")))?
            .install(|| simulate(&config, &tick)),
        None => simulate(&config, &tick),
    }?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    write(&args.out, &data, &config, &cfg_json)?;
    let points = data.status.len();
    let failed = data.failures.len();
    tracing::info!(
        samples = config.samples,
        points,
        failed,
        seconds,
        points_per_s = points as f64 / seconds,
        "simulation finished"
    );
    eprintln!(
        "simulated {} samples x {} fluxes = {points} points, {failed} failed, in {seconds:.2} s ({:.0} points/s); wrote {}",
        config.samples,
        data.fluxes_m_s.len(),
        points as f64 / seconds.max(1e-9),
        args.out.display()
    );
    Ok(())
}
