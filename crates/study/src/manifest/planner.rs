//! From axis values to planned runs: a manifest's base config with one point's values set,
//! checked (located), normalised, one run per seed. [`Template`] is what it needs of the
//! manifest, kept with the loaded [`super::Manifest`], because a TPE search plans the
//! points it proposes while it runs ([`crate::tpe`]), not only when the manifest is loaded.

use super::expand::AxisValue;
use super::locate::{key_path, typed, KeyPath, Locations};
use super::resolve::{set_path, ConfigOrigin};
use super::{
    check_config, resolve_path, search_spec, Candidate, Found, PlannedRun, RUN_SEED_SALT,
    SEARCH_BUDGET_AXIS, STUDY_PREFIX,
};
use crate::provenance;
use crate::runner::DataCache;
use ionode_random::stream_seed;
use ionode_train::checked::Checked;
use ionode_train::run::{CanonicalConfig, RunConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use toml::Table;

/// What planning a point needs of a manifest: its base run config (datasets set), where
/// each key was written, the seeds and the search.
#[derive(Debug, Clone)]
pub struct Template {
    /// The manifest's name as shown in problems.
    pub(super) name: String,
    pub(super) locs: Locations,
    pub(super) base: Table,
    pub(super) overrides: Vec<(KeyPath, KeyPath)>,
    /// The manifest's folder: the base of relative data paths.
    pub(super) dir: PathBuf,
    pub(super) seeds: Vec<u64>,
    pub(super) manifest_seed: u64,
    pub(super) search: Option<search_spec::SearchSpec>,
    /// A TPE search's grid points: every candidate runs at each of them (its folds), and
    /// its score is the mean over them and its seeds. Empty otherwise.
    pub(super) folds: Vec<Vec<AxisValue>>,
}

/// Planned runs that are new, and where they start.
pub struct Planned {
    pub candidates: Vec<Candidate>,
    /// Runs not planned before, indexed from the first index given.
    pub runs: Vec<PlannedRun>,
    /// Whether any run's method uses the search's budget (else every rung is one run).
    pub budget_used: bool,
}

impl Template {
    /// Plans `points` at every budget (a single `None` without a search). `known` maps the
    /// ids of runs already planned to their index: a point that resolves to one of them
    /// reuses it; new runs are indexed from `first_index`. Problems go to `found`.
    pub(super) fn plan(
        &self,
        points: &[Vec<AxisValue>],
        budgets: &[Option<search_spec::Budget>],
        known: HashMap<String, usize>,
        first_index: usize,
        found: &mut Found,
    ) -> Planned {
        let resolve = |p: &Path| resolve_path(p, &self.dir, Path::new(""));
        let mut planner = Planner {
            t: self,
            resolve: &resolve,
            cache: DataCache::default(),
            runs: Vec::new(),
            first_index,
            index_of: known,
            budget_used: false,
            found,
        };
        let folds = if self.folds.is_empty() {
            vec![vec![]]
        } else {
            self.folds.clone()
        };
        let candidates = points
            .iter()
            .map(|point| {
                // The candidate at each fold, its runs merged rung by rung; its axes are
                // the point's (a fold is no property of the candidate).
                let mut merged: Option<Candidate> = None;
                for fold in &folds {
                    let full: Vec<AxisValue> = fold.iter().chain(point).cloned().collect();
                    let c = planner.candidate(&full, budgets);
                    match &mut merged {
                        None => merged = Some(c),
                        Some(m) => {
                            for (rung, runs) in c.runs.into_iter().enumerate() {
                                match m.runs.get_mut(rung) {
                                    Some(r) => r.extend(runs),
                                    None => m.runs.push(runs),
                                }
                            }
                        }
                    }
                }
                let mut c = merged.expect("at least one fold");
                if !self.folds.is_empty() {
                    c.axes
                        .retain(|axis, _| point.iter().any(|(a, _, _)| a == axis));
                }
                c
            })
            .collect();
        Planned {
            candidates,
            runs: planner.runs,
            budget_used: planner.budget_used,
        }
    }

    /// Plans points proposed while a search runs (each at the base config's budget): the
    /// new runs, or every problem of the points' configs.
    pub fn plan_proposed(
        &self,
        points: &[Vec<AxisValue>],
        known: HashMap<String, usize>,
        first_index: usize,
    ) -> Result<Planned, Vec<String>> {
        let mut found = Found::default();
        let planned = self.plan(points, &[None], known, first_index, &mut found);
        if found.list.is_empty() {
            Ok(planned)
        } else {
            Err(found.list)
        }
    }
}

/// Builds the runs of points one by one; a run that two rungs or points resolve to alike
/// is planned once.
struct Planner<'a> {
    t: &'a Template,
    resolve: &'a dyn Fn(&Path) -> PathBuf,
    cache: DataCache,
    runs: Vec<PlannedRun>,
    first_index: usize,
    /// Run id -> plan index.
    index_of: HashMap<String, usize>,
    budget_used: bool,
    found: &'a mut Found,
}

