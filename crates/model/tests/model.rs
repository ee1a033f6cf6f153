//! Whole-model properties: gradients (finite differences along random directions) for every
//! variant, constraint and solver; electroneutrality; masking; batch independence; the
//! `t = 0` limit; save/load; solver consistency; typed errors instead of NaN.

use ionode_autodiff::gradcheck::{check_direction, GradCheck};
use ionode_autodiff::{ParamStore, Tape};
use ionode_model::{
    synthetic, Batch, Electroneutrality, Encoding, FeedLevel, ForwardOptions, Model, ModelConfig,
    ModelError, SavedParams, Solver, State, TimeMap, Variant,
};
use ndarray::{s, Array1};

/// A small model (d = 4, width 8, still 5 layers and 7 slots) so debug builds stay fast.
fn small(variant: Variant, en: Electroneutrality, solver: Solver) -> ModelConfig {
    ModelConfig {
        variant,
        embed_dim: 4,
        hidden: 8,
        electroneutrality: en,
        solver,
        ..ModelConfig::default()
    }
}

fn build(cfg: ModelConfig, seed: u64) -> (Model, ParamStore) {
    let mut store = ParamStore::new();
    let m = Model::new(cfg, &mut store, seed).unwrap();
    (m, store)
}

fn rk4(steps: usize) -> Solver {
    Solver::Rk4 { steps }
}

fn dopri(tol: f64) -> Solver {
    Solver::Dopri5 {
        rtol: tol,
        atol: tol,
        max_steps: 10_000,
        first_step: 0.1,
    }
}

const SOFT: Electroneutrality = Electroneutrality::Soft {
    lambda: 0.7,
    also_trajectory: true,
};

const SOFT_END: Electroneutrality = Electroneutrality::Soft {
    lambda: 0.7,
    also_trajectory: false,
};

/// Normal-ish direction from a simple deterministic stream.
fn direction(n: usize, seed: u64) -> Vec<f64> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

fn max_charge_residual(cfg: &ModelConfig, batch: &Batch, permeate: &ndarray::Array2<f64>) -> f64 {
    let z = cfg.charges();
    (0..batch.len())
        .map(|i| {
            let cs: f64 = (0..z.len())
                .filter(|&j| batch.mask[[i, j]])
                .map(|j| z[j].abs() * batch.feed_mol_m3[[i, j]])
                .sum::<f64>()
                / 2.0;
            let q: f64 = (0..z.len()).map(|j| z[j] * permeate[[i, j]]).sum();
            q.abs() / cs
        })
        .fold(0.0, f64::max)
}

/// Every variant x constraint x solver. With Dormand-Prince the soft penalty is taken at the
/// output only: the trajectory penalty's quadrature sits on the adaptive mesh, which moves
/// with the parameters while backward holds it fixed (see
/// `dormand_prince_trajectory_penalty_gradient_is_exact_up_to_the_moving_mesh`).
fn all_configs() -> Vec<ModelConfig> {
    let mut v = Vec::new();
    for en in [Electroneutrality::Hard, SOFT, Electroneutrality::None] {
        for solver in [rk4(4), dopri(1e-9)] {
            let en = if en == SOFT && solver != rk4(4) {
                SOFT_END
            } else {
                en
            };
            for variant in [Variant::AttentionNode, Variant::Node] {
                v.push(small(variant, en, solver));
            }
        }
        v.push(small(Variant::Mlp, en, rk4(4)));
        // The transmission state changes the units, the projector and the loss targets.
        for variant in [Variant::AttentionNode, Variant::Mlp] {
            v.push(ModelConfig {
                state: State::Transmission,
                ..small(variant, en, rk4(4))
            });
        }
        for variant in [Variant::AttentionNode, Variant::Mlp] {
            v.push(ModelConfig {
                state: State::Transmission,
                time: TimeMap::Log,
                j_ref_m_s: 1e-6,
                feed_level: FeedLevel::Log { c_ref_mol_m3: 30.0 },
                ..small(variant, en, rk4(4))
            });
        }
    }
    v
}

