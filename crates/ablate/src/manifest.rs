//! Study manifests (TOML): what a sweep runs, checked before anything runs, and expanded
//! into the fully resolved run list (the plan).
//!
//! A manifest names the study, its datasets, a base run config (the keys of `ablate
//! train`), sweep axes (`[grid]`: every combination; `[random]`: sampled points) and the
//! seeds. `include = ["base.toml"]` merges other files first (paths relative to the
//! including file); the including file's keys override, tables merge key by key.
//!
//! Every problem is reported with the file, line and column of the key (or value) that
//! causes it. The locations come from `toml::de::DeTable`'s spans; errors that serde finds
//! in a resolved run config are located by re-serialising that config, reading the span of
//! the error in that text back to a key path, and looking the path up in the manifest's
//! location map. So every check `ablate train` makes is made here with a location, without
//! a second hand-written schema of the run config.

use crate::commands::train::{Method, TrainConfig};
use crate::provenance;
use ionode_physics::rng::{stream_seed, Rng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Prefix of a path in a resolved config that lies in the study's results folder.
pub const STUDY_PREFIX: &str = "$STUDY/";

/// A location in a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Manifest problems, one line each (`FILE:LINE:COL: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.join("\n"))
    }
}

impl std::error::Error for Problems {}

type Path_ = Vec<String>;

/// Where each key path (and each array element, as `"[i]"`) of the merged manifest was
/// written; later files override earlier ones like their values do.
#[derive(Debug, Default, Clone)]
struct Locations(HashMap<Path_, Loc>);

impl Locations {
    /// The location of a path, or of its nearest located ancestor.
    fn find(&self, path: &[String]) -> Option<Loc> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.0.get(&path[..n]).cloned())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Every key (and array element) of a TOML text with the byte span of the key and of the
