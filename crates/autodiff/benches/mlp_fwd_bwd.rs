//! Forward, backward and forward+backward of a 5-layer tanh MLP (width 64) at batch 64 and
//! 1024 on a reused tape. Throughput is in matmul FLOPs ("elements" = FLOPs).

mod common;
use common::{report, Mlp};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::Tape;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("mlp_fwd_bwd");
    for batch in [64, 1024] {
        let mut mlp = Mlp::new(batch, 64);
        let mut tape = Tape::new();
        let (f, b) = (mlp.forward_flops(), mlp.backward_flops());
        // Warm the tape and print its size once.
        let loss = mlp.loss(&mut tape).unwrap();
        tape.backward(loss).unwrap();
        report(&format!("mlp b={batch}"), tape.stats());
        eprintln!(
            "[mlp b={batch}] matmul FLOPs: forward {f}, backward {b}, total {}",
            f + b
        );

        g.throughput(Throughput::Elements(f));
        g.bench_function(BenchmarkId::new("forward", batch), |bn| {
            bn.iter(|| {
                tape.clear();
                black_box(mlp.loss(&mut tape).unwrap());
            })
        });
        // Backward alone: re-run the reverse sweep on one recorded forward.
        tape.clear();
        let loss = mlp.loss(&mut tape).unwrap();
        g.throughput(Throughput::Elements(b));
        g.bench_function(BenchmarkId::new("backward", batch), |bn| {
            bn.iter(|| {
                mlp.store.zero_grad();
                tape.backward_into(black_box(loss), &mut mlp.store).unwrap();
            })
        });
        g.throughput(Throughput::Elements(f + b));
        g.bench_function(BenchmarkId::new("forward_backward", batch), |bn| {
            bn.iter(|| {
                tape.clear();
                let loss = mlp.loss(&mut tape).unwrap();
                mlp.store.zero_grad();
                tape.backward_into(loss, &mut mlp.store).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
