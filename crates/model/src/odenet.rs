//! The ODENet: a stack of linear layers with tanh between them (default 5 layers, width 64),
//! `in -> hidden -> ... -> hidden -> out`, tanh after every layer but the last.

use ionode_autodiff::{ParamId, ParamStore, Result, Tape, Var};
use ionode_random::SplitMix64;

/// Parameter handles of the stack.
#[derive(Clone, Debug)]
pub struct OdeNet {
    layers: Vec<(ParamId, ParamId)>,
}

/// PyTorch's default `nn.Linear` initialisation: weight and bias uniform in
/// `+-1/sqrt(fan_in)`.
pub(crate) fn add_linear(
    store: &mut ParamStore,
    rng: &mut SplitMix64,
    name: &str,
    fan_in: usize,
    fan_out: usize,
) -> Result<(ParamId, ParamId)> {
    let a = 1.0 / (fan_in as f64).sqrt();
    let w: Vec<f64> = (0..fan_in * fan_out).map(|_| rng.symmetric(a)).collect();
    let b: Vec<f64> = (0..fan_out).map(|_| rng.symmetric(a)).collect();
    Ok((
        store.add(format!("{name}.w"), &[fan_in, fan_out], &w)?,
        store.add(format!("{name}.b"), &[fan_out], &b)?,
    ))
}

impl OdeNet {
    /// Register `layers` linear layers `input -> hidden.. -> output` in `store` as
    /// `{prefix}.l{i}.w` / `.b`.
    pub(crate) fn new(
        store: &mut ParamStore,
        rng: &mut SplitMix64,
        prefix: &str,
        (input, hidden, output, layers): (usize, usize, usize, usize),
    ) -> Result<OdeNet> {
        let mut v = Vec::with_capacity(layers);
        for i in 0..layers {
            let fi = if i == 0 { input } else { hidden };
            let fo = if i + 1 == layers { output } else { hidden };
            v.push(add_linear(store, rng, &format!("{prefix}.l{i}"), fi, fo)?);
        }
        Ok(OdeNet { layers: v })
    }

    /// The last layer's (weight, bias).
    pub(crate) fn last(&self) -> Option<(ParamId, ParamId)> {
        self.layers.last().copied()
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True if the stack has no layer (never, for a built model).
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Copy the weights onto the tape (once per step; reuse the handles in every stage).
    pub fn vars(&self, t: &mut Tape, store: &ParamStore, out: &mut Vec<(Var, Var)>) {
        out.clear();
        out.extend(
            self.layers
                .iter()
                .map(|&(w, b)| (t.param(store, w), t.param(store, b))),
        );
    }

    /// Apply the stack to `x` `[B, in]`.
    pub fn apply(t: &mut Tape, vars: &[(Var, Var)], x: Var) -> Result<Var> {
        let mut h = x;
        for (i, &(w, b)) in vars.iter().enumerate() {
            h = t.linear(h, w, Some(b))?;
            if i + 1 < vars.len() {
                h = t.tanh(h)?;
            }
        }
        Ok(h)
    }
}
