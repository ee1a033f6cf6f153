//! What watches a training stage: the stage's loop ([`crate::trainer::train_stage`]) only
//! steps, evaluates and asks its observers after each epoch, as argmin separates its
//! solver, executor and observers. Each concern is one type here:
//!
//! - [`DivergenceWatch`]: every test of divergence (a failed or non-finite step, a training
//!   loss grown past `divergence_factor` times its start, a non-finite validation loss),
//!   with the one error each gives;
//! - [`KeepBest`]: early stopping on the validation loss, keeping the best epoch's
//!   parameters to restore at the end (the last epoch's without validation rows), as
//!   Keras's `EarlyStopping(restore_best_weights=True)`;
//! - [`Curves`]: the per-epoch curves of the stage's report;
//! - [`Progress`]: the caller's per-epoch callback (progress bars, logs).
//!
//! The stage's names and reports ([`Stage`], [`EpochReport`], [`StageReport`]) are here
//! too, below the loop that fills them (`trainer` re-exports them).

use crate::early_stop::{Decision, EarlyStopper, EarlyStopping};
use crate::error::TrainError;
use serde::{Deserialize, Serialize};

/// A training stage of a run (MODEL.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// On DSPM-DE simulations.
    Pretrain,
    /// On measurements, from the pre-trained parameters (or from scratch).
    Finetune,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Finetune => "finetune",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One epoch's numbers, for progress reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    pub stage: Stage,
    pub epoch: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub validation_loss: f64,
    pub best_epoch: usize,
    pub seconds: f64,
}

/// What a stage did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    pub stage: Stage,
    pub epochs_run: usize,
    /// The epoch whose parameters were kept (0-based).
    pub best_epoch: usize,
    pub best_validation_loss: f64,
    pub stopped_early: bool,
    /// Mean training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub validation_loss: Vec<f64>,
    pub seconds: f64,
}

/// A finished epoch as observers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochEnd {
    pub stage: Stage,
    /// 0-based.
    pub epoch: usize,
    /// The stage's largest number of epochs.
    pub epochs: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// The validation loss; `None` without validation rows.
    pub validation_loss: Option<f64>,
    /// The epoch whose parameters are kept so far and its validation loss (NaN without
    /// validation rows), as [`KeepBest`] decided; observers after it read it.
    pub best: (usize, f64),
    pub seconds: f64,
}

/// What an observer asks of the stage after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// End the stage after this epoch.
    Stop,
}

/// One concern that watches a stage's epochs.
pub trait Observer {
    /// Called after every epoch, in the order the observers were given; `params` are the
    /// parameters after the epoch. An observer may set `end.best`.
    fn epoch_end(&mut self, end: &mut EpochEnd, params: &[f64]) -> Verdict;
}

/// Every test of a stage's divergence, in one place.
#[derive(Debug, Clone)]
pub struct DivergenceWatch {
    stage: Stage,
    /// The loss of the stage's starting parameters (NaN when they could not be
    /// evaluated: then the first step fails instead).
    start_loss: f64,
    factor: f64,
    learning_rate: f64,
}

impl DivergenceWatch {
    pub fn new(stage: Stage, start_loss: f64, factor: f64, learning_rate: f64) -> Self {
        DivergenceWatch {
            stage,
            start_loss,
            factor,
            learning_rate,
        }
    }

    fn diverged(&self, epoch: usize, loss: f64, detail: String) -> TrainError {
        TrainError::Diverged {
            stage: self.stage.to_string(),
            epoch,
            loss,
            detail,
        }
    }

    /// A model failure in a step: a non-finite state or a stalled adaptive solver (the
    /// batch itself was checked against the model's slots).
    pub fn model_failure(&self, epoch: usize, e: ionode_model::ModelError) -> TrainError {
        self.diverged(epoch, f64::NAN, e.to_string())
    }

