//! Placeholder; the crate doc is written below once the API settles.
#![forbid(unsafe_op_in_unsafe_fn)]

mod backward;
mod error;
pub mod fastmath;
mod gemm;
pub mod gradcheck;
mod ops;
mod params;
mod shape;
mod tape;

pub use error::{AdError, Result};
pub use params::{ParamId, ParamStore};
pub use shape::{Shape, MAX_RANK};
pub use tape::{Tape, TapeStats, Var};
