//! Which axes matter: each axis's share of the variance of the chosen metric over a
//! study's finished runs, by fANOVA (Hutter, Hoos and Leyton-Brown 2014, "An efficient
//! approach for assessing hyperparameter importance", ICML; the `fanova` crate: a random
//! forest fitted to the runs, then each axis's main effect as a fraction of the forest's
//! variance), as `tables/importance.md` and a figure.
//!
//! Given for a search, by its metric, and for a sweep of at least [`MIN_RUNS`] runs, by the
//! measured validation MAE (never a test part: importance guides the next search). One row
//! per finished run with a defined metric; an axis is a column:
//! - numbers as they are, or their log10 where the search drew them log-uniformly or they
//!   are positive and span at least two decades (a forest splits a log axis evenly);
//! - anything else (a choice of strings, of tables, an axis some methods ignore, shown
//!   `null`) as the position of its value among the axis's distinct values.
//!
//! An axis with one value, the seed and a TPE search's folds (its grid axes) are left out.
//! The forest is seeded, so the same runs give the same table.

use crate::collect::Study;
use crate::error::{ReportError, Result};
use crate::figures::style::{font, px, render, width, Area, Figure};
use crate::names::escape;
use crate::tables::Written;
use ionode_study::manifest::search_spec::{MetricRef, SearchSpec};
use ionode_study::manifest::Dist;
use ionode_study::output;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Fewest runs a sweep's importance is given for (a forest on fewer says little).
pub const MIN_RUNS: usize = 20;
/// Most runs the forest is fitted to: a larger study gives an evenly spaced sample of its
/// runs (in run-id order, so the same runs every time), which the table says.
pub const MAX_ROWS: usize = 2_000;
/// The forest's seed (fixed: a report is a function of its runs).
const SEED: u64 = 0x696d_706f_7274;

/// One axis's importance.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisImportance {
    pub axis: String,
    /// Share of the metric's variance explained by the axis alone (mean over the trees).
    pub share: f64,
    /// Standard deviation of the share over the trees.
    pub std: f64,
    /// Whether the axis entered as log10 of its values.
    pub log: bool,
}

/// The importances of a study's axes, most important first.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    pub metric: String,
    /// Runs the forest was fitted to.
    pub runs: usize,
    /// Finished runs with the metric defined (more than `runs` when sampled).
    pub of: usize,
    pub axes: Vec<AxisImportance>,
}

/// One axis's values over the runs, and whether its search drew it log-uniformly.
pub struct Column {
    pub axis: String,
    pub values: Vec<serde_json::Value>,
    pub log_drawn: bool,
}

/// The axis as numbers for the forest (`None` when it has a single value).
fn encode(c: &Column) -> Option<(Vec<f64>, bool)> {
    let numbers: Option<Vec<f64>> = c.values.iter().map(|v| v.as_f64()).collect();
    let mut distinct: Vec<String> = c.values.iter().map(|v| v.to_string()).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() < 2 {
        return None;
    }
    if let Some(x) = numbers {
        let (lo, hi) = x
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let log = lo > 0.0 && (c.log_drawn || hi / lo >= 100.0);
        return Some(if log {
            (x.iter().map(|v| v.log10()).collect(), true)
        } else {
            (x, false)
        });
    }
    let codes = c
        .values
        .iter()
        .map(|v| distinct.binary_search(&v.to_string()).unwrap_or(0) as f64)
        .collect();
    Some((codes, false))
}

/// fANOVA of `target` (one value per run) over the columns; `None` without an axis that
/// varies or with fewer than two runs.
pub fn compute(metric: &str, columns: &[Column], target: &[f64]) -> Option<Importance> {
    if target.len() < 2 || columns.iter().any(|c| c.values.len() != target.len()) {
        return None;
    }
    let encoded: Vec<(&Column, Vec<f64>, bool)> = columns
        .iter()
        .filter_map(|c| encode(c).map(|(x, log)| (c, x, log)))
        .collect();
    if encoded.is_empty() {
        return None;
    }
    let features: Vec<&[f64]> = encoded.iter().map(|(_, x, _)| x.as_slice()).collect();
    let mut f = fanova::FanovaOptions::new()
        .random_forest(fanova::RandomForestOptions::new().seed(SEED))
        .fit(features, target)
        .ok()?;
    let mut axes: Vec<AxisImportance> = encoded
        .iter()
        .enumerate()
        .map(|(i, (c, _, log))| {
            let imp = f.quantify_importance(&[i]);
            AxisImportance {
                axis: c.axis.clone(),
                share: if imp.mean.is_finite() { imp.mean } else { 0.0 },
                std: if imp.stddev.is_finite() {
                    imp.stddev
                } else {
                    0.0
                },
                log: *log,
            }
        })
        .collect();
    axes.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.axis.cmp(&b.axis)));
    Some(Importance {
        metric: metric.to_string(),
        runs: target.len(),
        of: target.len(),
        axes,
    })
}

