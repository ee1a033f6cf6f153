//! Study manifests (TOML): what a sweep runs, checked before anything runs, and expanded
//! into the fully resolved run list (the plan); and single run configs (`ablate train`),
//! checked the same way.
//!
//! A manifest names the study, its datasets, a base run config (the keys of `ablate
//! train`), sweep axes (`[grid]`: every combination; `[random]`: sampled points) and the
//! seeds. `include = ["base.toml"]` merges other files first (paths relative to the
//! including file); the including file's keys override, tables merge key by key.
//!
//! Every problem is reported with the file, line and column of the key (or value) that
//! causes it, and all problems of a file are reported in one pass. The parts:
//! [`locate`] (spans, typed reading that locates serde's errors), `include` (merging,
//! cycles), `resolve` (the base with one point's axis values, where each key came from),
//! `expand` (grid and random axes), `checks` (range and data checks of a run config),
//! [`overrides`] (`--set KEY=VALUE` from the command line), [`search_spec`] (`[search]`:
//! successive halving over the candidates);
//! `[datasets.pretrain]` is a [`crate::simulator::SimulatorSpec`].

mod checks;
mod expand;
mod include;
pub mod locate;
pub mod overrides;
mod planner;
mod resolve;
pub mod search_spec;

pub use crate::errors::Problems;
pub use crate::simulator::SimulatorSpec;
pub use expand::{random_points, AxisValue, Dist};
pub use planner::{Planned, Template};

use crate::limits::{MAX_RANDOM_SAMPLES, MAX_RUNS, MAX_SEEDS};
use crate::provenance;
use crate::runner::DataCache;
use expand::GridAxis;
use ionode_train::checked::{Check, Checked};
use ionode_train::run::RunConfig;
use locate::{key_path, non_finite, show, typed, unknown_key, KeyPath, Locations};
use resolve::{set_path, ConfigOrigin};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// The axis a search run's budget is recorded under (and its summary column).
pub const SEARCH_BUDGET_AXIS: &str = "search.budget";

/// Prefix of a path in a resolved config that lies in the study's results folder.
pub const STUDY_PREFIX: &str = "$STUDY/";

/// Collects problems once each (many runs of a study share a mistake).
#[derive(Default)]
struct Found {
    list: Vec<String>,
    seen: HashSet<String>,
}

impl Found {
    fn push(&mut self, p: String) {
        if self.seen.insert(p.clone()) {
            self.list.push(p);
        }
    }

    fn extend(&mut self, ps: impl IntoIterator<Item = String>) {
        ps.into_iter().for_each(|p| self.push(p));
    }

    /// Non-finite numbers, except where another problem already names the same key.
    fn non_finite(&mut self, ps: Vec<(String, String)>) {
        for (key, line) in ps {
            if !self.list.iter().any(|p| p.starts_with(&key)) {
                self.push(line);
            }
        }
    }
}

/// One resolved run of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// Position in the plan (shards take `index % n == i`).
    pub index: usize,
    /// 16 hex digits: hash of the resolved config JSON (with `seed` = the replicate seed)
    /// and the seed.
    pub id: String,
    /// The replicate seed (from `seeds`).
    pub seed: u64,
    /// The seed the run trains with (`seed` in `config`), from (manifest seed, replicate
    /// seed).
    pub run_seed: u64,
    /// Axis path -> this run's value (null where the method ignores the axis), plus "seed".
    pub axes: serde_json::Map<String, serde_json::Value>,
    /// The resolved run config (the keys of `ablate train`), with `seed` = `run_seed`.
    pub config: Checked<RunConfig>,
}

impl PlannedRun {
    /// Whether the run pre-trains on the study's generated set (`$STUDY/data/...`), which
    /// is made before any such run starts.
    pub fn pretrains_on_study_data(&self) -> bool {
        self.config
            .data
            .pretrain
            .as_ref()
            .is_some_and(|p| p.to_string_lossy().starts_with(STUDY_PREFIX))
    }
}

/// The fully resolved run list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub study: String,
    pub manifest: String,
    pub manifest_hash: String,
    pub seed: u64,
    pub metrics: Vec<String>,
    /// The `--set` overrides applied after the includes, in order (absent when none, so
    /// plans without them read as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The generator of the pre-training set, if the manifest gives one.
    pub pretrain_generator: Option<SimulatorSpec>,
    pub runs: Vec<PlannedRun>,
    /// A successive halving search over the runs (absent for a full sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchPlan>,
}

impl Plan {
    /// A study folder's `plan.json`, the one place it is read: the study's runs are the
    /// plan's, whatever other folders `runs/` holds.
    pub fn read(study_dir: &Path) -> crate::errors::Result<Plan> {
        let (path, text) = Plan::text(study_dir)?;
        let plan: Plan = serde_json::from_str(&text).map_err(|e| Plan::unreadable(&path, e))?;
        Plan::check_ids(&path, plan.runs.iter().map(|r| r.id.as_str()))?;
        Ok(plan)
    }

