//! `ablate report DIR`: every finished run of a study into one table (`summary.parquet`,
//! `summary.csv`), the paper tables (`tables/`, Markdown and LaTeX) and the figures
//! (`figures/`, PNG and SVG).
//!
//! The summary is the lossless layer (one row per run, axis values as text, every
//! headline metric); the tables and figures are views of it grouped by configuration, so
//! a reader can always recompute a table cell from `summary.csv`.

use crate::cli::ReportArgs;
use crate::output;
use crate::report::collect::{collect, Run, Study};
use crate::report::{figures, raw, tables};
use anyhow::{Context, Result};
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};
use std::fmt::Write as _;
use std::path::Path;

pub fn run(args: &ReportArgs) -> Result<()> {
    let study = collect(&args.dir)?;
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("report"));
    let mut df = summary(&study)?;
    // With --out everything goes there (the study folder may be read-only); without it
    // the summary sits beside the runs and the rest under DIR/report.
    let summary_dir = args.out.clone().unwrap_or_else(|| args.dir.clone());
    write_summary(&mut df, &summary_dir)?;
    let (tables, table_notes) = tables::write(&study, &out)?;
    let (figs, fig_notes) = figures::write(&study, &out)?;

    let mut text = String::new();
    writeln!(
        text,
        "{} finished run(s) read from {}; {} run folder(s) without DONE skipped{}",
        study.runs.len(),
        study.dir.join("runs").display(),
        study.skipped.len(),
        if study.synthetic() {
            " (synthetic data)"
        } else {
            ""
        }
    )?;
    for (id, why) in &study.damaged {
        writeln!(
            text,
            "skipped damaged run {id}: {why} (`ablate run` reruns it)"
        )?;
    }
    writeln!(
        text,
        "summary: {} and {} ({} rows, {} columns)",
        summary_dir.join("summary.parquet").display(),
        summary_dir.join("summary.csv").display(),
        df.height(),
        df.width()
    )?;
    writeln!(
        text,
        "tables in {}: {}",
        out.join("tables").display(),
        tables.join(", ")
    )?;
    writeln!(
        text,
        "figures in {} (PNG and SVG): {}",
        out.join("figures").display(),
        figs.join(", ")
    )?;
    for note in table_notes.iter().chain(&fig_notes) {
        writeln!(text, "note: {note}")?;
    }
    super::print_stdout(&text)
}

/// The metrics of the summary: (column, stage, part, metric).
const METRICS: [(&str, &str, &str, &str); 11] = [
    ("test_mae", "measured", "test", "mae"),
    ("test_rmse", "measured", "test", "rmse"),
    ("test_r2", "measured", "test", "r2"),
    ("test_en_mean", "measured", "test", "electroneutrality_mean"),
    ("test_en_max", "measured", "test", "electroneutrality_max"),
    ("validation_mae", "measured", "validation", "mae"),
    ("validation_rmse", "measured", "validation", "rmse"),
    ("validation_r2", "measured", "validation", "r2"),
    (
        "validation_en_mean",
        "measured",
        "validation",
        "electroneutrality_mean",
    ),
    (
        "validation_en_max",
        "measured",
        "validation",
        "electroneutrality_max",
    ),
    ("pretrain_test_mae", "pretrain", "test", "mae"),
];

/// One row per run: id, every axis (as text), method, metrics, per-ion test MAE, seconds,
/// provenance.
pub fn summary(study: &Study) -> Result<DataFrame> {
    let runs = &study.runs;
    let n = runs.len();
    let text = |name: &str, f: &dyn Fn(&Run) -> Option<String>| {
        Column::new(name.into(), runs.iter().map(f).collect::<Vec<_>>())
    };
    let num = |name: &str, f: &dyn Fn(&Run) -> Option<f64>| {
        Column::new(name.into(), runs.iter().map(f).collect::<Vec<_>>())
    };
    let mut cols = vec![
        text("run_id", &|r| Some(r.run_id.clone())),
        Column::new(
            "plan_index".into(),
            runs.iter().map(|r| r.plan_index).collect::<Vec<_>>(),
        ),
    ];
    for axis in study.axes() {
        // A run without the axis, or with it set to null (the DSPM-DE baseline has no
        // model variant), gets an empty cell rather than the text "null".
        cols.push(text(&axis, &|r| {
            r.axes.get(&axis).filter(|v| !v.is_null()).map(raw)
        }));
    }
    // `run_method` is the run's own `method` attribute; a manifest may also have an axis
    // called `method`, hence the prefix.
    cols.push(text("run_method", &|r| Some(r.method.clone())));
    for (name, stage, part, metric) in METRICS {
        // Pre-training metrics exist only for pre-trained runs; the column only when any.
        if stage == "pretrain" && runs.iter().all(|r| r.metric(stage, part, metric).is_none()) {
            continue;
        }
        cols.push(num(name, &|r| r.metric(stage, part, metric)));
    }
    let mut species: Vec<String> = runs
        .iter()
        .flat_map(|r| r.per_ion("test", "mae").into_keys())
        .collect();
    species.sort();
    species.dedup();
    for s in &species {
        cols.push(num(&format!("test_mae_{s}"), &|r| {
            r.per_ion("test", "mae").get(s).copied()
        }));
    }
    cols.push(num("seconds_total", &|r| r.seconds_total));
    cols.push(num("seconds_pretrain", &|r| r.seconds_pretrain));
    cols.push(num("seconds_finetune", &|r| r.seconds_finetune));
    cols.push(Column::new(
        "synthetic".into(),
        runs.iter().map(|r| r.synthetic).collect::<Vec<_>>(),
    ));
    cols.push(text("git_commit", &|r| Some(r.git_commit.clone())));
    cols.push(Column::new(
        "git_dirty".into(),
        runs.iter().map(|r| r.git_dirty).collect::<Vec<_>>(),
    ));
    cols.push(text("manifest_hash", &|r| Some(r.manifest_hash.clone())));
    DataFrame::new(n, cols).context("cannot build the summary table")
}

fn write_summary(df: &mut DataFrame, dir: &Path) -> Result<()> {
    let parquet = dir.join("summary.parquet");
    output::write_atomically(&parquet, |tmp| {
        let mut file = std::fs::File::create(tmp)
            .with_context(|| format!("cannot write '{}'", tmp.display()))?;
        ParquetWriter::new(&mut file)
            .finish(df)
            .with_context(|| format!("cannot write Parquet '{}'", tmp.display()))?;
        Ok(())
    })?;
    let csv = dir.join("summary.csv");
    output::write_atomically(&csv, |tmp| {
        let mut file = std::fs::File::create(tmp)
            .with_context(|| format!("cannot write '{}'", tmp.display()))?;
        CsvWriter::new(&mut file)
            .include_header(true)
            .finish(df)
            .with_context(|| format!("cannot write CSV '{}'", tmp.display()))
    })
}
