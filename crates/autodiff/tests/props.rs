//! Property tests: softmax normalisation under masks, exact zeros for masked entries and
//! their gradients, orthogonality of the projector, matmul against ndarray.

use ionode_autodiff::Tape;
use ndarray::{Array2, Array3};
use proptest::prelude::*;

/// (dims [b, s, c], values, mask) with values spread widely to test stability.
fn masked_case() -> impl Strategy<Value = ([usize; 3], Vec<f64>, Vec<bool>)> {
    (1usize..4, 1usize..5, 1usize..8).prop_flat_map(|(b, s, c)| {
        let n = b * s * c;
        (
            Just([b, s, c]),
            prop::collection::vec(-40.0f64..40.0, n),
            prop::collection::vec(any::<bool>(), n),
        )
    })
}

fn to_f(mask: &[bool]) -> Vec<f64> {
    mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn softmax_rows_sum_to_one_over_unmasked((dims, x, mask) in masked_case()) {
        let mut t = Tape::new();
        let xv = t.constant(&dims, &x).unwrap();
        let mv = t.mask(&dims, &mask).unwrap();
        prop_assert_eq!(t.value(mv), &to_f(&mask)[..]);
        let y = t.masked_softmax(xv, mv, 2).unwrap();
        let y = t.value(y);
        let c = dims[2];
        for (row, (yr, mr)) in y.chunks(c).zip(mask.chunks(c)).enumerate() {
            for (&v, &m) in yr.iter().zip(mr) {
                prop_assert!(v.is_finite() && v >= 0.0);
                if !m {
                    prop_assert_eq!(v, 0.0, "masked entry not exactly zero in row {}", row);
                }
            }
            let s: f64 = yr.iter().sum();
            if mr.iter().any(|&m| m) {
                prop_assert!((s - 1.0).abs() < 1e-12, "row {} sums to {}", row, s);
            } else {
                prop_assert_eq!(s, 0.0, "fully masked row {} is not all zeros", row);
            }
        }
    }

    #[test]
    fn masked_entries_get_exactly_zero_gradient(
        (dims, x, mask) in masked_case(),
        seed in 0u64..1000,
    ) {
        let mut t = Tape::new();
        let n: usize = dims.iter().product();
        let xv = t.input(&dims, &x).unwrap();
        let mv = t.constant(&dims, &to_f(&mask)).unwrap();
        let y = t.masked_softmax(xv, mv, 2).unwrap();
        // A non-trivial downstream: weights, tanh and a sum.
        let r: Vec<f64> = (0..n).map(|i| ((i as u64 * 7919 + seed) % 17) as f64 - 8.0).collect();
        let rv = t.constant(&dims, &r).unwrap();
        let z = t.mul(y, rv).unwrap();
        let z = t.tanh(z).unwrap();
        let loss = t.sum(z).unwrap();
        t.backward(loss).unwrap();
        let g = t.grad(xv).unwrap();
        for (i, (&gi, &m)) in g.iter().zip(&mask).enumerate() {
            prop_assert!(gi.is_finite());
            if !m {
                prop_assert_eq!(gi, 0.0, "masked entry {} has gradient {}", i, gi);
            }
        }
    }

    #[test]
    fn key_mask_broadcast_matches_full_mask((dims, x, mask) in masked_case()) {
        // A [B, 1, C] key mask gives the same result as the expanded [B, S, C] mask.
        let [b, s, c] = dims;
        let key: Vec<f64> = to_f(&mask[..b * c]);
        let full: Vec<f64> = (0..b * s * c).map(|i| key[(i / (s * c)) * c + i % c]).collect();
        let mut t = Tape::new();
        let xv = t.constant(&dims, &x).unwrap();
        let k = t.constant(&[b, 1, c], &key).unwrap();
        let f = t.constant(&dims, &full).unwrap();
        let y1 = t.masked_softmax(xv, k, 2).unwrap();
        let y2 = t.masked_softmax(xv, f, 2).unwrap();
        prop_assert_eq!(t.value(y1), t.value(y2));
    }

    #[test]
    fn projector_output_is_orthogonal_to_w(
        (b, s) in (1usize..6, 1usize..9),
        seed in any::<u64>(),
        zero_row in any::<bool>(),
    ) {
        let mut state = seed | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0
        };
        let f: Vec<f64> = (0..b * s).map(|_| next()).collect();
        let mut w: Vec<f64> = (0..b * s).map(|_| next()).collect();
        if zero_row {
            w[..s].fill(0.0);
        }
        let mut t = Tape::new();
        let fv = t.input(&[b, s], &f).unwrap();
        let wv = t.constant(&[b, s], &w).unwrap();
        let p = t.project_orthogonal(fv, wv).unwrap();
        let pp = t.project_orthogonal(p, wv).unwrap();
        let (pv, ppv) = (t.value(p), t.value(pp));
        for r in 0..b {
            let (fr, wr, pr) = (&f[r * s..(r + 1) * s], &w[r * s..(r + 1) * s], &pv[r * s..(r + 1) * s]);
            let ww: f64 = wr.iter().map(|v| v * v).sum();
            if ww == 0.0 {
                prop_assert_eq!(pr, fr);
            } else {
                let wp: f64 = wr.iter().zip(pr).map(|(a, b)| a * b).sum();
                let scale = ww.sqrt() * fr.iter().map(|v| v * v).sum::<f64>().sqrt();
                prop_assert!(wp.abs() <= 1e-13 * scale.max(1.0), "w.p = {}", wp);
            }
            for (a, c) in pr.iter().zip(&ppv[r * s..(r + 1) * s]) {
                prop_assert!((a - c).abs() <= 1e-12 * (1.0 + a.abs()), "not idempotent");
            }
        }
        // Backward is P itself: the gradient of sum(P f * g) is P g.
        let g: Vec<f64> = (0..b * s).map(|_| next()).collect();
        let gv = t.constant(&[b, s], &g).unwrap();
        let prod = t.mul(p, gv).unwrap();
        let loss = t.sum(prod).unwrap();
        t.backward(loss).unwrap();
        let pg = t.project_orthogonal(gv, wv).unwrap();
        prop_assert_eq!(t.grad(fv).unwrap(), t.value(pg));
    }

    #[test]
    fn matmul_matches_ndarray(
        (b, m, k, n) in (1usize..4, 1usize..12, 1usize..40, 1usize..20),
        ta in any::<bool>(),
        tb in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut state = seed | 1;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let a = Array3::from_shape_fn(if ta { (b, k, m) } else { (b, m, k) }, |_| next());
        let bm = Array3::from_shape_fn(if tb { (b, n, k) } else { (b, k, n) }, |_| next());
        let mut t = Tape::new();
        let (av, bv) = (t.constant_array(&a).unwrap(), t.constant_array(&bm).unwrap());
        let c = t.matmul_t(av, bv, ta, tb).unwrap();
        let got = t.view(c);
        for i in 0..b {
            let ai = a.index_axis(ndarray::Axis(0), i);
            let bi = bm.index_axis(ndarray::Axis(0), i);
            let ai: Array2<f64> = if ta { ai.t().to_owned() } else { ai.to_owned() };
            let bi: Array2<f64> = if tb { bi.t().to_owned() } else { bi.to_owned() };
            let want = ai.dot(&bi);
            for ((r, cc), w) in want.indexed_iter() {
                prop_assert!((got[[i, r, cc]] - w).abs() < 1e-12);
            }
        }
    }
}
