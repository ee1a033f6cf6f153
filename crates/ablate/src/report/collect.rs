//! Reading a study's finished runs (`DIR/runs/<run-id>/run.h5` next to a `DONE` marker).
//!
//! Only the small things (root attributes, metrics, learning curves) are read for every
//! run; predictions and attention maps are read on demand for the few runs a figure shows,
//! so a study of thousands of runs does not hold every prediction in memory. A run folder
//! without `DONE` is a run that is still going or was interrupted: it is skipped and
//! counted, never read, because its `run.h5` may be incomplete.

use crate::{h5, store};
use anyhow::{anyhow, bail, Context, Result};
use hdf5::types::{VarLenAscii, VarLenUnicode};
use hdf5_metno as hdf5;
use ndarray::Array3;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One learning curve stage (`curves/<stage>`).
#[derive(Debug, Clone, Default)]
pub struct Curve {
    pub train: Vec<f64>,
    pub validation: Vec<f64>,
}

/// The summary of one finished run.
#[derive(Debug, Clone)]
pub struct Run {
    pub path: PathBuf,
    pub run_id: String,
    pub plan_index: Option<u64>,
    pub manifest_hash: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub method: String,
    pub synthetic: bool,
    /// Axis path -> value of this run (includes `seed`).
    pub axes: BTreeMap<String, Value>,
    /// `metrics_json`: stage -> part -> metrics.
    pub metrics: Value,
    pub seconds_total: Option<f64>,
    pub seconds_pretrain: Option<f64>,
    pub seconds_finetune: Option<f64>,
    /// Stage name (`pretrain`, `finetune`) -> curve.
    pub curves: BTreeMap<String, Curve>,
    pub has_predictions: bool,
    pub has_attention: bool,
}

impl Run {
    /// A metric of the `measured` (or `pretrain`) stage, e.g. `("measured", "test", "mae")`;
    /// `None` when absent or null.
    pub fn metric(&self, stage: &str, part: &str, name: &str) -> Option<f64> {
        self.metrics
            .get(stage)?
            .get(part)?
            .get(name)?
            .as_f64()
            .filter(|v| v.is_finite())
    }

    /// Per-ion test metric of the `measured` stage: species -> value.
    pub fn per_ion(&self, part: &str, name: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let list = self
            .metrics
            .get("measured")
            .and_then(|m| m.get(part))
            .and_then(|p| p.get("per_ion"))
            .and_then(Value::as_array);
        for entry in list.into_iter().flatten() {
            if let (Some(species), Some(v)) = (
                entry.get("species").and_then(Value::as_str),
                entry.get(name).and_then(Value::as_f64),
            ) {
                out.insert(species.to_string(), v);
            }
        }
        out
    }

    /// The seed of the run (`axes.seed`), if any.
    pub fn seed(&self) -> Option<&Value> {
        self.axes.get("seed")
    }
}

/// The finished runs of a study and what was skipped.
#[derive(Debug)]
pub struct Study {
    pub dir: PathBuf,
    pub runs: Vec<Run>,
    /// Run folders without a `DONE` marker.
    pub skipped: Vec<PathBuf>,
    /// Runs marked DONE whose file is damaged or unreadable: (run id, why). They are left
    /// out of every table and figure, and named.
    pub damaged: Vec<(String, String)>,
}

impl Study {
    /// Whether any run was made from synthetic data (then every caption says so).
    pub fn synthetic(&self) -> bool {
        self.runs.iter().any(|r| r.synthetic)
    }

    /// The distinct git commits of the runs (`+dirty` marks a dirty tree), sorted.
    pub fn commits(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                if r.git_dirty {
                    format!("{}+dirty", r.git_commit)
                } else {
                    r.git_commit.clone()
                }
            })
            .collect();
        c.sort();
        c.dedup();
        c
    }

    /// The distinct manifest hashes, sorted.
    pub fn manifest_hashes(&self) -> Vec<String> {
        let mut h: Vec<String> = self.runs.iter().map(|r| r.manifest_hash.clone()).collect();
        h.sort();
        h.dedup();
        h
    }

    /// Every axis path over all runs, sorted (`seed` included).
    pub fn axes(&self) -> Vec<String> {
        let mut a: Vec<String> = self
            .runs
            .iter()
            .flat_map(|r| r.axes.keys().cloned())
            .collect();
        a.sort();
        a.dedup();
        a
    }
}

