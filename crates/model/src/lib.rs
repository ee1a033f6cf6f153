//! # ionode-model: the attention neural ODE of ionode, on the `ionode-autodiff` tape
//!
//! The model of `MODEL.md` section 2. A sample is a feed over a fixed list of ion slots
//! with a presence mask, and a water flux. The state is the permeate as flux grows,
//! `x(t) = c_p(t) / c_scale` (`c_scale = sum |z| c_f / 2`, `t = J_v / J_ref`,
//! `x(0) = c_f / c_scale`; the config's [`State::Transmission`] uses `c_p / c_f` instead,
//! so every ion's rejection has the same scale), and the vector field is
//!
//! ```text
//! tokens [x_i, log(c_f,i/c_scale + 1e-12) m_i, t] -> Linear(3, d) + slot encoding
//!   -> one attention head (masked keys, absent rows zeroed) -> flatten ++ t
//!   -> ODENet (5 linear layers, tanh between) -> times mask -> projector (w = z m)
//! ```
//!
//! integrated with RK4 (16 steps) or Dormand-Prince 5(4), backpropagating through the
//! steps. Optionally ([`FeedLevel`]) each token also carries the feed's level
//! `ln(c_scale / c_ref)`, without which the model cannot tell a feed from a diluted copy,
//! and ([`Prior`]) the calibrated DSPM-DE's transmission of the ion, which the `residual`
//! prior also takes as the prediction the variant corrects (an untrained residual model is
//! the physics).
//! Baselines: `node` (no attention head) and `mlp` (no ODE). Every \[ours\] choice of
//! `MODEL.md` is a field of [`ModelConfig`] with the canonical default.
//!
//! | module | what |
//! |---|---|
//! | [`config`] | [`ModelConfig`] and its enums (variant, encoding, constraint, solver) |
//! | [`slots`] | [`Batch`] (physical units) -> [`Prepared`] (scaled, masked) |
//! | [`encoding`] | sinusoidal slot encoding |
//! | [`attention`] | the single head |
//! | [`odenet`] | the tanh MLP |
//! | [`constraint`] | projector and charge residual |
//! | [`solver`] | RK4 and Dormand-Prince on the tape |
//! | [`model`] | [`Model`]: forward, loss, predict |
//! | [`io`] | [`SavedParams`] |
//! | [`synthetic`] | the benchmark's random electroneutral batches |
//!
//! The model never returns NaN silently: a non-finite state or error estimate, or a
//! Dormand-Prince run past `max_steps`, is a [`ModelError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attention;
pub mod config;
pub mod constraint;
pub mod encoding;
mod error;
pub mod io;
pub mod model;
pub mod odenet;
pub mod slots;
pub mod solver;
pub mod synthetic;

pub use config::{
    CScale, Electroneutrality, Encoding, FeedLevel, IonSlot, ModelConfig, Prior, Solver, State,
    TimeMap, Variant,
};
pub use error::{ModelError, Result};
pub use io::SavedParams;
pub use model::{AttentionMaps, Forward, ForwardOptions, Loss, Model, Prediction, SolverStats};
pub use slots::{Batch, Prepared, Targets};