    /// A step's loss must be finite.
    pub fn step(&self, epoch: usize, loss: f64) -> Result<(), TrainError> {
        if loss.is_finite() {
            Ok(())
        } else {
            Err(self.diverged(epoch, loss, "non-finite training loss".into()))
        }
    }

    /// The optimiser refused a step (non-finite gradients or parameters).
    pub fn optimiser(&self, epoch: usize, loss: f64, e: impl std::fmt::Display) -> TrainError {
        self.diverged(epoch, loss, e.to_string())
    }

    /// An epoch's mean training loss must stay within `divergence_factor` times the
    /// starting loss: a learning rate far too large sends the loss to 1e15 without ever
    /// making it NaN.
    pub fn epoch(&self, epoch: usize, train_loss: f64) -> Result<(), TrainError> {
        if self.start_loss > 0.0 && train_loss > self.factor * self.start_loss {
            return Err(self.diverged(
                epoch,
                train_loss,
                format!(
                    "the mean training loss grew to more than {} times its starting value {:.3e} \
                     (divergence_factor); a smaller learning_rate ({}) or clip_norm may help",
                    self.factor, self.start_loss, self.learning_rate
                ),
            ));
        }
        Ok(())
    }

    /// The validation loss must be finite.
    pub fn validation(&self, epoch: usize, loss: f64) -> Result<(), TrainError> {
        if loss.is_finite() {
            Ok(())
        } else {
            Err(self.diverged(epoch, loss, "non-finite validation loss".into()))
        }
    }
}

/// Early stopping with the best epoch's parameters kept: patience on the validation loss
/// ([`EarlyStopper`]), and a copy of the parameters of every epoch that improves (of every
/// epoch without validation rows, so the last is kept).
#[derive(Debug, Clone)]
pub struct KeepBest {
    stopper: EarlyStopper,
    best: Vec<f64>,
    stopped_early: bool,
}

impl KeepBest {
    /// Starts from the stage's initial parameters.
    pub fn new(config: EarlyStopping, initial: &[f64]) -> Self {
        KeepBest {
            stopper: EarlyStopper::new(config),
            best: initial.to_vec(),
            stopped_early: false,
        }
    }

    /// The kept parameters.
    pub fn parameters(&self) -> &[f64] {
        &self.best
    }

    /// Whether patience ran out before the last epoch.
    pub fn stopped_early(&self) -> bool {
        self.stopped_early
    }
}

impl Observer for KeepBest {
    fn epoch_end(&mut self, end: &mut EpochEnd, params: &[f64]) -> Verdict {
        let Some(loss) = end.validation_loss else {
            // Nothing to stop on: every epoch runs and the last is kept.
            self.best.copy_from_slice(params);
            end.best = (end.epoch, f64::NAN);
            return Verdict::Continue;
        };
        let decision = self.stopper.observe(end.epoch, loss);
        if let Some((epoch, best_loss)) = self.stopper.best() {
            if epoch == end.epoch {
                self.best.copy_from_slice(params);
            }
            end.best = (epoch, best_loss);
        }
        if decision == Decision::Stop {
            self.stopped_early = true;
            Verdict::Stop
        } else {
            Verdict::Continue
        }
    }
}

/// The per-epoch curves of a stage's report.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub train_loss: Vec<f64>,
    /// NaN for every epoch without validation rows.
    pub validation_loss: Vec<f64>,
    /// The kept epoch and its validation loss after the last epoch.
    pub best: Option<(usize, f64)>,
}

impl Observer for Curves {
    fn epoch_end(&mut self, end: &mut EpochEnd, _: &[f64]) -> Verdict {
        self.train_loss.push(end.train_loss);
        self.validation_loss
            .push(end.validation_loss.unwrap_or(f64::NAN));
        self.best = Some(end.best);
        Verdict::Continue
    }
}

