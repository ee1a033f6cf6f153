//! The crate's error type.
//!
//! Every shape problem is caught when an op is *recorded* (never during backward), and the
//! message carries both shapes, so a mistake in model code points at the offending line.

use crate::shape::{DimsError, Shape};

/// Errors raised while recording ops, running backward or handling parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdError {
    /// Two operands whose shapes do not fit together.
    #[error("{op}: shapes {lhs} and {rhs} are incompatible ({why})")]
    Shape {
        /// The op being recorded.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Shape,
        /// Shape of the second operand.
        rhs: Shape,
        /// What rule was broken.
        why: &'static str,
    },
    /// An axis argument outside the operand's rank.
    #[error("{op}: axis {axis} is out of range for shape {shape}")]
    Axis {
        /// The op being recorded.
        op: &'static str,
        /// The requested axis.
        axis: usize,
        /// The operand's shape.
        shape: Shape,
    },
    /// A single operand whose shape is not acceptable for the op.
    #[error("{op}: invalid shape {shape} ({why})")]
    BadShape {
        /// The op being recorded.
        op: &'static str,
        /// The operand's shape.
        shape: Shape,
        /// What rule was broken.
        why: &'static str,
    },
    /// A dimension list that cannot be a [`Shape`] (rank above 3 or a zero extent).
    #[error("invalid dimensions {dims:?}: {why}")]
    Dims {
        /// The offending dimensions (only the first three are kept after a rank error).
        dims: Vec<usize>,
        /// What rule was broken.
        why: &'static str,
    },
    /// A data slice whose length does not match the shape it was given with.
    #[error("{op}: data has {len} values but shape {shape} needs {need}")]
    DataLen {
        /// The operation.
        op: &'static str,
        /// Length of the data.
        len: usize,
        /// The requested shape.
        shape: Shape,
        /// Number of values the shape needs.
        need: usize,
    },
    /// A handle from another tape, or from before the last [`crate::Tape::clear`].
    #[error("stale variable handle #{idx} (recorded on another tape or before the last clear)")]
    StaleVar {
        /// The handle's node index.
        idx: u32,
    },
    /// An op argument that is not allowed (for example a mask that requires a gradient).
    #[error("{op}: {why}")]
    Invalid {
        /// The op being recorded.
        op: &'static str,
        /// What rule was broken.
        why: &'static str,
    },
    /// A parameter name registered twice.
    #[error("parameter `{0}` already exists")]
    DuplicateParam(String),
    /// A parameter name that is not registered.
    #[error("unknown parameter `{0}`")]
    UnknownParam(String),
}

/// Result alias used throughout the crate.
pub type Result<T, E = AdError> = std::result::Result<T, E>;

impl From<DimsError> for AdError {
    fn from(DimsError { dims, why }: DimsError) -> AdError {
        AdError::Dims { dims, why }
    }
}
