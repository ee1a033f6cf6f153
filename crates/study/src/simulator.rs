//! The settings of a simulated dataset, as one type: the flags of `ablate simulate`, a
//! manifest's `[datasets.pretrain]` table and the spec a dataset file records in its
//! `config_json`. Each default is declared once, here, for all three.

use crate::errors::{Context, Result};
use crate::{membrane, provenance, units};
use clap::Args;
use ionode_physics::simulate::{FluxGrid, SimPolarisation, SimulationConfig, Spacing};
use ionode_physics::{FilmModel, IonDb, SpiralWound};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

/// The defaults (for the flags and for the manifest table alike).
pub mod defaults {
    pub const MEMBRANE: &str = "nf270";
    pub const SPECIES: &str = "Na+,K+,Li+,Mg^2+,Ca^2+,Cl-,SO4^2-";
    pub const MIN_IONS: usize = 2;
    pub const C_MIN: f64 = 1.0;
    pub const C_MAX: f64 = 200.0;
    pub const FLUX_MIN: &str = "2e-6";
    pub const FLUX_MAX: &str = "3e-5";
    pub const FLUX_COUNT: usize = 16;
    pub const ACTIVITY: &str = "ideal";
    pub const CP: &str = "none";
    pub const ELEMENTS: usize = 1;
    pub const TEMPERATURE: &str = "25C";

    pub fn membrane() -> String {
        MEMBRANE.into()
    }
    pub fn species() -> String {
        SPECIES.into()
    }
    pub fn min_ions() -> usize {
        MIN_IONS
    }
    pub fn c_min() -> f64 {
        C_MIN
    }
    pub fn c_max() -> f64 {
        C_MAX
    }
    pub fn flux_min() -> String {
        FLUX_MIN.into()
    }
    pub fn flux_max() -> String {
        FLUX_MAX.into()
    }
    pub fn flux_count() -> usize {
        FLUX_COUNT
    }
    pub fn flux_spacing() -> super::FluxSpacing {
        super::FluxSpacing::Linear
    }
    pub fn activity() -> String {
        ACTIVITY.into()
    }
    pub fn cp() -> String {
        CP.into()
    }
    pub fn elements() -> usize {
        ELEMENTS
    }
    pub fn temperature() -> String {
        TEMPERATURE.into()
    }
}

/// Flux grid spacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FluxSpacing {
    Linear,
    Log,
}

/// A simulated dataset's settings. Serialised in field order (the cache name of a
/// generated set is a hash of it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSpec {
    /// Membrane: a preset (nf270, wt_test, wt_flowsheet, wt_default) or a membrane file
    /// (FILE.toml: pore_radius_m, effective_thickness_m, charge_density_mol_m3,
    /// pore_dielectric), e.g. one a dspmde_fit run wrote.
    #[arg(long, default_value = defaults::MEMBRANE)]
    #[serde(default = "defaults::membrane")]
    pub membrane: String,
    /// Number of random feeds.
    #[arg(long)]
    pub samples: usize,
    /// Seed; the dataset is a pure function of the seed and the other settings.
    #[arg(long)]
    pub seed: u64,
    /// The species axis: comma-separated ion names.
    #[arg(long, default_value = defaults::SPECIES)]
    #[serde(default = "defaults::species")]
    pub species: String,
    /// Fewest ions in a feed.
    #[arg(long, default_value_t = defaults::MIN_IONS)]
    #[serde(default = "defaults::min_ions")]
    pub min_ions: usize,
    /// Most ions in a feed [default: the number of species].
    #[arg(long)]
    #[serde(default)]
    pub max_ions: Option<usize>,
    /// Lowest concentration, mol/m3 (log-uniform draws).
    #[arg(long, default_value_t = defaults::C_MIN)]
    #[serde(default = "defaults::c_min")]
    pub c_min: f64,
    /// Highest concentration, mol/m3.
    #[arg(long, default_value_t = defaults::C_MAX)]
    #[serde(default = "defaults::c_max")]
    pub c_max: f64,
    /// Lowest water flux (m/s, or with a unit: 7lmh).
    #[arg(long, default_value = defaults::FLUX_MIN)]
    #[serde(default = "defaults::flux_min")]
    pub flux_min: String,
    /// Highest water flux (m/s, or with a unit: 108lmh).
    #[arg(long, default_value = defaults::FLUX_MAX)]
    #[serde(default = "defaults::flux_max")]
    pub flux_max: String,
    /// Number of fluxes in the grid.
    #[arg(long, default_value_t = defaults::FLUX_COUNT)]
    #[serde(default = "defaults::flux_count")]
    pub flux_count: usize,
    /// Grid spacing.
    #[arg(long, value_enum, default_value_t = FluxSpacing::Linear)]
    #[serde(default = "defaults::flux_spacing")]
    pub flux_spacing: FluxSpacing,
    /// Activity model: ideal or davies.
    #[arg(long, default_value = defaults::ACTIVITY)]
    #[serde(default = "defaults::activity")]
    pub activity: String,
    /// Concentration polarisation: none, linearised or exponential film, with WaterTAP's
    /// spiral-wound channel (h = 0.5 mm, u = 0.25 m/s) for the mass-transfer coefficients.
    #[arg(long, default_value = defaults::CP)]
    #[serde(default = "defaults::cp")]
    pub cp: String,
    /// Finite-difference elements across the pore.
    #[arg(long, default_value_t = defaults::ELEMENTS)]
    #[serde(default = "defaults::elements")]
    pub elements: usize,
    /// Temperature: 25C, 298.15K or a plain number in K (with --temperature-max, the
    /// lowest of a range).
    #[arg(long, default_value = defaults::TEMPERATURE, allow_hyphen_values = true)]
    #[serde(default = "defaults::temperature")]
    pub temperature: String,
    /// Draw each feed's temperature uniformly from --temperature to this one (e.g. 35C).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_max: Option<String>,
}

