//! The run record: the one schema of a run's `run.h5`, written by `ablate run` (one per
//! run of a study) and `ablate train` (one per folder), read by `ablate report`,
//! `ablate predict` and the tests. Every attribute, group and dataset name is a constant
//! of [`name`]; nothing else in the program spells one.
//!
//! Layout (types are HDF5 types; strings are variable-length UTF-8, booleans the HDF5
//! enum h5py reads as `bool`):
//!
//! - root attributes: the provenance ([`Provenance`]: `run_id`, `study`, `manifest`,
//!   `manifest_hash`, `plan_index` (u64, in a study), `git_commit`, `git_dirty` (bool,
//!   absent when git could not tell), `host`, `ionode_version`, `created_utc` (RFC 3339),
//!   `command_line`, `overrides_json`: the study's `--set` arguments, absent when none);
//!   `method` (`neural` | `dspmde_fit`), `synthetic` (bool);
//!   `config_json`, the resolved run config (lossless: the run is rebuilt from it);
//!   `axes_json` (the study's axis values of this run) and `inputs_json` (input file ->
//!   BLAKE3); the training domain (`domain_flux_min_m_s`, ..., f64, and all of it, with the
//!   feed compositions of each stage, as `domain_json`); `seconds_total`,
//!   `seconds_pretrain`, `seconds_finetune` (f64); the artefact (`params_json` and/or
//!   `calibration_json`; for an ensemble, `ensemble_json`: its interval rule and every
//!   member's parameters and/or calibration) and, for a calibration, `membrane_toml` (an
//!   ensemble's: its first member's).
//! - `config/`: the same config as flat typed attributes, one per leaf (`model.variant` =
//!   `"node"`, `finetune.epochs` = 200 as an integer, `pretrain.learning_rate` as f64);
//!   lists are JSON text; a stage that does not run has no attributes.
//! - `metrics/<stage>/<part>/` (stage `pretrain` | `measured`; part `train` |
//!   `validation` | `test`): attributes `n_samples`, `n_values` (u64), `mae`, `rmse`, `r2`,
//!   `electroneutrality_mean`, `electroneutrality_max`, and for an ensemble `coverage`
//!   and `interval_width` (f64, absent when undefined);
//!   datasets `per_ion_species` (str), `per_ion_n` (u64), `per_ion_mae`, `per_ion_rmse`,
//!   `per_ion_r2` (f64, NaN when undefined).
//! - `curves/<stage>/` (`pretrain`, `finetune`): datasets `train_loss`, `validation_loss`
//!   (per epoch), attributes `epochs_run`, `best_epoch` (u64), `best_validation_loss`,
//!   `seconds` (f64), `stopped_early` (bool).
//! - `predictions/`: one entry per (test row, present ion), the columns of
//!   [`Predictions`] (concentrations mol/m3, flux m/s, temperature K, with `units`
//!   attributes); an ensemble's also `rejection_lower`, `rejection_upper`.
//! - `attention/` (attention_node only): `end`, `mean` `[rows, S, S]`, `rows`, `species`,
//!   `family`.
//!
//! Ion names are the ion database's canonical spelling (`Mg^2+`, `SO4^2-`) everywhere.

use crate::errors::{Context, Result};
use crate::h5;
use hdf5::types::{VarLenAscii, VarLenUnicode};
use hdf5::{Group, H5Type, Location};
use hdf5_metno as hdf5;
use ionode_model::SavedParams;
use ionode_train::calibrate::DspmdeFit;
use ionode_train::ensemble::IntervalFit;
use ionode_train::metrics::{IonMetrics, Metrics, SplitMetrics};
use ionode_train::run::{
    Artefact, Attention, CanonicalConfig, Domain, Method, Predictions, RunConfig, RunMetrics,
    RunOutcome, Timings,
};
use ionode_train::trainer::{Stage, StageReport};
use ndarray::Array1;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Every name of the schema.
pub mod name {
    pub const RUN_ID: &str = "run_id";
    pub const STUDY: &str = "study";
    pub const MANIFEST: &str = "manifest";
    pub const MANIFEST_HASH: &str = "manifest_hash";
    pub const PLAN_INDEX: &str = "plan_index";
    pub const GIT_COMMIT: &str = "git_commit";
    pub const GIT_DIRTY: &str = "git_dirty";
    pub const HOST: &str = "host";
    pub const IONODE_VERSION: &str = "ionode_version";
    pub const CREATED_UTC: &str = "created_utc";
    pub const COMMAND_LINE: &str = "command_line";
    pub const OVERRIDES_JSON: &str = "overrides_json";
    pub const METHOD: &str = "method";
    pub const SYNTHETIC: &str = "synthetic";
    pub const CONFIG_JSON: &str = "config_json";
    pub const AXES_JSON: &str = "axes_json";
    pub const INPUTS_JSON: &str = "inputs_json";
    pub const DOMAIN_FLUX_MIN: &str = "domain_flux_min_m_s";
    pub const DOMAIN_FLUX_MAX: &str = "domain_flux_max_m_s";
    pub const DOMAIN_TEMPERATURE_MIN: &str = "domain_temperature_min_k";
    pub const DOMAIN_TEMPERATURE_MAX: &str = "domain_temperature_max_k";
    pub const DOMAIN_JSON: &str = "domain_json";
    pub const SECONDS_TOTAL: &str = "seconds_total";
    pub const SECONDS_PRETRAIN: &str = "seconds_pretrain";
    pub const SECONDS_FINETUNE: &str = "seconds_finetune";
    pub const PARAMS_JSON: &str = "params_json";
    pub const CALIBRATION_JSON: &str = "calibration_json";
    pub const ENSEMBLE_JSON: &str = "ensemble_json";
    pub const MEMBRANE_TOML: &str = "membrane_toml";

