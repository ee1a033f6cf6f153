use ionode_physics::{
    Drive, FilmModel, IonDb, Membrane, PointSolver, PointSpec, Polarisation, SpiralWound,
};
fn main() {
    let db = IonDb::builtin();
    let ions = vec![
        db.get("K+").unwrap().clone(),
        db.get("SO4").unwrap().clone(),
    ];
    let k = SpiralWound::default().mass_transfer(&ions);
    let mut spec = PointSpec::new(ions, vec![1.0, 0.5], Membrane::preset("nf270").unwrap());
    spec.polarisation = Polarisation::Film {
        model: FilmModel::Exponential,
        mass_transfer_m_s: k.clone(),
    };
    println!("k = {k:?}");
    for jv in [1e-7, 1e-6, 2e-6, 3e-6, 4e-6] {
        let mut s = PointSolver::new(&spec).unwrap();
        match s.solve(Drive::Flux { jv_m_s: jv }) {
            Ok(sol) => println!(
                "{jv:e} R={:?} cm={:?} cp={:?} xi={:?} it={}",
                sol.rejection_vs_bulk, sol.c_interface, sol.c_permeate, sol.xi_v_m, sol.iterations
            ),
            Err(e) => println!("{jv:e} {e}"),
        }
    }
}
