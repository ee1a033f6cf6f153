//! The study library's one error type, and whose fault an error is.
//!
//! Every fallible function of `ionode-study` returns [`StudyError`]: a typed cause (the
//! file system, HDF5, JSON, polars, or a typed error of the numeric crates), the user's
//! bad input ([`StudyError::Usage`], [`StudyError::Problems`]), or a broken promise of a
//! file ionode wrote ([`StudyError::Failed`]); [`Context`] wraps any of them in what was
//! being done, as `anyhow` would, so a message reads `cannot write 'x': disk full`.
//!
//! Whose fault: an error is **the user's** (exit code 2 in `ablate`, the code clap uses for
//! usage errors) when some cause in its chain says so: a usage error (a bad argument or
//! input file), a located problem list of a file, or a typed error of the libraries that
//! is about their input (a measured-data [`LoadError`], a unit, an invalid physics input,
//! an invalid config field). Everything else (training diverged, the physics has no
//! solution, a file could not be written) is not (exit code 1). [`is_input`] decides it
//! for one cause; the binary walks the chain.

use ionode_model::ModelError;
use ionode_physics::PhysicsError;
use ionode_train::error::TrainError;
use ionode_train::measured::LoadError;

use crate::units::UnitError;
use hdf5_metno as hdf5;

/// An error of a study library call.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The user's input is wrong: a flag, a file they named or its contents.
    #[error("{0}")]
    Usage(String),
    /// Problems of a manifest, run config or spec file, all of them at once.
    #[error(transparent)]
    Problems(#[from] Problems),
    /// What was being done when `source` failed.
    #[error("{what}")]
    Within {
        what: String,
        #[source]
        source: Box<StudyError>,
    },
    /// A file ionode wrote is not what it wrote, or an outside command failed: the
    /// message says which and how.
    #[error("{0}")]
    Failed(String),
    /// This process's claim on a run was taken over: the store's `Lost`, as text (the
    /// store converts it, so this module needs nothing of the store).
    #[error("{0}")]
    Lost(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error(transparent)]
    Hdf5(#[from] hdf5::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Physics(#[from] PhysicsError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Unit(#[from] UnitError),
}

/// A study library result.
pub type Result<T, E = StudyError> = std::result::Result<T, E>;

impl StudyError {
    /// Whether this error itself says whose fault it is (see [`is_input`]): `None` for
    /// a context or a cause that does not know.
    fn is_input(&self) -> Option<bool> {
        match self {
            StudyError::Usage(_) | StudyError::Problems(_) => Some(true),
            StudyError::Load(_) | StudyError::Unit(_) => Some(true),
            StudyError::Train(e) => Some(train_is_input(e)),
            StudyError::Physics(e) => Some(e.stage().is_none()),
            StudyError::Model(e) => Some(matches!(e, ModelError::Config { .. })),
            StudyError::Within { .. } => None,
            StudyError::Failed(_)
            | StudyError::Lost(_)
            | StudyError::Io(_)
            | StudyError::Utf8(_)
            | StudyError::Hdf5(_)
            | StudyError::Json(_)
            | StudyError::Polars(_) => Some(false),
        }
    }
}

fn train_is_input(e: &TrainError) -> bool {
    match e {
        TrainError::Invalid { .. }
        | TrainError::UnknownFamily { .. }
        | TrainError::NoSlot { .. } => true,
        // A typed solver failure has the stage that failed; an invalid input has none.
        TrainError::Physics(p) => p.stage().is_none(),
        TrainError::Model(ModelError::Config { .. }) => true,
        _ => false,
    }
}

/// Whether one cause of an error chain is about the user's input (`Some(true)`), is not
/// (`Some(false)`), or does not say (`None`): the first cause that says decides.
pub fn is_input(cause: &(dyn std::error::Error + 'static)) -> Option<bool> {
    // A context's cause is boxed, and seen in a chain as the box.
    let study = cause
        .downcast_ref::<StudyError>()
        .or_else(|| cause.downcast_ref::<Box<StudyError>>().map(|b| &**b));
    if let Some(e) = study {
        return e.is_input();
    }
    if cause.is::<Problems>() || cause.is::<LoadError>() || cause.is::<UnitError>() {
        return Some(true);
    }
    if let Some(e) = cause.downcast_ref::<PhysicsError>() {
        return Some(e.stage().is_none());
    }
    if let Some(e) = cause.downcast_ref::<TrainError>() {
        return Some(train_is_input(e));
    }
    if let Some(e) = cause.downcast_ref::<ModelError>() {
        return Some(matches!(e, ModelError::Config { .. }));
    }
    None
}

/// A usage error (the user's input is wrong), formatted like `format!`.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        $crate::errors::StudyError::Usage(format!($($arg)*))
    };
}

