//! One run as a function: a [`RunConfig`] and its seed, with the loaded data, in; every
//! result out ([`RunOutcome`]). The program reads files and writes records; the run itself
//! is pure (the same config, seed and data give the same bits at any thread count), which
//! is what lets `ablate train` and a study's runs give the same numbers.
//!
//! The chain (MODEL.md section 3): the neural model pre-trains on DSPM-DE simulations
//! (a random split of the simulated feeds, each feed's fluxes kept together) and
//! fine-tunes on the measured split; each stage is optional and scored on its own data.
//! `dspmde_fit` calibrates DSPM-DE on the measured training rows instead.

mod canonical;
mod config;
mod domain;
mod members;
mod outcome;

pub use canonical::CanonicalConfig;
pub use config::{ConfigProblem, DataConfig, Method, PretrainMembrane, RunConfig};
pub use domain::{ionic_strength, Basis, Composition, Domain, Flag, IonSpan, RowPoint};
pub use outcome::{Artefact, Attention, Part, Predictions, RunMetrics, RunOutcome, Timings};

use crate::calibrate::{dspmde_fit, DspmdeFit};
use crate::checked::{Check, Checked};
use crate::data::Samples;
use crate::error::TrainError;
use crate::metrics::{implausible, Metrics, SplitMetrics};
use crate::split::{Split, SplitSpec, ValidateOn};
use crate::trainer::{train_stage, EpochReport, Stage, StageConfig, StageReport};
use ionode_autodiff::{ParamStore, Tape};
use ionode_model::{Batch, Model, Prior, SavedParams, Variant};
use ionode_physics::IonDb;
use ndarray::{Array2, Array3};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// The loaded data of a run, over the model's slots.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunInputs<'a> {
    /// The simulated pre-training set (all of it; `pretrain_max_feeds` is applied here).
    pub pretrain: Option<&'a Samples>,
    /// The measured data, all files concatenated.
    pub measured: Option<&'a Samples>,
    /// Threads a stage may use for its micro-batches (`micro_batch`); 0 or 1: one. An
    /// execution setting, not part of the run: the result is the same at any count.
    pub threads: usize,
}

/// What a scored stage leaves behind (a shared pre-training is one of these).
#[derive(Debug, Clone)]
struct StageResult {
    params: SavedParams,
    report: Option<StageReport>,
    metrics: SplitMetrics,
    domain: Option<Domain>,
}

/// Pre-trainings shared by runs that agree on everything a pre-training depends on (the
/// model, the pre-training settings, the pre-training data and the seed): they would
/// compute the same bits, so the first run computes it while the others wait, and all of
/// them get the same parameters, curve and metrics. A study whose cells differ only after
/// pre-training (the split, fine-tuning) pre-trains once per model and seed.
#[derive(Debug, Default)]
pub struct SharedPretraining {
    cells: Mutex<HashMap<String, PretrainCell>>,
}

/// One pre-training, computed by the first run that needs it while the others wait.
type PretrainCell = Arc<OnceLock<Result<StageResult, TrainError>>>;

impl SharedPretraining {
    fn get(
        &self,
        key: String,
        compute: impl FnOnce() -> Result<StageResult, TrainError>,
    ) -> Result<StageResult, TrainError> {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            cells.entry(key).or_default().clone()
        };
        cell.get_or_init(compute).clone()
    }
}

/// Predictions of a neural model for every row (batches of 512, no gradients).
pub fn predict_neural(
    model: &Model,
    store: &ParamStore,
    samples: &Samples,
) -> Result<Array2<f64>, TrainError> {
    predict_neural_on(model, store, samples, 1)
}