    /// Every run id a plan names is one [`crate::store::bad_run_id`] accepts: the ids name
    /// folders, and a plan is a file a user may edit.
    fn check_ids<'a>(path: &Path, ids: impl Iterator<Item = &'a str>) -> crate::errors::Result<()> {
        for (i, id) in ids.enumerate() {
            if let Some(why) = crate::store::bad_run_id(id) {
                return Err(crate::usage!(
                    "'{}': run {i} has id {id:?}, which is no run id ({why}); `ablate plan \
                     MANIFEST --force` writes the plan again",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    /// A study's name and its planned run ids, without reading every run's config (a plan
    /// of 100 000 runs parses in seconds, its ids in a fraction of that). `None` for a
    /// search, whose runs also come from its generation files (`tpe::study_runs`). The ids
    /// are checked as [`Plan::read`] checks them; the configs are not read, so a plan whose
    /// configs this version no longer reads still lists its runs here, and `ablate run`,
    /// `status` and `report`, which read it whole, say what is wrong with it.
    pub fn read_ids(study_dir: &Path) -> crate::errors::Result<Option<(String, Vec<String>)>> {
        #[derive(serde::Deserialize)]
        struct Light {
            study: String,
            runs: Vec<LightRun>,
            #[serde(default)]
            search: Option<serde::de::IgnoredAny>,
        }
        #[derive(serde::Deserialize)]
        struct LightRun {
            id: String,
        }
        let (path, text) = Plan::text(study_dir)?;
        let light: Light = serde_json::from_str(&text).map_err(|e| Plan::unreadable(&path, e))?;
        Plan::check_ids(&path, light.runs.iter().map(|r| r.id.as_str()))?;
        Ok(light
            .search
            .is_none()
            .then(|| (light.study, light.runs.into_iter().map(|r| r.id).collect())))
    }

    fn unreadable(path: &Path, e: serde_json::Error) -> crate::errors::StudyError {
        crate::usage!(
            "'{}' is not a plan this version of ablate reads ({e}); `ablate plan \
             MANIFEST --force` writes it again",
            path.display()
        )
    }

    /// The text of a study folder's `plan.json`, checked not empty.
    fn text(study_dir: &Path) -> crate::errors::Result<(std::path::PathBuf, String)> {
        let path = study_dir.join("plan.json");
        let text = match crate::limits::open_regular(&path, crate::limits::MAX_PLAN_BYTES)
            .and_then(std::io::read_to_string)
        {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(crate::usage!(
                    "'{}' has no plan.json, so it is not a study folder (`ablate run` and \
                     `ablate plan` make them)",
                    study_dir.display()
                ))
            }
            Err(e) => {
                return Err(crate::usage!("cannot read '{}': {e}", path.display()));
            }
        };
        if text.trim().is_empty() {
            return Err(crate::usage!(
                "'{}' is empty (its writer was stopped by a full disk or a crash?); \
                 `ablate plan MANIFEST --force` writes it again",
                path.display()
            ));
        }
        Ok((path, text))
    }
}

/// A `[search]` expanded: every candidate's runs at every rung's budget (halving), or the
/// first candidates and the space the rest are proposed in (TPE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPlan {
    pub spec: search_spec::SearchSpec,
    /// The budget of each rung (none for TPE).
    pub budgets: Vec<search_spec::Budget>,
    /// Halving: every candidate. TPE: the random start (generation 0); the later
    /// generations are proposed while the search runs ([`crate::tpe`]).
    pub candidates: Vec<Candidate>,
    /// TPE: the `[random]` axes, the space candidates are proposed in (absent for halving,
    /// whose plans therefore read and hash as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub space: Vec<(String, Dist)>,
    /// TPE: the `warm_start` studies' finished points, read when the plan is written
    /// (`crate::tpe::warm_start`), so every process of the search tells the same ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warm: Vec<WarmPoint>,
}

/// A point of another study, finished, as a TPE search is told it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmPoint {
    pub study: String,
    /// Its value of each axis of the space, in order.
    pub drawn: Vec<serde_json::Value>,
    /// Each objective's mean over the point's finished runs there.
    pub objectives: Vec<f64>,
    /// How many runs the means are over.
    pub runs: usize,
}

impl Candidate {
    /// Its axis values in a stable order, a stage or constraint table by its kind (or
    /// on/off).
    pub fn describe(&self) -> String {
        let sorted: BTreeMap<_, _> = self.axes.iter().collect();
        sorted
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::Object(o) => match o.get("kind").and_then(|k| k.as_str()) {
                    Some(kind) => format!("{k}={kind}"),
                    None => format!("{k}=on"),
                },
                serde_json::Value::Null | serde_json::Value::Bool(false) => format!("{k}=off"),
                serde_json::Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One point of the grid x random axes, over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Axis path -> value (as in [`PlannedRun::axes`], without the seed and the budget).
    pub axes: serde_json::Map<String, serde_json::Value>,
    /// Per rung, the plan indices of its runs (one per seed; a run a method's budget does
    /// not change is the same run at every rung).
    pub runs: Vec<Vec<usize>>,
    /// TPE: the value drawn for each axis of the space, in its order, as drawn (before a
    /// method that ignores an axis resets it); absent for halving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drawn: Vec<serde_json::Value>,
}

/// A loaded, checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub study: String,
    pub plan: Plan,
    /// How a point of the axes becomes runs (a TPE search plans its proposals with it).
    pub template: Template,
}

impl Manifest {
    /// Folder of the manifest: the base of relative dataset paths.
    pub fn dir(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new("")).to_path_buf()
    }
}

