//! `report/index.html`: one self-contained page per study, readable from the file system
//! without a server: provenance, every table, every figure inline as SVG, and a sortable,
//! filterable table of every run with its roles and metrics.
//!
//! The page carries its own check: opened with `#selftest`, its script counts the figures
//! the browser actually laid out, sorts the run table through the header's click handler
//! and filters it, and writes the outcome as JSON into `<pre id="selftest">`, which a
//! headless browser's `--dump-dom` shows (the browser test does exactly that).

use super::collect::Study;
use super::names::escape;
use super::tables::Written;
use crate::error::{Context, Result};
use ionode_study::output;
use polars::prelude::{AnyValue, DataFrame};
use std::fmt::Write as _;
use std::path::Path;

/// What each figure shows, for its caption on the page.
fn figure_caption(name: &str) -> &'static str {
    match name {
        "ablation_bars" => "Test rejection MAE of every configuration, one panel per setting (mean ± 1 std over seeds).",
        "rejection_vs_flux" => "Rejection vs water flux of the test feeds: measured (markers, one per feed) and the best run's model on a dense flux grid (lines).",
        "separation_factor" => "Li⁺/Mg²⁺ separation factor S = (1 − R_Li)/(1 − R_Mg) vs water flux, measured and model.",
        "parity" => "Predicted vs measured rejection of the best run's test rows, per ion, with the panel's MAE.",
        "learning_curves" => "Training and validation loss per epoch of every seed of the best configuration.",
        "attention_heatmaps" => "Mean attention weight per mixture family (each panel on its own scale).",
        "attention_correlation" => "Attention between ion pairs against their charge and Stokes-radius differences.",
        "transfer_by_family" => "Test rejection MAE of each held-out family for each class of model's configuration chosen by validation MAE.",
        "importance" => "Each axis's share of the metric's variance (fANOVA; mean ± std over the forest's trees).",
        "pareto_front" => "The candidates' objectives; the Pareto front's members marked.",
        _ => "",
    }
}

/// The run table's columns, where the summary has them: (column, header).
const RUN_COLUMNS: [(&str, &str); 14] = [
    ("run_id", "run"),
    ("model", "model"),
    ("constraint", "constraint"),
    ("pretrained", "pre-trained"),
    ("setting", "setting"),
    ("test_family", "test family"),
    ("seed", "seed"),
    ("test_mae", "test MAE"),
    ("test_rmse", "test RMSE"),
    ("test_r2", "test R²"),
    ("validation_mae", "validation MAE"),
    ("pretrain_test_mae", "pre-training test MAE"),
    ("test_en_max", "EN residual max"),
    ("seconds_total", "seconds"),
];

/// A cell: its text and, for numbers, the value to sort by.
fn cell(v: &AnyValue) -> (String, Option<String>) {
    match v {
        AnyValue::Null => (String::new(), None),
        AnyValue::Boolean(b) => ((if *b { "yes" } else { "no" }).into(), None),
        AnyValue::Float64(x) => {
            let text = if x.abs() != 0.0 && x.abs() < 1e-3 {
                format!("{x:.2e}")
            } else {
                format!("{x:.4}")
            };
            (text, Some(format!("{x:e}")))
        }
        AnyValue::UInt64(x) => (x.to_string(), Some(x.to_string())),
        AnyValue::Int64(x) => (x.to_string(), Some(x.to_string())),
        AnyValue::String(s) => (s.to_string(), None),
        AnyValue::StringOwned(s) => (s.to_string(), None),
        other => (other.to_string(), None),
    }
}