    pub const CONFIG: &str = "config";

    pub const METRICS: &str = "metrics";
    /// The scored stages under `metrics/`.
    pub const PRETRAIN: &str = "pretrain";
    pub const MEASURED: &str = "measured";
    pub const N_SAMPLES: &str = "n_samples";
    pub const N_VALUES: &str = "n_values";
    pub const MAE: &str = "mae";
    pub const RMSE: &str = "rmse";
    pub const R2: &str = "r2";
    pub const EN_MEAN: &str = "electroneutrality_mean";
    pub const EN_MAX: &str = "electroneutrality_max";
    pub const COVERAGE: &str = "coverage";
    pub const INTERVAL_WIDTH: &str = "interval_width";
    pub const PER_ION_SPECIES: &str = "per_ion_species";
    pub const PER_ION_N: &str = "per_ion_n";
    pub const PER_ION_MAE: &str = "per_ion_mae";
    pub const PER_ION_RMSE: &str = "per_ion_rmse";
    pub const PER_ION_R2: &str = "per_ion_r2";

    pub const CURVES: &str = "curves";
    pub const TRAIN_LOSS: &str = "train_loss";
    pub const VALIDATION_LOSS: &str = "validation_loss";
    pub const EPOCHS_RUN: &str = "epochs_run";
    pub const BEST_EPOCH: &str = "best_epoch";
    pub const BEST_VALIDATION_LOSS: &str = "best_validation_loss";
    pub const STOPPED_EARLY: &str = "stopped_early";
    pub const SECONDS: &str = "seconds";

    pub const PREDICTIONS: &str = "predictions";
    pub const PART: &str = "part";
    pub const ROW: &str = "row";
    pub const FAMILY: &str = "family";
    pub const ION: &str = "ion";
    pub const JV: &str = "jv_m_s";
    pub const TEMPERATURE: &str = "temperature_k";
    pub const FEED: &str = "feed_mol_m3";
    pub const TARGET_PERMEATE: &str = "target_permeate_mol_m3";
    pub const PREDICTED_PERMEATE: &str = "predicted_permeate_mol_m3";
    pub const TARGET_REJECTION: &str = "target_rejection";
    pub const PREDICTED_REJECTION: &str = "predicted_rejection";
    pub const REJECTION_LOWER: &str = "rejection_lower";
    pub const REJECTION_UPPER: &str = "rejection_upper";

    pub const ATTENTION: &str = "attention";
    pub const END: &str = "end";
    pub const MEAN: &str = "mean";
    pub const ROWS: &str = "rows";
    pub const SPECIES: &str = "species";

    /// The parts of a split, in order.
    pub const PARTS: [&str; 3] = ["train", "validation", "test"];
}

/// Where a run came from and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub run_id: String,
    /// The study's name (`ablate train`: the config's `name`, or empty).
    pub study: String,
    /// The manifest (or, for `ablate train`, the run config file) as given.
    pub manifest: String,
    /// BLAKE3 of the merged manifest (or of the run config's text).
    pub manifest_hash: String,
    /// Position in the study's plan (`None` outside a study).
    pub plan_index: Option<u64>,
    pub git_commit: String,
    /// `None` when git could not tell.
    pub git_dirty: Option<bool>,
    pub host: String,
    pub ionode_version: String,
    /// When the record was written, RFC 3339 in UTC to the second.
    pub created_utc: String,
    /// The command that made it, shell-quoted.
    pub command_line: String,
    /// The study's `--set` overrides (`KEY=VALUE`, in order); empty when none.
    pub overrides: Vec<String>,
}

impl Provenance {
    /// What every run of one process shares: git state, host, version and this
    /// process's command line ([`Provenance::of_run`] adds the run and the time).
    pub fn of_process(study: &str, manifest: &str, manifest_hash: &str) -> Provenance {
        let git = crate::provenance::git_state();
        Provenance {
            run_id: String::new(),
            study: study.to_string(),
            manifest: manifest.to_string(),
            manifest_hash: manifest_hash.to_string(),
            plan_index: None,
            git_commit: git.commit,
            git_dirty: git.dirty,
            host: crate::process::hostname(),
            ionode_version: env!("CARGO_PKG_VERSION").to_string(),
            created_utc: String::new(),
            command_line: command_line(std::env::args()),
            overrides: Vec::new(),
        }
    }

    /// This process's provenance for one run, stamped now.
    pub fn of_run(&self, run_id: &str, plan_index: Option<u64>) -> Provenance {
        Provenance {
            run_id: run_id.to_string(),
            plan_index,
            created_utc: crate::provenance::now_utc(),
            ..self.clone()
        }
    }
}

