//! `[search]`: how a study searches its candidates instead of running a full sweep.
//!
//! Two samplers. `grid` (the default) takes the manifest's grid x random points as the
//! candidates and runs them as a successive halving search:
//!
//! ```toml
//! [search]
//! budget = "finetune.epochs"       # the run-config key that is the budget
//! min = 2                          # budget of the first rung
//! max = 18                         # budget of the last rung
//! eta = 3                          # keep the best 1/eta of each rung
//! metric = "finetune.validation.mae" # STAGE.PART.METRIC; `measured` = `finetune`
//! direction = "minimize"           # or "maximize"
//! ```
//!
//! `scheduler = "hyperband"` runs the same candidates and rungs as Hyperband's brackets
//! instead of one ([`crate::hyperband`]).
//!
//! `tpe` proposes candidates over the `[random]` axes with a Tree-structured Parzen
//! Estimator ([`crate::tpe`]): the first `random.samples` candidates are the random
//! search's points, then generations of `generation` candidates, each proposed from the
//! finished candidates before it, until there are `candidates`. Its `[grid]` points are
//! folds (leave-one-family-out splits, say): every candidate runs at each of them, and its
//! score is the mean over them and its seeds:
//!
//! ```toml
//! [search]
//! sampler = "tpe"
//! candidates = 40                  # in all, the random start included
//! generation = 4                   # proposed together (run in parallel)
//! metric = "finetune.validation.mae"
//! enqueue = [{ "finetune.learning_rate" = 1e-3 }]  # named candidates (a value for each
//!                                  # [random] axis; here the only one), run first
//! warm_start = ["other_study"]      # its finished runs are told to the sampler first
//! ```
//!
//! Several objectives (TPE only) replace `metric` and `direction` with a list, and the
//! search keeps their Pareto front (TPE is told NSGA-II's order: [`crate::score`]):
//!
//! ```toml
//! metrics = [
//!   { metric = "finetune.validation.mae", direction = "minimize" },
//!   { metric = "finetune.validation.electroneutrality_max", direction = "minimize" },
//! ]
//! ```
//!
//! Rung k of K+1 (K = floor(log_eta(max / min))) runs its candidates at budget
//! `max * eta^(k - K)` (rounded for an integer budget), so the last rung runs at `max`. A
//! candidate's score at a rung is the mean of the metric over its seeds' runs; a failed run
//! or an undefined metric scores worst. The best `max(1, floor(n / eta))` candidates (ties
//! broken by the candidate's first run id) go on to the next rung. The metric is read from a
//! run's train or validation part, never its test part: a search chooses a model, and a
//! test split is never looked at to choose one.

use ionode_train::observe::Stage;
use serde::{Deserialize, Serialize};

/// Most rungs (a budget range over eta^16 would be a mistake).
pub const MAX_RUNGS: usize = 16;
/// Largest reduction factor.
pub const MAX_ETA: u64 = 100;
/// Most candidates a TPE search proposes (each is at least one run).
pub const MAX_TPE_CANDIDATES: u64 = 10_000;
/// Default TPE generation: candidates proposed together, run in parallel.
pub const DEFAULT_GENERATION: u64 = 4;

/// The stages a metric is read from, by the names configs give them. `measured` is the
/// key under which run records, `metrics.json` and summary columns keep the fine-tuning
/// stage's metrics (kept so committed results keep their bits), accepted here too.
const STAGES: &[&str] = &["finetune", "pretrain", "measured"];
const PARTS: &[&str] = &["validation", "train"];
use super::METRICS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Minimize,
    Maximize,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Minimize => "minimize",
            Direction::Maximize => "maximize",
        })
    }
}

/// How a search chooses its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// The manifest's grid x random points, searched by successive halving.
    #[default]
    Grid,
    /// Tree-structured Parzen Estimator over the `[random]` axes, in generations.
    Tpe,
}

impl Sampler {
    fn is_grid(&self) -> bool {
        *self == Sampler::Grid
    }
}

/// How a grid search spends its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    /// One successive halving bracket over every candidate, rung by rung.
    #[default]
    Halving,
    /// Hyperband: several brackets, each a successive halving from a later first rung,
    /// the candidates shared out among them; rungs of any bracket run as soon as their
    /// inputs are decided ([`crate::hyperband`]).
    Hyperband,
}

