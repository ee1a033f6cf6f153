//! The report library's one error type.
//!
//! A report fails because a study's files cannot be read ([`ReportError::Study`]), a frame
//! cannot be built or written (polars), a figure cannot be drawn or converted
//! ([`ReportError::Draw`]), or a file cannot be written; [`Context`] wraps any of them in
//! what was being done. None of them is the user's input but an unknown study folder,
//! which `ablate report` checks before it calls in here.

use ionode_study::errors::StudyError;

/// An error of making a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// What was being done when `source` failed.
    #[error("{what}")]
    Within {
        what: String,
        #[source]
        source: Box<ReportError>,
    },
    /// A figure could not be drawn or converted to PDF: what the drawing library said.
    #[error("cannot draw the figure: {0}")]
    Draw(String),
    /// A study's records are not what a report reads (the message says how).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Study(#[from] StudyError),
    #[error(transparent)]
    Train(#[from] ionode_train::error::TrainError),
    #[error(transparent)]
    Format(#[from] std::fmt::Error),
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A report library result.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;

/// A drawing library's error as a [`ReportError::Draw`]: `.map_err(draw)`.
pub fn draw(e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw(e.to_string())
}

/// What was being done, around an error: `.context("cannot write 'x'")`.
pub trait Context<T> {
    /// The error, within `what`.
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
    /// The error, within what `what` says (computed only on failure).
    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<ReportError>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| within(what.to_string(), e.into()))
    }

    fn with_context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| within(what().to_string(), e.into()))
    }
}

fn within(what: String, source: ReportError) -> ReportError {
    ReportError::Within {
        what,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_reads_before_its_cause() {
        let io: Result<()> = Err(std::io::Error::other("disk full").into());
        let e = io.context("cannot write 'x'").unwrap_err();
        assert_eq!(
            ionode_study::errors::one_line(&e),
            "cannot write 'x': disk full"
        );
        assert_eq!(
            draw("no font").to_string(),
            "cannot draw the figure: no font"
        );
    }
}
