//! One run, as a function: a resolved run config and its seed in, every result out
//! ([`RunOutcome`]). `ablate train` writes the outcome as JSON and CSV files; `ablate run`
//! writes it as one `run.h5` per run of a sweep. Keeping the run itself free of output
//! formats is what lets the two commands give the same numbers for the same config.
//!
//! Inputs are read through a [`DataCache`] so that a sweep's hundreds of runs parse each
//! data file once; cached data is shared read-only between worker threads.

use crate::commands::train::{read_simulation, Method, TrainConfig};
use crate::{provenance, tabular};
use anyhow::{anyhow, bail, Context, Result};
use ionode_autodiff::ParamStore;
use ionode_model::{Batch, Model, SavedParams, Variant};
use ionode_physics::IonDb;
use ionode_train::calibrate::dspmde_fit;
use ionode_train::data::Samples;
use ionode_train::error::TrainError;
use ionode_train::measured::{parse_csv, LoadOptions};
use ionode_train::metrics::{implausible, SplitMetrics};
use ionode_train::split::{Split, SplitSpec};
use ionode_train::trainer::{train_stage, EpochReport, StageReport};
use ndarray::{Array2, Array3};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A simulated file over some slots.
type SimulatedKey = (PathBuf, Vec<String>);
/// Measured files, the balancing ion and the slots.
type MeasuredKey = (Vec<PathBuf>, Option<String>, Vec<String>);

/// Parsed input data, shared by the runs of one process. Keys include the slots (and the
/// balancing ion), since the same file gives different samples over different slots.
#[derive(Default)]
pub struct DataCache {
    simulated: Mutex<HashMap<SimulatedKey, Arc<(Samples, usize)>>>,
    measured: Mutex<HashMap<MeasuredKey, Arc<Option<Samples>>>>,
    hashes: Mutex<HashMap<PathBuf, String>>,
    pretrained: Mutex<HashMap<String, PretrainCell>>,
}

/// What pre-training leaves behind. Runs whose model, pre-training settings, pre-training
/// data and seed agree compute the same bits, so a study's runs that differ only in what
/// comes after (the measured split, the fine-tuning, the constraint's effect downstream)
/// pre-train once per process and share the result.
#[derive(Debug, Clone)]
struct Pretrained {
    params: SavedParams,
    report: Option<StageReport>,
    metrics: serde_json::Value,
    domain: Option<Domain>,
}

/// One pre-training, computed by the first run that needs it while the others wait.
type PretrainCell = Arc<std::sync::OnceLock<std::result::Result<Pretrained, String>>>;

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
            .map_err(|_| anyhow!("data cache poisoned"))?;
        if let Some(hit) = map.get(&key) {
            return Ok(hit.clone());
        }
        let data = read_simulation(path)?;
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
            .map_err(|_| anyhow!("data cache poisoned"))?;
        if let Some(hit) = map.get(&key) {
            return Ok(hit.clone());
        }
        let loaded = Arc::new(read_measured(paths, balance_with, slots, db)?);
        map.insert(key, loaded.clone());
        Ok(loaded)
    }

    /// The pre-training of `key`, computed once per process by `compute`.
    fn pretrained(
        &self,
        key: String,
        compute: impl FnOnce() -> Result<Pretrained>,
    ) -> Result<Pretrained> {
        let cell = {
            let mut map = self
                .pretrained
                .lock()
                .map_err(|_| anyhow!("pre-training cache poisoned"))?;
            map.entry(key).or_default().clone()
        };
        cell.get_or_init(|| compute().map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow!("{e}"))
    }

    /// The content hash of an input file (provenance), computed once per process.
    pub fn file_hash(&self, path: &Path) -> Result<String> {
        let mut map = self
            .hashes
            .lock()
            .map_err(|_| anyhow!("data cache poisoned"))?;
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
            .map_err(|e| anyhow!("{}", e.lines().join("; ")))?;
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

/// One row per test sample and present ion, as columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    pub part: Vec<String>,
    pub row: Vec<u64>,
    /// The row's family as stored (empty if unlabelled).
    pub family: Vec<String>,
    pub ion: Vec<String>,
    pub jv_m_s: Vec<f64>,
    pub feed_mol_m3: Vec<f64>,
    pub target_permeate_mol_m3: Vec<f64>,
    pub predicted_permeate_mol_m3: Vec<f64>,
    pub target_rejection: Vec<f64>,
    pub predicted_rejection: Vec<f64>,
}