/// value.
fn spans(text: &str) -> Vec<(Path_, std::ops::Range<usize>, std::ops::Range<usize>)> {
    use toml::de::{DeTable, DeValue};
    fn walk(
        prefix: &Path_,
        value: &toml::Spanned<DeValue<'_>>,
        key_span: std::ops::Range<usize>,
        out: &mut Vec<(Path_, std::ops::Range<usize>, std::ops::Range<usize>)>,
    ) {
        out.push((prefix.clone(), key_span, value.span()));
        match value.get_ref() {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    let mut p = prefix.clone();
                    p.push(k.get_ref().to_string());
                    walk(&p, v, k.span(), out);
                }
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let mut p = prefix.clone();
                    p.push(format!("[{i}]"));
                    walk(&p, v, v.span(), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(root) = DeTable::parse(text) {
        for (k, v) in root.get_ref().iter() {
            walk(&vec![k.get_ref().to_string()], v, k.span(), &mut out);
        }
    }
    out
}

/// A parse error of a TOML text as one located line.
fn toml_error(file: &str, text: &str, err: &toml::de::Error) -> String {
    let loc = err
        .span()
        .map(|s| line_col(text, s.start))
        .unwrap_or((1, 1));
    format!("{file}:{}:{}: {}", loc.0, loc.1, err.message().trim())
}

/// Deep merge: tables key by key, anything else replaced.
fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Dataset paths are written relative to the file that names them; the merged manifest
/// holds them relative to the top manifest's folder (`rel_dir` = this file's folder seen
/// from there).
fn rebase_data_paths(table: &mut Table, rel_dir: &Path) {
    if rel_dir.as_os_str().is_empty() {
        return;
    }
    let rebase = |v: &mut Value| {
        if let Value::String(s) = v {
            if !s.starts_with(STUDY_PREFIX) && Path::new(s.as_str()).is_relative() {
                *s = rel_dir.join(s.as_str()).display().to_string();
            }
        }
    };
    let fix = |t: Option<&mut Value>| {
        let Some(Value::Table(t)) = t else { return };
        if let Some(v) = t.get_mut("pretrain") {
            rebase(v);
        }
        if let Some(Value::Array(items)) = t.get_mut("measured") {
            items.iter_mut().for_each(rebase);
        }
    };
    fix(table.get_mut("datasets"));
    if let Some(Value::Table(base)) = table.get_mut("base") {
        fix(base.get_mut("data"));
    }
}

/// Reads a manifest and its includes (depth first, in order; the file itself last).
fn load_merged(
    path: &Path,
    rel_dir: &Path,
    locs: &mut Locations,
    depth: usize,
) -> Result<Table, Problems> {
    let name = path.display().to_string();
    if depth > 8 {
        return Err(Problems(vec![format!(
            "{name}: includes nest deeper than 8 files (a cycle?)"
        )]));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problems(vec![format!("cannot read manifest '{name}': {e}")]))?;
    let mut table: Table =
        toml::from_str(&text).map_err(|e| Problems(vec![toml_error(&name, &text, &e)]))?;
    let here: Vec<_> = spans(&text);
    let loc_of = |p: &[String]| {
        here.iter().find(|(q, _, _)| q == p).map(|(_, k, _)| {
            let (line, column) = line_col(&text, k.start);
            Loc {
                file: name.clone(),
                line,
                column,
            }
        })
    };
    let mut merged = Table::new();
    if let Some(include) = table.remove("include") {
        let at = loc_of(&["include".to_string()]).map_or(name.clone(), |l| l.to_string());
        let Value::Array(items) = include else {
            return Err(Problems(vec![format!(
                "{at}: include: expected an array of file names"
            )]));
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        for item in items {
            let Value::String(file) = item else {
                return Err(Problems(vec![format!(
                    "{at}: include: expected an array of file names"
                )]));
            };
            let inc = dir.join(&file);
            if !inc.exists() {
                return Err(Problems(vec![format!(
                    "{at}: included file '{}' not found",
                    inc.display()
                )]));
            }
            let t = load_merged(
                &inc,
                rel_dir.join(&file).parent().unwrap_or(Path::new("")),
                locs,
                depth + 1,
            )?;
            merge(&mut merged, t);
        }
    }
    for (p, k, v) in &here {
        // Array elements are located at their value, keys at the key.
        let at = if p.last().is_some_and(|l| l.starts_with('[')) {
            v.start
        } else {
            k.start
        };
        let (line, column) = line_col(&text, at);
        locs.0.insert(
            p.clone(),
            Loc {
                file: name.clone(),
                line,
                column,
            },
        );
    }
    rebase_data_paths(&mut table, rel_dir);
    merge(&mut merged, table);
    Ok(merged)
}

/// The pre-training set: a file, or the generator flags of `ablate simulate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSpec {
    #[serde(default = "d_membrane")]
    pub membrane: String,
    pub samples: usize,
    pub seed: u64,
    #[serde(default = "d_species")]
    pub species: String,
    #[serde(default = "d_min_ions")]
    pub min_ions: usize,
    #[serde(default)]
    pub max_ions: Option<usize>,
    #[serde(default = "d_c_min")]
    pub c_min: f64,
    #[serde(default = "d_c_max")]
    pub c_max: f64,
    #[serde(default = "d_flux_min")]
    pub flux_min: String,
    #[serde(default = "d_flux_max")]
    pub flux_max: String,
    #[serde(default = "d_flux_count")]
    pub flux_count: usize,
    /// "linear" or "log".
    #[serde(default = "d_spacing")]
    pub flux_spacing: String,
    #[serde(default = "d_ideal")]
    pub activity: String,
    #[serde(default = "d_none")]
    pub cp: String,
    #[serde(default = "d_elements")]
    pub elements: usize,
    #[serde(default = "d_temperature")]
    pub temperature: String,
}

// The defaults of `ablate simulate`'s flags.
fn d_membrane() -> String {
    "nf270".into()
}
fn d_species() -> String {
    "Na+,K+,Li+,Mg2+,Ca2+,Cl-,SO4^2-".into()
}
fn d_min_ions() -> usize {
    2
}
fn d_c_min() -> f64 {
    1.0
}
fn d_c_max() -> f64 {
    200.0
}
fn d_flux_min() -> String {
    "2e-6".into()
}
fn d_flux_max() -> String {
    "3e-5".into()
}
fn d_flux_count() -> usize {
    16
}
fn d_spacing() -> String {
    "linear".into()
}
fn d_ideal() -> String {
    "ideal".into()
}
fn d_none() -> String {
    "none".into()
}
fn d_elements() -> usize {
    1
}
fn d_temperature() -> String {
    "25C".into()
}

impl GeneratorSpec {
    /// The flags of `ablate simulate` for this spec.
    pub fn args(&self, out: PathBuf, threads: Option<usize>) -> crate::cli::SimulateArgs {
        crate::cli::SimulateArgs {
            membrane: self.membrane.clone(),
            samples: self.samples,
            seed: self.seed,
            out,
            species: self.species.clone(),
            min_ions: self.min_ions,
            max_ions: self.max_ions,
            c_min: self.c_min,
            c_max: self.c_max,
            flux_min: self.flux_min.clone(),
            flux_max: self.flux_max.clone(),
            flux_count: self.flux_count,
            flux_spacing: if self.flux_spacing == "log" {
                crate::cli::FluxSpacing::Log
            } else {
                crate::cli::FluxSpacing::Linear
            },
            activity: self.activity.clone(),
            cp: self.cp.clone(),
            elements: self.elements,
            temperature: self.temperature.clone(),
            threads,
            ions: None,
        }
    }

    /// The cache name of the generated file: a hash of the spec.
    pub fn file_name(&self) -> String {
        let json = serde_json::to_string(self).expect("the spec serialises");
        format!("pretrain-{}.h5", provenance::text_hash(&json))
    }
}

/// A random-search distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    Uniform { min: f64, max: f64 },
    LogUniform { min: f64, max: f64 },
    IntUniform { min: i64, max: i64 },
    Choice { values: Vec<Value> },
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
    pub method: String,
    /// Axis path -> this run's value (null where the method ignores the axis), plus "seed".
    pub axes: serde_json::Map<String, serde_json::Value>,
    /// The resolved run config (the keys of `ablate train`).
    pub config: serde_json::Value,
}

/// The fully resolved run list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub study: String,
    pub manifest: String,
    pub manifest_hash: String,
    pub seed: u64,
    pub metrics: Vec<String>,
    /// The generator of the pre-training set, if the manifest gives one.
    pub pretrain_generator: Option<GeneratorSpec>,
    pub runs: Vec<PlannedRun>,
}

