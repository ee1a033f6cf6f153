//! A scaled-down attention neural ODE (the shape of the project's model, MODEL.md section 2):
//! tokens -> Linear embedding + slot encoding -> masked single-head attention -> flatten ++ t
//! -> tanh MLP -> times mask -> orthogonal projector, integrated with fixed-step RK4 and a
//! masked MSE loss. `loss` allocates nothing once the tape has warmed up.

use super::{positive, randn, rng};
use ionode_autodiff::{ParamId, ParamStore, Result, Tape, Var};

pub struct Mini {
    pub b: usize,
    pub s: usize,
    pub d: usize,
    pub steps: usize,
    ids: [ParamId; 11],
    mask: Vec<f64>,
    w: Vec<f64>,
    logcf: Vec<f64>,
    pos: Vec<f64>,
    x0: Vec<f64>,
    target: Vec<f64>,
    t_end: Vec<f64>,
    zeros_bs1: Vec<f64>,
}

impl Mini {
    /// Parameters go into `store`; `b` samples, `s` slots, embedding `d`, hidden `h`.
    pub fn new(
        store: &mut ParamStore,
        seed: u64,
        (b, s, d, h): (usize, usize, usize, usize),
        steps: usize,
    ) -> Mini {
        let mut r = rng(seed);
        let mut p = |name: &str, dims: &[usize], scale: f64| {
            let n: usize = dims.iter().product();
            let v: Vec<f64> = randn(&mut r, n).iter().map(|x| x * scale).collect();
            store.add(name, dims, &v).unwrap()
        };
        let fan = |n: usize| 1.0 / (n as f64).sqrt();
        let ids = [
            p("emb.w", &[3, d], fan(3)),
            p("emb.b", &[d], 0.1),
            p("att.wq", &[d, d], fan(d)),
            p("att.wk", &[d, d], fan(d)),
            p("att.wv", &[d, d], fan(d)),
            p("mlp.w1", &[s * d + 1, h], fan(s * d + 1)),
            p("mlp.b1", &[h], 0.1),
            p("mlp.w2", &[h, h], fan(h)),
            p("mlp.b2", &[h], 0.1),
            p("mlp.w3", &[h, s], fan(h)),
            p("mlp.b3", &[s], 0.1),
        ];
        let mut r = rng(seed ^ 0x5eed);
        // Slot presence: sample 0 has every ion, the others lose some (never all).
        let mut mask = vec![1.0; b * s];
        for i in 1..b {
            for j in 0..s {
                if (i + j) % 3 == 0 && j != i % s {
                    mask[i * s + j] = 0.0;
                }
            }
        }
        let z: Vec<f64> = (0..s)
            .map(|j| if j % 2 == 0 { 1.0 } else { -2.0 })
            .collect();
        let w: Vec<f64> = (0..b * s).map(|i| z[i % s] * mask[i]).collect();
        let cf = positive(&mut r, b * s, 0.2, 2.0);
        let logcf: Vec<f64> = cf.iter().zip(&mask).map(|(c, m)| c.ln() * m).collect();
        let pos: Vec<f64> = (0..s * d)
            .map(|i| {
                let (slot, k) = (i / d, i % d);
                let f = (slot as f64) / 10f64.powf((2 * (k / 2)) as f64 / d as f64);
                if k % 2 == 0 {
                    f.sin()
                } else {
                    f.cos()
                }
            })
            .collect();
        let x0: Vec<f64> = cf.iter().zip(&mask).map(|(c, m)| c * m).collect();
        let target: Vec<f64> = x0.iter().map(|x| 0.8 * x).collect();
        let t_end = positive(&mut r, b, 0.3, 1.0);
        Mini {
            b,
            s,
            d,
            steps,
            ids,
            mask,
            w,
            logcf,
            pos,
            x0,
            target,
            t_end,
            zeros_bs1: vec![0.0; b * s],
        }
    }

    /// Record the loss on `t` from the parameter values in `store`.
    pub fn loss(&self, t: &mut Tape, store: &ParamStore) -> Result<Var> {
        Ok(self.run(t, store)?.1)
    }