/// A [`StudyError::Failed`] (a file ionode wrote is not what it wrote, an outside command
/// failed), formatted like `format!`.
#[macro_export]
macro_rules! failed {
    ($($arg:tt)*) => {
        $crate::errors::StudyError::Failed(format!($($arg)*))
    };
}

/// What was being done, around an error: `.context("cannot write 'x'")`.
pub trait Context<T> {
    /// The error, within `what`.
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
    /// The error, within what `what` says (computed only on failure).
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<StudyError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| within(what.to_string(), e.into()))
    }

    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| within(what().to_string(), e.into()))
    }
}

/// A missing value as a [`StudyError::Failed`] saying what was missing.
impl<T> Context<T> for Option<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.ok_or_else(|| StudyError::Failed(what.to_string()))
    }

    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| StudyError::Failed(what().to_string()))
    }
}

fn within(what: String, source: StudyError) -> StudyError {
    StudyError::Within {
        what,
        source: Box::new(source),
    }
}

/// `.or_usage(|| "cannot read config 'x'")`: an error of reading or parsing something the
/// user named, as a usage error with that context.
pub trait OrUsage<T> {
    fn or_usage(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::fmt::Display> OrUsage<T> for std::result::Result<T, E> {
    fn or_usage(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| StudyError::Usage(format!("{}: {e:#}", what())))
    }
}

/// An error and its causes on one line, `context: cause: cause`, whatever the causes' own
/// formatting: what a failure marker, a note or an `error:` line quotes.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        let text = text.lines().map(str::trim).filter(|l| !l.is_empty());
        parts.push(text.collect::<Vec<_>>().join(" "));
        cause = c.source();
    }
    parts.retain(|p| !p.is_empty());
    parts.join(": ")
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

    /// The first cause in the chain that says whose fault it is.
    fn first(e: &StudyError) -> Option<bool> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cause {
            if let Some(input) = is_input(c) {
                return Some(input);
            }
            cause = c.source();
        }
        None
    }

    #[test]
    fn the_first_cause_that_knows_decides_whose_fault_it_is() {
        let input = crate::usage!("--jobs 0: expected at least 1");
        assert_eq!(first(&input), Some(true));
        let input: Result<()> = Err(input);
        assert_eq!(
            first(&input.context("while planning").unwrap_err()),
            Some(true)
        );
        let diverged = StudyError::from(TrainError::Diverged {
            stage: "finetune".into(),
            epoch: 3,
            loss: f64::NAN,
            detail: "non-finite".into(),
        });
        assert_eq!(first(&diverged), Some(false));
        let bad_field = StudyError::from(TrainError::invalid("n_train", 0, "at least 1"));
        assert_eq!(first(&bad_field), Some(true));
        let io: std::result::Result<(), _> = Err(std::io::Error::other("disk full"));
        let io = io.context("cannot write").unwrap_err();
        assert_eq!(first(&io), Some(false));
        assert_eq!(first(&crate::failed!("something unexpected")), Some(false));
        let ion = StudyError::from(PhysicsError::UnknownIon {
            name: "Fe3+".into(),
            known: "Na+".into(),
        });
        assert_eq!(first(&ion), Some(true));
        let within: Result<()> = Err(ion);
        assert_eq!(
            first(&within.context("--species 'Fe3+'").unwrap_err()),
            Some(true)
        );
        // A bare typed error of a lower crate, as a binary might hold it.
        let bare = TrainError::invalid("n_train", 0, "at least 1");
        assert_eq!(is_input(&bare), Some(true));
    }

    #[test]
    fn a_context_reads_before_its_cause() {
        let io: std::result::Result<(), _> = Err(std::io::Error::other("disk full"));
        let e = io.context("cannot write 'x'").unwrap_err();
        assert_eq!(e.to_string(), "cannot write 'x'");
        let cause = std::error::Error::source(&e).map(|c| c.to_string());
        assert_eq!(cause.as_deref(), Some("disk full"));
        assert_eq!(one_line(&e), "cannot write 'x': disk full");
    }
}
