//! The surrogate laboratory against the pre-training DSPM-DE: it must differ by an amount
//! that matters (so there is something for fine-tuning to learn), each departure must
//! contribute, and with every departure off it must be DSPM-DE.
//! Run with `--nocapture` to see the per-family table.

use ionode_physics::feed::parse_feed;
use ionode_physics::lab::{ChargeModel, LabFilm, LabModel};
use ionode_physics::{ActivityModel, Drive, IonDb, Membrane, PointSolver, PointSpec};

const FAMILIES: [&str; 5] = [
    "NaCl=1",
    "MgSO4=1",
    "Na2SO4=1",
    "NaCl=2,MgSO4=1",
    "LiCl=1,MgCl2=5",
];
const LEVELS: [f64; 2] = [10.0, 50.0];
const FLUXES_LMH: [f64; 2] = [5.0, 20.0];

/// Mean absolute rejection difference between a lab model and plain DSPM-DE over one
/// family's levels and fluxes (all ions).
fn family_mae(lab: &LabModel, family: &str) -> f64 {
    let db = IonDb::builtin();
    let composition = parse_feed(family, &db).unwrap();
    let nf270 = Membrane::preset("nf270").unwrap();
    let (mut sum, mut count) = (0.0, 0);
    for level in LEVELS {
        let c: Vec<f64> = composition.c_mol_m3.iter().map(|c| c * level).collect();
        for lmh in FLUXES_LMH {
            let drive = Drive::Flux {
                jv_m_s: lmh / 3.6e6,
            };
            let truth = lab.solve(&composition.ions, &c, drive).unwrap();
            let spec = PointSpec::new(composition.ions.clone(), c.clone(), nf270);
            let plain = PointSolver::new(&spec).unwrap().solve(drive).unwrap();
            for ((p, b), r) in truth
                .c_permeate
                .iter()
                .zip(&c)
                .zip(&plain.rejection_vs_bulk)
            {
                sum += ((1.0 - p / b) - r).abs();
                count += 1;
            }
        }
    }
    sum / count as f64
}

#[test]
fn surrogate_differs_from_dspmde_by_an_amount_that_matters() {
    let lab = LabModel::nf270_surrogate();
    println!("rejection MAE, surrogate NF270 vs pre-training DSPM-DE (levels {LEVELS:?} mM, {FLUXES_LMH:?} LMH):");
    let mut all = Vec::new();
    for family in FAMILIES {
        let mae = family_mae(&lab, family);
        println!("  {family:18} {mae:.4}");
        all.push(mae);
    }
    let overall = all.iter().sum::<f64>() / all.len() as f64;
    println!("  {:18} {overall:.4}", "all families");
    // The gap must be well above what noise alone does to a rejection. Sulfate salts are
    // rejected almost completely by both models (R > 0.99), so their gap is small; the
    // families with a passing monovalent ion carry it.
    assert!(overall > 0.04, "{overall}");
    assert!(all.iter().filter(|m| **m > 0.05).count() >= 3, "{all:?}");
}

#[test]
fn each_departure_alone_changes_the_rejections() {
    let nf270 = Membrane::preset("nf270").unwrap();
    let surrogate = LabModel::nf270_surrogate();
    let plain = LabModel::plain(nf270);
    let variants = [
        (
            "charge",
            LabModel {
                charge: surrogate.charge,
                ..plain.clone()
            },
        ),
        (
            "pores",
            LabModel {
                pores: surrogate.pores,
                ..plain.clone()
            },
        ),
        (
            "film",
            LabModel {
                film: surrogate.film,
                ..plain.clone()
            },
        ),
        (
            "davies",
            LabModel {
                activity: ActivityModel::Davies,
                ..plain.clone()
            },
        ),
        (
            "elements",
            LabModel {
                elements: 8,
                ..plain.clone()
            },
        ),
    ];
    for (name, lab) in variants {
        let mae = family_mae(&lab, "NaCl=2,MgSO4=1");
        println!("  {name:10} alone: MAE {mae:.5}");
        // The 8-element pore is a numerical refinement (DSPMDE.md: < 0.1 % at these
        // fluxes); the physical departures each move rejections by much more.
        let floor = if name == "elements" { 1e-6 } else { 5e-3 };
        assert!(mae > floor, "{name}: {mae}");
    }
    assert!(matches!(surrogate.charge, ChargeModel::Freundlich { .. }));
    assert!(matches!(surrogate.film, LabFilm::Exponential { .. }));
}

#[test]
fn with_every_departure_off_the_lab_is_dspmde() {
    let lab = LabModel::plain(Membrane::preset("nf270").unwrap());
    for family in FAMILIES {
        let mae = family_mae(&lab, family);
        assert!(mae < 1e-9, "{family}: {mae}");
    }
}
