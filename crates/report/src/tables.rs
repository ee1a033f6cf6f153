//! The paper tables (Markdown and LaTeX), every number computed from the summary frame
//! ([`Scores`]): mean ± std over seeds, and for every comparison a table makes a paired
//! test over the seeds ([`super::stats`]). "Best" is bold only where it is significantly
//! better than the runner-up (paired t-test, two-sided, 5 %); the caption says so.
//!
//! - Table 1, models: test MAE per model and constraint (pre-trained where the model
//!   pre-trains), one column per setting.
//! - Table 2, pre-training: off, on and the paired difference per setting, model and
//!   constraint.
//! - Table 3, the electroneutrality constraint: test MAE, the predictions'
//!   electroneutrality residual, and the paired difference to the hard constraint.
//! - Table 4, one per setting: every configuration with test MAE, RMSE, R² and validation
//!   MAE.
//!
//! A table with more rows than fit a page is cut into parts; LaTeX tables are scaled down
//! to the text width when wider (a box measured against `\linewidth`, then graphicx's
//! `\resizebox`), never up. The tables need only booktabs and graphicx.

use super::collect::Study;
use super::names::latex_escape;
use super::scores::Scores;
use super::stats::{Paired, ALPHA};
use super::{Group, Stat};
use crate::error::Result;
use ionode_study::output;
use polars::prelude::DataFrame;
use std::path::Path;

/// Rows a table part holds before it is cut (a page of a journal's text block).
const MAX_ROWS: usize = 30;

/// The metric columns of the summary the tables use.
pub struct Metrics {
    pub test_mae: Scores,
    pub test_rmse: Scores,
    pub test_r2: Scores,
    pub validation_mae: Scores,
    pub en_mean: Scores,
    pub en_max: Scores,
    /// An ensemble's interval coverage and mean width (empty without ensembles).
    pub test_coverage: Scores,
    pub test_width: Scores,
    pub validation_coverage: Scores,
    pub validation_width: Scores,
}

impl Metrics {
    pub fn of(frame: &DataFrame) -> Result<Metrics> {
        Ok(Metrics {
            test_mae: Scores::of(frame, "test_mae")?,
            test_rmse: Scores::of(frame, "test_rmse")?,
            test_r2: Scores::of(frame, "test_r2")?,
            validation_mae: Scores::of(frame, "validation_mae")?,
            en_mean: Scores::of(frame, "test_en_mean")?,
            en_max: Scores::of(frame, "test_en_max")?,
            test_coverage: Scores::of(frame, "test_coverage")?,
            test_width: Scores::of(frame, "test_interval_width")?,
            validation_coverage: Scores::of(frame, "validation_coverage")?,
            validation_width: Scores::of(frame, "validation_interval_width")?,
        })
    }
}

/// One cell of a rendered table.
#[derive(Debug, Clone, Default)]
struct Cell {
    text: String,
    bold: bool,
}

impl Cell {
    fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            bold: false,
        }
    }
}

/// A rendered table, independent of the markup.
struct Table {
    number: String,
    stem: String,
    caption: String,
    headers: Vec<String>,
    /// Right-aligned (numeric) columns.
    numeric: Vec<bool>,
    rows: Vec<Vec<Cell>>,
    notes: Vec<String>,
}