/// A loaded, checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub study: String,
    pub plan: Plan,
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
];
const DATASET_KEYS: &[&str] = &["pretrain", "measured"];
const METRICS: &[&str] = &[
    "mae",
    "rmse",
    "r2",
    "electroneutrality_mean",
    "electroneutrality_max",
];
/// Salt of the random-search stream (distinct from every training stream).
const RANDOM_SALT: u64 = 0x7261_6e64_6f6d_2121;
/// Salt of the per-run seeds.
const RUN_SEED_SALT: u64 = 0x7275_6e73_6565_6421;

/// Levenshtein distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest valid key, if it is close enough to be a likely typo.
fn suggest<'a>(key: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    valid
        .into_iter()
        .map(|v| (distance(key, v), v))
        .min()
        .filter(|(d, v)| *d <= 3.max(v.len() / 3))
        .map(|(_, v)| v)
}

fn unknown_key(at: &str, shown: &str, key: &str, valid: &[&str]) -> String {
    match suggest(key, valid.iter().copied()) {
        Some(s) => {
            // The suggestion in the same form as the key: the full path when it ends so.
            let full = shown
                .strip_suffix(key)
                .map_or(s.to_string(), |parent| format!("{parent}{s}"));
            format!("{at}: unknown key '{shown}' (did you mean '{full}'?)")
        }
        None => format!(
            "{at}: unknown key '{shown}' (expected one of: {})",
            valid.join(", ")
        ),
    }
}

/// Sets a dotted path in a table; `false` on a path whose value is not a boolean in the
/// base removes the key (`"pretrain" = [{...}, false]` switches a stage off).
fn set_path(table: &mut Table, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("paths are non-empty");
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        t = entry.as_table_mut().expect("made a table above");
    }
    let off = value == Value::Boolean(false) && !matches!(t.get(*last), Some(Value::Boolean(_)));
    if off {
        t.remove(*last);
    } else {
        t.insert(last.to_string(), value);
    }
}

/// Where a resolved config's key came from, for located errors.
struct ConfigOrigin<'a> {
    locs: &'a Locations,
    /// (run-config path, manifest path of the value that set it)
    overrides: Vec<(Path_, Path_)>,
}

/// A manifest path as the user wrote it: `grid."model.variant"[1].kind`.
fn show(path: &[String]) -> String {
    let mut out = String::new();
    for k in path {
        if k.starts_with('[') {
            out.push_str(k);
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        if k.contains('.') {
            out.push_str(&format!("\"{k}\""));
        } else {
            out.push_str(k);
        }
    }
    out
}

impl ConfigOrigin<'_> {
    /// The location and the manifest name of a run-config path.
    fn locate(&self, path: &[String]) -> Option<(Loc, String)> {
        // The longest override that is a prefix of the path decides.
        let mut best: Option<&(Path_, Path_)> = None;
        for o in &self.overrides {
            if path.starts_with(&o.0) && best.is_none_or(|b| o.0.len() > b.0.len()) {
                best = Some(o);
            }
        }
        let mut manifest_path = match best {
            Some((prefix, at)) => {
                let mut p = at.clone();
                p.extend_from_slice(&path[prefix.len()..]);
                p
            }
            None => match self
                .overrides
                .iter()
                .find(|o| o.0.starts_with(path) && o.0.len() > path.len())
            {
                // A key an axis created (a misspelt axis path): the axis itself.
                Some((_, at)) => at.iter().take(2).cloned().collect(),
                None => {
                    let mut p = vec!["base".to_string()];
                    p.extend_from_slice(path);
                    p
                }
            },
        };
        let loc = self.locs.find(&manifest_path)?;
        // Axis values are shown down to the element; deeper keys are inside it.
        if manifest_path.first().is_some_and(|f| f == "random") {
            manifest_path.truncate(2);
        }
        Some((loc, show(&manifest_path)))
    }
}