/// Arguments joined as a POSIX shell would read them back (single quotes where needed).
pub fn command_line(args: impl IntoIterator<Item = String>) -> String {
    let quote = |a: String| {
        let plain = !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+^@%".contains(c));
        if plain {
            a
        } else {
            format!("'{}'", a.replace('\'', r"'\''"))
        }
    };
    args.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// What identifies a run, beside what it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub provenance: Provenance,
    /// The resolved config the run ran with.
    pub config: RunConfig,
    /// The same config as written to (and read from) `config_json`: the source of the
    /// `config/` attributes and the report's `config.*` columns. Private, so it always
    /// says `config` ([`Head::new`], [`read`]); see [`Head::canonical`].
    canonical: CanonicalConfig,
    /// Axis path -> this run's value (a study's axes, with `seed`; empty outside one).
    pub axes: BTreeMap<String, Value>,
    /// Input file (as the config names it) -> BLAKE3 of its content.
    pub inputs: BTreeMap<String, String>,
}

/// A run record as read back: everything but the predictions, attention maps and
/// artefact, which are read on demand ([`read_predictions`], [`read_attention`],
/// [`read_artefact`]) so a report over thousands of runs holds only their summaries.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub head: Head,
    pub synthetic: bool,
    pub metrics: RunMetrics,
    pub domain: Option<Domain>,
    pub timings: Timings,
    pub curves: Vec<StageReport>,
    pub has_predictions: bool,
    pub has_attention: bool,
}

impl Head {
    /// The head of a run about to be written: its config is serialised here, once.
    pub fn new(
        provenance: Provenance,
        config: RunConfig,
        axes: BTreeMap<String, Value>,
        inputs: BTreeMap<String, String>,
    ) -> Head {
        Head {
            provenance,
            canonical: CanonicalConfig::of(&config),
            config,
            axes,
            inputs,
        }
    }

    /// The config as written to `config_json` (see [`CanonicalConfig`]).
    pub fn canonical(&self) -> &CanonicalConfig {
        &self.canonical
    }
}

impl RunRecord {
    pub fn method(&self) -> Method {
        self.head.config.method
    }
}

/// A run record as `run.h5` keeps it, the attributes it keeps as JSON still JSON text (but
/// the provenance, typed: its one such attribute is a list of strings): the one source of a [`RunRecord`] ([`Stored::into_record`]), made either from `run.h5`
/// ([`Stored::read_file`]) or, when the run finishes, from what was just written
/// ([`Stored::of`]), and kept whole in the facts cache. A record made from the cache and one
/// read from `run.h5` are therefore made by the same code from the same values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub provenance: Provenance,
    pub config_json: String,
    pub axes_json: String,
    pub inputs_json: String,
    pub domain_json: Option<String>,
    /// Flux min, max, temperature min, max: what a record written before `domain_json`
    /// keeps of its domain.
    pub domain_bounds: [Option<f64>; 4],
    pub synthetic: bool,
    pub timings: Timings,
    pub metrics: RunMetrics,
    pub curves: Vec<StageReport>,
    pub has_predictions: bool,
    pub has_attention: bool,
}

impl Stored {
    /// What [`write`] puts in `run.h5` for this head and outcome, as [`Stored::read_file`]
    /// reads it back (an ion's undefined metric is NaN in the file and `None` read back).
    pub fn of(head: &Head, o: &RunOutcome) -> Result<Stored> {
        let d = o.domain.as_ref();
        let mut metrics = o.metrics.clone();
        for split in [&mut metrics.pretrain, &mut metrics.measured]
            .into_iter()
            .flatten()
        {
            for m in [&mut split.train, &mut split.validation, &mut split.test]
                .into_iter()
                .flatten()
            {
                for ion in &mut m.per_ion {
                    for v in [&mut ion.mae, &mut ion.rmse, &mut ion.r2] {
                        *v = v.filter(|x| !x.is_nan());
                    }
                }
            }
        }
        Ok(Stored {
            provenance: head.provenance.clone(),
            config_json: head.canonical.text().to_string(),
            axes_json: serde_json::to_string(&head.axes)?,
            inputs_json: serde_json::to_string(&head.inputs)?,
            domain_json: d.map(serde_json::to_string).transpose()?,
            domain_bounds: match d {
                Some(d) => [
                    d.flux_m_s[0],
                    d.flux_m_s[1],
                    d.temperature_k[0],
                    d.temperature_k[1],
                ]
                .map(Some),
                None => [None; 4],
            },
            synthetic: o.synthetic,
            timings: o.timings,
            metrics,
            curves: o.curves.clone(),
            has_predictions: true,
            has_attention: o.attention.is_some(),
        })
    }

    /// The record these values are (`path` names the file in messages).
    pub fn into_record(self, path: &str) -> Result<RunRecord> {
        fn typed<T: serde::de::DeserializeOwned>(path: &str, n: &str, text: &str) -> Result<T> {
            serde_json::from_str(text)
                .with_context(|| format!("'{path}': attribute '{n}' is not what a run writes"))
        }
        let (canonical, config) = CanonicalConfig::parse(&self.config_json).with_context(|| {
            format!(
                "'{path}': attribute '{}' is not what a run writes",
                name::CONFIG_JSON
            )
        })?;
        let head = Head {
            provenance: self.provenance,
            config,
            canonical,
            axes: typed(path, name::AXES_JSON, &self.axes_json)?,
            inputs: typed(path, name::INPUTS_JSON, &self.inputs_json)?,
        };
        let domain = match (&self.domain_json, self.domain_bounds) {
            (Some(text), _) => Some(typed(path, name::DOMAIN_JSON, text)?),
            // A record written before the compositions were kept.
            (None, [Some(a), Some(b), Some(c), Some(d)]) => Some(Domain {
                flux_m_s: [a, b],
                temperature_k: [c, d],
                pretrain: None,
                measured: None,
            }),
            (None, [None, None, None, None]) => None,
            _ => {
                return Err(crate::failed!(
                    "'{path}': the training domain is incomplete"
                ))
            }
        };
        Ok(RunRecord {
            head,
            synthetic: self.synthetic,
            metrics: self.metrics,
            domain,
            timings: self.timings,
            curves: self.curves,
            has_predictions: self.has_predictions,
            has_attention: self.has_attention,
        })
    }

