use ionode_physics::rng::{stream_seed, Rng};
use ionode_physics::{Drive, Ion, IonDb, Membrane, PointSolver, PointSpec};
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
fn main() {
    let t = std::time::Instant::now();
    let (mut it, mut fails) = (0, 0);
    for (spec, jv) in cases() {
        match PointSolver::new(&spec)
            .unwrap()
            .solve(Drive::Flux { jv_m_s: jv })
        {
            Ok(s) => it += s.iterations,
            Err(_) => fails += 1,
        }
    }
    println!("iterations {it} fails {fails} in {:?}", t.elapsed());
}
