//! Diagnostic: dataset simulation wall time at 1 and 2 threads.
use ionode_physics::simulate::{simulate, SimulationConfig};
use ionode_physics::{IonDb, Membrane};
fn main() {
    let db = IonDb::builtin();
    let species = ["Na+", "K+", "Li+", "Mg2+", "Ca2+", "Cl-", "SO4"]
        .iter()
        .map(|n| db.get(n).unwrap().clone())
        .collect();
    let config = SimulationConfig::new(species, Membrane::preset("nf270").unwrap(), 20000, 1);
    for threads in [1, 2, 1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let t = std::time::Instant::now();
        let d = pool.install(|| simulate(&config, &|| {})).unwrap();
        println!(
            "threads {threads}: {:.3} s ({} failures)",
            t.elapsed().as_secs_f64(),
            d.failures.len()
        );
    }
}