/// Finite differences against backward of the whole loss along `dir`.
fn loss_gradient_check(
    tape: &mut Tape,
    model: &Model,
    store: &mut ParamStore,
    batch: &Batch,
    dir: &[f64],
) -> ionode_autodiff::gradcheck::DirectionalReport {
    check_direction(tape, store, &GradCheck::default(), dir, |t, s| {
        let fwd = model
            .forward(t, s, batch, ForwardOptions::default())
            .expect("forward");
        Ok(model.loss(t, &fwd).expect("loss").total)
    })
    .unwrap()
}

#[test]
fn gradients_match_finite_differences_for_every_variant_constraint_and_solver() {
    let mut tape = Tape::new();
    for (ci, cfg) in all_configs().into_iter().enumerate() {
        let (model, mut store) = build(cfg.clone(), 7 + ci as u64);
        let batch = synthetic::batch(&cfg, 3, 40 + ci as u64);
        for trial in 0..2 {
            let dir = direction(store.num_scalars(), 100 * ci as u64 + trial);
            let rep = loss_gradient_check(&mut tape, &model, &mut store, &batch, &dir);
            assert!(
                rep.passed && rep.rel_err < 1e-5,
                "{:?} {:?} {:?}: {rep:#?}",
                cfg.variant,
                cfg.electroneutrality,
                cfg.solver
            );
            assert!(rep.analytic.abs() > 1e-8, "vacuous check: {rep:#?}");
        }
    }
}

/// Backward differentiates through the accepted steps with the mesh held fixed. The state at
/// the end depends on the mesh only at the tolerance, but the trajectory penalty's
/// trapezoidal quadrature depends on it at the quadrature error, so finite differences (which
/// see the mesh move) agree only to that level: documented, bounded here.
#[test]
fn dormand_prince_trajectory_penalty_gradient_is_exact_up_to_the_moving_mesh() {
    let cfg = small(Variant::AttentionNode, SOFT, dopri(1e-9));
    let (model, mut store) = build(cfg.clone(), 12);
    let batch = synthetic::batch(&cfg, 3, 52);
    let mut tape = Tape::new();
    let dir = direction(store.num_scalars(), 77);
    let rep = loss_gradient_check(&mut tape, &model, &mut store, &batch, &dir);
    assert!(rep.rel_err < 0.2, "{rep:#?}");
}

#[test]
fn learned_encoding_gradients_match_finite_differences() {
    let cfg = ModelConfig {
        encoding: Encoding::Learned,
        ..small(Variant::AttentionNode, Electroneutrality::Hard, rk4(3))
    };
    let (model, mut store) = build(cfg.clone(), 3);
    let batch = synthetic::batch(&cfg, 4, 5);
    let mut tape = Tape::new();
    let dir = direction(store.num_scalars(), 9);
    let rep = loss_gradient_check(&mut tape, &model, &mut store, &batch, &dir);
    assert!(rep.passed && rep.rel_err < 1e-5, "{rep:#?}");
    let pos = store.id("pos").unwrap();
    assert!(store.grad(pos).iter().any(|g| g.abs() > 0.0));
}

