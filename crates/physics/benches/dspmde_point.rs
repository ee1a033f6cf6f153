//! `dspmde_point` of shared/bench/BENCH.md: cold point solves (no polarisation, ideal
//! activity, J_v given) for a fixed list of random electroneutral feeds of 2..7 ions on the
//! NF270-like membrane at fluxes 2e-6..3e-5 m/s, on one thread and on all threads.
//! Each iteration solves the whole list; criterion's throughput is solves per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ionode_physics::rng::{stream_seed, Rng};
use ionode_physics::{Drive, Ion, IonDb, Membrane, PointSolver, PointSpec};
use rayon::prelude::*;

const SPECIES: [&str; 7] = ["Na+", "K+", "Li+", "Mg2+", "Ca2+", "Cl-", "SO4^2-"];
const POINTS: usize = 256;

fn cases() -> Vec<(PointSpec, f64)> {
    let db = IonDb::builtin();
    let membrane = Membrane::preset("nf270").unwrap();
    (0..POINTS as u64)
        .map(|i| {
            let mut rng = Rng::new(stream_seed(2023, i));
            loop {
                let k = rng.int_inclusive(2, 7);
                let mut idx: Vec<usize> = (0..7).collect();
                rng.shuffle(&mut idx);
                let idx = &idx[..k];
                if !idx.iter().any(|&i| i < 5) || !idx.iter().any(|&i| i >= 5) {
                    continue;
                }
                let ions: Vec<Ion> = idx
                    .iter()
                    .map(|&i| db.get(SPECIES[i]).unwrap().clone())
                    .collect();
                let mut c: Vec<f64> = ions.iter().map(|_| rng.log_uniform(1.0, 200.0)).collect();
                let pos: f64 = ions
                    .iter()
                    .zip(&c)
                    .filter(|(i, _)| i.charge > 0)
                    .map(|(i, c)| i.z() * c)
                    .sum();
                let neg: f64 = ions
                    .iter()
                    .zip(&c)
                    .filter(|(i, _)| i.charge < 0)
                    .map(|(i, c)| -i.z() * c)
                    .sum();
                let q = (pos / neg).sqrt();
                for (ion, c) in ions.iter().zip(c.iter_mut()) {
                    *c = if ion.charge > 0 { *c / q } else { *c * q };
                }
                let jv = 2e-6 + rng.uniform() * 2.8e-5;
                return (PointSpec::new(ions, c, membrane), jv);
            }
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
