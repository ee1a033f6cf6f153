//! ODE solvers on the tape: fixed-step RK4 and adaptive Dormand-Prince 5(4).
//!
//! Both integrate the normalised problem `dx/ds = g(x, s) = t * f(x, s t)` over `s` in
//! `[0, 1]`, where `t` is each sample's own end time (`J_v / J_ref`). Every sample thus ends
//! at `s = 1` while its physical trajectory runs from 0 to its own `t`:
//!
//! * RK4 with `steps` uniform steps in `s` is exactly RK4 in the physical variable with the
//!   per-sample step `t / steps` (the stages see `tau = s t`).
//! * Dormand-Prince needs one step size for the whole batch (the stages are batched tensor
//!   ops); in `s` all samples share the interval, so one step sequence serves every sample.
//!   The error norm of a step is the maximum over samples of each sample's RMS over its
//!   present slots of `err_i / (atol + rtol max(|x_i|, |x_new_i|))`; the step is accepted
//!   when it is <= 1. Consequence: a sample's solution depends on the batch (through the
//!   shared steps) at the level of the tolerance, never more.
//!
//! Gradients flow through the accepted steps (discretise-then-optimise): the step sizes are
//! constants to the tape, rejected trial stages stay on the tape but do not reach the loss
//! (backward skips them). A non-finite state, error estimate or too many attempts is an
//! error, never a silent NaN.

use crate::error::{ModelError, Result};
use ionode_autodiff::{Tape, Var};

/// The integrated trajectory.
#[derive(Clone, Debug)]
pub struct Trajectory {
    /// The state at `s = 1`.
    pub x_end: Var,
    /// The states at the accepted mesh points after the start (the last is `x_end`).
    pub mesh: Vec<Var>,
    /// The mesh points `s_0 = 0, s_1, ..., s_N = 1`.
    pub s: Vec<f64>,
    /// Attention maps at `s_0..s_N` when the field returned them (same length as `s`).
    pub attention: Vec<Var>,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps (Dormand-Prince only).
    pub rejected: usize,
    /// Evaluations of the vector field.
    pub evaluations: usize,
}

fn check_finite(t: &Tape, x: Var, s_cols: usize, what: &'static str, s: f64) -> Result<()> {
    if let Some(pos) = t.value(x).iter().position(|v| !v.is_finite()) {
        return Err(ModelError::NonFinite {
            what,
            sample: pos / s_cols.max(1),
            s,
        });
    }
    Ok(())
}

/// `x + sum_j c_j k_j` on the tape (terms with `c_j == 0` skipped).
fn combine(t: &mut Tape, x: Var, terms: &[(f64, Var)]) -> Result<Var> {
    let mut acc = x;
    for &(c, k) in terms {
        if c != 0.0 {
            let ck = t.scale(k, c)?;
            acc = t.add(acc, ck)?;
        }
    }
    Ok(acc)
}

/// Fixed-step classical RK4 with `steps` uniform steps in `s`. `g(tape, x, s)` returns the
/// field and optionally the attention map of that evaluation; the map of each step's first
/// stage is kept (it sits on the mesh point), and one extra gradient-free evaluation gives
/// the map at the end point when maps are returned.
pub fn rk4<G>(t: &mut Tape, x0: Var, steps: usize, mut g: G) -> Result<Trajectory>
where
    G: FnMut(&mut Tape, Var, f64) -> Result<(Var, Option<Var>)>,
{
    let cols = t.shape(x0).last();
    let ds = 1.0 / steps as f64;
    let mut tr = Trajectory {
        x_end: x0,
        mesh: Vec::with_capacity(steps),
        s: Vec::with_capacity(steps + 1),
        attention: Vec::new(),
        accepted: 0,
        rejected: 0,
        evaluations: 0,
    };
    tr.s.push(0.0);
    let mut x = x0;
    for n in 0..steps {
        let s0 = n as f64 * ds;
        let (k1, a) = g(t, x, s0)?;
        if let Some(a) = a {
            tr.attention.push(a);
        }
        let x2 = combine(t, x, &[(ds / 2.0, k1)])?;
        let (k2, _) = g(t, x2, s0 + ds / 2.0)?;
        let x3 = combine(t, x, &[(ds / 2.0, k2)])?;
        let (k3, _) = g(t, x3, s0 + ds / 2.0)?;
        let x4 = combine(t, x, &[(ds, k3)])?;
        let (k4, _) = g(t, x4, (n + 1) as f64 * ds)?;
        let k23 = t.add(k2, k3)?;
        let k14 = t.add(k1, k4)?;
        x = combine(t, x, &[(ds / 6.0, k14), (ds / 3.0, k23)])?;
        let s1 = (n + 1) as f64 * ds;
        check_finite(t, x, cols, "state", s1)?;
        tr.mesh.push(x);
        tr.s.push(s1);
        tr.evaluations += 4;
        tr.accepted += 1;
    }
    if !tr.attention.is_empty() {
        let a = t.no_grad(|t| g(t, x, 1.0))?.1;
        tr.attention.extend(a);
        tr.evaluations += 1;
    }
    tr.x_end = x;
    Ok(tr)
}

