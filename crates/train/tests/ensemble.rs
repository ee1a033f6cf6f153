//! Ensembles on the bundled NF270 measurements: the same bits at 1 and 2 threads, member 0
//! is the run without an ensemble, the interval metrics are what the predictions say, and
//! bootstrap members of a nested, calibrated DSPM-DE differ and cover their validation.

mod common;
use common::{measured, SLOTS};
use ionode_model::{ModelConfig, Variant};
use ionode_train::calibrate::CalibrationConfig;
use ionode_train::checked::Check;
use ionode_train::data::Samples;
use ionode_train::ensemble::{EnsembleConfig, IntervalMethod};
use ionode_train::run::{
    run, Artefact, DataConfig, Method, RunConfig, RunInputs, RunOutcome, SharedPretraining,
};
use ionode_train::split::{SplitSpec, ValidateOn};
use ionode_train::trainer::StageConfig;

fn config(members: usize) -> RunConfig {
    let model = ModelConfig {
        variant: Variant::Mlp,
        slots: SLOTS
            .iter()
            .map(|(n, z)| ionode_model::IonSlot::new(n, *z))
            .collect(),
        embed_dim: 4,
        hidden: 8,
        layers: 2,
        state: ionode_model::State::Transmission,
        ..ModelConfig::default()
    };
    RunConfig {
        name: None,
        seed: 5,
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
            epochs: 4,
            batch_size: 8,
            learning_rate: 3e-3,
            ..StageConfig::default()
        }),
        split: Some(SplitSpec::Random {
            test_fraction: 0.25,
            validation_fraction: 0.35,
        }),
        calibration: CalibrationConfig {
            starts: 2,
            max_iters: 30,
            ..CalibrationConfig::default()
        },
        ensemble: (members > 1).then_some(EnsembleConfig {
            members,
            bootstrap: false,
            level: 0.9,
            interval: IntervalMethod::Conformal,
        }),
    }
}

fn go(c: &RunConfig, data: &Samples, threads: usize) -> RunOutcome {
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

fn members(o: &RunOutcome) -> &[Artefact] {
    match &o.artefact {
        Artefact::Ensemble { members, .. } => members,
        other => panic!("not an ensemble: {other:?}"),
    }
}

#[test]
fn an_ensemble_is_the_same_bits_at_any_thread_count_and_member_0_is_the_plain_run() {
    let data = measured();
    let c = config(3);
    let (one, two) = (go(&c, &data, 1), go(&c, &data, 2));
    assert_eq!(one.metrics, two.metrics);
    // (Debug text: an unmeasured target is NaN, which `==` never equals.)
    let text = |o: &RunOutcome| format!("{:?}", o.predictions);
    assert_eq!(text(&one), text(&two));
    assert_eq!(one.artefact, two.artefact);
    assert_eq!(members(&one).len(), 3);
    // Member 0 is the run without [ensemble]; the others differ from it.
    let plain = go(&config(1), &data, 1);
    assert_eq!(members(&one)[0], plain.artefact);
    assert_ne!(members(&one)[1], plain.artefact);
    assert_ne!(members(&one)[1], members(&one)[2]);
}

#[test]
fn interval_metrics_are_what_the_predictions_say() {
    let data = measured();
    let o = go(&config(3), &data, 2);
    let p = &o.predictions;
    assert_eq!(p.rejection_lower.len(), p.len());
    let mut inside = 0;
    let mut width = 0.0;
    let mut n = 0;
    for k in 0..p.len() {
        let (lo, hi, y, m) = (
            p.rejection_lower[k],
            p.rejection_upper[k],
            p.target_rejection[k],
            p.predicted_rejection[k],
        );
        // Bounds are clipped to the physical range; a mean outside it (a negative
        // predicted permeate) is the model's flaw, not the interval's.
        assert!(lo <= hi && hi <= 1.0 && lo >= -2.0, "{lo} {m} {hi}");
        if y.is_nan() {
            continue;
        }
        n += 1;
        inside += usize::from(lo <= y && y <= hi);
        width += hi - lo;
    }
    let test = o.metrics.measured.as_ref().unwrap().test.as_ref().unwrap();
    assert_eq!(test.n_values, n);
    assert!((test.coverage.unwrap() - inside as f64 / n as f64).abs() < 1e-12);
    assert!((test.interval_width.unwrap() - width / n as f64).abs() < 1e-9);
    // Conformal on the validation values covers them at the level or more.
    let validation = o
        .metrics
        .measured
        .as_ref()
        .unwrap()
        .validation
        .as_ref()
        .unwrap();
    assert!(validation.coverage.unwrap() >= 0.9, "{validation:?}");
}

#[test]
fn bootstrap_members_of_a_nested_dspmde_fit_differ_and_cover_their_validation() {
    let data = measured();
    let mut c = config(3);
    c.method = Method::DspmdeFit;
    c.ensemble.as_mut().unwrap().bootstrap = true;
    c.split = Some(SplitSpec::ByFamily {
        test_family: "MgSO4".into(),
        validation_fraction: 0.15,
        validate_on: ValidateOn::EachFamily,
    });
    c.normalise();
    let o = go(&c, &data, 2);
    let fits: Vec<String> = members(&o)
        .iter()
        .map(|a| format!("{:?}", a.membrane().unwrap()))
        .collect();
    assert_ne!(fits[0], fits[1]);
    assert_ne!(fits[1], fits[2]);
    // Member 0 is the run itself, on every training row: the fit a single run ships.
    let mut single = c.clone();
    single.ensemble = None;
    assert_eq!(members(&o)[0], go(&single, &data, 1).artefact);
    let m = o.metrics.measured.as_ref().unwrap();
    let validation = m.validation.as_ref().unwrap();
    // Every training family's rows have out-of-family values from every member.
    assert_eq!(validation.n_samples, 21);
    assert!(validation.coverage.unwrap() >= 0.9, "{validation:?}");
    assert!(m.test.as_ref().unwrap().coverage.is_some());
}

/// A model to ship (`kind = "all_families"`): every row trains, each family validates in
/// turn, and the ensemble's intervals are calibrated on those out-of-family errors.
#[test]
fn an_all_families_split_trains_on_every_row_and_validates_out_of_family() {
    let data = measured();
    let mut c = config(3);
    c.method = Method::DspmdeFit;
    c.split = Some(SplitSpec::AllFamilies);
    c.normalise();
    let o = go(&c, &data, 2);
    let m = o.metrics.measured.as_ref().unwrap();
    assert!(m.test.is_none());
    assert_eq!(m.train.as_ref().unwrap().n_samples, 28);
    let validation = m.validation.as_ref().unwrap();
    assert_eq!(validation.n_samples, 28);
    assert!(validation.coverage.unwrap() >= 0.9, "{validation:?}");
    match &o.artefact {
        Artefact::Ensemble { interval, .. } => {
            assert_eq!(interval.method, IntervalMethod::Conformal);
            assert_eq!(interval.pooled.values, validation.n_values);
        }
        other => panic!("{other:?}"),
    }
}
