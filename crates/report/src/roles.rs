//! What a run is in the terms of the paper's claims (MODEL.md section 4), read from its
//! typed config: the model, the electroneutrality constraint, pre-training, the setting
//! (which split, how many training rows) and the cell (the configuration without its
//! seed and fold). Tables and figures group by these, never by axis names, so a manifest
//! may name its axes as it likes.

use super::collect::Run;
use ionode_model::{Electroneutrality, Prior, Variant};
use ionode_train::run::{Method, RunConfig};
use ionode_train::split::SplitSpec;
use serde_json::Value;

/// Axis paths whose meaning the roles already carry.
const ROLE_AXES: [&str; 7] = [
    "method",
    "model.variant",
    "model.prior",
    "model.electroneutrality",
    "pretrain",
    "split",
    "seed",
];

/// The roles of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    /// `attention_node`, `node`, `mlp` or `dspmde_fit`; a physics-anchored model adds its
    /// prior (`node+residual`, `attention_node+feature`).
    pub model: String,
    /// `hard`, `none`, `soft(lambda=1)` (with `,trajectory` when the penalty covers the
    /// trajectory); `None` for DSPM-DE, which is electroneutral by construction.
    pub constraint: Option<String>,
    pub pretrained: bool,
    /// `by_family`, `first_n`, `random`, or `none` (no measured split).
    pub split: &'static str,
    /// The data-limited setting's training size.
    pub n_train: Option<u64>,
    /// The held-out family of a leave-one-family-out fold.
    pub test_family: Option<String>,
    /// The setting a table column stands for: `leave one family out` (its folds pooled),
    /// `n_train = 6`, `random split` or `no split`.
    pub setting: String,
    /// Orders settings: leave-one-family-out first, then by training size, then the rest.
    pub setting_order: (u8, u64),
    /// The configuration without its seed and fold (16 hex digits): runs with the same
    /// cell and seed are the folds of one leave-one-family-out estimate.
    pub cell: String,
    /// Axes of the study that are none of the above (a learning-rate grid, say):
    /// (axis path, value as people read it).
    pub extra: Vec<(String, String)>,
}

impl Roles {
    pub fn of(run: &Run) -> Roles {
        let c = &run.record.head.config;
        let (split, n_train, test_family, setting, setting_order) = match &c.split {
            Some(SplitSpec::ByFamily { test_family, .. }) => (
                "by_family",
                None,
                Some(test_family.clone()),
                "leave one family out".to_string(),
                (0, 0),
            ),
            Some(SplitSpec::FirstN { n_train, .. }) => (
                "first_n",
                Some(*n_train as u64),
                None,
                format!("n_train = {n_train}"),
                (1, *n_train as u64),
            ),
            Some(SplitSpec::Random { .. }) => {
                ("random", None, None, "random split".to_string(), (2, 0))
            }
            Some(SplitSpec::AllFamilies) => (
                "all_families",
                None,
                None,
                "every family trains".to_string(),
                (2, 1),
            ),
            None => ("none", None, None, "no split".to_string(), (3, 0)),
        };
        let extra = run
            .record
            .head
            .axes
            .iter()
            .filter(|(a, _)| {
                !ROLE_AXES
                    .iter()
                    .any(|r| a.as_str() == *r || a.starts_with(&format!("{r}.")))
            })
            .map(|(a, v)| (a.clone(), display(v)))
            .collect();
        Roles {
            model: model_name(c),
            constraint: constraint_name(c),
            pretrained: c.pretrain.is_some(),
            split,
            n_train,
            test_family,
            setting,
            setting_order,
            cell: ionode_study::provenance::text_hash(&run.record.head.canonical().cell_text()),
            extra,
        }
    }
}

fn model_name(c: &RunConfig) -> String {
    match c.method {
        Method::DspmdeFit => "dspmde_fit".into(),
        Method::Neural => {
            let variant = match c.model.variant {
                Variant::AttentionNode => "attention_node",
                Variant::Node => "node",
                Variant::Mlp => "mlp",
            };
            match c.model.prior {
                Prior::None => variant.into(),
                prior => format!("{variant}+{}", prior.name()),
            }
        }
    }
}

/// True for a physics-anchored neural model (its name carries the prior).
pub fn is_anchored(model: &str) -> bool {
    model.ends_with("+feature") || model.ends_with("+residual")
}

fn constraint_name(c: &RunConfig) -> Option<String> {
    if c.method == Method::DspmdeFit {
        return None;
    }
    Some(match c.model.electroneutrality {
        Electroneutrality::Hard => "hard".into(),
        Electroneutrality::None => "none".into(),
        Electroneutrality::Soft {
            lambda,
            also_trajectory,
        } => format!(
            "soft(lambda={lambda}{})",
            if also_trajectory { ",trajectory" } else { "" }
        ),
    })
}

/// An axis value for people: `{"kind":"soft","lambda":0.1}` -> `soft(lambda=0.1)`,
/// `true` -> `on`, null -> `-`.
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

/// How a table or figure names a role value: the constraint `soft(lambda=1)` reads
/// `soft (λ = 1)`, the models keep their names, DSPM-DE reads `DSPM-DE (calibrated)`.
pub fn pretty(value: &str) -> String {
    match value {
        "dspmde_fit" => "DSPM-DE (calibrated)".into(),
        "attention_node" => "attention NODE".into(),
        "node" => "NODE".into(),
        "mlp" => "MLP".into(),
        v if is_anchored(v) => {
            let (variant, prior) = v.split_once('+').expect("anchored names hold a +");
            let prior = if prior == "residual" {
                "DSPM-DE residual"
            } else {
                "DSPM-DE feature"
            };
            format!("{} + {prior}", pretty(variant))
        }
        v if v.starts_with("soft(lambda=") => {
            let inner = &v["soft(lambda=".len()..v.len() - 1];
            let (lambda, traj) = match inner.split_once(',') {
                Some((l, _)) => (l, ", trajectory"),
                None => (inner, ""),
            };
            format!("soft (λ = {lambda}{traj})")
        }
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_like_a_paper() {
        assert_eq!(display(&json!({"kind": "hard"})), "hard");
        assert_eq!(
            display(&json!({"kind": "soft", "lambda": 0.1})),
            "soft(lambda=0.1)"
        );
        assert_eq!(display(&Value::Null), "-");
        assert_eq!(pretty("soft(lambda=1)"), "soft (λ = 1)");
        assert_eq!(
            pretty("soft(lambda=0.1,trajectory)"),
            "soft (λ = 0.1, trajectory)"
        );
        assert_eq!(pretty("dspmde_fit"), "DSPM-DE (calibrated)");
        assert_eq!(pretty("node+residual"), "NODE + DSPM-DE residual");
        assert_eq!(
            pretty("attention_node+feature"),
            "attention NODE + DSPM-DE feature"
        );
    }
}
