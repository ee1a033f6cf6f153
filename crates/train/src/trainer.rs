//! Training the neural ODE: one stage (pre-training on DSPM-DE simulations, or fine-tuning
//! on measurements) is mini-batch Adam with gradient clipping, optional Gaussian noise
//! augmentation of the targets from their stated uncertainty, and early stopping on the
//! validation loss with the best parameters restored. A run chains the stages, each
//! starting from the previous stage's parameters (MODEL.md section 3).
//!
//! Everything is seeded explicitly (the batch order of epoch `e` is a function of
//! `(seed, e)`; augmentation noise too), and a mini-batch is either one tape or fixed
//! micro-batches reduced in a fixed order ([`crate::parallel`]), so a stage gives the same
//! bits for the same inputs at any thread count. A non-finite loss stops the stage with an error
//! naming the stage, epoch and loss; nothing else of a sweep is affected.

use crate::augment::augment_epoch;
use crate::checked::{Check, Checked};
use crate::data::Samples;
use crate::early_stop::EarlyStopping;
use crate::error::TrainError;
use crate::observe::{Curves, DivergenceWatch, EpochEnd, KeepBest, Observer, Progress, Verdict};
pub use crate::observe::{EpochReport, Stage, StageReport};
use crate::optim::Adam;
use crate::parallel::MicroBatches;
use ionode_autodiff::{ParamStore, Tape};
use ionode_model::{Batch, ForwardOptions, Model, State};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Settings of one training stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// Largest number of passes over the training set.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Global gradient-norm clipping (none if absent).
    #[serde(default = "default_clip")]
    pub clip_norm: Option<f64>,
    #[serde(default = "default_early_stopping")]
    pub early_stopping: EarlyStopping,
    /// Add Gaussian noise of the stated uncertainty to the targets each epoch.
    #[serde(default)]
    pub augment_noise: bool,
    /// What the squared error measures (see [`LossTarget`]).
    #[serde(default)]
    pub loss: LossTarget,
    /// How the learning rate changes over the stage (see [`LrSchedule`]).
    #[serde(default)]
    pub schedule: LrSchedule,
    /// The stage has diverged when an epoch's mean training loss exceeds this many times
    /// the loss of the stage's starting parameters (the first batch's loss before any
    /// step): a learning rate far too large sends the loss to 1e15 without ever making it
    /// NaN, and such a run must fail, not finish with meaningless predictions.
    #[serde(default = "default_divergence_factor")]
    pub divergence_factor: f64,
    /// Cut each mini-batch into micro-batches of this many rows, computed in parallel on
    /// the run's threads and reduced in a fixed order ([`crate::parallel`]): the same bits
    /// at any thread count. Absent: a mini-batch is one piece (one thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_batch: Option<usize>,
    /// L2-SP (Li, Grandvalet & Davoine, ICML 2018): the training objective adds
    /// `l2_sp / 2 * sum (theta - theta_0)^2`, with `theta_0` the parameters the stage starts
    /// from (the pre-trained ones, in fine-tuning), so with few data the weights stay near
    /// the prior instead of forgetting it. The curves and early stopping see the data loss.
    /// Absent: no penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2_sp: Option<f64>,
    /// Parameters the stage does not train, by name or name prefix (`embed`, `att`,
    /// `net.l0`; the model's names are `embed.w/b`, `pos`, `att.wq/wk/wv`, `net.l{i}.w/b`):
    /// they keep the values the stage starts from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freeze: Vec<String>,
}

/// The learning rate over a stage's Adam steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LrSchedule {
    /// `learning_rate` throughout.
    #[default]
    Constant,
    /// Half a cosine from `learning_rate` at the first step down to
    /// `final_fraction * learning_rate` at the last step of the last epoch: large steps
    /// while the loss is far from its minimum, small ones to settle into it.
    Cosine {
        /// The last step's rate as a fraction of `learning_rate`, in `[0, 1]`.
        final_fraction: f64,
    },
}

impl LrSchedule {
    /// Why the schedule is invalid, if it is (the final fraction must lie in `[0, 1]`).
    pub fn problem(self) -> Option<String> {
        match self {
            LrSchedule::Cosine { final_fraction } if !(0.0..=1.0).contains(&final_fraction) => {
                Some(format!("{final_fraction} is not in [0, 1]"))
            }
            _ => None,
        }
    }

    /// The rate of step `step` (0-based) of `total` for the base rate `base`.
    pub fn rate(self, base: f64, step: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine { final_fraction } => {
                let progress = if total > 1 {
                    step.min(total - 1) as f64 / (total - 1) as f64
                } else {
                    0.0
                };
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                base * (final_fraction + (1.0 - final_fraction) * cosine)
            }
        }
    }
}

/// What the training loss compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossTarget {
    /// MODEL.md's loss: squared error of the scaled state `x = c_p / c_scale`. An ion that
    /// is 1 % of the feed contributes 1e-4 of the weight of a major one, so its rejection
    /// is learned poorly.
    #[default]
    State,
    /// Squared error of the transmission `c_p / c_f = 1 - R` of every present ion: the
    /// scaled state's error weighted by `(c_scale / c_f)^2`, so minor ions count as much as
    /// major ones in the rejections the metrics report. With the model's transmission state
    /// this is the same as `State`.
    Rejection,
}

