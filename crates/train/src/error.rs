//! Typed errors of the training-data pipeline (samples, splits, metrics, calibration).
//!
//! Every message names the thing that is wrong and what would be valid, so the `ablate`
//! binary can print it as one `error:` line. The measured-data loader has its own
//! [`crate::measured::LoadError`], which lists many problems of a file at once.

use ionode_physics::PhysicsError;

/// Result with a [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// What can go wrong between loaded data and a trained or calibrated model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// An ion of the data has no slot in the requested slot list.
    #[error("ion {ion} of {location} has no slot; the slots are {slots}")]
    NoSlot {
        ion: String,
        /// Where the ion occurs, e.g. `the simulated dataset` or `line 7`.
        location: String,
        slots: String,
    },
    /// A value outside its valid range (a fraction, a batch size, a slot list).
    #[error("invalid {field} = {value}: expected {expected}")]
    Invalid {
        field: String,
        value: String,
        expected: String,
    },
    /// The family named for a leave-one-family-out split is not in the data.
    #[error("test family '{family}' is not in the data; families present: {present}")]
    UnknownFamily { family: String, present: String },
    /// Arrays whose shapes do not agree.
    #[error("shape mismatch in {what}: {detail}")]
    Shape { what: String, detail: String },
    /// A physics error outside the per-point solves (those are counted, not raised).
    #[error(transparent)]
    Physics(#[from] PhysicsError),
    /// The model failed (a non-finite state, an adaptive solver past its step limit, a bad
    /// batch).
    #[error(transparent)]
    Model(#[from] ionode_model::ModelError),
    /// The tape refused an operation.
    #[error(transparent)]
    Autodiff(#[from] ionode_autodiff::AdError),
    /// Training diverged; the run stops, nothing else of a sweep is affected.
    #[error("{stage} diverged at epoch {epoch} (loss {loss:.4e}): {detail}")]
    Diverged {
        stage: String,
        epoch: usize,
        loss: f64,
        detail: String,
    },
}

impl TrainError {
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        TrainError::Invalid {
            field: field.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// The same error with its field inside `parent` (`learning_rate` -> `finetune.learning_rate`).
    pub fn within(self, parent: &str) -> Self {
        match self {
            TrainError::Invalid {
                field,
                value,
                expected,
            } => TrainError::Invalid {
                field: format!("{parent}.{field}"),
                value,
                expected,
            },
            other => other,
        }
    }

    pub(crate) fn shape(what: impl Into<String>, detail: impl Into<String>) -> Self {
        TrainError::Shape {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
