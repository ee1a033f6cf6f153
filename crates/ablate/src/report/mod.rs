//! `ablate report`: a study's finished runs -> summary table, paper tables and figures.
//!
//! [`collect`] reads the run files, this module groups runs into configurations (every axis
//! but the seed) and knows which axes play which part in the paper's claims, [`tables`] and
//! [`figures`] render. The grouping is generic: a study names its axes freely, and a table
//! or figure whose axis is absent is skipped with a note rather than guessed.

pub mod collect;
pub mod figures;
pub mod tables;

use collect::{Run, Study};
use serde_json::Value;
use std::cmp::Ordering;

/// A configuration: the runs that share every axis value except the seed.
#[derive(Debug, Clone)]
pub struct Group {
    /// Axis path -> value, for every axis but `seed` (`Value::Null` where a run lacks it).
    pub key: Vec<(String, Value)>,
    /// Indices into `Study::runs`.
    pub runs: Vec<usize>,
}

impl Group {
    /// The value of one axis in this configuration.
    pub fn value(&self, axis: &str) -> Option<&Value> {
        self.key.iter().find(|(a, _)| a == axis).map(|(_, v)| v)
    }

    /// A short label from the given axes, e.g. `attention_node, hard, 30`.
    pub fn label(&self, axes: &[String]) -> String {
        let parts: Vec<String> = axes
            .iter()
            .map(|a| display_axis(a, self.value(a).unwrap_or(&Value::Null)))
            .collect();
        if parts.is_empty() {
            "all runs".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Mean, std and n of a per-run value over this configuration's seeds.
    pub fn stat(&self, study: &Study, value: impl Fn(&Run) -> Option<f64>) -> Option<Stat> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|&i| value(&study.runs[i]))
            .collect();
        Stat::of(&v)
    }
}

/// Mean +- sample standard deviation (n - 1) over seeds, with n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// NaN when n = 1 (no spread can be estimated from one seed).
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        Some(Stat { mean, std, n })
    }
}

/// Groups the runs (indices) by every axis except `seed`, in a stable order (numbers
/// numerically, then text).
pub fn group(study: &Study, runs: impl IntoIterator<Item = usize>) -> Vec<Group> {
    let axes: Vec<String> = study.axes().into_iter().filter(|a| a != "seed").collect();
    let mut groups: Vec<Group> = Vec::new();
    for i in runs {
        let key: Vec<(String, Value)> = axes
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    study.runs[i].axes.get(a).cloned().unwrap_or(Value::Null),
                )
            })
            .collect();
        match groups.iter_mut().find(|g| g.key == key) {
            Some(g) => g.runs.push(i),
            None => groups.push(Group { key, runs: vec![i] }),
        }
    }
    groups.sort_by(|a, b| {
        a.key
            .iter()
            .zip(&b.key)
            .map(|((_, x), (_, y))| compare(x, y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    });
    groups
}

/// Orders axis values: numbers numerically, booleans false < true, else by display text.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => match (a.as_bool(), b.as_bool()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => display(a).cmp(&display(b)),
        },
    }
}

/// An axis value as a cell of the summary table: strings bare, everything else as compact
/// JSON (lossless, so a reader can parse it back).
pub fn raw(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An axis value for people: `{"kind":"soft","lambda":0.1}` -> `soft(lambda=0.1)`,
/// `{"kind":"hard"}` -> `hard`, `true` -> `on`, null -> `-`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::Bool(true) => "on".to_string(),
        Value::Bool(false) => "off".to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join("+"),
        Value::Object(map) => {
            let rest: Vec<String> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "kind")
                .map(|(k, v)| format!("{k}={}", display(v)))
                .collect();
            match map.get("kind").and_then(Value::as_str) {
                Some(kind) if rest.is_empty() => kind.to_string(),
                Some(kind) => format!("{kind}({})", rest.join(",")),
                None => rest.join(","),
            }
        }
    }
}

/// An axis value for people, knowing the axis: a pre-training axis reads `on` / `off`.
pub fn display_axis(axis: &str, v: &Value) -> String {
    if axis.rsplit('.').next() == Some("pretrain") {
        // The run store resolves the stage's settings into the axis value (the full table
        // is in summary.csv) and writes a stage that does not run as null.
        match v {
            Value::Object(_) => return "on".to_string(),
            Value::Null => return "off".to_string(),
            _ => {}
        }
    }
    display(v)
}

/// Whether a value means "on": a pre-training axis is `false` or the stage's settings (a
/// table such as `{ epochs = 2 }`), or a plain bool or word.
pub fn is_on(v: &Value) -> bool {
    match v {
        Value::Object(_) => true,
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.as_str(), "true" | "on" | "yes"),
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        _ => false,
    }
}

