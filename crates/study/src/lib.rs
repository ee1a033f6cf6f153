//! Studies on files: everything between a manifest and a finished run's record, with no
//! command line and no report.
//!
//! A study starts at [`manifest::load`] (a TOML manifest, checked with every problem
//! located, expanded into a [`manifest::Plan`] of runs); [`executor`] runs a plan's runs
//! (claims, batches, rungs); one run is [`runner::execute`]
//! (its data read through a [`runner::DataCache`], then `ionode_train::run::run`); the run
//! store ([`store`]: markers and claims) and a run's record ([`record`], `run.h5`) keep the
//! results, [`halving`], [`hyperband`] and [`tpe`] search over them (scored by [`score`]), and [`slurm`] writes the
//! array scripts that run a plan on a cluster. A finished run predicts new feeds through
//! [`predictor`]. Below them are the file rules every reader and writer follows:
//! [`limits`] and [`inputs`] (what is read), [`output`] and [`h5`] (how it is written),
//! [`process`] and [`provenance`]; and the file formats of the inputs:
//! [`tabular`] (CSV or Parquet measured data), [`simfile`] and [`simulator`] (simulated
//! sets and the settings that make them), [`membrane`], [`ions`] and [`units`].
//! Errors are classified once, in [`errors`]. Nothing here prints: messages for people
//! are returned or passed to a callback, and the `ablate` binary writes them.

pub mod annotations;
pub mod errors;
pub mod executor;
pub mod facts;
pub mod h5;
pub mod halving;
pub mod hyperband;
pub mod inputs;
pub mod ions;
pub mod limits;
pub mod manifest;
pub mod membrane;
pub mod output;
pub mod predictor;
pub mod process;
pub mod provenance;
pub mod record;
pub mod runner;
pub mod score;
pub mod simfile;
pub mod simulator;
pub mod slurm;
pub mod store;
pub mod tabular;
pub mod tpe;
pub mod units;