const TOP_KEYS: &[&str] = &[
    "study",
    "description",
    "include",
    "seed",
    "seeds",
    "metrics",
    "datasets",
    "base",
    "grid",
    "random",
    "search",
];
const DATASET_KEYS: &[&str] = &["pretrain", "measured"];
/// The metric names of a run (a manifest's `metrics`, a search's `metric`).
const METRICS: &[&str] = &[
    "mae",
    "rmse",
    "r2",
    "electroneutrality_mean",
    "electroneutrality_max",
];
/// Salt of the per-run seeds.
pub(crate) const RUN_SEED_SALT: u64 = 0x7275_6e73_6565_6421;

/// The checks of one resolved run config (after serde): range checks of every part (the
/// one [`Check::check`] of the config), the data files named (but those `generated` says
/// are made before the run), and the checks that need the measured data; each located by
/// `locate`. The checked config, when its range checks pass.
fn check_config(
    config: RunConfig,
    locate: &locate::Locate,
    fallback: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    generated: &dyn Fn(&Path) -> bool,
    cache: &DataCache,
    found: &mut Found,
) -> Option<Checked<RunConfig>> {
    let located = |path: &KeyPath, rest: &str| {
        let (loc, shown) = locate(path).map_or((fallback.to_string(), show(path)), |(l, n)| {
            (l.to_string(), n)
        });
        format!("{loc}: {shown}{rest}")
    };
    let checked = match config.clone().check() {
        Ok(checked) => Some(checked),
        Err(problems) => {
            for p in problems {
                found.push(located(&p.path(), &p.detail));
            }
            None
        }
    };
    let files = config
        .data
        .pretrain
        .iter()
        .map(|p| (key_path(&["data", "pretrain"]), p))
        .chain(
            config
                .data
                .measured
                .iter()
                .enumerate()
                .map(|(i, p)| (key_path(&["data", "measured", &format!("[{i}]")]), p)),
        );
    for (path, file) in files {
        let real = resolve(file);
        if !generated(file) && !real.exists() {
            found.push(located(
                &path,
                &format!(": data file '{}' not found", real.display()),
            ));
        }
    }
    for (path, rest) in checks::data_problems(&config, resolve, cache) {
        found.push(located(&path, &rest));
    }
    checked
}

/// The folder, relative to the working directory, where a run config's generated
/// pre-training sets are kept (`[data.pretrain]` as simulator settings), one file per
/// setting, named by the hash of the settings as a study names its own.
pub const GENERATED_PRETRAIN_DIR: &str = "datasets/sim";

/// A run config as `ablate train` reads it.
#[derive(Debug)]
pub struct RunConfigFile {
    /// The config, with a generated pre-training set's file in `data.pretrain`.
    pub config: Checked<RunConfig>,
    /// The settings that make `config.data.pretrain` when it is a generated set (see
    /// [`SimulatorSpec::ensure`]).
    pub pretrain_generator: Option<SimulatorSpec>,
}

/// Reads a run config (`ablate train --config FILE`) with every check a manifest's runs
/// get, located in the file: all of serde's problems, non-finite numbers, the range
/// checks, missing data files and the checks that need the data. Data paths are relative
/// to the working directory. `[data] pretrain` is a file, or a table of `ablate simulate`
/// settings whose set is generated once into [`GENERATED_PRETRAIN_DIR`] (the config then
/// names that file, as a study's plan names its generated set).
pub fn load_run_config(path: &Path, cache: &DataCache) -> Result<RunConfigFile, Problems> {
    let name = path.display().to_string();
    let text = crate::limits::read_text(path, crate::limits::MAX_TEXT_FILE_BYTES)
        .map_err(|e| Problems(vec![format!("cannot read config '{name}': {e}")]))?;
    let mut table: Table =
        toml::from_str(&text).map_err(|e| Problems(vec![locate::toml_error(&name, &text, &e)]))?;
    let mut locs = Locations::default();
    locs.record(&name, &text);
    let mut found = Found::default();
    let locate = |p: &[String]| locs.find(p).map(|l| (l, show(p)));
    let (pretrain_generator, generated_file) =
        generated_pretrain(&mut table, &locate, &name, &mut found);
    let (config, problems) = typed::<RunConfig>(&table, &locate, &name);
    found.extend(problems);
    let config = config.and_then(|config| {
        check_config(
            config,
            &locate,
            &name,
            &|p: &Path| p.to_path_buf(),
            &|p: &Path| generated_file.as_deref() == Some(p),
            cache,
            &mut found,
        )
    });
    found.non_finite(non_finite(&table, &locs, &name));
    match config {
        Some(config) if found.list.is_empty() => Ok(RunConfigFile {
            config,
            pretrain_generator,
        }),
        _ => Err(Problems(found.list)),
    }
}

/// A run config's `data.pretrain` value.
fn data_pretrain(table: &Table) -> Option<&Value> {
    table.get("data")?.as_table()?.get("pretrain")
}

