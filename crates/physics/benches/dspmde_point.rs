//! `dspmde_point` of docs/BENCH.md: cold point solves (no polarisation, ideal
//! activity, J_v given) for a fixed list of random electroneutral feeds of 2..7 ions on the
//! NF270-like membrane at fluxes 2e-6..3e-5 m/s, on one thread and on all threads.
//! Each iteration solves the whole list; criterion's throughput is solves per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ionode_physics::simulate::{random_feed, SimulationConfig};
use ionode_physics::{Drive, Ion, IonDb, Membrane, PointSolver, PointSpec};
use ionode_random::{stream_seed, Rng};
use rayon::prelude::*;

const SPECIES: [&str; 7] = ["Na+", "K+", "Li+", "Mg2+", "Ca2+", "Cl-", "SO4^2-"];
const POINTS: usize = 256;

fn cases() -> Vec<(PointSpec, f64)> {
    let db = IonDb::builtin();
    let species: Vec<Ion> = SPECIES.iter().map(|n| db.get(n).unwrap().clone()).collect();
    let membrane = Membrane::preset("nf270").unwrap();
    // The feed distribution of the pre-training datasets (2..7 ions, 1..200 mol/m3).
    let config = SimulationConfig::new(species.clone(), membrane, POINTS, 2023);
    (0..POINTS as u64)
        .map(|i| {
            let mut rng = Rng::new(stream_seed(2023, i));
            let (idx, c) = random_feed(&config, &mut rng);
            let ions = idx.iter().map(|&k| species[k].clone()).collect();
            let jv = 2e-6 + rng.uniform() * 2.8e-5;
            (PointSpec::new(ions, c, membrane), jv)
        })
        .collect()
}

fn solve(case: &(PointSpec, f64)) -> f64 {
    let mut solver = PointSolver::new(&case.0).unwrap();
    solver
        .solve(Drive::Flux { jv_m_s: case.1 })
        .unwrap()
        .c_permeate[0]
}

fn bench(c: &mut Criterion) {
    let cases = cases();
    let mut group = c.benchmark_group("dspmde_point");
    group.throughput(Throughput::Elements(POINTS as u64));
    group.sample_size(20);
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("one_thread", |b| {
        b.iter(|| one.install(|| cases.iter().map(solve).sum::<f64>()))
    });
    group.bench_function("all_threads", |b| {
        b.iter(|| cases.par_iter().map(solve).sum::<f64>())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