/// [`predict_neural`] with its fixed chunks of 512 rows on `threads` threads, each thread on
/// its own tape: the same bits at any thread count.
pub fn predict_neural_on(
    model: &Model,
    store: &ParamStore,
    samples: &Samples,
    threads: usize,
) -> Result<Array2<f64>, TrainError> {
    let rows: Vec<usize> = (0..samples.len()).collect();
    let chunks: Vec<&[usize]> = rows.chunks(512).collect();
    let one = |chunk: &[usize], tape: &mut Tape| {
        let b = samples.to_batch_arrays(chunk);
        model
            .predict_with(
                tape,
                store,
                &Batch::new(b.feed, b.mask, b.flux).with_prior(b.prior),
            )
            .map(|p| p.permeate_mol_m3)
    };
    // One tape per thread, reused across its chunks (a tape per chunk would grow a fresh
    // arena of tens of MB for each of them).
    let mut pool = crate::parallel::MicroBatches::new(None, threads.max(1))?;
    let predicted = pool.map_tapes(chunks.len(), |i, tape| one(chunks[i], tape));
    let mut out = Array2::zeros(samples.feed_mol_m3.dim());
    for (chunk, pred) in chunks.iter().zip(predicted) {
        let pred = pred?;
        for (k, &row) in chunk.iter().enumerate() {
            out.row_mut(row).assign(&pred.row(k));
        }
    }
    Ok(out)
}