fn runs_table(frame: &DataFrame) -> Result<String> {
    let cols: Vec<(&str, &str)> = RUN_COLUMNS
        .iter()
        .copied()
        .filter(|(c, _)| frame.column(c).is_ok())
        .collect();
    let mut out = String::from("<table id=\"runs\"><thead><tr>");
    let numeric = |c: &str| {
        frame
            .column(c)
            .map(|s| s.dtype().is_primitive_numeric())
            .unwrap_or(false)
    };
    for (c, h) in &cols {
        write!(
            out,
            "<th class=\"{}\" data-col=\"{c}\" title=\"sort by {h}\">{}</th>",
            if numeric(c) { "num" } else { "" },
            escape(h)
        )?;
    }
    out.push_str("</tr></thead><tbody>\n");
    let columns: Vec<_> = cols
        .iter()
        .map(|(c, _)| frame.column(c).context("summary column"))
        .collect::<Result<_>>()?;
    for i in 0..frame.height() {
        out.push_str("<tr>");
        for (col, (name, _)) in columns.iter().zip(&cols) {
            let (text, sort) = cell(&col.get(i)?);
            let class = if numeric(name) { " class=\"num\"" } else { "" };
            match sort {
                Some(v) => write!(out, "<td{class} data-v=\"{v}\">{}</td>", escape(&text))?,
                None => write!(out, "<td{class}>{}</td>", escape(&text))?,
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
    Ok(out)
}

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { border-bottom: 2px solid #888; background: #fafafa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
#runs th { cursor: pointer; user-select: none; }
#runs th[data-dir="asc"]::after { content: " ▲"; } #runs th[data-dir="desc"]::after { content: " ▼"; }
figure { margin: 1.5em 0; } figcaption { margin: 0.4em 0; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
p.note { font-size: 0.85em; color: #555; margin: 0.2em 0; }
.meta td { border: none; padding: 0.1em 0.8em 0.1em 0; }
.synthetic { background: #fff3d6; padding: 0.5em 0.8em; border-left: 4px solid #e69f00; }
#filter { width: 30em; padding: 0.3em; }
"#;

/// Sorting a table by a click on its header (numbers by `data-v`, missing last), shared
/// with the results index and progress pages (`ionode-track`).
pub const SORT_SCRIPT: &str = r#"
function sortBy(th) {
  const table = th.closest('table');
  const heads = [...th.parentNode.children];
  const idx = heads.indexOf(th);
  const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  heads.forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const num = th.classList.contains('num');
  const key = r => { const c = r.cells[idx]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; };
  const rows = [...table.tBodies[0].rows];
  rows.sort((a, b) => {
    let x = key(a), y = key(b);
    if (num) {
      x = parseFloat(x); y = parseFloat(y);
      if (isNaN(x) && isNaN(y)) return 0;
      if (isNaN(x)) return 1;
      if (isNaN(y)) return -1;
      return dir === 'asc' ? x - y : y - x;
    }
    return dir === 'asc' ? x.localeCompare(y) : y.localeCompare(x);
  });
  rows.forEach(r => table.tBodies[0].appendChild(r));
}
"#;

const SCRIPT: &str = r#"function filterRuns(text) {
  const terms = text.toLowerCase().split(/\s+/).filter(t => t);
  let shown = 0;
  for (const r of document.getElementById('runs').tBodies[0].rows) {
    const t = r.textContent.toLowerCase();
    const ok = terms.every(term => t.includes(term));
    r.style.display = ok ? '' : 'none';
    if (ok) shown++;
  }
  document.getElementById('shown').textContent = shown;
  return shown;
}
document.querySelectorAll('#runs th').forEach(th => th.addEventListener('click', () => sortBy(th)));
document.getElementById('filter').addEventListener('input', e => filterRuns(e.target.value));
function selftest() {
  const out = {};
  const svgs = [...document.querySelectorAll('figure.figure svg')];
  out.figures = svgs.length;
  out.rendered = svgs.filter(s => { const b = s.getBoundingClientRect(); return b.width > 50 && b.height > 50 && s.querySelectorAll('text').length > 0; }).length;
  const th = document.querySelector('#runs th[data-col="test_mae"]');
  const values = () => [...document.getElementById('runs').tBodies[0].rows]
      .map(r => parseFloat(r.cells[th.cellIndex].dataset.v)).filter(v => !isNaN(v));
  const sorted = (v, asc) => v.every((x, i) => i === 0 || (asc ? v[i - 1] <= x : v[i - 1] >= x));
  if (th) {
    th.click(); out.sorted_ascending = sorted(values(), true) && th.dataset.dir === 'asc';
    th.click(); out.sorted_descending = sorted(values(), false) && th.dataset.dir === 'desc';
  }
  const total = document.getElementById('runs').tBodies[0].rows.length;
  out.rows = total;
  out.filtered_none = filterRuns('no-run-has-this-text') === 0;
  out.filtered_all = filterRuns('') === total;
  document.getElementById('selftest').textContent = JSON.stringify(out);
}
if (location.hash === '#selftest') window.addEventListener('load', selftest);
"#;

/// Writes `out/index.html` from the tables and figures already written under `out`.
pub fn write(
    study: &Study,
    frame: &DataFrame,
    tables: &[Written],
    figures: &[String],
    notes: &[String],
    out: &Path,
) -> Result<()> {
    let name = study
        .runs
        .first()
        .map(|r| r.record.head.provenance.study.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| study.dir.display().to_string());
    let mut h = String::new();
    writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>ionode study {}</title>\n<style>{STYLE}</style></head><body>",
        escape(&name)
    )?;
    writeln!(h, "<h1>Study {}</h1>", escape(&name))?;
    if study.synthetic() {
        writeln!(
            h,
            "<p class=\"synthetic\">Synthetic data: the runs were scored on simulations or the surrogate laboratory, not on measurements.</p>"
        )?;
    }
    let dates = study
        .dates()
        .map(|(a, b)| if a == b { a } else { format!("{a} to {b}") })
        .unwrap_or_default();
    let versions: std::collections::BTreeSet<&str> = study
        .runs
        .iter()
        .map(|r| r.record.head.provenance.ionode_version.as_str())
        .collect();
    writeln!(h, "<table class=\"meta\">")?;
    for (k, v) in [
        ("finished runs", study.runs.len().to_string()),
        (
            "skipped",
            format!(
                "{} unfinished, {} damaged",
                study.skipped.len(),
                study.damaged.len()
            ),
        ),
        ("git commit(s)", study.commits().join(", ")),
        ("manifest hash(es)", study.manifest_hashes().join(", ")),
        ("runs written (UTC)", dates),
        (
            "ionode version(s)",
            versions.into_iter().collect::<Vec<_>>().join(", "),
        ),
    ] {
        writeln!(h, "<tr><td>{k}</td><td>{}</td></tr>", escape(&v))?;
    }
    writeln!(h, "</table>")?;
    if !notes.is_empty() {
        for n in notes {
            writeln!(h, "<p class=\"note\">note: {}</p>", escape(n))?;
        }
    }
    writeln!(h, "<h2>Tables</h2>")?;
    for t in tables {
        h.push_str(&t.html);
    }
    writeln!(h, "<h2>Figures</h2>")?;
    for f in figures {
        let path = out.join("figures").join(format!("{f}.svg"));
        let svg = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read '{}'", path.display()))?;
        let svg = svg.trim_start_matches(|c| c != '<');
        let svg = match svg.find("<svg") {
            Some(i) => &svg[i..],
            None => svg,
        };
        writeln!(
            h,
            "<figure class=\"figure\" id=\"{f}\">{svg}\n<figcaption><b>{}</b> {} (<a href=\"figures/{f}.pdf\">PDF</a>, <a href=\"figures/{f}.png\">PNG</a>, <a href=\"figures/{f}.svg\">SVG</a>)</figcaption></figure>",
            escape(f),
            escape(figure_caption(f))
        )?;
    }
    writeln!(
        h,
        "<h2>Runs</h2>\n<p>Click a header to sort; type to filter (every word must appear). <input id=\"filter\" placeholder=\"filter, e.g. node hard\"> <span id=\"shown\">{}</span> of {} shown.</p>",
        frame.height(),
        frame.height()
    )?;
    h.push_str(&runs_table(frame)?);
    writeln!(
        h,
        "<p class=\"note\">Every column of every run is in summary.parquet and summary.csv.</p>\n<pre id=\"selftest\" hidden></pre>\n<script>{SORT_SCRIPT}{SCRIPT}</script>\n</body></html>"
    )?;
    output::write_text(&out.join("index.html"), &h)?;
    Ok(())
}