    /// Reads the values of a run file (all but predictions, attention and artefact).
    pub fn read_file(path: &Path) -> Result<Stored> {
        let r = Reader::open(path)?;
        let f: &Location = &r.file;
        let provenance = Provenance {
            run_id: r.string(name::RUN_ID)?,
            study: r.string(name::STUDY)?,
            manifest: r.string(name::MANIFEST)?,
            manifest_hash: r.string(name::MANIFEST_HASH)?,
            plan_index: r.optional(f, "", name::PLAN_INDEX)?,
            git_commit: r.string(name::GIT_COMMIT)?,
            git_dirty: r.optional(f, "", name::GIT_DIRTY)?,
            host: r.string(name::HOST)?,
            ionode_version: r.string(name::IONODE_VERSION)?,
            created_utc: r.string(name::CREATED_UTC)?,
            command_line: r.string(name::COMMAND_LINE)?,
            overrides: match r.optional::<VarLenUnicode>(f, "", name::OVERRIDES_JSON)? {
                Some(text) => serde_json::from_str(text.as_str()).with_context(|| {
                    format!(
                        "'{}': attribute '{}' is not what a run writes",
                        r.path,
                        name::OVERRIDES_JSON
                    )
                })?,
                None => Vec::new(),
            },
        };
        Ok(Stored {
            provenance,
            config_json: r.string(name::CONFIG_JSON)?,
            axes_json: r.string(name::AXES_JSON)?,
            inputs_json: r.string(name::INPUTS_JSON)?,
            domain_json: if Reader::has_attr(f, name::DOMAIN_JSON) {
                Some(r.string(name::DOMAIN_JSON)?)
            } else {
                None
            },
            domain_bounds: [
                r.optional::<f64>(f, "", name::DOMAIN_FLUX_MIN)?,
                r.optional::<f64>(f, "", name::DOMAIN_FLUX_MAX)?,
                r.optional::<f64>(f, "", name::DOMAIN_TEMPERATURE_MIN)?,
                r.optional::<f64>(f, "", name::DOMAIN_TEMPERATURE_MAX)?,
            ],
            synthetic: r.required(f, "", name::SYNTHETIC)?,
            timings: Timings {
                total: r.required(f, "", name::SECONDS_TOTAL)?,
                pretrain: r.required(f, "", name::SECONDS_PRETRAIN)?,
                finetune: r.required(f, "", name::SECONDS_FINETUNE)?,
            },
            metrics: read_metrics(&r)?,
            curves: read_curves(&r)?,
            has_predictions: r.file.link_exists(name::PREDICTIONS),
            has_attention: r.file.link_exists(name::ATTENTION),
        })
    }
}