#[test]
fn hard_constraint_is_electroneutral_and_soft_or_none_are_not() {
    let states = [State::Scaled, State::Transmission];
    for (solver, state) in [Solver::default(), Solver::dopri5_default()]
        .into_iter()
        .flat_map(|solver| states.map(|state| (solver, state)))
    {
        for variant in [Variant::AttentionNode, Variant::Node, Variant::Mlp] {
            let hard = ModelConfig {
                variant,
                solver,
                state,
                ..ModelConfig::default()
            };
            let batch = synthetic::batch(&hard, 32, 11);
            let (m, st) = build(hard.clone(), 1);
            let p = m.predict(&st, &batch).unwrap();
            let r = max_charge_residual(&hard, &batch, &p.permeate_mol_m3);
            assert!(r < 1e-9, "{variant:?} {state:?} hard: residual {r:e}");
            // The prediction moved away from the feed: the check is not vacuous.
            let moved = (&p.permeate_mol_m3 - &batch.feed_mol_m3.mapv(|c| c))
                .iter()
                .zip(batch.mask.iter())
                .filter(|(_, &m)| m)
                .map(|(d, _)| d.abs())
                .fold(0.0, f64::max);
            assert!(moved > 1e-3, "{variant:?}: permeate equals feed");
            for en in [SOFT, Electroneutrality::None] {
                let cfg = ModelConfig {
                    electroneutrality: en,
                    ..hard.clone()
                };
                let (m, st) = build(cfg.clone(), 1);
                let p = m.predict(&st, &batch).unwrap();
                let r = max_charge_residual(&cfg, &batch, &p.permeate_mol_m3);
                assert!(
                    r > 1e-6,
                    "{variant:?} {state:?} {en:?}: residual {r:e} (unexpectedly neutral)"
                );
            }
        }
    }
}

#[test]
fn absent_slots_never_influence_present_outputs() {
    for cfg in all_configs() {
        let (m, st) = build(cfg.clone(), 2);
        let batch = synthetic::batch(&cfg, 6, 21);
        let p1 = m.predict(&st, &batch).unwrap();
        let mut other = batch.clone();
        for ((c, &present), k) in other.feed_mol_m3.iter_mut().zip(batch.mask.iter()).zip(0..) {
            if !present {
                *c = if k % 2 == 0 { f64::NAN } else { 1e6 + k as f64 };
            }
        }
        let p2 = m.predict(&st, &other).unwrap();
        for ((a, b), &present) in p1
            .permeate_mol_m3
            .iter()
            .zip(p2.permeate_mol_m3.iter())
            .zip(batch.mask.iter())
        {
            if present {
                assert_eq!(a.to_bits(), b.to_bits(), "{cfg:?}");
            } else {
                assert_eq!((*a, *b), (0.0, 0.0));
            }
        }
        assert_eq!(p1.attention_end, p2.attention_end);
        assert_eq!(p1.attention_mean, p2.attention_mean);
    }
}