/// The metric importance is given for: a search's own (its first objective), else the
/// measured validation MAE.
fn metric(spec: Option<&SearchSpec>) -> (String, Option<MetricRef>) {
    match spec {
        Some(s) => match s.objectives().into_iter().next() {
            Some((name, r, _)) => (name, Some(r)),
            None => (s.metric.clone(), None),
        },
        None => (
            "finetune.validation.mae".into(),
            Some(MetricRef {
                stage: ionode_train::observe::Stage::Finetune,
                part: "validation".into(),
                name: "mae".into(),
                ion: None,
            }),
        ),
    }
}

/// The importances of a study: a search's, or a sweep's of at least [`MIN_RUNS`] runs.
pub fn of_study(study: &Study) -> Option<Importance> {
    let search = study.plan.search.as_ref();
    if search.is_none() && study.runs.len() < MIN_RUNS {
        return None;
    }
    let (name, metric) = metric(search.map(|s| &s.spec));
    let metric = metric?;
    let mut rows: Vec<(usize, f64)> = study
        .runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            ionode_study::score::metric_of(&r.record.metrics, &metric).map(|v| (i, v))
        })
        .collect();
    let of = rows.len();
    if rows.len() > MAX_ROWS {
        rows.sort_by(|a, b| {
            let id = |i: usize| &study.runs[i].record.head.provenance.run_id;
            id(a.0).cmp(id(b.0))
        });
        rows = (0..MAX_ROWS).map(|k| rows[k * of / MAX_ROWS]).collect();
    }
    let mut axes: Vec<&String> = study
        .runs
        .iter()
        .flat_map(|r| r.record.head.axes.keys())
        .filter(|a| *a != "seed")
        // A TPE search's grid axes are its folds, not something it chooses.
        .filter(|a| {
            search.is_none_or(|s| s.space.is_empty() || s.space.iter().any(|(x, _)| x == *a))
        })
        .collect();
    axes.sort();
    axes.dedup();
    let log_drawn = |axis: &str| {
        search.is_some_and(|s| {
            s.space
                .iter()
                .any(|(a, d)| a == axis && matches!(d, Dist::LogUniform { .. }))
        })
    };
    let columns: Vec<Column> = axes
        .into_iter()
        .map(|axis| Column {
            axis: axis.clone(),
            values: rows
                .iter()
                .map(|&(i, _)| {
                    study.runs[i]
                        .record
                        .head
                        .axes
                        .get(axis)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null)
                })
                .collect(),
            log_drawn: log_drawn(axis),
        })
        .collect();
    let target: Vec<f64> = rows.iter().map(|&(_, v)| v).collect();
    compute(&name, &columns, &target).map(|i| Importance { of, ..i })
}

/// Writes `out/tables/importance.md` and `out/figures/importance.*`; returns the table for
/// the page and the figure's name. `syn` is the study's synthetic-data label
/// ([`crate::synthetic_note`]), carried into the text and the figure's title.
pub fn write(imp: &Importance, syn: &str, out: &Path) -> Result<(Written, String)> {
    let runs = if imp.of > imp.runs {
        format!(
            "{} of the {} finished runs (evenly spaced by run id)",
            imp.runs, imp.of
        )
    } else {
        format!("{} finished runs", imp.runs)
    };
    let intro = format!(
        "Share of the variance of {} over {runs}{syn} explained by each axis alone (fANOVA on a seeded random forest of 100 trees; mean ± standard deviation over the trees; log10 where marked).",
        imp.metric
    );
    let mut md = format!(
        "# Axis importance\n\n{intro}\n\n| axis | share of variance | ± |\n|---|---|---|\n"
    );
    let mut html = format!(
        "<h3>Axis importance</h3>\n<p>{}</p>\n<table><thead><tr><th>axis</th><th>share of variance</th><th>±</th></tr></thead><tbody>\n",
        escape(&intro)
    );
    for a in &imp.axes {
        let name = label(a);
        writeln!(md, "| {name} | {:.3} | {:.3} |", a.share, a.std)?;
        writeln!(
            html,
            "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            escape(&name),
            a.share,
            a.std
        )?;
    }
    html.push_str("</tbody></table>\n");
    let dir = out.join("tables");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ReportError::Failed(format!("cannot create '{}': {e}", dir.display())))?;
    output::write_text(&dir.join("importance.md"), &md)?;
    crate::figures::style::register_font()?;
    render(&out.join("figures"), "importance", &Bars(imp, syn))?;
    Ok((
        Written {
            stem: "importance".into(),
            html,
        },
        "importance".into(),
    ))
}

