//! Pages a browser opens on the shared folder, with no server:
//! - `results/index.html`: every study with its state, counts, best run and a link to its
//!   report (or to its progress page while it runs), then the `ablate train` runs;
//! - `results/<study>/progress.html`: a study while it runs, refreshing itself: counts,
//!   rate and ETA, the runs in progress and every failure with its message.
//!
//! Both are made from the files alone (plans, markers, facts caches), so any process that
//! can read the folder writes the same page, and both are written atomically. The markers
//! are read, not verified (`ablate status` hashes every `run.h5`); the best run is the one
//! of lowest validation MAE, the metric runs are chosen by, never the test MAE.

use crate::error::{Result, TrackError};
use crate::find::{self, Row};
use ionode_report::names::escape;
use ionode_study::store::{self, Marked};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The index page's file in a results folder.
pub const INDEX_FILE: &str = "index.html";
/// A study's progress page.
pub const PROGRESS_FILE: &str = "progress.html";
/// How often a progress page reloads itself while its study runs (seconds).
pub const REFRESH_SECONDS: u32 = 15;
/// The most failures a progress page lists one by one.
const MAX_FAILURES_LISTED: usize = 200;

const VALIDATION: &str = "metrics.measured.validation.mae";
const TEST: &str = "metrics.measured.test.mae";

/// How a study's planned runs stand, as their markers say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub planned: usize,
    pub done: usize,
    pub failed: usize,
    pub claimed: usize,
    pub missing: usize,
}

impl Counts {
    pub fn state(&self) -> &'static str {
        if self.done == self.planned {
            "complete"
        } else if self.claimed > 0 {
            "running"
        } else if self.failed > 0 && self.done + self.failed == self.planned {
            "failures"
        } else {
            "incomplete"
        }
    }
}

/// One study on the index.
#[derive(Debug, Clone)]
pub struct StudyLine {
    pub name: String,
    pub dir: PathBuf,
    pub counts: Counts,
    /// The finished run of lowest validation MAE: its row.
    pub best: Option<Row>,
    /// The last time a run was written (RFC 3339).
    pub updated: Option<String>,
    pub tags: Vec<String>,
    pub note: Option<String>,
}

/// Everything the index shows.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub studies: Vec<StudyLine>,
    pub trains: Vec<Row>,
}

fn text(v: Option<&Value>) -> String {
    crate::table::text(v)
}

fn counts(dir: &Path, ids: &[String]) -> (Counts, Vec<(String, String)>, Vec<String>) {
    let mut c = Counts {
        planned: ids.len(),
        ..Counts::default()
    };
    let (mut failures, mut claimed) = (Vec::new(), Vec::new());
    for id in ids {
        match store::marked(dir, id) {
            Marked::Done => c.done += 1,
            Marked::Failed(why) => {
                c.failed += 1;
                failures.push((id.clone(), why));
            }
            Marked::Claimed => {
                c.claimed += 1;
                claimed.push(id.clone());
            }
            Marked::Missing => c.missing += 1,
        }
    }
    (c, failures, claimed)
}

fn best(rows: &[Row]) -> Option<Row> {
    rows.iter()
        .filter_map(|r| Some((r.facts.get(VALIDATION)?.as_f64()?, r)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, r)| r.clone())
}

