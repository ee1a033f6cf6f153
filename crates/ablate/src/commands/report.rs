//! `ablate report DIR`: every finished run of a study into one table (`summary.parquet`,
//! `summary.csv`), the paper tables (`tables/`, Markdown and LaTeX), the figures
//! (`figures/`, PNG, SVG and PDF) and one page with all of it (`index.html`).
//!
//! The summary is the lossless layer (one row per run, typed columns: roles, the flattened
//! config, every metric, provenance; `report::summary`); the tables and figures are
//! computed from it grouped by configuration, so a reader can recompute any table cell
//! from `summary.parquet` with polars.

use crate::cli::ReportArgs;
use crate::report::collect::collect;
use crate::report::{figures, groups, html, roles, summary, tables};
use anyhow::Result;
use std::fmt::Write as _;

pub fn run(args: &ReportArgs) -> Result<()> {
    let study = collect(&args.dir)?;
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("report"));
    let roles = roles(&study);
    let mut df = summary::frame(&study, &roles)?;
    // With --out everything goes there (the study folder may be read-only); without it
    // the summary sits beside the runs and the rest under DIR/report.
    let summary_dir = args.out.clone().unwrap_or_else(|| args.dir.clone());
    std::fs::create_dir_all(&summary_dir)
        .map_err(|e| anyhow::anyhow!("cannot create '{}': {e}", summary_dir.display()))?;
    summary::write(&mut df, &summary_dir)?;
    let groups = groups(&roles);
    let metrics = tables::Metrics::of(&df)?;
    let (mut tables, table_notes) = tables::write(&study, &groups, &metrics, &out)?;
    if let Some(t) = crate::report::search::write(&args.dir, &out)? {
        tables.insert(0, t);
    }
    let (figs, fig_notes) = figures::write(&study, &groups, &metrics.test_mae, &out)?;
    let notes: Vec<String> = table_notes.iter().chain(&fig_notes).cloned().collect();
    html::write(&study, &df, &tables, &figs, &notes, &out)?;

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
        "tables in {} (Markdown and LaTeX): {}",
        out.join("tables").display(),
        tables
            .iter()
            .map(|t| t.stem.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        text,
        "figures in {} (PNG, SVG and PDF): {}",
        out.join("figures").display(),
        figs.join(", ")
    )?;
    writeln!(text, "page: {}", out.join("index.html").display())?;
    for note in &notes {
        writeln!(text, "note: {note}")?;
    }
    super::print_stdout(&text)
}
