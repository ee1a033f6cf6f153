//! The tape's building blocks in isolation: its GEMM against ndarray's `general_mat_mul`
//! (matrixmultiply) on the model's shapes, and the vectorised tanh/exp against libm.

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

criterion_group!(benches, bench);
criterion_main!(benches);
