//! A reused tape gives exactly the gradients of a new one.
//!
//! Backward writes an input's gradient region on its first touch instead of zeroing it and
//! adding (see `backward.rs`), so on a reused tape every rule that claims to overwrite must
//! write every element of the region: a missed element would keep the previous step's
//! value. This drives one graph through every op with one set of inputs, then, on the same
//! tape, with another, and compares every input's gradient with a fresh tape's.

mod common;
use common::{positive, randn, rng};
use ionode_autodiff::{Result, Tape, Var};

/// Every op whose backward overwrites on first touch, plus the accumulating ones and an
/// operand used twice, with rank-3 batched and shared-operand products.
fn graph(t: &mut Tape, v: &[Vec<f64>]) -> Result<(Var, Vec<Var>)> {
    let (b, s, d) = (3, 4, 5);
    let x = t.input(&[b, s, d], &v[0])?;
    let w = t.input(&[d, d], &v[1])?;
    let bias = t.input(&[d], &v[2])?;
    let p = t.input(&[b, s, d], &v[3])?;
    let mask = t.constant(&[b, 1, s], &[1.0, 1.0, 0.0, 1.0].repeat(b))?;
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

fn inputs(seed: u64) -> Vec<Vec<f64>> {
    let mut r = rng(seed);
    vec![
        randn(&mut r, 60),
        randn(&mut r, 25),
        randn(&mut r, 5),
        positive(&mut r, 60, 0.5, 2.0),
        randn(&mut r, 12),
        randn(&mut r, 16),
    ]
}

fn grads(t: &mut Tape, v: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let (loss, ins) = graph(t, v).unwrap();
    t.backward(loss).unwrap();
    ins.iter().map(|&i| t.grad(i).unwrap().to_vec()).collect()
}

#[test]
fn a_reused_tape_gives_the_gradients_of_a_new_one() {
    let (first, second) = (inputs(1), inputs(2));
    let mut reused = Tape::new();
    let before = grads(&mut reused, &first);
    reused.clear();
    let again = grads(&mut reused, &second);
    let fresh = grads(&mut Tape::new(), &second);
    assert_ne!(
        before, fresh,
        "the two input sets must give different gradients"
    );
    for (i, (a, f)) in again.iter().zip(&fresh).enumerate() {
        assert!(f.iter().all(|g| g.is_finite()), "input {i}: {f:?}");
        assert_eq!(a, f, "input {i}: reused tape vs new tape");
    }
}