/// `neural` / `dspmde_fit`, as in configs.
pub fn method_name(m: Method) -> &'static str {
    match m {
        Method::Neural => "neural",
        Method::DspmdeFit => "dspmde_fit",
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// Writes a run's record to `path` through a temporary file that `commit` puts in place.
pub fn write(
    path: &Path,
    head: &Head,
    outcome: &RunOutcome,
    membrane_toml: Option<&str>,
    commit: crate::output::Commit<'_>,
) -> Result<()> {
    h5::create_with(path, commit, |file| {
        write_head(file, head)?;
        let o = outcome;
        h5::attr_scalar(file, name::SYNTHETIC, o.synthetic)?;
        if let Some(d) = &o.domain {
            for (n, v) in [
                (name::DOMAIN_FLUX_MIN, d.flux_m_s[0]),
                (name::DOMAIN_FLUX_MAX, d.flux_m_s[1]),
                (name::DOMAIN_TEMPERATURE_MIN, d.temperature_k[0]),
                (name::DOMAIN_TEMPERATURE_MAX, d.temperature_k[1]),
            ] {
                h5::attr_scalar(file, n, v)?;
            }
            h5::attr_str(file, name::DOMAIN_JSON, &serde_json::to_string(d)?)?;
        }
        h5::attr_scalar(file, name::SECONDS_TOTAL, o.timings.total)?;
        h5::attr_scalar(file, name::SECONDS_PRETRAIN, o.timings.pretrain)?;
        h5::attr_scalar(file, name::SECONDS_FINETUNE, o.timings.finetune)?;
        match &o.artefact {
            Artefact::Ensemble { members, interval } => {
                let members = members
                    .iter()
                    .map(MemberArtefact::of)
                    .collect::<Result<Vec<_>>>()?;
                let e = EnsembleArtefact {
                    interval: interval.clone(),
                    members,
                };
                h5::attr_str(file, name::ENSEMBLE_JSON, &serde_json::to_string(&e)?)?;
            }
            one => {
                let m = MemberArtefact::of(one)?;
                if let Some(p) = &m.params {
                    h5::attr_str(file, name::PARAMS_JSON, &serde_json::to_string(p)?)?;
                }
                if let Some(f) = &m.calibration {
                    h5::attr_str(file, name::CALIBRATION_JSON, &serde_json::to_string(f)?)?;
                }
            }
        }
        if let Some(m) = membrane_toml {
            h5::attr_str(file, name::MEMBRANE_TOML, m)?;
        }
        write_metrics(file, &o.metrics)?;
        write_curves(file, &o.curves)?;
        write_predictions(file, &o.predictions)?;
        if let Some(a) = &o.attention {
            write_attention(file, a)?;
        }
        Ok(())
    })
}

fn write_head(file: &hdf5::File, head: &Head) -> Result<()> {
    let p = &head.provenance;
    let s = |n: &str, v: &str| h5::attr_str(file, n, v);
    s(name::RUN_ID, &p.run_id)?;
    s(name::STUDY, &p.study)?;
    s(name::MANIFEST, &p.manifest)?;
    s(name::MANIFEST_HASH, &p.manifest_hash)?;
    if let Some(i) = p.plan_index {
        h5::attr_scalar(file, name::PLAN_INDEX, i)?;
    }
    s(name::GIT_COMMIT, &p.git_commit)?;
    if let Some(d) = p.git_dirty {
        h5::attr_scalar(file, name::GIT_DIRTY, d)?;
    }
    s(name::HOST, &p.host)?;
    s(name::IONODE_VERSION, &p.ionode_version)?;
    s(name::CREATED_UTC, &p.created_utc)?;
    s(name::COMMAND_LINE, &p.command_line)?;
    if !p.overrides.is_empty() {
        s(name::OVERRIDES_JSON, &serde_json::to_string(&p.overrides)?)?;
    }
    s(name::METHOD, method_name(head.config.method))?;
    s(name::CONFIG_JSON, head.canonical.text())?;
    s(name::AXES_JSON, &serde_json::to_string(&head.axes)?)?;
    s(name::INPUTS_JSON, &serde_json::to_string(&head.inputs)?)?;
    let g = file.create_group(name::CONFIG).context("group 'config'")?;
    for (key, value) in head.canonical.leaves() {
        typed_attr(&g, &key, value)?;
    }
    Ok(())
}

/// One leaf as an attribute of its own type.
fn typed_attr(loc: &Location, key: &str, v: &Value) -> Result<()> {
    match v {
        Value::Bool(b) => h5::attr_scalar(loc, key, *b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => h5::attr_scalar(loc, key, u),
            (None, Some(i), _) => h5::attr_scalar(loc, key, i),
            (_, _, Some(f)) => h5::attr_scalar(loc, key, f),
            _ => h5::attr_str(loc, key, &n.to_string()),
        },
        Value::String(s) => h5::attr_str(loc, key, s),
        other => h5::attr_str(loc, key, &other.to_string()),
    }
}

fn write_metrics(file: &hdf5::File, m: &RunMetrics) -> Result<()> {
    let root = file
        .create_group(name::METRICS)
        .context("group 'metrics'")?;
    for (stage, split) in [(name::PRETRAIN, &m.pretrain), (name::MEASURED, &m.measured)] {
        let Some(split) = split else { continue };
        let g = root.create_group(stage)?;
        for (part, metrics) in name::PARTS.into_iter().zip(parts(split)) {
            let Some(metrics) = metrics else { continue };
            let p = g.create_group(part)?;
            h5::attr_scalar(&p, name::N_SAMPLES, metrics.n_samples as u64)?;
            h5::attr_scalar(&p, name::N_VALUES, metrics.n_values as u64)?;
            for (n, v) in [
                (name::MAE, metrics.mae),
                (name::RMSE, metrics.rmse),
                (name::R2, metrics.r2),
                (name::EN_MEAN, metrics.electroneutrality_mean),
                (name::EN_MAX, metrics.electroneutrality_max),
                (name::COVERAGE, metrics.coverage),
                (name::INTERVAL_WIDTH, metrics.interval_width),
            ] {
                if let Some(v) = v {
                    h5::attr_scalar(&p, n, v)?;
                }
            }
            let ions = &metrics.per_ion;
            let species: Vec<String> = ions.iter().map(|i| i.species.clone()).collect();
            h5::string_dataset(&p, name::PER_ION_SPECIES, &species)?;
            let n: Vec<u64> = ions.iter().map(|i| i.n as u64).collect();
            h5::dataset(&p, name::PER_ION_N, n.as_slice(), None)?;
            let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
            for (dn, f) in [
                (
                    name::PER_ION_MAE,
                    (|i: &IonMetrics| i.mae) as fn(&IonMetrics) -> _,
                ),
                (name::PER_ION_RMSE, |i| i.rmse),
                (name::PER_ION_R2, |i| i.r2),
            ] {
                let v: Vec<f64> = ions.iter().map(|i| nan(f(i))).collect();
                h5::dataset(&p, dn, v.as_slice(), None)?;
            }
        }
    }
    Ok(())
}

fn parts(s: &SplitMetrics) -> [&Option<Metrics>; 3] {
    [&s.train, &s.validation, &s.test]
}

fn write_curves(file: &hdf5::File, curves: &[StageReport]) -> Result<()> {
    let root = file.create_group(name::CURVES).context("group 'curves'")?;
    for c in curves {
        let g = root
            .create_group(c.stage.as_str())
            .with_context(|| format!("group 'curves/{}'", c.stage))?;
        h5::dataset(&g, name::TRAIN_LOSS, c.train_loss.as_slice(), None)?;
        h5::dataset(
            &g,
            name::VALIDATION_LOSS,
            c.validation_loss.as_slice(),
            None,
        )?;
        h5::attr_scalar(&g, name::EPOCHS_RUN, c.epochs_run as u64)?;
        h5::attr_scalar(&g, name::BEST_EPOCH, c.best_epoch as u64)?;
        h5::attr_scalar(&g, name::BEST_VALIDATION_LOSS, c.best_validation_loss)?;
        h5::attr_scalar(&g, name::STOPPED_EARLY, c.stopped_early)?;
        h5::attr_scalar(&g, name::SECONDS, c.seconds)?;
    }
    Ok(())
}

fn write_predictions(file: &hdf5::File, p: &Predictions) -> Result<()> {
    let g = file
        .create_group(name::PREDICTIONS)
        .context("group 'predictions'")?;
    h5::string_dataset(&g, name::PART, &p.part)?;
    h5::dataset(&g, name::ROW, p.row.as_slice(), None)?;
    h5::string_dataset(&g, name::FAMILY, &p.family)?;
    h5::string_dataset(&g, name::ION, &p.ion)?;
    for (n, values, units) in prediction_columns(p) {
        h5::dataset(&g, n, values.as_slice(), Some(units))?;
    }
    if !p.rejection_lower.is_empty() {
        h5::dataset(
            &g,
            name::REJECTION_LOWER,
            p.rejection_lower.as_slice(),
            Some("1"),
        )?;
        h5::dataset(
            &g,
            name::REJECTION_UPPER,
            p.rejection_upper.as_slice(),
            Some("1"),
        )?;
    }
    Ok(())
}

/// The numeric columns of predictions: (name, values, units).
fn prediction_columns(p: &Predictions) -> [(&'static str, &Vec<f64>, &'static str); 7] {
    [
        (name::JV, &p.jv_m_s, "m/s"),
        (name::TEMPERATURE, &p.temperature_k, "K"),
        (name::FEED, &p.feed_mol_m3, "mol/m3"),
        (name::TARGET_PERMEATE, &p.target_permeate_mol_m3, "mol/m3"),
        (
            name::PREDICTED_PERMEATE,
            &p.predicted_permeate_mol_m3,
            "mol/m3",
        ),
        (name::TARGET_REJECTION, &p.target_rejection, "1"),
        (name::PREDICTED_REJECTION, &p.predicted_rejection, "1"),
    ]
}

fn write_attention(file: &hdf5::File, a: &Attention) -> Result<()> {
    let g = file
        .create_group(name::ATTENTION)
        .context("group 'attention'")?;
    h5::dataset(&g, name::END, &a.end, None)?;
    h5::dataset(&g, name::MEAN, &a.mean, None)?;
    h5::dataset(&g, name::ROWS, &Array1::from(a.rows.clone()), None)?;
    h5::string_dataset(&g, name::SPECIES, &a.species)?;
    h5::string_dataset(&g, name::FAMILY, &a.family)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading

/// A run file opened for reading, with its path for messages.
struct Reader {
    file: hdf5::File,
    path: String,
}

impl Reader {
    fn open(path: &Path) -> Result<Reader> {
        crate::limits::check_input(path, crate::limits::MAX_HDF5_FILE_BYTES)
            .map_err(|e| crate::failed!("cannot read run file '{}': {e}", path.display()))?;
        let file = crate::h5::open(path).map_err(|e| {
            crate::failed!(
                "cannot read run file '{}' (corrupt or not HDF5): {e}",
                path.display()
            )
        })?;
        Ok(Reader {
            file,
            path: path.display().to_string(),
        })
    }

    fn group(&self, at: &str) -> Result<Group> {
        self.file
            .group(at)
            .map_err(|_| crate::failed!("'{}': missing group '{at}'", self.path))
    }

    fn has_attr(loc: &Location, n: &str) -> bool {
        loc.attr_names()
            .is_ok_and(|names| names.iter().any(|a| a == n))
    }

    fn string(&self, n: &str) -> Result<String> {
        let attr = self
            .file
            .attr(n)
            .map_err(|_| crate::failed!("'{}': missing attribute '{n}'", self.path))?;
        if let Ok(v) = attr.read_scalar::<VarLenUnicode>() {
            return Ok(v.as_str().to_string());
        }
        attr.read_scalar::<VarLenAscii>()
            .map(|v| v.as_str().to_string())
            .map_err(|e| crate::failed!("'{}': attribute '{n}' is not a string: {e}", self.path))
    }

    fn optional<T: H5Type>(&self, loc: &Location, at: &str, n: &str) -> Result<Option<T>> {
        if !Self::has_attr(loc, n) {
            return Ok(None);
        }
        loc.attr(n)
            .and_then(|a| a.read_scalar::<T>())
            .map(Some)
            .map_err(|e| crate::failed!("'{}': attribute '{at}{n}': {e}", self.path))
    }

    fn required<T: H5Type>(&self, loc: &Location, at: &str, n: &str) -> Result<T> {
        self.optional(loc, at, n)?
            .ok_or_else(|| crate::failed!("'{}': missing attribute '{at}{n}'", self.path))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, n: &str) -> Result<T> {
        serde_json::from_str(&self.string(n)?)
            .with_context(|| format!("'{}': attribute '{n}' is not what a run writes", self.path))
    }

    fn floats(&self, g: &Group, at: &str, n: &str) -> Result<Vec<f64>> {
        h5::open_dataset(g, n)
            .and_then(|d| d.read_raw::<f64>())
            .map_err(|e| crate::failed!("'{}': {at}/{n}: {e}", self.path))
    }

    fn u64s(&self, g: &Group, at: &str, n: &str) -> Result<Vec<u64>> {
        h5::open_dataset(g, n)
            .and_then(|d| d.read_raw::<u64>())
            .map_err(|e| crate::failed!("'{}': {at}/{n}: {e}", self.path))
    }

    fn strings(&self, g: &Group, at: &str, n: &str) -> Result<Vec<String>> {
        h5::read_strings(g, n).with_context(|| format!("'{}': {at}/{n}", self.path))
    }
}

/// Reads a run's record (all but predictions, attention and artefact).
pub fn read(path: &Path) -> Result<RunRecord> {
    Stored::read_file(path)?.into_record(&path.display().to_string())
}

fn read_metrics(r: &Reader) -> Result<RunMetrics> {
    let root = r.group(name::METRICS)?;
    let mut out = RunMetrics::default();
    for (stage, slot) in [
        (name::PRETRAIN, &mut out.pretrain),
        (name::MEASURED, &mut out.measured),
    ] {
        if !root.link_exists(stage) {
            continue;
        }
        let g = root.group(stage)?;
        let mut split = SplitMetrics {
            train: None,
            validation: None,
            test: None,
        };
        for (part, m) in
            name::PARTS
                .into_iter()
                .zip([&mut split.train, &mut split.validation, &mut split.test])
        {
            if !g.link_exists(part) {
                continue;
            }
            let p = g.group(part)?;
            let at = format!("{}/{stage}/{part}/", name::METRICS);
            let opt = |n: &str| r.optional::<f64>(&p, &at, n);
            let species = r.strings(&p, &at, name::PER_ION_SPECIES)?;
            let n = r.u64s(&p, &at, name::PER_ION_N)?;
            let f = |n: &str| r.floats(&p, &at, n);
            let (mae, rmse, r2) = (
                f(name::PER_ION_MAE)?,
                f(name::PER_ION_RMSE)?,
                f(name::PER_ION_R2)?,
            );
            let k = species.len();
            if [n.len(), mae.len(), rmse.len(), r2.len()]
                .iter()
                .any(|&l| l != k)
            {
                return Err(crate::failed!(
                    "'{}': the per-ion datasets of {at} differ in length",
                    r.path
                ));
            }
            let defined = |v: f64| (!v.is_nan()).then_some(v);
            let per_ion = (0..k)
                .map(|i| IonMetrics {
                    species: species[i].clone(),
                    n: n[i] as usize,
                    mae: defined(mae[i]),
                    rmse: defined(rmse[i]),
                    r2: defined(r2[i]),
                })
                .collect();
            *m = Some(Metrics {
                n_samples: r.required::<u64>(&p, &at, name::N_SAMPLES)? as usize,
                n_values: r.required::<u64>(&p, &at, name::N_VALUES)? as usize,
                per_ion,
                mae: opt(name::MAE)?,
                rmse: opt(name::RMSE)?,
                r2: opt(name::R2)?,
                electroneutrality_mean: opt(name::EN_MEAN)?,
                electroneutrality_max: opt(name::EN_MAX)?,
                coverage: opt(name::COVERAGE)?,
                interval_width: opt(name::INTERVAL_WIDTH)?,
            });
        }
        *slot = Some(split);
    }
    Ok(out)
}

fn read_curves(r: &Reader) -> Result<Vec<StageReport>> {
    let mut out = Vec::new();
    if !r.file.link_exists(name::CURVES) {
        return Ok(out);
    }
    let root = r.group(name::CURVES)?;
    for stage in [Stage::Pretrain, Stage::Finetune] {
        if !root.link_exists(stage.as_str()) {
            continue;
        }
        let g = root.group(stage.as_str())?;
        let at = format!("{}/{stage}/", name::CURVES);
        out.push(StageReport {
            stage,
            epochs_run: r.required::<u64>(&g, &at, name::EPOCHS_RUN)? as usize,
            best_epoch: r.required::<u64>(&g, &at, name::BEST_EPOCH)? as usize,
            best_validation_loss: r.required(&g, &at, name::BEST_VALIDATION_LOSS)?,
            stopped_early: r.required(&g, &at, name::STOPPED_EARLY)?,
            train_loss: r.floats(&g, &at, name::TRAIN_LOSS)?,
            validation_loss: r.floats(&g, &at, name::VALIDATION_LOSS)?,
            seconds: r.required(&g, &at, name::SECONDS)?,
        });
    }
    Ok(out)
}

/// Reads `predictions/` of a run file.
pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let r = Reader::open(path)?;
    let g = r.group(name::PREDICTIONS)?;
    let at = name::PREDICTIONS;
    let f = |n: &str| r.floats(&g, at, n);
    let p = Predictions {
        part: r.strings(&g, at, name::PART)?,
        row: r.u64s(&g, at, name::ROW)?,
        family: r.strings(&g, at, name::FAMILY)?,
        ion: r.strings(&g, at, name::ION)?,
        jv_m_s: f(name::JV)?,
        temperature_k: f(name::TEMPERATURE)?,
        feed_mol_m3: f(name::FEED)?,
        target_permeate_mol_m3: f(name::TARGET_PERMEATE)?,
        predicted_permeate_mol_m3: f(name::PREDICTED_PERMEATE)?,
        target_rejection: f(name::TARGET_REJECTION)?,
        predicted_rejection: f(name::PREDICTED_REJECTION)?,
        rejection_lower: Vec::new(),
        rejection_upper: Vec::new(),
    };
    let mut p = p;
    if g.link_exists(name::REJECTION_LOWER) {
        p.rejection_lower = f(name::REJECTION_LOWER)?;
        p.rejection_upper = f(name::REJECTION_UPPER)?;
    }
    let n = p.ion.len();
    let columns = prediction_columns(&p);
    let mut lens = [p.part.len(), p.row.len(), p.family.len()]
        .into_iter()
        .chain(columns.iter().map(|(_, v, _)| v.len()));
    if lens.any(|l| l != n) {
        return Err(crate::failed!(
            "'{}': the datasets of 'predictions' differ in length",
            r.path
        ));
    }
    Ok(p)
}

/// Reads `attention/` of an attention-NODE run.
pub fn read_attention(path: &Path) -> Result<Attention> {
    let r = Reader::open(path)?;
    let g = r.group(name::ATTENTION)?;
    let at = name::ATTENTION;
    let read3 = |n: &str| {
        h5::open_dataset(&g, n)
            .and_then(|d| d.read::<f64, ndarray::Ix3>())
            .map_err(|e| crate::failed!("'{}': {at}/{n}: {e}", r.path))
    };
    let a = Attention {
        end: read3(name::END)?,
        mean: read3(name::MEAN)?,
        rows: r.u64s(&g, at, name::ROWS)?,
        species: r.strings(&g, at, name::SPECIES)?,
        family: r.strings(&g, at, name::FAMILY)?,
    };
    let (n, s1, s2) = a.mean.dim();
    let s = a.species.len();
    if a.end.dim() != a.mean.dim() || s1 != s || s2 != s || n != a.family.len() || n != a.rows.len()
    {
        return Err(crate::failed!(
            "'{}': attention/mean is [{n}, {s1}, {s2}] but there are {s} species and {} rows",
            r.path,
            a.family.len()
        ));
    }
    Ok(a)
}

/// Reads the trained parameters or the fitted membrane of a run, or both for a
/// physics-anchored model (its config says which).
/// One model's artefact as `run.h5` keeps it: the parameters (neural), the calibration
/// (dspmde_fit), or both (physics-anchored).
#[derive(Serialize, Deserialize)]
struct MemberArtefact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<SavedParams>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    calibration: Option<Box<DspmdeFit>>,
}

