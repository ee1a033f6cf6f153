//! One gradient check per op, on random shapes (batch 1 and larger) including broadcasting,
//! plus the error messages and the no-grad / detach / parameter plumbing.

mod common;
use common::*;
use ionode_autodiff::{AdError, ParamStore, Tape};

const TRIALS: usize = 3;

#[test]
fn add_sub_mul_div_same_shape() {
    let mut r = rng(1);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let c = r.random_range(1..6);
        let d = [b, c];
        let (a, bb) = (
            randn(&mut r, b * c),
            away_from_zero(&mut r, b * c, 0.5, 2.0),
        );
        let ins = [input(&d, a), input(&d, bb)];
        check_op("add", &ins, |t, v| t.add(v[0], v[1]));
        check_op("sub", &ins, |t, v| t.sub(v[0], v[1]));
        check_op("mul", &ins, |t, v| t.mul(v[0], v[1]));
        check_op("div", &ins, |t, v| t.div(v[0], v[1]));
        // The same node on both sides.
        check_op("mul self", &ins[1..], |t, v| t.mul(v[0], v[0]));
        check_op("div self", &ins[1..], |t, v| t.div(v[0], v[0]));
    }
}

use rand::RngExt;

#[test]
fn binary_broadcasting_row_column_scalar() {
    let mut r = rng(2);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let (s, c) = (r.random_range(1..4), r.random_range(2..5));
        // (lhs dims, rhs dims): row, column, scalar, rank-3 with a [S, C] row, reversed.
        let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
            (vec![b, c], vec![c]),
            (vec![b, c], vec![1, c]),
            (vec![b, c], vec![b, 1]),
            (vec![b, c], vec![]),
            (vec![b, s, c], vec![s, c]),
            (vec![b, s, c], vec![b, s, 1]),
            (vec![b, s, c], vec![b, 1, c]),
            (vec![c], vec![b, c]),
            (vec![], vec![b, s, c]),
            (vec![b, 1, c], vec![s, 1]),
        ];
        for (da, db) in cases {
            let na: usize = da.iter().product();
            let nb: usize = db.iter().product();
            let ins = [
                input(&da, randn(&mut r, na)),
                input(&db, away_from_zero(&mut r, nb, 0.5, 2.0)),
            ];
            let tag = format!("{da:?} op {db:?}");
            check_op(&format!("add {tag}"), &ins, |t, v| t.add(v[0], v[1]));
            check_op(&format!("sub {tag}"), &ins, |t, v| t.sub(v[0], v[1]));
            check_op(&format!("mul {tag}"), &ins, |t, v| t.mul(v[0], v[1]));
            check_op(&format!("div {tag}"), &ins, |t, v| t.div(v[0], v[1]));
        }
    }
}

#[test]
fn unary_ops() {
    let mut r = rng(3);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let c = r.random_range(1..6);
        let d = [b, 2, c];
        let n = b * 2 * c;
        // Spread over both tanh branches (|x| < 0.625 and above).
        let x = input(&d, randn(&mut r, n).iter().map(|v| 1.5 * v).collect());
        let pos = input(&d, positive(&mut r, n, 0.3, 3.0));
        check_op("neg", std::slice::from_ref(&x), |t, v| t.neg(v[0]));
        check_op("scale", std::slice::from_ref(&x), |t, v| {
            t.scale(v[0], -2.5)
        });
        check_op("add_scalar", std::slice::from_ref(&x), |t, v| {
            t.add_scalar(v[0], 0.75)
        });
        check_op("exp", std::slice::from_ref(&x), |t, v| t.exp(v[0]));
        check_op("tanh", std::slice::from_ref(&x), |t, v| t.tanh(v[0]));
        check_op("square", std::slice::from_ref(&x), |t, v| t.square(v[0]));
        check_op("log", std::slice::from_ref(&pos), |t, v| t.log(v[0]));
        check_op("sqrt", std::slice::from_ref(&pos), |t, v| t.sqrt(v[0]));
    }
}