impl Predictions {
    /// Entries (sample, ion pairs).
    pub fn len(&self) -> usize {
        self.ion.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ion.is_empty()
    }

    fn of(samples: &Samples, rows: &[usize], predicted: &Array2<f64>, part: &str) -> Self {
        let mut p = Predictions::default();
        for &r in rows {
            for (s, ion) in samples.species.iter().enumerate() {
                if !samples.mask[[r, s]] {
                    continue;
                }
                let (feed, target, pred) = (
                    samples.feed_mol_m3[[r, s]],
                    samples.permeate_mol_m3[[r, s]],
                    predicted[[r, s]],
                );
                p.part.push(part.to_string());
                p.row.push(r as u64);
                p.family.push(samples.family[r].clone().unwrap_or_default());
                p.ion.push(ion.clone());
                p.jv_m_s.push(samples.flux_m_s[r]);
                p.feed_mol_m3.push(feed);
                p.target_permeate_mol_m3.push(target);
                p.predicted_permeate_mol_m3.push(pred);
                p.target_rejection.push(1.0 - target / feed);
                p.predicted_rejection.push(1.0 - pred / feed);
            }
        }
        p
    }

    /// The `predictions.csv` of `ablate train` (commas in family names become `;`).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "part,row,family,ion,jv_m_s,feed_mol_m3,target_permeate_mol_m3,predicted_permeate_mol_m3,target_rejection,predicted_rejection\n",
        );
        for k in 0..self.row.len() {
            out.push_str(&format!(
                "{},{},{},{},{:?},{:?},{:?},{:?},{:?},{:?}\n",
                self.part[k],
                self.row[k],
                self.family[k].replace(',', ";"),
                self.ion[k],
                self.jv_m_s[k],
                self.feed_mol_m3[k],
                self.target_permeate_mol_m3[k],
                self.predicted_permeate_mol_m3[k],
                self.target_rejection[k],
                self.predicted_rejection[k],
            ));
        }
        out
    }
}

/// Attention maps of the test rows (attention_node only).
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// `[N_test, S, S]` at the end of the integration.
    pub end: Array3<f64>,
    /// `[N_test, S, S]` averaged over the trajectory.
    pub mean: Array3<f64>,
    /// The test rows (indices into the scored sample set).
    pub rows: Vec<u64>,
    /// Slot names, in slot order.
    pub species: Vec<String>,
    /// Family per test row (empty if unlabelled).
    pub family: Vec<String>,
}

/// The model's learned state, or the calibrated baseline.
#[derive(Debug, Clone)]
pub enum Artefact {
    /// The trained parameters (neural methods).
    Params(SavedParams),
    /// The calibrated DSPM-DE (`dspmde_fit`).
    Calibration(Box<ionode_train::calibrate::DspmdeFit>),
}

impl Artefact {
    /// The artefact as the JSON a run keeps (`params.json`, `calibration.json`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Artefact::Params(p) => serde_json::to_value(p),
            Artefact::Calibration(f) => serde_json::to_value(f),
        }
        .expect("artefacts serialise")
    }

    /// A calibrated membrane in the membrane-file format (usable as `--membrane FILE`).
    pub fn membrane_file(&self, source: &str) -> Option<crate::membrane::MembraneFile> {
        match self {
            Artefact::Calibration(f) => Some(crate::membrane::MembraneFile::new(
                &f.membrane,
                "DSPM-DE membrane calibrated by a dspmde_fit run",
                source,
            )),
            Artefact::Params(_) => None,
        }
    }
}

/// What a run's model was trained on: the range of fluxes and temperatures of its training
/// and validation rows (every trained stage), so that applying it elsewhere
/// (`ablate predict`) can refuse to extrapolate silently.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Domain {
    /// [lowest, highest] water flux, m/s.
    pub flux_m_s: [f64; 2],
    /// [lowest, highest] temperature, K.
    pub temperature_k: [f64; 2],
}

