//! # ionode-train
//!
//! Datasets and training for the neural ODE:
//!
//! - [`measured`]: the CSV format in which users bring their own nanofiltration
//!   measurements (and in which the surrogate laboratory writes its synthetic ones), with a
//!   validating loader;
//! - [`data`]: [`data::Samples`], simulated or measured points over ordered ion slots, with
//!   subsets and seeded batches;
//! - [`split`]: seeded train / validation / test splits (random, leave one family out,
//!   first n for data-limited studies);
//! - [`metrics`]: MAE, RMSE and R^2 of rejection per ion and overall, electroneutrality
//!   residual;
//! - [`augment`]: Gaussian noise augmentation of targets from their stated uncertainty;
//! - [`early_stop`]: patience-based early stopping;
//! - [`ensemble`]: ensembles of a run and their prediction intervals (spread or
//!   conformal), with coverage;
//! - [`calibrate`]: the classical baseline, DSPM-DE with its membrane calibrated on the
//!   training data;
//! - [`optim`]: Adam and gradient clipping;
//! - [`parallel`]: data-parallel mini-batch gradients over fixed micro-batches, the same
//!   bits at any thread count;
//! - [`trainer`]: one training stage (pre-training or fine-tuning) with early stopping;
//! - [`run`]: **the run** as a typed value: [`run::RunConfig`] (validated in one place) and
//!   [`run::run`], which chains the stages (or calibrates DSPM-DE) on loaded data and
//!   returns a [`run::RunOutcome`].
//!
//! The crate does no I/O: it takes values (the text of a file, a simulated dataset) and
//! returns values or typed errors ([`measured::LoadError`], [`error::TrainError`]).

pub mod augment;
pub mod calibrate;
pub mod checked;
pub mod data;
pub mod early_stop;
pub mod ensemble;
pub mod error;
pub mod measured;
pub mod metrics;
pub mod observe;
pub mod optim;
pub mod parallel;
pub mod run;
pub mod split;
pub mod trainer;
