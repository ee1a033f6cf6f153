//! A whole training stage of the attention neural ODE gives the same bits on every kernel
//! path this CPU can run (portable, AVX2+FMA, AVX-512): losses, the best epoch and every
//! trained parameter. What makes that hold is in `ionode_autodiff::isa`.
//!
//! Forcing a path is process-wide, so this file holds one test: it is its own process.

use ionode_autodiff::{force_kernel_path, KernelPath, ParamStore};
use ionode_model::{IonSlot, Model, ModelConfig, Solver};
use ionode_physics::simulate::{simulate, FluxGrid, SimulationConfig, Spacing};
use ionode_physics::{IonDb, Membrane};
use ionode_train::checked::Check;
use ionode_train::data::Samples;
use ionode_train::split::SplitSpec;
use ionode_train::trainer::{train_stage, Stage, StageConfig};

const SLOTS: [(&str, f64); 4] = [("Na+", 1.0), ("Mg2+", 2.0), ("Cl-", -1.0), ("SO4^2-", -2.0)];

fn samples() -> Samples {
    let db = IonDb::builtin();
    let species = SLOTS
        .iter()
        .map(|(n, _)| db.get(n).unwrap().clone())
        .collect();
    let mut config = SimulationConfig::new(species, Membrane::preset("nf270").unwrap(), 40, 3);
    config.max_ions = 4;
    config.fluxes = FluxGrid {
        min_m_s: 3e-6,
        max_m_s: 2e-5,
        count: 3,
        spacing: Spacing::Linear,
    };
    let data = simulate(&config, &|| {}).unwrap();
    let names: Vec<&str> = SLOTS.iter().map(|(n, _)| *n).collect();
    Samples::from_simulation(&data, &names).unwrap().0
}

/// Losses per epoch and the trained parameters, as bits.
fn train(data: &Samples) -> Vec<u64> {
    let split = SplitSpec::Random {
        test_fraction: 0.2,
        validation_fraction: 0.2,
    }
    .split(data, 1)
    .unwrap();
    let (train, validation) = (data.subset(&split.train), data.subset(&split.validation));
    let mut store = ParamStore::new();
    let config = ModelConfig {
        slots: SLOTS.iter().map(|(n, z)| IonSlot::new(n, *z)).collect(),
        embed_dim: 8,
        hidden: 24,
        solver: Solver::Rk4 { steps: 4 },
        ..ModelConfig::default()
    };
    let model = Model::new(config, &mut store, 3).unwrap();
    let stage = StageConfig {
        epochs: 3,
        batch_size: 32,
        learning_rate: 3e-3,
        ..StageConfig::default()
    };
    let report = train_stage(
        Stage::Pretrain,
        &model,
        &mut store,
        &train,
        &validation,
        &stage.clone().check().unwrap(),
        5,
        1,
        &mut |_| {},
    )
    .unwrap();
    let losses = report.train_loss.iter().chain(&report.validation_loss);
    losses.chain(store.values()).map(|v| v.to_bits()).collect()
}

#[test]
fn a_training_stage_gives_the_same_bits_on_every_kernel_path() {
    let data = samples();
    let paths = KernelPath::available();
    let mut first: Option<Vec<u64>> = None;
    for &path in &paths {
        force_kernel_path(Some(path)).unwrap();
        let got = train(&data);
        match &first {
            None => first = Some(got),
            Some(want) => assert!(*want == got, "kernel path {path} differs from {}", paths[0]),
        }
    }
    force_kernel_path(None).unwrap();
}
