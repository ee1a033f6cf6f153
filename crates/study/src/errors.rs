//! How `ablate`'s errors become one `error:` line and an exit code.
//!
//! Exit codes by kind: 0 success; **2 the user's input is wrong** (a flag, a file they
//! named or its contents: a bad manifest, run config, data file or argument; an unknown
//! ion or membrane; a non-electroneutral feed), the code clap uses for usage errors; **1
//! everything else** (training diverged, the physics has no solution or did not converge,
//! a file could not be written, an internal failure). Scripts can thus tell "fix your
//! command" from "the model has no answer here" or "the machine failed".
//!
//! An error is the user's when some cause in its chain says so: a [`Usage`] (what the
//! command code raises for a bad argument or input file), a located problem list of a
//! file, or a typed error of the libraries that is about their input (a measured-data
//! [`LoadError`], a unit, an invalid physics input, an invalid config field).

use ionode_model::ModelError;
use ionode_physics::PhysicsError;
use ionode_train::error::TrainError;
use ionode_train::measured::LoadError;

/// The user's input is wrong (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// An error that is the user's (exit code 2), formatted like `format!`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        anyhow::Error::new($crate::errors::Usage(format!($($arg)*)))
    };
}

/// `.or_usage(|| "cannot read config 'x'")`: an error of reading or parsing something the
/// user named, as a [`Usage`] error (exit code 2) with that context.
pub trait OrUsage<T> {
    fn or_usage(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: std::fmt::Display> OrUsage<T> for Result<T, E> {
    fn or_usage(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| crate::usage!("{}: {e:#}", what()))
    }
}

/// Whether one cause is about the user's input.
fn is_input(cause: &(dyn std::error::Error + 'static)) -> Option<bool> {
    if cause.is::<Usage>() || cause.is::<LoadError>() || cause.is::<crate::units::UnitError>() {
        return Some(true);
    }
    if let Some(e) = cause.downcast_ref::<PhysicsError>() {
        // A typed solver failure has the stage that failed; an invalid input has none.
        return Some(e.stage().is_none());
    }
    if let Some(e) = cause.downcast_ref::<TrainError>() {
        return match e {
            TrainError::Invalid { .. }
            | TrainError::UnknownFamily { .. }
            | TrainError::NoSlot { .. } => Some(true),
            TrainError::Physics(p) => Some(p.stage().is_none()),
            TrainError::Model(ModelError::Config { .. }) => Some(true),
            _ => Some(false),
        };
    }
    if let Some(e) = cause.downcast_ref::<ModelError>() {
        return Some(matches!(e, ModelError::Config { .. }));
    }
    None
}

/// The exit code of an error: the first cause in the chain that says whose it is decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(input) = is_input(cause) {
            return if input { 2 } else { 1 };
        }
    }
    1
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

/// Problems of a manifest, run config or spec file, one line each (`FILE:LINE:COL:
/// message`), all of a file at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.join("\n"))
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_cause_that_knows_decides_the_exit_code() {
        let input = crate::usage!("--jobs 0: expected at least 1");
        assert_eq!(exit_code(&input), 2);
        assert_eq!(exit_code(&input.context("while planning")), 2);
        let diverged = anyhow::Error::new(TrainError::Diverged {
            stage: "finetune".into(),
            epoch: 3,
            loss: f64::NAN,
            detail: "non-finite".into(),
        });
        assert_eq!(exit_code(&diverged), 1);
        let bad_field = anyhow::Error::new(TrainError::invalid("n_train", 0, "at least 1"));
        assert_eq!(exit_code(&bad_field), 2);
        let io = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(exit_code(&io), 1);
        let unknown = anyhow::anyhow!("something unexpected");
        assert_eq!(exit_code(&unknown), 1);
        let ion = anyhow::Error::new(PhysicsError::UnknownIon {
            name: "Fe3+".into(),
            known: "Na+".into(),
        });
        assert_eq!(exit_code(&ion), 2);
    }
}
