//! `ablate report`: a study's finished runs -> summary table, paper tables and figures.
//!
//! [`collect`] reads the run records, [`roles`] says what each run is in the paper's terms
//! (from its typed config, not from axis names), [`summary`] makes the typed one-row-per-run
//! frame, this module groups runs into configurations (every config value but the seed
//! and the held-out family), [`stats`] compares them over paired seeds, and [`tables`] and
//! [`figures`] render. A table or figure a study has no data for is skipped with a note.

pub mod collect;
pub mod compare;
pub mod error;
pub mod figures;
pub mod html;
pub mod importance;
pub mod names;
pub mod roles;
pub mod scores;
pub mod search_curves;
pub mod search_section;
pub mod stats;
pub mod summary;
pub mod tables;

use collect::Study;
use roles::Roles;
use scores::Scores;
use std::collections::BTreeMap;

/// A configuration: the runs that share every config value but the seed and, in a
/// leave-one-family-out setting, the held-out family (its folds are one estimate).
#[derive(Debug, Clone)]
pub struct Group {
    /// The roles of its first run (equal for all but `test_family`).
    pub roles: Roles,
    /// Indices into `Study::runs`.
    pub runs: Vec<usize>,
}

/// The fields a configuration is described by, in the order labels use.
pub const FIELDS: [&str; 4] = ["model", "constraint", "pre-training", "setting"];

impl Group {
    /// The value of a field (one of [`FIELDS`] or an extra axis path), as people read it.
    pub fn value(&self, field: &str) -> String {
        let r = &self.roles;
        match field {
            "model" => roles::pretty(&r.model),
            "constraint" => r.constraint.as_deref().map_or("–".into(), roles::pretty),
            "pre-training" => if r.pretrained { "on" } else { "off" }.into(),
            "setting" => r.setting.clone(),
            axis => r
                .extra
                .iter()
                .find(|(a, _)| a == axis)
                .map_or("–".into(), |(_, v)| v.clone()),
        }
    }

    /// A short label from the given fields, e.g. `NODE, hard, on`.
    pub fn label(&self, fields: &[String]) -> String {
        if fields.is_empty() {
            return "all runs".to_string();
        }
        fields
            .iter()
            .map(|f| self.value(f))
            .collect::<Vec<_>>()
            .join(", ")
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

/// The roles of every run, in run order.
pub fn roles(study: &Study) -> Vec<Roles> {
    study.runs.iter().map(Roles::of).collect()
}

/// Groups runs by configuration, ordered by model, constraint, pre-training (on first),
/// setting and the extra axes.
pub fn groups(roles: &[Roles]) -> Vec<Group> {
    let mut by_cell: BTreeMap<&str, Group> = BTreeMap::new();
    for (i, r) in roles.iter().enumerate() {
        by_cell
            .entry(r.cell.as_str())
            .or_insert_with(|| Group {
                roles: r.clone(),
                runs: Vec::new(),
            })
            .runs
            .push(i);
    }
    let mut groups: Vec<Group> = by_cell.into_values().collect();
    groups.sort_by_key(|g| order_key(&g.roles));
    groups
}

/// (model, constraint, not pre-trained, setting, extra axes).
pub type OrderKey = (usize, String, bool, (u8, u64), Vec<(String, String)>);

/// The order of configurations in tables and figures: the paper's models first.
pub fn order_key(r: &Roles) -> OrderKey {
    let model = [
        "attention_node",
        "node",
        "mlp",
        "attention_node+residual",
        "node+residual",
        "mlp+residual",
        "attention_node+feature",
        "node+feature",
        "mlp+feature",
        "dspmde_fit",
    ]
    .iter()
    .position(|m| *m == r.model)
    .unwrap_or(10);
    let constraint = match r.constraint.as_deref() {
        Some("hard") => "0".to_string(),
        Some("none") => "2".to_string(),
        Some(other) => format!("1{other}"),
        None => "3".to_string(),
    };
    (
        model,
        constraint,
        !r.pretrained,
        r.setting_order,
        r.extra.clone(),
    )
}

/// The fields (of [`FIELDS`] and the extra axes) whose value differs between groups.
pub fn varying(groups: &[Group]) -> Vec<String> {
    let Some(first) = groups.first() else {
        return Vec::new();
    };
    FIELDS
        .iter()
        .map(|f| f.to_string())
        .chain(first.roles.extra.iter().map(|(a, _)| a.clone()))
        .filter(|f| groups.iter().any(|g| g.value(f) != first.value(f)))
        .collect()
}

/// The configuration with the lowest mean score among `groups`, if any has one.
pub fn best(scores: &Scores, groups: &[Group]) -> Option<usize> {
    groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| scores.get(&g.roles.cell).map(|s| (i, s.mean)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
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

    #[test]
    fn stat_is_mean_and_sample_std() {
        let s = Stat::of(&[0.04, 0.05, 0.06]).unwrap();
        assert!((s.mean - 0.05).abs() < 1e-15);
        assert!((s.std - 0.01).abs() < 1e-15);
        assert_eq!(s.n, 3);
        assert!(Stat::of(&[1.0]).unwrap().std.is_nan());
        assert!(Stat::of(&[]).is_none());
    }
}
