//! The single self-attention head over ion tokens.
//!
//! `Q = E W_q`, `K = E W_k`, `V = E W_v` (d x d, no bias), scores `Q K^T / sqrt(d)`, a
//! softmax over the keys of present ions only (absent keys get weight exactly 0 and no
//! gradient), context `A V`, and the rows of absent ions zeroed so nothing flows out of
//! them. The attention matrix `A` `[B, S, S]` is the model's "ion-pairing" map.

use ionode_autodiff::{Result, Tape, Var};

/// The head's weights as tape handles.
#[derive(Clone, Copy, Debug)]
pub struct HeadVars {
    /// Query weight `[d, d]`.
    pub wq: Var,
    /// Key weight `[d, d]`.
    pub wk: Var,
    /// Value weight `[d, d]`.
    pub wv: Var,
}

/// Apply the head to embedded tokens `emb` `[B, S, d]`; `key_mask` is `[B, 1, S]` and
/// `row_mask` `[B, S, 1]` (1 present, 0 absent). Returns (context `[B, S, d]`, `A`).
pub fn attend(
    t: &mut Tape,
    h: HeadVars,
    emb: Var,
    key_mask: Var,
    row_mask: Var,
) -> Result<(Var, Var)> {
    let d = t.shape(emb).last();
    let q = t.linear(emb, h.wq, None)?;
    let k = t.linear(emb, h.wk, None)?;
    let v = t.linear(emb, h.wv, None)?;
    let scores = t.matmul_t(q, k, false, true)?;
    let scores = t.scale(scores, 1.0 / (d as f64).sqrt())?;
    let att = t.masked_softmax(scores, key_mask, 2)?;
    let ctx = t.matmul(att, v)?;
    let ctx = t.mul(ctx, row_mask)?;
    Ok((ctx, att))
}