/// Reads every finished run of `dir` (the study folder holding `runs/`).
pub fn collect(dir: &Path) -> Result<Study> {
    if !dir.is_dir() {
        bail!("study folder '{}' does not exist", dir.display());
    }
    let runs_dir = dir.join("runs");
    if !runs_dir.is_dir() {
        bail!(
            "'{}' holds no runs: expected '{}' with one folder per run (made by `ablate run`)",
            dir.display(),
            runs_dir.display()
        );
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&runs_dir)
        .with_context(|| format!("cannot list '{}'", runs_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut damaged = Vec::new();
    for folder in folders {
        let id = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match store::state(dir, &id) {
            store::State::Done => {}
            store::State::Damaged(why) => {
                damaged.push((id, why));
                continue;
            }
            _ => {
                skipped.push(folder);
                continue;
            }
        }
        match read_run(&folder.join(store::RUN_FILE)) {
            Ok(run) => runs.push(run),
            // A file with the right checksum that still cannot be read (written by another
            // version, say) is named and skipped like a damaged one.
            Err(e) => damaged.push((id, format!("{e:#}"))),
        }
    }
    if runs.is_empty() {
        let damaged_text: Vec<String> = damaged
            .iter()
            .map(|(id, why)| format!("{id}: {why}"))
            .collect();
        bail!(
            "no finished runs in '{}' ({} run folder(s) without a DONE marker skipped, {} damaged{}{})",
            runs_dir.display(),
            skipped.len(),
            damaged.len(),
            if damaged.is_empty() { "" } else { ": " },
            damaged_text.join("; ")
        );
    }
    Ok(Study {
        dir: dir.to_path_buf(),
        runs,
        skipped,
        damaged,
    })
}

fn open(path: &Path) -> Result<hdf5::File> {
    hdf5::File::open(path).map_err(|e| {
        anyhow!(
            "cannot read run file '{}' (corrupt or not HDF5): {e}",
            path.display()
        )
    })
}

/// A string attribute; variable-length UTF-8 as written by `ablate`, ASCII accepted.
fn attr_string(file: &hdf5::File, path: &Path, name: &str) -> Result<String> {
    let attr = file
        .attr(name)
        .map_err(|_| anyhow!("'{}': missing attribute '{name}'", path.display()))?;
    if let Ok(v) = attr.read_scalar::<VarLenUnicode>() {
        return Ok(v.as_str().to_string());
    }
    attr.read_scalar::<VarLenAscii>()
        .map(|v| v.as_str().to_string())
        .map_err(|e| {
            anyhow!(
                "'{}': attribute '{name}' is not a string: {e}",
                path.display()
            )
        })
}

fn attr_f64(file: &hdf5::File, path: &Path, name: &str) -> Result<Option<f64>> {
    if !file.attr_names()?.iter().any(|n| n == name) {
        return Ok(None);
    }
    file.attr(name)
        .and_then(|a| a.read_scalar::<f64>())
        .map(Some)
        .map_err(|e| {
            anyhow!(
                "'{}': attribute '{name}' is not a number: {e}",
                path.display()
            )
        })
}

fn json_attr(file: &hdf5::File, path: &Path, name: &str) -> Result<Value> {
    let text = attr_string(file, path, name)?;
    serde_json::from_str(&text)
        .with_context(|| format!("'{}': attribute '{name}' is not JSON", path.display()))
}

/// Reads the summary of one run file.
pub fn read_run(path: &Path) -> Result<Run> {
    let file = open(path)?;
    let axes = match json_attr(&file, path, "axes_json")? {
        Value::Object(map) => map.into_iter().collect(),
        other => bail!(
            "'{}': attribute 'axes_json' must be a JSON object, found {other}",
            path.display()
        ),
    };
    let metrics = json_attr(&file, path, "metrics_json")?;
    if !metrics.is_object() {
        bail!(
            "'{}': attribute 'metrics_json' must be a JSON object",
            path.display()
        );
    }
    let plan_index = if file.attr_names()?.iter().any(|n| n == "plan_index") {
        Some(
            file.attr("plan_index")
                .and_then(|a| a.read_scalar::<u64>())
                .map_err(|e| anyhow!("'{}': attribute 'plan_index': {e}", path.display()))?,
        )
    } else {
        None
    };
    let mut curves = BTreeMap::new();
    if let Ok(group) = file.group("curves") {
        for stage in group.member_names()? {
            let g = group.group(&stage)?;
            let read = |name: &str| -> Result<Vec<f64>> {
                if !g.link_exists(name) {
                    return Ok(Vec::new());
                }
                g.dataset(name)
                    .and_then(|d| d.read_raw::<f64>())
                    .map_err(|e| anyhow!("'{}': curves/{stage}/{name}: {e}", path.display()))
            };
            curves.insert(
                stage.clone(),
                Curve {
                    train: read("train_loss")?,
                    validation: read("validation_loss")?,
                },
            );
        }
    }
    Ok(Run {
        path: path.to_path_buf(),
        run_id: attr_string(&file, path, "run_id")?,
        plan_index,
        manifest_hash: attr_string(&file, path, "manifest_hash")?,
        git_commit: attr_string(&file, path, "git_commit")?,
        git_dirty: attr_string(&file, path, "git_dirty")? == "true",
        method: attr_string(&file, path, "method")?,
        synthetic: attr_string(&file, path, "synthetic")? == "true",
        axes,
        metrics,
        seconds_total: attr_f64(&file, path, "seconds_total")?,
        seconds_pretrain: attr_f64(&file, path, "seconds_pretrain")?,
        seconds_finetune: attr_f64(&file, path, "seconds_finetune")?,
        curves,
        has_predictions: file.link_exists("predictions"),
        has_attention: file.link_exists("attention"),
    })
}

/// The `predictions/` group of a run: the same columns `runner` writes.
pub use ionode_train::run::Predictions;

pub fn read_predictions(path: &Path) -> Result<Predictions> {
    let file = open(path)?;
    let g = file
        .group("predictions")
        .map_err(|_| anyhow!("'{}': missing group 'predictions'", path.display()))?;
    let ctx = |what: &str| format!("'{}': predictions/{what}", path.display());
    let f64s = |name: &str| -> Result<Vec<f64>> {
        g.dataset(name)
            .and_then(|d| d.read_raw::<f64>())
            .map_err(|e| anyhow!("{}: {e}", ctx(name)))
    };
    let p = Predictions {
        part: h5::read_strings(&g, "part").with_context(|| ctx("part"))?,
        row: g
            .dataset("row")
            .and_then(|d| d.read_raw::<u64>())
            .map_err(|e| anyhow!("{}: {e}", ctx("row")))?,
        family: h5::read_strings(&g, "family").with_context(|| ctx("family"))?,
        ion: h5::read_strings(&g, "ion").with_context(|| ctx("ion"))?,
        jv_m_s: f64s("jv_m_s")?,
        feed_mol_m3: f64s("feed_mol_m3")?,
        target_permeate_mol_m3: f64s("target_permeate_mol_m3")?,
        predicted_permeate_mol_m3: f64s("predicted_permeate_mol_m3")?,
        target_rejection: f64s("target_rejection")?,
        predicted_rejection: f64s("predicted_rejection")?,
    };
    let n = p.ion.len();
    let lens = [
        p.part.len(),
        p.row.len(),
        p.family.len(),
        p.jv_m_s.len(),
        p.feed_mol_m3.len(),
        p.target_permeate_mol_m3.len(),
        p.predicted_permeate_mol_m3.len(),
        p.target_rejection.len(),
        p.predicted_rejection.len(),
    ];
    if lens.iter().any(|&l| l != n) {
        bail!(
            "'{}': the datasets of 'predictions' differ in length",
            path.display()
        );
    }
    Ok(p)
}

/// The `attention/` group of an attention-NODE run.
#[derive(Debug, Clone)]
pub struct Attention {
    /// Mean attention over the integration, [rows, species, species].
    pub mean: Array3<f64>,
    pub species: Vec<String>,
    pub family: Vec<String>,
}

/// Reads `attention/` of a run file.
pub fn read_attention(path: &Path) -> Result<Attention> {
    let file = open(path)?;
    let g = file
        .group("attention")
        .map_err(|_| anyhow!("'{}': missing group 'attention'", path.display()))?;
    let mean = g
        .dataset("mean")
        .and_then(|d| d.read::<f64, ndarray::Ix3>())
        .map_err(|e| anyhow!("'{}': attention/mean: {e}", path.display()))?;
    let species = h5::read_strings(&g, "species")
        .with_context(|| format!("'{}': attention/species", path.display()))?;
    let family = h5::read_strings(&g, "family")
        .with_context(|| format!("'{}': attention/family", path.display()))?;
    let (n, s1, s2) = mean.dim();
    if s1 != species.len() || s2 != species.len() || n != family.len() {
        bail!(
            "'{}': attention/mean is [{n}, {s1}, {s2}] but there are {} species and {} rows",
            path.display(),
            species.len(),
            family.len()
        );
    }
    Ok(Attention {
        mean,
        species,
        family,
    })
}
