//! One graph through every op of the tape (shared by `reuse.rs` and `kernel_paths.rs`).

use super::{positive, randn, rng};
use ionode_autodiff::{Result, Tape, Var};

/// Batch, tokens, width: `x` is `[b, s, d]`.
pub type Dims = (usize, usize, usize);

/// Every op whose backward overwrites on first touch, plus the accumulating ones and an
/// operand used twice, with rank-3 batched and shared-operand products.
pub fn graph(t: &mut Tape, (b, s, d): Dims, v: &[Vec<f64>]) -> Result<(Var, Vec<Var>)> {
    let x = t.input(&[b, s, d], &v[0])?;
    let w = t.input(&[d, d], &v[1])?;
    let bias = t.input(&[d], &v[2])?;
    let p = t.input(&[b, s, d], &v[3])?;
    let row: Vec<f64> = (0..s).map(|j| if j % 4 == 2 { 0.0 } else { 1.0 }).collect();
    let mask = t.constant(&[b, 1, s], &row.repeat(b))?;
    let dir = t.constant(&[b, s], &v[4])?;
    let h = t.linear(x, w, Some(bias))?;
    let h = t.tanh(h)?;
    let q = t.mul(h, p)?;
    let k = t.div(h, p)?;
    let scores = t.matmul_t(q, k, false, true)?;
    let scores = t.scale(scores, 0.3)?;
    let att = t.masked_softmax(scores, mask, 2)?;
    let ctx = t.matmul(att, q)?;
    let shared = t.matmul(ctx, w)?;
    // A shared rank-2 left operand, and a transposed rank-3 one with a shared right operand:
    // batched products whose shared gradient every batch entry adds to.
    let ws = t.input(&[s, s], &v[5])?;
    let left = t.matmul(ws, ctx)?;
    let right = t.matmul_t(ctx, ws, true, false)?;
    let right = t.transpose(right)?;
    let shared = t.add(shared, left)?;
    let shared = t.add(shared, right)?;
    let e = t.exp(shared)?;
    let l = t.log(p)?;
    let r = t.sqrt(p)?;
    let m = t.sub(e, l)?;
    let m = t.add(m, r)?;
    let m = t.neg(m)?;
    let m = t.add_scalar(m, 0.5)?;
    let sq = t.mul(m, m)?;
    let tr = t.transpose(sq)?;
    let flat = t.reshape(tr, &[b, d * s])?;
    let part = t.slice(flat, 1, 2, s)?;
    let f = t.project_orthogonal(part, dir)?;
    let both = t.concat(&[f, part], 1)?;
    // One element per row and operand, as the model's token features are joined.
    let (f3, part3) = (t.reshape(f, &[b, s, 1])?, t.reshape(part, &[b, s, 1])?);
    let tokens = t.concat(&[f3, part3, f3], 2)?;
    let tokens = t.reshape(tokens, &[b, 3 * s])?;
    let both = t.concat(&[both, tokens], 1)?;
    let both = t.square(both)?;
    let rows = t.sum_axis(both, 1)?;
    let loss = t.mean(rows)?;
    Ok((loss, vec![x, w, bias, p, ws]))
}

pub fn inputs(seed: u64, (b, s, d): Dims) -> Vec<Vec<f64>> {
    let mut r = rng(seed);
    vec![
        randn(&mut r, b * s * d),
        randn(&mut r, d * d),
        randn(&mut r, d),
        positive(&mut r, b * s * d, 0.5, 2.0),
        randn(&mut r, b * s),
        randn(&mut r, s * s),
    ]
}

/// The graph's loss and the gradient of every input, on `t`.
pub fn grads(t: &mut Tape, dims: Dims, v: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
    let (loss, ins) = graph(t, dims, v).unwrap();
    t.backward(loss).unwrap();
    let value = t.item(loss);
    (
        value,
        ins.iter().map(|&i| t.grad(i).unwrap().to_vec()).collect(),
    )
}