fn default_epochs() -> usize {
    200
}
fn default_batch_size() -> usize {
    64
}
fn default_learning_rate() -> f64 {
    1e-3
}
fn default_clip() -> Option<f64> {
    Some(1.0)
}
fn default_divergence_factor() -> f64 {
    1e3
}
fn default_early_stopping() -> EarlyStopping {
    EarlyStopping {
        patience: 20,
        min_delta: 0.0,
    }
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            learning_rate: default_learning_rate(),
            clip_norm: default_clip(),
            early_stopping: default_early_stopping(),
            augment_noise: false,
            loss: LossTarget::State,
            schedule: LrSchedule::Constant,
            divergence_factor: default_divergence_factor(),
            micro_batch: None,
            l2_sp: None,
            freeze: Vec::new(),
        }
    }
}

/// Most epochs of a stage: each keeps two loss values, and a typo (`epochs = 1e12`) must be
/// refused, not run for years.
pub const MAX_EPOCHS: usize = 1_000_000;
/// Largest mini-batch. The tape keeps every intermediate of a batch's integration, about
/// 0.3 MB per sample with MODEL.md's sizes, so 8192 samples are already ~2.5 GB.
pub const MAX_BATCH_SIZE: usize = 8192;

impl StageConfig {
    /// Every problem of the stage's fields, all at once: the one range check of a stage
    /// (through [`Check::check`], which the trainer's [`Checked`] config has passed). A
    /// problem's field is relative to the stage (`learning_rate`).
    pub fn problems(&self) -> Vec<TrainError> {
        let mut out = Vec::new();
        let positive = |field: &str, v: f64, out: &mut Vec<TrainError>| {
            if !(v.is_finite() && v > 0.0) {
                out.push(TrainError::invalid(field, v, "a finite number > 0"));
            }
        };
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            out.push(TrainError::invalid(
                "epochs",
                self.epochs,
                format!("a count in 1..={MAX_EPOCHS}"),
            ));
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            out.push(TrainError::invalid(
                "batch_size",
                self.batch_size,
                format!("a count in 1..={MAX_BATCH_SIZE}"),
            ));
        }
        if let Some(m) = self.micro_batch {
            if !(1..=MAX_BATCH_SIZE).contains(&m) {
                out.push(TrainError::invalid(
                    "micro_batch",
                    m,
                    format!("a count in 1..={MAX_BATCH_SIZE}"),
                ));
            }
        }
        positive("learning_rate", self.learning_rate, &mut out);
        if let Some(clip) = self.clip_norm {
            positive("clip_norm", clip, &mut out);
        }
        let delta = self.early_stopping.min_delta;
        if !(delta.is_finite() && delta >= 0.0) {
            out.push(TrainError::invalid(
                "early_stopping.min_delta",
                delta,
                "a finite number >= 0",
            ));
        }
        if let LrSchedule::Cosine { final_fraction } = self.schedule {
            if self.schedule.problem().is_some() {
                out.push(TrainError::invalid(
                    "schedule.final_fraction",
                    final_fraction,
                    "a number in [0, 1]",
                ));
            }
        }
        if !(self.divergence_factor.is_finite() && self.divergence_factor > 1.0) {
            out.push(TrainError::invalid(
                "divergence_factor",
                self.divergence_factor,
                "a finite number > 1",
            ));
        }
        if let Some(l) = self.l2_sp {
            if !(l.is_finite() && l >= 0.0) {
                out.push(TrainError::invalid("l2_sp", l, "a finite number >= 0"));
            }
        }
        if let Some(f) = self.freeze.iter().find(|f| f.trim().is_empty()) {
            out.push(TrainError::invalid(
                "freeze",
                format!("{f:?}"),
                "parameter names or prefixes such as \"embed\" or \"net.l0\"",
            ));
        }
        out
    }
}

impl Check for StageConfig {
    type Problem = TrainError;

    fn problems(&self) -> Vec<TrainError> {
        StageConfig::problems(self)
    }
}

/// The parameters a stage keeps fixed: every parameter named by, or under, a `freeze`
/// entry. An entry that names no parameter of the model is an error listing the names.
fn frozen(
    store: &ParamStore,
    freeze: &[String],
) -> Result<Vec<std::ops::Range<usize>>, TrainError> {
    let mut out = Vec::new();
    for f in freeze {
        let matched: Vec<_> = store
            .ids()
            .filter(|&id| {
                let name = store.name(id);
                name == f || name.starts_with(&format!("{f}."))
            })
            .collect();
        if matched.is_empty() {
            let names: Vec<&str> = store.ids().map(|id| store.name(id)).collect();
            return Err(TrainError::invalid(
                "freeze",
                format!("{f:?}"),
                format!(
                    "a parameter name or prefix of the model: {}",
                    names.join(", ")
                ),
            ));
        }
        out.extend(matched.into_iter().map(|id| store.range(id)));
    }
    Ok(out)
}

