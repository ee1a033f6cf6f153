//! The `ablate` program as a library: everything but argument parsing's entry point and
//! the exit code lives here, so tests and other programs can run a command directly.
//!
//! Layers, from the edge inward: [`cli`] (raw arguments) -> [`commands`] (one function per
//! subcommand, which turns raw values into validated ones, calls the libraries and
//! reports) -> `ionode-study` (manifests, the run store, one run on files, Slurm scripts,
//! the file formats) and `ionode-report` (summary, statistics, tables, figures, the page).
//! The numerical work is in the library crates (`ionode-physics`, `-model`, `-train`),
//! which never print or exit. [`progress`] and [`logging`] are the terminal, [`interrupt`]
//! what a signal does, [`json`] the order-preserving JSON of `dspmde solve`'s case files.

/// A usage error (the user's input is wrong, exit code 2) as an `anyhow::Error`,
/// formatted like `format!`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        anyhow::Error::from(ionode_study::usage!($($arg)*))
    };
}

pub mod cli;
pub mod commands;
pub mod interrupt;
pub mod json;
pub mod logging;
pub mod progress;
