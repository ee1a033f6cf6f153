//! One run with its inputs read from files: the program's side of
//! [`ionode_train::run::run`]. The run itself is a pure function of its config, seed and
//! data; this module reads the data (through a [`DataCache`], so a sweep's hundreds of runs
//! parse each file once and share read-only data between worker threads), records the
//! input files' hashes, and hands the rest to the train crate. `ablate train` writes the
//! outcome as JSON and CSV files, `ablate run` as one `run.h5` per run.

use crate::errors::{Context, Result};
use crate::{provenance, tabular};
use ionode_physics::IonDb;
use ionode_train::checked::Checked;
use ionode_train::data::Samples;
use ionode_train::measured::{parse_csv, LoadOptions};
use ionode_train::run::{RunConfig, RunInputs, RunOutcome, SharedPretraining};
use ionode_train::trainer::EpochReport;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A simulated file over some slots.
type SimulatedKey = (PathBuf, Vec<String>);
/// Measured files, the balancing ion and the slots.
type MeasuredKey = (Vec<PathBuf>, Option<String>, Vec<String>);

/// Parsed input data and pre-trainings, shared by the runs of one process. Keys include
/// the slots (and the balancing ion), since the same file gives different samples over
/// different slots.
#[derive(Default)]
pub struct DataCache {
    simulated: Mutex<HashMap<SimulatedKey, Arc<(Samples, usize)>>>,
    measured: Mutex<HashMap<MeasuredKey, Arc<Option<Samples>>>>,
    hashes: Mutex<HashMap<PathBuf, String>>,
    pretrained: SharedPretraining,
}

impl DataCache {
    fn simulated(&self, path: &Path, slots: &[&str]) -> Result<Arc<(Samples, usize)>> {
        let key = (
            path.to_path_buf(),
            slots.iter().map(|s| s.to_string()).collect(),
        );
        // The lock is held while loading: two workers never parse the same file twice.
        let mut map = self
            .simulated
            .lock()
            .map_err(|_| crate::failed!("data cache poisoned"))?;
        if let Some(hit) = map.get(&key) {
            return Ok(hit.clone());
        }
        let data = crate::simfile::read(path)?;
        let loaded = Samples::from_simulation(&data, slots)
            .with_context(|| format!("pre-training set '{}'", path.display()))?;
        let loaded = Arc::new(loaded);
        map.insert(key, loaded.clone());
        Ok(loaded)
    }

    pub fn measured(
        &self,
        paths: &[PathBuf],
        balance_with: &Option<String>,
        slots: &[&str],
        db: &IonDb,
    ) -> Result<Arc<Option<Samples>>> {
        let key = (
            paths.to_vec(),
            balance_with.clone(),
            slots.iter().map(|s| s.to_string()).collect(),
        );
        let mut map = self
            .measured
            .lock()
            .map_err(|_| crate::failed!("data cache poisoned"))?;
        if let Some(hit) = map.get(&key) {
            return Ok(hit.clone());
        }
        let loaded = Arc::new(read_measured(paths, balance_with, slots, db)?);
        map.insert(key, loaded.clone());
        Ok(loaded)
    }

    /// The content hash of an input file (provenance), computed once per process.
    pub fn file_hash(&self, path: &Path) -> Result<String> {
        let mut map = self
            .hashes
            .lock()
            .map_err(|_| crate::failed!("data cache poisoned"))?;
        if let Some(hit) = map.get(path) {
            return Ok(hit.clone());
        }
        let hash = provenance::file_hash(path)?;
        map.insert(path.to_path_buf(), hash.clone());
        Ok(hash)
    }
}

/// Measured files as one sample set over the model's slots.
fn read_measured(
    paths: &[PathBuf],
    balance_with: &Option<String>,
    slots: &[&str],
    db: &IonDb,
) -> Result<Option<Samples>> {
    let options = LoadOptions {
        balance_with: balance_with.clone(),
        ..LoadOptions::default()
    };
    let mut parts = Vec::new();
    for path in paths {
        let text = tabular::read_text(path)?;
        let name = path.display().to_string();
        let data = parse_csv(&text, &name, &options, db)
            .map_err(|e| crate::usage!("{}", e.lines().join("; ")))?;
        if let Some(note) = data.unconverted_note() {
            tracing::warn!("{note}");
        }
        parts.push(
            Samples::from_measured(&data, slots)
                .with_context(|| format!("measured data '{name}'"))?,
        );
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(Samples::concat(&parts)?))
}

/// A run and the content hash of each of its input files (path as in the config ->
/// hash).
pub struct Executed {
    pub outcome: RunOutcome,
    pub inputs: std::collections::BTreeMap<String, String>,
}

/// Reads a config's data (paths as given) and runs it with `seed`; `on_epoch` sees every
/// epoch of every stage this run trains.
pub fn execute(
    config: &Checked<RunConfig>,
    seed: u64,
    threads: usize,
    cache: &DataCache,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Executed> {
    let db = IonDb::builtin();
    let slot_names: Vec<String> = config.model.slots.iter().map(|s| s.name.clone()).collect();
    let slots: Vec<&str> = slot_names.iter().map(String::as_str).collect();
    let pretrain = match &config.data.pretrain {
        Some(path) => {
            let loaded = cache.simulated(path, &slots)?;
            tracing::info!(
                rows = loaded.0.len(),
                skipped = loaded.1,
                "pre-training set loaded"
            );
            Some(loaded)
        }
        None => None,
    };
    let measured = cache.measured(
        &config.data.measured,
        &config.data.balance_with,
        &slots,
        &db,
    )?;
    let mut inputs = std::collections::BTreeMap::new();
    for path in config.data.pretrain.iter().chain(&config.data.measured) {
        inputs.insert(path.display().to_string(), cache.file_hash(path)?);
    }
    let run_inputs = RunInputs {
        pretrain: pretrain.as_ref().map(|p| &p.0),
        measured: measured.as_ref().as_ref(),
        threads,
    };
    let outcome = ionode_train::run::run(config, seed, run_inputs, &cache.pretrained, on_epoch)?;
    Ok(Executed { outcome, inputs })
}