/// Adds the L2-SP prior's gradient `l2_sp (theta - theta_0)` and zeroes the frozen
/// parameters' gradients, so Adam leaves them exactly where they are.
fn shape_gradient(
    store: &mut ParamStore,
    anchor: &[f64],
    l2_sp: Option<f64>,
    frozen: &[std::ops::Range<usize>],
) {
    let (values, grads) = store.values_and_grads_of_penalty();
    if let Some(l) = l2_sp.filter(|l| *l > 0.0) {
        for ((g, v), a) in grads.iter_mut().zip(values).zip(anchor) {
            *g += l * (v - a);
        }
    }
    for r in frozen {
        grads[r.clone()].fill(0.0);
    }
}

/// Training rows whose mean loss at the start is the divergence test's reference.
const REFERENCE_ROWS: usize = 2048;

/// The model's batch of some rows of a sample set, with (possibly augmented) targets.
fn model_batch(
    samples: &Samples,
    rows: &[usize],
    targets: Option<&ndarray::Array2<f64>>,
    loss: LossTarget,
    state: State,
) -> Batch {
    let b = samples.to_batch_arrays(rows);
    let target = match targets {
        Some(t) => t.select(ndarray::Axis(0), rows),
        None => b.target,
    };
    let weight = match (loss, state) {
        // The transmission state already is `1 - R`: its state loss is the rejection loss.
        (LossTarget::State, _) | (LossTarget::Rejection, State::Transmission) => None,
        (LossTarget::Rejection, State::Scaled) => {
            let charges: Vec<f64> = samples.charges.iter().map(|z| f64::from(*z)).collect();
            let mut w = ndarray::Array2::zeros(b.feed.dim());
            for (i, (feed, mask)) in b.feed.outer_iter().zip(b.mask.outer_iter()).enumerate() {
                let c_scale: f64 = 0.5
                    * feed
                        .iter()
                        .zip(&charges)
                        .zip(mask)
                        .filter(|(_, m)| **m)
                        .map(|((c, z), _)| z.abs() * c)
                        .sum::<f64>();
                for j in 0..feed.len() {
                    if mask[j] && feed[j] > 0.0 {
                        w[[i, j]] = (c_scale / feed[j]).powi(2);
                    }
                }
            }
            Some(w)
        }
    };
    // An ion in the feed whose outcome was not measured weighs nothing in the loss (the
    // model's masked mean divides by the weights, so it does not count at all).
    let weight = if b.observed == b.mask {
        weight
    } else {
        let mut w = weight.unwrap_or_else(|| b.mask.mapv(|m| if m { 1.0 } else { 0.0 }));
        ndarray::Zip::from(&mut w)
            .and(&b.observed)
            .for_each(|w, &o| {
                if !o {
                    *w = 0.0;
                }
            });
        Some(w)
    };
    let mut batch = Batch::new(b.feed, b.mask, b.flux)
        .with_target(target)
        .with_prior(b.prior)
        .with_film(b.film);
    batch.target_weight = weight;
    batch
}

/// The model's slots and the samples' species must be the same ions in the same order
/// (names compared through the ion database's aliases, charges exactly).
pub fn check_slots(model: &Model, samples: &Samples) -> Result<(), TrainError> {
    let db = ionode_physics::IonDb::builtin();
    let canonical = |name: &str| {
        db.get(name)
            .map(|i| i.name.clone())
            .unwrap_or_else(|_| name.to_string())
    };
    let slots = &model.config().slots;
    let same = slots.len() == samples.species.len()
        && slots
            .iter()
            .zip(&samples.species)
            .zip(&samples.charges)
            .all(|((slot, species), z)| {
                canonical(&slot.name) == canonical(species) && slot.charge == f64::from(*z)
            });
    if same {
        Ok(())
    } else {
        Err(TrainError::invalid(
            "model slots",
            slots
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            format!(
                "the data's ion slots in the same order ({})",
                samples.species.join(",")
            ),
        ))
    }
}

/// The loss of one chunk of rows, without gradients.
fn chunk_loss(
    model: &Model,
    store: &ParamStore,
    tape: &mut Tape,
    samples: &Samples,
    chunk: &[usize],
    loss: LossTarget,
) -> Result<f64, TrainError> {
    tape.clear();
    let previous = tape.set_grad_enabled(false);
    let result = (|| {
        let fwd = model.forward(
            tape,
            store,
            &model_batch(samples, chunk, None, loss, model.config().state),
            ForwardOptions::default(),
        )?;
        let loss = model.loss(tape, &fwd)?;
        Ok::<f64, ionode_model::ModelError>(tape.item(loss.total))
    })();
    tape.set_grad_enabled(previous);
    Ok(result?)
}

/// Mean loss over a sample set (no gradients), in chunks of `batch_size`.
pub fn evaluate_loss(
    model: &Model,
    store: &ParamStore,
    tape: &mut Tape,
    samples: &Samples,
    batch_size: usize,
    loss: LossTarget,
) -> Result<f64, TrainError> {
    let rows: Vec<usize> = (0..samples.len()).collect();
    let chunks: Vec<&[usize]> = rows.chunks(batch_size.max(1)).collect();
    let values = chunks
        .iter()
        .map(|chunk| chunk_loss(model, store, tape, samples, chunk, loss))
        .collect();
    mean_over_chunks(values, &chunks)
}