impl Curves {
    /// The stage's report from its curves.
    pub fn report(self, stage: Stage, stopped_early: bool, seconds: f64) -> StageReport {
        let (best_epoch, best_validation_loss) = self.best.unwrap_or((0, f64::INFINITY));
        StageReport {
            stage,
            epochs_run: self.train_loss.len(),
            best_epoch,
            best_validation_loss,
            stopped_early,
            train_loss: self.train_loss,
            validation_loss: self.validation_loss,
            seconds,
        }
    }
}

/// The caller's per-epoch callback.
pub struct Progress<'a>(pub &'a mut dyn FnMut(&EpochReport));

impl Observer for Progress<'_> {
    fn epoch_end(&mut self, end: &mut EpochEnd, _: &[f64]) -> Verdict {
        (self.0)(&EpochReport {
            stage: end.stage,
            epoch: end.epoch,
            epochs: end.epochs,
            train_loss: end.train_loss,
            validation_loss: end.validation_loss.unwrap_or(f64::NAN),
            best_epoch: end.best.0,
            seconds: end.seconds,
        });
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(epoch: usize, validation: Option<f64>) -> EpochEnd {
        EpochEnd {
            stage: Stage::Finetune,
            epoch,
            epochs: 10,
            train_loss: 1.0,
            validation_loss: validation,
            best: (0, f64::INFINITY),
            seconds: 0.0,
        }
    }

    #[test]
    fn keep_best_keeps_the_best_epochs_parameters_and_stops_after_patience() {
        let mut keep = KeepBest::new(
            EarlyStopping {
                patience: 2,
                min_delta: 0.0,
            },
            &[0.0],
        );
        let losses = [3.0, 1.0, 2.0, 2.5, 0.5];
        let mut verdicts = Vec::new();
        for (epoch, loss) in losses.iter().enumerate() {
            let mut e = end(epoch, Some(*loss));
            verdicts.push(keep.epoch_end(&mut e, &[epoch as f64]));
            if epoch >= 1 {
                assert_eq!(e.best, (1, 1.0));
            }
            if verdicts.last() == Some(&Verdict::Stop) {
                break;
            }
        }
        assert_eq!(
            verdicts,
            [
                Verdict::Continue,
                Verdict::Continue,
                Verdict::Continue,
                Verdict::Stop
            ]
        );
        assert_eq!(keep.parameters(), &[1.0]);
        assert!(keep.stopped_early());
    }

    #[test]
    fn without_validation_every_epoch_runs_and_the_last_is_kept() {
        let mut keep = KeepBest::new(
            EarlyStopping {
                patience: 1,
                min_delta: 0.0,
            },
            &[0.0],
        );
        let mut curves = Curves::default();
        for epoch in 0..4 {
            let mut e = end(epoch, None);
            assert_eq!(keep.epoch_end(&mut e, &[epoch as f64]), Verdict::Continue);
            curves.epoch_end(&mut e, &[]);
        }
        assert_eq!(keep.parameters(), &[3.0]);
        let report = curves.report(Stage::Finetune, keep.stopped_early(), 0.0);
        assert_eq!((report.epochs_run, report.best_epoch), (4, 3));
        assert!(report.best_validation_loss.is_nan());
        assert!(report.validation_loss.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn divergence_is_a_non_finite_loss_or_growth_past_the_factor() {
        let watch = DivergenceWatch::new(Stage::Pretrain, 2.0, 10.0, 1e-3);
        assert!(watch.step(0, 1.0).is_ok());
        assert!(watch.step(0, f64::NAN).is_err());
        assert!(watch.epoch(3, 19.9).is_ok());
        let e = watch.epoch(3, 20.1).unwrap_err().to_string();
        assert!(
            e.contains("pretrain") && e.contains("divergence_factor"),
            "{e}"
        );
        assert!(watch.validation(1, f64::INFINITY).is_err());
        // Starting parameters that could not be evaluated leave the growth test out.
        let unknown = DivergenceWatch::new(Stage::Pretrain, f64::NAN, 10.0, 1e-3);
        assert!(unknown.epoch(0, 1e300).is_ok());
    }
}
