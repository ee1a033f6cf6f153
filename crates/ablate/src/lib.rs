//! The `ablate` program as a library: everything but argument parsing's entry point and
//! the exit code lives here, so tests, fuzz targets and other programs can call a manifest
//! loader or a run directly.
//!
//! Layers, from the edge inward: [`cli`] (raw arguments) -> [`commands`] (one function per
//! subcommand, which turns raw values into validated ones and reports) -> the run store
//! ([`manifest`], [`store`], [`runner`]) and the report ([`report`]) -> file formats
//! ([`h5`], [`tabular`], [`output`]). The numerical work is in the library crates
//! (`ionode-physics`, `-model`, `-train`), which never print or exit.

pub mod cli;
pub mod commands;
pub mod errors;
pub mod h5;
pub mod inputs;
pub mod interrupt;
pub mod ions;
pub mod json;
pub mod limits;
pub mod logging;
pub mod manifest;
pub mod membrane;
pub mod output;
pub mod predictor;
pub mod process;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod report;
pub mod runner;
pub mod search;
pub mod simfile;
pub mod simulator;
pub mod slurm;
pub mod store;
pub mod tabular;
pub mod units;