/// A run config's `[data.pretrain]` table of simulator settings: checked (located), and
/// replaced in `table` by the file it generates. Returns the settings (when they have no
/// problem) and that file. Settings with problems still name a file, so that the rest of
/// the config is checked as if they were right (no "no pre-training set" follows).
fn generated_pretrain(
    table: &mut Table,
    locate: &locate::Locate,
    name: &str,
    found: &mut Found,
) -> (Option<SimulatorSpec>, Option<PathBuf>) {
    let Some(Value::Table(g)) = data_pretrain(table) else {
        return (None, None);
    };
    let g = g.clone();
    let prefixed = |p: &[String]| {
        let mut q = key_path(&["data", "pretrain"]);
        q.extend_from_slice(p);
        locate(&q)
    };
    let before = found.list.len();
    let (spec, problems) = typed::<SimulatorSpec>(&g, &prefixed, name);
    found.extend(problems);
    let at = || {
        locate(&key_path(&["data", "pretrain"])).map_or(name.to_string(), |(l, _)| l.to_string())
    };
    let file = spec.as_ref().and_then(|spec| {
        let db = ionode_physics::IonDb::builtin();
        match spec.to_config(Path::new(""), &db) {
            Ok(config) => Some(Path::new(GENERATED_PRETRAIN_DIR).join(spec.file_name(&config))),
            Err(e) => {
                found.push(format!(
                    "{}: data.pretrain: {}",
                    at(),
                    crate::errors::one_line(&e)
                ));
                None
            }
        }
    });
    let file =
        file.unwrap_or_else(|| Path::new(GENERATED_PRETRAIN_DIR).join("pretrain-invalid.h5"));
    set_path(
        table,
        &["data", "pretrain"],
        Value::String(file.display().to_string()),
    );
    (spec.filter(|_| found.list.len() == before), Some(file))
}

/// The longest study name: it names a folder, to which an overridden study adds
/// `-set-<8 hex digits>`, and Slurm job names (`ablate-<study>-report`).
pub const MAX_STUDY_NAME: usize = 100;

/// The study's name.
fn study_name(merged: &Table, locs: &Locations, name: &str, found: &mut Found) -> String {
    match merged.get("study") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= MAX_STUDY_NAME
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            s.clone()
        }
        Some(v) => {
            let shown: String = v.to_string().chars().take(80).collect();
            found.push(format!(
                "{}: study: expected a name of 1 to {MAX_STUDY_NAME} letters, digits, '_' and \
                 '-' (it names the study's folder), found {shown}{}",
                locs.at(&["study"], name),
                if v.to_string().chars().count() > 80 {
                    format!(
                        "... ({} characters)",
                        v.as_str().map_or(0, |s| s.chars().count())
                    )
                } else {
                    String::new()
                }
            ));
            String::new()
        }
        None => {
            found.push(format!("{name}: missing key 'study' (the study's name)"));
            String::new()
        }
    }
}

/// `seeds`: a count or a list, bounded before anything is allocated.
fn replicate_seeds(merged: &Table, locs: &Locations, name: &str, found: &mut Found) -> Vec<u64> {
    let at = |p: &[&str]| locs.at(p, name);
    match merged.get("seeds") {
        None => vec![0],
        Some(Value::Integer(n)) if (1..=MAX_SEEDS as i64).contains(n) => (0..*n as u64).collect(),
        Some(Value::Integer(n)) => {
            found.push(format!(
                "{}: seeds: {n} is out of range (expected a count in 1..={MAX_SEEDS} or a list of seeds)",
                at(&["seeds"])
            ));
            vec![]
        }
        Some(Value::Array(items)) if items.len() as u64 > MAX_SEEDS => {
            found.push(format!(
                "{}: seeds: {} seeds is more than the most, {MAX_SEEDS}",
                at(&["seeds"]),
                items.len()
            ));
            vec![]
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::Integer(s) if *s >= 0 && !out.contains(&(*s as u64)) => {
                        out.push(*s as u64)
                    }
                    _ => found.push(format!(
                        "{}: seeds[{i}]: expected a distinct non-negative integer, found {v}",
                        at(&["seeds", &format!("[{i}]")])
                    )),
                }
            }
            out
        }
        Some(v) => {
            found.push(format!(
                "{}: seeds: expected a count >= 1 or a non-empty list of seeds, found {v}",
                at(&["seeds"])
            ));
            vec![]
        }
    }
}

/// `metrics`: the names a table shows.
fn metric_names(merged: &Table, locs: &Locations, name: &str, found: &mut Found) -> Vec<String> {
    let at = |p: &[&str]| locs.at(p, name);
    match merged.get("metrics") {
        None => METRICS.iter().map(|s| s.to_string()).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(m) if METRICS.contains(&m) => out.push(m.to_string()),
                    Some(m) => found.push(unknown_key(
                        &at(&["metrics", &format!("[{i}]")]),
                        &format!("metrics[{i}] = \"{m}\""),
                        m,
                        METRICS,
                    )),
                    None => found.push(format!(
                        "{}: metrics[{i}]: expected a string, found {v}",
                        at(&["metrics", &format!("[{i}]")])
                    )),
                }
            }
            out
        }
        Some(v) => {
            found.push(format!(
                "{}: metrics: expected an array of metric names, found {v}",
                at(&["metrics"])
            ));
            vec![]
        }
    }
}

