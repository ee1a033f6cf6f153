//! The paper tables (Markdown and LaTeX): mean +- std over seeds with n, best in bold.
//!
//! Each table is a filter of the study's runs, grouped by every axis but the seed; its
//! columns are the axes that actually vary in it (the table's own axes first), then the
//! metrics. Axes are found by role ([`super::Roles`]), and the file names are made from
//! the axes, so a study whose manifest lacks an axis gets a note instead of a table.

use super::collect::{Run, Study};
use super::{compare, display_axis, group, is_on, max_value, prefer, varying, Group, Roles, Stat};
use crate::output;
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

/// A metric column.
struct Metric {
    header: &'static str,
    latex: &'static str,
    value: fn(&Run) -> Option<f64>,
    /// R^2: higher is better; errors and residuals: lower.
    higher_is_better: bool,
}

const TEST_MAE: Metric = Metric {
    header: "test MAE",
    latex: "test MAE",
    value: |r| r.metric("measured", "test", "mae"),
    higher_is_better: false,
};
const TEST_RMSE: Metric = Metric {
    header: "test RMSE",
    latex: "test RMSE",
    value: |r| r.metric("measured", "test", "rmse"),
    higher_is_better: false,
};
const TEST_R2: Metric = Metric {
    header: "test R²",
    latex: "test $R^2$",
    value: |r| r.metric("measured", "test", "r2"),
    higher_is_better: true,
};
const VAL_MAE: Metric = Metric {
    header: "validation MAE",
    latex: "validation MAE",
    value: |r| r.metric("measured", "validation", "mae"),
    higher_is_better: false,
};
const EN_MEAN: Metric = Metric {
    header: "EN residual mean",
    latex: "EN residual mean",
    value: |r| r.metric("measured", "test", "electroneutrality_mean"),
    higher_is_better: false,
};
const EN_MAX: Metric = Metric {
    header: "EN residual max",
    latex: "EN residual max",
    value: |r| r.metric("measured", "test", "electroneutrality_max"),
    higher_is_better: false,
};

/// A preferred axis value: (axis, description for the caption, predicate).
type Preference = (String, String, Box<dyn Fn(&Value) -> bool>);

/// One table to make.
struct Spec {
    number: usize,
    what: &'static str,
    /// The table's own axes (first columns, and the file name).
    lead: Vec<String>,
    /// Preferred values: (axis, description, predicate).
    prefer: Vec<Preference>,
    metrics: Vec<Metric>,
}