/// [`evaluate_loss`] with its chunks on the threads of `micro` (each thread on its own
/// tape): the same chunks summed in the same order, so the same bits.
fn evaluate_loss_on(
    micro: &mut MicroBatches,
    model: &Model,
    store: &ParamStore,
    tape: &mut Tape,
    samples: &Samples,
    batch_size: usize,
    loss: LossTarget,
) -> Result<f64, TrainError> {
    let rows: Vec<usize> = (0..samples.len()).collect();
    let chunks: Vec<&[usize]> = rows.chunks(batch_size.max(1)).collect();
    if !micro.is_parallel() || chunks.len() < 2 {
        return evaluate_loss(model, store, tape, samples, batch_size, loss);
    }
    let values = micro.map_tapes(chunks.len(), |i, t| {
        chunk_loss(model, store, t, samples, chunks[i], loss)
    });
    mean_over_chunks(values, &chunks)
}

/// The row-weighted mean of chunk losses, summed in chunk order.
fn mean_over_chunks(
    values: Vec<Result<f64, TrainError>>,
    chunks: &[&[usize]],
) -> Result<f64, TrainError> {
    let (mut total, mut count) = (0.0, 0usize);
    for (v, chunk) in values.into_iter().zip(chunks) {
        total += v? * chunk.len() as f64;
        count += chunk.len();
    }
    Ok(total / count.max(1) as f64)
}