#[test]
fn matmul_plain_batched_and_transposed() {
    let mut r = rng(4);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let (m, k, n) = (
            r.random_range(1..7),
            r.random_range(1..7),
            r.random_range(1..10),
        );
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let da = if ta { [k, m] } else { [m, k] };
            let db = if tb { [n, k] } else { [k, n] };
            let ins = [
                input(&da, randn(&mut r, m * k)),
                input(&db, randn(&mut r, k * n)),
            ];
            check_op(&format!("matmul ta={ta} tb={tb}"), &ins, |t, v| {
                t.matmul_t(v[0], v[1], ta, tb)
            });
            // Batched, both operands rank 3.
            let ins3 = [
                input(&[b, da[0], da[1]], randn(&mut r, b * m * k)),
                input(&[b, db[0], db[1]], randn(&mut r, b * k * n)),
            ];
            check_op(&format!("bmm ta={ta} tb={tb}"), &ins3, |t, v| {
                t.matmul_t(v[0], v[1], ta, tb)
            });
            // Rank 3 by shared rank 2, and rank 2 by rank 3.
            let mixed = [
                input(&[b, da[0], da[1]], randn(&mut r, b * m * k)),
                input(&db, randn(&mut r, k * n)),
            ];
            check_op(
                &format!("bmm shared rhs ta={ta} tb={tb}"),
                &mixed,
                |t, v| t.matmul_t(v[0], v[1], ta, tb),
            );
            let mixed2 = [
                input(&da, randn(&mut r, m * k)),
                input(&[b, db[0], db[1]], randn(&mut r, b * k * n)),
            ];
            check_op(
                &format!("bmm shared lhs ta={ta} tb={tb}"),
                &mixed2,
                |t, v| t.matmul_t(v[0], v[1], ta, tb),
            );
        }
    }
    // A x A^T with the same node on both sides.
    let a = input(&[3, 4], randn(&mut r, 12));
    check_op("a a^T", &[a], |t, v| t.matmul_t(v[0], v[0], false, true));
}

#[test]
fn matmul_values_match_ndarray_dot() {
    let mut r = rng(40);
    let (m, k, n) = (13, 113, 17);
    let a = ndarray::Array2::from_shape_vec((m, k), randn(&mut r, m * k)).unwrap();
    let b = ndarray::Array2::from_shape_vec((k, n), randn(&mut r, k * n)).unwrap();
    let mut t = Tape::new();
    let (va, vb) = (t.constant_array(&a).unwrap(), t.constant_array(&b).unwrap());
    let c = t.matmul(va, vb).unwrap();
    let want = a.dot(&b);
    for (x, y) in t.view(c).iter().zip(want.iter()) {
        assert!((x - y).abs() < 1e-12, "{x} vs {y}");
    }
}

