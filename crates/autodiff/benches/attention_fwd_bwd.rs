//! Forward, backward and forward+backward of the attention block (S = 7 slots, d = 16) at
//! batch 64 on a reused tape. Throughput is in matmul FLOPs.
//!
//! Also `rk4_mini_model`: the tests' scaled attention neural ODE (attention block, a 3-layer
//! tanh MLP 113 -> 64 -> 64 -> 7, projector) through 16 RK4 steps at batch 64, forward +
//! backward: an indication of a training step's tape size and cost (the real `train_step`
//! benchmark belongs to the model crate).

mod common;
#[path = "../tests/common/mod.rs"]
mod test_common;
use common::{report, Attention};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::ParamStore;
use ionode_autodiff::Tape;
use std::hint::black_box;
use test_common::mini::Mini;

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

    let mut store = ParamStore::new();
    let mini = Mini::new(&mut store, 1, (64, 7, 16, 64), 16);
    let mut tape = Tape::new();
    let loss = mini.loss(&mut tape, &store).unwrap();
    tape.backward_into(loss, &mut store).unwrap();
    report("rk4 mini model b=64, 16 steps", tape.stats());
    g.throughput(Throughput::Elements(64));
    g.bench_function(BenchmarkId::new("rk4_mini_model_fwd_bwd", 64), |bn| {
        bn.iter(|| {
            tape.clear();
            let loss = mini.loss(&mut tape, &store).unwrap();
            store.zero_grad();
            tape.backward_into(loss, &mut store).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
