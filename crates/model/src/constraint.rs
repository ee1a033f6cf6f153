//! Electroneutrality.
//!
//! The feed is electroneutral and `x(0) = c_f / c_scale`, so the permeate stays neutral iff
//! every derivative is orthogonal to `w = z * m`. The hard constraint projects the ODENet's
//! output with `P = I - w w^T / (w^T w)` (the tape's `project_orthogonal`: `P` is symmetric,
//! so its backward applies `P` to the incoming gradient). The soft constraint penalises the
//! charge residual `r = sum_i z_i x_i` in the loss ([`charge_residual`]).

use ionode_autodiff::{Result, Tape, Var};

/// `f - w (w.f)/(w.w)` per sample (`f`, `w` `[B, S]`; `w` constant).
pub fn project(t: &mut Tape, f: Var, w: Var) -> Result<Var> {
    t.project_orthogonal(f, w)
}

/// The charge residual `sum_i w_i x_i` per sample, `[B]` (`w = z * m`).
pub fn charge_residual(t: &mut Tape, x: Var, w: Var) -> Result<Var> {
    let zx = t.mul(x, w)?;
    t.sum_axis(zx, 1)
}

/// `mean_b r_b^2` of a state `x` `[B, S]`.
pub fn charge_penalty(t: &mut Tape, x: Var, w: Var) -> Result<Var> {
    let r = charge_residual(t, x, w)?;
    let r2 = t.square(r)?;
    t.mean(r2)
}