/// Which axes of a study test which claim (MODEL.md section 4), found by name so that a
/// manifest may call them `model.variant` or `variant`, `split.n_train` or `n_train`.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// The model axes: `method` and any `*variant`.
    pub model: Vec<String>,
    /// The electroneutrality constraint (hard/soft/none).
    pub constraint: Option<String>,
    /// Pre-training on/off.
    pub pretrain: Option<String>,
    /// Number of measured training points.
    pub n_train: Option<String>,
}

impl Roles {
    pub fn of(study: &Study) -> Roles {
        let axes = study.axes();
        let last = |a: &str| a.rsplit('.').next().unwrap_or(a).to_string();
        let find = |pred: &dyn Fn(&str) -> bool| axes.iter().find(|a| pred(a)).cloned();
        let model: Vec<String> = axes
            .iter()
            .filter(|a| {
                let l = last(a);
                l == "method" || l == "variant" || a.as_str() == "model"
            })
            .cloned()
            .collect();
        // A model axis with one value (say `method = "neural"` for every run) is context,
        // not a column to compare; keep them all only when none varies.
        let varies = |a: &String| {
            let first = study.runs[0].axes.get(a);
            study.runs.iter().any(|r| r.axes.get(a) != first)
        };
        let model = if model.iter().any(varies) {
            model.into_iter().filter(varies).collect()
        } else {
            model
        };
        Roles {
            model,
            constraint: find(&|a| a.contains("electroneutrality") || a.contains("constraint")),
            pretrain: find(&|a| last(a) == "pretrain"),
            n_train: find(&|a| a.contains("n_train")),
        }
    }
}

/// The largest value of a numeric axis over the study.
pub fn max_value(study: &Study, axis: &str) -> Option<Value> {
    study
        .runs
        .iter()
        .filter_map(|r| r.axes.get(axis))
        .filter(|v| v.as_f64().is_some())
        .max_by(|a, b| compare(a, b))
        .cloned()
}

/// Restricts runs to preferred axis values where they apply: among the runs that share
/// the values of `lead` axes, keep those whose `axis` equals the preferred value, if any
/// do. So "pre-training on" keeps the DSPM-DE baseline (which has no pre-trained runs)
/// and "largest n_train" keeps a model that was only run at smaller sizes.
pub fn prefer(
    study: &Study,
    runs: Vec<usize>,
    lead: &[String],
    axis: &str,
    matches: impl Fn(&Value) -> bool,
) -> Vec<usize> {
    let lead_key = |i: usize| -> Vec<Value> {
        lead.iter()
            .map(|a| study.runs[i].axes.get(a).cloned().unwrap_or(Value::Null))
            .collect()
    };
    let hit = |i: usize| study.runs[i].axes.get(axis).is_some_and(&matches);
    runs.iter()
        .copied()
        .filter(|&i| hit(i) || !runs.iter().any(|&j| lead_key(j) == lead_key(i) && hit(j)))
        .collect()
}

/// The configuration with the lowest mean test MAE (of the `measured` stage) among
/// `groups`, if any has one.
pub fn best(study: &Study, groups: &[Group]) -> Option<usize> {
    groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| g.stat(study, test_mae).map(|s| (i, s.mean)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The test MAE of the `measured` stage (the headline number).
pub fn test_mae(run: &Run) -> Option<f64> {
    run.metric("measured", "test", "mae")
}

/// The axes whose value differs between the groups (the ones worth a column or label).
pub fn varying(groups: &[Group]) -> Vec<String> {
    let Some(first) = groups.first() else {
        return Vec::new();
    };
    first
        .key
        .iter()
        .map(|(a, _)| a.clone())
        .filter(|a| groups.iter().any(|g| g.value(a) != first.value(a)))
        .collect()
}

/// "synthetic data" wording for captions and titles.
pub fn synthetic_note(study: &Study) -> &'static str {
    if study.synthetic() {
        " (synthetic data)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stat_is_mean_and_sample_std() {
        let s = Stat::of(&[0.04, 0.05, 0.06]).unwrap();
        assert!((s.mean - 0.05).abs() < 1e-15);
        assert!((s.std - 0.01).abs() < 1e-15);
        assert_eq!(s.n, 3);
        assert!(Stat::of(&[1.0]).unwrap().std.is_nan());
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn axis_values_read_like_a_paper() {
        assert_eq!(display(&json!({"kind": "hard"})), "hard");
        assert_eq!(
            display(&json!({"kind": "soft", "lambda": 0.1})),
            "soft(lambda=0.1)"
        );
        assert_eq!(display_axis("pretrain", &json!({"epochs": 2})), "on");
        assert_eq!(display_axis("pretrain", &Value::Null), "off");
        assert_eq!(display_axis("model.variant", &Value::Null), "-");
        assert_eq!(raw(&json!({"kind": "hard"})), r#"{"kind":"hard"}"#);
        assert_eq!(raw(&json!("mlp")), "mlp");
        assert_eq!(compare(&json!(10), &json!(9)), Ordering::Greater);
    }
}