#[test]
fn a_sample_does_not_depend_on_the_rest_of_its_batch() {
    for (solver, tol) in [(rk4(8), 1e-12), (dopri(1e-7), 1e-5)] {
        for variant in [Variant::AttentionNode, Variant::Node, Variant::Mlp] {
            let cfg = ModelConfig {
                variant,
                solver,
                ..ModelConfig::default()
            };
            let (m, st) = build(cfg.clone(), 3);
            let batch = synthetic::batch(&cfg, 9, 31);
            let all = m.predict(&st, &batch).unwrap();
            for i in [0, 4, 8] {
                let one = Batch::new(
                    batch.feed_mol_m3.slice(s![i..i + 1, ..]).to_owned(),
                    batch.mask.slice(s![i..i + 1, ..]).to_owned(),
                    batch.flux_m_s.slice(s![i..i + 1]).to_owned(),
                );
                let p = m.predict(&st, &one).unwrap();
                for (a, b) in p
                    .permeate_mol_m3
                    .row(0)
                    .iter()
                    .zip(all.permeate_mol_m3.row(i).iter())
                {
                    assert!(
                        (a - b).abs() <= tol * (1.0 + b.abs()),
                        "{variant:?} {solver:?} sample {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn zero_flux_returns_the_feed_and_each_sample_uses_its_own_flux() {
    for cfg in all_configs() {
        let (m, st) = build(cfg.clone(), 4);
        let mut batch = synthetic::batch(&cfg, 5, 41);
        batch.flux_m_s[1] = 0.0;
        batch.flux_m_s[3] = 0.0;
        let p = m.predict(&st, &batch).unwrap();
        for i in [1, 3] {
            for j in 0..cfg.num_slots() {
                if batch.mask[[i, j]] {
                    let (cp, cf) = (p.permeate_mol_m3[[i, j]], batch.feed_mol_m3[[i, j]]);
                    assert!((cp - cf).abs() <= 1e-13 * cf, "{cp} vs {cf}");
                    assert!(p.rejection[[i, j]].abs() <= 1e-13);
                } else {
                    assert!(p.rejection[[i, j]].is_nan());
                }
            }
        }
        // A sample's flux changes only that sample's output.
        let mut b2 = batch.clone();
        b2.flux_m_s[0] *= 2.0;
        let p2 = m.predict(&st, &b2).unwrap();
        assert_ne!(p2.permeate_mol_m3.row(0), p.permeate_mol_m3.row(0));
        if !matches!(cfg.solver, Solver::Dopri5 { .. }) {
            assert_eq!(p2.permeate_mol_m3.row(2), p.permeate_mol_m3.row(2));
        }
    }
}

#[test]
fn saved_parameters_round_trip_bit_exactly() {
    let cfg = ModelConfig {
        encoding: Encoding::Learned,
        ..ModelConfig::default()
    };
    let (m, st) = build(cfg.clone(), 5);
    let saved = SavedParams::from_store(&st);
    let json = serde_json::to_string(&saved).unwrap();
    assert!(json.contains("att.wq") && json.contains("net.l4.b"));
    let restored = saved.to_store().unwrap();
    assert_eq!(restored.values().len(), st.values().len());
    for (a, b) in restored.values().iter().zip(st.values()) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
    // A model built with another seed, then loaded, predicts the same bits.
    let (m2, mut st2) = build(cfg.clone(), 99);
    assert_ne!(st2.values(), st.values());
    saved.load_into(&mut st2).unwrap();
    let batch = synthetic::batch(&cfg, 4, 8);
    let (p1, p2) = (
        m.predict(&st, &batch).unwrap(),
        m2.predict(&st2, &batch).unwrap(),
    );
    for (a, b) in p1.permeate_mol_m3.iter().zip(p2.permeate_mol_m3.iter()) {
        assert_eq!(a.to_bits(), b.to_bits());
    }
    // A mismatching model is refused with a typed error.
    let (_, mut other) = build(ModelConfig { hidden: 32, ..cfg }, 1);
    assert!(matches!(
        saved.load_into(&mut other),
        Err(ModelError::Params(_))
    ));
}

#[test]
fn config_defaults_are_model_md_and_bench_md() {
    let c = ModelConfig::default();
    assert_eq!(c.variant, Variant::AttentionNode);
    let names: Vec<&str> = c.slots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["Na+", "K+", "Li+", "Mg^2+", "Ca^2+", "Cl-", "SO4^2-"]
    );
    assert_eq!(c.charges(), [1.0, 1.0, 1.0, 2.0, 2.0, -1.0, -2.0]);
    assert_eq!((c.embed_dim, c.hidden, c.layers), (16, 64, 5));
    assert_eq!(c.encoding, Encoding::Sinusoidal);
    assert_eq!(c.electroneutrality, Electroneutrality::Hard);
    assert_eq!(c.solver, Solver::Rk4 { steps: 16 });
    assert_eq!(c.j_ref_m_s, 1e-5);
    assert_eq!(c.log_floor, 1e-12);
    assert_eq!(c.state, State::Scaled);
    let t: ModelConfig = serde_json::from_str(r#"{"state": "transmission"}"#).unwrap();
    assert_eq!(t.state, State::Transmission);
    assert_eq!(c.time, TimeMap::Linear);
    assert_eq!(TimeMap::Linear.t(3e-6, 1e-5), 3e-6 / 1e-5);
    assert!((TimeMap::Log.t(3e-6, 1e-6) - 4f64.ln()).abs() < 1e-15);
    assert_eq!(TimeMap::Log.t(0.0, 1e-6), 0.0);
    let log = ModelConfig {
        time: TimeMap::Log,
        j_ref_m_s: 2e-6,
        ..ModelConfig::default()
    };
    let batch = synthetic::batch(&log, 5, 3);
    let prep = ionode_model::Prepared::new(&log, &batch).unwrap();
    for (t, j) in prep.t_end.iter().zip(batch.flux_m_s.iter()) {
        assert!((t - (1.0 + j / 2e-6).ln()).abs() < 1e-14, "{t} for {j}");
    }
    // Parameter count of BENCH.md's network: Linear(3,16), 3 x 16x16, 113-64-64-64-64-7.
    let (_, st) = build(c.clone(), 0);
    let expect = (3 * 16 + 16) + 3 * 256 + (113 * 64 + 64) + 3 * (64 * 64 + 64) + (64 * 7 + 7);
    assert_eq!(st.num_scalars(), expect);
    // A config file names only what it changes.
    let parsed: ModelConfig = serde_json::from_str(
        r#"{"variant": "node", "electroneutrality": {"kind": "soft", "lambda": 0.1, "also_trajectory": true},
            "solver": {"kind": "dopri5", "rtol": 1e-5, "atol": 1e-7, "max_steps": 500, "first_step": 0.05}}"#,
    )
    .unwrap();
    assert_eq!(parsed.variant, Variant::Node);
    assert_eq!(parsed.hidden, 64);
    assert!(matches!(
        parsed.solver,
        Solver::Dopri5 { max_steps: 500, .. }
    ));
    let back: ModelConfig = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(back, parsed);
    assert!(serde_json::from_str::<ModelConfig>(r#"{"hiden": 3}"#).is_err());
    // Invalid values are refused when the model is built.
    let mut store = ParamStore::new();
    let bad = ModelConfig {
        solver: Solver::Rk4 { steps: 0 },
        ..ModelConfig::default()
    };
    assert!(matches!(
        Model::new(bad, &mut store, 0),
        Err(ModelError::Config { .. })
    ));
}

#[test]
fn rk4_with_many_steps_approaches_tight_dormand_prince() {
    for variant in [Variant::AttentionNode, Variant::Node] {
        let base = small(variant, Electroneutrality::None, rk4(256));
        let (m, st) = build(base.clone(), 6);
        let batch = synthetic::batch(&base, 4, 51);
        let pr = m.predict(&st, &batch).unwrap();
        let (md, _) = build(
            ModelConfig {
                solver: dopri(1e-11),
                ..base.clone()
            },
            6,
        );
        let pd = md.predict(&st, &batch).unwrap();
        let (mc, _) = build(
            ModelConfig {
                solver: rk4(2),
                ..base
            },
            6,
        );
        let pc = mc.predict(&st, &batch).unwrap();
        let diff = |a: &ndarray::Array2<f64>, b: &ndarray::Array2<f64>| {
            (a - b).iter().map(|v| v.abs()).fold(0.0, f64::max)
        };
        let fine = diff(&pr.permeate_mol_m3, &pd.permeate_mol_m3);
        let coarse = diff(&pc.permeate_mol_m3, &pd.permeate_mol_m3);
        assert!(fine < 1e-7, "{variant:?}: RK4(256) vs DoPri5 {fine:e}");
        assert!(
            coarse > 10.0 * fine,
            "{variant:?}: coarse {coarse:e}, fine {fine:e}"
        );
    }
}

#[test]
fn non_finite_states_and_exhausted_steps_are_typed_errors() {
    let cfg = small(Variant::AttentionNode, Electroneutrality::None, rk4(4));
    let (m, mut st) = build(cfg.clone(), 8);
    let batch = synthetic::batch(&cfg, 3, 61);
    let id = st.id("net.l4.b").unwrap();
    st.value_mut(id)[0] = f64::NAN;
    assert!(matches!(
        m.predict(&st, &batch),
        Err(ModelError::NonFinite { .. })
    ));
    let cfg = small(
        Variant::Node,
        Electroneutrality::None,
        Solver::Dopri5 {
            rtol: 1e-12,
            atol: 1e-12,
            max_steps: 3,
            first_step: 0.5,
        },
    );
    let (m, st) = build(cfg, 8);
    assert!(matches!(
        m.predict(&st, &batch),
        Err(ModelError::MaxSteps { max_steps: 3, .. })
    ));
    // Bad batches name the problem.
    let mut bad = batch.clone();
    bad.flux_m_s = Array1::from(vec![1e-5, -1.0, 1e-5]);
    let err = m.predict(&st, &bad).unwrap_err().to_string();
    assert!(err.contains("flux"), "{err}");
}

#[test]
fn attention_maps_are_distributions_over_present_ions() {
    for solver in [rk4(4), dopri(1e-6)] {
        let cfg = small(Variant::AttentionNode, Electroneutrality::Hard, solver);
        let (m, st) = build(cfg.clone(), 9);
        let batch = synthetic::batch(&cfg, 5, 71);
        let p = m.predict(&st, &batch).unwrap();
        for maps in [p.attention_end.unwrap(), p.attention_mean.unwrap()] {
            for i in 0..5 {
                for q in 0..7 {
                    let row = maps.slice(s![i, q, ..]);
                    if batch.mask[[i, q]] {
                        assert!((row.sum() - 1.0).abs() < 1e-12);
                        for k in 0..7 {
                            if !batch.mask[[i, k]] {
                                assert_eq!(row[k], 0.0);
                            }
                        }
                    } else {
                        assert!(row.iter().all(|&a| a == 0.0));
                    }
                }
            }
        }
    }
    // Baselines have no head.
    let cfg = small(Variant::Node, Electroneutrality::Hard, rk4(2));
    let (m, st) = build(cfg.clone(), 9);
    let p = m.predict(&st, &synthetic::batch(&cfg, 2, 1)).unwrap();
    assert!(p.attention_end.is_none() && p.attention_mean.is_none());
}

#[test]
fn loss_is_the_weighted_masked_mse_plus_the_soft_penalty() {
    for state in [State::Scaled, State::Transmission] {
        loss_matches_hand_computation(state);
    }
}

/// The scaled state's loss compares `c_p / c_scale`, the transmission state's `c_p / c_f`
/// (the rejection error); both penalise the same charge residual `sum z c_p / c_scale`.
fn loss_matches_hand_computation(state: State) {
    let cfg = ModelConfig {
        state,
        ..small(
            Variant::AttentionNode,
            Electroneutrality::Soft {
                lambda: 2.5,
                also_trajectory: false,
            },
            rk4(3),
        )
    };
    let (m, st) = build(cfg.clone(), 10);
    let mut batch = synthetic::batch(&cfg, 4, 81);
    // A missing measurement: weight 0, target NaN.
    let (i0, j0) = (0..7)
        .find_map(|j| batch.mask[[0, j]].then_some((0, j)))
        .unwrap();
    let mut w = batch.mask.mapv(|_| 1.0);
    w[[i0, j0]] = 0.0;
    w[[1, 0]] = 3.0;
    batch.target_weight = Some(w.clone());
    batch.target_permeate_mol_m3.as_mut().unwrap()[[i0, j0]] = f64::NAN;
    let mut t = Tape::new();
    let fwd = m
        .forward(&mut t, &st, &batch, ForwardOptions::default())
        .unwrap();
    let loss = m.loss(&mut t, &fwd).unwrap();
    let x = t.value(fwd.x).to_vec();
    let prep = &fwd.prepared;
    let z = cfg.charges();
    let (mut sse, mut wsum, mut pen) = (0.0, 0.0, 0.0);
    for i in 0..4 {
        let mut q = 0.0;
        for j in 0..7 {
            let k = i * 7 + j;
            if batch.mask[[i, j]] {
                let wt = w[[i, j]];
                let cf = batch.feed_mol_m3[[i, j]];
                let unit = match state {
                    State::Scaled => prep.c_scale[i],
                    State::Transmission => cf,
                };
                if wt > 0.0 {
                    let y = batch.target_permeate_mol_m3.as_ref().unwrap()[[i, j]] / unit;
                    sse += wt * (x[k] - y).powi(2);
                    wsum += wt;
                }
                q += z[j] * x[k] * unit / prep.c_scale[i];
            }
        }
        pen += q * q / 4.0;
    }
    let mse = sse / wsum;
    assert!((t.item(loss.mse) - mse).abs() <= 1e-14 * mse.max(1e-300));
    assert!((t.item(loss.penalty.unwrap()) - pen).abs() <= 1e-12 * (pen + 1e-300));
    assert!((t.item(loss.total) - (mse + 2.5 * pen)).abs() <= 1e-12 * (mse + 2.5 * pen));
    // Without targets there is no loss.
    let fwd = m
        .forward(
            &mut t,
            &st,
            &Batch::new(
                batch.feed_mol_m3.clone(),
                batch.mask.clone(),
                batch.flux_m_s.clone(),
            ),
            ForwardOptions::default(),
        )
        .unwrap();
    assert!(matches!(m.loss(&mut t, &fwd), Err(ModelError::Batch(_))));
}

#[test]
fn transmission_state_refuses_a_present_ion_without_feed() {
    let cfg = ModelConfig {
        state: State::Transmission,
        ..small(Variant::AttentionNode, Electroneutrality::Hard, rk4(2))
    };
    let (m, st) = build(cfg.clone(), 1);
    let mut batch = synthetic::batch(&cfg, 3, 2);
    let j = (0..7).find(|&j| batch.mask[[1, j]]).unwrap();
    batch.feed_mol_m3[[1, j]] = 0.0;
    match m.predict(&st, &batch) {
        Err(ModelError::Batch(why)) => {
            assert!(
                why.contains("sample 1") && why.contains("zero feed"),
                "{why}"
            )
        }
        other => panic!("expected a batch error, got {other:?}"),
    }
    // The scaled state accepts it (the ion simply starts at zero).
    let scaled = ModelConfig {
        state: State::Scaled,
        ..cfg
    };
    let (m, st) = build(scaled, 1);
    assert!(m.predict(&st, &batch).is_ok());
}

/// MODEL.md's tokens are scale-free: a feed and the same feed ten times more concentrated
/// get the same rejections. The level feature is what lets the model tell them apart.
#[test]
fn only_the_level_feature_sees_the_feed_concentration() {
    for variant in [Variant::AttentionNode, Variant::Node, Variant::Mlp] {
        for (level, scale_free) in [
            (FeedLevel::None, true),
            (FeedLevel::Log { c_ref_mol_m3: 30.0 }, false),
        ] {
            let cfg = ModelConfig {
                variant,
                feed_level: level,
                ..small(Variant::AttentionNode, Electroneutrality::Hard, rk4(4))
            };
            let (m, st) = build(cfg.clone(), 5);
            let batch = synthetic::batch(&cfg, 6, 8);
            let mut dense = batch.clone();
            dense.feed_mol_m3.mapv_inplace(|c| 10.0 * c);
            let (a, b) = (
                m.predict(&st, &batch).unwrap().rejection,
                m.predict(&st, &dense).unwrap().rejection,
            );
            let diff = a
                .iter()
                .zip(b.iter())
                .filter(|(x, _)| x.is_finite())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            if scale_free {
                assert!(diff < 1e-12, "{variant:?} {level:?}: {diff:e}");
            } else {
                assert!(diff > 1e-4, "{variant:?} {level:?}: {diff:e}");
            }
        }
    }
}