/// `[datasets]`: the run-config keys they set (`data.pretrain`, `data.measured`) and the
/// generator of the pre-training set, if it is one.
fn datasets(
    merged: &Table,
    locs: &Locations,
    name: &str,
    dir: &Path,
    found: &mut Found,
) -> (Vec<(&'static str, Value)>, Option<SimulatorSpec>) {
    let at = |p: &[&str]| locs.at(p, name);
    let mut overrides = Vec::new();
    let mut generator = None;
    let t = match merged.get("datasets") {
        None => return (overrides, generator),
        Some(Value::Table(t)) => t,
        Some(v) => {
            found.push(format!(
                "{}: datasets: expected a table, found {v}",
                at(&["datasets"])
            ));
            return (overrides, generator);
        }
    };
    for key in t.keys() {
        if !DATASET_KEYS.contains(&key.as_str()) {
            found.push(unknown_key(
                &at(&["datasets", key]),
                &format!("datasets.{key}"),
                key,
                DATASET_KEYS,
            ));
        }
    }
    match t.get("pretrain") {
        None => {}
        Some(Value::String(file)) => overrides.push(("pretrain", Value::String(file.clone()))),
        Some(Value::Table(g)) => {
            let locate = |p: &[String]| {
                let mut q = key_path(&["datasets", "pretrain"]);
                q.extend_from_slice(p);
                locs.find(&q).map(|l| (l, show(&q)))
            };
            let (spec, problems) = typed::<SimulatorSpec>(g, &locate, name);
            found.extend(problems);
            if let Some(spec) = spec {
                let db = ionode_physics::IonDb::builtin();
                match spec.to_config(dir, &db) {
                    Ok(config) => overrides.push((
                        "pretrain",
                        Value::String(format!("{STUDY_PREFIX}data/{}", spec.file_name(&config))),
                    )),
                    Err(e) => found.push(format!(
                        "{}: datasets.pretrain: {}",
                        at(&["datasets", "pretrain"]),
                        crate::errors::one_line(&e)
                    )),
                }
                generator = Some(spec);
            }
        }
        Some(v) => found.push(format!(
            "{}: datasets.pretrain: expected a file name or a generator table, found {v}",
            at(&["datasets", "pretrain"])
        )),
    }
    match t.get("measured") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                if !v.is_str() {
                    found.push(format!(
                        "{}: datasets.measured[{i}]: expected a file name, found {v}",
                        at(&["datasets", "measured", &format!("[{i}]")])
                    ));
                }
            }
            overrides.push(("measured", Value::Array(items.clone())));
        }
        Some(v) => found.push(format!(
            "{}: datasets.measured: expected an array of file names, found {v}",
            at(&["datasets", "measured"])
        )),
    }
    (overrides, generator)
}

/// `[grid]`: each axis with its values and the manifest path of each value.
fn grid_axes(merged: &Table, locs: &Locations, name: &str, found: &mut Found) -> Vec<GridAxis> {
    let at = |p: &[&str]| locs.at(p, name);
    let mut grid = Vec::new();
    match merged.get("grid") {
        None => {}
        Some(Value::Table(t)) => {
            for (axis, values) in t {
                match values {
                    Value::Array(items) if !items.is_empty() => {
                        let paths = (0..items.len())
                            .map(|i| key_path(&["grid", axis, &format!("[{i}]")]))
                            .collect();
                        grid.push((axis.clone(), items.clone(), paths));
                    }
                    _ => found.push(format!(
                        "{}: grid.\"{axis}\": expected a non-empty array of values",
                        at(&["grid", axis])
                    )),
                }
            }
        }
        Some(v) => found.push(format!(
            "{}: grid: expected a table of axes, found {v}",
            at(&["grid"])
        )),
    }
    grid
}

/// `[random]`: its points, drawn from the manifest seed (one empty point without it).
fn random_axes(
    merged: &Table,
    locs: &Locations,
    name: &str,
    seed: u64,
    found: &mut Found,
) -> (Vec<(String, Dist)>, Vec<Vec<AxisValue>>) {
    let at = |p: &[&str]| locs.at(p, name);
    let t = match merged.get("random") {
        None => return (vec![], vec![vec![]]),
        Some(Value::Table(t)) => t,
        Some(v) => {
            found.push(format!(
                "{}: random: expected a table, found {v}",
                at(&["random"])
            ));
            return (vec![], vec![vec![]]);
        }
    };
    let samples = match t.get("samples") {
        Some(Value::Integer(n)) if (1..=MAX_RANDOM_SAMPLES as i64).contains(n) => *n as u64,
        other => {
            found.push(format!(
                "{}: random.samples: expected a count in 1..={MAX_RANDOM_SAMPLES}, found {}",
                at(&["random", "samples"]),
                other.map_or("nothing".to_string(), |v| v.to_string())
            ));
            0
        }
    };
    let mut axes: Vec<(String, Dist)> = Vec::new();
    for (axis, spec) in t.iter().filter(|(k, _)| *k != "samples") {
        let Value::Table(spec_t) = spec else {
            found.push(format!(
                "{}: random.\"{axis}\": expected a table {{ dist = ..., ... }}",
                at(&["random", axis])
            ));
            continue;
        };
        let locate = |p: &[String]| {
            let mut q = key_path(&["random", axis]);
            q.extend_from_slice(p);
            locs.find(&q).map(|l| (l, show(&q)))
        };
        let (dist, problems) = typed::<Dist>(spec_t, &locate, name);
        found.extend(problems);
        if let Some(d) = dist {
            match d.problem() {
                Some(why) => found.push(format!(
                    "{}: random.\"{axis}\": {why}",
                    at(&["random", axis])
                )),
                None => axes.push((axis.clone(), d)),
            }
        }
    }
    let points = expand::random_points(&axes, samples, seed);
    (axes, points)
}