/// The studies and `ablate train` runs directly under `results`.
pub fn overview(results: &Path) -> Result<Overview> {
    if !results.is_dir() {
        return Err(TrackError::Usage(format!(
            "'{}' is not a folder; give the results folder",
            results.display()
        )));
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(results)
        .map_err(|e| TrackError::Usage(format!("cannot read '{}': {e}", results.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    let mut o = Overview::default();
    for dir in subs {
        if dir.join("plan.json").is_file() {
            let (study, ids) = ionode_study::tpe::study_run_ids(&dir)?;
            let (counts, _, _) = counts(&dir, &ids);
            let rows = if counts.done > 0 {
                let want = find::Want {
                    cached_only: true,
                    ..find::Want::of(["run", VALIDATION, TEST, "provenance.created_utc"])
                };
                find::find(std::slice::from_ref(&dir), &want)?.rows
            } else {
                Vec::new()
            };
            let updated = rows
                .iter()
                .filter_map(|r| r.facts.get("provenance.created_utc")?.as_str())
                .max()
                .map(String::from);
            let a = ionode_study::annotations::read(&dir)?;
            o.studies.push(StudyLine {
                name: study,
                dir: dir.clone(),
                counts,
                best: best(&rows),
                updated,
                tags: a.tags.into_iter().collect(),
                note: a.note,
            });
        } else if dir.join(store::RUN_FILE).is_file() {
            // A damaged train folder is left off the index, as `runs` names it.
            if let Ok(row) = find::one(&dir) {
                o.trains.push(row);
            }
        }
    }
    Ok(o)
}

/// A link relative to the page's folder: `./`, then each path segment percent-encoded
/// (a folder named `a#b`, `50%` or `javascript:x` stays a path), then HTML-escaped.
fn rel(from: &Path, to: &Path) -> String {
    let rel = to.strip_prefix(from).unwrap_or(to);
    let segments: Vec<String> = rel
        .components()
        .map(|c| {
            let text = c.as_os_str().to_string_lossy();
            text.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        })
        .collect();
    format!("./{}", segments.join("/"))
}

fn num_cell(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("<td class=\"num\" data-v=\"{x}\">{x:.4}</td>"),
        None => "<td class=\"num\"></td>".into(),
    }
}

fn int_cell(n: usize) -> String {
    format!("<td class=\"num\" data-v=\"{n}\">{n}</td>")
}

const STYLE: &str = r#"
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #e4e4e4; text-align: left; }
th { border-bottom: 2px solid #888; background: #fafafa; cursor: pointer; user-select: none; }
th[data-dir="asc"]::after { content: " ▲"; } th[data-dir="desc"]::after { content: " ▼"; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.complete { color: #1a7f37; } .running { color: #0969da; } .failures, .failed { color: #cf222e; } .incomplete { color: #9a6700; }
.bar { background: #eee; width: 30em; height: 1em; } .bar div { background: #1a7f37; height: 1em; }
p.note { font-size: 0.85em; color: #555; }
input.filter { width: 30em; padding: 0.3em; }
"#;

/// Filtering by words, for every `table.sortable` (sorting is the report's
/// `SORT_SCRIPT`); and a self-test (`#selftest`) that a browser test reads from the page.
const SCRIPT: &str = r#"
function filterTable(table, text) {
  const terms = text.toLowerCase().split(/\s+/).filter(t => t);
  let shown = 0;
  for (const r of table.tBodies[0].rows) {
    const ok = terms.every(term => r.textContent.toLowerCase().includes(term));
    r.style.display = ok ? '' : 'none';
    if (ok) shown++;
  }
  return shown;
}
document.querySelectorAll('table.sortable th').forEach(th => th.addEventListener('click', () => sortBy(th)));
document.querySelectorAll('input.filter').forEach(input => {
  const table = document.getElementById(input.dataset.table);
  input.addEventListener('input', () => filterTable(table, input.value));
});
function selftest() {
  const out = {};
  for (const table of document.querySelectorAll('table.sortable')) {
    const t = {};
    t.rows = table.tBodies[0].rows.length;
    const th = table.querySelector('th.num');
    if (th) {
      const values = () => [...table.tBodies[0].rows]
        .map(r => parseFloat(r.cells[th.cellIndex].dataset.v)).filter(v => !isNaN(v));
      const sorted = (v, asc) => v.every((x, i) => i === 0 || (asc ? v[i - 1] <= x : v[i - 1] >= x));
      const t0 = performance.now();
      th.click(); t.sorted_ascending = sorted(values(), true);
      th.click(); t.sorted_descending = sorted(values(), false);
      t.sort_ms = performance.now() - t0;
    }
    const t1 = performance.now();
    t.filtered_none = filterTable(table, 'no-row-has-this-text') === 0;
    t.filtered_all = filterTable(table, '') === t.rows;
    t.filter_ms = performance.now() - t1;
    out[table.id] = t;
  }
  out.links = [...document.querySelectorAll('a')].map(a => a.getAttribute('href'));
  const stale = document.getElementById('stale');
  out.reloading = typeof FRESH !== 'undefined' && FRESH;
  out.stale = stale ? !stale.hidden : false;
  document.getElementById('selftest').textContent = JSON.stringify(out);
}
if (location.hash === '#selftest') window.addEventListener('load', selftest);
"#;

/// A page not rewritten for this many refresh periods was left by an `ablate run` that
/// stopped: it stops reloading and says so.
const STALE_PERIODS: u32 = 4;

/// The page's head; with `refresh`, a script that reloads it every `refresh` seconds while
/// it is being rewritten (a page written more than [`STALE_PERIODS`] periods ago, by the
/// clock of the machine that wrote it, shows the `#stale` note instead of reloading).
fn head(title: &str, refresh: Option<u32>) -> String {
    let (script, stale) = match refresh {
        Some(s) => {
            let written = ionode_study::provenance::now_utc();
            (
                format!(
                    "<script>\nconst WRITTEN = Date.parse('{written}');\nconst FRESH = !(Date.now() - WRITTEN > {} * 1000);\nif (!FRESH) window.addEventListener('DOMContentLoaded', () => {{ document.getElementById('stale').hidden = false; }});\n// The self-test (#selftest) reads the page as loaded, without reloading it.\nelse if (location.hash !== '#selftest') setTimeout(() => location.reload(), {s} * 1000);\n</script>\n",
                    STALE_PERIODS * s
                ),
                format!(
                    "<p id=\"stale\" class=\"failures\" hidden>This page was written at {written} and has not been rewritten since: the <code>ablate run</code> that writes it has stopped (killed, or its machine lost), so it no longer reloads. <code>ablate run</code> again resumes the study and this page.</p>\n"
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"generator\" content=\"{GENERATOR}\">\n{script}<title>{}</title>\n<style>{STYLE}</style></head><body>\n{stale}",
        escape(title)
    )
}

fn foot() -> String {
    let sort = ionode_report::html::SORT_SCRIPT;
    format!("<pre id=\"selftest\" hidden></pre>\n<script>{sort}{SCRIPT}</script>\n</body></html>\n")
}

/// The index page of a results folder.
pub fn index_html(results: &Path, o: &Overview) -> Result<String> {
    let running = o.studies.iter().any(|s| s.counts.claimed > 0);
    let mut h = head(
        &format!("ionode results: {}", results.display()),
        running.then_some(REFRESH_SECONDS * 4),
    );
    let now = ionode_study::provenance::now_utc();
    writeln!(
        h,
        "<h1>ionode results</h1>\n<p class=\"note\">{} studies and {} <code>ablate train</code> runs in <code>{}</code>; written {now} by <code>ablate index</code> (also after every <code>ablate report</code> and <code>ablate run</code>).{}</p>",
        o.studies.len(),
        o.trains.len(),
        escape(&results.display().to_string()),
        if running {
            " A study is running: this page reloads every minute."
        } else {
            ""
        }
    )
    .map_err(fmt)?;
    writeln!(h, "<h2>Studies</h2>\n<p><input class=\"filter\" data-table=\"studies\" placeholder=\"filter, e.g. running\"></p>\n<table id=\"studies\" class=\"sortable\"><thead><tr><th>study</th><th>state</th><th class=\"num\">planned</th><th class=\"num\">done</th><th class=\"num\">failed</th><th class=\"num\">running</th><th class=\"num\">missing</th><th>best run (validation MAE)</th><th class=\"num\">its validation MAE</th><th class=\"num\">its test MAE</th><th>last run written</th><th>tags</th><th>note</th></tr></thead><tbody>").map_err(fmt)?;
    for s in &o.studies {
        let report = s.dir.join("report").join("index.html");
        let progress = s.dir.join(PROGRESS_FILE);
        let mut name = escape(&s.name);
        if report.is_file() {
            name = format!("<a href=\"{}\">{name}</a>", escape(&rel(results, &report)));
        }
        if progress.is_file() && s.counts.state() != "complete" {
            write!(
                name,
                " (<a href=\"{}\">progress</a>)",
                escape(&rel(results, &progress))
            )
            .map_err(fmt)?;
        }
        let c = &s.counts;
        let best = s.best.as_ref();
        writeln!(
            h,
            "<tr><td>{name}</td><td class=\"{state}\">{state}</td>{}{}{}{}{}<td>{}</td>{}{}<td>{}</td><td>{}</td><td>{}</td></tr>",
            int_cell(c.planned),
            int_cell(c.done),
            int_cell(c.failed),
            int_cell(c.claimed),
            int_cell(c.missing),
            best.map_or(String::new(), |b| escape(&text(b.facts.get("run")))),
            num_cell(best.and_then(|b| b.facts.get(VALIDATION)?.as_f64())),
            num_cell(best.and_then(|b| b.facts.get(TEST)?.as_f64())),
            escape(s.updated.as_deref().unwrap_or("")),
            escape(&s.tags.join(" ")),
            escape(s.note.as_deref().unwrap_or("")),
            state = c.state(),
        )
        .map_err(fmt)?;
    }
    h.push_str("</tbody></table>\n");
    writeln!(h, "<h2><code>ablate train</code> runs</h2>\n<table id=\"trains\" class=\"sortable\"><thead><tr><th>folder</th><th>method</th><th>model</th><th class=\"num\">validation MAE</th><th class=\"num\">test MAE</th><th>written</th><th>tags</th><th>note</th></tr></thead><tbody>").map_err(fmt)?;
    for r in &o.trains {
        writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{}{}<td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(
                &r.path
                    .strip_prefix(results)
                    .unwrap_or(&r.path)
                    .display()
                    .to_string()
            ),
            escape(&text(r.facts.get("method"))),
            escape(&text(r.facts.get("config.model.variant"))),
            num_cell(r.facts.get(VALIDATION).and_then(Value::as_f64)),
            num_cell(r.facts.get(TEST).and_then(Value::as_f64)),
            escape(&text(r.facts.get("provenance.created_utc"))),
            escape(&text(r.facts.get("tags"))),
            escape(&text(r.facts.get("note"))),
        )
        .map_err(fmt)?;
    }
    h.push_str("</tbody></table>\n");
    h.push_str(&foot());
    Ok(h)
}

fn fmt(e: std::fmt::Error) -> TrackError {
    TrackError::Usage(format!("cannot format the page: {e}"))
}

/// What every page ionode writes says it is, so a page of another program is never
/// replaced.
const GENERATOR: &str = "ionode pages";

/// The first 4 kB of a page (where ionode's pages say what wrote them), as text.
fn page_head(path: &Path) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let read = ionode_study::limits::open_regular(path, u64::MAX)
        .and_then(|f| f.take(4096).read_to_end(&mut head));
    match read {
        Ok(_) => String::from_utf8_lossy(&head).into_owned(),
        Err(_) => String::new(),
    }
}

/// Refuses to replace a page ionode did not write.
fn check_ours(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_file() => {
            let marker = format!("<meta name=\"generator\" content=\"{GENERATOR}\">");
            if page_head(path).contains(&marker) {
                Ok(())
            } else {
                Err(TrackError::Usage(format!(
                    "'{}' was not written by ionode; it is left alone (move it, or write the index elsewhere)",
                    path.display()
                )))
            }
        }
        // A folder, link or device: `output` refuses it with its own message.
        Ok(_) => Ok(()),
    }
}

/// Writes `results/index.html`; returns its path.
pub fn write_index(results: &Path) -> Result<PathBuf> {
    let path = results.join(INDEX_FILE);
    check_ours(&path)?;
    let o = overview(results)?;
    let page = index_html(results, &o)?;
    ionode_study::output::write_text(&path, &page)?;
    Ok(path)
}

/// A running study's progress, from its markers.
#[derive(Debug, Clone)]
pub struct Progress {
    pub study: String,
    pub counts: Counts,
    /// (run id, the first line of its error).
    pub failures: Vec<(String, String)>,
    /// (run id, who claims it).
    pub running: Vec<(String, String)>,
    /// Runs finished per hour, over the last finished runs; `None` before two finished.
    pub per_hour: Option<f64>,
    /// Seconds left at that rate.
    pub eta_seconds: Option<f64>,
}

/// The finish times (DONE markers' modification times) of the study's finished runs.
fn finish_times(dir: &Path, ids: &[String]) -> Vec<SystemTime> {
    let mut t: Vec<SystemTime> = ids
        .iter()
        .filter_map(|id| {
            std::fs::metadata(store::run_dir(dir, id).join("DONE"))
                .and_then(|m| m.modified())
                .ok()
        })
        .collect();
    t.sort();
    t
}

/// How a study stands now.
pub fn progress(dir: &Path) -> Result<Progress> {
    let (study, ids) = ionode_study::tpe::study_run_ids(dir)?;
    Ok(progress_of(dir, study, &ids))
}

/// How a study of these runs stands now (a sweep's run ids never change, so a watcher
/// reads them once: the plan of 100 000 runs is 380 MB).
pub fn progress_of(dir: &Path, study: String, ids: &[String]) -> Progress {
    let (counts, failures, claimed) = counts(dir, ids);
    let running = claimed
        .into_iter()
        .map(|id| {
            let who = store::claimants(dir, &id)
                .iter()
                .map(|o| o.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            (id, who)
        })
        .collect();
    // The rate over the last (up to) 50 finished runs.
    let t = finish_times(dir, ids);
    let recent = &t[t.len().saturating_sub(50)..];
    let per_hour = match (recent.first(), recent.last()) {
        (Some(a), Some(b)) if recent.len() >= 2 => b
            .duration_since(*a)
            .ok()
            .map(|d| d.as_secs_f64())
            .filter(|s| *s > 0.0)
            .map(|s| (recent.len() - 1) as f64 / s * 3600.0),
        _ => None,
    };
    let left = counts.planned - counts.done - counts.failed;
    let eta_seconds = per_hour.map(|r| left as f64 / r * 3600.0);
    Progress {
        study,
        counts,
        failures,
        running,
        per_hour,
        eta_seconds,
    }
}

fn duration(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The progress page of a study.
pub fn progress_html(dir: &Path, p: &Progress) -> String {
    let c = &p.counts;
    let complete = c.state() == "complete";
    let mut h = head(
        &format!("{}: progress", p.study),
        (!complete).then_some(REFRESH_SECONDS),
    );
    let now = ionode_study::provenance::now_utc();
    let share = if c.planned == 0 {
        0.0
    } else {
        100.0 * c.done as f64 / c.planned as f64
    };
    let _ = writeln!(
        h,
        "<h1>Study {}: <span class=\"{state}\">{state}</span></h1>\n<p class=\"note\">As the run store's markers say at {now}{}.</p>",
        escape(&p.study),
        if complete {
            String::new()
        } else {
            format!("; this page reloads every {REFRESH_SECONDS} s while the study runs")
        },
        state = c.state()
    );
    let _ = writeln!(
        h,
        "<div class=\"bar\"><div style=\"width: {share:.1}%\"></div></div>\n<table id=\"counts\"><tbody><tr><td>planned</td><td class=\"num\">{}</td></tr><tr><td>done</td><td class=\"num\">{} ({share:.1} %)</td></tr><tr><td>failed</td><td class=\"num\">{}</td></tr><tr><td>running</td><td class=\"num\">{}</td></tr><tr><td>not started</td><td class=\"num\">{}</td></tr><tr><td>rate</td><td class=\"num\">{}</td></tr><tr><td>ETA</td><td class=\"num\" id=\"eta\">{}</td></tr></tbody></table>",
        c.planned,
        c.done,
        c.failed,
        c.claimed,
        c.missing,
        p.per_hour
            .map_or("-".into(), |r| format!("{r:.0} runs per hour")),
        if complete {
            "done".to_string()
        } else {
            p.eta_seconds.map_or("-".into(), duration)
        },
    );
    let report = dir.join("report").join("index.html");
    if report.is_file() {
        let _ = writeln!(h, "<p><a href=\"report/index.html\">The report</a> (as last written by <code>ablate report</code>).</p>");
    }
    let _ = writeln!(h, "<h2>Running now</h2>\n<table id=\"running\" class=\"sortable\"><thead><tr><th>run</th><th>claimed by</th></tr></thead><tbody>");
    for (id, who) in &p.running {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(id),
            escape(who)
        );
    }
    h.push_str("</tbody></table>\n");
    let _ = writeln!(
        h,
        "<h2>Failures</h2>\n<p class=\"note\">{} run(s) failed{}; <code>ablate run --retry-failed</code> runs them again.</p>\n<table id=\"failures\" class=\"sortable\"><thead><tr><th>run</th><th>error</th></tr></thead><tbody>",
        p.failures.len(),
        if p.failures.len() > MAX_FAILURES_LISTED {
            format!(" (the first {MAX_FAILURES_LISTED} listed)")
        } else {
            String::new()
        }
    );
    for (id, why) in p.failures.iter().take(MAX_FAILURES_LISTED) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"failed\">{}</td></tr>",
            escape(id),
            escape(why)
        );
    }
    h.push_str("</tbody></table>\n");
    h.push_str(&foot());
    h
}

/// Writes `STUDY/progress.html`; returns its path.
pub fn write_progress(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(PROGRESS_FILE);
    check_ours(&path)?;
    write_progress_page(dir, &progress(dir)?)
}

/// Writes `STUDY/progress.html` of a progress already read; returns its path.
pub fn write_progress_page(dir: &Path, p: &Progress) -> Result<PathBuf> {
    let path = dir.join(PROGRESS_FILE);
    check_ours(&path)?;
    ionode_study::output::write_text(&path, &progress_html(dir, p))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_relative_paths_whatever_the_folder_names() {
        let r = Path::new("/r");
        assert_eq!(
            rel(r, Path::new("/r/a#b/report/index.html")),
            "./a%23b/report/index.html"
        );
        assert_eq!(rel(r, Path::new("/r/javascript:x")), "./javascript%3Ax");
        assert_eq!(rel(r, Path::new("/r/50% é")), "./50%25%20%C3%A9");
        assert_eq!(escape("a'b\"<c>&"), "a&#39;b&quot;&lt;c&gt;&amp;");
    }

    #[test]
    fn a_study_is_complete_running_failed_or_incomplete_by_its_counts() {
        let c = |done, failed, claimed, missing| Counts {
            planned: done + failed + claimed + missing,
            done,
            failed,
            claimed,
            missing,
        };
        assert_eq!(c(4, 0, 0, 0).state(), "complete");
        assert_eq!(c(2, 1, 1, 0).state(), "running");
        assert_eq!(c(3, 1, 0, 0).state(), "failures");
        assert_eq!(c(2, 0, 0, 2).state(), "incomplete");
    }
}