impl Domain {
    /// The domain of some rows (`None` for no rows).
    pub fn of(samples: &Samples, rows: &[usize]) -> Option<Domain> {
        let range = |v: &mut dyn Iterator<Item = f64>| {
            v.fold(None, |acc: Option<[f64; 2]>, x| {
                Some(acc.map_or([x, x], |[lo, hi]| [lo.min(x), hi.max(x)]))
            })
        };
        Some(Domain {
            flux_m_s: range(&mut rows.iter().map(|&r| samples.flux_m_s[r]))?,
            temperature_k: range(&mut rows.iter().map(|&r| samples.temperature_k[r]))?,
        })
    }

    /// The smallest domain holding both.
    pub fn union(self, other: Domain) -> Domain {
        let u = |a: [f64; 2], b: [f64; 2]| [a[0].min(b[0]), a[1].max(b[1])];
        Domain {
            flux_m_s: u(self.flux_m_s, other.flux_m_s),
            temperature_k: u(self.temperature_k, other.temperature_k),
        }
    }
}

/// Wall-clock seconds of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub total: f64,
    pub pretrain: f64,
    pub finetune: f64,
}

/// Everything one run produces.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The `metrics.json` object: "pretrain"/"measured" -> train/validation/test metrics.
    pub metrics: serde_json::Value,
    /// Test predictions of the last scored data (measured, if any).
    pub predictions: Predictions,
    /// Loss curves per trained stage.
    pub curves: Vec<StageReport>,
    pub attention: Option<Attention>,
    pub artefact: Artefact,
    /// Input file path (as given in the config) -> content hash.
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// True when any input row is synthetic (simulated or surrogate-laboratory data).
    pub synthetic: bool,
    /// What the model was trained on (`None` if no stage trained).
    pub domain: Option<Domain>,
    pub timings: Timings,
}

/// Predictions of the neural model for every row, in chunks.
pub fn predict_neural(model: &Model, store: &ParamStore, samples: &Samples) -> Result<Array2<f64>> {
    let mut out = Array2::zeros(samples.feed_mol_m3.dim());
    let mut tape = ionode_autodiff::Tape::new();
    let rows: Vec<usize> = (0..samples.len()).collect();
    for chunk in rows.chunks(512) {
        let b = samples.to_batch_arrays(chunk);
        let pred = model.predict_with(&mut tape, store, &Batch::new(b.feed, b.mask, b.flux))?;
        for (k, &row) in chunk.iter().enumerate() {
            out.row_mut(row).assign(&pred.permeate_mol_m3.row(k));
        }
    }
    Ok(out)
}

/// The attention maps of some rows.
fn attention(
    model: &Model,
    store: &ParamStore,
    samples: &Samples,
    rows: &[usize],
) -> Result<Option<Attention>> {
    let s = samples.slots();
    let mut end = Array3::zeros((rows.len(), s, s));
    let mut mean = Array3::zeros((rows.len(), s, s));
    let mut tape = ionode_autodiff::Tape::new();
    let mut start = 0;
    for chunk in rows.chunks(512) {
        let b = samples.to_batch_arrays(chunk);
        let pred = model.predict_with(&mut tape, store, &Batch::new(b.feed, b.mask, b.flux))?;
        let (Some(e), Some(m)) = (pred.attention_end, pred.attention_mean) else {
            return Ok(None);
        };
        let range = ndarray::s![start..start + chunk.len(), .., ..];
        end.slice_mut(range).assign(&e);
        mean.slice_mut(range).assign(&m);
        start += chunk.len();
    }
    Ok(Some(Attention {
        end,
        mean,
        rows: rows.iter().map(|&r| r as u64).collect(),
        species: samples.species.clone(),
        family: rows
            .iter()
            .map(|&r| samples.family[r].clone().unwrap_or_default())
            .collect(),
    }))
}