impl Scheduler {
    fn is_halving(&self) -> bool {
        *self == Scheduler::Halving
    }
}

/// A budget: an integer key (epochs) or a real one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Budget {
    Int(i64),
    Real(f64),
}

impl Budget {
    /// The budget as a number.
    pub fn value(self) -> f64 {
        match self {
            Budget::Int(i) => i as f64,
            Budget::Real(r) => r,
        }
    }

    /// As a TOML value to set in a run config.
    pub fn to_toml(self) -> toml::Value {
        match self {
            Budget::Int(i) => toml::Value::Integer(i),
            Budget::Real(r) => toml::Value::Float(r),
        }
    }

    pub fn to_json(self) -> serde_json::Value {
        match self {
            Budget::Int(i) => serde_json::json!(i),
            Budget::Real(r) => serde_json::json!(r),
        }
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Budget::Int(i) => write!(f, "{i}"),
            Budget::Real(r) => write!(f, "{r}"),
        }
    }
}

/// The `[search]` table as written. A halving search serialises as it did before TPE was
/// added (the new keys are left out when unset), so its plan and decisions keep their hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    #[serde(default, skip_serializing_if = "Sampler::is_grid")]
    pub sampler: Sampler,
    #[serde(default, skip_serializing_if = "Scheduler::is_halving")]
    pub scheduler: Scheduler,
    /// Dotted run-config key of the budget, e.g. `finetune.epochs` (halving only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Budget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Budget>,
    #[serde(default = "three")]
    pub eta: u64,
    /// TPE: candidates in all, the random start included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<u64>,
    /// TPE: candidates proposed together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// `STAGE.PART.METRIC`, e.g. `finetune.validation.mae` (empty when `metrics` names
    /// several objectives).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metric: String,
    #[serde(default)]
    pub direction: Direction,
    /// Several objectives, each with its direction: the search keeps their Pareto front.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Objective>,
    /// TPE: named candidates (a value for every `[random]` axis), run first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enqueue: Vec<toml::Table>,
    /// TPE: other studies (by name, in the same results folder) whose finished runs at
    /// points of this search's axes are told to the sampler before its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warm_start: Vec<String>,
}

/// One objective of a search with several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    pub metric: String,
    #[serde(default)]
    pub direction: Direction,
}

/// Most objectives of one search.
pub const MAX_OBJECTIVES: usize = 4;

fn three() -> u64 {
    3
}

/// The halving keys of a `grid` search, all present (see [`SearchSpec::halving`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halving<'a> {
    pub budget: &'a str,
    pub min: Budget,
    pub max: Budget,
    pub eta: u64,
}

/// The keys of a `tpe` search (see [`SearchSpec::tpe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tpe {
    pub candidates: usize,
    pub generation: usize,
}

/// Where a run's metric is read: stage, part, name, and for one ion's metric the ion (its
/// canonical name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRef {
    pub stage: Stage,
    pub part: String,
    pub name: String,
    pub ion: Option<String>,
}

/// The metrics a run also keeps per ion (`STAGE.PART.METRIC.ION`).
const PER_ION: &[&str] = &["mae", "rmse", "r2"];