#[test]
fn linear_layer_ranks_and_bias() {
    let mut r = rng(5);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let (fi, fo, s) = (
            r.random_range(1..6),
            r.random_range(1..9),
            r.random_range(1..4),
        );
        for xd in [vec![b, fi], vec![b, s, fi], vec![fi]] {
            let nx: usize = xd.iter().product();
            let ins = [
                input(&xd, randn(&mut r, nx)),
                input(&[fi, fo], randn(&mut r, fi * fo)),
                input(&[fo], randn(&mut r, fo)),
            ];
            check_op(&format!("linear {xd:?} with bias"), &ins, |t, v| {
                t.linear(v[0], v[1], Some(v[2]))
            });
            check_op(&format!("linear {xd:?} no bias"), &ins[..2], |t, v| {
                t.linear(v[0], v[1], None)
            });
        }
    }
    // Value check against matmul + add.
    let mut t = Tape::new();
    let x = t.constant(&[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
    let w = t.constant(&[3, 2], &[1., 0., 0., 1., 1., 1.]).unwrap();
    let bias = t.constant(&[2], &[0.5, -0.5]).unwrap();
    let y = t.linear(x, w, Some(bias)).unwrap();
    assert_eq!(t.value(y), &[4.5, 4.5, 10.5, 10.5]);
}

#[test]
fn transpose_reshape_concat_slice_select() {
    let mut r = rng(6);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let (m, n) = (r.random_range(1..5), r.random_range(1..5));
        let x2 = input(&[m, n], randn(&mut r, m * n));
        let x3 = input(&[b, m, n], randn(&mut r, b * m * n));
        check_op("transpose 2", std::slice::from_ref(&x2), |t, v| {
            t.transpose(v[0])
        });
        check_op("transpose 3", std::slice::from_ref(&x3), |t, v| {
            t.transpose(v[0])
        });
        check_op("reshape", std::slice::from_ref(&x3), |t, v| {
            let y = t.reshape(v[0], &[b, m * n])?;
            t.tanh(y) // a non-linear consumer, so the shared gradient storage matters
        });
        for axis in 0..3 {
            let mut d2 = [b, m, n];
            d2[axis] = r.random_range(1..4);
            let n2: usize = d2.iter().product();
            let ins = [
                x3_clone(&x3),
                input(&d2, randn(&mut r, n2)),
                input(&[b, m, n], randn(&mut r, b * m * n)),
            ];
            check_op(&format!("concat axis {axis}"), &ins, |t, v| {
                t.concat(&[v[0], v[1], v[2]], axis)
            });
            let ext = [b, m, n][axis];
            let start = r.random_range(0..ext);
            let len = r.random_range(1..=ext - start);
            check_op(
                &format!("slice axis {axis}"),
                std::slice::from_ref(&x3),
                |t, v| t.slice(v[0], axis, start, len),
            );
            check_op(
                &format!("select axis {axis}"),
                std::slice::from_ref(&x3),
                |t, v| t.select(v[0], axis, start),
            );
        }
    }
    let mut t = Tape::new();
    let x = t.constant(&[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
    let y = t.constant(&[2, 1], &[7., 8.]).unwrap();
    let c = t.concat(&[x, y], 1).unwrap();
    assert_eq!(t.value(c), &[1., 2., 3., 7., 4., 5., 6., 8.]);
    let s = t.select(x, 1, 2).unwrap();
    assert_eq!((t.value(s), t.shape(s).dims()), (&[3., 6.][..], &[2][..]));
    let tr = t.transpose(x).unwrap();
    assert_eq!(t.value(tr), &[1., 4., 2., 5., 3., 6.]);
}

fn x3_clone(x: &In) -> In {
    input(&x.dims, x.data.clone())
}

#[test]
fn reductions() {
    let mut r = rng(7);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let (m, n) = (r.random_range(1..5), r.random_range(1..5));
        let x = input(&[b, m, n], randn(&mut r, b * m * n));
        let xs = std::slice::from_ref(&x);
        check_op("sum", xs, |t, v| {
            let s = t.sum(v[0])?;
            t.square(s)
        });
        check_op("mean", xs, |t, v| {
            let s = t.mean(v[0])?;
            t.square(s)
        });
        for axis in 0..3 {
            check_op(&format!("sum_axis {axis}"), xs, |t, v| {
                t.sum_axis(v[0], axis)
            });
            check_op(&format!("mean_axis {axis}"), xs, |t, v| {
                t.mean_axis(v[0], axis)
            });
            check_op(&format!("sum_axis_keepdim {axis}"), xs, |t, v| {
                let s = t.sum_axis_keepdim(v[0], axis)?;
                t.mul(s, v[0]) // broadcasts back
            });
            check_op(&format!("mean_axis_keepdim {axis}"), xs, |t, v| {
                t.mean_axis_keepdim(v[0], axis)
            });
        }
    }
    let mut t = Tape::new();
    let x = t.constant(&[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
    let s0 = t.sum_axis(x, 0).unwrap();
    let m1 = t.mean_axis(x, 1).unwrap();
    let all = t.mean(x).unwrap();
    assert_eq!(t.value(s0), &[5., 7., 9.]);
    assert_eq!(t.value(m1), &[2., 5.]);
    assert_eq!(t.item(all), 3.5);
}

/// A random 0/1 mask; the first row of every batch item is fully masked on purpose.
fn mask(r: &mut rand::rngs::StdRng, dims: &[usize], zero_first_row: bool) -> Vec<f64> {
    let n: usize = dims.iter().product();
    let last = *dims.last().unwrap();
    let rows_per_batch = n / dims[0] / last;
    (0..n)
        .map(|i| {
            let row = i / last;
            if zero_first_row && row.is_multiple_of(rows_per_batch) {
                0.0
            } else if r.random_bool(0.7) {
                1.0
            } else {
                0.0
            }
        })
        .collect()
}

#[test]
fn softmax_plain_and_masked() {
    let mut r = rng(8);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let (s, c) = (r.random_range(2..5), r.random_range(2..8));
        let x = input(&[b, s, c], randn(&mut r, b * s * c));
        let xs = std::slice::from_ref(&x);
        // (A softmax over an axis of extent 1 is constant: its gradient is truly zero.)
        for axis in (0..3).filter(|&a| [b, s, c][a] > 1) {
            check_op(&format!("softmax axis {axis}"), xs, |t, v| {
                t.softmax(v[0], axis)
            });
        }
        // Elementwise mask with fully masked rows.
        let m_full = mask(&mut r, &[b, s, c], true);
        let rep = check_op("masked_softmax full mask", xs, |t, v| {
            let m = t.constant(&[b, s, c], &m_full)?;
            t.masked_softmax(v[0], m, 2)
        });
        assert!(rep.checked > 0);
        // Key mask broadcast over rows ([B, 1, C]), as attention uses it.
        let m_key = mask(&mut r, &[b, 1, c], false);
        check_op("masked_softmax key mask", xs, |t, v| {
            let m = t.constant(&[b, 1, c], &m_key)?;
            t.masked_softmax(v[0], m, 2)
        });
        // Mask along a non-last axis.
        let m_mid = mask(&mut r, &[b, s, c], false);
        check_op("masked_softmax axis 1", xs, |t, v| {
            let m = t.constant(&[b, s, c], &m_mid)?;
            t.masked_softmax(v[0], m, 1)
        });
    }
}

#[test]
fn projector() {
    let mut r = rng(9);
    for trial in 0..TRIALS {
        let b = batch(&mut r, trial);
        let s = r.random_range(2..8);
        let f = input(&[b, s], randn(&mut r, b * s));
        let mut w = randn(&mut r, b * s);
        w[..s].fill(0.0); // a row with w.w == 0 passes f through
        let w_row = randn(&mut r, s);
        check_op("project per-row w", std::slice::from_ref(&f), |t, v| {
            let w = t.constant(&[b, s], &w)?;
            t.project_orthogonal(v[0], w)
        });
        check_op("project shared w", std::slice::from_ref(&f), |t, v| {
            let w = t.constant(&[s], &w_row)?;
            let p = t.project_orthogonal(v[0], w)?;
            t.tanh(p)
        });
    }
    let mut t = Tape::new();
    let f = t.constant(&[2, 2], &[1., 2., 3., 4.]).unwrap();
    let w = t.constant(&[2, 2], &[0., 0., 1., 1.]).unwrap();
    let p = t.project_orthogonal(f, w).unwrap();
    assert_eq!(t.value(p), &[1., 2., -0.5, 0.5]);
}

#[test]
fn shape_errors_name_both_shapes() {
    let mut t = Tape::new();
    let a = t.constant(&[4, 3], &[0.0; 12]).unwrap();
    let b = t.constant(&[4], &[0.0; 4]).unwrap();
    let c = t.constant(&[2, 5], &[0.0; 10]).unwrap();
    let expect_both = |e: AdError, l: &str, r: &str| {
        let msg = e.to_string();
        assert!(msg.contains(l) && msg.contains(r), "{msg}");
    };
    expect_both(t.add(a, b).unwrap_err(), "[4, 3]", "[4]");
    expect_both(t.mul(a, c).unwrap_err(), "[4, 3]", "[2, 5]");
    expect_both(t.matmul(a, c).unwrap_err(), "[4, 3]", "[2, 5]");
    expect_both(t.linear(a, c, None).unwrap_err(), "[4, 3]", "[2, 5]");
    let w = t.constant(&[3, 2], &[0.0; 6]).unwrap();
    expect_both(t.linear(a, w, Some(b)).unwrap_err(), "[3, 2]", "[4]");
    expect_both(t.concat(&[a, c], 0).unwrap_err(), "[4, 3]", "[2, 5]");
    expect_both(t.reshape(a, &[5, 2]).unwrap_err(), "[4, 3]", "[5, 2]");
    expect_both(t.masked_softmax(a, c, 1).unwrap_err(), "[4, 3]", "[2, 5]");
    expect_both(t.project_orthogonal(a, c).unwrap_err(), "[4, 3]", "[2, 5]");
    assert!(matches!(t.sum_axis(a, 2), Err(AdError::Axis { .. })));
    assert!(matches!(t.slice(a, 0, 3, 2), Err(AdError::BadShape { .. })));
    assert!(matches!(
        t.constant(&[2], &[1.0]),
        Err(AdError::DataLen { .. })
    ));
    assert!(matches!(
        t.constant(&[1, 1, 1, 1], &[1.0]),
        Err(AdError::Dims { .. })
    ));
    // Nothing was recorded by the failed ops.
    assert_eq!(t.len(), 4);
    // A mask or projector direction that requires a gradient is refused.
    let g = t.input(&[4, 3], &[0.0; 12]).unwrap();
    assert!(matches!(
        t.masked_softmax(a, g, 1),
        Err(AdError::Invalid { .. })
    ));
    assert!(matches!(
        t.project_orthogonal(a, g),
        Err(AdError::Invalid { .. })
    ));
    // Backward needs a scalar that depends on something trainable.
    assert!(matches!(t.backward(g), Err(AdError::BadShape { .. })));
    let s = t.sum(a).unwrap();
    assert!(matches!(t.backward(s), Err(AdError::Invalid { .. })));
}

#[test]
fn stale_handles_are_rejected() {
    let mut t = Tape::new();
    let a = t.constant(&[2], &[1.0, 2.0]).unwrap();
    t.clear();
    let _b = t.constant(&[2], &[3.0, 4.0]).unwrap();
    assert!(matches!(t.neg(a), Err(AdError::StaleVar { .. })));
    let mut other = Tape::new();
    let c = other.constant(&[2], &[0.0, 0.0]).unwrap();
    assert!(matches!(t.add(c, c), Err(AdError::StaleVar { .. })));
}

#[test]
fn detach_no_grad_and_param_plumbing() {
    let mut store = ParamStore::new();
    let p = store.add("p", &[3], &[1.0, -2.0, 0.5]).unwrap();
    let mut t = Tape::new();
    // The same parameter used twice accumulates both paths: d/dp sum(p*p + 3p) = 2p + 3.
    let v = t.param(&store, p);
    let v2 = t.param(&store, p);
    let sq = t.mul(v, v).unwrap();
    let lin = t.scale(v2, 3.0).unwrap();
    let tot = t.add(sq, lin).unwrap();
    let loss = t.sum(tot).unwrap();
    t.backward_into(loss, &mut store).unwrap();
    assert_eq!(store.grad(p), &[5.0, -1.0, 4.0]);
    // Accumulation across steps until zero_grad.
    t.accumulate_param_grads(&mut store).unwrap();
    assert_eq!(store.grad(p), &[10.0, -2.0, 8.0]);
    store.zero_grad();
    assert_eq!(store.grad(p), &[0.0; 3]);
    assert_eq!(t.grad(v).unwrap(), &[2.0, -4.0, 1.0]);

    // detach: no gradient through the detached branch.
    t.clear();
    let v = t.param(&store, p);
    let d = t.detach(v).unwrap();
    let prod = t.mul(v, d).unwrap(); // d/dv (v * stop(v)) = stop(v)
    let loss = t.sum(prod).unwrap();
    t.backward(loss).unwrap();
    assert_eq!(t.grad(v).unwrap(), &[1.0, -2.0, 0.5]);
    assert!(t.grad(d).is_none());
    t.zero_grad();
    assert_eq!(t.grad(v).unwrap(), &[0.0; 3]);

    // no_grad: nothing recorded inside requires a gradient.
    t.clear();
    let (y, loss) = t.no_grad(|t| {
        let v = t.param(&store, p);
        let y = t.tanh(v).unwrap();
        (y, t.sum(y).unwrap())
    });
    assert!(t.grad_enabled());
    assert!(!t.requires_grad(y));
    assert!(matches!(t.backward(loss), Err(AdError::Invalid { .. })));

    // Nodes recorded after a backward have no gradient (rather than a stale one).
    t.clear();
    let v = t.param(&store, p);
    let loss = t.sum(v).unwrap();
    t.backward(loss).unwrap();
    let later = t.square(v).unwrap();
    assert!(t.grad(later).is_none());
    assert_eq!(t.grad(v).unwrap(), &[1.0; 3]);
    let _late_param = t.param(&store, p);
    store.zero_grad();
    t.accumulate_param_grads(&mut store).unwrap();
    assert_eq!(store.grad(p), &[1.0; 3]);

    // Reading a value is a borrow of the arena, not a copy.
    let v = t.param(&store, p);
    assert_eq!(t.value(v).as_ptr(), t.view(v).as_ptr());
}

/// Gradients zeroed lazily on first touch must equal a fresh tape's, bit for bit, on a
/// reused tape full of stale numbers: aliases (reshape of reshape, detach) whose consumers
/// interleave with the source's, a node that requires a gradient but does not reach the loss,
/// and a parameter that is fed in but unused.
#[test]
fn reused_tape_gradients_equal_fresh_tape() {
    let mut store = ParamStore::new();
    let p = store
        .add("p", &[2, 3], &[0.5, -1.0, 2.0, 0.25, 1.5, -0.75])
        .unwrap();
    let unused = store.add("unused", &[2], &[1.0, 2.0]).unwrap();
    let record = |t: &mut Tape, s: &ParamStore| {
        let x = t.param(s, p);
        let _u = t.param(s, unused);
        let a = t.tanh(x).unwrap();
        let r1 = t.reshape(x, &[3, 2]).unwrap();
        let b = t.square(r1).unwrap();
        let r2 = t.reshape(r1, &[6]).unwrap();
        let c = t.exp(r2).unwrap();
        let d = t.detach(x).unwrap();
        let e = t.mul(x, d).unwrap();
        let dead = t.scale(x, 3.0).unwrap(); // requires grad, never reaches the loss
        let parts = [
            t.sum(a).unwrap(),
            t.sum(b).unwrap(),
            t.sum(c).unwrap(),
            t.sum(e).unwrap(),
        ];
        let mut l = parts[0];
        for &q in &parts[1..] {
            l = t.add(l, q).unwrap();
        }
        (x, dead, l)
    };
    let mut fresh = Tape::new();
    let (x0, dead0, l0) = record(&mut fresh, &store);
    fresh.backward(l0).unwrap();

    let mut reused = Tape::new();
    // Dirty every buffer with a bigger, different graph and gradients first.
    for _ in 0..2 {
        let big = reused.input(&[64], &[7.0; 64]).unwrap();
        let y = reused.exp(big).unwrap();
        let s = reused.sum(y).unwrap();
        reused.backward(s).unwrap();
        reused.clear();
    }
    let (x1, dead1, l1) = record(&mut reused, &store);
    reused.backward(l1).unwrap();
    assert_eq!(fresh.grad(x0).unwrap(), reused.grad(x1).unwrap());
    assert_eq!(reused.grad(dead1).unwrap(), &[0.0; 6]);
    assert_eq!(fresh.grad(dead0).unwrap(), &[0.0; 6]);
    store.zero_grad();
    reused.accumulate_param_grads(&mut store).unwrap();
    assert_eq!(store.grad(unused), &[0.0, 0.0]);
    assert_eq!(store.grad(p), fresh.grad(x0).unwrap());
}

/// Gradient regions are zeroed lazily, on first touch. Every rule, on a tape whose gradient
/// arena is full of stale values, must give a fresh tape's gradients bit for bit (the
/// per-op gradient checks above say those are right): same-shape binary ops with both
/// operands the same node, unary, linear with bias, batched matmul and rank-2 operands
/// shared by the batch, transpose, concat with a repeated operand, sums, projector,
/// broadcast binary, slice and masked softmax.
#[test]
fn reused_tape_gradients_equal_fresh_tape_for_every_rule() {
    let mut store = ParamStore::new();
    let vals = |n: usize, k: f64| -> Vec<f64> {
        (0..n).map(|i| ((i as f64 + 1.0) * k).sin() * 0.9).collect()
    };
    let px = store.add("x", &[2, 3, 4], &vals(24, 0.37)).unwrap();
    let pw = store.add("w", &[4, 4], &vals(16, 0.71)).unwrap();
    let pb = store.add("b", &[4], &vals(4, 1.3)).unwrap();
    let pr = store.add("row", &[4], &vals(4, 2.1)).unwrap();
    let record = |t: &mut Tape, s: &ParamStore| {
        let x = t.param(s, px);
        let w = t.param(s, pw);
        let b = t.param(s, pb);
        let row = t.param(s, pr);
        let xx = t.mul(x, x).unwrap(); // same node on both sides
        let bc = t.add(xx, row).unwrap(); // broadcast row
        let th = t.tanh(bc).unwrap();
        let lin = t.linear(th, w, Some(b)).unwrap(); // [2,3,4]
        let shared = t.matmul(lin, w).unwrap(); // rank-2 right operand shared by the batch
        let tr = t.transpose(shared).unwrap(); // [2,4,3]
        let bm = t.matmul(tr, x).unwrap(); // batched [2,4,4]
        let mask = t
            .constant(&[2, 1, 4], &[1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
            .unwrap();
        let sm = t.masked_softmax(bm, mask, 2).unwrap();
        let sl = t.slice(sm, 1, 1, 2).unwrap(); // [2,2,4]
        let cat = t.concat(&[sl, sl, lin], 1).unwrap(); // [2,7,4], `sl` twice
        let flat = t.reshape(cat, &[14, 4]).unwrap();
        let zw = t.constant(&[4], &[1.0, -1.0, 2.0, -2.0]).unwrap();
        let pj = t.project_orthogonal(flat, zw).unwrap();
        let sa = t.sum_axis(pj, 0).unwrap();
        let sq = t.square(sa).unwrap();
        let l1 = t.sum(sq).unwrap();
        let l2 = t.mean(bm).unwrap();
        let left = t.matmul(w, tr).unwrap(); // rank-2 left operand shared by the batch
        let l3 = t.mean(left).unwrap();
        let l12 = t.add(l1, l2).unwrap();
        t.add(l12, l3).unwrap()
    };
    let grads = |t: &mut Tape, s: &ParamStore| {
        let l = record(t, s);
        t.backward(l).unwrap();
        let mut st = s.clone();
        st.zero_grad();
        t.accumulate_param_grads(&mut st).unwrap();
        [px, pw, pb, pr].map(|p| st.grad(p).to_vec())
    };
    let fresh = grads(&mut Tape::new(), &store);
    let mut reused = Tape::new();
    for _ in 0..2 {
        // A larger graph leaves large, unrelated gradients everywhere in the arena.
        let big = reused.input(&[512], &[3.0; 512]).unwrap();
        let y = reused.exp(big).unwrap();
        let s = reused.sum(y).unwrap();
        reused.backward(s).unwrap();
        reused.clear();
    }
    assert_eq!(grads(&mut reused, &store), fresh);
    assert!(
        fresh.iter().all(|g| g.iter().any(|v| *v != 0.0)),
        "{fresh:?}"
    );
}