/// The attention maps of some rows (`None` for a model without attention).
pub fn attention_maps(
    model: &Model,
    store: &ParamStore,
    samples: &Samples,
    rows: &[usize],
) -> Result<Option<Attention>, TrainError> {
    let s = samples.slots();
    let mut end = Array3::zeros((rows.len(), s, s));
    let mut mean = Array3::zeros((rows.len(), s, s));
    let mut tape = Tape::new();
    let mut start = 0;
    for chunk in rows.chunks(512) {
        let b = samples.to_batch_arrays(chunk);
        let batch = Batch::new(b.feed, b.mask, b.flux).with_prior(b.prior);
        let pred = model.predict_with(&mut tape, store, &batch)?;
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

/// Trains one stage (if configured) and scores it: the stage's report, its metrics, the
/// predictions of every row and the domain of its training and validation rows. A
/// prediction no membrane can give fails the stage like a NaN.
#[allow(clippy::too_many_arguments)]
fn scored_stage(
    stage: Stage,
    model: &Model,
    store: &mut ParamStore,
    samples: &Samples,
    split: &Split,
    config: Option<&Checked<StageConfig>>,
    seed: u64,
    threads: usize,
    last: Option<&StageReport>,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<(StageResult, Array2<f64>), TrainError> {
    let mut report = None;
    let mut domain = None;
    if let Some(config) = config {
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
        domain = Domain::of(samples, &rows, stage);
        report = Some(train_stage(
            stage,
            model,
            store,
            &train,
            &validation,
            config,
            seed,
            threads,
            on_epoch,
        )?);
    }
    // As the rows measured them: observed rejections through the film model.
    let predicted = samples.observed_basis(&predict_neural_on(model, store, samples, threads)?);
    if let Some(detail) = implausible(samples, predicted.view()) {
        // A run whose loss went astronomically wrong without becoming NaN ends here,
        // failed like a NaN, not DONE with meaningless metrics.
        let last = report.as_ref().or(last);
        return Err(TrainError::Diverged {
            stage: last.map_or(stage, |c| c.stage).to_string(),
            epoch: last.map_or(0, |c| c.epochs_run.saturating_sub(1)),
            loss: last.map_or(f64::NAN, |c| c.best_validation_loss),
            detail,
        });
    }
    let metrics = SplitMetrics::compute(samples, split, predicted.view())?;
    let done = StageResult {
        params: SavedParams::from_store(store),
        report,
        metrics,
        domain,
    };
    Ok((done, predicted))
}

/// Runs one config. `seed` is the run's seed (a sweep derives it; `ablate train` uses
/// `config.seed`); `on_epoch` sees every epoch of every trained stage this run computes.
pub fn run(
    config: &Checked<RunConfig>,
    seed: u64,
    inputs: RunInputs,
    shared: &SharedPretraining,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<RunOutcome, TrainError> {
    let start = Instant::now();
    let config: &RunConfig = config;
    let pretrain: Option<Samples> =
        inputs
            .pretrain
            .map(|all| match config.data.pretrain_max_feeds {
                Some(max) => {
                    let keep: Vec<usize> =
                        (0..all.len()).filter(|&i| all.origin[i] < max).collect();
                    all.subset(&keep)
                }
                None => all.clone(),
            });
    let measured = inputs.measured;
    if pretrain.is_none() && measured.is_none() {
        return Err(TrainError::invalid(
            "data",
            "no pre-training set and no measured data",
            "at least one of them",
        ));
    }
    let measured_split: Option<Split> = match (measured, &config.split) {
        (Some(m), Some(spec)) => Some(spec.split(m, seed)?),
        (Some(_), None) => {
            return Err(TrainError::invalid(
                "split",
                "none",
                "a split of the measured data",
            ))
        }
        _ => None,
    };
    let parts = Parts {
        pretrain: pretrain.as_ref(),
        measured,
        split: measured_split,
        resampled_train: None,
    };
    let mut outcome = match &config.ensemble {
        None => one_model(config, seed, inputs, &parts, shared, on_epoch)?.outcome,
        Some(e) => members::run(config, e, seed, inputs, &parts, shared, on_epoch)?,
    };
    outcome.timings.total = start.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The data of a run: the pre-training set (already cut to `pretrain_max_feeds`), the
/// measured data and its split.
#[derive(Debug, Clone)]
struct Parts<'a> {
    pretrain: Option<&'a Samples>,
    measured: Option<&'a Samples>,
    split: Option<Split>,
    /// An ensemble member's bootstrap resample of `split.train`: what its model trains on.
    /// Nested validation's inner runs still use `split.train` (they estimate the error on
    /// an unseen family, and each row needs its out-of-family prediction).
    resampled_train: Option<Vec<usize>>,
}

/// One trained model (a run, or one member of an ensemble) with what an ensemble needs
/// from it: its predictions of every measured row, and its predictions of the rows its
/// validation metrics are of (for nested validation, each row's out-of-family
/// prediction; elsewhere NaN).
struct Model1 {
    outcome: RunOutcome,
    predicted: Option<Array2<f64>>,
    validation: Option<(Vec<usize>, Array2<f64>)>,
    /// Whether the validation predictions are nested (out-of-family) ones.
    nested: bool,
}

/// One model on `parts`: nested on each family where the split asks for it, else one run.
fn one_model(
    config: &RunConfig,
    seed: u64,
    inputs: RunInputs,
    parts: &Parts,
    shared: &SharedPretraining,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Model1, TrainError> {
    let each_family = matches!(
        &config.split,
        Some(SplitSpec::ByFamily {
            validate_on: ValidateOn::EachFamily,
            ..
        }) | Some(SplitSpec::AllFamilies)
    );
    if let (Some(m), Some(outer), true) = (parts.measured, &parts.split, each_family) {
        let nested_parts = (parts.pretrain, m, outer, parts.resampled_train.as_deref());
        return nested(config, seed, inputs, nested_parts, shared, on_epoch);
    }
    let validation_rows = parts.split.as_ref().map(|s| s.validation.clone());
    let split = parts.split.clone().map(|s| match &parts.resampled_train {
        Some(train) => Split {
            train: train.clone(),
            ..s
        },
        None => s,
    });
    let run_parts = (parts.pretrain, parts.measured, split);
    let (outcome, predicted) = run_on(config, seed, inputs, run_parts, shared, on_epoch, None)?;
    let validation = validation_rows.zip(predicted.clone());
    Ok(Model1 {
        outcome,
        predicted,
        validation,
        nested: false,
    })
}

/// The rows of a simulated set solved again with a calibrated DSPM-DE (the same feeds,
/// fluxes and temperatures, new permeates); the rows it cannot solve are left out.
fn resolved_with(sim: &Samples, fit: &DspmdeFit) -> Result<Samples, TrainError> {
    let p = fit.predict(sim)?;
    let keep: Vec<usize> = (0..sim.len())
        .filter(|r| p.failed_rows.binary_search(r).is_err())
        .collect();
    let mut out = sim.clone();
    out.permeate_mol_m3 = p.permeate;
    // Stated uncertainties belong to the file's values, not to these.
    out.permeate_sd_mol_m3 = None;
    Ok(out.subset(&keep))
}

/// Validation on each training family in turn, nested in a leave-one-family-out fold
/// (`validate_on = "each_family"`). For every training family `f`, the run is made on the
/// other training families and validated (and early-stopped) on `f`; its predictions of
/// `f` are that family's out-of-family predictions. The run is then made again on every
/// training row, with the mean of the inner runs' best epoch counts and no early stopping
/// (there is nothing left to stop on). Its validation metrics are those of the pooled
/// out-of-family predictions: an estimate of the error on an unseen family made from
/// training families only, while the final model (and a calibrated prior) sees all of
/// them. Costs one run per training family more.
fn nested(
    config: &RunConfig,
    seed: u64,
    inputs: RunInputs,
    (pretrain, measured, outer, resampled): (Option<&Samples>, &Samples, &Split, Option<&[usize]>),
    shared: &SharedPretraining,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Model1, TrainError> {
    let mut families: Vec<&str> = outer
        .train
        .iter()
        .filter_map(|&r| measured.family[r].as_deref())
        .collect();
    families.sort_unstable();
    families.dedup();
    if families.len() < 2 {
        return Err(TrainError::invalid(
            "split.validate_on",
            "each_family",
            format!(
                "at least two training families (one validates while the others train); found {}",
                families.len()
            ),
        ));
    }
    let mut pooled = Array2::from_elem(measured.feed_mol_m3.dim(), f64::NAN);
    let mut epochs = Vec::new();
    for family in &families {
        let (validation, train): (Vec<usize>, Vec<usize>) = outer
            .train
            .iter()
            .partition(|&&r| measured.family[r].as_deref() == Some(*family));
        let inner = Split {
            train,
            validation,
            test: outer.test.clone(),
        };
        let rows = inner.validation.clone();
        let parts = (pretrain, Some(measured), Some(inner));
        let (o, predicted) = run_on(config, seed, inputs, parts, shared, on_epoch, None)?;
        let predicted = predicted.expect("a run with measured data predicts them");
        for &r in &rows {
            pooled.row_mut(r).assign(&predicted.row(r));
        }
        epochs.extend(
            o.curves
                .iter()
                .filter(|c| c.stage == Stage::Finetune)
                .map(|c| c.best_epoch + 1),
        );
    }
    // The inner runs' mean best epoch count (a neural run's; none for dspmde_fit).
    let refit = (!epochs.is_empty())
        .then(|| (epochs.iter().sum::<usize>() as f64 / epochs.len() as f64).round() as usize)
        .map(|e| e.max(1));
    let final_split = Split {
        train: resampled.map_or_else(|| outer.train.clone(), <[usize]>::to_vec),
        ..outer.clone()
    };
    let parts = (pretrain, Some(measured), Some(final_split));
    let (mut outcome, predicted) = run_on(config, seed, inputs, parts, shared, on_epoch, refit)?;
    // Rows without a family trained in every inner run and have no out-of-family value.
    let rows: Vec<usize> = outer
        .train
        .iter()
        .copied()
        .filter(|&r| measured.family[r].is_some())
        .collect();
    let validation = Metrics::of(
        &measured.subset(&rows),
        pooled.select(ndarray::Axis(0), &rows).view(),
    )?;
    if let Some(m) = outcome.metrics.measured.as_mut() {
        m.validation = Some(validation);
    }
    Ok(Model1 {
        outcome,
        predicted,
        validation: Some((rows, pooled)),
        nested: true,
    })
}

/// One run on a given split of the measured data (`None`: no measured data). With
/// `refit_epochs`, fine-tuning runs exactly that many epochs without validation and keeps
/// the last. Also returns the predictions of every measured row, when there are any.
fn run_on(
    config: &RunConfig,
    seed: u64,
    inputs: RunInputs,
    (pretrain, measured, measured_split): (Option<&Samples>, Option<&Samples>, Option<Split>),
    shared: &SharedPretraining,
    on_epoch: &mut dyn FnMut(&EpochReport),
    refit_epochs: Option<usize>,
) -> Result<(RunOutcome, Option<Array2<f64>>), TrainError> {
    let start = Instant::now();
    // What the run is judged on: the measured data when there is any (pre-training data is
    // always simulated, and says nothing about whether the results are), else the
    // simulations.
    let synthetic = match (measured, pretrain) {
        (Some(m), _) => m.synthetic.iter().any(|&s| s),
        (None, Some(p)) => p.synthetic.iter().any(|&s| s),
        (None, None) => false,
    };
    let mut scores = Scores::default();
    let anchored = anchored_prior(config, measured, measured_split.as_ref())?;
    let measured = anchored.as_ref().map(|(s, _)| s).or(measured);
    let recalibrated =
        recalibrated_pretraining(config, pretrain, measured, measured_split.as_ref())?;
    let pretrain = recalibrated.as_ref().map(|(s, _)| s).or(pretrain);
    let artefact = match config.method {
        Method::Neural => {
            let stages = NeuralStages {
                config,
                seed,
                threads: inputs.threads,
                pretrain,
                measured,
                measured_split: measured_split.as_ref(),
                refit_epochs,
                calibrated_membrane: recalibrated.as_ref().map(|(_, m)| m.as_str()),
            };
            let params = stages.run(shared, on_epoch, &mut scores)?;
            match anchored {
                Some((_, fit)) => Artefact::Anchored {
                    params,
                    physics: Box::new(fit),
                },
                None => Artefact::Params(params),
            }
        }
        Method::DspmdeFit => {
            calibrated_run(config, measured, measured_split.as_ref(), &mut scores)?
        }
    };
    let stage_seconds = |stage: Stage| {
        scores
            .curves
            .iter()
            .filter(|c| c.stage == stage)
            .map(|c| c.seconds)
            .fold(0.0, |a, b| a + b)
    };
    let timings = Timings {
        total: start.elapsed().as_secs_f64(),
        // This run's own time: a pre-training shared with an earlier run costs it nothing.
        pretrain: scores
            .pretrain_seconds
            .unwrap_or_else(|| stage_seconds(Stage::Pretrain)),
        finetune: stage_seconds(Stage::Finetune),
    };
    let outcome = RunOutcome {
        metrics: scores.metrics,
        predictions: scores.predictions,
        curves: scores.curves,
        attention: scores.attention,
        artefact,
        synthetic,
        domain: scores.domain,
        timings,
    };
    Ok((outcome, scores.measured_predicted))
}

/// What a run's stages leave behind, filled stage by stage.
#[derive(Default)]
struct Scores {
    curves: Vec<StageReport>,
    metrics: RunMetrics,
    /// The test predictions of the last scored data (measured, if any).
    predictions: Predictions,
    attention: Option<Attention>,
    domain: Option<Domain>,
    /// This run's own pre-training time when the pre-training was shared (0 when another
    /// run computed it).
    pretrain_seconds: Option<f64>,
    /// The predictions of every measured row.
    measured_predicted: Option<Array2<f64>>,
}

/// A physics-anchored model's prior: DSPM-DE calibrated on the training rows only (its
/// validation rows judge the model, its test rows score it), solved once for every row;
/// the measured samples with the prior, and the fit.
fn anchored_prior(
    config: &RunConfig,
    measured: Option<&Samples>,
    split: Option<&Split>,
) -> Result<Option<(Samples, DspmdeFit)>, TrainError> {
    if !(config.method == Method::Neural
        && matches!(config.model.prior, Prior::Feature | Prior::Residual))
    {
        return Ok(None);
    }
    let (Some(samples), Some(split)) = (measured, split) else {
        return Err(TrainError::invalid(
            "model.prior",
            "a physics prior",
            "measured data and a [split] to calibrate it on",
        ));
    };
    let ions = samples.slot_ions(&IonDb::builtin())?;
    let fit = dspmde_fit(&samples.subset(&split.train), &ions, &config.calibration)?;
    let (transmission, _) = fit.transmissions(samples)?;
    Ok(Some((samples.clone().with_prior(transmission)?, fit)))
}

/// Calibrate, then pre-train: the pre-training set solved again with DSPM-DE calibrated
/// on the training rows, and the calibrated membrane's description (what the
/// pre-training then depends on joins its sharing key).
fn recalibrated_pretraining(
    config: &RunConfig,
    pretrain: Option<&Samples>,
    measured: Option<&Samples>,
    split: Option<&Split>,
) -> Result<Option<(Samples, String)>, TrainError> {
    if config.data.pretrain_membrane != PretrainMembrane::Calibrated {
        return Ok(None);
    }
    let (Some(sim), Some(samples), Some(split)) = (pretrain, measured, split) else {
        return Err(TrainError::invalid(
            "data.pretrain_membrane",
            "calibrated",
            "a pre-training set, measured data and a [split] to calibrate on",
        ));
    };
    let ions = samples.slot_ions(&IonDb::builtin())?;
    let fit = dspmde_fit(&samples.subset(&split.train), &ions, &config.calibration)?;
    Ok(Some((
        resolved_with(sim, &fit)?,
        format!("{:?}", fit.charged()),
    )))
}

/// The `dspmde_fit` method: DSPM-DE calibrated on the measured training rows.
fn calibrated_run(
    config: &RunConfig,
    measured: Option<&Samples>,
    split: Option<&Split>,
    scores: &mut Scores,
) -> Result<Artefact, TrainError> {
    let (Some(samples), Some(split)) = (measured, split) else {
        return Err(TrainError::invalid(
            "method",
            "dspmde_fit",
            "measured data and a [split] to calibrate on",
        ));
    };
    let ions = samples.slot_ions(&IonDb::builtin())?;
    let train = samples.subset(&split.train);
    scores.domain = Domain::of(samples, &split.train, Stage::Finetune);
    let fit = dspmde_fit(&train, &ions, &config.calibration)?;
    let predicted = samples.observed_basis(&fit.predict(samples)?.permeate);
    scores.metrics.measured = Some(SplitMetrics::compute(samples, split, predicted.view())?);
    scores.predictions = Predictions::of(samples, &split.test, &predicted, Part::Test);
    scores.measured_predicted = Some(predicted);
    Ok(Artefact::Calibration(Box::new(fit)))
}

/// The neural method's stages: pre-training on the simulations, then fine-tuning on the
/// measured split, each optional and scored on its own data.
struct NeuralStages<'a> {
    config: &'a RunConfig,
    seed: u64,
    threads: usize,
    pretrain: Option<&'a Samples>,
    measured: Option<&'a Samples>,
    measured_split: Option<&'a Split>,
    refit_epochs: Option<usize>,
    /// The calibrated membrane the pre-training set was solved again with, if it was.
    calibrated_membrane: Option<&'a str>,
}

impl NeuralStages<'_> {
    /// The key of a pre-training shared with the runs that agree on everything it depends
    /// on (see [`SharedPretraining`]).
    fn share_key(&self) -> String {
        let parts = CanonicalConfig::of(self.config).part_text(&[
            "model",
            "pretrain",
            "data.pretrain",
            "data.pretrain_max_feeds",
            "data.pretrain_validation_fraction",
            "data.pretrain_test_fraction",
        ]);
        let mut key = format!("{parts}|seed {}", self.seed);
        if let Some(membrane) = self.calibrated_membrane {
            key.push_str(&format!("|calibrated {membrane}"));
        }
        key
    }

    /// Trains the model through its stages, filling `scores`; its parameters.
    fn run(
        &self,
        shared: &SharedPretraining,
        on_epoch: &mut dyn FnMut(&EpochReport),
        scores: &mut Scores,
    ) -> Result<SavedParams, TrainError> {
        let (config, seed) = (self.config, self.seed);
        let mut store = ParamStore::new();
        let model = Model::new(config.model.clone(), &mut store, seed)?;
        let pretrain_split = match self.pretrain {
            Some(samples) => Some(
                SplitSpec::Random {
                    test_fraction: config.data.pretrain_test_fraction,
                    validation_fraction: config.data.pretrain_validation_fraction,
                }
                .split(samples, seed)?,
            ),
            None => None,
        };
        // The stages of a checked run config are checked; a refit's changed epoch count
        // is checked again.
        let pretrain = config.pretrain.clone().map(Checked::trusted);
        let finetune = match self.refit_epochs {
            Some(epochs) => match config.finetune.clone() {
                Some(f) => Some(StageConfig { epochs, ..f }.check().map_err(|p| {
                    p.into_iter()
                        .next()
                        .expect("a failed check names a problem")
                        .within(Stage::Finetune.as_str())
                })?),
                None => None,
            },
            None => config.finetune.clone().map(Checked::trusted),
        };
        let stages = [
            (
                Stage::Pretrain,
                self.pretrain,
                pretrain_split.as_ref(),
                &pretrain,
            ),
            (
                Stage::Finetune,
                self.measured,
                self.measured_split,
                &finetune,
            ),
        ];
        for (stage, samples, split, stage_config) in stages {
            let (Some(samples), Some(split)) = (samples, split) else {
                continue;
            };
            let scored = |store: &mut ParamStore, on_epoch: &mut dyn FnMut(&EpochReport)| {
                scored_stage(
                    stage,
                    &model,
                    store,
                    samples,
                    split,
                    stage_config.as_ref(),
                    seed,
                    self.threads,
                    scores.curves.last(),
                    on_epoch,
                )
            };
            // Pre-training is shared with the runs of the same `shared` that agree on
            // everything it depends on, when a measured stage follows (a
            // pre-training-only run keeps its own test predictions and attention maps).
            let (done, predicted) = if stage == Stage::Pretrain && self.measured_split.is_some() {
                let started = Instant::now();
                let mut computed = false;
                let done = shared.get(self.share_key(), || {
                    computed = true;
                    scored(&mut store, on_epoch).map(|(d, _)| d)
                })?;
                // Computed here or by another run: the same bits either way.
                done.params.load_into(&mut store)?;
                scores.pretrain_seconds = Some(if computed {
                    started.elapsed().as_secs_f64()
                } else {
                    0.0
                });
                (done, None)
            } else {
                let (done, predicted) = scored(&mut store, on_epoch)?;
                (done, Some(predicted))
            };
            scores.curves.extend(done.report.clone());
            match stage {
                Stage::Pretrain => scores.metrics.pretrain = Some(done.metrics),
                Stage::Finetune => scores.metrics.measured = Some(done.metrics),
            }
            scores.domain = Domain::join(scores.domain.take(), done.domain);
            if let Some(predicted) = predicted {
                // The test predictions of the last scored data (measured, if any).
                let part = match stage {
                    Stage::Pretrain => Part::PretrainTest,
                    Stage::Finetune => Part::Test,
                };
                scores.predictions = Predictions::of(samples, &split.test, &predicted, part);
                if config.model.variant == Variant::AttentionNode {
                    scores.attention = attention_maps(&model, &store, samples, &split.test)?;
                }
                if stage == Stage::Finetune {
                    scores.measured_predicted = Some(predicted);
                }
            }
        }
        Ok(SavedParams::from_store(&store))
    }
}