impl Planner<'_> {
    /// One point of the axes at every budget (a single `None` without a search).
    fn candidate(
        &mut self,
        point: &[AxisValue],
        budgets: &[Option<search_spec::Budget>],
    ) -> Candidate {
        let mut candidate = Candidate {
            axes: serde_json::Map::new(),
            runs: Vec::new(),
            drawn: Vec::new(),
        };
        let search = self.t.search.as_ref().and_then(|s| s.halving());
        let budget_keys: Vec<&str> = search.map_or(vec![], |h| h.budget.split('.').collect());
        for budget in budgets {
            let mut table = self.t.base.clone();
            let mut ov = self.t.overrides.clone();
            for (axis, value, at) in point {
                let keys: Vec<&str> = axis.split('.').collect();
                set_path(&mut table, &keys, value.clone());
                ov.push((keys.iter().map(|s| s.to_string()).collect(), at.clone()));
            }
            if let Some(b) = budget {
                set_path(&mut table, &budget_keys, b.to_toml());
                ov.push((
                    budget_keys.iter().map(|s| s.to_string()).collect(),
                    key_path(&["search", "budget"]),
                ));
            }
            let origin = ConfigOrigin {
                locs: &self.t.locs,
                overrides: ov,
            };
            let locate = |p: &[String]| origin.locate(p);
            let (config, problems) = typed::<RunConfig>(&table, &locate, &self.t.name);
            self.found.extend(problems);
            let Some(mut config) = config else { continue };
            // The parts the run's method does not use are reset first: a grid that crosses
            // them with the method (pre-training x a physics-anchored model) is not wrong.
            let ignored = config.normalise();
            let generated = |p: &Path| p.to_string_lossy().starts_with(STUDY_PREFIX);
            let checked = check_config(
                config,
                &locate,
                &self.t.name,
                self.resolve,
                &generated,
                &self.cache,
                self.found,
            );
            let (Some(config), true) = (checked, self.found.list.is_empty()) else {
                // Keep checking the other points, but build no runs.
                continue;
            };
            let skip = |axis: &str| {
                ignored
                    .iter()
                    .any(|i| axis == *i || axis.starts_with(&format!("{i}.")))
            };
            if let Some(h) = search {
                self.budget_used |= !skip(h.budget);
            }
            let rung = self.replicates(&config, point, *budget, &skip, &mut candidate);
            candidate.runs.push(rung);
        }
        candidate
    }

    /// The runs of one checked config, one per seed: their plan indices.
    fn replicates(
        &mut self,
        checked: &Checked<RunConfig>,
        point: &[AxisValue],
        budget: Option<search_spec::Budget>,
        skip: &dyn Fn(&str) -> bool,
        candidate: &mut Candidate,
    ) -> Vec<usize> {
        let mut rung = Vec::new();
        let budget_key = self
            .t
            .search
            .as_ref()
            .and_then(|s| s.halving())
            .map(|h| h.budget);
        for &replicate in &self.t.seeds {
            let run_seed = stream_seed(self.t.manifest_seed ^ RUN_SEED_SALT, replicate);
            let resolved = checked.with_seed(run_seed);
            let canonical = CanonicalConfig::of(&resolved);
            let id = provenance::text_hash(&canonical.id_text(replicate));
            let mut axes = serde_json::Map::new();
            for (axis, _, _) in point {
                let v = if skip(axis) {
                    serde_json::Value::Null
                } else {
                    canonical
                        .get(axis)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null)
                };
                axes.insert(axis.clone(), v);
            }
            // Also when its runs are planned already (a point two candidates share).
            if candidate.axes.is_empty() {
                candidate.axes = axes.clone();
            }
            if let Some(&i) = self.index_of.get(&id) {
                rung.push(i);
                continue;
            }
            if let (Some(b), Some(key)) = (budget, budget_key) {
                let v = if skip(key) {
                    serde_json::Value::Null
                } else {
                    b.to_json()
                };
                axes.insert(SEARCH_BUDGET_AXIS.into(), v);
            }
            axes.insert("seed".into(), serde_json::json!(replicate));
            let index = self.first_index + self.runs.len();
            self.index_of.insert(id.clone(), index);
            rung.push(index);
            self.runs.push(PlannedRun {
                index,
                id,
                seed: replicate,
                run_seed,
                axes,
                config: resolved,
            });
        }
        rung
    }
}
