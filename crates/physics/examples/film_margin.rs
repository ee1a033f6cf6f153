//! Diagnostic: the reference's no-solution cases solved as a point and as WaterTAP's 0D
//! module (area 1 m2, the point cases' channel), with the linearised film's pole margins.
use ionode_physics::cases::PointCaseInputs;
use ionode_physics::module0d::{MassTransfer, ModuleSpec, ModuleSpecified};
use ionode_physics::{FilmModel, IonDb, PointSolver};
fn main() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dspmde_watertap_cases.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let db = IonDb::builtin();
    for case in v["groups"]["no_solution_cases"].as_array().unwrap() {
        let inputs: PointCaseInputs = serde_json::from_value(case["inputs"].clone()).unwrap();
        let (spec, drive) = inputs.to_spec(&db, false).unwrap();
        let point = PointSolver::new(&spec).unwrap().solve(drive);
        println!(
            "{} point: {:?}",
            case["id"],
            point.map(|s| (s.jv_m_s, s.c_interface))
        );
        let water = 55.3470913128;
        let module = ModuleSpec {
            ions: spec.ions.clone(),
            membrane: spec.membrane,
            temperature_k: 298.15,
            activity: spec.activity,
            film: FilmModel::Linearised,
            mass_transfer: MassTransfer::SpiralWound {
                mixing_efficiency: 0.5,
                mixing_length_m: 0.6,
            },
            area_m2: 1.0,
            channel_height_m: 5e-4,
            spacer_porosity: 0.85,
            velocity_inlet_m_s: 0.25,
            water_molar_mass_kg_mol: 0.018015,
            dp_pa: match drive {
                ionode_physics::Drive::Pressure { dp_pa } => dp_pa,
                _ => unreachable!(),
            },
            specified: ModuleSpecified::Inlet {
                water_mol_s: water,
                ions_mol_s: spec.c_bulk.iter().map(|c| c / 1000.0).collect(),
            },
            elements: 1,
        };
        match module.solve() {
            Ok(m) => println!(
                "  module: Jv {:.4e} outlet c_m {:?}",
                m.jv_avg_m_s, m.outlet.c_interface
            ),
            Err(e) => println!("  module: {e}"),
        }
    }
}
