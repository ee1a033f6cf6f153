//! A physics-anchored run on the bundled NF270 measurements: its prior is DSPM-DE
//! calibrated on the training rows alone (the validation and test rows' targets cannot
//! move it), an untrained residual scores exactly as that calibrated DSPM-DE, and the run
//! is the same bits at any thread count.

mod common;
use common::{measured, SLOTS};
use ionode_model::{ModelConfig, Prior, Variant};
use ionode_physics::IonDb;
use ionode_train::calibrate::CalibrationConfig;
use ionode_train::checked::Check;
use ionode_train::data::Samples;
use ionode_train::run::{
    run, Artefact, DataConfig, Method, RunConfig, RunInputs, SharedPretraining,
};
use ionode_train::split::SplitSpec;
use ionode_train::trainer::StageConfig;

fn config(prior: Prior, epochs: usize) -> RunConfig {
    let model = ModelConfig {
        variant: Variant::Node,
        prior,
        slots: SLOTS
            .iter()
            .map(|(n, z)| ionode_model::IonSlot::new(n, *z))
            .collect(),
        embed_dim: 4,
        hidden: 8,
        layers: 3,
        state: ionode_model::State::Transmission,
        solver: ionode_model::Solver::Rk4 { steps: 4 },
        ..ModelConfig::default()
    };
    RunConfig {
        name: None,
        seed: 3,
        method: Method::Neural,
        model,
        data: DataConfig {
            pretrain: None,
            pretrain_max_feeds: None,
            pretrain_validation_fraction: 0.1,
            pretrain_test_fraction: 0.1,
            measured: vec!["nf270_fdl2021.csv".into()],
            balance_with: None,
            pretrain_membrane: Default::default(),
        },
        pretrain: None,
        finetune: Some(StageConfig {
            epochs,
            batch_size: 8,
            learning_rate: 1e-3,
            ..StageConfig::default()
        }),
        split: Some(SplitSpec::ByFamily {
            test_family: "MgCl2".into(),
            validation_fraction: 0.2,
            validate_on: Default::default(),
        }),
        calibration: CalibrationConfig {
            starts: 2,
            max_iters: 40,
            ..CalibrationConfig::default()
        },
        ensemble: None,
    }
}

fn go(c: &RunConfig, data: &Samples, threads: usize) -> ionode_train::run::RunOutcome {
    let inputs = RunInputs {
        pretrain: None,
        measured: Some(data),
        threads,
    };
    run(
        &c.clone().check().unwrap(),
        c.seed,
        inputs,
        &SharedPretraining::default(),
        &mut |_| {},
    )
    .unwrap()
}

fn physics(o: &ionode_train::run::RunOutcome) -> String {
    match &o.artefact {
        Artefact::Anchored { physics, .. } => serde_json::to_string(&physics.membrane).unwrap(),
        other => panic!("not anchored: {other:?}"),
    }
}

#[test]
fn the_prior_is_calibrated_on_the_training_rows_only() {
    let data = measured();
    let c = config(Prior::Residual, 3);
    let split = c.split.as_ref().unwrap().split(&data, c.seed).unwrap();
    assert!(!split.validation.is_empty() && !split.test.is_empty());
    let base = go(&c, &data, 1);
    // Other targets on every validation and test row: the same calibrated membrane.
    let mut moved = data.clone();
    for &r in split.validation.iter().chain(&split.test) {
        moved.permeate_mol_m3.row_mut(r).mapv_inplace(|p| 0.5 * p);
    }
    assert_eq!(physics(&base), physics(&go(&c, &moved, 1)));
    // Other targets on one training row: another membrane (the check is not vacuous).
    let mut train = data.clone();
    train
        .permeate_mol_m3
        .row_mut(split.train[0])
        .mapv_inplace(|p| 0.5 * p);
    assert_ne!(physics(&base), physics(&go(&c, &train, 1)));
}