/// `[search]`: the spec and its rung budgets, checked; the budget key may not be an axis.
fn search_table(
    merged: &Table,
    locs: &Locations,
    name: &str,
    grid: &[GridAxis],
    (space, random): (&[(String, Dist)], &[Vec<AxisValue>]),
    found: &mut Found,
) -> Option<(search_spec::SearchSpec, Vec<search_spec::Budget>)> {
    let at = |p: &[&str]| locs.at(p, name);
    let t = match merged.get("search")? {
        Value::Table(t) => t,
        v => {
            found.push(format!(
                "{}: search: expected a table (budget, min, max, eta, metric, direction), found {v}",
                at(&["search"])
            ));
            return None;
        }
    };
    let locate = |p: &[String]| {
        let mut q = key_path(&["search"]);
        q.extend_from_slice(p);
        locs.find(&q).map(|l| (l, show(&q)))
    };
    let (spec, problems) = typed::<search_spec::SearchSpec>(t, &locate, name);
    found.extend(problems);
    let spec = spec?;
    let before = found.list.len();
    for (key, why) in spec.problems() {
        found.push(format!("{}: search.{key}: {why}", at(&["search", key])));
    }
    if let Some(tpe) = spec.tpe() {
        for (i, axis, why) in search_spec::enqueue_problems(&spec.enqueue, space) {
            let index = format!("[{i}]");
            let mut path = vec!["search", "enqueue", index.as_str()];
            path.extend(axis.as_deref());
            let shown = match &axis {
                Some(a) => format!("search.enqueue[{i}].\"{a}\""),
                None => format!("search.enqueue[{i}]"),
            };
            found.push(format!("{}: {shown}: {why}", at(&path)));
        }
        let samples = random.iter().filter(|p| !p.is_empty()).count();
        let start = samples + spec.enqueue.len();
        if samples == 0 {
            found.push(format!(
                "{}: search.sampler: a TPE search needs [random] axes to propose points of \
                 (and random.samples, the random candidates it starts from)",
                at(&["search", "sampler"])
            ));
        } else if start > tpe.candidates && tpe.candidates > 0 {
            found.push(format!(
                "{}: search.candidates: {} is fewer than the {start} candidates a TPE search \
                 starts from (random.samples = {samples}, {} enqueued)",
                at(&["search", "candidates"]),
                tpe.candidates,
                spec.enqueue.len()
            ));
        }
    }
    let Some(halving) = spec.halving() else {
        return (found.list.len() == before).then(|| (spec, vec![]));
    };
    let axes = grid.iter().map(|(a, _, _)| a.as_str()).chain(
        random
            .first()
            .into_iter()
            .flatten()
            .map(|(a, _, _)| a.as_str()),
    );
    for axis in axes {
        let b = halving.budget;
        if axis == b || b.starts_with(&format!("{axis}.")) || axis.starts_with(&format!("{b}.")) {
            found.push(format!(
                "{}: search.budget: '{b}' is also the axis \"{axis}\"; the search sets the budget, remove the axis",
                at(&["search", "budget"])
            ));
        }
    }
    (found.list.len() == before).then(|| {
        let budgets = spec.budgets();
        (spec, budgets)
    })
}

