//! `ablate train --config FILE.toml --out DIR`: one model from one config.
//!
//! The config has the keys a manifest uses for one run (see `experiments/train_example.toml`):
//! the model (every \[ours\] choice of MODEL.md), the data (a simulated pre-training set in
//! HDF5 and measured files in CSV or Parquet), the two stages (pre-training, fine-tuning),
//! the split of the measured data and the seed. The method is the neural ODE (any variant)
//! or the `dspmde_fit` baseline (DSPM-DE calibrated on the same training rows).
//!
//! Outputs in DIR, each written atomically: `metrics.json` (per split: overall and per-ion
//! rejection MAE/RMSE, R^2, electroneutrality residual), `predictions.csv` (one row per test
//! sample and ion), `params.json` (neural) or `calibration.json` (baseline), `curves.json`
//! (loss per epoch and stage) and `run.json` (the resolved config and its provenance: git
//! commit, input file hashes).

use crate::cli::TrainArgs;
use crate::runner::{execute, Artefact, DataCache};
use crate::{h5, output, provenance};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_model::ModelConfig;
use ionode_physics::simulate::Dataset;
use ionode_train::calibrate::CalibrationConfig;
use ionode_train::error::TrainError;
use ionode_train::metrics::{Metrics, SplitMetrics};
use ionode_train::split::SplitSpec;
use ionode_train::trainer::{EpochReport, StageConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The run config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Seeds the model's initial weights, the splits, the batch order and augmentation.
    pub seed: u64,
    #[serde(default)]
    pub method: Method,
    #[serde(default)]
    pub model: ModelConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub pretrain: Option<StageConfig>,
    #[serde(default)]
    pub finetune: Option<StageConfig>,
    /// How the measured data is split (`kind = "random" | "by_family" | "first_n"`).
    #[serde(default)]
    pub split: Option<SplitSpec>,
    #[serde(default)]
    pub calibration: CalibrationConfig,
}

/// What is trained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The neural model of `[model]` (attention_node, node or mlp).
    #[default]
    Neural,
    /// DSPM-DE with its membrane calibrated on the training rows.
    DspmdeFit,
}

/// The data of a run. Paths are relative to the working directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A pre-training set written by `ablate simulate`.
    #[serde(default)]
    pub pretrain: Option<PathBuf>,
    /// Use only the first N simulated feeds (each with all its fluxes).
    #[serde(default)]
    pub pretrain_max_feeds: Option<usize>,
    /// Fractions of simulated feeds held out for validation and test of pre-training.
    #[serde(default = "tenth")]
    pub pretrain_validation_fraction: f64,
    #[serde(default = "tenth")]
    pub pretrain_test_fraction: f64,
    /// Measured-data files (CSV or Parquet, datasets/README.md).
    #[serde(default)]
    pub measured: Vec<PathBuf>,
    /// Balance each measured feed with this ion.
    #[serde(default)]
    pub balance_with: Option<String>,
}

fn tenth() -> f64 {
    0.1
}

impl DataConfig {
    /// Checks the fields that do not need the data: the pre-training fractions leave
    /// something to train on, `pretrain_max_feeds` is at least 1.
    pub fn validate(&self) -> Result<(), TrainError> {
        for (field, v) in [
            (
                "pretrain_validation_fraction",
                self.pretrain_validation_fraction,
            ),
            ("pretrain_test_fraction", self.pretrain_test_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(TrainError::invalid(field, v, "a fraction in [0, 1)"));
            }
        }
        if self.pretrain_validation_fraction + self.pretrain_test_fraction >= 1.0 {
            return Err(TrainError::invalid(
                "pretrain_validation_fraction",
                self.pretrain_validation_fraction,
                format!(
                    "a fraction that leaves training feeds beside pretrain_test_fraction = {}",
                    self.pretrain_test_fraction
                ),
            ));
        }
        if self.pretrain_max_feeds == Some(0) {
            return Err(TrainError::invalid("pretrain_max_feeds", 0, "at least 1"));
        }
        Ok(())
    }
}

/// Loads a simulated dataset back from `ablate simulate`'s HDF5 file.
pub(crate) fn read_simulation(path: &Path) -> Result<Dataset> {
    use hdf5_metno as hdf5;
    let file = hdf5::File::open(path)
        .with_context(|| format!("cannot open pre-training set '{}'", path.display()))?;
    let ctx = |name: &str| format!("pre-training set '{}': dataset '{name}'", path.display());
    let species = h5::read_strings(&file, "species").with_context(|| ctx("species"))?;
    // Each feed's temperature; files written before temperature ranges existed record one
    // temperature in their generator config.
    let n_samples = file
        .dataset("feed")
        .map(|d| d.shape().first().copied().unwrap_or(0))
        .with_context(|| ctx("feed"))?;
    let temperature_k = if file.link_exists("temperature_k") {
        file.dataset("temperature_k")
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
        charges: file
            .dataset("charge")
            .and_then(|d| d.read_raw::<i32>())
            .with_context(|| ctx("charge"))?,
        fluxes_m_s: file
            .dataset("flux_m_s")
            .and_then(|d| d.read_raw::<f64>())
            .with_context(|| ctx("flux_m_s"))?,
        feed: file
            .dataset("feed")
            .and_then(|d| d.read_2d::<f64>())
            .with_context(|| ctx("feed"))?,
        mask: file
            .dataset("mask")
            .and_then(|d| d.read_2d::<u8>())
            .with_context(|| ctx("mask"))?,
        permeate: file
            .dataset("permeate")
            .and_then(|d| d.read::<f64, ndarray::Ix3>())
            .with_context(|| ctx("permeate"))?,
        rejection: file
            .dataset("rejection")
            .and_then(|d| d.read::<f64, ndarray::Ix3>())
            .with_context(|| ctx("rejection"))?,
        pressure_pa: file
            .dataset("pressure_pa")
            .and_then(|d| d.read_2d::<f64>())
            .with_context(|| ctx("pressure_pa"))?,
        status: file
            .dataset("status")
            .and_then(|d| d.read_2d::<u8>())
            .with_context(|| ctx("status"))?,
        species,
        failures: Vec::new(),
    })
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]") {
        bar.set_style(style);
    }
    bar
}