/// Runs one config. `seed` overrides `config.seed` (a sweep derives it); `on_epoch` sees
/// every epoch of every trained stage. Paths in the config are used as given.
pub fn execute(
    config: &TrainConfig,
    seed: u64,
    cache: &DataCache,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<RunOutcome> {
    let start = Instant::now();
    config.model.validate().context("[model]")?;
    let db = IonDb::builtin();
    let slot_names: Vec<String> = config.model.slots.iter().map(|s| s.name.clone()).collect();
    let slots: Vec<&str> = slot_names.iter().map(String::as_str).collect();

    // Data.
    let pretrain = match &config.data.pretrain {
        Some(path) => {
            let loaded = cache.simulated(path, &slots)?;
            let (all, skipped) = (&loaded.0, loaded.1);
            let samples = match config.data.pretrain_max_feeds {
                Some(max) => {
                    let keep: Vec<usize> =
                        (0..all.len()).filter(|&i| all.origin[i] < max).collect();
                    all.subset(&keep)
                }
                None => all.clone(),
            };
            tracing::info!(rows = samples.len(), skipped, "pre-training set loaded");
            Some(samples)
        }
        None => None,
    };
    let measured = cache.measured(
        &config.data.measured,
        &config.data.balance_with,
        &slots,
        &db,
    )?;
    let measured: Option<&Samples> = measured.as_ref().as_ref();
    if pretrain.is_none() && measured.is_none() {
        bail!("[data] names no pretrain set and no measured files");
    }
    let measured_split: Option<Split> = match (measured, &config.split) {
        (Some(m), Some(spec)) => Some(spec.split(m, seed)?),
        (Some(_), None) => bail!("measured data needs a [split]"),
        _ => None,
    };
    let mut synthetic = false;
    let mut inputs = serde_json::Map::new();
    for path in config.data.pretrain.iter().chain(&config.data.measured) {
        inputs.insert(
            path.display().to_string(),
            serde_json::json!(cache.file_hash(path)?),
        );
    }
    if let Some(p) = &pretrain {
        synthetic |= p.synthetic.iter().any(|&s| s);
    }
    if let Some(m) = measured {
        synthetic |= m.synthetic.iter().any(|&s| s);
    }

    let mut curves: Vec<StageReport> = Vec::new();
    let mut metrics = serde_json::Map::new();
    let mut predictions = Predictions::default();
    let mut attention_maps = None;
    let mut domain: Option<Domain> = None;
    let mut pretrain_seconds: Option<f64> = None;

    let artefact = match config.method {
        Method::Neural => {
            let mut store = ParamStore::new();
            let model = Model::new(config.model.clone(), &mut store, seed)?;
            // Pre-training on held-out simulated feeds, then fine-tuning on the measured
            // split; each stage is optional and scored on its own data.
            let pretrain_split = match &pretrain {
                Some(samples) => Some(
                    SplitSpec::Random {
                        test_fraction: config.data.pretrain_test_fraction,
                        validation_fraction: config.data.pretrain_validation_fraction,
                    }
                    .split(samples, seed)?,
                ),
                None => None,
            };
            let stages = [
                (
                    "pretrain",
                    pretrain.as_ref(),
                    &pretrain_split,
                    &config.pretrain,
                ),
                ("measured", measured, &measured_split, &config.finetune),
            ];
            // Pre-training is shared by the runs of this process that agree on everything
            // it depends on, when a measured stage follows (a pre-training-only run keeps
            // its own test predictions and attention maps).
            let pretrain_key = serde_json::to_string(&(
                &config.model,
                &config.pretrain,
                &config.data.pretrain,
                config.data.pretrain_max_feeds,
                config.data.pretrain_validation_fraction,
                config.data.pretrain_test_fraction,
                seed,
            ))?;
            for (name, samples, split, stage) in stages {
                let (Some(samples), Some(split)) = (samples, split) else {
                    continue;
                };
                let scored_stage = |store: &mut ParamStore,
                                    on_epoch: &mut dyn FnMut(&EpochReport)|
                 -> Result<(Pretrained, Array2<f64>)> {
                    let mut report = None;
                    let mut stage_domain = None;
                    if let Some(stage) = stage {
                        let (train, validation) = (
                            samples.subset(&split.train),
                            samples.subset(&split.validation),
                        );
                        let rows: Vec<usize> = split
                            .train
                            .iter()
                            .chain(&split.validation)
                            .copied()
                            .collect();
                        stage_domain = Domain::of(samples, &rows);
                        let stage_name = if name == "pretrain" {
                            "pretrain"
                        } else {
                            "finetune"
                        };
                        report = Some(train_stage(
                            stage_name,
                            &model,
                            store,
                            &train,
                            &validation,
                            stage,
                            seed,
                            on_epoch,
                        )?);
                    }
                    let predicted = predict_neural(&model, store, samples)?;
                    if let Some(detail) = implausible(samples, predicted.view()) {
                        // A run whose loss went astronomically wrong without becoming NaN
                        // ends here, failed like a NaN, not DONE with meaningless metrics.
                        let last = report.as_ref().or(curves.last());
                        return Err(TrainError::Diverged {
                            stage: last.map_or(name.to_string(), |c| c.stage.clone()),
                            epoch: last.map_or(0, |c| c.epochs_run.saturating_sub(1)),
                            loss: last.map_or(f64::NAN, |c| c.best_validation_loss),
                            detail,
                        }
                        .into());
                    }
                    let scored = SplitMetrics::compute(samples, split, predicted.view())?;
                    let done = Pretrained {
                        params: SavedParams::from_store(store),
                        report,
                        metrics: serde_json::to_value(scored)?,
                        domain: stage_domain,
                    };
                    Ok((done, predicted))
                };
                let shared = name == "pretrain" && measured_split.is_some();
                let (done, predicted) = if shared {
                    let started = Instant::now();
                    let mut computed = false;
                    let done = cache.pretrained(pretrain_key.clone(), || {
                        computed = true;
                        scored_stage(&mut store, on_epoch).map(|(d, _)| d)
                    })?;
                    pretrain_seconds = Some(if computed {
                        started.elapsed().as_secs_f64()
                    } else {
                        0.0
                    });
                    // Computed by this run or by another: the same bits either way.
                    done.params
                        .load_into(&mut store)
                        .context("the shared pre-training")?;
                    (done, None)
                } else {
                    let (done, predicted) = scored_stage(&mut store, on_epoch)?;
                    (done, Some(predicted))
                };
                curves.extend(done.report.clone());
                metrics.insert(name.into(), done.metrics.clone());
                domain = match (domain, done.domain) {
                    (Some(a), Some(b)) => Some(a.union(b)),
                    (a, b) => a.or(b),
                };
                if let Some(predicted) = predicted {
                    // The test predictions of the last scored data (measured, if any).
                    let part = if name == "pretrain" {
                        "pretrain_test"
                    } else {
                        "test"
                    };
                    predictions = Predictions::of(samples, &split.test, &predicted, part);
                    if config.model.variant == Variant::AttentionNode {
                        attention_maps = attention(&model, &store, samples, &split.test)?;
                    }
                }
            }
            Artefact::Params(SavedParams::from_store(&store))
        }
        Method::DspmdeFit => {
            let (Some(samples), Some(split)) = (measured, &measured_split) else {
                bail!("method = \"dspmde_fit\" needs measured data and a [split]");
            };
            let ions = samples.slot_ions(&db)?;
            let train = samples.subset(&split.train);
            domain = Domain::of(samples, &split.train);
            let fit = dspmde_fit(&train, &ions, &config.calibration)?;
            let predicted = fit.predict(samples)?.permeate;
            metrics.insert(
                "measured".into(),
                serde_json::to_value(SplitMetrics::compute(samples, split, predicted.view())?)?,
            );
            predictions = Predictions::of(samples, &split.test, &predicted, "test");
            Artefact::Calibration(Box::new(fit))
        }
    };
    let stage_seconds = |name: &str| {
        curves
            .iter()
            .filter(|c| c.stage == name)
            .map(|c| c.seconds)
            .fold(0.0, |a, b| a + b)
    };
    let timings = Timings {
        total: start.elapsed().as_secs_f64(),
        // This run's own time: a pre-training shared with an earlier run costs it nothing.
        pretrain: pretrain_seconds.unwrap_or_else(|| stage_seconds("pretrain")),
        finetune: stage_seconds("finetune"),
    };
    Ok(RunOutcome {
        metrics: serde_json::Value::Object(metrics),
        predictions,
        curves,
        attention: attention_maps,
        artefact,
        inputs,
        synthetic,
        domain,
        timings,
    })
}
