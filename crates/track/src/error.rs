//! `TrackError`: the one error of the crate.

use ionode_study::errors::StudyError;

/// A located problem of a filter expression: the column (1-based, in characters) and
/// what was wrong or expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--where \"{expression}\": column {column}: {message}")]
pub struct ExprError {
    pub expression: String,
    pub column: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// The user's input is wrong: an argument, a folder, a column name.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Expression(#[from] ExprError),
    #[error(transparent)]
    Study(#[from] StudyError),
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl TrackError {
    /// Whether the error is the user's (exit code 2) rather than the files' (1); a study
    /// error says by its own chain.
    pub fn is_input(&self) -> bool {
        match self {
            TrackError::Usage(_) | TrackError::Expression(_) => true,
            TrackError::Study(e) => ionode_study::errors::is_input(e).unwrap_or(false),
            TrackError::Polars(_) | TrackError::Json(_) => false,
        }
    }
}

pub type Result<T, E = TrackError> = std::result::Result<T, E>;