impl SimulatorSpec {
    /// The physics' generator configuration (a membrane file relative to `base`), with
    /// every range checked before any work.
    pub fn to_config(&self, base: &Path, db: &IonDb) -> Result<SimulationConfig> {
        let model = crate::membrane::resolve(&self.membrane, base)?;
        let species = self
            .species
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|name| db.get(name).cloned())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("--species '{}'", self.species))?;
        if let Some(dup) = species
            .iter()
            .enumerate()
            .find(|(i, ion)| species[..*i].iter().any(|o| o.name == ion.name))
        {
            return Err(crate::usage!(
                "--species '{}': {} is listed twice",
                self.species,
                dup.1.name
            ));
        }
        let mut config = SimulationConfig::new(species, model.membrane, self.samples, self.seed);
        config.charge = model.charge;
        config.temperature_k = units::parse_temperature("--temperature", &self.temperature)?;
        config.temperature_max_k = self
            .temperature_max
            .as_deref()
            .map(|t| units::parse_temperature("--temperature-max", t))
            .transpose()?;
        config.activity = units::parse_activity(&self.activity)?;
        config.polarisation = match self.cp.trim().to_ascii_lowercase().as_str() {
            "none" => SimPolarisation::None,
            "linearised" | "linearized" => SimPolarisation::Film {
                model: FilmModel::Linearised,
                channel: SpiralWound::default(),
            },
            "exponential" => SimPolarisation::Film {
                model: FilmModel::Exponential,
                channel: SpiralWound::default(),
            },
            _ => {
                return Err(crate::usage!(
                    "--cp '{}': expected none, linearised or exponential",
                    self.cp
                ))
            }
        };
        config.elements = self.elements;
        config.min_ions = self.min_ions;
        config.max_ions = self.max_ions.unwrap_or(config.species.len());
        config.c_min_mol_m3 = self.c_min;
        config.c_max_mol_m3 = self.c_max;
        config.fluxes = FluxGrid {
            min_m_s: units::parse_flux("--flux-min", &self.flux_min)?,
            max_m_s: units::parse_flux("--flux-max", &self.flux_max)?,
            count: self.flux_count,
            spacing: match self.flux_spacing {
                FluxSpacing::Linear => Spacing::Linear,
                FluxSpacing::Log => Spacing::Log,
            },
        };
        // Fail on bad ranges before any work (simulate() checks again, harmlessly).
        config.validate()?;
        Ok(config)
    }

    /// The complete generator configuration, stored as a dataset's `config_json`: this
    /// spec as given and every value it resolved to.
    pub fn config_json(&self, config: &SimulationConfig) -> serde_json::Value {
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
        let mut json = json!({
            "generator": "ionode ablate simulate",
            "spec": self,
            "model": "DSPM-DE (ionode-physics), flux-driven points",
            "membrane": {
                "preset": self.membrane,
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
        });
        if !config.charge.is_constant() {
            json["charge"] = serde_json::to_value(config.charge).expect("a charge serialises");
        }
        json
    }

    /// The cache name of a generated file: a hash of the spec, and of the membrane's
    /// values when it comes from a file (so an edited membrane file is a new data set).
    pub fn file_name(&self, config: &SimulationConfig) -> String {
        let mut json = serde_json::to_string(self).expect("the spec serialises");
        if membrane::is_file(&self.membrane) {
            json.push_str(&serde_json::to_string(&config.membrane).expect("a membrane serialises"));
            if !config.charge.is_constant() {
                json.push_str(&serde_json::to_string(&config.charge).expect("a charge serialises"));
            }
        }
        format!("pretrain-{}.h5", provenance::text_hash(&json))
    }

    /// Simulates the dataset (the spec's membrane file relative to `base`) on `threads`
    /// threads (all cores when `None`) and writes it to `out` atomically; `tick` is called
    /// once per finished sample. Returns the data's configuration and the data.
    pub fn generate(
        &self,
        base: &Path,
        db: &IonDb,
        threads: Option<usize>,
        out: &Path,
        tick: &(dyn Fn() + Sync),
    ) -> Result<(SimulationConfig, ionode_physics::simulate::Dataset)> {
        let config = self.to_config(base, db)?;
        let json = self.config_json(&config);
        tracing::info!("config: {json}");
        let data = match threads {
            Some(n) if !(1..=crate::limits::MAX_JOBS).contains(&n) => {
                return Err(crate::usage!(
                    "--threads {n}: expected 1..={} threads",
                    crate::limits::MAX_JOBS
                ))
            }
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| crate::failed!("cannot start {n} worker threads: {e}"))?
                .install(|| ionode_physics::simulate::simulate(&config, tick)),
            None => ionode_physics::simulate::simulate(&config, tick),
        }?;
        crate::simfile::write(out, &data, &config, &json)?;
        Ok((config, data))
    }

    /// Generates the dataset into `path` (as [`Self::generate`]) unless a whole one is
    /// there: a file that does not read back as these settings' data (truncated by a full
    /// disk or a kill, edited) is generated again. Concurrent processes each write their
    /// own temporary file and rename it; the data are the same bits whoever writes them.
    /// `what` names the settings in messages (`[datasets.pretrain]`); `note` receives what
    /// people should know (a set is generated, or generated again and why).
    pub fn ensure(
        &self,
        base: &Path,
        db: &IonDb,
        threads: Option<usize>,
        path: &Path,
        what: &str,
        note: &dyn Fn(&str),
    ) -> Result<()> {
        let config = self
            .to_config(base, db)
            .with_context(|| format!("the generator of {what}"))?;
        if path.exists() {
            match crate::simfile::read(path) {
                Ok(d) if d.feed.nrows() == config.samples
                    && d.fluxes_m_s.len() == config.fluxes.count
                    && d.species.len() == config.species.len() =>
                {
                    return Ok(())
                }
                Ok(_) => note(&format!(
                    "the generated pre-training set '{}' does not hold what its generator makes; generating it again",
                    path.display()
                )),
                Err(e) => note(&format!(
                    "the generated pre-training set '{}' is damaged ({}); generating it again",
                    path.display(),
                    crate::errors::one_line(&e)
                )),
            }
        }
        // A damaged file goes first: it was read above, and an output never replaces a
        // file this process read.
        let _ = std::fs::remove_file(path);
        note(&format!(
            "generating the pre-training set '{}' ({} feeds x {} fluxes)",
            path.display(),
            config.samples,
            config.fluxes.count
        ));
        self.with_membrane_from(base)
            .generate(Path::new(""), db, threads, path, &|| {})
            .with_context(|| format!("generating the pre-training set of {what}"))?;
        Ok(())
    }

    /// The membrane value as a path from `base` if it is a file (for a manifest, whose
    /// membrane file is relative to the manifest's folder).
    pub fn with_membrane_from(&self, base: &Path) -> SimulatorSpec {
        let mut s = self.clone();
        if membrane::is_file(&s.membrane) {
            s.membrane = membrane::path_of(&s.membrane, base).display().to_string();
        }
        s
    }
}