#[test]
fn an_untrained_residual_scores_as_its_calibrated_physics() {
    let data = measured();
    // One epoch at a learning rate of ~0 leaves the zero correction at zero.
    let mut c = config(Prior::Residual, 1);
    c.finetune.as_mut().unwrap().learning_rate = 1e-300;
    let anchored = go(&c, &data, 1);
    let mut fit = c.clone();
    fit.method = Method::DspmdeFit;
    let physics = go(&fit, &data, 1);
    let (a, p) = (
        anchored.metrics.measured.as_ref().unwrap(),
        physics.metrics.measured.as_ref().unwrap(),
    );
    let (a, p) = (
        a.test.as_ref().unwrap().mae.unwrap(),
        p.test.as_ref().unwrap().mae.unwrap(),
    );
    assert!((a - p).abs() < 1e-10, "{a} vs {p}");
    // And trained, it moves away from the physics.
    let trained = go(&config(Prior::Residual, 20), &data, 1);
    let t = trained
        .metrics
        .measured
        .as_ref()
        .unwrap()
        .test
        .as_ref()
        .unwrap();
    assert!((t.mae.unwrap() - p).abs() > 1e-6);
}

#[test]
fn an_anchored_run_is_the_same_bits_at_any_thread_count() {
    let data = measured();
    for prior in [Prior::Feature, Prior::Residual] {
        let mut c = config(prior, 4);
        c.finetune.as_mut().unwrap().micro_batch = Some(2);
        let (a, b) = (go(&c, &data, 1), go(&c, &data, 2));
        assert_eq!(format!("{:?}", a.metrics), format!("{:?}", b.metrics));
        assert_eq!(format!("{:?}", a.artefact), format!("{:?}", b.artefact));
    }
}

#[test]
fn a_prior_with_pretraining_or_without_measured_data_is_refused() {
    let mut c = config(Prior::Feature, 2);
    c.pretrain = c.finetune.clone();
    let p: Vec<String> = c.problems().iter().map(|p| p.to_string()).collect();
    assert!(
        p.iter()
            .any(|p| p.starts_with("pretrain: a physics-anchored model")),
        "{p:?}"
    );
    let mut c = config(Prior::Residual, 2);
    c.data.measured.clear();
    c.data.pretrain = Some("p.h5".into());
    let p: Vec<String> = c.problems().iter().map(|p| p.to_string()).collect();
    assert!(p.iter().any(|p| p.starts_with("model.prior:")), "{p:?}");
    // Normalising (a study's runs) keeps the calibration a prior needs and drops the
    // pre-training it does not use.
    let mut c = config(Prior::Residual, 2);
    c.pretrain = c.finetune.clone();
    c.data.pretrain = Some("p.h5".into());
    assert_eq!(c.normalise(), ["pretrain", "data.pretrain"]);
    assert_eq!(c.calibration.starts, 2);
    assert!(c.pretrain.is_none() && c.data.pretrain.is_none());
    assert!(c.problems().is_empty());
}

/// `validate_on = "each_family"`: each training family validates in turn, and the run's
/// validation metrics are those of the pooled out-of-family predictions; the final model
/// is calibrated (or trained) on every training row.
#[test]
fn nested_validation_pools_the_out_of_family_predictions() {
    use ionode_train::calibrate::dspmde_fit;
    use ionode_train::metrics::Metrics;
    use ionode_train::split::ValidateOn;
    let data = measured();
    let mut c = config(Prior::None, 2);
    c.method = Method::DspmdeFit;
    c.split = Some(SplitSpec::ByFamily {
        test_family: "MgCl2".into(),
        validation_fraction: 0.2,
        validate_on: ValidateOn::EachFamily,
    });
    let outcome = go(&c, &data, 1);
    let split = c.split.as_ref().unwrap().split(&data, c.seed).unwrap();
    assert!(split.validation.is_empty());
    let ions = data.slot_ions(&IonDb::builtin()).unwrap();
    // By hand: calibrate without each training family, predict it.
    let mut pooled = ndarray::Array2::from_elem(data.feed_mol_m3.dim(), f64::NAN);
    let mut families: Vec<String> = split
        .train
        .iter()
        .filter_map(|&r| data.family[r].clone())
        .collect();
    families.sort();
    families.dedup();
    assert_eq!(families.len(), 3);
    for f in &families {
        let (held, rest): (Vec<usize>, Vec<usize>) = split
            .train
            .iter()
            .partition(|&&r| data.family[r].as_deref() == Some(f.as_str()));
        let fit = dspmde_fit(&data.subset(&rest), &ions, &c.calibration).unwrap();
        let p = fit.predict(&data).unwrap().permeate;
        for &r in &held {
            pooled.row_mut(r).assign(&p.row(r));
        }
    }
    let expected = Metrics::of(
        &data.subset(&split.train),
        pooled.select(ndarray::Axis(0), &split.train).view(),
    )
    .unwrap();
    let m = outcome.metrics.measured.as_ref().unwrap();
    assert_eq!(m.validation.as_ref().unwrap().mae, expected.mae);
    // The shipped calibration saw every training row.
    let all = dspmde_fit(&data.subset(&split.train), &ions, &c.calibration).unwrap();
    match &outcome.artefact {
        Artefact::Calibration(f) => assert_eq!(f.membrane, all.membrane),
        other => panic!("{other:?}"),
    }

    // A training row without a family trains in every inner run and is left out of the
    // pooled validation (which stays finite).
    let mut unlabelled = data.clone();
    unlabelled.family[split.train[0]] = None;
    let o = go(&c, &unlabelled, 1);
    let v = o
        .metrics
        .measured
        .as_ref()
        .unwrap()
        .validation
        .as_ref()
        .unwrap();
    assert!(v.mae.unwrap().is_finite());
    assert_eq!(v.n_samples, expected.n_samples - 1);

    // A neural run refits for the inner runs' mean best epoch count, without validation.
    let mut n = config(Prior::Residual, 6);
    n.split = c.split.clone();
    let o = go(&n, &data, 1);
    let last = o.curves.last().unwrap();
    assert!(last.validation_loss.iter().all(|v| v.is_nan()));
    assert!((1..=6).contains(&last.epochs_run));
    assert!(o.metrics.measured.as_ref().unwrap().validation.is_some());
}