impl MemberArtefact {
    fn of(a: &Artefact) -> Result<MemberArtefact> {
        Ok(match a {
            Artefact::Params(p) => MemberArtefact {
                params: Some(p.clone()),
                calibration: None,
            },
            Artefact::Calibration(f) => MemberArtefact {
                params: None,
                calibration: Some(f.clone()),
            },
            Artefact::Anchored { params, physics } => MemberArtefact {
                params: Some(params.clone()),
                calibration: Some(physics.clone()),
            },
            Artefact::Ensemble { .. } => {
                return Err(crate::failed!("an ensemble member is itself an ensemble"))
            }
        })
    }

    /// Back to the artefact `config`'s method makes (located at `at` in `path`).
    fn into_artefact(self, config: &RunConfig, path: &str, at: &str) -> Result<Artefact> {
        let missing = |what: &str| crate::failed!("'{path}': {at} has no {what}");
        Ok(
            match (
                config.method,
                config.model.prior != ionode_model::Prior::None,
            ) {
                (Method::Neural, true) => Artefact::Anchored {
                    params: self.params.ok_or_else(|| missing("parameters"))?,
                    physics: self.calibration.ok_or_else(|| missing("calibration"))?,
                },
                (Method::Neural, false) => {
                    Artefact::Params(self.params.ok_or_else(|| missing("parameters"))?)
                }
                (Method::DspmdeFit, _) => {
                    Artefact::Calibration(self.calibration.ok_or_else(|| missing("calibration"))?)
                }
            },
        )
    }
}

