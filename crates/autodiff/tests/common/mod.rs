//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod every_op;
pub mod mini;

use ionode_autodiff::gradcheck::{check_params, GradCheck, GradCheckReport};
use ionode_autodiff::{ParamId, ParamStore, Result, Tape, Var};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn randn(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.sample(StandardNormal)).collect()
}

/// Values with |v| in [lo, hi] and random sign (for divisors).
pub fn away_from_zero(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let v = rng.random_range(lo..hi);
            if rng.random_bool(0.5) {
                v
            } else {
                -v
            }
        })
        .collect()
}

pub fn positive(rng: &mut StdRng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A batch size: 1 on the first trial, 2..=5 otherwise.
pub fn batch(rng: &mut StdRng, trial: usize) -> usize {
    if trial == 0 {
        1
    } else {
        rng.random_range(2..=5)
    }
}

/// Fixed, non-trivial output weights so `sum(out * r)` exercises every output entry.
pub fn out_weights(n: usize) -> Vec<f64> {
    (0..n).map(|i| (1.3 * i as f64 + 0.7).sin() + 0.1).collect()
}

/// An input tensor given to `check_op`.
pub struct In {
    pub dims: Vec<usize>,
    pub data: Vec<f64>,
}

pub fn input(dims: &[usize], data: Vec<f64>) -> In {
    assert_eq!(dims.iter().product::<usize>(), data.len());
    In {
        dims: dims.to_vec(),
        data,
    }
}

/// Gradient-check `f` with respect to every input: the inputs are registered as parameters
/// and the loss is `sum(f(inputs) * r)` with fixed weights `r`. Panics with the report on
/// failure, and also if every gradient is zero (a vacuous pass).
pub fn check_op<F>(name: &str, inputs: &[In], f: F) -> GradCheckReport
where
    F: Fn(&mut Tape, &[Var]) -> Result<Var>,
{
    let mut store = ParamStore::new();
    let ids: Vec<ParamId> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| store.add(format!("x{i}"), &x.dims, &x.data).unwrap())
        .collect();
    let mut tape = Tape::new();
    let rep = check_params(&mut tape, &mut store, &GradCheck::default(), |t, s| {
        let vs: Vec<Var> = ids.iter().map(|&id| t.param(s, id)).collect();
        let out = f(t, &vs)?;
        let shape = t.shape(out);
        let r = t.constant(shape.dims(), &out_weights(shape.numel()))?;
        let p = t.mul(out, r)?;
        t.sum(p)
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(rep.passed, "{name}: gradient check failed: {rep:#?}");
    assert!(
        store.grads().iter().any(|&g| g != 0.0),
        "{name}: all gradients are zero"
    );
    rep
}
