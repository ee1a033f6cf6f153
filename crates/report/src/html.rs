//! `report/index.html`: one self-contained page per study, readable from the file system
//! without a server: provenance, every table, every figure inline as SVG, and a sortable,
//! filterable table of every run with its roles and metrics.
//!
//! A study of more runs than `inline_runs` (default [`INLINE_RUNS`]) would give a page of
//! tens of megabytes that a browser lays out for seconds, so its run table is not inlined:
//! `report/runs.js` holds the rows compactly (numbers as shown, repeated texts as indices
//! into one list per column), the page loads it with a `<script>` element (a `file://`
//! page may not fetch files) and draws one page of rows at a time, sorting and filtering
//! the rows in memory.
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

/// Runs up to which the run table is inlined in the page (3 MB at 5 000 runs); above, it
/// is loaded from `runs.js`.
pub const INLINE_RUNS: usize = 2000;

/// The file a lazily loaded run table is read from, beside `index.html`.
pub const RUNS_SCRIPT: &str = "runs.js";

/// Distinct texts up to which a text column is written as indices into its list of them.
const MAX_DICTIONARY: usize = 4096;

/// The run table's columns in the summary: (column, header, numeric).
fn run_columns(frame: &DataFrame) -> Vec<(&'static str, &'static str, bool)> {
    RUN_COLUMNS
        .iter()
        .filter_map(|&(c, h)| {
            let s = frame.column(c).ok()?;
            Some((c, h, s.dtype().is_primitive_numeric()))
        })
        .collect()
}

/// One value of the compact table: a number as the inline table shows it (so sorting
/// orders what is shown), a text as JSON, nothing as `null`.
fn compact(v: &AnyValue) -> Result<String> {
    let (text, sort) = cell(v);
    Ok(match (v, sort) {
        (AnyValue::Null, _) => "null".to_string(),
        // The shortest text of the number shown ("1.1470" is written 1.147).
        (AnyValue::Float64(x), Some(_)) if x.is_finite() => {
            format!("{:?}", text.parse::<f64>().unwrap_or(*x))
        }
        (AnyValue::UInt64(_) | AnyValue::Int64(_), Some(_)) => text,
        _ => serde_json::to_string(&text).context("run table")?,
    })
}

/// `runs.js`: `const RUNS = {cols, rows}`; a column is `{name, head, kind, dict}` (kind
/// `float`, `int` or `text`), and a text column with `dict` holds indices into it.
fn runs_data(frame: &DataFrame) -> Result<String> {
    let cols = run_columns(frame);
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(cols.len());
    let mut heads = Vec::new();
    for (name, head, num) in &cols {
        let col = frame.column(name).context("summary column")?;
        let kind = match col.dtype() {
            t if t.is_float() => "float",
            _ if *num => "int",
            _ => "text",
        };
        let mut values = (0..frame.height())
            .map(|i| compact(&col.get(i)?))
            .collect::<Result<Vec<_>>>()?;
        let mut dict: Vec<&str> = Vec::new();
        if !num {
            let mut distinct: Vec<&str> = values
                .iter()
                .map(String::as_str)
                .filter(|v| *v != "null")
                .collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() <= MAX_DICTIONARY && distinct.len() * 4 < values.len() {
                dict = distinct;
            }
        }
        let dict_json = if dict.is_empty() {
            "null".to_string()
        } else {
            let owned: Vec<String> = dict.iter().map(|d| d.to_string()).collect();
            values = values
                .iter()
                .map(|v| match owned.binary_search(v) {
                    Ok(i) => i.to_string(),
                    Err(_) => "null".to_string(),
                })
                .collect();
            format!("[{}]", owned.join(","))
        };
        heads.push(format!(
            "{{\"name\":{},\"head\":{},\"kind\":\"{kind}\",\"dict\":{dict_json}}}",
            serde_json::to_string(name).context("run table")?,
            serde_json::to_string(head).context("run table")?
        ));
        columns.push(values);
    }
    let mut out = format!(
        "// The run table of report/index.html ({} runs), written by ablate report.\nconst RUNS = {{\"cols\":[{}],\"rows\":[\n",
        frame.height(),
        heads.join(",")
    );
    for i in 0..frame.height() {
        out.push('[');
        for (j, c) in columns.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&c[i]);
        }
        out.push_str(if i + 1 < frame.height() {
            "],\n"
        } else {
            "]\n"
        });
    }
    out.push_str("]};\n");
    Ok(out)
}

