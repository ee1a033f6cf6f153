//! Baseline: plain ndarray matrix products (matrixmultiply backend) on the same shapes as
//! the tape benchmarks, written into preallocated outputs. Throughput is in FLOPs.
//!
//! - `mlp/{64,1024}`: the five [B, 64] x [64, 64] products of one MLP forward pass;
//! - `mlp_fwd_bwd/{64,1024}`: those plus the backward products (dX = G W^T for layers 2..5,
//!   dW = X^T G for all five), i.e. the same matmul work as one tape forward+backward;
//! - `attention/64`: the attention block's products (embedding, Q/K/V, Q K^T and A V per
//!   sample).

mod common;
use common::values;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, Axis};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ndarray_dot");
    for batch in [64usize, 1024] {
        let w: Vec<Array2<f64>> = (0..5)
            .map(|l| Array2::from_shape_vec((64, 64), values(64 * 64, l, 0.2)).unwrap())
            .collect();
        let x = Array2::from_shape_vec((batch, 64), values(batch * 64, 9, 1.0)).unwrap();
        let mut acts: Vec<Array2<f64>> = (0..6).map(|_| Array2::zeros((batch, 64))).collect();
        acts[0].assign(&x);
        let flops = (2 * batch * 64 * 64 * 5) as u64;
        g.throughput(Throughput::Elements(flops));
        g.bench_function(BenchmarkId::new("mlp", batch), |bn| {
            bn.iter(|| {
                for l in 0..5 {
                    let (lo, hi) = acts.split_at_mut(l + 1);
                    general_mat_mul(1.0, &lo[l], &w[l], 0.0, &mut hi[0]);
                }
                black_box(&acts[5]);
            })
        });
        let grads: Vec<Array2<f64>> = (0..6)
            .map(|l| Array2::from_shape_vec((batch, 64), values(batch * 64, 20 + l, 1.0)).unwrap())
            .collect();
        let mut dx = Array2::<f64>::zeros((batch, 64));
        let mut dw = Array2::<f64>::zeros((64, 64));
        let bwd = (2 * batch * 64 * 64 * 9) as u64;
        g.throughput(Throughput::Elements(flops + bwd));
        g.bench_function(BenchmarkId::new("mlp_fwd_bwd", batch), |bn| {
            bn.iter(|| {
                for l in 0..5 {
                    let (lo, hi) = acts.split_at_mut(l + 1);
                    general_mat_mul(1.0, &lo[l], &w[l], 0.0, &mut hi[0]);
                }
                for l in (0..5).rev() {
                    general_mat_mul(1.0, &acts[l].t(), &grads[l + 1], 1.0, &mut dw);
                    if l > 0 {
                        general_mat_mul(1.0, &grads[l + 1], &w[l].t(), 1.0, &mut dx);
                    }
                }
                black_box((&dx, &dw));
            })
        });
    }

    // Attention block, batch 64, S = 7, d = 16.
    let (b, s, d) = (64usize, 7usize, 16usize);
    let tokens = Array2::from_shape_vec((b * s, 3), values(b * s * 3, 1, 1.0)).unwrap();
    let we = Array2::from_shape_vec((3, d), values(3 * d, 2, 0.5)).unwrap();
    let wq = Array2::from_shape_vec((d, d), values(d * d, 3, 0.4)).unwrap();
    let mut emb = Array2::<f64>::zeros((b * s, d));
    let mut qkv: Vec<Array2<f64>> = (0..3).map(|_| Array2::zeros((b * s, d))).collect();
    let mut scores = Array3::<f64>::zeros((b, s, s));
    let mut ctx = Array3::<f64>::zeros((b, s, d));
    let flops = (2 * b * s * 3 * d + 3 * 2 * b * s * d * d + 2 * 2 * b * s * s * d) as u64;
    g.throughput(Throughput::Elements(flops));
    g.bench_function(BenchmarkId::new("attention", b), |bn| {
        bn.iter(|| {
            general_mat_mul(1.0, &tokens, &we, 0.0, &mut emb);
            for m in qkv.iter_mut() {
                general_mat_mul(1.0, &emb, &wq, 0.0, m);
            }
            let q3 = qkv[0].view().into_shape_with_order((b, s, d)).unwrap();
            let k3 = qkv[1].view().into_shape_with_order((b, s, d)).unwrap();
            let v3 = qkv[2].view().into_shape_with_order((b, s, d)).unwrap();
            for i in 0..b {
                let mut sc = scores.index_axis_mut(Axis(0), i);
                general_mat_mul(
                    1.0,
                    &q3.index_axis(Axis(0), i),
                    &k3.index_axis(Axis(0), i).t(),
                    0.0,
                    &mut sc,
                );
                let mut cx = ctx.index_axis_mut(Axis(0), i);
                general_mat_mul(
                    1.0,
                    &scores.index_axis(Axis(0), i),
                    &v3.index_axis(Axis(0), i),
                    0.0,
                    &mut cx,
                );
            }
            black_box(&ctx);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