impl SearchSpec {
    /// The halving keys, when this is a halving search (every key given).
    pub fn halving(&self) -> Option<Halving<'_>> {
        match (self.sampler, &self.budget, self.min, self.max) {
            (Sampler::Grid, Some(budget), Some(min), Some(max)) => Some(Halving {
                budget,
                min,
                max,
                eta: self.eta,
            }),
            _ => None,
        }
    }

    /// The TPE keys, when this is a TPE search.
    pub fn tpe(&self) -> Option<Tpe> {
        (self.sampler == Sampler::Tpe).then(|| Tpe {
            candidates: self.candidates.unwrap_or(0) as usize,
            generation: self.generation.unwrap_or(DEFAULT_GENERATION) as usize,
        })
    }

    /// Every problem of the table, each as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match (self.metric.is_empty(), self.metrics.is_empty()) {
            (true, true) => out.push((
                "metric",
                "missing: the metric a search chooses by, such as \"finetune.validation.mae\" \
                 (or `metrics`, several objectives with a direction each)"
                    .to_string(),
            )),
            (false, false) => out.push((
                "metrics",
                "give `metric` (one objective) or `metrics` (several), not both".to_string(),
            )),
            (false, true) => {
                if let Err(e) = parse_metric(&self.metric) {
                    out.push(("metric", e));
                }
            }
            (true, false) => {
                if self.metrics.len() > MAX_OBJECTIVES {
                    out.push((
                        "metrics",
                        format!(
                            "{} objectives: expected at most {MAX_OBJECTIVES}",
                            self.metrics.len()
                        ),
                    ));
                }
                for o in &self.metrics {
                    if let Err(e) = parse_metric(&o.metric) {
                        out.push(("metrics", e));
                    }
                }
            }
        }
        match self.sampler {
            Sampler::Grid => self.halving_problems(&mut out),
            Sampler::Tpe => self.tpe_problems(&mut out),
        }
        out
    }

    fn tpe_problems(&self, out: &mut Vec<(&'static str, String)>) {
        if self.scheduler != Scheduler::Halving {
            out.push((
                "scheduler",
                "a TPE search proposes generations of candidates at one budget; hyperband \
                 schedules a grid search (sampler = \"grid\")"
                    .to_string(),
            ));
        }
        for (key, given) in [
            ("budget", self.budget.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
        ] {
            if given {
                out.push((
                    key,
                    "a TPE search runs every candidate at the base config's budget; remove \
                     budget, min and max (halving is for sampler = \"grid\")"
                        .to_string(),
                ));
            }
        }
        match self.candidates {
            Some(n) if (1..=MAX_TPE_CANDIDATES).contains(&n) => {}
            Some(n) => out.push((
                "candidates",
                format!("{n}: expected a count in 1..={MAX_TPE_CANDIDATES}"),
            )),
            None => out.push((
                "candidates",
                "missing: a TPE search needs the number of candidates in all".to_string(),
            )),
        }
        for name in &self.warm_start {
            let plain = !name.is_empty()
                && name.len() <= 100
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !name.starts_with('.');
            if !plain {
                out.push((
                    "warm_start",
                    format!(
                        "'{name}': expected a study's name (its folder in the results folder: \
                         letters, digits, '-', '_', '.')"
                    ),
                ));
            }
        }
        if let Some(g) = self.generation {
            if !(1..=MAX_TPE_CANDIDATES).contains(&g) {
                out.push((
                    "generation",
                    format!("{g}: expected a count in 1..={MAX_TPE_CANDIDATES}"),
                ));
            }
        }
    }

    fn halving_problems(&self, out: &mut Vec<(&'static str, String)>) {
        if !self.metrics.is_empty() {
            out.push((
                "metrics",
                "several objectives are searched by TPE (sampler = \"tpe\"), which keeps \
                 their Pareto front; successive halving and Hyperband promote by one `metric`"
                    .to_string(),
            ));
        }
        for (key, given) in [
            ("candidates", self.candidates.is_some()),
            ("generation", self.generation.is_some()),
            ("enqueue", !self.enqueue.is_empty()),
            ("warm_start", !self.warm_start.is_empty()),
        ] {
            if given {
                out.push((
                    key,
                    "only a TPE search (sampler = \"tpe\") proposes candidates (and takes \
                     named ones or other studies' runs); a grid search's candidates are the \
                     grid x random points"
                        .to_string(),
                ));
            }
        }
        if !(2..=MAX_ETA).contains(&self.eta) {
            out.push((
                "eta",
                format!("{}: expected a reduction factor in 2..={MAX_ETA}", self.eta),
            ));
        }
        let (Some(budget), Some(min_b), Some(max_b)) = (&self.budget, self.min, self.max) else {
            for (key, given) in [
                ("budget", self.budget.is_some()),
                ("min", self.min.is_some()),
                ("max", self.max.is_some()),
            ] {
                if !given {
                    out.push((
                        key,
                        "missing: successive halving needs budget, min and max (or set \
                         sampler = \"tpe\")"
                            .to_string(),
                    ));
                }
            }
            return;
        };
        if budget.split('.').any(str::is_empty) {
            out.push((
                "budget",
                format!("'{budget}': expected a dotted run-config key such as \"finetune.epochs\""),
            ));
        }
        let (min, max) = (min_b.value(), max_b.value());
        if matches!(min_b, Budget::Int(_)) != matches!(max_b, Budget::Int(_)) {
            out.push((
                "max",
                "min and max must both be integers or both be reals".to_string(),
            ));
        } else if !(min.is_finite() && min > 0.0) {
            out.push(("min", format!("{min_b}: expected a positive budget")));
        } else if !(max.is_finite() && max > min) {
            out.push((
                "max",
                format!("{max_b}: expected a budget above min = {min_b}"),
            ));
        } else if self.eta >= 2 && self.rung_count() > MAX_RUNGS {
            out.push((
                "max",
                format!(
                    "max / min = {} spans more than {MAX_RUNGS} rungs at eta = {}",
                    max / min,
                    self.eta
                ),
            ));
        }
    }

    /// The objectives, each as (name, where it is read, direction), in order: one for a
    /// search by `metric` (call after [`Self::problems`] found none).
    pub fn objectives(&self) -> Vec<(String, MetricRef, Direction)> {
        let listed: Vec<(&str, Direction)> = if self.metrics.is_empty() {
            vec![(self.metric.as_str(), self.direction)]
        } else {
            self.metrics
                .iter()
                .map(|o| (o.metric.as_str(), o.direction))
                .collect()
        };
        listed
            .into_iter()
            .filter_map(|(m, d)| parse_metric(m).ok().map(|r| (m.to_string(), r, d)))
            .collect()
    }

    /// The first objective, read and checked (the only one of a search by `metric`).
    pub fn metric_ref(&self) -> Result<MetricRef, String> {
        parse_metric(self.metrics.first().map_or(&self.metric, |o| &o.metric))
    }

    /// The objectives with their directions, as people read them.
    pub fn objective_label(&self) -> String {
        if self.metrics.is_empty() {
            format!("{} ({})", self.metric, self.direction)
        } else {
            self.metric_label()
        }
    }

    /// The objectives as people read them: the metric, or each metric with its direction.
    pub fn metric_label(&self) -> String {
        if self.metrics.is_empty() {
            return self.metric.clone();
        }
        self.metrics
            .iter()
            .map(|o| format!("{} ({})", o.metric, o.direction))
            .collect::<Vec<_>>()
            .join(" and ")
    }

    fn rung_count(&self) -> usize {
        let Some(h) = self.halving() else { return 1 };
        let ratio = h.max.value() / h.min.value();
        // floor(log_eta(ratio)), robust to ratio being an exact power.
        let mut k = 0usize;
        let mut b = 1.0f64;
        while b * self.eta as f64 <= ratio * (1.0 + 1e-12) && k <= MAX_RUNGS {
            b *= self.eta as f64;
            k += 1;
        }
        k + 1
    }

    /// The budget of each rung, increasing, the last = max (call after [`Self::problems`]
    /// found none); none for a TPE search.
    pub fn budgets(&self) -> Vec<Budget> {
        let Some(h) = self.halving() else {
            return vec![];
        };
        let n = self.rung_count();
        let max = h.max.value();
        let mut out: Vec<Budget> = Vec::with_capacity(n);
        for k in 0..n {
            let b = max / (self.eta as f64).powi((n - 1 - k) as i32);
            let b = match h.max {
                Budget::Int(_) => Budget::Int((b.round() as i64).max(1)),
                Budget::Real(_) => Budget::Real(b),
            };
            if out.last().is_none_or(|l| l.value() < b.value()) {
                out.push(b);
            }
        }
        out
    }
}

/// The problems of `enqueue` against the space: (index, axis, why) for a missing or
/// unknown axis or a value its distribution cannot give.
pub fn enqueue_problems(
    enqueue: &[toml::Table],
    space: &[(String, super::Dist)],
) -> Vec<(usize, Option<String>, String)> {
    let mut out = Vec::new();
    for (i, t) in enqueue.iter().enumerate() {
        for (axis, d) in space {
            match t.get(axis) {
                None => out.push((
                    i,
                    None,
                    format!("no value for the [random] axis \"{axis}\" (a named candidate gives every one)"),
                )),
                Some(v) if !d.contains(v) => out.push((
                    i,
                    Some(axis.clone()),
                    format!("{v} is not a value of {}", d.describe()),
                )),
                Some(_) => {}
            }
        }
        for key in t.keys().filter(|k| !space.iter().any(|(a, _)| a == *k)) {
            out.push((
                i,
                Some(key.clone()),
                format!(
                    "\"{key}\" is no [random] axis (expected: {})",
                    space
                        .iter()
                        .map(|(a, _)| a.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
impl SearchSpec {
    /// A halving search over the fine-tuning epochs by validation MAE (for tests).
    pub(crate) fn halving_example(min: Budget, max: Budget, eta: u64) -> SearchSpec {
        SearchSpec {
            sampler: Sampler::Grid,
            scheduler: Scheduler::Halving,
            budget: Some("finetune.epochs".into()),
            min: Some(min),
            max: Some(max),
            eta,
            candidates: None,
            generation: None,
            metric: "finetune.validation.mae".into(),
            direction: Direction::Minimize,
            metrics: vec![],
            enqueue: vec![],
            warm_start: vec![],
        }
    }
}

/// `STAGE.PART.METRIC` (or `STAGE.PART.METRIC.ION`, one ion's) read and checked.
pub fn parse_metric(metric: &str) -> Result<MetricRef, String> {
    let parts: Vec<&str> = metric.split('.').collect();
    let example = "expected STAGE.PART.METRIC such as \"finetune.validation.mae\" (or one \
                   ion's, \"finetune.validation.mae.Li+\")";
    let (stage, part, name, ion) = match parts[..] {
        [stage, part, name] => (stage, part, name, None),
        [stage, part, name, ion] if !ion.trim().is_empty() => (stage, part, name, Some(ion)),
        _ => return Err(format!("'{metric}': {example}")),
    };
    if ion.is_some() && !PER_ION.contains(&name) {
        return Err(format!(
            "'{metric}': '{name}' is not kept per ion (one ion's metric is one of: {})",
            PER_ION.join(", ")
        ));
    }
    if part == "test" {
        return Err(format!(
            "'{metric}': a search never chooses by the test part (it is kept for the final \
             score); use \"{stage}.validation.{name}\""
        ));
    }
    for (what, v, valid) in [
        ("stage", stage, STAGES),
        ("part", part, PARTS),
        ("metric", name, METRICS),
    ] {
        if !valid.contains(&v) {
            return Err(format!(
                "'{metric}': unknown {what} '{v}' (expected one of: {})",
                valid.join(", ")
            ));
        }
    }
    Ok(MetricRef {
        stage: if stage == "pretrain" {
            Stage::Pretrain
        } else {
            Stage::Finetune
        },
        part: part.into(),
        name: name.into(),
        // One spelling of each ion: Mg2+ and Mg_2+ name Mg^2+ (an ion outside the built-in
        // database is taken as written).
        ion: ion.map(|i| {
            ionode_physics::IonDb::builtin().get(i).map_or_else(
                |_| ionode_physics::ions::canonical_name(i),
                |x| x.name.clone(),
            )
        }),
    })
}

/// How many candidates of `n` go on to the next rung.
pub fn promoted_count(n: usize, eta: u64) -> usize {
    (n / eta as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: Budget, max: Budget, eta: u64) -> SearchSpec {
        SearchSpec::halving_example(min, max, eta)
    }

    #[test]
    fn one_ions_metric_is_named_after_the_metric_in_any_spelling_of_the_ion() {
        let m = parse_metric("finetune.validation.mae.Mg2+").unwrap();
        assert_eq!((m.name.as_str(), m.ion.as_deref()), ("mae", Some("Mg^2+")));
        assert_eq!(parse_metric("finetune.validation.mae.Mg_2+").unwrap(), m);
        assert!(
            parse_metric("finetune.validation.electroneutrality_max.Li+")
                .unwrap_err()
                .contains("not kept per ion")
        );
        assert!(parse_metric("finetune.test.mae.Li+")
            .unwrap_err()
            .contains("never chooses by the test part"));
    }

    #[test]
    fn the_fine_tuning_stage_is_named_as_in_configs_or_as_in_records() {
        let mut s = spec(Budget::Int(1), Budget::Int(9), 3);
        let by_config = s.metric_ref().unwrap();
        assert_eq!(by_config.stage, Stage::Finetune);
        s.metric = "measured.validation.mae".into();
        assert_eq!(s.metric_ref().unwrap(), by_config);
        s.metric = "pretrain.train.rmse".into();
        let pretrain = s.metric_ref().unwrap();
        assert_eq!(
            (pretrain.stage, pretrain.part.as_str()),
            (Stage::Pretrain, "train")
        );
        s.metric = "fine.validation.mae".into();
        assert!(s
            .metric_ref()
            .unwrap_err()
            .contains("unknown stage 'fine' (expected one of: finetune, pretrain, measured)"));
    }

    #[test]
    fn rungs_end_at_max_and_grow_by_eta() {
        use Budget::*;
        assert_eq!(
            spec(Int(2), Int(18), 3).budgets(),
            vec![Int(2), Int(6), Int(18)]
        );
        assert_eq!(
            spec(Int(1), Int(9), 3).budgets(),
            vec![Int(1), Int(3), Int(9)]
        );
        // Not a power: the first rung is above min, the last is max.
        assert_eq!(
            spec(Int(1), Int(10), 3).budgets(),
            vec![Int(1), Int(3), Int(10)]
        );
        assert_eq!(spec(Int(5), Int(8), 2).budgets(), vec![Int(8)]);
        assert_eq!(
            spec(Real(0.5), Real(2.0), 2).budgets(),
            vec![Real(0.5), Real(1.0), Real(2.0)]
        );
        assert_eq!(promoted_count(18, 3), 6);
        assert_eq!(promoted_count(2, 3), 1);
    }

    #[test]
    fn bad_tables_are_refused_with_the_key() {
        use Budget::*;
        let mut s = spec(Int(4), Int(2), 1);
        s.metric = "measured.test.mae".into();
        let keys: Vec<&str> = s.problems().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec!["metric", "eta", "max"]);
        assert!(s.problems()[0].1.contains("never chooses by the test part"));
        s.metric = "measured.validation.maes".into();
        assert!(s
            .metric_ref()
            .unwrap_err()
            .contains("unknown metric 'maes'"));
        assert_eq!(spec(Int(1), Real(2.0), 2).problems()[0].0, "max");
        assert_eq!(spec(Int(1), Int(1 << 40), 2).problems()[0].0, "max");
        assert!(spec(Int(1), Int(9), 3).problems().is_empty());
    }

    #[test]
    fn a_tpe_table_takes_candidates_not_rungs_and_a_halving_table_the_reverse() {
        use Budget::*;
        let mut t = spec(Int(1), Int(9), 3);
        t.sampler = Sampler::Tpe;
        let keys = |s: &SearchSpec| -> Vec<&str> { s.problems().iter().map(|(k, _)| *k).collect() };
        assert_eq!(keys(&t), vec!["budget", "min", "max", "candidates"]);
        (t.budget, t.min, t.max, t.candidates) = (None, None, None, Some(20));
        assert!(t.problems().is_empty());
        assert_eq!(
            t.tpe(),
            Some(Tpe {
                candidates: 20,
                generation: DEFAULT_GENERATION as usize
            })
        );
        assert_eq!((t.halving(), t.budgets()), (None, vec![]));
        t.generation = Some(0);
        assert_eq!(keys(&t), vec!["generation"]);
        let mut h = spec(Int(1), Int(9), 3);
        h.candidates = Some(3);
        h.max = None;
        assert_eq!(keys(&h), vec!["candidates", "max"]);
        // Several objectives are TPE's: halving promotes by one metric.
        let mut h = spec(Int(1), Int(9), 3);
        h.metric = String::new();
        h.metrics = vec![
            Objective {
                metric: "finetune.validation.mae".into(),
                direction: Direction::Minimize,
            };
            2
        ];
        assert_eq!(keys(&h), vec!["metrics"]);
        t.generation = None;
        t.metric = String::new();
        t.metrics = h.metrics.clone();
        assert!(t.problems().is_empty(), "{:?}", t.problems());
        // A halving table serialises without the TPE keys, as before they existed.
        let text = serde_json::to_string(&spec(Int(1), Int(9), 3)).unwrap();
        assert_eq!(
            text,
            r#"{"budget":"finetune.epochs","min":1,"max":9,"eta":3,"metric":"finetune.validation.mae","direction":"minimize"}"#
        );
    }
}
