//! The tape's building blocks in isolation: its GEMM against ndarray's `general_mat_mul`
//! (matrixmultiply) on the model's shapes, the vectorised tanh/exp against libm, and the
//! core's f64 peak (`fma_peak`: independent fused multiply-adds on registers only, the
//! ceiling any product can reach on this machine; its GFLOP/s over 2 x lanes x FMA units
//! is the clock it ran at).

mod common;
use common::values;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::__bench::Gemm;
use ionode_autodiff::fastmath;
use ndarray::linalg::general_mat_mul;
use ndarray::Array2;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    for (m, k, n) in [
        (64, 64, 64),
        (1024, 64, 64),
        (1024, 113, 64),
        (448, 16, 16),
        (7, 16, 7),
    ] {
        let a = values(m * k, 1, 1.0);
        let b = values(k * n, 2, 1.0);
        let mut out = vec![0.0; m * n];
        let id = format!("{m}x{k}x{n}");
        g.throughput(Throughput::Elements((2 * m * n * k) as u64));
        let mut gemm = Gemm::default();
        g.bench_function(BenchmarkId::new("tape_gemm", &id), |bn| {
            bn.iter(|| gemm.matmul((m, n, k), black_box(&a), &b, &mut out))
        });
        let aa = Array2::from_shape_vec((m, k), a.clone()).unwrap();
        let bb = Array2::from_shape_vec((k, n), b.clone()).unwrap();
        let mut cc = Array2::<f64>::zeros((m, n));
        g.bench_function(BenchmarkId::new("ndarray_gemm", &id), |bn| {
            bn.iter(|| general_mat_mul(1.0, black_box(&aa), &bb, 0.0, &mut cc))
        });
    }
    let x = values(65536, 3, 3.0);
    let mut y = vec![0.0; x.len()];
    g.throughput(Throughput::Elements(x.len() as u64));
    g.bench_function("tanh_fast", |bn| {
        bn.iter(|| fastmath::tanh_slice(&mut y, black_box(&x)))
    });
    g.bench_function("tanh_libm", |bn| {
        bn.iter(|| {
            for (o, v) in y.iter_mut().zip(black_box(&x)) {
                *o = v.tanh();
            }
        })
    });
    g.bench_function("exp_fast", |bn| {
        bn.iter(|| fastmath::exp_slice(&mut y, black_box(&x)))
    });
    g.finish();
}

/// `n` rounds of 16 independent 8-lane f64 FMAs on registers (16 chains: enough to cover
/// the FMA latency on two units); returns a value so nothing is optimised away.
// `ionode_avx512` (build.rs) means a compiler of 1.89 or later, where these intrinsics are
// stable; the workspace's minimum is 1.88.
#[cfg(ionode_avx512)]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f")]
fn fma_peak_avx512(n: usize) -> f64 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_pd(0.999_999_9), _mm512_set1_pd(1e-9));
    let mut acc = [_mm512_set1_pd(1.0); 16];
    for _ in 0..n {
        for r in acc.iter_mut() {
            *r = _mm512_fmadd_pd(*r, a, b);
        }
    }
    let mut s = _mm512_setzero_pd();
    for r in acc {
        s = _mm512_add_pd(s, r);
    }
    _mm512_reduce_add_pd(s)
}

/// The same with 4-lane AVX2 FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_peak_avx2(n: usize) -> f64 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_pd(0.999_999_9), _mm256_set1_pd(1e-9));
    let mut acc = [_mm256_set1_pd(1.0); 16];
    for _ in 0..n {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_pd(*r, a, b);
        }
    }
    let mut s = _mm256_setzero_pd();
    for r in acc {
        s = _mm256_add_pd(s, r);
    }
    let mut out = [0.0; 4];
    // SAFETY: `out` holds 4 f64, the store is unaligned-safe.
    unsafe { _mm256_storeu_pd(out.as_mut_ptr(), s) };
    out.iter().sum()
}

fn peak(c: &mut Criterion) {
    let mut g = c.benchmark_group("fma_peak");
    let n = 100_000;
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(ionode_avx512)]
        if std::arch::is_x86_feature_detected!("avx512f") {
            g.throughput(Throughput::Elements((n * 16 * 8 * 2) as u64));
            // SAFETY: AVX-512F was detected on this CPU just above.
            g.bench_function("avx512", |bn| {
                bn.iter(|| unsafe { fma_peak_avx512(black_box(n)) })
            });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            g.throughput(Throughput::Elements((n * 16 * 4 * 2) as u64));
            // SAFETY: AVX2 and FMA were detected on this CPU just above.
            g.bench_function("avx2", |bn| {
                bn.iter(|| unsafe { fma_peak_avx2(black_box(n)) })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, peak);
criterion_main!(benches);
