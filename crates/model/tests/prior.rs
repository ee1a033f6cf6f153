//! The physics-anchored models (`prior = "feature" | "residual"`): an untrained residual is
//! the physics to rounding, gradients match finite differences, the hard constraint holds
//! around an electroneutral prior, and a batch without the prior the model needs is refused.

use ionode_autodiff::gradcheck::{check_direction, GradCheck};
use ionode_autodiff::{ParamStore, Tape};
use ionode_model::{
    synthetic, Batch, Electroneutrality, FeedLevel, ForwardOptions, Model, ModelConfig, ModelError,
    Prior, Solver, State, TimeMap, Variant,
};
use ndarray::Array2;

fn config(variant: Variant, prior: Prior, state: State, en: Electroneutrality) -> ModelConfig {
    ModelConfig {
        variant,
        prior,
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

/// A deterministic stream in [0, 1).
fn stream(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A synthetic batch with an electroneutral physics prior: random transmissions in
/// [0.05, 1], the anions' scaled together so that `sum z c_f T = 0` (as a DSPM-DE permeate
/// is). Absent slots get NaN, which the model must ignore.
fn batch_with_prior(cfg: &ModelConfig, b: usize, seed: u64) -> Batch {
    let batch = synthetic::batch(cfg, b, seed);
    let z = cfg.charges();
    let mut u = stream(seed + 1000);
    let mut prior = Array2::from_elem(batch.feed_mol_m3.dim(), f64::NAN);
    for i in 0..b {
        let (mut qp, mut qn) = (0.0, 0.0);
        for j in 0..z.len() {
            if batch.mask[[i, j]] {
                let t = 0.05 + 0.95 * u();
                prior[[i, j]] = t;
                let q = z[j] * batch.feed_mol_m3[[i, j]] * t;
                if q > 0.0 {
                    qp += q;
                } else {
                    qn -= q;
                }
            }
        }
        for j in 0..z.len() {
            if batch.mask[[i, j]] && z[j] < 0.0 {
                prior[[i, j]] *= qp / qn;
            }
        }
    }
    batch.with_prior(Some(prior))
}

fn build(cfg: &ModelConfig, seed: u64) -> (Model, ParamStore) {
    let mut store = ParamStore::new();
    let m = Model::new(cfg.clone(), &mut store, seed).unwrap();
    (m, store)
}

/// Moves every parameter a little, so that the zero-initialised last layer of a residual
/// no longer hides the rest of the network.
fn perturb(store: &mut ParamStore, seed: u64) {
    let mut u = stream(seed);
    for v in store.values_mut() {
        *v += 0.3 * (u() - 0.5);
    }
}

const VARIANTS: [Variant; 3] = [Variant::AttentionNode, Variant::Node, Variant::Mlp];

#[test]
fn an_untrained_residual_model_is_the_physics() {
    for variant in VARIANTS {
        for state in [State::Scaled, State::Transmission] {
            let cfg = config(variant, Prior::Residual, state, Electroneutrality::Hard);
            let (m, st) = build(&cfg, 3);
            let batch = batch_with_prior(&cfg, 16, 4);
            let p = m.predict(&st, &batch).unwrap();
            let prior = batch.prior_transmission.as_ref().unwrap();
            let mut worst: f64 = 0.0;
            for ((r, t), &present) in p.rejection.iter().zip(prior).zip(&batch.mask) {
                if present {
                    worst = worst.max((r - (1.0 - t)).abs());
                }
            }
            assert!(worst < 1e-10, "{variant:?} {state:?}: {worst:e}");
            // Trained (here: moved) parameters do correct it: the check is not vacuous.
            let mut moved = st.clone();
            perturb(&mut moved, 5);
            let q = m.predict(&moved, &batch).unwrap();
            let change = (&q.rejection - &p.rejection)
                .iter()
                .filter(|d| d.is_finite())
                .fold(0.0f64, |a, d| a.max(d.abs()));
            assert!(change > 1e-4, "{variant:?} {state:?}: correction is inert");
        }
    }
}

#[test]
fn anchored_gradients_match_finite_differences() {
    let mut tape = Tape::new();
    let soft = Electroneutrality::Soft {
        lambda: 0.7,
        also_trajectory: true,
    };
    let mut k = 0;
    for variant in VARIANTS {
        for prior in [Prior::Feature, Prior::Residual] {
            for (state, en) in [
                (State::Transmission, Electroneutrality::Hard),
                (State::Scaled, soft),
            ] {
                k += 1;
                let cfg = config(variant, prior, state, en);
                let (m, mut st) = build(&cfg, 10 + k);
                perturb(&mut st, 20 + k);
                let mut batch = batch_with_prior(&cfg, 3, 30 + k);
                batch.target_permeate_mol_m3 = Some(batch.feed_mol_m3.mapv(|c| 0.4 * c));
                let n = st.num_scalars();
                let mut u = stream(40 + k);
                let dir: Vec<f64> = (0..n).map(|_| u() - 0.5).collect();
                let rep =
                    check_direction(&mut tape, &mut st, &GradCheck::default(), &dir, |t, s| {
                        let fwd = m.forward(t, s, &batch, ForwardOptions::default()).unwrap();
                        Ok(m.loss(t, &fwd).unwrap().total)
                    })
                    .unwrap();
                assert!(
                    rep.passed && rep.rel_err < 1e-5 && rep.analytic.abs() > 1e-8,
                    "{variant:?} {prior:?} {state:?}: {rep:#?}"
                );
            }
        }
    }
}

#[test]
fn the_hard_constraint_keeps_a_corrected_physics_electroneutral() {
    for variant in VARIANTS {
        let cfg = config(
            variant,
            Prior::Residual,
            State::Transmission,
            Electroneutrality::Hard,
        );
        let (m, mut st) = build(&cfg, 6);
        perturb(&mut st, 7);
        let batch = batch_with_prior(&cfg, 16, 8);
        let p = m.predict(&st, &batch).unwrap();
        let z = cfg.charges();
        for i in 0..batch.len() {
            let scale: f64 = (0..z.len())
                .filter(|&j| batch.mask[[i, j]])
                .map(|j| z[j].abs() * batch.feed_mol_m3[[i, j]])
                .sum();
            let q: f64 = (0..z.len()).map(|j| z[j] * p.permeate_mol_m3[[i, j]]).sum();
            assert!((q / scale).abs() < 1e-10, "{variant:?} sample {i}: {q:e}");
        }
    }
}

#[test]
fn the_feature_reaches_the_prediction_and_absent_slots_do_not() {
    for variant in VARIANTS {
        let cfg = config(
            variant,
            Prior::Feature,
            State::Transmission,
            Electroneutrality::Hard,
        );
        let (m, st) = build(&cfg, 9);
        let batch = batch_with_prior(&cfg, 8, 10);
        let base = m.predict(&st, &batch).unwrap().rejection;
        // Another value in the absent slots: the same bits.
        let mut absent = batch.clone();
        let mask = absent.mask.clone();
        if let Some(p) = absent.prior_transmission.as_mut() {
            ndarray::Zip::from(p).and(&mask).for_each(|t, &m| {
                if !m {
                    *t = 0.123;
                }
            });
        }
        let same = m.predict(&st, &absent).unwrap().rejection;
        assert!(
            base.iter()
                .zip(&same)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{variant:?}"
        );
        // Another prior of the present ions: another prediction.
        let mut other = batch.clone();
        other
            .prior_transmission
            .as_mut()
            .unwrap()
            .mapv_inplace(|t| 0.5 * t);
        let moved = m.predict(&st, &other).unwrap().rejection;
        let d = (&moved - &base)
            .iter()
            .filter(|d| d.is_finite())
            .fold(0.0f64, |a, d| a.max(d.abs()));
        assert!(d > 1e-6, "{variant:?}: the prior does not reach the output");
    }
}

#[test]
fn a_missing_or_unexpected_prior_is_a_clear_error() {
    let cfg = config(
        Variant::Node,
        Prior::Residual,
        State::Transmission,
        Electroneutrality::Hard,
    );
    let (m, st) = build(&cfg, 1);
    let with = batch_with_prior(&cfg, 4, 2);
    let mut without = with.clone();
    without.prior_transmission = None;
    let e = m.predict(&st, &without).unwrap_err();
    assert!(matches!(e, ModelError::Batch(_)), "{e}");
    assert!(e.to_string().contains("prior = \"residual\""), "{e}");
    let mut short = with.clone();
    short.prior_transmission = Some(Array2::ones((3, 7)));
    assert!(m
        .predict(&st, &short)
        .unwrap_err()
        .to_string()
        .contains("prior is [3, 7]"));
    let mut inf = with.clone();
    let first = (0..7).find(|&j| inf.mask[[0, j]]).unwrap();
    inf.prior_transmission.as_mut().unwrap()[[0, first]] = f64::INFINITY;
    assert!(m
        .predict(&st, &inf)
        .unwrap_err()
        .to_string()
        .contains("transmission"));
    let plain = ModelConfig {
        prior: Prior::None,
        ..cfg
    };
    let (m, st) = build(&plain, 1);
    let e = m.predict(&st, &with).unwrap_err();
    assert!(e.to_string().contains("has none"), "{e}");
}

#[test]
fn a_config_without_a_prior_serialises_as_before() {
    let plain = serde_json::to_string(&ModelConfig::default()).unwrap();
    assert!(!plain.contains("prior"), "{plain}");
    let anchored = ModelConfig {
        prior: Prior::Residual,
        ..ModelConfig::default()
    };
    let text = serde_json::to_string(&anchored).unwrap();
    assert!(text.contains("\"prior\":\"residual\""), "{text}");
    let back: ModelConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, anchored);
}