/// A small simulated pre-training set over the test's slots.
fn simulated() -> Samples {
    use ionode_physics::simulate::{simulate, FluxGrid, SimulationConfig, Spacing};
    let db = IonDb::builtin();
    let species = SLOTS
        .iter()
        .map(|(n, _)| db.get(n).unwrap().clone())
        .collect();
    let membrane = ionode_physics::Membrane::preset("nf270").unwrap();
    let mut sim = SimulationConfig::new(species, membrane, 30, 5);
    sim.max_ions = 4;
    sim.fluxes = FluxGrid {
        min_m_s: 5e-6,
        max_m_s: 5e-5,
        count: 3,
        spacing: Spacing::Log,
    };
    let data = simulate(&sim, &|| {}).unwrap();
    let names: Vec<&str> = SLOTS.iter().map(|(n, _)| *n).collect();
    Samples::from_simulation(&data, &names).unwrap().0
}

/// Calibrate, then pre-train (`data.pretrain_membrane = "calibrated"`): the pre-training
/// targets come from DSPM-DE calibrated on the training rows alone.
#[test]
fn calibrated_pretraining_targets_come_from_the_training_rows_only() {
    use ionode_train::run::PretrainMembrane;
    let data = measured();
    let sim = simulated();
    let mut c = config(Prior::None, 2);
    c.data.pretrain = Some("sim.h5".into());
    c.data.pretrain_membrane = PretrainMembrane::Calibrated;
    c.pretrain = Some(StageConfig {
        epochs: 2,
        batch_size: 32,
        learning_rate: 1e-3,
        ..StageConfig::default()
    });
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    let go_with = |c: &RunConfig, measured: &Samples| {
        let inputs = RunInputs {
            pretrain: Some(&sim),
            measured: Some(measured),
            threads: 1,
        };
        let o = run(
            &c.clone().check().unwrap(),
            c.seed,
            inputs,
            &SharedPretraining::default(),
            &mut |_| {},
        )
        .unwrap();
        format!("{:?}", o.metrics.pretrain)
    };
    let base = go_with(&c, &data);
    let split = c.split.as_ref().unwrap().split(&data, c.seed).unwrap();
    let mut moved = data.clone();
    for &r in split.validation.iter().chain(&split.test) {
        moved.permeate_mol_m3.row_mut(r).mapv_inplace(|p| 0.5 * p);
    }
    assert_eq!(
        base,
        go_with(&c, &moved),
        "validation or test rows moved it"
    );
    let mut train = data.clone();
    train
        .permeate_mol_m3
        .row_mut(split.train[0])
        .mapv_inplace(|p| 0.5 * p);
    assert_ne!(
        base,
        go_with(&c, &train),
        "the training rows do not move it"
    );
    // And the preset's own targets pre-train another model.
    let mut preset = c.clone();
    preset.data.pretrain_membrane = PretrainMembrane::Simulated;
    assert_ne!(base, go_with(&preset, &data));
    // Without measured data there is nothing to calibrate on.
    let mut none = c.clone();
    none.data.measured.clear();
    assert!(none
        .problems()
        .iter()
        .any(|p| p.to_string().starts_with("data.pretrain_membrane")));
}
