//! Reading a study's finished runs (`DIR/runs/<run-id>/run.h5` next to a `DONE` marker).
//!
//! Only the small things (root attributes, metrics, learning curves) are read for every
//! run; predictions and attention maps are read on demand for the few runs a figure shows,
//! so a study of thousands of runs does not hold every prediction in memory. A run folder
//! without `DONE` is a run that is still going or was interrupted: it is skipped and
//! counted, never read, because its `run.h5` may be incomplete.

use crate::record::{self, RunRecord};
use crate::store;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub use crate::record::{read_attention, read_predictions};
pub use ionode_train::run::{Attention, Predictions};

/// One finished run: its record and where it is.
#[derive(Debug, Clone)]
pub struct Run {
    pub path: PathBuf,
    pub record: RunRecord,
}

impl Run {
    /// The replicate seed: the study's `seed` axis, or the config's seed outside a study.
    pub fn seed(&self) -> u64 {
        self.record
            .head
            .axes
            .get("seed")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(self.record.head.config.seed)
    }

    /// The measured-data test MAE (the headline number).
    pub fn test_mae(&self) -> Option<f64> {
        self.measured("test", |m| m.mae)
    }

    /// A metric of the measured data's `part` (`train`, `validation`, `test`).
    pub fn measured(
        &self,
        part: &str,
        f: impl Fn(&ionode_train::metrics::Metrics) -> Option<f64>,
    ) -> Option<f64> {
        let split = self.record.metrics.measured.as_ref()?;
        let m = match part {
            "train" => &split.train,
            "validation" => &split.validation,
            _ => &split.test,
        };
        m.as_ref().and_then(f).filter(|v| v.is_finite())
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
    /// Whether any run was scored on synthetic data (then every caption says so).
    pub fn synthetic(&self) -> bool {
        self.runs.iter().any(|r| r.record.synthetic)
    }

    /// The distinct git commits of the runs (`+dirty` marks a dirty tree), sorted.
    pub fn commits(&self) -> Vec<String> {
        let mut c: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                let p = &r.record.head.provenance;
                match p.git_dirty {
                    Some(true) => format!("{}+dirty", p.git_commit),
                    _ => p.git_commit.clone(),
                }
            })
            .collect();
        c.sort();
        c.dedup();
        c
    }

    /// The distinct manifest hashes, sorted.
    pub fn manifest_hashes(&self) -> Vec<String> {
        let mut h: Vec<String> = self
            .runs
            .iter()
            .map(|r| r.record.head.provenance.manifest_hash.clone())
            .collect();
        h.sort();
        h.dedup();
        h
    }

    /// The first and last time a run was written (RFC 3339), if any run says.
    pub fn dates(&self) -> Option<(String, String)> {
        let mut t: Vec<&str> = self
            .runs
            .iter()
            .map(|r| r.record.head.provenance.created_utc.as_str())
            .collect();
        t.sort_unstable();
        Some((t.first()?.to_string(), t.last()?.to_string()))
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
        let path = folder.join(store::RUN_FILE);
        match record::read(&path) {
            Ok(record) => runs.push(Run { path, record }),
            // A file with the right checksum that still cannot be read (written by another
            // version, say) is named and skipped like a damaged one.
            Err(e) => damaged.push((id, format!("{e:#}"))),
        }
    }
    if runs.is_empty() {
        // The first few reasons (they are usually one reason many times).
        let mut damaged_text: Vec<String> = damaged
            .iter()
            .take(3)
            .map(|(id, why)| format!("{id}: {why}"))
            .collect();
        if damaged.len() > 3 {
            damaged_text.push(format!("and {} more", damaged.len() - 3));
        }
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