/// The base run config of a manifest, with the datasets set in it, and where each key
/// set from `[datasets]` was written (for locating problems). Unknown keys of the base are
/// checked here on their own: an axis that sets a whole table (`"pretrain" = [{...},
/// false]`) replaces the base's table of that name in every run, which would otherwise
/// hide a misspelt key there.
fn base_config(
    merged: &Table,
    locs: &Locations,
    name: &str,
    data_overrides: Vec<(&'static str, Value)>,
    found: &mut Found,
) -> (Table, Vec<(KeyPath, KeyPath)>) {
    let mut base = match merged.get("base") {
        Some(Value::Table(t)) => t.clone(),
        None => Table::new(),
        Some(v) => {
            found.push(format!(
                "{}: base: expected a table (the run config), found {v}",
                locs.at(&["base"], name)
            ));
            Table::new()
        }
    };
    let mut overrides: Vec<(KeyPath, KeyPath)> = Vec::new();
    for (key, value) in data_overrides {
        set_path(&mut base, &["data", key], value);
        overrides.push((key_path(&["data", key]), key_path(&["datasets", key])));
    }
    // The seed is the plan's; a placeholder keeps the config complete.
    base.insert("seed".into(), Value::Integer(0));
    let origin = ConfigOrigin {
        locs,
        overrides: overrides.clone(),
    };
    let locate = |p: &[String]| origin.locate(p);
    let (_, problems) = typed::<RunConfig>(&base, &locate, name);
    found.extend(
        problems
            .into_iter()
            .filter(|p| p.contains(": unknown key '")),
    );
    (base, overrides)
}

/// The problem of a study with more than [`MAX_RUNS`] runs (grid points x random points x
/// seeds x rungs), found before the plan is built.
fn too_many_runs(
    name: &str,
    grid: &[GridAxis],
    random_points: usize,
    seeds: usize,
    search: &Option<(search_spec::SearchSpec, Vec<search_spec::Budget>)>,
) -> Option<String> {
    // A TPE search runs `candidates` points, each once.
    let (random_points, rungs) = match search {
        Some((s, _)) if s.tpe().is_some() => (s.tpe().map_or(0, |t| t.candidates), 1),
        Some((_, b)) => (random_points, b.len()),
        None => (random_points, 1),
    };
    let size = grid
        .iter()
        .try_fold(random_points as u64, |n, (_, values, _)| {
            n.checked_mul(values.len() as u64)
        })
        .and_then(|n| n.checked_mul(seeds as u64))
        .and_then(|n| n.checked_mul(rungs as u64));
    if size.is_some_and(|n| n <= MAX_RUNS) {
        return None;
    }
    let axes: Vec<String> = grid
        .iter()
        .map(|(axis, values, _)| format!("{} x \"{axis}\"", values.len()))
        .collect();
    Some(format!(
        "{name}: the study has {} runs ({} grid, {random_points} random point(s), {seeds} seed(s){}), more than the most, {MAX_RUNS}",
        size.map_or("too many".to_string(), |n| n.to_string()),
        if axes.is_empty() { "no".to_string() } else { axes.join(", ") },
        if search.is_some() {
            format!(", {rungs} rung(s)")
        } else {
            String::new()
        }
    ))
}

/// Loads, checks and expands a manifest, with `--set` overrides applied after its
/// includes (see [`overrides`]).
pub fn load(path: &Path, set: &[String]) -> Result<Manifest, Problems> {
    let name = path.display().to_string();
    let mut locs = Locations::default();
    let mut merged = include::load_merged(path, &mut locs)?;
    overrides::apply(&mut merged, &mut locs, set)?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut found = Found::default();
    for key in merged.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            found.push(unknown_key(&locs.at(&[key], &name), key, key, TOP_KEYS));
        }
    }
    let study = overrides::study_name(&study_name(&merged, &locs, &name, &mut found), set);
    let seed = match merged.get("seed") {
        None => 0,
        Some(Value::Integer(i)) if *i >= 0 => *i as u64,
        Some(v) => {
            found.push(format!(
                "{}: seed: expected a non-negative integer, found {v}",
                locs.at(&["seed"], &name)
            ));
            0
        }
    };
    let seeds = replicate_seeds(&merged, &locs, &name, &mut found);
    let metrics = metric_names(&merged, &locs, &name, &mut found);
    let (data_overrides, generator) = datasets(&merged, &locs, &name, &dir, &mut found);

    let (base, overrides) = base_config(&merged, &locs, &name, data_overrides, &mut found);

    let mut grid = grid_axes(&merged, &locs, &name, &mut found);
    let (random_space, random_points) = random_axes(&merged, &locs, &name, seed, &mut found);
    let search = search_table(
        &merged,
        &locs,
        &name,
        &grid,
        (&random_space, &random_points),
        &mut found,
    );
    let budgets: Vec<Option<search_spec::Budget>> = match &search {
        Some((_, b)) if !b.is_empty() => b.iter().copied().map(Some).collect(),
        _ => vec![None],
    };

    if let Some(problem) = too_many_runs(&name, &grid, random_points.len(), seeds.len(), &search) {
        found.push(problem);
        return Err(Problems(found.list));
    }
    // A TPE search's grid points are folds: every candidate, the proposed ones included,
    // runs at each of them (leave-one-family-out splits, say), and is scored by the mean.
    let folds = if search.as_ref().is_some_and(|(s, _)| s.tpe().is_some()) {
        expand::points(&std::mem::take(&mut grid), &[vec![]])
    } else {
        vec![]
    };

    // Every point: its config at every rung's budget (one rung without a search).
    let template = Template {
        name: name.clone(),
        locs,
        base,
        overrides,
        dir,
        seeds,
        manifest_seed: seed,
        search: search.as_ref().map(|(s, _)| s.clone()),
        folds,
    };
    // A TPE search's named candidates come first, then its random start.
    let enqueued: Vec<Vec<AxisValue>> = match &search {
        Some((s, _)) if s.tpe().is_some() => s
            .enqueue
            .iter()
            .enumerate()
            .map(|(i, t)| {
                random_space
                    .iter()
                    .filter_map(|(axis, _)| {
                        let at = key_path(&["search", "enqueue", &format!("[{i}]"), axis]);
                        t.get(axis).map(|v| (axis.clone(), v.clone(), at))
                    })
                    .collect()
            })
            .collect(),
        _ => vec![],
    };
    let points: Vec<Vec<AxisValue>> = enqueued
        .into_iter()
        .chain(expand::points(&grid, &random_points))
        .collect();
    let Planned {
        mut candidates,
        runs,
        budget_used,
    } = template.plan(&points, &budgets, HashMap::new(), 0, &mut found);
    let locs = &template.locs;

    if let Some(h) = search.as_ref().and_then(|(s, _)| s.halving()) {
        if !budget_used && found.list.is_empty() {
            found.push(format!(
                "{}: search.budget: '{}' is ignored by every run of the study (their method or \
                 settings do not use it), so every rung would repeat the same runs; choose a \
                 key the runs use, such as \"finetune.epochs\" for neural runs",
                locs.at(&["search", "budget"], &name),
                h.budget
            ));
        }
    }
    found.non_finite(non_finite(&merged, locs, &name));
    if !found.list.is_empty() {
        return Err(Problems(found.list));
    }
    let tpe = search.as_ref().is_some_and(|(s, _)| s.tpe().is_some());
    if tpe {
        for (c, point) in candidates.iter_mut().zip(&points) {
            c.drawn = point.iter().map(|(_, v, _)| toml_json(v)).collect();
        }
    }
    let merged_json = serde_json::to_string(&merged).expect("TOML values serialise as JSON");
    let plan = Plan {
        study: study.clone(),
        manifest: name,
        manifest_hash: provenance::text_hash(&merged_json),
        seed,
        metrics,
        overrides: set.to_vec(),
        pretrain_generator: generator,
        runs,
        search: search.map(|(spec, budgets)| SearchPlan {
            spec,
            budgets,
            candidates,
            space: if tpe { random_space } else { vec![] },
            warm: vec![],
        }),
    };
    Ok(Manifest {
        path: path.to_path_buf(),
        study,
        plan,
        template,
    })
}

