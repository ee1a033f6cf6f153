//! Forward, backward and forward+backward of the attention block (S = 7 slots, d = 16) at
//! batch 64 on a reused tape. Throughput is in matmul FLOPs.

mod common;
use common::{report, Attention};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::Tape;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention_fwd_bwd");
    let batch = 64;
    let mut att = Attention::new(batch, 7, 16);
    let mut tape = Tape::new();
    let loss = att.loss(&mut tape).unwrap();
    tape.backward(loss).unwrap();
    report("attention b=64", tape.stats());
    let f = att.forward_flops();
    eprintln!(
        "[attention b=64] matmul FLOPs: forward {f}, backward {}",
        2 * f
    );

    g.throughput(Throughput::Elements(f));
    g.bench_function(BenchmarkId::new("forward", batch), |bn| {
        bn.iter(|| {
            tape.clear();
            black_box(att.loss(&mut tape).unwrap());
        })
    });
    tape.clear();
    let loss = att.loss(&mut tape).unwrap();
    g.throughput(Throughput::Elements(2 * f));
    g.bench_function(BenchmarkId::new("backward", batch), |bn| {
        bn.iter(|| {
            att.store.zero_grad();
            tape.backward_into(black_box(loss), &mut att.store).unwrap();
        })
    });
    g.throughput(Throughput::Elements(3 * f));
    g.bench_function(BenchmarkId::new("forward_backward", batch), |bn| {
        bn.iter(|| {
            tape.clear();
            let loss = att.loss(&mut tape).unwrap();
            att.store.zero_grad();
            tape.backward_into(loss, &mut att.store).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