/// The header of the lazily filled run table.
fn lazy_table(frame: &DataFrame) -> Result<String> {
    let mut out = String::from("<table id=\"runs\"><thead><tr>");
    for (c, h, num) in run_columns(frame) {
        write!(
            out,
            "<th class=\"{}\" data-col=\"{c}\" title=\"sort by {h}\">{}</th>",
            if num { "num" } else { "" },
            escape(h)
        )?;
    }
    out.push_str("</tr></thead><tbody></tbody></table>\n");
    out.push_str("<p><button id=\"prev\">previous</button> <button id=\"next\">next</button> <span id=\"range\"></span></p>\n");
    Ok(out)
}

/// The start of both run tables' self-test: how many figures the browser laid out with
/// text in them (a macro, so the scripts stay `&'static str` literals).
macro_rules! selftest_figures {
    () => {
        r#"function selftest() {
  const out = {};
  const svgs = [...document.querySelectorAll('figure.figure svg')];
  out.figures = svgs.length;
  out.rendered = svgs.filter(s => { const b = s.getBoundingClientRect(); return b.width > 50 && b.height > 50 && s.querySelectorAll('text').length > 0; }).length;
"#
    };
}

/// The script of a lazily loaded run table: the rows are `RUNS.rows`, `view` is the order
/// and selection shown, and one page of it is drawn at a time.
const LAZY_SCRIPT: &str = concat!(
    r#"
// Rows per page (`index.html?rows=N` for another).
const PAGE = Math.max(1, Number(new URLSearchParams(location.search).get('rows')) || 500);
const cols = RUNS.cols;
let view = RUNS.rows.map((_, i) => i);
let start = 0;
let lowered = null;
function value(r, j) {
  const v = RUNS.rows[r][j];
  return v !== null && cols[j].dict ? cols[j].dict[v] : v;
}
function shown(r, j) {
  const v = value(r, j);
  if (v === null) return '';
  if (typeof v !== 'number') return String(v);
  if (cols[j].kind === 'int') return String(v);
  return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toFixed(4);
}
function esc(t) {
  return t.replace(/[&<>"]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
}
function draw() {
  const end = Math.min(start + PAGE, view.length);
  const html = [];
  for (let k = start; k < end; k++) {
    const r = view[k];
    html.push('<tr>' + cols.map((c, j) => {
      const v = value(r, j);
      return c.kind !== 'text' ? '<td class="num"' + (typeof v === 'number' ? ' data-v="' + v + '"' : '') + '>' + esc(shown(r, j)) + '</td>'
                   : '<td>' + esc(shown(r, j)) + '</td>';
    }).join('') + '</tr>');
  }
  document.getElementById('runs').tBodies[0].innerHTML = html.join('');
  document.getElementById('range').textContent = view.length ? 'rows ' + (start + 1) + '–' + end + ' of ' + view.length : 'no rows';
  document.getElementById('prev').disabled = start === 0;
  document.getElementById('next').disabled = end >= view.length;
}
function sortRuns(th) {
  const j = [...th.parentNode.children].indexOf(th);
  const dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
  th.parentNode.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = dir;
  const sign = dir === 'asc' ? 1 : -1;
  if (cols[j].kind !== 'text') {
    const key = r => { const v = value(r, j); return typeof v === 'number' ? v : NaN; };
    view.sort((a, b) => {
      const x = key(a), y = key(b);
      if (isNaN(x) && isNaN(y)) return 0;
      if (isNaN(x)) return 1;
      if (isNaN(y)) return -1;
      return sign * (x - y);
    });
  } else {
    view.sort((a, b) => sign * shown(a, j).localeCompare(shown(b, j)));
  }
  start = 0;
  draw();
}
function filterRuns(text) {
  const terms = text.toLowerCase().split(/\s+/).filter(t => t);
  if (!lowered) lowered = RUNS.rows.map((_, r) => cols.map((_, j) => shown(r, j)).join(' ').toLowerCase());
  view = RUNS.rows.map((_, i) => i).filter(r => terms.every(t => lowered[r].includes(t)));
  const th = document.querySelector('#runs th[data-dir]');
  if (th) { th.dataset.dir = th.dataset.dir === 'asc' ? 'desc' : 'asc'; sortRuns(th); }
  start = 0;
  draw();
  document.getElementById('shown').textContent = view.length;
  return view.length;
}
document.querySelectorAll('#runs th').forEach(th => th.addEventListener('click', () => sortRuns(th)));
document.getElementById('filter').addEventListener('input', e => filterRuns(e.target.value));
document.getElementById('prev').addEventListener('click', () => { start = Math.max(0, start - PAGE); draw(); });
document.getElementById('next').addEventListener('click', () => { if (start + PAGE < view.length) { start += PAGE; draw(); } });
draw();
"#,
    selftest_figures!(),
    r#"  const th = document.querySelector('#runs th[data-col="test_mae"]');
  const j = th ? th.cellIndex : -1;
  const all = () => view.map(r => value(r, j)).filter(v => typeof v === 'number');
  const page = () => [...document.getElementById('runs').tBodies[0].rows]
      .map(r => parseFloat(r.cells[j].dataset.v)).filter(v => !isNaN(v));
  const sorted = (v, asc) => v.every((x, i) => i === 0 || (asc ? v[i - 1] <= x : v[i - 1] >= x));
  if (th) {
    let t = performance.now();
    th.click(); out.sort_ms = performance.now() - t;
    out.sorted_ascending = sorted(all(), true) && sorted(page(), true) && th.dataset.dir === 'asc';
    th.click(); out.sorted_descending = sorted(all(), false) && sorted(page(), false) && th.dataset.dir === 'desc';
  }
  const total = RUNS.rows.length;
  out.rows = total;
  out.drawn = document.getElementById('runs').tBodies[0].rows.length;
  let t = performance.now();
  out.filtered_none = filterRuns('no-run-has-this-text') === 0;
  out.filter_ms = performance.now() - t;
  out.filtered_all = filterRuns('') === total;
  if (total > PAGE) {
    document.getElementById('next').click();
    out.next_page = document.getElementById('runs').tBodies[0].rows.length === Math.min(PAGE, total - PAGE);
    document.getElementById('prev').click();
  }
  document.getElementById('selftest').textContent = JSON.stringify(out);
}
if (location.hash === '#selftest') window.addEventListener('load', selftest);
"#
);

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

const SCRIPT: &str = concat!(
    r#"function filterRuns(text) {
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
"#,
    selftest_figures!(),
    r#"  const th = document.querySelector('#runs th[data-col="test_mae"]');
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
"#
);

/// Writes `out/index.html` from the tables and figures already written under `out`, and
/// `out/runs.js` when the study has more than `inline_runs` runs.
pub fn write(
    study: &Study,
    frame: &DataFrame,
    tables: &[Written],
    figures: &[String],
    notes: &[String],
    inline_runs: usize,
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
    if frame.height() <= inline_runs {
        h.push_str(&runs_table(frame)?);
        writeln!(
            h,
            "<p class=\"note\">Every column of every run is in summary.parquet and summary.csv.</p>\n<pre id=\"selftest\" hidden></pre>\n<script>{SORT_SCRIPT}{SCRIPT}</script>\n</body></html>"
        )?;
    } else {
        output::write_text(&out.join(RUNS_SCRIPT), &runs_data(frame)?)?;
        h.push_str(&lazy_table(frame)?);
        writeln!(
            h,
            "<p class=\"note\">Every column of every run is in summary.parquet and summary.csv; this table ({RUNS_SCRIPT}) shows numbers as rounded here and sorts by them.</p>\n<pre id=\"selftest\" hidden></pre>\n<script src=\"{RUNS_SCRIPT}\"></script>\n<script>{LAZY_SCRIPT}</script>\n</body></html>"
        )?;
    }
    output::write_text(&out.join("index.html"), &h)?;
    Ok(())
}