/// A run-config (or sub-table) key path -> its location and name in the manifest.
type Locate<'a> = dyn Fn(&[String]) -> Option<(Loc, String)> + 'a;

/// Deserialises a table through its TOML text, so a serde error has a span that leads back
/// to the key, which `locate` turns into a location and the name the manifest uses.
fn typed<T: serde::de::DeserializeOwned>(
    table: &Table,
    locate: &Locate,
    fallback: &str,
) -> Result<T, String> {
    let text = toml::to_string(table).map_err(|e| format!("{fallback}: {e}"))?;
    toml::from_str::<T>(&text).map_err(|e| {
        let message = e.message().trim().to_string();
        let at = e.span().map(|s| s.start);
        // The deepest key or value whose span holds the error.
        let path: Path_ = at
            .and_then(|at| {
                spans(&text)
                    .into_iter()
                    .filter(|(_, k, v)| k.contains(&at) || v.contains(&at) || k.start == at)
                    .max_by_key(|(p, _, _)| p.len())
                    .map(|(p, _, _)| p)
            })
            .unwrap_or_default();
        let mut target: Path_ = path
            .iter()
            .filter(|p| !p.starts_with('['))
            .cloned()
            .collect();
        let unknown = message.strip_prefix("unknown field `").map(|rest| {
            let key = rest.split('`').next().unwrap_or("").to_string();
            let valid: Vec<String> = rest
                .split('`')
                .skip(1)
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s.to_string())
                .collect();
            (key, valid)
        });
        if let Some((key, _)) = &unknown {
            if target.last() != Some(key) {
                target.push(key.clone());
            }
        }
        let (loc, name) = match locate(&target) {
            Some((l, n)) => (l.to_string(), n),
            None => (fallback.to_string(), show(&target)),
        };
        if let Some((key, valid)) = &unknown {
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            return unknown_key(&loc, &name, key, &valid);
        }
        if name.is_empty() {
            format!("{loc}: {message}")
        } else {
            format!("{loc}: {name}: {message}")
        }
    })
}

/// Range checks serde cannot make (run-config path, message).
fn range_problems(c: &TrainConfig) -> Vec<(Path_, String)> {
    let mut out = Vec::new();
    let p = |s: &str| s.split('.').map(String::from).collect::<Path_>();
    let fraction = |v: f64| (0.0..1.0).contains(&v);
    if let Err(e) = c.model.validate() {
        let field = match &e {
            ionode_model::ModelError::Config { field, .. } => format!("model.{field}"),
            _ => "model".to_string(),
        };
        out.push((p(&field), e.to_string()));
    }
    for (name, stage) in [("pretrain", &c.pretrain), ("finetune", &c.finetune)] {
        let Some(s) = stage else { continue };
        if s.epochs == 0 {
            out.push((p(&format!("{name}.epochs")), "must be at least 1".into()));
        }
        if s.batch_size == 0 {
            out.push((
                p(&format!("{name}.batch_size")),
                "must be at least 1".into(),
            ));
        }
        if !(s.learning_rate > 0.0 && s.learning_rate.is_finite()) {
            out.push((
                p(&format!("{name}.learning_rate")),
                format!("{} is not > 0", s.learning_rate),
            ));
        }
        if let Some(clip) = s.clip_norm {
            if clip.is_nan() || clip <= 0.0 {
                out.push((
                    p(&format!("{name}.clip_norm")),
                    format!("{clip} is not > 0"),
                ));
            }
        }
        if let Some(why) = s.schedule.problem() {
            out.push((p(&format!("{name}.schedule.final_fraction")), why));
        }
    }
    for (name, v) in [
        (
            "data.pretrain_validation_fraction",
            c.data.pretrain_validation_fraction,
        ),
        ("data.pretrain_test_fraction", c.data.pretrain_test_fraction),
    ] {
        if !fraction(v) {
            out.push((p(name), format!("{v} is not a fraction in [0, 1)")));
        }
    }
    if c.data.pretrain_max_feeds == Some(0) {
        out.push((p("data.pretrain_max_feeds"), "must be at least 1".into()));
    }
    use ionode_train::split::SplitSpec;
    match &c.split {
        Some(SplitSpec::Random {
            test_fraction,
            validation_fraction,
        })
        | Some(SplitSpec::FirstN {
            test_fraction,
            validation_fraction,
            ..
        }) => {
            for (name, v) in [
                ("split.test_fraction", *test_fraction),
                ("split.validation_fraction", *validation_fraction),
            ] {
                if !fraction(v) {
                    out.push((p(name), format!("{v} is not a fraction in [0, 1)")));
                }
            }
        }
        Some(SplitSpec::ByFamily {
            validation_fraction,
            ..
        }) if !fraction(*validation_fraction) => {
            out.push((
                p("split.validation_fraction"),
                format!("{validation_fraction} is not a fraction in [0, 1)"),
            ));
        }
        _ => {}
    }
    if let Some(SplitSpec::FirstN { n_train: 0, .. }) = &c.split {
        out.push((p("split.n_train"), "must be at least 1".into()));
    }
    out
}