/// An ensemble's artefact in `run.h5` (`ensemble_json`).
#[derive(Serialize, Deserialize)]
struct EnsembleArtefact {
    interval: IntervalFit,
    members: Vec<MemberArtefact>,
}

pub fn read_artefact(path: &Path, config: &RunConfig) -> Result<Artefact> {
    let r = Reader::open(path)?;
    if config.ensemble.is_some() {
        let e: EnsembleArtefact = r.json(name::ENSEMBLE_JSON)?;
        let members = e
            .members
            .into_iter()
            .enumerate()
            .map(|(m, a)| a.into_artefact(config, &r.path, &format!("ensemble member {m}")))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Artefact::Ensemble {
            members,
            interval: e.interval,
        });
    }
    Ok(match config.method {
        Method::Neural if config.model.prior != ionode_model::Prior::None => Artefact::Anchored {
            params: r.json(name::PARAMS_JSON)?,
            physics: Box::new(r.json(name::CALIBRATION_JSON)?),
        },
        Method::Neural => Artefact::Params(r.json(name::PARAMS_JSON)?),
        Method::DspmdeFit => Artefact::Calibration(Box::new(r.json(name::CALIBRATION_JSON)?)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let args = ["ablate", "run", "my study.toml", "--set", "a='b'", "x=1"];
        assert_eq!(
            command_line(args.map(String::from)),
            r"ablate run 'my study.toml' --set 'a='\''b'\''' x=1"
        );
    }
}