/// Dormand-Prince 5(4) tableau.
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [[f64; 6]; 7] = [
    [0.0; 6],
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
        0.0,
    ],
    // Row 7 = the fifth-order weights b (first same as last).
    [
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// `b - b*`: fifth- minus fourth-order weights, for the error estimate.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Tolerances and limits of [`dopri5`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DopriOptions {
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Attempted steps before [`ModelError::MaxSteps`].
    pub max_steps: usize,
    /// First trial step in `s`.
    pub first_step: f64,
}

/// Adaptive Dormand-Prince 5(4) in `s` over `[0, 1]` with one step size for the batch.
/// `mask` (`[B * S]`, 1 present / 0 absent) selects the slots that enter the error norm.
/// Step control: accept when the error norm `err <= 1`, then `h <- h * clamp(0.9
/// err^(-1/5), 0.2, 5)` (at most 1 right after a rejection).
pub fn dopri5<G>(
    t: &mut Tape,
    x0: Var,
    mask: &[f64],
    opts: DopriOptions,
    mut g: G,
) -> Result<Trajectory>
where
    G: FnMut(&mut Tape, Var, f64) -> Result<(Var, Option<Var>)>,
{
    let cols = t.shape(x0).last();
    let mut tr = Trajectory {
        x_end: x0,
        mesh: Vec::new(),
        s: vec![0.0],
        attention: Vec::new(),
        accepted: 0,
        rejected: 0,
        evaluations: 0,
    };
    let mut x = x0;
    let mut s = 0.0_f64;
    let mut h = opts.first_step.min(1.0);
    let (mut k1, a) = g(t, x, 0.0)?;
    tr.evaluations += 1;
    tr.attention.extend(a);
    check_finite(t, k1, cols, "vector field", 0.0)?;
    let mut attempts = 0;
    let mut last_rejected = false;
    let mut err_buf = vec![0.0; mask.len()];
    while s < 1.0 {
        if attempts >= opts.max_steps {
            return Err(ModelError::MaxSteps {
                max_steps: opts.max_steps,
                s,
                h,
            });
        }
        attempts += 1;
        // Land exactly on 1 (and do not leave a sliver of a last step).
        if s + h >= 1.0 || 1.0 - (s + h) < 1e-10 {
            h = 1.0 - s;
        }
        if h < 1e-14 {
            return Err(ModelError::StepTooSmall { h, s });
        }
        // Stages 2..7; the 7th stage's input is the fifth-order solution x_new (FSAL), so
        // its evaluation is the next step's first stage.
        let mut k = [k1; 7];
        let mut terms = [(0.0, k1); 6];
        let mut x_new = x;
        let mut a7 = None;
        for i in 1..7 {
            for j in 0..i {
                terms[j] = (h * A[i][j], k[j]);
            }
            let xi = combine(t, x, &terms[..i])?;
            let (ki, ai) = g(t, xi, s + C[i] * h)?;
            k[i] = ki;
            if i == 6 {
                x_new = xi;
                a7 = ai;
            }
        }
        tr.evaluations += 6;
        let k7 = k[6];
        // Error estimate on the host.
        err_buf.fill(0.0);
        for (j, &e) in E.iter().enumerate() {
            if e != 0.0 {
                for (o, &kv) in err_buf.iter_mut().zip(t.value(k[j])) {
                    *o += h * e * kv;
                }
            }
        }
        let (xv, xn) = (t.value(x), t.value(x_new));
        let mut err = 0.0_f64;
        for b in 0..mask.len() / cols {
            let (mut acc, mut n) = (0.0, 0.0);
            for i in b * cols..(b + 1) * cols {
                if mask[i] != 0.0 {
                    let sc = opts.atol + opts.rtol * xv[i].abs().max(xn[i].abs());
                    acc += (err_buf[i] / sc).powi(2);
                    n += 1.0;
                }
            }
            let eb = if n > 0.0 { (acc / n).sqrt() } else { 0.0 };
            if !eb.is_finite() {
                check_finite(t, x_new, cols, "state", s + h)?;
                return Err(ModelError::NonFinite {
                    what: "error estimate",
                    sample: b,
                    s: s + h,
                });
            }
            err = err.max(eb);
        }
        let fac = if err == 0.0 {
            5.0
        } else {
            (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
        };
        if err <= 1.0 {
            check_finite(t, x_new, cols, "state", s + h)?;
            s = if h == 1.0 - s { 1.0 } else { s + h };
            x = x_new;
            k1 = k7;
            tr.mesh.push(x);
            tr.s.push(s);
            tr.attention.extend(a7);
            tr.accepted += 1;
            h *= if last_rejected { fac.min(1.0) } else { fac };
            last_rejected = false;
        } else {
            tr.rejected += 1;
            h *= fac.min(1.0);
            last_rejected = true;
        }
    }
    tr.x_end = x;
    Ok(tr)
}