/// A number for a cell: 4 decimals, or 3 significant digits in exponent form for tiny
/// values (a hard constraint's residual is ~1e-15, not 0.0000).
pub fn number(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

fn stat_text(s: Option<Stat>) -> String {
    match s {
        Some(s) if s.n > 1 => format!("{} ± {}", number(s.mean), number(s.std)),
        Some(s) => format!("{} (1 seed)", number(s.mean)),
        None => "–".into(),
    }
}

fn p_text(p: f64) -> String {
    if p.is_nan() {
        "–".into()
    } else if p < 1e-3 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// `= 0.055` or `< 0.001`, after a "p".
fn p_relation(p: f64) -> String {
    let t = p_text(p);
    if t.starts_with('<') {
        t
    } else {
        format!("= {t}")
    }
}

/// `Δ = −0.0120 [−0.0200, −0.0040]`.
fn diff_text(p: &Paired) -> String {
    let sign = |x: f64| {
        let t = number(x);
        match t.strip_prefix('-') {
            Some(rest) => format!("−{rest}"),
            None => t,
        }
    };
    if p.ci95.0.is_nan() {
        sign(p.mean_diff)
    } else {
        format!(
            "{} [{}, {}]",
            sign(p.mean_diff),
            sign(p.ci95.0),
            sign(p.ci95.1)
        )
    }
}

/// One sentence on a paired comparison.
fn comparison(what: &str, p: &Paired) -> String {
    format!(
        "{what}: Δ = {} (95 % CI), paired t-test p {}, Wilcoxon p {}, {} seed pairs{}",
        diff_text(p),
        p_relation(p.p_t),
        p_relation(p.p_wilcoxon),
        p.n,
        if p.significant() {
            ""
        } else {
            " (not significant)"
        }
    )
}

/// The configurations of a study by role, for looking one up.
struct Index<'a> {
    groups: &'a [Group],
    /// Settings in order, with their order key.
    settings: Vec<String>,
}

impl<'a> Index<'a> {
    fn new(groups: &'a [Group]) -> Index<'a> {
        let mut settings: Vec<(&(u8, u64), &String)> = groups
            .iter()
            .map(|g| (&g.roles.setting_order, &g.roles.setting))
            .collect();
        settings.sort();
        settings.dedup();
        Index {
            groups,
            settings: settings.into_iter().map(|(_, s)| s.clone()).collect(),
        }
    }

    /// Row keys (model, constraint, extras) in table order.
    fn model_rows(&self) -> Vec<RowKey> {
        let mut keys: Vec<RowKey> = Vec::new();
        for g in self.groups {
            let k = RowKey::of(g);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    /// The group of a row at a setting, pre-trained or not.
    fn find(&self, key: &RowKey, setting: &str, pretrained: bool) -> Option<&'a Group> {
        self.groups.iter().find(|g| {
            RowKey::of(g) == *key && g.roles.setting == setting && g.roles.pretrained == pretrained
        })
    }

    /// The group of a row at a setting, pre-trained where that exists.
    fn preferred(&self, key: &RowKey, setting: &str) -> Option<&'a Group> {
        self.find(key, setting, true)
            .or_else(|| self.find(key, setting, false))
    }
}

/// What a row of tables 1 to 3 stands for.
#[derive(Debug, Clone, PartialEq)]
struct RowKey {
    model: String,
    constraint: String,
    extra: Vec<(String, String)>,
}

impl RowKey {
    fn of(g: &Group) -> RowKey {
        RowKey {
            model: g.value("model"),
            constraint: g.value("constraint"),
            extra: g.roles.extra.clone(),
        }
    }

    fn cells(&self) -> Vec<Cell> {
        let mut c = vec![Cell::plain(&self.model), Cell::plain(&self.constraint)];
        c.extend(self.extra.iter().map(|(_, v)| Cell::plain(v)));
        c
    }

    fn label(&self) -> String {
        let mut parts = vec![self.model.clone()];
        if self.constraint != "–" {
            parts.push(self.constraint.clone());
        }
        parts.extend(self.extra.iter().map(|(_, v)| v.clone()));
        parts.join(", ")
    }
}

/// A table's headers and which are numeric: the label columns `lead`, the study's extra
/// axes, the label columns `after`, then the numeric columns `numbers`.
fn columns(
    index: &Index,
    lead: &[&str],
    after: &[&str],
    numbers: &[&str],
) -> (Vec<String>, Vec<bool>) {
    let mut headers: Vec<String> = lead.iter().map(|h| h.to_string()).collect();
    headers.extend(extra_headers(index.groups));
    headers.extend(after.iter().map(|h| h.to_string()));
    let mut numeric = vec![false; headers.len()];
    headers.extend(numbers.iter().map(|h| h.to_string()));
    numeric.resize(headers.len(), true);
    (headers, numeric)
}

/// Headers of the extra axes (a study's axes beyond the roles).
fn extra_headers(groups: &[Group]) -> Vec<String> {
    groups
        .first()
        .map(|g| g.roles.extra.iter().map(|(a, _)| a.clone()).collect())
        .unwrap_or_default()
}

/// Among `candidates` (row, group), the best (lowest mean) and whether it is significantly
/// better than the runner-up; the comparison's note.
fn mark_best(
    scores: &Scores,
    candidates: &[(usize, &Group)],
    what: &str,
    label: impl Fn(usize) -> String,
) -> (Option<usize>, Option<String>) {
    let mut ranked: Vec<(usize, &Group, f64)> = candidates
        .iter()
        .filter_map(|(r, g)| scores.get(&g.roles.cell).map(|s| (*r, *g, s.mean)))
        .collect();
    ranked.sort_by(|a, b| a.2.total_cmp(&b.2));
    match ranked.as_slice() {
        [best, second, ..] => match scores.paired(&best.1.roles.cell, &second.1.roles.cell) {
            Some(p) => {
                let note = comparison(
                    &format!(
                        "{what}: best {} vs runner-up {}",
                        label(best.0),
                        label(second.0)
                    ),
                    &p,
                );
                (
                    (p.significant() && p.mean_diff < 0.0).then_some(best.0),
                    Some(note),
                )
            }
            None => (None, None),
        },
        _ => (None, None),
    }
}

/// A table as written: its file stem and its HTML (for the report page).
pub struct Written {
    pub stem: String,
    pub html: String,
}

/// Writes the tables into `out/tables/`; returns the tables written and notes on the
/// tables that were skipped.
pub fn write(
    study: &Study,
    groups: &[Group],
    m: &Metrics,
    out: &Path,
) -> Result<(Vec<Written>, Vec<String>)> {
    let index = Index::new(groups);
    let mut tables = Vec::new();
    let mut notes = Vec::new();
    tables.push(models(&index, m));
    match pretraining(&index, m) {
        Some(t) => tables.extend(t),
        None => notes.push(
            "table 2 (pre-training) skipped: no configuration was run both with and without pre-training"
                .into(),
        ),
    }
    match constraint(&index, m) {
        Some(t) => tables.extend(t),
        None => notes.push(
            "table 3 (electroneutrality constraint) skipped: no model was run with more than one constraint"
                .into(),
        ),
    }
    tables.extend(per_setting(&index, m));
    tables.extend(intervals(&index, m));

    let footer = provenance(study, groups);
    let dir = out.join("tables");
    let mut written = Vec::new();
    for t in &mut tables {
        t.notes.push(footer.clone());
        if study.synthetic() {
            t.caption.push_str(
                " Synthetic data: the measurements come from simulations or the surrogate laboratory.",
            );
        }
        output::write_text(&dir.join(format!("{}.md", t.stem)), &t.markdown())?;
        output::write_text(&dir.join(format!("{}.tex", t.stem)), &t.latex())?;
        written.push(Written {
            stem: t.stem.clone(),
            html: t.html(),
        });
    }
    Ok((written, notes))
}

fn provenance(study: &Study, groups: &[Group]) -> String {
    let dates = study
        .dates()
        .map(|(a, b)| {
            if a == b {
                format!("; runs written {a}")
            } else {
                format!("; runs written {a} to {b}")
            }
        })
        .unwrap_or_default();
    format!(
        "{} runs in {} configurations; git commit(s): {}; manifest hash: {}{dates}{}",
        study.runs.len(),
        groups.len(),
        study.commits().join(", "),
        study.manifest_hashes().join(", "),
        if study.skipped.is_empty() {
            String::new()
        } else {
            format!("; {} unfinished run(s) skipped", study.skipped.len())
        }
    )
}

const MEAN_STD: &str = "Mean ± sample standard deviation over seeds";
const SIGNIFICANCE: &str = "Bold: best in its column and significantly better than the \
runner-up (paired t-test over seeds, two-sided, p < 0.05; with 5 seeds the exact Wilcoxon \
signed-rank test cannot reach p < 0.05, its p is given beside).";
/// Said in a caption when a table has a leave-one-family-out column or rows.
const FOLDS: &str = " A leave-one-family-out setting is the mean over its folds, per seed.";

fn folds(index: &Index) -> &'static str {
    if index.groups.iter().any(|g| g.roles.split == "by_family") {
        FOLDS
    } else {
        ""
    }
}

fn models(index: &Index, m: &Metrics) -> Table {
    let rows_keys = index.model_rows();
    let settings: Vec<&str> = index.settings.iter().map(String::as_str).collect();
    let (headers, numeric) = columns(index, &["model", "constraint"], &[], &settings);
    let mut rows: Vec<Vec<Cell>> = rows_keys.iter().map(RowKey::cells).collect();
    let mut notes = Vec::new();
    for setting in &index.settings {
        let candidates: Vec<(usize, &Group)> = rows_keys
            .iter()
            .enumerate()
            .filter_map(|(r, k)| index.preferred(k, setting).map(|g| (r, g)))
            .collect();
        let (best, note) = mark_best(&m.test_mae, &candidates, setting, |r| rows_keys[r].label());
        notes.extend(note);
        for (r, row) in rows.iter_mut().enumerate() {
            let g = candidates.iter().find(|(i, _)| *i == r).map(|(_, g)| *g);
            row.push(Cell {
                text: stat_text(g.and_then(|g| m.test_mae.get(&g.roles.cell))),
                bold: best == Some(r),
            });
        }
    }
    Table {
        number: "1".into(),
        stem: "table1_models".into(),
        caption: format!(
            "Test rejection MAE of each model and electroneutrality constraint, per setting \
             (pre-trained where the model pre-trains). {MEAN_STD}. {SIGNIFICANCE}{}",
            folds(index)
        ),
        headers,
        numeric,
        rows,
        notes,
    }
}

fn pretraining(index: &Index, m: &Metrics) -> Option<Vec<Table>> {
    let mut rows = Vec::new();
    for setting in &index.settings {
        for key in index.model_rows() {
            let (Some(on), Some(off)) = (
                index.find(&key, setting, true),
                index.find(&key, setting, false),
            ) else {
                continue;
            };
            let p = m.test_mae.paired(&on.roles.cell, &off.roles.cell);
            let better_on = p.is_some_and(|p| p.significant() && p.mean_diff < 0.0);
            let better_off = p.is_some_and(|p| p.significant() && p.mean_diff > 0.0);
            let mut row = vec![Cell::plain(setting)];
            row.extend(key.cells());
            row.push(Cell {
                text: stat_text(m.test_mae.get(&off.roles.cell)),
                bold: better_off,
            });
            row.push(Cell {
                text: stat_text(m.test_mae.get(&on.roles.cell)),
                bold: better_on,
            });
            match p {
                Some(p) => {
                    row.push(Cell::plain(diff_text(&p)));
                    row.push(Cell::plain(p_text(p.p_t)));
                    row.push(Cell::plain(p_text(p.p_wilcoxon)));
                }
                None => row.extend((0..3).map(|_| Cell::plain("–"))),
            }
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return None;
    }
    let (headers, numeric) = columns(
        index,
        &["setting", "model", "constraint"],
        &[],
        &[
            "off",
            "on",
            "Δ on − off [95 % CI]",
            "t-test p",
            "Wilcoxon p",
        ],
    );
    Some(parts(Table {
        number: "2".into(),
        stem: "table2_pretraining".into(),
        caption: format!(
            "Pre-training on DSPM-DE simulations: test rejection MAE without (off) and with (on) \
             pre-training, and the paired difference over seeds. {MEAN_STD}. Bold: the better of \
             the two where the paired t-test (two-sided) gives p < {ALPHA}.{}",
            folds(index)
        ),
        headers,
        numeric,
        rows,
        notes: Vec::new(),
    }))
}

fn constraint(index: &Index, m: &Metrics) -> Option<Vec<Table>> {
    let mut rows = Vec::new();
    for setting in &index.settings {
        // Per model (and extras): its constraints, pre-trained where that exists.
        let mut models: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for key in index.model_rows() {
            let k = (key.model.clone(), key.extra.clone());
            if key.constraint != "–" && !models.contains(&k) {
                models.push(k);
            }
        }
        for (model, extra) in models {
            let keys: Vec<RowKey> = index
                .model_rows()
                .into_iter()
                .filter(|k| k.model == model && k.extra == extra)
                .collect();
            let groups: Vec<(&RowKey, &Group)> = keys
                .iter()
                .filter_map(|k| index.preferred(k, setting).map(|g| (k, g)))
                .collect();
            if groups.len() < 2 {
                continue;
            }
            let hard = groups
                .iter()
                .find(|(k, _)| k.constraint == "hard")
                .map(|(_, g)| *g);
            for (k, g) in &groups {
                let c = &g.roles.cell;
                let mut row = vec![Cell::plain(setting)];
                row.extend(k.cells());
                row.push(Cell::plain(stat_text(m.test_mae.get(c))));
                row.push(Cell::plain(stat_text(m.en_mean.get(c))));
                row.push(Cell::plain(stat_text(m.en_max.get(c))));
                match hard
                    .filter(|h| h.roles.cell != *c)
                    .and_then(|h| m.test_mae.paired(c, &h.roles.cell))
                {
                    Some(p) => {
                        row.push(Cell {
                            text: diff_text(&p),
                            bold: p.significant(),
                        });
                        row.push(Cell::plain(p_text(p.p_t)));
                    }
                    None => row.extend((0..2).map(|_| Cell::plain("–"))),
                }
                rows.push(row);
            }
        }
    }
    if rows.is_empty() {
        return None;
    }
    let (headers, numeric) = columns(
        index,
        &["setting", "model", "constraint"],
        &[],
        &[
            "test MAE",
            "EN residual, mean",
            "EN residual, max",
            "Δ MAE vs hard [95 % CI]",
            "t-test p",
        ],
    );
    Some(parts(Table {
        number: "3".into(),
        stem: "table3_constraint".into(),
        caption: format!(
            "The electroneutrality constraint: test rejection MAE and the electroneutrality \
             residual |Σ zᵢ cₚ,ᵢ| / c_scale of the predicted permeates (mean and max over test rows), \
             pre-trained where the model pre-trains, with the paired difference of the MAE to the \
             hard constraint (bold where the paired t-test, two-sided, gives p < {ALPHA}). \
             {MEAN_STD}.{}",
                folds(index)
        ),
        headers,
        numeric,
        rows,
        notes: Vec::new(),
    }))
}

fn per_setting(index: &Index, m: &Metrics) -> Vec<Table> {
    let mut tables = Vec::new();
    for (i, setting) in index.settings.iter().enumerate() {
        let groups: Vec<&Group> = index
            .groups
            .iter()
            .filter(|g| &g.roles.setting == setting)
            .collect();
        let candidates: Vec<(usize, &Group)> = groups.iter().copied().enumerate().collect();
        let label = |r: usize| {
            let g = groups[r];
            format!(
                "{}, pre-training {}",
                RowKey::of(g).label(),
                g.value("pre-training")
            )
        };
        let (best, note) = mark_best(&m.test_mae, &candidates, "test MAE", label);
        let rows = groups
            .iter()
            .enumerate()
            .map(|(r, g)| {
                let c = &g.roles.cell;
                let mut row = RowKey::of(g).cells();
                row.push(Cell::plain(g.value("pre-training")));
                row.push(Cell {
                    text: stat_text(m.test_mae.get(c)),
                    bold: best == Some(r),
                });
                row.push(Cell::plain(stat_text(m.test_rmse.get(c))));
                row.push(Cell::plain(stat_text(m.test_r2.get(c))));
                row.push(Cell::plain(stat_text(m.validation_mae.get(c))));
                row
            })
            .collect();
        let (headers, numeric) = columns(
            index,
            &["model", "constraint"],
            &["pre-training"],
            &["test MAE", "test RMSE", "test R²", "validation MAE"],
        );
        tables.extend(parts(Table {
            number: format!("4{}", (b'a' + (i as u8 % 26)) as char),
            stem: format!(
                "table4{}_{}",
                (b'a' + (i as u8 % 26)) as char,
                slug(setting)
            ),
            caption: format!(
                "Every configuration in the setting {setting}: test rejection MAE, RMSE and R², \
                 and validation MAE. {MEAN_STD}. {SIGNIFICANCE}{}",
                folds(index)
            ),
            headers,
            numeric,
            rows,
            notes: note.into_iter().collect(),
        }));
    }
    tables
}

/// Table 5, for a study with ensembles: how often the held-out measurements fall inside
/// the prediction intervals, and how wide those are, per setting and configuration.
fn intervals(index: &Index, m: &Metrics) -> Vec<Table> {
    if m.test_coverage.stat.is_empty() {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for setting in &index.settings {
        for g in index.groups.iter().filter(|g| &g.roles.setting == setting) {
            let c = &g.roles.cell;
            if m.test_coverage.get(c).is_none() {
                continue;
            }
            let mut row = vec![Cell::plain(setting)];
            row.extend(RowKey::of(g).cells());
            row.push(Cell::plain(g.value("pre-training")));
            for scores in [
                &m.test_coverage,
                &m.test_width,
                &m.validation_coverage,
                &m.validation_width,
            ] {
                row.push(Cell::plain(stat_text(scores.get(c))));
            }
            rows.push(row);
        }
    }
    let (headers, numeric) = columns(
        index,
        &["setting", "model", "constraint"],
        &["pre-training"],
        &[
            "test coverage",
            "test width",
            "validation coverage",
            "validation width",
        ],
    );
    parts(Table {
        number: "5".into(),
        stem: "table5_intervals".into(),
        caption: format!(
            "Prediction intervals of the ensembles: the share of measured test (and \
             validation) values inside their central interval, and the interval's mean width \
             in rejection. The interval's level and rule are in each run's config \
             (`ensemble.level`, `ensemble.interval`). {MEAN_STD}.{}",
            folds(index)
        ),
        headers,
        numeric,
        rows,
        notes: Vec::new(),
    })
}

/// Cuts a table with more than [`MAX_ROWS`] rows into parts of at most that many (the
/// header repeated, "part k of n" in the caption).
fn parts(t: Table) -> Vec<Table> {
    if t.rows.len() <= MAX_ROWS {
        return vec![t];
    }
    let chunks: Vec<Vec<Vec<Cell>>> = t.rows.chunks(MAX_ROWS).map(|c| c.to_vec()).collect();
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(k, rows)| Table {
            number: format!("{}.{}", t.number, k + 1),
            stem: format!("{}_part{}", t.stem, k + 1),
            caption: format!("{} (Part {} of {n}.)", t.caption, k + 1),
            headers: t.headers.clone(),
            numeric: t.numeric.clone(),
            rows,
            notes: t.notes.clone(),
        })
        .collect()
}

/// `n_train = 6` -> `n_train-6` (safe in file names).
fn slug(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}

impl Table {
    fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!("**Table {}.** {}\n\n", self.number, self.caption);
        out.push_str(&format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        out.push_str(&format!(
            "|{}|\n",
            self.numeric
                .iter()
                .map(|&n| if n { "---:" } else { "---" })
                .collect::<Vec<_>>()
                .join("|")
        ));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| {
                    if c.bold {
                        format!("**{}**", esc(&c.text))
                    } else {
                        esc(&c.text)
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        for note in &self.notes {
            out.push_str(&format!("\n{note}\n"));
        }
        out
    }

    fn html(&self) -> String {
        let esc = super::names::escape;
        let mut out = format!(
            "<figure class=\"table\" id=\"{}\">\n<figcaption><b>Table {}.</b> {}</figcaption>\n<table>\n<thead><tr>",
            self.stem,
            self.number,
            esc(&self.caption)
        );
        for (h, &n) in self.headers.iter().zip(&self.numeric) {
            out.push_str(&format!(
                "<th class=\"{}\">{}</th>",
                if n { "num" } else { "" },
                esc(h)
            ));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (c, &n) in row.iter().zip(&self.numeric) {
                let t = esc(&c.text);
                let t = if c.bold { format!("<b>{t}</b>") } else { t };
                out.push_str(&format!(
                    "<td class=\"{}\">{t}</td>",
                    if n { "num" } else { "" }
                ));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody></table>\n");
        for note in &self.notes {
            out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(note)));
        }
        out.push_str("</figure>\n");
        out
    }

    fn latex(&self) -> String {
        let cols: String = self
            .numeric
            .iter()
            .map(|&n| if n { 'r' } else { 'l' })
            .collect();
        let mut out = String::from(
            "% Generated by `ablate report`; needs \\usepackage{booktabs} and \\usepackage{graphicx}.\n",
        );
        out.push_str("\\begin{table}[tbp]\n\\centering\n");
        out.push_str(&format!("\\caption{{{}}}\n", latex_escape(&self.caption)));
        out.push_str(&format!("\\label{{tab:{}}}\n", self.stem.replace('_', "-")));
        // The tabular in a box, scaled down to the text width only when wider.
        out.push_str("\\small\n\\setbox0=\\hbox{%\n");
        out.push_str(&format!("\\begin{{tabular}}{{{cols}}}\n\\toprule\n"));
        let headers: Vec<String> = self.headers.iter().map(|h| latex_escape(h)).collect();
        out.push_str(&format!("{} \\\\\n\\midrule\n", headers.join(" & ")));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| {
                    let t = latex_escape(&c.text);
                    if c.bold {
                        format!("\\textbf{{{t}}}")
                    } else {
                        t
                    }
                })
                .collect();
            out.push_str(&format!("{} \\\\\n", cells.join(" & ")));
        }
        out.push_str("\\bottomrule\n\\end{tabular}}%\n");
        out.push_str(
            "\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\box0}\\else\\box0\\fi\n",
        );
        if !self.notes.is_empty() {
            out.push_str("\\par\\smallskip\n\\begin{minipage}{\\linewidth}\\footnotesize\n");
            let notes: Vec<String> = self.notes.iter().map(|n| latex_escape(n)).collect();
            out.push_str(&notes.join("\\par\n"));
            out.push_str("\n\\end{minipage}\n");
        }
        out.push_str("\\end{table}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_slugs() {
        assert_eq!(number(0.05), "0.0500");
        assert_eq!(number(1.2e-15), "1.20e-15");
        assert_eq!(slug("n_train = 6"), "n_train-6");
        assert_eq!(slug("leave one family out"), "leave-one-family-out");
        let mut bad = Vec::new();
        for _ in 0..(MAX_ROWS + 5) {
            bad.push(vec![Cell::plain("x")]);
        }
        let t = Table {
            number: "2".into(),
            stem: "t".into(),
            caption: "c".into(),
            headers: vec!["h".into()],
            numeric: vec![false],
            rows: bad,
            notes: vec![],
        };
        let p = parts(t);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].rows.len(), 5);
        assert!(p[0].caption.ends_with("(Part 1 of 2.)"));
    }
}
