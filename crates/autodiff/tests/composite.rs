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