/// Trains `store` in place on `train`, early-stopping on `validation`; restores the best
/// epoch's parameters before returning. Without validation rows (the refit of a nested
/// validation, `crate::run`), it runs every epoch and keeps the last; the validation
/// curve is then NaN.
///
/// The loop only steps and evaluates; what watches it is in [`crate::observe`]: the
/// divergence tests, early stopping with the best parameters kept, the curves and the
/// caller's `progress`, asked in that order after every epoch.
#[allow(clippy::too_many_arguments)]
pub fn train_stage(
    stage: Stage,
    model: &Model,
    store: &mut ParamStore,
    train: &Samples,
    validation: &Samples,
    config: &Checked<StageConfig>,
    seed: u64,
    threads: usize,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<StageReport, TrainError> {
    let config: &StageConfig = config;
    if train.is_empty() {
        return Err(TrainError::invalid(
            format!("{stage} data"),
            format!("0 training and {} validation rows", validation.len()),
            "at least one training row",
        ));
    }
    check_slots(model, train)?;
    let validate = !validation.is_empty();
    if validate {
        check_slots(model, validation)?;
    }
    let started = Instant::now();
    let mut tape = Tape::new();
    let mut micro = MicroBatches::new(config.micro_batch, threads.max(1))?;
    let frozen = frozen(store, &config.freeze).map_err(|e| e.within(stage.as_str()))?;
    let shaped = config.l2_sp.is_some_and(|l| l > 0.0) || !frozen.is_empty();
    let mut stepper = Stepper {
        adam: Adam::new(config.learning_rate),
        // The prior of L2-SP: where the stage starts.
        anchor: if shaped {
            store.values().to_vec()
        } else {
            Vec::new()
        },
        frozen,
        shaped,
        step: 0,
        total_steps: config.epochs * train.len().div_ceil(config.batch_size),
    };
    // The loss of the starting parameters, the reference of the divergence test: a mean
    // over (up to) the first REFERENCE_ROWS training rows, so one odd batch cannot set it.
    // Parameters that cannot even be evaluated fail in the first step below, with the
    // stage and epoch.
    let reference_rows: Vec<usize> = (0..train.len().min(REFERENCE_ROWS)).collect();
    let start_loss = evaluate_loss_on(
        &mut micro,
        model,
        store,
        &mut tape,
        &train.subset(&reference_rows),
        config.batch_size.max(256),
        config.loss,
    )
    .unwrap_or(f64::NAN);
    let watch = DivergenceWatch::new(
        stage,
        start_loss,
        config.divergence_factor,
        config.learning_rate,
    );
    let mut keep = KeepBest::new(config.early_stopping, store.values());
    let mut curves = Curves::default();
    let mut progress = Progress(progress);
    let mut best = (0, f64::INFINITY);
    for epoch in 0..config.epochs {
        let epoch_started = Instant::now();
        let train_loss = stepper.epoch(
            (model, &mut micro, &mut tape, &watch),
            store,
            train,
            config,
            seed,
            epoch,
        )?;
        watch.epoch(epoch, train_loss)?;
        let validation_loss = if validate {
            let loss = evaluate_loss_on(
                &mut micro,
                model,
                store,
                &mut tape,
                validation,
                config.batch_size.max(256),
                config.loss,
            )?;
            watch.validation(epoch, loss)?;
            Some(loss)
        } else {
            None
        };
        let mut end = EpochEnd {
            stage,
            epoch,
            epochs: config.epochs,
            train_loss,
            validation_loss,
            best,
            seconds: epoch_started.elapsed().as_secs_f64(),
        };
        let observers: [&mut dyn Observer; 3] = [&mut keep, &mut curves, &mut progress];
        let mut verdict = Verdict::Continue;
        for o in observers {
            if o.epoch_end(&mut end, store.values()) == Verdict::Stop {
                verdict = Verdict::Stop;
            }
        }
        best = end.best;
        if verdict == Verdict::Stop {
            break;
        }
    }
    store.values_mut().copy_from_slice(keep.parameters());
    Ok(curves.report(stage, keep.stopped_early(), started.elapsed().as_secs_f64()))
}

/// The optimiser's side of a stage: Adam with the learning-rate schedule, the L2-SP and
/// frozen-parameter gradient shaping and clipping, one epoch of mini-batch steps at a time.
struct Stepper {
    adam: Adam,
    /// L2-SP's `theta_0` (empty unless `shaped`).
    anchor: Vec<f64>,
    frozen: Vec<std::ops::Range<usize>>,
    /// Whether the gradient is shaped at all (L2-SP or frozen parameters).
    shaped: bool,
    /// Steps taken so far, and in the whole stage (the schedule's clock).
    step: usize,
    total_steps: usize,
}

impl Stepper {
    /// One epoch over `train` in the seeded batch order of `(seed, epoch)`, with the
    /// epoch's augmented targets: the mean training loss over its batches.
    fn epoch(
        &mut self,
        (model, micro, tape, watch): (&Model, &mut MicroBatches, &mut Tape, &DivergenceWatch),
        store: &mut ParamStore,
        train: &Samples,
        config: &StageConfig,
        seed: u64,
        epoch: usize,
    ) -> Result<f64, TrainError> {
        let targets = train
            .permeate_sd_mol_m3
            .as_ref()
            .filter(|_| config.augment_noise)
            .map(|sd| augment_epoch(train.permeate_mol_m3.view(), sd.view(), seed, epoch as u64));
        let (mut sum, mut rows) = (0.0, 0usize);
        for batch_rows in train.batches(config.batch_size, seed, epoch as u64).iter() {
            self.adam.lr = config
                .schedule
                .rate(config.learning_rate, self.step, self.total_steps);
            self.step += 1;
            let batch = model_batch(
                train,
                batch_rows,
                targets.as_ref(),
                config.loss,
                model.config().state,
            );
            let value = micro
                .gradient(model, store, &batch, tape)
                .map_err(|e| watch.model_failure(epoch, e))?;
            watch.step(epoch, value)?;
            if self.shaped {
                shape_gradient(store, &self.anchor, config.l2_sp, &self.frozen);
            }
            if let Some(max_norm) = config.clip_norm {
                crate::optim::clip_grad_norm(store, max_norm);
            }
            self.adam
                .step(store)
                .map_err(|e| watch.optimiser(epoch, value, e))?;
            sum += value * batch_rows.len() as f64;
            rows += batch_rows.len();
        }
        Ok(sum / rows as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::SplitSpec;
    use ionode_model::{ModelConfig, Solver};
    use ionode_physics::simulate::{simulate, FluxGrid, SimulationConfig, Spacing};
    use ionode_physics::{IonDb, Membrane};

    const SLOTS: [&str; 4] = ["Na+", "Mg2+", "Cl-", "SO4^2-"];

    /// A small simulated set on four slots.
    fn samples() -> Samples {
        samples_of(48, 7)
    }

    /// `feeds` simulated feeds x 3 fluxes over the test slots.
    fn samples_of(feeds: usize, seed: u64) -> Samples {
        let db = IonDb::builtin();
        let species = SLOTS.iter().map(|n| db.get(n).unwrap().clone()).collect();
        let mut config =
            SimulationConfig::new(species, Membrane::preset("nf270").unwrap(), feeds, seed);
        config.max_ions = 4;
        config.fluxes = FluxGrid {
            min_m_s: 3e-6,
            max_m_s: 2e-5,
            count: 3,
            spacing: Spacing::Linear,
        };
        let data = simulate(&config, &|| {}).unwrap();
        Samples::from_simulation(&data, &SLOTS).unwrap().0
    }

    fn small_model(store: &mut ParamStore) -> Model {
        let slots = [("Na+", 1.0), ("Mg2+", 2.0), ("Cl-", -1.0), ("SO4^2-", -2.0)]
            .iter()
            .map(|(n, z)| ionode_model::IonSlot::new(n, *z))
            .collect();
        let cfg = ModelConfig {
            slots,
            embed_dim: 8,
            hidden: 16,
            solver: Solver::Rk4 { steps: 4 },
            ..ModelConfig::default()
        };
        Model::new(cfg, store, 3).unwrap()
    }

    fn stage(epochs: usize) -> StageConfig {
        StageConfig {
            epochs,
            batch_size: 16,
            learning_rate: 3e-3,
            ..StageConfig::default()
        }
    }

    fn run(epochs: usize) -> (StageReport, Vec<f64>, usize) {
        run_with(stage(epochs))
    }

    fn run_with(config: StageConfig) -> (StageReport, Vec<f64>, usize) {
        run_threads(config, 1)
    }

    fn run_threads(config: StageConfig, threads: usize) -> (StageReport, Vec<f64>, usize) {
        let data = samples();
        let split = SplitSpec::Random {
            test_fraction: 0.2,
            validation_fraction: 0.2,
        }
        .split(&data, 1)
        .unwrap();
        let (train, validation) = (data.subset(&split.train), data.subset(&split.validation));
        let mut store = ParamStore::new();
        let model = small_model(&mut store);
        let mut reports = 0;
        let report = train_stage(
            Stage::Pretrain,
            &model,
            &mut store,
            &train,
            &validation,
            &config.clone().check().unwrap(),
            5,
            threads,
            &mut |_| reports += 1,
        )
        .unwrap();
        (report, store.values().to_vec(), reports)
    }

    #[test]
    fn training_lowers_the_validation_loss_and_keeps_the_best_epoch() {
        let (report, _, reports) = run(12);
        assert_eq!(report.epochs_run, 12);
        assert_eq!(reports, 12);
        let first = report.validation_loss[0];
        assert!(
            report.best_validation_loss < 0.7 * first,
            "{:?}",
            report.validation_loss
        );
        let min = report
            .validation_loss
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        assert_eq!(report.best_validation_loss, min);
        assert_eq!(report.validation_loss[report.best_epoch], min);
    }

    /// The parameters `run` starts from.
    fn initial() -> (ParamStore, Vec<f64>) {
        let mut store = ParamStore::new();
        small_model(&mut store);
        let v = store.values().to_vec();
        (store, v)
    }

    fn distance(a: &[f64], b: &[f64]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn frozen_parameters_keep_their_bits_and_the_others_train() {
        let (store, start) = initial();
        let config = StageConfig {
            freeze: vec!["embed".into(), "net.l0".into()],
            ..stage(4)
        };
        let (_, trained, _) = run_with(config);
        let mut moved = 0;
        for id in store.ids() {
            let r = store.range(id);
            let name = store.name(id);
            let frozen = name.starts_with("embed.") || name.starts_with("net.l0.");
            let same = trained[r.clone()] == start[r];
            assert_eq!(same, frozen, "{name}");
            moved += usize::from(!same);
        }
        assert!(moved > 2);
    }

    #[test]
    fn l2_sp_holds_the_weights_near_where_the_stage_started() {
        let (_, start) = initial();
        let at = |l2_sp: Option<f64>| {
            let (_, p, _) = run_with(StageConfig { l2_sp, ..stage(6) });
            distance(&p, &start)
        };
        let (free, some, strong) = (at(None), at(Some(30.0)), at(Some(1e4)));
        assert!(free > some && some > strong, "{free} {some} {strong}");
        assert!(strong < 0.1 * free, "{free} {strong}");
        // A penalty of zero is no penalty, to the bit.
        let (_, none, _) = run_with(stage(3));
        let (_, zero, _) = run_with(StageConfig {
            l2_sp: Some(0.0),
            ..stage(3)
        });
        assert_eq!(none, zero);
    }

    #[test]
    fn the_prior_adds_its_exact_gradient_and_frozen_gradients_are_zero() {
        let mut store = ParamStore::new();
        let a = store.add("a", &[2], &[1.0, 2.0]).unwrap();
        let b = store.add("b", &[1], &[3.0]).unwrap();
        store.grad_mut(a).copy_from_slice(&[0.25, -0.5]);
        store.grad_mut(b)[0] = 7.0;
        let frozen = frozen(&store, &["b".to_string()]).unwrap();
        // d/dtheta of 2/2 (theta - theta_0)^2 = 2 (theta - theta_0).
        shape_gradient(&mut store, &[0.5, 2.5, 1.0], Some(2.0), &frozen);
        assert_eq!(store.grad(a), &[0.25 + 1.0, -0.5 - 1.0]);
        assert_eq!(store.grad(b), &[0.0]);
    }

    #[test]
    fn a_freeze_entry_that_names_no_parameter_lists_the_names() {
        let (mut store, _) = initial();
        let model = small_model(&mut ParamStore::new());
        let data = samples();
        let config = StageConfig {
            freeze: vec!["attention".into()],
            ..stage(1)
        };
        let e = stage_error(Stage::Finetune, &model, &mut store, &data, &config, 1);
        assert!(e.contains("finetune.freeze") && e.contains("att.wq"), "{e}");
    }

    /// The error text of a stage that must fail (training and validation on `data`).
    fn stage_error(
        stage: Stage,
        model: &Model,
        store: &mut ParamStore,
        data: &Samples,
        config: &StageConfig,
        seed: u64,
    ) -> String {
        train_stage(
            stage,
            model,
            store,
            data,
            data,
            &config.clone().check().unwrap(),
            seed,
            1,
            &mut |_| {},
        )
        .unwrap_err()
        .to_string()
    }

    #[test]
    fn cosine_schedule_runs_from_the_base_rate_to_its_final_fraction() {
        let cosine = LrSchedule::Cosine {
            final_fraction: 0.1,
        };
        let rates: Vec<f64> = (0..11).map(|k| cosine.rate(2.0, k, 11)).collect();
        assert_eq!(rates[0], 2.0);
        assert!((rates[10] - 0.2).abs() < 1e-15);
        assert!((rates[5] - 1.1).abs() < 1e-15, "midpoint {}", rates[5]);
        assert!(rates.windows(2).all(|w| w[1] < w[0]));
        assert_eq!(LrSchedule::Constant.rate(2.0, 7, 11), 2.0);
        assert_eq!(cosine.rate(2.0, 0, 1), 2.0);
        let parsed: StageConfig =
            serde_json::from_str(r#"{"schedule": {"kind": "cosine", "final_fraction": 0.05}}"#)
                .unwrap();
        assert_eq!(
            parsed.schedule,
            LrSchedule::Cosine {
                final_fraction: 0.05
            }
        );
    }

    #[test]
    fn the_schedule_drives_the_optimiser() {
        let with = |schedule| {
            run_with(StageConfig {
                schedule,
                ..stage(3)
            })
            .1
        };
        let constant = with(LrSchedule::Constant);
        // A cosine that ends where it starts is the constant rate, bit for bit ...
        assert_eq!(
            with(LrSchedule::Cosine {
                final_fraction: 1.0
            }),
            constant
        );
        // ... and a decaying one moves the parameters differently.
        assert_ne!(
            with(LrSchedule::Cosine {
                final_fraction: 0.0
            }),
            constant
        );
        let bad = StageConfig {
            schedule: LrSchedule::Cosine {
                final_fraction: 1.5,
            },
            ..stage(1)
        };
        // Refused by the check a stage's config must pass before train_stage takes it.
        let problems = bad.check().unwrap_err();
        let err = problems[0].clone().within("pretrain").to_string();
        assert!(
            err.contains("pretrain.schedule.final_fraction") && err.contains("1.5"),
            "{err}"
        );
    }

    #[test]
    fn micro_batches_give_the_same_bits_at_any_thread_count() {
        // Batches of 16 in micro-batches of 5, 5, 5 and 1 rows.
        let config = StageConfig {
            micro_batch: Some(5),
            ..stage(2)
        };
        let (a, pa, _) = run_threads(config.clone(), 1);
        for threads in [2, 3, 4] {
            let (b, pb, _) = run_threads(config.clone(), threads);
            assert_eq!(a.train_loss, b.train_loss, "{threads} threads");
            assert_eq!(a.validation_loss, b.validation_loss, "{threads} threads");
            assert_eq!(pa, pb, "{threads} threads");
        }
        // A micro-batch as large as the batch is the plain path, bit for bit.
        let (whole, pw, _) = run_threads(stage(2), 1);
        let (same, ps, _) = run_threads(
            StageConfig {
                micro_batch: Some(16),
                ..stage(2)
            },
            2,
        );
        assert_eq!(whole.train_loss, same.train_loss);
        assert_eq!(pw, ps);
    }

    #[test]
    fn a_loss_evaluated_on_threads_has_the_same_bits() {
        let data = samples();
        let mut store = ParamStore::new();
        let model = small_model(&mut store);
        let mut tape = Tape::new();
        let one = evaluate_loss(&model, &store, &mut tape, &data, 16, LossTarget::State).unwrap();
        for threads in [2, 3] {
            let mut micro = crate::parallel::MicroBatches::new(None, threads).unwrap();
            let many = evaluate_loss_on(
                &mut micro,
                &model,
                &store,
                &mut tape,
                &data,
                16,
                LossTarget::State,
            )
            .unwrap();
            assert_eq!(one.to_bits(), many.to_bits(), "{threads} threads");
        }
        // Without micro_batch, a stage on 2 threads is the one-thread stage, bit for bit.
        let (a, pa, _) = run_threads(stage(2), 1);
        let (b, pb, _) = run_threads(stage(2), 2);
        assert_eq!(a.validation_loss, b.validation_loss);
        assert_eq!(pa, pb);
    }

    #[test]
    fn predictions_on_threads_have_the_same_bits() {
        let data = samples_of(400, 9);
        assert!(data.len() > 1024, "three chunks of 512 at least");
        let mut store = ParamStore::new();
        let model = small_model(&mut store);
        let one = crate::run::predict_neural_on(&model, &store, &data, 1).unwrap();
        let two = crate::run::predict_neural_on(&model, &store, &data, 2).unwrap();
        let bits = |a: &ndarray::Array2<f64>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&two));
    }

    #[test]
    fn a_micro_batched_gradient_is_the_whole_batch_gradient() {
        use crate::parallel::MicroBatches;
        let data = samples();
        let rows: Vec<usize> = (0..23).collect();
        for en in [
            ionode_model::Electroneutrality::Hard,
            ionode_model::Electroneutrality::Soft {
                lambda: 0.7,
                also_trajectory: true,
            },
        ] {
            let mut store = ParamStore::new();
            let base = small_model(&mut ParamStore::new());
            let cfg = ModelConfig {
                electroneutrality: en,
                ..base.config().clone()
            };
            let model = Model::new(cfg, &mut store, 3).unwrap();
            let batch = model_batch(&data, &rows, None, LossTarget::Rejection, State::Scaled);
            let mut tape = Tape::new();
            let whole = MicroBatches::new(None, 1)
                .unwrap()
                .gradient(&model, &mut store, &batch, &mut tape)
                .unwrap();
            let g_whole = store.grads().to_vec();
            let parts = MicroBatches::new(Some(4), 2)
                .unwrap()
                .gradient(&model, &mut store, &batch, &mut tape)
                .unwrap();
            let g_parts = store.grads().to_vec();
            assert!(
                (whole - parts).abs() <= 1e-12 * whole.abs(),
                "{whole} vs {parts}"
            );
            let scale = g_whole.iter().fold(0.0f64, |m, g| m.max(g.abs()));
            let worst = g_whole
                .iter()
                .zip(&g_parts)
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                scale > 0.0 && worst <= 1e-11 * scale,
                "{en:?}: {worst} of {scale}"
            );
        }
    }

    #[test]
    fn a_stage_is_deterministic() {
        let (a, pa, _) = run(3);
        let (b, pb, _) = run(3);
        assert_eq!(a.train_loss, b.train_loss);
        assert_eq!(pa, pb);
    }

    #[test]
    fn rejection_loss_weights_each_ion_by_its_feed_share() {
        let data = samples();
        let rows = [0, 1, 2];
        let batch = model_batch(&data, &rows, None, LossTarget::Rejection, State::Scaled);
        let w = batch.target_weight.unwrap();
        for (k, &r) in rows.iter().enumerate() {
            let c_scale: f64 = 0.5
                * (0..data.slots())
                    .filter(|&j| data.mask[[r, j]])
                    .map(|j| f64::from(data.charges[j]).abs() * data.feed_mol_m3[[r, j]])
                    .sum::<f64>();
            for j in 0..data.slots() {
                let expected = if data.mask[[r, j]] {
                    (c_scale / data.feed_mol_m3[[r, j]]).powi(2)
                } else {
                    0.0
                };
                assert!((w[[k, j]] - expected).abs() <= 1e-12 * expected.max(1.0));
            }
        }
        for (loss, state) in [
            (LossTarget::State, State::Scaled),
            (LossTarget::State, State::Transmission),
            (LossTarget::Rejection, State::Transmission),
        ] {
            let batch = model_batch(&data, &rows, None, loss, state);
            assert!(batch.target_weight.is_none(), "{loss:?} {state:?}");
        }
    }

    /// An unmeasured entry (an ion in the feed whose outcome is missing) is invisible to
    /// training and scoring: whatever value it holds, the loss, the trained parameters and
    /// the metrics are the same bits.
    #[test]
    fn unmeasured_entries_change_no_loss_parameter_or_metric() {
        let data = samples();
        let with_hidden = |hidden: f64| {
            let mut d = data.clone();
            for r in (0..d.len()).step_by(3) {
                let s = (0..d.slots()).find(|&s| d.mask[[r, s]]).unwrap();
                d.observed[[r, s]] = false;
                d.permeate_mol_m3[[r, s]] = hidden;
            }
            d
        };
        let run = |d: &Samples| {
            let split = SplitSpec::Random {
                test_fraction: 0.2,
                validation_fraction: 0.2,
            }
            .split(d, 1)
            .unwrap();
            let (train, validation) = (d.subset(&split.train), d.subset(&split.validation));
            let mut store = ParamStore::new();
            let model = small_model(&mut store);
            let report = train_stage(
                Stage::Finetune,
                &model,
                &mut store,
                &train,
                &validation,
                &stage(2).check().unwrap(),
                5,
                1,
                &mut |_| {},
            )
            .unwrap();
            let mut tape = Tape::new();
            let loss = evaluate_loss(&model, &store, &mut tape, d, 64, LossTarget::State).unwrap();
            let rows: Vec<usize> = (0..d.len()).collect();
            let mut pred = ndarray::Array2::zeros(d.feed_mol_m3.dim());
            for chunk in rows.chunks(64) {
                let b = d.to_batch_arrays(chunk);
                let p = model
                    .predict(&store, &Batch::new(b.feed, b.mask, b.flux))
                    .unwrap();
                for (k, &r) in chunk.iter().enumerate() {
                    pred.row_mut(r).assign(&p.permeate_mol_m3.row(k));
                }
            }
            let metrics = crate::metrics::SplitMetrics::compute(d, &split, pred.view()).unwrap();
            (report.train_loss, store.values().to_vec(), loss, metrics)
        };
        let (a, b, c) = (
            run(&with_hidden(0.0)),
            run(&with_hidden(1e6)),
            run(&with_hidden(f64::NAN)),
        );
        assert_eq!(a, b);
        assert_eq!(a.0, c.0);
        assert_eq!(a.1, c.1);
        assert_eq!(a.2.to_bits(), c.2.to_bits());
        assert_eq!(a.3, c.3);
        // And the masking is real: the same entries observed give another loss.
        let full = run(&data);
        assert_ne!(full.2, a.2);
    }

    #[test]
    fn slots_must_match_the_data() {
        let data = samples();
        let mut store = ParamStore::new();
        let model = Model::new(ModelConfig::default(), &mut store, 1).unwrap();
        let err = stage_error(Stage::Pretrain, &model, &mut store, &data, &stage(1), 1);
        assert!(
            err.contains("model slots") && err.contains("Na+,Mg^2+,Cl-,SO4^2-"),
            "{err}"
        );
    }

    #[test]
    fn divergence_names_the_stage_and_epoch() {
        let data = samples();
        let mut store = ParamStore::new();
        let model = small_model(&mut store);
        // A NaN weight, as a blown-up optimiser would leave it.
        store.values_mut()[0] = f64::NAN;
        let err = stage_error(Stage::Finetune, &model, &mut store, &data, &stage(5), 1);
        assert!(err.starts_with("finetune diverged at epoch 0"), "{err}");
    }
}