/// Writes the tables into `out/tables/`; returns the file stems written and notes on the
/// tables that were skipped.
pub fn write(study: &Study, out: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let roles = Roles::of(study);
    let mut notes = Vec::new();
    let mut specs = Vec::new();
    let largest = |axis: &Option<String>| {
        axis.as_ref().and_then(|a| {
            max_value(study, a).map(|m| {
                let desc = format!("{a} = {}", display_axis(a, &m));
                (
                    a.clone(),
                    desc,
                    Box::new(move |v: &Value| v == &m) as Box<dyn Fn(&Value) -> bool>,
                )
            })
        })
    };
    let pretrained = |axis: &Option<String>| {
        axis.as_ref().map(|a| {
            (
                a.clone(),
                format!("{a} on where applicable"),
                Box::new(is_on) as Box<dyn Fn(&Value) -> bool>,
            )
        })
    };

    if roles.model.is_empty() {
        notes.push("table 1 (model comparison) skipped: no model axis ('method' or '*variant') in this study".into());
    } else {
        let mut lead = roles.model.clone();
        lead.extend(roles.constraint.clone());
        specs.push(Spec {
            number: 1,
            what: "Model comparison",
            lead,
            prefer: largest(&roles.n_train)
                .into_iter()
                .chain(pretrained(&roles.pretrain))
                .collect(),
            metrics: vec![TEST_MAE, TEST_RMSE, TEST_R2, VAL_MAE],
        });
    }
    match (&roles.pretrain, &roles.n_train) {
        (Some(p), Some(n)) => specs.push(Spec {
            number: 2,
            what: "Pre-training effect",
            lead: vec![n.clone(), p.clone()],
            prefer: Vec::new(),
            metrics: vec![TEST_MAE, TEST_RMSE, TEST_R2],
        }),
        _ => notes.push(format!(
            "table 2 (pre-training effect) skipped: needs a pre-training axis ('pretrain': {}) and a training-size axis ('n_train': {})",
            roles.pretrain.as_deref().unwrap_or("absent"),
            roles.n_train.as_deref().unwrap_or("absent")
        )),
    }
    match &roles.constraint {
        Some(c) => specs.push(Spec {
            number: 3,
            what: "Electroneutrality constraint",
            lead: vec![c.clone()],
            prefer: largest(&roles.n_train)
                .into_iter()
                .chain(pretrained(&roles.pretrain))
                .collect(),
            metrics: vec![TEST_MAE, TEST_RMSE, EN_MEAN, EN_MAX],
        }),
        None => notes.push(
            "table 3 (electroneutrality constraint) skipped: no constraint axis ('*electroneutrality*' or '*constraint*') in this study"
                .into(),
        ),
    }

    let dir = out.join("tables");
    let mut written = Vec::new();
    for spec in &specs {
        let mut runs: Vec<usize> = (0..study.runs.len()).collect();
        for (axis, _, pred) in &spec.prefer {
            runs = prefer(study, runs, &spec.lead, axis, pred);
        }
        let mut groups = group(study, runs);
        // The table's own axes order the rows; the sort is stable, so the other axes keep
        // their order within.
        groups.sort_by(|a, b| {
            spec.lead
                .iter()
                .map(|ax| {
                    compare(
                        a.value(ax).unwrap_or(&Value::Null),
                        b.value(ax).unwrap_or(&Value::Null),
                    )
                })
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let table = Table::build(study, spec, &groups);
        let stem = format!(
            "table{}_{}",
            spec.number,
            spec.lead
                .iter()
                .map(|a| slug(a))
                .collect::<Vec<_>>()
                .join("_x_")
        );
        output::write_text(&dir.join(format!("{stem}.md")), &table.markdown())?;
        output::write_text(&dir.join(format!("{stem}.tex")), &table.latex())?;
        written.push(stem);
    }
    Ok((written, notes))
}

/// `model.electroneutrality` -> `model-electroneutrality` (safe in file names).
fn slug(axis: &str) -> String {
    axis.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A number for a table cell: 4 decimals, or 3 significant digits in exponent form for
/// tiny values (a hard constraint's residual is ~1e-15, not 0.0000).
pub fn number(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else if x != 0.0 && x.abs() < 1e-3 {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

/// A rendered table, independent of the markup.
struct Table {
    title: String,
    caption: String,
    headers: Vec<String>,
    latex_headers: Vec<String>,
    /// Cells as (text, bold).
    rows: Vec<Vec<(String, bool)>>,
    /// Right-aligned columns (numbers).
    numeric: Vec<bool>,
    footer: String,
}

impl Table {
    fn build(study: &Study, spec: &Spec, groups: &[Group]) -> Table {
        let varying_axes = varying(groups);
        let mut axes: Vec<String> = spec.lead.clone();
        axes.extend(
            varying_axes
                .iter()
                .filter(|a| !spec.lead.contains(a))
                .cloned(),
        );
        let constant: Vec<String> = groups
            .first()
            .map(|g| {
                g.key
                    .iter()
                    .filter(|(a, _)| !axes.contains(a))
                    .filter(|(a, _)| !spec.prefer.iter().any(|(p, _, _)| p == a))
                    .map(|(a, v)| format!("{a} = {}", display_axis(a, v)))
                    .collect()
            })
            .unwrap_or_default();
        let stats: Vec<Vec<Option<Stat>>> = groups
            .iter()
            .map(|g| {
                spec.metrics
                    .iter()
                    .map(|m| g.stat(study, m.value))
                    .collect()
            })
            .collect();
        // The best mean per metric column (ties all marked).
        let best: Vec<Option<f64>> = (0..spec.metrics.len())
            .map(|c| {
                let means = stats.iter().filter_map(|row| row[c].map(|s| s.mean));
                if spec.metrics[c].higher_is_better {
                    means.reduce(f64::max)
                } else {
                    means.reduce(f64::min)
                }
            })
            .collect();
        let rows = groups
            .iter()
            .zip(&stats)
            .map(|(g, row)| {
                let mut cells: Vec<(String, bool)> = axes
                    .iter()
                    .map(|a| (display_axis(a, g.value(a).unwrap_or(&Value::Null)), false))
                    .collect();
                cells.push((g.runs.len().to_string(), false));
                for (c, s) in row.iter().enumerate() {
                    cells.push(match s {
                        Some(s) => {
                            let mut text = format!("{} ± {}", number(s.mean), number(s.std));
                            if s.n != g.runs.len() {
                                text.push_str(&format!(" (n={})", s.n));
                            }
                            (text, best[c] == Some(s.mean))
                        }
                        None => ("–".to_string(), false),
                    });
                }
                cells
            })
            .collect();
        let mut headers = axes.clone();
        headers.push("n".into());
        let mut latex_headers = axes.clone();
        latex_headers.push("$n$".into());
        for m in &spec.metrics {
            headers.push(m.header.into());
            latex_headers.push(m.latex.into());
        }
        let mut numeric = vec![false; axes.len()];
        numeric.extend(vec![true; spec.metrics.len() + 1]);
        let mut context: Vec<String> = spec.prefer.iter().map(|(_, d, _)| d.clone()).collect();
        context.extend(constant);
        let caption = format!(
            "{} by {}{}. Mean ± std over seeds (sample std; n = number of seeds per \
             configuration); best per column in bold. Metrics of the measured data (rejection).{}",
            spec.what,
            spec.lead.join(" × "),
            if context.is_empty() {
                String::new()
            } else {
                format!(" ({})", context.join("; "))
            },
            if study.synthetic() {
                " Synthetic data: the measurements come from the surrogate laboratory."
            } else {
                ""
            },
        );
        let n_runs: usize = groups.iter().map(|g| g.runs.len()).sum();
        let footer = format!(
            "git commit(s): {}; manifest hash: {}; {} runs in {} configurations{}",
            study.commits().join(", "),
            study.manifest_hashes().join(", "),
            n_runs,
            groups.len(),
            if study.skipped.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} unfinished run(s) without DONE skipped",
                    study.skipped.len()
                )
            }
        );
        Table {
            title: format!("Table {}{}", spec.number, super::synthetic_note(study)),
            caption,
            headers,
            latex_headers,
            rows,
            numeric,
            footer,
        }
    }

    fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!("**{}.** {}\n\n", self.title, self.caption);
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
                .map(|(t, bold)| {
                    if *bold {
                        format!("**{}**", esc(t))
                    } else {
                        esc(t)
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push_str(&format!("\n{}\n", self.footer));
        out
    }

    fn latex(&self) -> String {
        let cols: String = self
            .numeric
            .iter()
            .map(|&n| if n { 'r' } else { 'l' })
            .collect();
        let mut out =
            String::from("% Generated by `ablate report`; needs \\usepackage{booktabs}.\n");
        out.push_str("\\begin{table}[t]\n\\centering\n");
        out.push_str(&format!(
            "\\caption{{{}: {}}}\n",
            latex_escape(&self.title),
            latex_escape(&self.caption)
        ));
        out.push_str(&format!("\\begin{{tabular}}{{{cols}}}\n\\toprule\n"));
        let headers: Vec<String> = self
            .latex_headers
            .iter()
            .zip(&self.headers)
            .map(|(l, h)| {
                // Metric headers carry their own math; axis names are escaped.
                if l.contains('$') {
                    l.clone()
                } else {
                    latex_escape(h)
                }
            })
            .collect();
        out.push_str(&format!("{} \\\\\n\\midrule\n", headers.join(" & ")));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|(t, bold)| {
                    let t = latex_escape(t);
                    if *bold {
                        format!("\\textbf{{{t}}}")
                    } else {
                        t
                    }
                })
                .collect();
            out.push_str(&format!("{} \\\\\n", cells.join(" & ")));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n\n");
        out.push_str(&format!(
            "\\par\\smallskip\\footnotesize {}\n\\end{{table}}\n",
            latex_escape(&self.footer)
        ));
        out
    }
}

/// Escapes LaTeX's special characters; `±`, `×` and `²` become math.
fn latex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '±' => out.push_str("$\\pm$"),
            '×' => out.push_str("$\\times$"),
            '²' => out.push_str("$^2$"),
            '–' => out.push_str("--"),
            _ => out.push(c),
        }
    }
    out
}
