//! Finite-difference gradient checking, for this crate's tests and for whole models.
//!
//! The loss is described by a closure that records it on a fresh tape from the values in a
//! [`ParamStore`]; the checker compares the tape's gradients with central differences
//! `(L(p + eps e_i) - L(p - eps e_i)) / (2 eps)` in f64. An entry passes when
//! `|analytic - numeric| <= atol + rtol * |numeric|`.
//!
//! Checking every scalar costs two forward passes each, so for large models use
//! [`GradCheck::max_entries`] (an evenly spaced subset) or [`check_direction`] (one
//! directional derivative along a random direction: two forward passes in total).

use crate::error::Result;
use crate::params::ParamStore;
use crate::tape::{Tape, Var};

/// Tolerances and step of a gradient check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradCheck {
    /// Finite-difference step (default 1e-6).
    pub eps: f64,
    /// Absolute tolerance (default 1e-5).
    pub atol: f64,
    /// Relative tolerance (default 1e-3).
    pub rtol: f64,
    /// Check at most this many scalars, evenly spaced over the flat parameter vector
    /// (default `usize::MAX`: all of them).
    pub max_entries: usize,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            max_entries: usize::MAX,
        }
    }
}

/// The entry of a check that is furthest outside (or closest to) its tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Parameter name.
    pub param: String,
    /// Index inside the parameter (row-major).
    pub index: usize,
    /// Index in the store's flat vector.
    pub flat_index: usize,
    /// Gradient from the tape.
    pub analytic: f64,
    /// Central-difference estimate.
    pub numeric: f64,
}

/// Outcome of [`check_params`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckReport {
    /// Number of scalars compared.
    pub checked: usize,
    /// Largest `|analytic - numeric|`.
    pub max_abs_err: f64,
    /// Largest `|analytic - numeric| / max(|analytic|, |numeric|)` (over non-zero pairs).
    pub max_rel_err: f64,
    /// The entry with the largest error relative to its tolerance.
    pub worst: Option<Mismatch>,
    /// Whether every entry is within tolerance.
    pub passed: bool,
}

/// Outcome of [`check_direction`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirectionalReport {
    /// `grad . v` from the tape.
    pub analytic: f64,
    /// `(L(p + eps v) - L(p - eps v)) / (2 eps)`.
    pub numeric: f64,
    /// `|analytic - numeric|`.
    pub abs_err: f64,
    /// `abs_err / max(|analytic|, |numeric|)`.
    pub rel_err: f64,
    /// Whether `abs_err <= atol + rtol * |numeric|`.
    pub passed: bool,
}

/// Evaluate the loss with gradients off (cheaper; nothing is kept).
fn loss_value<F>(tape: &mut Tape, store: &ParamStore, f: &mut F) -> Result<f64>
where
    F: FnMut(&mut Tape, &ParamStore) -> Result<Var>,
{
    tape.clear();
    let v = tape.no_grad(|t| f(t, store))?;
    let s = tape.shape(v);
    if s.numel() != 1 {
        return Err(crate::AdError::BadShape {
            op: "gradcheck",
            shape: s,
            why: "the loss must have exactly one element",
        });
    }
    Ok(tape.item(v))
}

/// Analytic gradient of the loss with respect to every parameter, flat (store order).
pub fn analytic_grad<F>(tape: &mut Tape, store: &mut ParamStore, f: &mut F) -> Result<Vec<f64>>
where
    F: FnMut(&mut Tape, &ParamStore) -> Result<Var>,
{
    tape.clear();
    store.zero_grad();
    let loss = f(tape, store)?;
    tape.backward_into(loss, store)?;
    Ok(store.grads().to_vec())
}

