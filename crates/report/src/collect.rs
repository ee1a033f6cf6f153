//! Reading a study's finished runs: the runs of its plan (`DIR/plan.json`) that are DONE
//! (`DIR/runs/<run-id>/run.h5` next to its `DONE` marker). The plan says which runs belong
//! to the study: a folder of an older, replaced plan or a copied folder is not one of them,
//! and a record whose run id is not its folder's is named and left out.
//!
//! A run's record is read from its cache (`record.json`, [`ionode_study::facts::record`]),
//! which keeps it whole as `run.h5` stores it: one small JSON file per run instead of an
//! HDF5 file, read in parallel. The cache is trusted when it names the checksum the run's
//! `DONE` marker recorded and `run.h5`'s present size and modification time; otherwise
//! `run.h5` is hashed, checked against the marker (a mismatch is a damaged run) and read,
//! and the cache made again. Predictions and attention maps are read from `run.h5` on
//! demand for the few runs a figure shows. A run folder without `DONE` is a run that is
//! still going or was interrupted: it is skipped and counted, never read, because its
//! `run.h5` may be incomplete.

use crate::error::{ReportError, Result};
use ionode_study::facts::{self, Caching};
use ionode_study::manifest::Plan;
use ionode_study::record::RunRecord;
use ionode_study::store;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

pub use ionode_study::record::{read_attention, read_predictions};
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
    /// The study's plan.
    pub plan: Plan,
    pub runs: Vec<Run>,
    /// Folders of the plan's runs without a `DONE` marker (running, interrupted, failed).
    pub skipped: Vec<PathBuf>,
    /// Folders under `runs/` that are no run of the plan (an older plan's, copies).
    pub foreign: Vec<String>,
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

/// Reads every finished run of the study in `dir` (the folder holding `plan.json` and
/// `runs/`); the caches it has to make are written as `caching` says.
pub fn collect(dir: &Path, caching: Caching) -> Result<Study> {
    if !dir.is_dir() {
        return Err(ReportError::Failed(format!(
            "study folder '{}' does not exist",
            dir.display()
        )));
    }
    let plan = Plan::read(dir)?;
    let runs_dir = dir.join("runs");
    // A TPE search's later runs are in its generation files, not the plan.
    let planned = ionode_study::tpe::study_runs(&plan, dir)?;
    let mut ids: Vec<&str> = planned.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    let mut damaged = Vec::new();
    let found: Vec<Found> = ids.par_iter().map(|&id| find(dir, id, caching)).collect();
    for (found, &id) in found.into_iter().zip(&ids) {
        match found {
            Found::Run(run) => runs.push(*run),
            Found::Damaged(why) => damaged.push((id.to_string(), why)),
            Found::Unfinished(folder) => skipped.push(folder),
            Found::NotStarted => {}
        }
    }
    let mut foreign: Vec<String> = std::fs::read_dir(&runs_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| ids.binary_search(&name.as_str()).is_err())
                .collect()
        })
        .unwrap_or_default();
    foreign.sort();
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
        return Err(ReportError::Failed(format!(
            "no finished runs in '{}' ({} of its {} planned runs started but not finished, {} damaged{}{})",
            runs_dir.display(),
            skipped.len(),
            ids.len(),
            damaged.len(),
            if damaged.is_empty() { "" } else { ": " },
            damaged_text.join("; ")
        )));
    }
    Ok(Study {
        dir: dir.to_path_buf(),
        plan,
        runs,
        skipped,
        foreign,
        damaged,
    })
}

/// What became of one planned run.
enum Found {
    Run(Box<Run>),
    /// Marked DONE, but its files are not the finished run's: why.
    Damaged(String),
    /// Started (its folder exists) but not finished.
    Unfinished(PathBuf),
    NotStarted,
}

/// The planned run `id` of the study in `dir`.
fn find(dir: &Path, id: &str, caching: Caching) -> Found {
    let folder = store::run_dir(dir, id);
    let Some(sum) = store::recorded_checksum(&folder, id) else {
        // No DONE marker ablate wrote for this run: the store says why (nothing to hash).
        return match store::state(dir, id) {
            store::State::Damaged(why) => Found::Damaged(why),
            _ if folder.is_dir() => Found::Unfinished(folder),
            _ => Found::NotStarted,
        };
    };
    let path = folder.join(store::RUN_FILE);
    if !path.exists() {
        return Found::Damaged(format!("it is marked DONE but has no {}", store::RUN_FILE));
    }
    match facts::record(&folder, Some(&sum), caching) {
        Ok((record, _)) if record.head.provenance.run_id != id => Found::Damaged(format!(
            "its {} is run {}'s (copied into this folder?)",
            store::RUN_FILE,
            record.head.provenance.run_id
        )),
        Ok((record, _)) => Found::Run(Box::new(Run { path, record })),
        // A file with the right checksum that still cannot be read (written by another
        // version, say) is named and skipped like a damaged one.
        Err(e) => Found::Damaged(format!("{e:#}")),
    }
}
