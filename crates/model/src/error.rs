//! The crate's error type: the model never returns NaN silently.

use ionode_autodiff::AdError;

/// Errors from building, running or loading the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// An invalid configuration field.
    #[error("model config: {field}: {why}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A batch whose arrays do not fit the model or each other, or hold invalid values.
    #[error("batch: {0}")]
    Batch(String),
    /// The state or the vector field became NaN or infinite.
    #[error("non-finite {what} at s = {s} (sample {sample})")]
    NonFinite {
        /// What became non-finite (state, field, error estimate).
        what: &'static str,
        /// First offending sample.
        sample: usize,
        /// Position along the normalised trajectory, `s` in `[0, 1]`.
        s: f64,
    },
    /// Dormand-Prince needed more attempted steps than allowed.
    #[error("Dormand-Prince exceeded max_steps = {max_steps} at s = {s} (step {h:e})")]
    MaxSteps {
        /// The limit.
        max_steps: usize,
        /// How far it got.
        s: f64,
        /// The last step size.
        h: f64,
    },
    /// Dormand-Prince's step size underflowed.
    #[error("Dormand-Prince step size {h:e} too small at s = {s}")]
    StepTooSmall {
        /// The step.
        h: f64,
        /// Where.
        s: f64,
    },
    /// Saved parameters that do not match the model.
    #[error("saved parameters: {0}")]
    Params(String),
    /// An error of the autodiff tape (a shape bug in the model).
    #[error(transparent)]
    Autodiff(#[from] AdError),
}

/// Result alias of the crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
