//! Workloads shared by the benchmarks: the 5-layer tanh MLP and the attention block.
#![allow(dead_code)]

use ionode_autodiff::{ParamId, ParamStore, Result, Tape, TapeStats, Var};

/// Deterministic pseudo-random values in [-scale, scale] (benches need no RNG crate).
pub fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// 5 linear layers of width 64, tanh after the first four, loss = mean(y^2).
pub struct Mlp {
    pub batch: usize,
    pub width: usize,
    pub store: ParamStore,
    ids: Vec<ParamId>,
    x: Vec<f64>,
}

impl Mlp {
    pub const LAYERS: usize = 5;

    pub fn new(batch: usize, width: usize) -> Mlp {
        let mut store = ParamStore::new();
        let mut ids = Vec::new();
        let scale = (3.0 / width as f64).sqrt();
        for l in 0..Self::LAYERS {
            let w = values(width * width, 2 * l as u64 + 1, scale);
            ids.push(store.add(format!("w{l}"), &[width, width], &w).unwrap());
            let b = values(width, 2 * l as u64 + 2, 0.1);
            ids.push(store.add(format!("b{l}"), &[width], &b).unwrap());
        }
        Mlp {
            batch,
            width,
            store,
            ids,
            x: values(batch * width, 99, 1.0),
        }
    }

    pub fn loss(&self, t: &mut Tape) -> Result<Var> {
        let mut h = t.constant(&[self.batch, self.width], &self.x)?;
        for (l, wb) in self.ids.chunks(2).enumerate() {
            let (w, b) = (t.param(&self.store, wb[0]), t.param(&self.store, wb[1]));
            h = t.linear(h, w, Some(b))?;
            if l + 1 < Self::LAYERS {
                h = t.tanh(h)?;
            }
        }
        let sq = t.square(h)?;
        t.mean(sq)
    }

    /// Matmul FLOPs of one forward pass (2 * B * in * out per layer).
    pub fn forward_flops(&self) -> u64 {
        (2 * self.batch * self.width * self.width * Self::LAYERS) as u64
    }

    /// Matmul FLOPs of one backward pass: dW for every layer, dX for all but the first
    /// (the input is a constant).
    pub fn backward_flops(&self) -> u64 {
        (2 * self.batch * self.width * self.width * (2 * Self::LAYERS - 1)) as u64
    }
}

/// The attention block of the model (MODEL.md section 2) at S slots, width d:
/// tokens [B, S, 3] -> Linear(3, d) + slot encoding -> Q, K, V (d x d, no bias) ->
/// scores / sqrt(d) -> key-masked softmax -> A V -> absent rows zeroed -> flatten [B, S d].
/// Loss = mean(out^2).
pub struct Attention {
    pub batch: usize,
    pub s: usize,
    pub d: usize,
    pub store: ParamStore,
    ids: [ParamId; 5],
    tokens: Vec<f64>,
    mask: Vec<f64>,
    pos: Vec<f64>,
}

impl Attention {
    pub fn new(batch: usize, s: usize, d: usize) -> Attention {
        let mut store = ParamStore::new();
        let ids = [
            store.add("emb.w", &[3, d], &values(3 * d, 1, 0.5)).unwrap(),
            store.add("emb.b", &[d], &values(d, 2, 0.1)).unwrap(),
            store.add("wq", &[d, d], &values(d * d, 3, 0.4)).unwrap(),
            store.add("wk", &[d, d], &values(d * d, 4, 0.4)).unwrap(),
            store.add("wv", &[d, d], &values(d * d, 5, 0.4)).unwrap(),
        ];
        // Masks of 2..=S present ions, deterministic.
        let mask: Vec<f64> = (0..batch * s)
            .map(|i| {
                let (b, j) = (i / s, i % s);
                let present = 2 + b % (s - 1);
                if (j + b) % s < present {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let pos: Vec<f64> = (0..s * d)
            .map(|i| {
                let (slot, k) = (i / d, i % d);
                let f = slot as f64 / 10000f64.powf((2 * (k / 2)) as f64 / d as f64);
                if k % 2 == 0 {
                    f.sin()
                } else {
                    f.cos()
                }
            })
            .collect();
        Attention {
            batch,
            s,
            d,
            store,
            ids,
            tokens: values(batch * s * 3, 7, 1.0),
            mask,
            pos,
        }
    }

    pub fn loss(&self, t: &mut Tape) -> Result<Var> {
        let (b, s, d) = (self.batch, self.s, self.d);
        let p: [Var; 5] = std::array::from_fn(|i| t.param(&self.store, self.ids[i]));
        let tokens = t.constant(&[b, s, 3], &self.tokens)?;
        let key_mask = t.constant(&[b, 1, s], &self.mask)?;
        let row_mask = t.constant(&[b, s, 1], &self.mask)?;
        let pos = t.constant(&[s, d], &self.pos)?;
        let emb = t.linear(tokens, p[0], Some(p[1]))?;
        let emb = t.add(emb, pos)?;
        let q = t.linear(emb, p[2], None)?;
        let k = t.linear(emb, p[3], None)?;
        let v = t.linear(emb, p[4], None)?;
        let scores = t.matmul_t(q, k, false, true)?;
        let scores = t.scale(scores, 1.0 / (d as f64).sqrt())?;
        let att = t.masked_softmax(scores, key_mask, 2)?;
        let ctx = t.matmul(att, v)?;
        let ctx = t.mul(ctx, row_mask)?;
        let flat = t.reshape(ctx, &[b, s * d])?;
        let sq = t.square(flat)?;
        t.mean(sq)
    }

    /// Matmul FLOPs of one forward pass.
    pub fn forward_flops(&self) -> u64 {
        let (b, s, d) = (self.batch, self.s, self.d);
        (2 * b * s * 3 * d + 3 * 2 * b * s * d * d + 2 * 2 * b * s * s * d) as u64
    }
}

pub fn report(name: &str, stats: TapeStats) {
    eprintln!(
        "[{name}] tape: {} nodes, {} values, {:.1} KiB per step (values + grads + nodes), {:.1} KiB reserved",
        stats.nodes,
        stats.values,
        stats.step_bytes as f64 / 1024.0,
        stats.reserved_bytes as f64 / 1024.0
    );
}
