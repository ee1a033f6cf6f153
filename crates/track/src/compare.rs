//! Two runs side by side: what differs in how they were made (config, axes, method, data,
//! provenance) and every metric of either with its difference.

use crate::find::Row;
use serde_json::Value;
use std::collections::BTreeSet;

/// One fact of two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub key: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
}

impl Line {
    /// `b - a` for two numbers.
    pub fn difference(&self) -> Option<f64> {
        Some(self.b.as_ref()?.as_f64()? - self.a.as_ref()?.as_f64()?)
    }
}

/// What two runs differ in, and their results.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Facts of how the runs were made that differ (config, axes, method, tags, ...).
    pub differs: Vec<Line>,
    /// How many such facts are the same.
    pub same: usize,
    /// Every metric (`metrics.*`) and time (`seconds.*`) either run has.
    pub results: Vec<Line>,
}

/// Keys that are results, not settings.
fn is_result(key: &str) -> bool {
    key.starts_with("metrics.") || key.starts_with("seconds.")
}

/// Keys that differ between any two runs and say nothing about how they were made.
fn is_identity(key: &str) -> bool {
    matches!(key, "run" | "path" | "provenance.created_utc")
}

/// Compares two runs' facts.
pub fn runs(a: &Row, b: &Row) -> Comparison {
    let keys: BTreeSet<&String> = a.facts.keys().chain(b.facts.keys()).collect();
    let mut differs = Vec::new();
    let mut results = Vec::new();
    let mut same = 0;
    for key in keys {
        let line = Line {
            key: key.clone(),
            a: a.facts.get(key).cloned(),
            b: b.facts.get(key).cloned(),
        };
        if is_result(key) {
            results.push(line);
        } else if line.a == line.b {
            same += 1;
        } else if !is_identity(key) {
            differs.push(line);
        }
    }
    Comparison {
        differs,
        same,
        results,
    }
}

fn cell(v: &Option<Value>) -> String {
    match v {
        None => "-".into(),
        v => crate::table::short(crate::table::text(v.as_ref())),
    }
}

/// The comparison as text for a terminal.
pub fn text(a: &Row, b: &Row, c: &Comparison) -> String {
    let mut out = String::new();
    let name = |r: &Row| {
        format!(
            "{} ({})",
            crate::table::text(r.facts.get("run")),
            r.path.display()
        )
    };
    out.push_str(&format!("A: {}\nB: {}\n\n", name(a), name(b)));
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["differs", "A", "B"]);
    for l in &c.differs {
        t.add_row([l.key.clone(), cell(&l.a), cell(&l.b)]);
    }
    if c.differs.is_empty() {
        out.push_str("The runs were made alike (same config, axes, method and data).\n");
    } else {
        out.push_str(&format!("{t}\n"));
    }
    out.push_str(&format!(
        "({} more facts of how they were made are the same)\n\n",
        c.same
    ));
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(["result", "A", "B", "B − A"]);
    for l in &c.results {
        let d = l.difference().map_or(String::new(), |d| format!("{d:+.6}"));
        t.add_row([l.key.clone(), cell(&l.a), cell(&l.b), d]);
    }
    for i in 1..4 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    out.push_str(&format!("{t}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Row {
        Row {
            path: "x".into(),
            facts: serde_json::from_value(v).unwrap(),
        }
    }

    #[test]
    fn differing_settings_and_every_result_with_its_difference() {
        let a = row(json!({"run": "a", "path": "p/a", "config.model.hidden": 32,
            "config.seed": 1, "axes.seed": 1, "config.finetune.epochs": 100,
            "metrics.measured.test.mae": 0.05, "metrics.measured.test.r2": 0.9,
            "seconds.total": 10.0, "provenance.created_utc": "2026-12-01T00:00:00Z"}));
        let b = row(json!({"run": "b", "path": "p/b", "config.model.hidden": 64,
            "config.seed": 1, "axes.seed": 1, "config.finetune.epochs": 100,
            "config.model.dropout": 0.1, "metrics.measured.test.mae": 0.04,
            "seconds.total": 12.5, "provenance.created_utc": "2026-12-02T00:00:00Z"}));
        let c = runs(&a, &b);
        let keys: Vec<&str> = c.differs.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["config.model.dropout", "config.model.hidden"]);
        assert_eq!(c.same, 3, "seed, axes.seed and epochs");
        let mae = c
            .results
            .iter()
            .find(|l| l.key == "metrics.measured.test.mae");
        assert!((mae.unwrap().difference().unwrap() + 0.01).abs() < 1e-12);
        let r2 = c
            .results
            .iter()
            .find(|l| l.key == "metrics.measured.test.r2");
        assert_eq!(r2.unwrap().b, None);
        assert_eq!(r2.unwrap().difference(), None);
        assert_eq!(c.results.len(), 3);
        let t = text(&a, &b, &c);
        assert!(
            t.contains("config.model.hidden") && t.contains("+2.500000"),
            "{t}"
        );
        assert!(t.contains("-0.010000"), "{t}");
    }
}
