//! `ablate train --config FILE.toml --out DIR`: one model from one config.
//!
//! The config has the keys a manifest uses for one run (see `experiments/train_example.toml`):
//! the model (every [ours] choice of MODEL.md), the data (a simulated pre-training set in
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
use crate::{h5, output, provenance, tabular};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_autodiff::ParamStore;
use ionode_model::{Batch, Model, ModelConfig, SavedParams};
use ionode_physics::simulate::Dataset;
use ionode_physics::IonDb;
use ionode_train::calibrate::{dspmde_fit, CalibrationConfig};
use ionode_train::data::Samples;
use ionode_train::measured::{parse_csv, LoadOptions};
use ionode_train::metrics::{Metrics, SplitMetrics};
use ionode_train::split::{Split, SplitSpec};
use ionode_train::trainer::{train_stage, EpochReport, StageConfig, StageReport};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use serde_json::json;
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

/// Loads a simulated dataset back from `ablate simulate`'s HDF5 file.
fn read_simulation(path: &Path) -> Result<Dataset> {
    use hdf5_metno as hdf5;
    let file = hdf5::File::open(path)
        .with_context(|| format!("cannot open pre-training set '{}'", path.display()))?;
    let ctx = |name: &str| format!("pre-training set '{}': dataset '{name}'", path.display());
    let species = h5::read_strings(&file, "species").with_context(|| ctx("species"))?;
    Ok(Dataset {
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

/// Measured files as one sample set over the model's slots.
fn read_measured(config: &TrainConfig, slots: &[&str], db: &IonDb) -> Result<Option<Samples>> {
    let options = LoadOptions {
        balance_with: config.data.balance_with.clone(),
        ..LoadOptions::default()
    };
    let mut parts = Vec::new();
    for path in &config.data.measured {
        let text = tabular::read_text(path)?;
        let name = path.display().to_string();
        let data = parse_csv(&text, &name, &options, db)
            .map_err(|e| anyhow::anyhow!("{}", e.lines().join("; ")))?;
        parts.push(
            Samples::from_measured(&data, slots)
                .with_context(|| format!("measured data '{name}'"))?,
        );
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(Samples::concat(&parts)?))
}

/// Predictions of the neural model for every row, in chunks.
fn predict(model: &Model, store: &ParamStore, samples: &Samples) -> Result<Array2<f64>> {
    let mut out = Array2::zeros(samples.feed_mol_m3.dim());
    let mut tape = ionode_autodiff::Tape::new();
    let rows: Vec<usize> = (0..samples.len()).collect();
    for chunk in rows.chunks(512) {
        let b = samples.to_batch_arrays(chunk);
        let pred = model.predict_with(&mut tape, store, &Batch::new(b.feed, b.mask, b.flux))?;
        for (k, &row) in chunk.iter().enumerate() {
            out.row_mut(row).assign(&pred.permeate_mol_m3.row(k));
        }
    }
    Ok(out)
}

/// One row per test sample and present ion.
fn predictions_csv(
    samples: &Samples,
    rows: &[usize],
    predicted: &Array2<f64>,
    part: &str,
) -> String {
    let mut out = String::from(
        "part,row,family,ion,jv_m_s,feed_mol_m3,target_permeate_mol_m3,predicted_permeate_mol_m3,target_rejection,predicted_rejection\n",
    );
    for &r in rows {
        for (s, ion) in samples.species.iter().enumerate() {
            if !samples.mask[[r, s]] {
                continue;
            }
            let (feed, target, pred) = (
                samples.feed_mol_m3[[r, s]],
                samples.permeate_mol_m3[[r, s]],
                predicted[[r, s]],
            );
            let family = samples.family[r]
                .clone()
                .unwrap_or_default()
                .replace(',', ";");
            out.push_str(&format!(
                "{part},{r},{family},{ion},{:?},{feed:?},{target:?},{pred:?},{:?},{:?}\n",
                samples.flux_m_s[r],
                1.0 - target / feed,
                1.0 - pred / feed
            ));
        }
    }
    out
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]") {
        bar.set_style(style);
    }
    bar
}

fn report_epoch(bar: &ProgressBar) -> impl FnMut(&EpochReport) + '_ {
    move |r: &EpochReport| {
        bar.set_message(format!(
            "{} epoch {}/{}: train {:.3e}, validation {:.3e} (best epoch {})",
            r.stage,
            r.epoch + 1,
            r.epochs,
            r.train_loss,
            r.validation_loss,
            r.best_epoch + 1
        ));
        bar.tick();
        tracing::info!(stage = %r.stage, epoch = r.epoch, train = r.train_loss, validation = r.validation_loss, "epoch");
    }
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read config '{}'", args.config.display()))?;
    let config: TrainConfig =
        toml::from_str(&text).with_context(|| format!("config '{}'", args.config.display()))?;
    config
        .model
        .validate()
        .with_context(|| format!("config '{}': [model]", args.config.display()))?;
    let db = IonDb::builtin();
    let slot_names: Vec<String> = config.model.slots.iter().map(|s| s.name.clone()).collect();
    let slots: Vec<&str> = slot_names.iter().map(String::as_str).collect();
    let seed = config.seed;

    // Data.
    let pretrain = match &config.data.pretrain {
        Some(path) => {
            let data = read_simulation(path)?;
            let (mut samples, skipped) = Samples::from_simulation(&data, &slots)
                .with_context(|| format!("pre-training set '{}'", path.display()))?;
            if let Some(max) = config.data.pretrain_max_feeds {
                let keep: Vec<usize> = (0..samples.len())
                    .filter(|&i| samples.origin[i] < max)
                    .collect();
                samples = samples.subset(&keep);
            }
            tracing::info!(rows = samples.len(), skipped, "pre-training set loaded");
            Some(samples)
        }
        None => None,
    };
    let measured = read_measured(&config, &slots, &db)?;
    if pretrain.is_none() && measured.is_none() {
        bail!(
            "config '{}': [data] names no pretrain set and no measured files",
            args.config.display()
        );
    }
    let measured_split: Option<Split> = match (&measured, &config.split) {
        (Some(m), Some(spec)) => Some(spec.split(m, seed)?),
        (Some(_), None) => bail!(
            "config '{}': measured data needs a [split]",
            args.config.display()
        ),
        _ => None,
    };

    let bar = progress_bar();
    let mut curves: Vec<StageReport> = Vec::new();
    let mut metrics = serde_json::Map::new();
    let mut predictions = String::new();

    let artefact: (&str, serde_json::Value) = match config.method {
        Method::Neural => {
            let mut store = ParamStore::new();
            let model = Model::new(config.model.clone(), &mut store, seed)?;
            // Pre-training on held-out simulated feeds, then fine-tuning on the measured
            // split; each stage is optional and scored on its own data.
            let pretrain_split = match &pretrain {
                Some(samples) => Some(
                    SplitSpec::Random {
                        test_fraction: config.data.pretrain_test_fraction,
                        validation_fraction: config.data.pretrain_validation_fraction,
                    }
                    .split(samples, seed)?,
                ),
                None => None,
            };
            let stages = [
                ("pretrain", &pretrain, &pretrain_split, &config.pretrain),
                ("measured", &measured, &measured_split, &config.finetune),
            ];
            for (name, samples, split, stage) in stages {
                let (Some(samples), Some(split)) = (samples, split) else {
                    continue;
                };
                if let Some(stage) = stage {
                    let (train, validation) = (
                        samples.subset(&split.train),
                        samples.subset(&split.validation),
                    );
                    let stage_name = if name == "pretrain" {
                        "pretrain"
                    } else {
                        "finetune"
                    };
                    curves.push(train_stage(
                        stage_name,
                        &model,
                        &mut store,
                        &train,
                        &validation,
                        stage,
                        seed,
                        &mut report_epoch(&bar),
                    )?);
                }
                let predicted = predict(&model, &store, samples)?;
                let scored = SplitMetrics::compute(samples, split, predicted.view())?;
                metrics.insert(name.into(), serde_json::to_value(scored)?);
                // The test predictions of the last scored data (measured, if any).
                let part = if name == "pretrain" {
                    "pretrain_test"
                } else {
                    "test"
                };
                predictions = predictions_csv(samples, &split.test, &predicted, part);
            }
            (
                "params.json",
                serde_json::to_value(SavedParams::from_store(&store))?,
            )
        }
        Method::DspmdeFit => {
            let (Some(samples), Some(split)) = (&measured, &measured_split) else {
                bail!(
                    "config '{}': method = \"dspmde_fit\" needs measured data and a [split]",
                    args.config.display()
                );
            };
            let ions = samples.slot_ions(&db)?;
            let train = samples.subset(&split.train);
            bar.set_message("calibrating DSPM-DE on the training rows");
            let fit = dspmde_fit(&train, &ions, &config.calibration)?;
            let predicted = fit.predict(samples)?.permeate;
            metrics.insert(
                "measured".into(),
                serde_json::to_value(SplitMetrics::compute(samples, split, predicted.view())?)?,
            );
            predictions = predictions_csv(samples, &split.test, &predicted, "test");
            ("calibration.json", serde_json::to_value(&fit)?)
        }
    };
    bar.finish_and_clear();

    // Outputs.
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let mut inputs = serde_json::Map::new();
    for path in config.data.pretrain.iter().chain(&config.data.measured) {
        inputs.insert(
            path.display().to_string(),
            json!(provenance::file_hash(path)?),
        );
    }
    let git = provenance::git_state();
    let run = json!({
        "config": config,
        "config_file": args.config.display().to_string(),
        "config_hash": provenance::text_hash(&text),
        "inputs": inputs,
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
    output::write_text(&out.join("predictions.csv"), &predictions)?;
    output::write_text(
        &out.join("curves.json"),
        &pretty(&serde_json::to_value(&curves)?),
    )?;
    output::write_text(&out.join(artefact.0), &pretty(&artefact.1))?;
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