/// Compare the tape's gradient of `f` with central differences, parameter by parameter.
/// `store`'s values are restored afterwards; its gradients hold the analytic gradient.
pub fn check_params<F>(
    tape: &mut Tape,
    store: &mut ParamStore,
    cfg: &GradCheck,
    mut f: F,
) -> Result<GradCheckReport>
where
    F: FnMut(&mut Tape, &ParamStore) -> Result<Var>,
{
    let analytic = analytic_grad(tape, store, &mut f)?;
    let n = store.num_scalars();
    let stride = n.div_ceil(cfg.max_entries.max(1)).max(1);
    let mut rep = GradCheckReport {
        checked: 0,
        max_abs_err: 0.0,
        max_rel_err: 0.0,
        worst: None,
        passed: true,
    };
    let mut worst_ratio = -1.0;
    for flat in (0..n).step_by(stride) {
        let orig = store.values()[flat];
        store.values_mut()[flat] = orig + cfg.eps;
        let lp = loss_value(tape, store, &mut f);
        store.values_mut()[flat] = orig - cfg.eps;
        let lm = loss_value(tape, store, &mut f);
        store.values_mut()[flat] = orig;
        let numeric = (lp? - lm?) / (2.0 * cfg.eps);
        let a = analytic[flat];
        let err = (a - numeric).abs();
        let scale = a.abs().max(numeric.abs());
        rep.checked += 1;
        rep.max_abs_err = rep.max_abs_err.max(err);
        if scale > 0.0 {
            rep.max_rel_err = rep.max_rel_err.max(err / scale);
        }
        let ratio = err / (cfg.atol + cfg.rtol * numeric.abs());
        if ratio > 1.0 || ratio.is_nan() {
            rep.passed = false;
        }
        if ratio > worst_ratio || ratio.is_nan() {
            worst_ratio = if ratio.is_nan() { f64::INFINITY } else { ratio };
            let id = store
                .ids()
                .find(|&id| store.range(id).contains(&flat))
                .expect("flat index inside some parameter");
            rep.worst = Some(Mismatch {
                param: store.name(id).to_string(),
                index: flat - store.range(id).start,
                flat_index: flat,
                analytic: a,
                numeric,
            });
        }
    }
    Ok(rep)
}

/// Compare the directional derivative `grad . v` along `direction` (flat, store order) with
/// `(L(p + eps v) - L(p - eps v)) / (2 eps)`. Two forward passes and one backward in total,
/// so it suits whole models. The step is `eps` along the unit vector of `direction`.
pub fn check_direction<F>(
    tape: &mut Tape,
    store: &mut ParamStore,
    cfg: &GradCheck,
    direction: &[f64],
    mut f: F,
) -> Result<DirectionalReport>
where
    F: FnMut(&mut Tape, &ParamStore) -> Result<Var>,
{
    let n = store.num_scalars();
    if direction.len() != n {
        return Err(crate::AdError::Invalid {
            op: "check_direction",
            why: "direction length must equal the store's number of scalars",
        });
    }
    let norm = direction.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(crate::AdError::Invalid {
            op: "check_direction",
            why: "direction must be non-zero and finite",
        });
    }
    let grad = analytic_grad(tape, store, &mut f)?;
    let analytic = grad.iter().zip(direction).map(|(g, v)| g * v).sum::<f64>() / norm;
    let orig = store.values().to_vec();
    let step = |store: &mut ParamStore, sign: f64| {
        for ((p, o), v) in store.values_mut().iter_mut().zip(&orig).zip(direction) {
            *p = o + sign * cfg.eps * v / norm;
        }
    };
    step(store, 1.0);
    let lp = loss_value(tape, store, &mut f);
    step(store, -1.0);
    let lm = loss_value(tape, store, &mut f);
    store.values_mut().copy_from_slice(&orig);
    let numeric = (lp? - lm?) / (2.0 * cfg.eps);
    let abs_err = (analytic - numeric).abs();
    let scale = analytic.abs().max(numeric.abs());
    Ok(DirectionalReport {
        analytic,
        numeric,
        abs_err,
        rel_err: if scale > 0.0 { abs_err / scale } else { 0.0 },
        passed: abs_err <= cfg.atol + cfg.rtol * numeric.abs(),
    })
}
