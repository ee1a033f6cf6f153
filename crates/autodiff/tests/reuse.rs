//! A reused tape gives exactly the gradients of a new one.
//!
//! Backward writes an input's gradient region on its first touch instead of zeroing it and
//! adding (see `backward.rs`), so on a reused tape every rule that claims to overwrite must
//! write every element of the region: a missed element would keep the previous step's
//! value. This drives one graph through every op with one set of inputs, then, on the same
//! tape, with another, and compares every input's gradient with a fresh tape's.

mod common;
use common::every_op::{grads, inputs, Dims};
use ionode_autodiff::Tape;

/// Small enough to be quick, with a masked token.
const DIMS: Dims = (3, 4, 5);

#[test]
fn a_reused_tape_gives_the_gradients_of_a_new_one() {
    let (first, second) = (inputs(1, DIMS), inputs(2, DIMS));
    let mut reused = Tape::new();
    let before = grads(&mut reused, DIMS, &first).1;
    reused.clear();
    let again = grads(&mut reused, DIMS, &second).1;
    let fresh = grads(&mut Tape::new(), DIMS, &second).1;
    assert_ne!(
        before, fresh,
        "the two input sets must give different gradients"
    );
    for (i, (a, f)) in again.iter().zip(&fresh).enumerate() {
        assert!(f.iter().all(|g| g.is_finite()), "input {i}: {f:?}");
        assert_eq!(a, f, "input {i}: reused tape vs new tape");
    }
}