    /// Record the integration; returns (final state x_T [B, S], loss).
    pub fn run(&self, t: &mut Tape, store: &ParamStore) -> Result<(Var, Var)> {
        let (b, s, d) = (self.b, self.s, self.d);
        let p: [Var; 11] = std::array::from_fn(|i| t.param(store, self.ids[i]));
        let c = Consts {
            mask: t.constant(&[b, s], &self.mask)?,
            key_mask: t.constant(&[b, 1, s], &self.mask)?,
            row_mask: t.constant(&[b, s, 1], &self.mask)?,
            w: t.constant(&[b, s], &self.w)?,
            logcf: t.constant(&[b, s, 1], &self.logcf)?,
            pos: t.constant(&[s, d], &self.pos)?,
            zeros: t.constant(&[b, s, 1], &self.zeros_bs1)?,
        };
        let t_end = t.constant(&[b, 1], &self.t_end)?;
        let h = t.scale(t_end, 1.0 / self.steps as f64)?;
        let half_h = t.scale(h, 0.5)?;
        let mut x = t.constant(&[b, s], &self.x0)?;
        for n in 0..self.steps {
            // Per-sample times: tau = n h, n h + h/2, (n + 1) h.
            let tau0 = t.scale(h, n as f64)?;
            let tau_mid = t.scale(h, n as f64 + 0.5)?;
            let tau1 = t.scale(h, n as f64 + 1.0)?;
            let k1 = self.field(t, &p, &c, x, tau0)?;
            let hk = t.mul(half_h, k1)?;
            let x2 = t.add(x, hk)?;
            let k2 = self.field(t, &p, &c, x2, tau_mid)?;
            let hk = t.mul(half_h, k2)?;
            let x3 = t.add(x, hk)?;
            let k3 = self.field(t, &p, &c, x3, tau_mid)?;
            let hk = t.mul(h, k3)?;
            let x4 = t.add(x, hk)?;
            let k4 = self.field(t, &p, &c, x4, tau1)?;
            let k23 = t.add(k2, k3)?;
            let k23 = t.scale(k23, 2.0)?;
            let k14 = t.add(k1, k4)?;
            let ksum = t.add(k14, k23)?;
            let step = t.mul(h, ksum)?;
            let step = t.scale(step, 1.0 / 6.0)?;
            x = t.add(x, step)?;
        }
        let target = t.constant(&[b, s], &self.target)?;
        let err = t.sub(x, target)?;
        let err = t.mul(err, c.mask)?;
        let sq = t.square(err)?;
        Ok((x, t.mean(sq)?))
    }

    /// The vector field f(x, tau) for the batch: [B, S] -> [B, S].
    fn field(&self, t: &mut Tape, p: &[Var; 11], c: &Consts, x: Var, tau: Var) -> Result<Var> {
        let (b, s, d) = (self.b, self.s, self.d);
        let x3 = t.reshape(x, &[b, s, 1])?;
        let tau3 = t.reshape(tau, &[b, 1, 1])?;
        let tau_tok = t.add(c.zeros, tau3)?;
        let tokens = t.concat(&[x3, c.logcf, tau_tok], 2)?;
        let emb = t.linear(tokens, p[0], Some(p[1]))?;
        let emb = t.add(emb, c.pos)?;
        let q = t.linear(emb, p[2], None)?;
        let k = t.linear(emb, p[3], None)?;
        let v = t.linear(emb, p[4], None)?;
        let scores = t.matmul_t(q, k, false, true)?;
        let scores = t.scale(scores, 1.0 / (d as f64).sqrt())?;
        let att = t.masked_softmax(scores, c.key_mask, 2)?;
        let ctx = t.matmul(att, v)?;
        let ctx = t.mul(ctx, c.row_mask)?;
        let flat = t.reshape(ctx, &[b, s * d])?;
        let hin = t.concat(&[flat, tau], 1)?;
        let h1 = t.linear(hin, p[5], Some(p[6]))?;
        let h1 = t.tanh(h1)?;
        let h2 = t.linear(h1, p[7], Some(p[8]))?;
        let h2 = t.tanh(h2)?;
        let out = t.linear(h2, p[9], Some(p[10]))?;
        let out = t.mul(out, c.mask)?;
        t.project_orthogonal(out, c.w)
    }

    /// Largest |x_T - x_0| over all entries.
    pub fn movement(&self, x_final: &[f64]) -> f64 {
        x_final
            .iter()
            .zip(&self.x0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    /// The charge-weighted residual `sum_i w_i (x_i - x0_i)` per sample (should stay ~0).
    pub fn neutrality_drift(&self, x_final: &[f64]) -> f64 {
        let s = self.s;
        (0..self.b)
            .map(|i| {
                (0..s)
                    .map(|j| self.w[i * s + j] * (x_final[i * s + j] - self.x0[i * s + j]))
                    .sum::<f64>()
                    .abs()
            })
            .fold(0.0, f64::max)
    }
}

struct Consts {
    mask: Var,
    key_mask: Var,
    row_mask: Var,
    w: Var,
    logcf: Var,
    pos: Var,
    zeros: Var,
}
