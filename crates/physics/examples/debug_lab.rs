use ionode_physics::feed::parse_feed;
use ionode_physics::lab::LabModel;
use ionode_physics::{Drive, IonDb, Membrane, PointSolver, PointSpec};
fn main() {
    let lab = LabModel::nf270_surrogate();
    for feed in [
        "NaCl=20",
        "NaCl=20,MgSO4=5",
        "LiCl=10,MgCl2=100",
        "Na2SO4=50",
        "MgCl2=100",
    ] {
        let f = parse_feed(feed, &IonDb::builtin()).unwrap();
        for jv in [3e-6, 1e-5, 2e-5] {
            let t = std::time::Instant::now();
            let r = lab.solve(&f.ions, &f.c_mol_m3, Drive::Flux { jv_m_s: jv });
            let spec = PointSpec::new(
                f.ions.clone(),
                f.c_mol_m3.clone(),
                Membrane::preset("nf270").unwrap(),
            );
            let plain = PointSolver::new(&spec)
                .unwrap()
                .solve(Drive::Flux { jv_m_s: jv })
                .unwrap();
            match r {
                Ok(p) => println!(
                    "{feed:20} jv {jv:e} {:?} R_lab {:?} R_dspmde {:?} dp {:.2} bar",
                    t.elapsed(),
                    p.c_permeate
                        .iter()
                        .zip(&f.c_mol_m3)
                        .map(|(p, b)| format!("{:.3}", 1.0 - p / b))
                        .collect::<Vec<_>>(),
                    plain
                        .rejection_vs_bulk
                        .iter()
                        .map(|r| format!("{r:.3}"))
                        .collect::<Vec<_>>(),
                    p.dp_pa / 1e5
                ),
                Err(e) => println!("{feed:20} jv {jv:e} ERR {e}"),
            }
        }
    }
}