/// Per epoch: the progress bar's message (stage, epoch, losses, best epoch and the stage's
/// ETA from the mean epoch time so far; early stopping can end it sooner). When stderr is
/// not a terminal (Slurm output files, CI logs) the bar is hidden, so the same text is
/// printed as one line per epoch instead, unless `-v` already logs every epoch.
fn report_epoch(bar: &ProgressBar) -> impl FnMut(&EpochReport) + '_ {
    let plain_lines = !std::io::stderr().is_terminal() && !tracing::enabled!(tracing::Level::INFO);
    let mut stage_seconds = (String::new(), 0.0);
    move |r: &EpochReport| {
        if stage_seconds.0 != r.stage {
            stage_seconds = (r.stage.clone(), 0.0);
        }
        stage_seconds.1 += r.seconds;
        let eta = stage_seconds.1 / (r.epoch + 1) as f64 * (r.epochs - r.epoch - 1) as f64;
        let text = format!(
            "{} epoch {}/{}: train {:.3e}, validation {:.3e} (best epoch {}), stage ETA {}",
            r.stage,
            r.epoch + 1,
            r.epochs,
            r.train_loss,
            r.validation_loss,
            r.best_epoch + 1,
            clock(eta)
        );
        if plain_lines {
            eprintln!("{text}");
        }
        bar.set_message(text);
        bar.tick();
        tracing::info!(stage = %r.stage, epoch = r.epoch, train = r.train_loss, validation = r.validation_loss, "epoch");
    }
}

/// Seconds as `h:mm:ss`.
pub(crate) fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> Result<()> {
    let cache = DataCache::default();
    let config = crate::manifest::load_run_config(&args.config, &cache)
        .map_err(|p| super::problems("config", &args.config, p))?;
    let text = crate::limits::read_text(&args.config, crate::limits::MAX_TEXT_FILE_BYTES)
        .with_context(|| format!("cannot read config '{}'", args.config.display()))?;
    let bar = progress_bar();
    let outcome = execute(&config, config.seed, &cache, &mut report_epoch(&bar))
        .with_context(|| format!("config '{}'", args.config.display()))?;
    bar.finish_and_clear();
    let metrics = match &outcome.metrics {
        serde_json::Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let artefact = match &outcome.artefact {
        Artefact::Params(_) => ("params.json", outcome.artefact.to_json()),
        Artefact::Calibration(_) => ("calibration.json", outcome.artefact.to_json()),
    };

    // Outputs.
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let inputs = &outcome.inputs;
    let git = provenance::git_state();
    let run = json!({
        "config": config,
        "config_file": args.config.display().to_string(),
        "config_hash": provenance::text_hash(&text),
        "inputs": inputs,
        "domain": outcome.domain,
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "ionode_version": env!("CARGO_PKG_VERSION"),
    });
    let pretty =
        |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("JSON values serialise");
    output::write_text(
        &out.join("metrics.json"),
        &pretty(&serde_json::Value::Object(metrics.clone())),
    )?;
    output::write_text(&out.join("predictions.csv"), &outcome.predictions.to_csv())?;
    output::write_text(
        &out.join("curves.json"),
        &pretty(&serde_json::to_value(&outcome.curves)?),
    )?;
    output::write_text(&out.join(artefact.0), &pretty(&artefact.1))?;
    // A calibrated membrane, in the file format every --membrane accepts.
    let source = format!("ablate train --config {}", args.config.display());
    if let Some(m) = outcome.artefact.membrane_file(&source) {
        output::write_text(&out.join("membrane.toml"), &m.to_toml())?;
    }
    output::write_text(&out.join("run.json"), &pretty(&run))?;

    let summary = |m: &Option<Metrics>| {
        m.as_ref()
            .and_then(|m| m.mae)
            .map_or("-".to_string(), |v| format!("{v:.4}"))
    };
    for (name, value) in &metrics {
        let split: SplitMetrics = serde_json::from_value(value.clone())?;
        eprintln!(
            "{name}: rejection MAE train {}, validation {}, test {}",
            summary(&split.train),
            summary(&split.validation),
            summary(&split.test)
        );
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_hours_minutes_seconds() {
        assert_eq!(clock(0.4), "0:00:00");
        assert_eq!(clock(59.6), "0:01:00");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(-3.0), "0:00:00");
    }

    /// The documented single-run configs in `experiments/` parse and their models validate
    /// (a key renamed in the code would otherwise only show when a user runs them).
    #[test]
    fn example_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        for name in ["train_example.toml", "pretrain_nf270.toml"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let config: TrainConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            config.model.validate().unwrap();
            assert!(config.pretrain.is_some(), "{name}");
        }
    }
}
