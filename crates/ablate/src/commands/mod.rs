//! The subcommands, and how their errors map to exit codes.
//!
//! Exit codes: 0 success; 1 the physics could not be solved (a typed solver failure:
//! no convergence or no physical solution) or an unexpected internal failure; 2 the
//! user's input is wrong (bad flag value, unknown ion or membrane, malformed file,
//! non-electroneutral feed, ion larger than the pore), the same code clap uses for usage
//! errors. Scripts can thus tell "fix your command" from "the model has no answer here".

pub mod data_check;
pub mod data_digitised;
pub mod dspmde_point;
pub mod dspmde_solve;
pub mod lab;
pub mod predict;
pub mod report;
pub mod simulate;
pub mod sweep;
pub mod train;

use crate::cli::{Command, DataCommand, DspmdeCommand};
use anyhow::Result;
use ionode_physics::PhysicsError;
use std::io::{self, Write};

/// Runs one command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Dspmde(DspmdeCommand::Solve(args)) => dspmde_solve::run(&args),
        Command::Dspmde(DspmdeCommand::Point(args)) => dspmde_point::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Data(DataCommand::Check(args)) => data_check::run(&args),
        Command::Data(DataCommand::Digitised(args)) => data_digitised::run(&args),
        Command::Lab(args) => lab::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Check(args) => sweep::check(&args),
        Command::Plan(args) => sweep::plan(&args),
        Command::Run(args) => sweep::run(&args),
        Command::Status(args) => sweep::status(&args),
        Command::Slurm(args) => sweep::slurm(&args),
    }
}

/// Marks an error that is not the user's fault (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Internal(pub String);

/// The exit code of an error (see the module documentation).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<PhysicsError>() {
            return if e.stage().is_some() { 1 } else { 2 };
        }
        if cause.downcast_ref::<Internal>().is_some() {
            return 1;
        }
    }
    2
}

/// The error with its context chain on one line (`context: cause: cause`), whatever the
/// causes' own formatting, so that every failure is exactly one `error:` line.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints a file's problems one per line on stderr and returns the one summary error
/// (`manifest 'FILE': 3 problems`) that ends the command with exit code 2.
pub fn problems(
    kind: &str,
    file: &std::path::Path,
    problems: crate::manifest::Problems,
) -> anyhow::Error {
    for p in &problems.0 {
        eprintln!("{p}");
    }
    let n = problems.0.len();
    anyhow::anyhow!(
        "{kind} '{}': {n} problem{}",
        file.display(),
        if n == 1 { "" } else { "s" }
    )
}

/// Writes to stdout; a closed pipe (`ablate ... | head`) is not an error.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
