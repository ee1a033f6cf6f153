//! `ablate train --config FILE.toml --out DIR`: one model from one config.
//!
//! The config has the keys a manifest uses for one run (see `experiments/train_example.toml`):
//! the model (every \[ours\] choice of MODEL.md), the data (a simulated pre-training set in
//! HDF5, named as a file or as `ablate simulate` settings generated once into
//! `datasets/sim/`, and measured files in CSV or Parquet), the two stages (pre-training, fine-tuning),
//! the split of the measured data and the seed. The method is the neural ODE (any variant)
//! or the `dspmde_fit` baseline (DSPM-DE calibrated on the same training rows).
//!
//! Outputs in DIR, each written atomically: `run.h5`, the run's record in the same schema
//! as a study's runs ([`ionode_study::record`]: config, provenance, metrics, curves, predictions,
//! attention, the trained parameters or fitted membrane; what `ablate predict --run DIR`
//! reads), and three views of it for people and scripts: `metrics.json` (per split:
//! overall and per-ion rejection MAE/RMSE, R^2, electroneutrality residual),
//! `predictions.csv` (one row per test sample and ion) and, for a `dspmde_fit` run,
//! `membrane.toml` (the fitted membrane, usable as `--membrane FILE`).

use crate::cli::TrainArgs;
use crate::progress;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_study::errors::OrUsage;
use ionode_study::record::{self, Provenance};
use ionode_study::runner::{execute, DataCache};
use ionode_study::store::RUN_FILE;
use ionode_study::{membrane, output, provenance};
use ionode_train::metrics::Metrics;
use ionode_train::run::Predictions;
use ionode_train::trainer::{EpochReport, Stage};

