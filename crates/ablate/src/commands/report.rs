//! `ablate report DIR`: every finished run of a study into one table (`summary.parquet`,
//! `summary.csv`), the paper tables (`tables/`, Markdown and LaTeX), the figures
//! (`figures/`, PNG, SVG and PDF) and one page with all of it (`index.html`).
//!
//! The summary is the lossless layer (one row per run, typed columns: roles, the flattened
//! config, every metric, provenance; `report::summary`); the tables and figures are
//! computed from it grouped by configuration, so a reader can recompute any table cell
//! from `summary.parquet` with polars.

use crate::cli::ReportArgs;
use anyhow::Result;
use ionode_report::collect::collect;
use ionode_report::{figures, groups, html, importance, roles, summary, tables};
use ionode_study::facts::Caching;
use ionode_study::output;
use std::fmt::Write as _;
use std::path::Path;

/// What a report folder holds; a folder with anything else is not replaced.
const REPORT_ENTRIES: [&str; 6] = [
    "index.html",
    html::RUNS_SCRIPT,
    "tables",
    "figures",
    "summary.csv",
    "summary.parquet",
];

/// Refuses to replace a folder that holds more than an earlier report (`--out` naming a
/// folder of the user's).
fn check_replaceable(out: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !REPORT_ENTRIES.contains(&name.as_str()) {
            return Err(crate::usage!(
                "--out '{}' holds '{name}', which is no part of a report: the report replaces \
                 the whole folder, so give a new folder or an earlier report's",
                out.display()
            ));
        }
    }
    Ok(())
}

pub fn run(args: &ReportArgs) -> Result<()> {
    // With --out nothing is written into the study folder, not even the runs' caches.
    let caching = match args.out {
        Some(_) => Caching::ReadOnly,
        None => Caching::Write,
    };
    let study = collect(&args.dir, caching)?;
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("report"));
    check_replaceable(&out)?;
    // With --out everything goes there (the study folder may be read-only); without it
    // the summary sits beside the runs and the rest under DIR/report.
    let summary_dir = args.out.clone().unwrap_or_else(|| args.dir.clone());
    // The report is written into a temporary folder that replaces the old one whole at the
    // end: a reader (or an interrupted report) never sees old and new files mixed.
    let tmp = output::tmp_dir(&out)?;
    let roles = roles(&study);
    let mut df = summary::frame(&study, &roles)?;
    summary::write(&mut df, if args.out.is_some() { &tmp } else { &args.dir })?;
    let groups = groups(&roles);
    let metrics = tables::Metrics::of(&df)?;
    let (mut tables, table_notes) = tables::write(&study, &groups, &metrics, &tmp)?;
    let mut search_figures = Vec::new();
    if let Some((t, f)) = ionode_report::search_section::write(&study.plan, &args.dir, &tmp)? {
        tables.insert(0, t);
        search_figures = f;
    }
    let (mut figs, mut fig_notes) = figures::write(
        &study,
        &groups,
        &metrics.test_mae,
        &metrics.validation_mae,
        &tmp,
    )?;
    figs.extend(search_figures);
    // Every search, and every sweep of at least `importance::MIN_RUNS` runs: which axis
    // moves the metric most is the first question of either's reader.
    match importance::of_study(&study) {
        Some(imp) => {
            let (table, figure) =
                importance::write(&imp, ionode_report::synthetic_note(&study), &tmp)?;
            tables.push(table);
            figs.push(figure);
        }
        None if study.plan.search.is_some() => fig_notes.push(
            "axis importance skipped: no axis varies over the finished runs with a defined metric"
                .to_string(),
        ),
        None => {}
    }
    let notes: Vec<String> = table_notes.iter().chain(&fig_notes).cloned().collect();
    html::write(&study, &df, &tables, &figs, &notes, args.inline_runs, &tmp)?;
    output::finish_dir(&tmp, &out)?;

    let mut text = String::new();
    writeln!(
        text,
        "{} finished run(s) of the plan read from {}; {} started but not finished{}{}",
        study.runs.len(),
        study.dir.join("runs").display(),
        study.skipped.len(),
        if study.foreign.is_empty() {
            String::new()
        } else {
            format!(
                "; {} folder(s) that are no run of the plan left out (an older plan's runs, or copies)",
                study.foreign.len()
            )
        },
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
    super::print_stdout(&text)?;
    // The results index links every study's report; a report written elsewhere (--out:
    // the study may be read-only) leaves it alone.
    if args.out.is_none() {
        if let Some(results) = args.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            super::runs::refresh_index(results);
        }
    }
    Ok(())
}
