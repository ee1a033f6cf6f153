//! The tape's GEMM against the `gemm` crate (the kernels behind faer: run-time
//! AVX2/AVX-512 dispatch, strided views, alpha/beta accumulation), one thread, on the
//! matrix products of one `train_step` of the attention neural ODE at batch B
//! (BENCH.md): the ODE field's linear layers on the 7 slots of every row (M = 7B, K = 16 or
//! 64), the head on the pooled rows (M = B, K = 113), and the weight gradients, which
//! contract over the rows (K = 7B or B) and accumulate into the gradient (C += A^T B).
//!
//!   cargo bench -p ionode-autodiff --bench gemm_peer
//!
//! Throughput is in FLOP (2 M N K per product).

mod common;
use common::values;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::__bench::Gemm;
use std::hint::black_box;

/// One product: C (m x n) = A (m x k) B (k x n), or C += A^T B with A stored k x m.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    transposed_a: bool,
}

fn shapes(b: usize) -> Vec<Shape> {
    let s = |name, m, n, k, transposed_a| Shape {
        name,
        m,
        n,
        k,
        transposed_a,
    };
    vec![
        s("field_in", 7 * b, 64, 16, false),
        s("field_hidden", 7 * b, 64, 64, false),
        s("field_out", 7 * b, 16, 64, false),
        s("head", b, 64, 113, false),
        s("grad_field_in", 16, 64, 7 * b, true),
        s("grad_field_hidden", 64, 64, 7 * b, true),
        s("grad_head", 113, 64, b, true),
    ]
}

/// The `gemm` crate on the same row-major buffers (its dst := alpha dst + beta A B).
fn peer(sh: Shape, a: &[f64], b: &[f64], c: &mut [f64]) {
    let (m, n, k) = (sh.m, sh.n, sh.k);
    // Row-major A (m x k): row stride k, column stride 1; A^T of a k x m buffer: row
    // stride 1, column stride m.
    let (a_cs, a_rs) = if sh.transposed_a {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
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
            sh.transposed_a,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            1,
            n as isize,
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
    if sh.transposed_a {
        g.matmul_tn_acc((sh.m, sh.n, sh.k), a, b, c)
    } else {
        g.matmul((sh.m, sh.n, sh.k), a, b, c)
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_peer");
    g.warm_up_time(std::time::Duration::from_millis(500));
    g.measurement_time(std::time::Duration::from_secs(2));
    for batch in [64, 256, 1024] {
        for sh in shapes(batch) {
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
