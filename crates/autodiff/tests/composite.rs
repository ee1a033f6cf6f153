//! Whole-function checks: a small MLP with attention and the projector inside an unrolled
//! RK4 loop, against finite differences (every parameter, and random directions).

mod common;
use common::mini::Mini;
use common::{randn, rng};
use ionode_autodiff::gradcheck::{check_direction, check_params, GradCheck};
use ionode_autodiff::{ParamStore, Tape};

#[test]
fn rk4_attention_projector_every_parameter() {
    let mut store = ParamStore::new();
    let mini = Mini::new(&mut store, 11, (3, 4, 4, 8), 4);
    let mut tape = Tape::new();
    let rep = check_params(&mut tape, &mut store, &GradCheck::default(), |t, s| {
        mini.loss(t, s)
    })
    .unwrap();
    assert!(rep.passed, "{rep:#?}");
    assert_eq!(rep.checked, store.num_scalars());
    assert!(store.grads().iter().filter(|g| g.abs() > 1e-8).count() > store.num_scalars() / 2);
    eprintln!(
        "composite: {} scalars, max abs err {:.2e}, max rel err {:.2e}, {} nodes",
        rep.checked,
        rep.max_abs_err,
        rep.max_rel_err,
        tape.len()
    );
}

#[test]
fn rk4_attention_projector_random_directions() {
    let mut store = ParamStore::new();
    let mini = Mini::new(&mut store, 12, (4, 5, 4, 8), 4);
    let mut tape = Tape::new();
    let mut r = rng(99);
    for _ in 0..5 {
        let dir = randn(&mut r, store.num_scalars());
        let rep = check_direction(
            &mut tape,
            &mut store,
            &GradCheck::default(),
            &dir,
            |t, s| mini.loss(t, s),
        )
        .unwrap();
        assert!(rep.passed, "{rep:#?}");
        assert!(rep.rel_err < 1e-6, "{rep:#?}");
    }
}

#[test]
fn projected_dynamics_conserve_charge() {
    // With the projector every RK4 increment is orthogonal to w = z * m, so the charge
    // w.(x_T - x_0) must stay at rounding level.
    let mut store = ParamStore::new();
    let mini = Mini::new(&mut store, 13, (4, 5, 4, 8), 4);
    let mut tape = Tape::new();
    let (x, _) = mini.run(&mut tape, &store).unwrap();
    let drift = mini.neutrality_drift(tape.value(x));
    assert!(drift < 1e-12, "charge drift {drift:e}");
    // And the dynamics are not trivially zero.
    assert!(mini.neutrality_drift(tape.value(x)) < mini.movement(tape.value(x)));
}

/// Gradient checkpointing with `backward_seeded`: recomputing one RK4 step at a time in
/// reverse (holding one step's tape) gives the same parameter gradients as recording the
/// whole trajectory on one tape.
#[test]
fn checkpointed_rk4_matches_monolithic_tape() {
    use ionode_autodiff::{ParamId, Result, Var};
    let (b, s, h, steps, dt) = (3, 4, 6, 5, 0.1);
    let mut r = rng(21);
    let mut store = ParamStore::new();
    let w1 = store.add("w1", &[s, h], &randn(&mut r, s * h)).unwrap();
    let b1 = store.add("b1", &[h], &randn(&mut r, h)).unwrap();
    let w2 = store.add("w2", &[h, s], &randn(&mut r, h * s)).unwrap();
    let ids = [w1, b1, w2];
    let x0 = randn(&mut r, b * s);
    let target = randn(&mut r, b * s);

    fn field(t: &mut Tape, p: &[Var; 3], x: Var) -> Result<Var> {
        let z = t.linear(x, p[0], Some(p[1]))?;
        let z = t.tanh(z)?;
        t.linear(z, p[2], None)
    }
    fn rk4_step(t: &mut Tape, p: &[Var; 3], x: Var, dt: f64) -> Result<Var> {
        let k1 = field(t, p, x)?;
        let a = t.scale(k1, dt / 2.0)?;
        let x2 = t.add(x, a)?;
        let k2 = field(t, p, x2)?;
        let a = t.scale(k2, dt / 2.0)?;
        let x3 = t.add(x, a)?;
        let k3 = field(t, p, x3)?;
        let a = t.scale(k3, dt)?;
        let x4 = t.add(x, a)?;
        let k4 = field(t, p, x4)?;
        let k23 = t.add(k2, k3)?;
        let k23 = t.scale(k23, 2.0)?;
        let k14 = t.add(k1, k4)?;
        let sum = t.add(k14, k23)?;
        let inc = t.scale(sum, dt / 6.0)?;
        t.add(x, inc)
    }
    let params = |t: &mut Tape, st: &ParamStore, ids: &[ParamId; 3]| -> [Var; 3] {
        std::array::from_fn(|i| t.param(st, ids[i]))
    };
    let loss_of = |t: &mut Tape, x: Var| -> Result<Var> {
        let tg = t.constant(&[b, s], &target)?;
        let e = t.sub(x, tg)?;
        let e = t.square(e)?;
        t.sum(e)
    };

    // Monolithic.
    let mut tape = Tape::new();
    let p = params(&mut tape, &store, &ids);
    let mut x = tape.constant(&[b, s], &x0).unwrap();
    for _ in 0..steps {
        x = rk4_step(&mut tape, &p, x, dt).unwrap();
    }
    let loss = loss_of(&mut tape, x).unwrap();
    store.zero_grad();
    tape.backward_into(loss, &mut store).unwrap();
    let mono = store.grads().to_vec();
    let mono_nodes = tape.len();

    // Checkpointed: forward without gradients keeping only the states, then step back.
    let mut states = vec![x0.clone()];
    for _ in 0..steps {
        tape.clear();
        let xn = tape.no_grad(|t| {
            let p = params(t, &store, &ids);
            let x = t.constant(&[b, s], states.last().unwrap()).unwrap();
            rk4_step(t, &p, x, dt).unwrap()
        });
        states.push(tape.value(xn).to_vec());
    }
    store.zero_grad();
    tape.clear();
    let xt = tape.input(&[b, s], &states[steps]).unwrap();
    let l = loss_of(&mut tape, xt).unwrap();
    tape.backward(l).unwrap();
    let mut adjoint = tape.grad(xt).unwrap().to_vec();
    let mut max_nodes = 0;
    for n in (0..steps).rev() {
        tape.clear();
        let p = params(&mut tape, &store, &ids);
        let xn = tape.input(&[b, s], &states[n]).unwrap();
        let xn1 = rk4_step(&mut tape, &p, xn, dt).unwrap();
        assert!(tape.backward_seeded(xn1, &adjoint[..2]).is_err());
        tape.backward_seeded(xn1, &adjoint).unwrap();
        tape.accumulate_param_grads(&mut store).unwrap();
        adjoint = tape.grad(xn).unwrap().to_vec();
        max_nodes = max_nodes.max(tape.len());
    }
    for (a, m) in store.grads().iter().zip(&mono) {
        assert!((a - m).abs() <= 1e-12 * (1.0 + m.abs()), "{a} vs {m}");
    }
    assert!(
        max_nodes * steps <= mono_nodes + steps * 3,
        "{max_nodes} x {steps} vs {mono_nodes}"
    );
}
