//! Observed rejections in the loss (`Batch::film_factor`): the model predicts intrinsic
//! transmissions and the loss compares their film-model conversion
//! `T E / (1 + T (E - 1))` with observed targets. Gradients through the conversion match
//! finite differences, `E = 1` is the plain loss to the bit, and the loss is zero exactly
//! where the intrinsic prediction is the intrinsic truth behind an observed target.

use ionode_autodiff::gradcheck::{check_direction, GradCheck};
use ionode_autodiff::{ParamStore, Tape};
use ionode_model::{
    synthetic, Batch, Electroneutrality, FeedLevel, ForwardOptions, Model, ModelConfig, Solver,
    State, TimeMap, Variant,
};
use ndarray::{Array1, Array2};

fn config(variant: Variant, state: State, en: Electroneutrality) -> ModelConfig {
    ModelConfig {
        variant,
        state,
        electroneutrality: en,
        embed_dim: 4,
        hidden: 8,
        layers: 3,
        solver: Solver::Rk4 { steps: 4 },
        time: TimeMap::Log,
        j_ref_m_s: 1e-6,
        feed_level: FeedLevel::Log { c_ref_mol_m3: 30.0 },
        ..ModelConfig::default()
    }
}

fn loss(m: &Model, st: &ParamStore, batch: &Batch) -> f64 {
    let mut t = Tape::new();
    let fwd = m
        .forward(&mut t, st, batch, ForwardOptions::default())
        .unwrap();
    let l = m.loss(&mut t, &fwd).unwrap().total;
    t.value(l)[0]
}

/// Film factors 1 (intrinsic), e^0.5 and e^1.5 in turn.
fn factors(b: usize) -> Array1<f64> {
    Array1::from_shape_fn(b, |i| [1.0, 0.5f64.exp(), 1.5f64.exp()][i % 3])
}

#[test]
fn gradients_through_the_film_conversion_match_finite_differences() {
    let mut tape = Tape::new();
    let soft = Electroneutrality::Soft {
        lambda: 0.7,
        also_trajectory: false,
    };
    for (k, (variant, state, en)) in [
        (
            Variant::AttentionNode,
            State::Transmission,
            Electroneutrality::Hard,
        ),
        (Variant::Node, State::Scaled, soft),
        (Variant::Mlp, State::Transmission, Electroneutrality::Hard),
        (Variant::Mlp, State::Scaled, Electroneutrality::Hard),
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = config(variant, state, en);
        let mut st = ParamStore::new();
        let m = Model::new(cfg.clone(), &mut st, 3 + k as u64).unwrap();
        let mut batch = synthetic::batch(&cfg, 4, 7 + k as u64).with_film(Some(factors(4)));
        batch.target_permeate_mol_m3 = Some(batch.feed_mol_m3.mapv(|c| 0.6 * c));
        let n = st.num_scalars();
        let dir: Vec<f64> = (0..n)
            .map(|i| ((i * 37 % 17) as f64 / 17.0) - 0.5)
            .collect();
        let rep = check_direction(&mut tape, &mut st, &GradCheck::default(), &dir, |t, s| {
            let fwd = m.forward(t, s, &batch, ForwardOptions::default()).unwrap();
            Ok(m.loss(t, &fwd).unwrap().total)
        })
        .unwrap();
        assert!(
            rep.passed && rep.rel_err < 1e-5 && rep.analytic.abs() > 1e-8,
            "{variant:?} {state:?}: {rep:#?}"
        );
    }
}

#[test]
fn the_loss_compares_the_converted_prediction_with_observed_targets() {
    let cfg = config(Variant::Mlp, State::Transmission, Electroneutrality::None);
    let mut st = ParamStore::new();
    let m = Model::new(cfg.clone(), &mut st, 5).unwrap();
    let batch = synthetic::batch(&cfg, 6, 11);
    let intrinsic = m.predict(&st, &batch).unwrap().permeate_mol_m3;
    let e = factors(6);
    // The observed permeates this intrinsic prediction stands for, by hand.
    let mut observed = intrinsic.clone();
    for ((i, j), p) in observed.indexed_iter_mut() {
        let cf = batch.feed_mol_m3[[i, j]];
        if batch.mask[[i, j]] {
            let t = intrinsic[[i, j]] / cf;
            *p = cf * t * e[i] / (1.0 + t * (e[i] - 1.0));
        }
    }
    let with = |target: &Array2<f64>, film: Option<Array1<f64>>| {
        let b = batch.clone().with_target(target.clone()).with_film(film);
        loss(&m, &st, &b)
    };
    // The intrinsic prediction explains the observed targets exactly.
    assert!(with(&observed, Some(e.clone())) < 1e-28);
    // Without the conversion it does not (the check is not vacuous).
    assert!(with(&observed, None) > 1e-6);
    // Factors of 1 are the plain loss, to the bit.
    let target = batch.feed_mol_m3.mapv(|c| 0.3 * c);
    assert_eq!(
        with(&target, Some(Array1::ones(6))).to_bits(),
        with(&target, None).to_bits()
    );
}

#[test]
fn a_bad_film_factor_is_a_clear_error() {
    let cfg = config(Variant::Mlp, State::Transmission, Electroneutrality::Hard);
    let mut st = ParamStore::new();
    let m = Model::new(cfg.clone(), &mut st, 5).unwrap();
    let mut batch = synthetic::batch(&cfg, 3, 11);
    batch.target_permeate_mol_m3 = Some(batch.feed_mol_m3.mapv(|c| 0.3 * c));
    for (film, why) in [
        (
            Array1::from_vec(vec![1.0, 2.0]),
            "film factors are 2, expected 3",
        ),
        (
            Array1::from_vec(vec![1.0, f64::NAN, 2.0]),
            "sample 1: film factor NaN",
        ),
    ] {
        let b = batch.clone().with_film(Some(film));
        let mut t = Tape::new();
        let err = match m.forward(&mut t, &st, &b, ForwardOptions::default()) {
            Err(e) => e.to_string(),
            Ok(fwd) => m.loss(&mut t, &fwd).unwrap_err().to_string(),
        };
        assert!(err.contains(why), "{err}");
    }
}