fn label(a: &AxisImportance) -> String {
    if a.log {
        format!("{} (log10)", a.axis)
    } else {
        a.axis.clone()
    }
}

/// Horizontal bars, one per axis, most important on top, with the trees' spread.
struct Bars<'a>(&'a Importance, &'a str);

impl Figure for Bars<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 90 + 34 * self.0.axes.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let imp = self.0;
        let n = imp.axes.len();
        let top = imp
            .axes
            .iter()
            .map(|a| a.share + a.std)
            .fold(0.0f64, f64::max)
            .clamp(0.05, 1.0)
            * 1.05;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Axis importance for {} ({} runs){}",
                    imp.metric, imp.runs, self.1
                ),
                font(15.0),
            )
            .margin(px(10.0))
            .x_label_area_size(px(36.0))
            .y_label_area_size(px(230.0))
            .build_cartesian_2d(0.0..top, -0.5..(n as f64 - 0.5))
            .map_err(crate::error::draw)?;
        // Most important on top: axis k of the list is drawn at y = n - 1 - k.
        let labels: Vec<String> = imp.axes.iter().rev().map(label).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_max_light_lines(0)
            .y_labels(n)
            .x_desc("share of the metric's variance (fANOVA)")
            .label_style(font(12.0))
            .y_label_formatter(&|v| {
                let k = v.round();
                if (v - k).abs() < 1e-6 && k >= 0.0 {
                    labels.get(k as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(crate::error::draw)?;
        let colour = RGBColor(0x3b, 0x6e, 0xa8);
        for (k, a) in imp.axes.iter().rev().enumerate() {
            let y = k as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.3), (a.share.max(0.0), y + 0.3)],
                    colour.filled(),
                )))
                .map_err(crate::error::draw)?;
            let (lo, hi) = ((a.share - a.std).max(0.0), (a.share + a.std).min(top));
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(lo, y), (hi, y)],
                    BLACK.stroke_width(width(1.5)),
                )))
                .map_err(crate::error::draw)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constructed response: y depends on `lr` (log-uniform over three decades) and on
    /// the choice `variant`, not at all on `hidden`.
    fn constructed() -> (Vec<Column>, Vec<f64>) {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut lr, mut hidden, mut variant, mut y) = (vec![], vec![], vec![], vec![]);
        for _ in 0..120 {
            let l = 10f64.powf(-4.0 + 3.0 * next());
            let h = 4 + (next() * 9.0) as i64;
            let v = ["mlp", "node", "attention_node"][(next() * 3.0) as usize % 3];
            let effect = (l.log10() + 2.5).powi(2) + if v == "mlp" { 0.3 } else { 0.0 };
            lr.push(serde_json::json!(l));
            hidden.push(serde_json::json!(h));
            variant.push(serde_json::json!(v));
            y.push(effect);
        }
        let col = |axis: &str, values, log_drawn| Column {
            axis: axis.into(),
            values,
            log_drawn,
        };
        (
            vec![
                col("hidden", hidden, false),
                col("lr", lr, true),
                col("variant", variant, false),
                col("fixed", vec![serde_json::json!(1); 120], false),
            ],
            y,
        )
    }

    #[test]
    fn importance_ranks_the_axis_that_matters_above_the_one_that_does_not() {
        let (columns, y) = constructed();
        let imp = compute("y", &columns, &y).unwrap();
        let order: Vec<&str> = imp.axes.iter().map(|a| a.axis.as_str()).collect();
        assert_eq!(order, vec!["lr", "variant", "hidden"], "{imp:?}");
        assert!(imp.axes[0].share > 0.5, "{imp:?}");
        assert!(imp.axes[2].share < 0.02, "{imp:?}");
        assert!(imp.axes[0].log, "a log-uniform axis enters as log10");
        // Seeded: the same runs give the same importances.
        assert_eq!(compute("y", &columns, &y).unwrap(), imp);
        // Nothing varies: no importance.
        assert_eq!(compute("y", &columns[3..], &y), None);
    }
}