/// Parts of a config a method does not use are reset, so that runs that differ only there
/// are one run (dspmde_fit ignores the model axes and the stages; neural methods ignore the
/// calibration).
fn normalise(c: &mut TrainConfig) -> Vec<&'static str> {
    match c.method {
        Method::DspmdeFit => {
            c.model = Default::default();
            c.pretrain = None;
            c.finetune = None;
            c.data.pretrain = None;
            c.data.pretrain_max_feeds = None;
            c.data.pretrain_validation_fraction = 0.1;
            c.data.pretrain_test_fraction = 0.1;
            vec!["model", "pretrain", "finetune", "data.pretrain"]
        }
        Method::Neural => {
            c.calibration = Default::default();
            vec!["calibration"]
        }
    }
}

fn get_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// Loads, checks and expands a manifest. `results` is the results root (for the study's
/// generated data path, which is `$STUDY/...` in the configs).
pub fn load(path: &Path) -> Result<Manifest, Problems> {
    let name = path.display().to_string();
    let mut locs = Locations::default();
    let merged = load_merged(path, Path::new(""), &mut locs, 0)?;
    let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let at = |p: &[&str]| {
        let p: Path_ = p.iter().map(|s| s.to_string()).collect();
        locs.find(&p).map_or(name.clone(), |l| l.to_string())
    };
    let mut problems = Vec::new();

    for key in merged.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            problems.push(unknown_key(&at(&[key]), key, key, TOP_KEYS));
        }
    }
    // study
    let study = match merged.get("study") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            s.clone()
        }
        Some(v) => {
            problems.push(format!(
                "{}: study: expected a name of letters, digits, '_' and '-', found {v}",
                at(&["study"])
            ));
            String::new()
        }
        None => {
            problems.push(format!("{name}: missing key 'study' (the study's name)"));
            String::new()
        }
    };
    let seed = match merged.get("seed") {
        None => 0,
        Some(Value::Integer(i)) if *i >= 0 => *i as u64,
        Some(v) => {
            problems.push(format!(
                "{}: seed: expected a non-negative integer, found {v}",
                at(&["seed"])
            ));
            0
        }
    };
    let seeds: Vec<u64> = match merged.get("seeds") {
        None => vec![0],
        Some(Value::Integer(n)) if *n >= 1 => (0..*n as u64).collect(),
        Some(Value::Integer(n)) => {
            problems.push(format!(
                "{}: seeds: {n} is out of range (expected a count >= 1 or a list of seeds)",
                at(&["seeds"])
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
                    _ => problems.push(format!(
                        "{}: seeds[{i}]: expected a distinct non-negative integer, found {v}",
                        at(&["seeds", &format!("[{i}]")])
                    )),
                }
            }
            out
        }
        Some(v) => {
            problems.push(format!(
                "{}: seeds: expected a count >= 1 or a non-empty list of seeds, found {v}",
                at(&["seeds"])
            ));
            vec![]
        }
    };
    let metrics: Vec<String> = match merged.get("metrics") {
        None => METRICS.iter().map(|s| s.to_string()).collect(),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v.as_str() {
                    Some(m) if METRICS.contains(&m) => out.push(m.to_string()),
                    Some(m) => problems.push(unknown_key(
                        &at(&["metrics", &format!("[{i}]")]),
                        &format!("metrics[{i}] = \"{m}\""),
                        m,
                        METRICS,
                    )),
                    None => problems.push(format!(
                        "{}: metrics[{i}]: expected a string, found {v}",
                        at(&["metrics", &format!("[{i}]")])
                    )),
                }
            }
            out
        }
        Some(v) => {
            problems.push(format!(
                "{}: metrics: expected an array of metric names, found {v}",
                at(&["metrics"])
            ));
            vec![]
        }
    };

    // datasets
    let mut generator: Option<GeneratorSpec> = None;
    let mut data_overrides: Vec<(&str, Value)> = Vec::new();
    let check_file = |file: &str, loc: String, problems: &mut Vec<String>| {
        let p = dir.join(file);
        if !p.exists() {
            problems.push(format!("{loc}: dataset file '{}' not found", p.display()));
        }
    };
    match merged.get("datasets") {
        None => {}
        Some(Value::Table(t)) => {
            for key in t.keys() {
                if !DATASET_KEYS.contains(&key.as_str()) {
                    problems.push(unknown_key(
                        &at(&["datasets", key]),
                        &format!("datasets.{key}"),
                        key,
                        DATASET_KEYS,
                    ));
                }
            }
            match t.get("pretrain") {
                None => {}
                Some(Value::String(file)) => {
                    check_file(file, at(&["datasets", "pretrain"]), &mut problems);
                    data_overrides.push(("pretrain", Value::String(file.clone())));
                }
                Some(Value::Table(g)) => {
                    let locate = |p: &[String]| {
                        let mut q: Path_ = vec!["datasets".into(), "pretrain".into()];
                        q.extend_from_slice(p);
                        locs.find(&q).map(|l| (l, show(&q)))
                    };
                    match typed::<GeneratorSpec>(g, &locate, &name) {
                        Ok(spec) => {
                            let db = ionode_physics::IonDb::builtin();
                            let args = spec.args(PathBuf::new(), None);
                            if let Err(e) = crate::commands::simulate::config(&args, &db) {
                                problems.push(format!(
                                    "{}: datasets.pretrain: {}",
                                    at(&["datasets", "pretrain"]),
                                    crate::commands::one_line(&e)
                                ));
                            }
                            data_overrides.push((
                                "pretrain",
                                Value::String(format!("{STUDY_PREFIX}data/{}", spec.file_name())),
                            ));
                            generator = Some(spec);
                        }
                        Err(e) => problems.push(e),
                    }
                }
                Some(v) => problems.push(format!(
                    "{}: datasets.pretrain: expected a file name or a generator table, found {v}",
                    at(&["datasets", "pretrain"])
                )),
            }
            match t.get("measured") {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, v) in items.iter().enumerate() {
                        let loc = at(&["datasets", "measured", &format!("[{i}]")]);
                        match v.as_str() {
                            Some(file) => check_file(file, loc, &mut problems),
                            None => problems.push(format!(
                                "{loc}: datasets.measured[{i}]: expected a file name, found {v}"
                            )),
                        }
                    }
                    data_overrides.push(("measured", Value::Array(items.clone())));
                }
                Some(v) => problems.push(format!(
                    "{}: datasets.measured: expected an array of file names, found {v}",
                    at(&["datasets", "measured"])
                )),
            }
        }
        Some(v) => problems.push(format!(
            "{}: datasets: expected a table, found {v}",
            at(&["datasets"])
        )),
    }

    // base
    let mut base = match merged.get("base") {
        Some(Value::Table(t)) => t.clone(),
        None => Table::new(),
        Some(v) => {
            problems.push(format!(
                "{}: base: expected a table (the run config), found {v}",
                at(&["base"])
            ));
            Table::new()
        }
    };
    // Paths written in [base.data] are checked like [datasets].
    if let Some(Value::Table(d)) = base.get("data") {
        if let Some(Value::String(f)) = d.get("pretrain") {
            check_file(f, at(&["base", "data", "pretrain"]), &mut problems);
        }
        if let Some(Value::Array(items)) = d.get("measured") {
            for (i, v) in items.iter().enumerate() {
                if let Some(f) = v.as_str() {
                    check_file(
                        f,
                        at(&["base", "data", "measured", &format!("[{i}]")]),
                        &mut problems,
                    );
                }
            }
        }
    }
    let mut overrides: Vec<(Path_, Path_)> = Vec::new();
    for (key, value) in data_overrides {
        set_path(&mut base, &["data", key], value);
        overrides.push((
            vec!["data".into(), key.into()],
            vec!["datasets".into(), key.into()],
        ));
    }
    // The seed is the plan's; a placeholder keeps the config complete.
    base.insert("seed".into(), Value::Integer(0));

    // Axes: (path, values, manifest path of each value).
    type Axis = (String, Vec<Value>, Vec<Path_>);
    let mut grid: Vec<Axis> = Vec::new();
    match merged.get("grid") {
        None => {}
        Some(Value::Table(t)) => {
            for (axis, values) in t {
                let here = vec!["grid".to_string(), axis.clone()];
                match values {
                    Value::Array(items) if !items.is_empty() => {
                        let paths = (0..items.len())
                            .map(|i| {
                                let mut p = here.clone();
                                p.push(format!("[{i}]"));
                                p
                            })
                            .collect();
                        grid.push((axis.clone(), items.clone(), paths));
                    }
                    _ => problems.push(format!(
                        "{}: grid.\"{axis}\": expected a non-empty array of values",
                        at(&["grid", axis])
                    )),
                }
            }
        }
        Some(v) => problems.push(format!(
            "{}: grid: expected a table of axes, found {v}",
            at(&["grid"])
        )),
    }
    let mut random_points: Vec<Vec<(String, Value, Path_)>> = vec![vec![]];
    match merged.get("random") {
        None => {}
        Some(Value::Table(t)) => {
            let samples = match t.get("samples") {
                Some(Value::Integer(n)) if *n >= 1 => *n as u64,
                other => {
                    problems.push(format!(
                        "{}: random.samples: expected a count >= 1, found {}",
                        at(&["random", "samples"]),
                        other.map_or("nothing".to_string(), |v| v.to_string())
                    ));
                    0
                }
            };
            let mut axes: Vec<(String, Dist)> = Vec::new();
            for (axis, spec) in t.iter().filter(|(k, _)| *k != "samples") {
                let Value::Table(spec_t) = spec else {
                    problems.push(format!(
                        "{}: random.\"{axis}\": expected a table {{ dist = ..., ... }}",
                        at(&["random", axis])
                    ));
                    continue;
                };
                let locate = |p: &[String]| {
                    let mut q: Path_ = vec!["random".into(), axis.clone()];
                    q.extend_from_slice(p);
                    locs.find(&q).map(|l| (l, show(&q)))
                };
                match typed::<Dist>(spec_t, &locate, &name) {
                    Ok(d) => {
                        let bad = match &d {
                            Dist::Uniform { min, max } => {
                                min.partial_cmp(max) != Some(std::cmp::Ordering::Less)
                            }
                            Dist::LogUniform { min, max } => {
                                *min <= 0.0
                                    || min.partial_cmp(max) != Some(std::cmp::Ordering::Less)
                            }
                            Dist::IntUniform { min, max } => min > max,
                            Dist::Choice { values } => values.is_empty(),
                        };
                        if bad {
                            problems.push(format!(
                                "{}: random.\"{axis}\": out of range (need min < max, min > 0 for log_uniform, a non-empty choice)",
                                at(&["random", axis])
                            ));
                        }
                        axes.push((axis.clone(), d));
                    }
                    Err(e) => problems.push(e),
                }
            }
            random_points = (0..samples)
                .map(|k| {
                    let mut rng = Rng::new(stream_seed(seed ^ RANDOM_SALT, k));
                    axes.iter()
                        .map(|(axis, d)| {
                            let v = match d {
                                Dist::Uniform { min, max } => {
                                    Value::Float(min + (max - min) * rng.uniform())
                                }
                                Dist::LogUniform { min, max } => {
                                    Value::Float(rng.log_uniform(*min, *max))
                                }
                                Dist::IntUniform { min, max } => Value::Integer(
                                    min + rng.int_inclusive(0, (max - min) as usize) as i64,
                                ),
                                Dist::Choice { values } => {
                                    values[rng.int_inclusive(0, values.len() - 1)].clone()
                                }
                            };
                            (axis.clone(), v, vec!["random".to_string(), axis.clone()])
                        })
                        .collect()
                })
                .collect();
        }
        Some(v) => problems.push(format!(
            "{}: random: expected a table, found {v}",
            at(&["random"])
        )),
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }

    // Expand: grid points (first axis slowest) x random points x seeds.
    let mut points: Vec<Vec<(String, Value, Path_)>> = vec![vec![]];
    for (axis, values, paths) in &grid {
        let mut next = Vec::new();
        for p in &points {
            for (v, at) in values.iter().zip(paths) {
                let mut q = p.clone();
                q.push((axis.clone(), v.clone(), at.clone()));
                next.push(q);
            }
        }
        points = next;
    }
    let points: Vec<Vec<(String, Value, Path_)>> = points
        .iter()
        .flat_map(|g| {
            random_points.iter().map(move |r| {
                let mut q = g.clone();
                q.extend(r.iter().cloned());
                q
            })
        })
        .collect();

    let mut runs: Vec<PlannedRun> = Vec::new();
    let mut seen_errors = std::collections::HashSet::new();
    let mut checked: HashMap<String, ()> = HashMap::new();
    for point in &points {
        let mut table = base.clone();
        let mut ov = overrides.clone();
        for (axis, value, at) in point {
            let keys: Vec<&str> = axis.split('.').collect();
            set_path(&mut table, &keys, value.clone());
            ov.push((keys.iter().map(|s| s.to_string()).collect(), at.clone()));
        }
        let origin = ConfigOrigin {
            locs: &locs,
            overrides: ov,
        };
        let locate = |p: &[String]| origin.locate(p);
        let mut config: TrainConfig = match typed(&table, &locate, &name) {
            Ok(c) => c,
            Err(e) => {
                if seen_errors.insert(e.clone()) {
                    problems.push(e);
                }
                continue;
            }
        };
        for (path, message) in range_problems(&config) {
            let (loc, shown) = origin
                .locate(&path)
                .map_or((name.clone(), show(&path)), |(l, n)| (l.to_string(), n));
            let e = format!("{loc}: {shown}: {message}");
            if seen_errors.insert(e.clone()) {
                problems.push(e);
            }
        }
        if config.data.pretrain.is_none() && config.data.measured.is_empty() {
            let e =
                format!("{name}: the runs name no pretrain set and no measured files ([datasets])");
            if seen_errors.insert(e.clone()) {
                problems.push(e);
            }
        }
        let ignored = normalise(&mut config);
        for &replicate in &seeds {
            config.seed = replicate;
            let json = serde_json::to_value(&config).expect("configs serialise");
            let text = serde_json::to_string(&json).expect("JSON serialises");
            let id = provenance::text_hash(&format!("{text}\nseed={replicate}"));
            if checked.insert(id.clone(), ()).is_some() {
                continue;
            }
            let run_seed = stream_seed(seed ^ RUN_SEED_SALT, replicate);
            let mut resolved = json.clone();
            resolved["seed"] = serde_json::json!(run_seed);
            let mut axes = serde_json::Map::new();
            for (axis, _, _) in point {
                let skip = ignored
                    .iter()
                    .any(|i| axis == i || axis.starts_with(&format!("{i}.")));
                let v = if skip {
                    serde_json::Value::Null
                } else {
                    get_path(&json, axis)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null)
                };
                axes.insert(axis.clone(), v);
            }
            axes.insert("seed".into(), serde_json::json!(replicate));
            runs.push(PlannedRun {
                index: runs.len(),
                id,
                seed: replicate,
                run_seed,
                method: json["method"].as_str().unwrap_or("neural").to_string(),
                axes,
                config: resolved,
            });
        }
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let merged_json = serde_json::to_string(&merged).expect("TOML values serialise as JSON");
    let plan = Plan {
        study: study.clone(),
        manifest: name,
        manifest_hash: provenance::text_hash(&merged_json),
        seed,
        metrics,
        pretrain_generator: generator,
        runs,
    };
    Ok(Manifest {
        path: path.to_path_buf(),
        study,
        plan,
    })
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

    #[test]
    fn suggestions_are_close_keys_only() {
        assert_eq!(distance("hiden", "hidden"), 1);
        assert_eq!(suggest("hiden", ["hidden", "layers"]), Some("hidden"));
        assert_eq!(suggest("zzzzzzzz", ["seed", "study"]), None);
    }

    #[test]
    fn paths_are_shown_as_written() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            show(&p(&["grid", "model.variant", "[1]", "kind"])),
            "grid.\"model.variant\"[1].kind"
        );
        assert_eq!(show(&p(&["base", "model", "hidden"])), "base.model.hidden");
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

    #[test]
    fn includes_merge_tables_key_by_key() {
        let mut a: Table = toml::from_str("[base.model]\nhidden = 8\nlayers = 2\n").unwrap();
        let b: Table = toml::from_str("[base.model]\nhidden = 16\n").unwrap();
        merge(&mut a, b);
        assert_eq!(a["base"]["model"]["hidden"], Value::Integer(16));
        assert_eq!(a["base"]["model"]["layers"], Value::Integer(2));
        assert_eq!(line_col("a\nbc\n", 4), (2, 3));
    }
}
