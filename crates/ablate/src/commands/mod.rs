//! The subcommands: each turns its raw arguments into validated values (a bad one is a
//! usage error, [`crate::usage!`], exit code 2), does its work through the library modules
//! and reports. How errors become one line and an exit code is [`exit_code`] and
//! [`one_line`].

pub mod data_check;
pub mod data_digitised;
pub mod dspmde_point;
pub mod dspmde_solve;
pub mod lab;
pub mod predict;
pub mod report;
pub mod runs;
pub mod search_curves;
pub mod search_text;
pub mod simulate;
pub mod sweep;
pub mod train;

use crate::cli::{Command, DataCommand, DspmdeCommand};
use anyhow::Result;
use std::io::{self, Write};

/// The environment variable that pins the kernels to one instruction-set path
/// (`portable`, `avx2`, `avx512`): every path gives the same bits, and this lets anyone
/// check that on their own machine.
pub const KERNEL_PATH_ENV: &str = "IONODE_KERNEL_PATH";

/// Applies `IONODE_KERNEL_PATH`, if set.
fn kernel_path_from_env() -> Result<()> {
    use ionode_autodiff::KernelPath;
    let Some(value) = std::env::var_os(KERNEL_PATH_ENV) else {
        return Ok(());
    };
    let value = value.to_string_lossy();
    let names: Vec<&str> = KernelPath::ALL.iter().map(|p| p.name()).collect();
    let path = KernelPath::from_name(value.trim()).ok_or_else(|| {
        crate::usage!(
            "{KERNEL_PATH_ENV}='{value}': expected one of {}",
            names.join(", ")
        )
    })?;
    ionode_autodiff::force_kernel_path(Some(path))
        .map_err(|e| crate::usage!("{KERNEL_PATH_ENV}='{value}': {e}"))
}

/// Runs one command.
pub fn run(command: Command) -> Result<()> {
    kernel_path_from_env()?;
    match command {
        Command::Dspmde(DspmdeCommand::Solve(args)) => dspmde_solve::run(&args),
        Command::Dspmde(DspmdeCommand::Point(args)) => dspmde_point::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Data(DataCommand::Check(args)) => data_check::run(&args),
        Command::Data(DataCommand::Digitised(args)) => data_digitised::run(&args),
        Command::Lab(args) => lab::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Report(args) => report::run(&args),
        Command::SearchCurves(args) => search_curves::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Check(args) => sweep::check(&args),
        Command::Plan(args) => sweep::plan(&args),
        Command::Run(args) => sweep::run(&args),
        Command::Status(args) => sweep::status(&args),
        Command::Slurm(args) => sweep::slurm(&args),
        Command::Runs(args) => runs::runs(&args),
        Command::Compare(args) => runs::compare(&args),
        Command::Tag(args) => runs::tag(&args),
        Command::Index(args) => runs::index(&args),
    }
}

use ionode_study::errors::Problems;

/// The exit code of an error: 0 success; **2 the user's input is wrong** (a flag, a file
/// they named or its contents: a bad manifest, run config, data file or argument; an
/// unknown ion or membrane; a non-electroneutral feed), the code clap uses for usage
/// errors; **1 everything else** (training diverged, the physics has no solution, a file
/// could not be written, an internal failure). Scripts can thus tell "fix your command"
/// from "the model has no answer here" or "the machine failed". The first cause in the
/// chain that says whose fault it is decides ([`ionode_study::errors::is_input`]).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    match whose(err.as_ref()) {
        Some(true) => 2,
        _ => 1,
    }
}

/// Whether the first cause of a chain that says whose fault it is says the user's; a
/// report's error wrapping a study's error is classified by the study's chain.
fn whose(error: &(dyn std::error::Error + 'static)) -> Option<bool> {
    use ionode_report::error::ReportError;
    use ionode_track::error::TrackError;
    let mut cause = Some(error);
    while let Some(c) = cause {
        let report = c
            .downcast_ref::<ReportError>()
            .or_else(|| c.downcast_ref::<Box<ReportError>>().map(|b| &**b));
        if let Some(ReportError::Study(study)) = report {
            return whose(study);
        }
        if c.is::<ionode_track::error::ExprError>() {
            return Some(true);
        }
        let track = c
            .downcast_ref::<TrackError>()
            .or_else(|| c.downcast_ref::<Box<TrackError>>().map(|b| &**b));
        match track {
            Some(TrackError::Study(study)) => return whose(study),
            Some(e) => return Some(e.is_input()),
            None => {}
        }
        if let Some(input) = ionode_study::errors::is_input(c) {
            return Some(input);
        }
        cause = c.source();
    }
    None
}

/// The error with its context chain on one line (`context: cause: cause`), whatever the
/// causes' own formatting, so that every failure is exactly one `error:` line.
pub fn one_line(err: &anyhow::Error) -> String {
    ionode_study::errors::one_line(err.as_ref())
}

/// Writes to stdout; a closed pipe (`ablate ... | head`) is not an error.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints a file's problems one per line on stderr and returns the one summary error
/// (`manifest 'FILE': 3 problems`, exit code 2).
pub fn problems(kind: &str, file: &std::path::Path, problems: Problems) -> anyhow::Error {
    for p in &problems.0 {
        eprintln!("{p}");
    }
    let n = problems.0.len();
    crate::usage!(
        "{kind} '{}': {n} problem{}",
        file.display(),
        if n == 1 { "" } else { "s" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ionode_report::error::ReportError;
    use ionode_study::errors::StudyError;

    #[test]
    fn the_first_cause_that_knows_decides_the_exit_code() {
        let usage = crate::usage!("--jobs 0: expected at least 1");
        assert_eq!(exit_code(&usage), 2);
        assert_eq!(exit_code(&usage.context("while planning")), 2);
        let io = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(exit_code(&io), 1);
        assert_eq!(exit_code(&anyhow::anyhow!("something unexpected")), 1);
    }

    #[test]
    fn a_report_error_is_classified_by_the_study_error_it_wraps() {
        let bad_plan = StudyError::Usage("'plan.json' is empty".into());
        let wrapped: std::result::Result<(), ReportError> = Err(ReportError::Study(bad_plan));
        let e = ionode_report::error::Context::context(wrapped, "cannot report").unwrap_err();
        assert_eq!(exit_code(&anyhow::Error::new(e)), 2);
        let disk = StudyError::Io(std::io::Error::other("disk full"));
        assert_eq!(exit_code(&anyhow::Error::new(ReportError::Study(disk))), 1);
        let e = anyhow::Error::new(ReportError::Draw("no font".into()));
        assert_eq!(exit_code(&e), 1);
        assert_eq!(one_line(&e), "cannot draw the figure: no font");
    }
}
