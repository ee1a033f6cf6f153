//! `train_step` of docs/BENCH.md: one training step of the attention neural ODE
//! with MODEL.md's defaults in f64 on one thread (the tape is single-threaded; nothing here
//! uses rayon): forward through RK4 (16 fixed steps, per-sample step t/16), masked MSE,
//! backward through the whole trajectory, one Adam step (lr 1e-3). Batches 64, 256, 1024
//! of `ionode_model::synthetic::batch` (masks of 2..7 ions with a cation and an anion,
//! electroneutral feeds log-uniform 1..200 mol/m3, J uniform 2e-6..3e-5 m/s; the target
//! `c_p = 0.5 c_f` is arbitrary and does not change the cost of a step).
//!
//! Criterion's throughput is set to the step's matmul FLOPs (printed once, formula in
//! [`matmul_flops`]), so its `thrpt` line reads as GFLOP/s ("Gelem/s").
//!
//! Run: `cargo bench -p ionode-train --bench train_step -- --warm-up-time 2 --measurement-time 8`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ionode_autodiff::{ParamStore, Tape};
use ionode_model::{synthetic, ForwardOptions, Model, ModelConfig, Solver};
use ionode_train::optim::Adam;
use ionode_train::parallel::MicroBatches;
use std::hint::black_box;

/// Matrix-product FLOPs (2 per multiply-add) of one training step for `b` samples:
/// per field evaluation and sample, forward =
/// embedding `2 S 3 d` + Q, K, V `3 * 2 S d^2` + scores and `A V` `2 * 2 S^2 d` +
/// ODENet `2 (in h + 3 h^2 + h S)` with `in = S d + 1`; backward needs two products of the
/// same size per forward product (input and weight gradients), so a step is
/// `3 x forward x 4 stages x steps x b`. Elementwise work (tanh, softmax, projector) is not
/// counted.
fn matmul_flops(cfg: &ModelConfig, b: usize) -> f64 {
    let (s, d, h) = (cfg.num_slots(), cfg.embed_dim, cfg.hidden);
    let inp = s * d + 1;
    let fwd =
        2 * s * 3 * d + 3 * 2 * s * d * d + 2 * 2 * s * s * d + 2 * (inp * h + 3 * h * h + h * s);
    let steps = match cfg.solver {
        Solver::Rk4 { steps } => steps,
        Solver::Dopri5 { .. } => unreachable!("the benchmark is RK4"),
    };
    (3 * fwd * 4 * steps * b) as f64
}

fn train_step(c: &mut Criterion) {
    let cfg = ModelConfig::default();
    let per_sample = matmul_flops(&cfg, 1);
    println!(
        "train_step: {per_sample:.0} matmul FLOP per sample and step ({:.3} GFLOP at batch 64, {:.3} at 256, {:.3} at 1024)",
        per_sample * 64.0 / 1e9,
        per_sample * 256.0 / 1e9,
        per_sample * 1024.0 / 1e9
    );
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for b in [64usize, 256, 1024] {
        let mut store = ParamStore::new();
        let model = Model::new(cfg.clone(), &mut store, 2026).expect("model");
        let batch = synthetic::batch(&cfg, b, 7);
        let mut adam = Adam::new(1e-3);
        let mut tape = Tape::new();
        let mut step = || {
            tape.clear();
            store.zero_grad();
            let fwd = model
                .forward(&mut tape, &store, &batch, ForwardOptions::default())
                .expect("forward");
            let loss = model.loss(&mut tape, &fwd).expect("loss");
            tape.backward_into(loss.total, &mut store)
                .expect("backward");
            adam.step(&mut store).expect("adam");
            tape.item(loss.total)
        };
        // No explicit first step: criterion's warm-up sizes the tape's buffers (and a
        // filtered-out batch size then costs nothing).
        group.throughput(Throughput::Elements(matmul_flops(&cfg, b) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(b), &b, |bench, _| {
            bench.iter(|| black_box(step()))
        });
    }
    group.finish();
}

/// The same step through [`MicroBatches`]: micro-batches of 32 rows (a size that does not
/// depend on the thread count) on 1 and 2 threads, against the plain single-tape step.
/// The parameters after a step are the same bits at either thread count (tested in the
/// trainer); here only time is measured.
fn train_step_threads(c: &mut Criterion) {
    let cfg = ModelConfig::default();
    let mut group = c.benchmark_group("train_step_threads");
    group.sample_size(10);
    for b in [64usize, 256, 1024] {
        for (name, micro, threads) in [
            ("whole", None, 1),
            ("micro32_t1", Some(32), 1),
            ("micro32_t2", Some(32), 2),
        ] {
            let mut store = ParamStore::new();
            let model = Model::new(cfg.clone(), &mut store, 2026).expect("model");
            let batch = synthetic::batch(&cfg, b, 7);
            let mut adam = Adam::new(1e-3);
            let mut tape = Tape::new();
            let mut parts = MicroBatches::new(micro, threads).expect("pool");
            group.throughput(Throughput::Elements(matmul_flops(&cfg, b) as u64));
            group.bench_with_input(BenchmarkId::new(name, b), &b, |bench, _| {
                bench.iter(|| {
                    let loss = parts
                        .gradient(&model, &mut store, &batch, &mut tape)
                        .expect("gradient");
                    adam.step(&mut store).expect("adam");
                    black_box(loss)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train_step, train_step_threads);
criterion_main!(benches);