/// A TOML value as JSON (TOML's values all have one).
pub fn toml_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).expect("TOML values serialise as JSON")
}

/// A config path as a file path: `$STUDY/...` in the study folder, relative paths from
/// the manifest's folder.
pub fn resolve_path(p: &Path, manifest_dir: &Path, study_dir: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if let Some(rest) = s.strip_prefix(STUDY_PREFIX) {
        study_dir.join(rest)
    } else if p.is_absolute() {
        p.to_path_buf()
    } else {
        manifest_dir.join(p)
    }
}

/// The run's axes in a stable order (for display).
pub fn axes_summary(run: &PlannedRun) -> String {
    let sorted: BTreeMap<_, _> = run.axes.iter().collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan is a file a user may edit: an id that would name a folder outside `runs/` is
    /// refused by both readers, with the file, the run and what an id may be.
    #[test]
    fn a_plan_naming_a_folder_outside_runs_is_refused_by_both_readers() {
        let dir = tempfile::tempdir().unwrap();
        let plan = |id: &str| {
            format!(
                "{{\"study\":\"s\",\"manifest\":\"m.toml\",\"manifest_hash\":\"h\",\"seed\":1,\
                 \"metrics\":[],\"pretrain_generator\":null,\"runs\":[{{\"id\":{}}}]}}",
                serde_json::to_string(id).unwrap()
            )
        };
        for bad in ["../../etc", "", ".hidden", "a/b", "a b", &"x".repeat(129)] {
            std::fs::write(dir.path().join("plan.json"), plan(bad)).unwrap();
            let e = Plan::read_ids(dir.path()).unwrap_err().to_string();
            assert!(e.contains("plan.json': run 0 has id"), "{e}");
            assert!(e.contains("which is no run id"), "{e}");
        }
        std::fs::write(dir.path().join("plan.json"), plan("0123abcd-s1_x.y+z")).unwrap();
        let (_, ids) = Plan::read_ids(dir.path()).unwrap().unwrap();
        assert_eq!(ids, ["0123abcd-s1_x.y+z"]);
        // The whole reader refuses the same ids before it looks at anything else.
        let m = load(Path::new("../../experiments/smoke.toml"), &[]).unwrap();
        let mut p = serde_json::to_value(&m.plan).unwrap();
        p["runs"][3]["id"] = "../escape".into();
        std::fs::write(dir.path().join("plan.json"), p.to_string()).unwrap();
        let e = Plan::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("run 3 has id \"../escape\""), "{e}");
    }

    #[test]
    fn false_switches_a_table_off_but_sets_a_boolean() {
        let mut t: Table =
            toml::from_str("[pretrain]\nepochs = 2\n[finetune]\naugment_noise = true\n").unwrap();
        set_path(&mut t, &["pretrain"], Value::Boolean(false));
        set_path(
            &mut t,
            &["finetune", "augment_noise"],
            Value::Boolean(false),
        );
        set_path(&mut t, &["model", "hidden"], Value::Integer(8));
        assert!(!t.contains_key("pretrain"));
        assert_eq!(t["finetune"]["augment_noise"], Value::Boolean(false));
        assert_eq!(t["model"]["hidden"], Value::Integer(8));
    }
}
