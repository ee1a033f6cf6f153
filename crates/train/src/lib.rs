//! # ionode-train
//!
//! Datasets and training for the neural ODE. Today it holds [`measured`]: the CSV format in
//! which users bring their own nanofiltration measurements (and in which the surrogate
//! laboratory writes its synthetic ones), with a validating loader.
//!
//! The crate does no I/O: the loader takes the text of a file and returns the loaded data
//! or a typed error listing every problem.

pub mod augment;
pub mod calibrate;
pub mod data;
pub mod early_stop;
pub mod error;
pub mod measured;
pub mod metrics;
pub mod split;
