//! # ionode-physics
//!
//! The Donnan-steric pore model with dielectric exclusion (DSPM-DE) for multi-ion
//! nanofiltration, written to reproduce WaterTAP 1.8.0's `NanofiltrationDSPMDE0D` (see
//! `docs/DSPMDE.md`) and to run fast enough to generate pre-training data for the
//! neural ODE.
//!
//! - [`ions`]: the ion database; [`membrane`]: membrane parameters and presets.
//! - [`partition`]: steric, Born and hindrance constants per ion.
//! - [`point`]: the point model (one location), flux- or pressure-driven.
//! - [`module0d`]: WaterTAP's 0D module (inlet/outlet average).
//! - [`feed`]: feed compositions from salt formulas, electroneutrality and balancing.
//! - [`simulate`]: random-feed datasets over a flux grid, in parallel, reproducibly.
//!
//! The crate does no I/O: it takes values and returns values or a typed [`PhysicsError`].

// `!(x > 0.0)` is deliberate throughout: it is true for NaN, so a NaN fails every range
// check. Index loops mirror the equations' subscripts over several parallel arrays.
#![allow(clippy::neg_cmp_op_on_partial_ord, clippy::needless_range_loop)]

pub mod activity;
pub mod cases;
pub mod charge;
pub mod constants;
mod donnan;
pub mod error;
pub mod feed;

mod flux_root;
pub mod ions;
pub mod lab;
mod linalg;
pub mod membrane;
pub mod module0d;
pub mod partition;
pub mod point;
pub mod polarisation;
pub mod simulate;

pub use activity::ActivityModel;
pub use charge::{ChargeModel, ChargedMembrane};
pub use error::{PhysicsError, Result, Stage};
pub use ions::{Ion, IonDb};
pub use membrane::Membrane;
pub use point::{Drive, PointSolution, PointSolver, PointSpec};
pub use polarisation::{FilmModel, Polarisation, SpiralWound};
