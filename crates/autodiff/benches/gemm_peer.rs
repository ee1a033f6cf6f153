//! The tape's GEMM against the `gemm` crate (the kernels behind faer: run-time
//! AVX2/AVX-512 dispatch, strided views, alpha/beta accumulation), one thread, on every
//! matrix product of one `train_step` of the attention neural ODE at batch B (BENCH.md;
//! MODEL.md's defaults: S = 7 slots, d = 16, 4 token features, ODENet 113 -> 64 x 4 -> 7):
//! per field evaluation the token embedding and Q, K, V on the 7B token rows, the ODENet's
//! layers on the B pooled rows, the per-sample attention products (7 x 16 x 7), and in
//! backward each linear layer's input gradient `dX = G W^T` (B read transposed) and weight
//! gradient `dW += X^T G` (A read transposed, contracting over the rows), exactly as
//! `backward.rs` calls the kernel.
//!
//!   cargo bench -p ionode-autodiff --bench gemm_peer
//!
//! Throughput is in FLOP (2 M N K per product).

mod common;
use common::values;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::__bench::Gemm;
use std::hint::black_box;

/// One product `C (m x n) (+)= op(A) op(B)`; a transposed A is stored `k x m`, a
/// transposed B `n x k`, both row-major.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    accumulate: bool,
}

fn shapes(b: usize) -> Vec<Shape> {
    let s = |name, (m, n, k), (ta, tb), accumulate| Shape {
        name,
        m,
        n,
        k,
        ta,
        tb,
        accumulate,
    };
    let (rows, tok) = (b, 7 * b);
    let (nn, nt, tn) = ((false, false), (false, true), (true, false));
    vec![
        // forward (a linear layer with bias writes the bias, then accumulates)
        s("embed", (tok, 16, 4), nn, true),
        s("qkv", (tok, 16, 16), nn, false),
        s("net_in", (rows, 64, 113), nn, true),
        s("net_hidden", (rows, 64, 64), nn, true),
        s("net_out", (rows, 7, 64), nn, true),
        s("scores", (7, 7, 16), nt, false),
        s("att_v", (7, 16, 7), nn, false),
        // input gradients dX += G W^T
        s("d_embed", (tok, 4, 16), nt, true),
        s("d_qkv", (tok, 16, 16), nt, true),
        s("d_net_in", (rows, 113, 64), nt, true),
        s("d_net_hidden", (rows, 64, 64), nt, true),
        s("d_net_out", (rows, 64, 7), nt, true),
        // weight gradients dW += X^T G
        s("w_embed", (4, 16, tok), tn, true),
        s("w_qkv", (16, 16, tok), tn, true),
        s("w_net_in", (113, 64, rows), tn, true),
        s("w_net_hidden", (64, 64, rows), tn, true),
        s("w_net_out", (64, 7, rows), tn, true),
    ]
}

/// The `gemm` crate on the same row-major buffers (its dst := alpha dst + beta A B).
fn peer(sh: Shape, a: &[f64], b: &[f64], c: &mut [f64]) {
    let (m, n, k) = (sh.m, sh.n, sh.k);
    // (column stride, row stride) of A (m x k) and B (k x n) as stored.
    let (a_cs, a_rs) = if sh.ta { (m, 1) } else { (1, k) };
    let (b_cs, b_rs) = if sh.tb { (k, 1) } else { (1, n) };
    // SAFETY: the buffers hold m*k, k*n and m*n elements, the strides stay inside them,
    // and dst does not alias the inputs.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            sh.accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

fn ours(g: &mut Gemm, sh: Shape, a: &[f64], b: &[f64], c: &mut [f64]) {
    g.product((sh.m, sh.n, sh.k), (sh.ta, sh.tb), a, b, c, sh.accumulate)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_peer");
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    for batch in [64, 256, 1024] {
        for sh in shapes(batch) {
            // The per-sample attention products do not depend on B: time them once.
            if sh.m * sh.n * sh.k < 4096 && batch != 64 {
                continue;
            }
            let a = values(sh.m * sh.k, 1, 1.0);
            let b = values(sh.k * sh.n, 2, 1.0);
            let mut out = vec![0.0; sh.m * sh.n];
            // The two agree before they are timed.
            let mut want = vec![0.0; sh.m * sh.n];
            let mut tape = Gemm::default();
            ours(&mut tape, sh, &a, &b, &mut want);
            peer(sh, &a, &b, &mut out);
            let worst = want
                .iter()
                .zip(&out)
                .map(|(x, y)| (x - y).abs() / (1.0 + x.abs()))
                .fold(0.0f64, f64::max);
            assert!(worst < 1e-12, "{} at B = {batch}: {worst}", sh.name);
            let id = format!("B{batch}/{}_{}x{}x{}", sh.name, sh.m, sh.n, sh.k);
            g.throughput(Throughput::Elements((2 * sh.m * sh.n * sh.k) as u64));
            g.bench_function(BenchmarkId::new("tape", &id), |bn| {
                bn.iter(|| ours(&mut tape, sh, black_box(&a), &b, &mut out))
            });
            g.bench_function(BenchmarkId::new("gemm_crate", &id), |bn| {
                bn.iter(|| peer(sh, black_box(&a), &b, &mut out))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