/// The `predictions.csv` of `ablate train` (commas in family names become `;`).
pub fn predictions_csv(p: &Predictions) -> String {
    let bounds = !p.rejection_lower.is_empty();
    let mut out = String::from(
        "part,row,family,ion,jv_m_s,feed_mol_m3,target_permeate_mol_m3,predicted_permeate_mol_m3,target_rejection,predicted_rejection",
    );
    if bounds {
        out.push_str(",rejection_lower,rejection_upper");
    }
    out.push('\n');
    for k in 0..p.len() {
        out.push_str(&format!(
            "{},{},{},{},{:?},{:?},{:?},{:?},{:?},{:?}",
            p.part[k],
            p.row[k],
            p.family[k].replace(',', ";"),
            p.ion[k],
            p.jv_m_s[k],
            p.feed_mol_m3[k],
            p.target_permeate_mol_m3[k],
            p.predicted_permeate_mol_m3[k],
            p.target_rejection[k],
            p.predicted_rejection[k],
        ));
        if bounds {
            out.push_str(&format!(
                ",{:?},{:?}",
                p.rejection_lower[k], p.rejection_upper[k]
            ));
        }
        out.push('\n');
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

/// Per epoch: the progress bar's message (stage, epoch, losses, best epoch and the stage's
/// ETA from the mean epoch time so far; early stopping can end it sooner). When stderr is
/// not a terminal (Slurm output files, CI logs) the bar is hidden, so the same text is
/// printed as one line per epoch instead, unless `-v` already logs every epoch.
fn report_epoch(bar: &ProgressBar) -> impl FnMut(&EpochReport) + '_ {
    let plain_lines = progress::plain_lines();
    let mut stage_seconds = (Stage::Pretrain, 0.0);
    move |r: &EpochReport| {
        if stage_seconds.0 != r.stage {
            stage_seconds = (r.stage, 0.0);
        }
        stage_seconds.1 += r.seconds;
        let eta = stage_seconds.1 / (r.epoch + 1) as f64 * (r.epochs - r.epoch - 1) as f64;
        // Without validation rows every epoch runs and the last is kept.
        let validation = if r.validation_loss.is_nan() {
            "no validation rows".to_string()
        } else {
            format!(
                "validation {:.3e} (best epoch {})",
                r.validation_loss,
                r.best_epoch + 1
            )
        };
        let text = format!(
            "{} epoch {}/{}: train {:.3e}, {validation}, stage ETA {}",
            r.stage,
            r.epoch + 1,
            r.epochs,
            r.train_loss,
            progress::clock(eta)
        );
        if plain_lines {
            eprintln!("{text}");
        }
        bar.set_message(text);
        bar.tick();
        tracing::info!(stage = %r.stage, epoch = r.epoch, train = r.train_loss, validation = r.validation_loss, "epoch");
    }
}

/// Runs the command.
pub fn run(args: &TrainArgs) -> Result<()> {
    let cache = DataCache::default();
    let ionode_study::manifest::RunConfigFile {
        config,
        pretrain_generator,
    } = ionode_study::manifest::load_run_config(&args.config, &cache)
        .map_err(|p| super::problems("config", &args.config, p))?;
    let text =
        ionode_study::limits::read_text(&args.config, ionode_study::limits::MAX_TEXT_FILE_BYTES)
            .or_usage(|| format!("cannot read config '{}'", args.config.display()))?;
    let threads = match args.threads {
        Some(0) => return Err(crate::usage!("--threads 0: expected at least 1")),
        Some(n) if n > ionode_study::limits::MAX_JOBS => {
            return Err(crate::usage!(
                "--threads {n}: expected at most {}",
                ionode_study::limits::MAX_JOBS
            ))
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if let (Some(spec), Some(file)) = (&pretrain_generator, &config.data.pretrain) {
        let db = ionode_physics::IonDb::builtin();
        spec.ensure(
            std::path::Path::new(""),
            &db,
            Some(threads),
            file,
            "[data.pretrain]",
            &|m| eprintln!("{m}"),
        )?;
    }
    let bar = progress_bar();
    let executed = execute(
        &config,
        config.seed,
        threads,
        &cache,
        &mut report_epoch(&bar),
    )
    .with_context(|| format!("config '{}'", args.config.display()))?;
    bar.finish_and_clear();
    let outcome = &executed.outcome;

    // Outputs.
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create '{}'", out.display()))?;
    let config_file = args.config.display().to_string();
    let config_hash = provenance::text_hash(&text);
    let process = Provenance::of_process(
        config.name.as_deref().unwrap_or(""),
        &config_file,
        &config_hash,
    );
    let head = record::Head::new(
        process.of_run(&config_hash, None),
        config.clone().into_inner(),
        Default::default(),
        executed.inputs.clone(),
    );
    let source = format!("ablate train --config {config_file}");
    let membrane = membrane::calibrated(&outcome.artefact, &source).map(|m| m.to_toml());
    record::write(
        &out.join(RUN_FILE),
        &head,
        outcome,
        membrane.as_deref(),
        ionode_study::output::Commit::Replace,
    )?;
    // The facts cache `ablate runs` reads, from the values just written (a query would
    // make it from `run.h5` otherwise).
    if let (Ok(stored), Ok(sum)) = (
        record::Stored::of(&head, outcome),
        ionode_study::store::checksum(&out.join(RUN_FILE)),
    ) {
        let _ = ionode_study::facts::write_finished(out, stored, &sum);
    }
    let pretty = serde_json::to_string_pretty(&outcome.metrics)? + "\n";
    output::write_text(&out.join("metrics.json"), &pretty)?;
    output::write_text(
        &out.join("predictions.csv"),
        &predictions_csv(&outcome.predictions),
    )?;
    if let Some(m) = &membrane {
        output::write_text(&out.join("membrane.toml"), m)?;
    }

    let summary = |m: &Option<Metrics>| {
        m.as_ref()
            .and_then(|m| m.mae)
            .map_or("-".to_string(), |v| format!("{v:.4}"))
    };
    let stages = [
        ("pretrain", &outcome.metrics.pretrain),
        ("measured", &outcome.metrics.measured),
    ];
    for (name, split) in stages {
        let Some(split) = split else { continue };
        eprintln!(
            "{name}: rejection MAE train {}, validation {}, test {}",
            summary(&split.train),
            summary(&split.validation),
            summary(&split.test)
        );
    }
    if let (Some(e), Some(m)) = (&config.ensemble, &outcome.metrics.measured) {
        let cov = |m: &Option<Metrics>| {
            m.as_ref()
                .and_then(|m| Some((m.coverage?, m.interval_width?)))
                .map_or("-".to_string(), |(c, w)| {
                    format!("{:.1} % (width {w:.3})", 100.0 * c)
                })
        };
        eprintln!(
            "{} members, {:.0} % intervals ({}): coverage validation {}, test {}",
            e.members,
            100.0 * e.level,
            e.interval.as_str(),
            cov(&m.validation),
            cov(&m.test)
        );
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The documented single-run configs in `experiments/` parse and their models validate
    /// (a key renamed in the code would otherwise only show when a user runs them).
    #[test]
    fn example_configs_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        for name in [
            "train_example.toml",
            "pretrain_nf270.toml",
            "nf270_fdl2021_final.toml",
            "nf270_fdl2021_dspmde.toml",
        ] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let mut table: toml::Table =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            // A pre-training set named by its `ablate simulate` settings.
            let data = table["data"].as_table_mut().unwrap();
            if let Some(toml::Value::Table(settings)) = data.get("pretrain") {
                let spec: ionode_study::simulator::SimulatorSpec = settings
                    .clone()
                    .try_into()
                    .unwrap_or_else(|e| panic!("{name}: data.pretrain: {e}"));
                let db = ionode_physics::IonDb::builtin();
                spec.to_config(std::path::Path::new(""), &db).unwrap();
                data.insert("pretrain".into(), "generated.h5".into());
            }
            let config: ionode_train::run::RunConfig =
                table.try_into().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(config.problems(), vec![], "{name}");
        }
    }
}
