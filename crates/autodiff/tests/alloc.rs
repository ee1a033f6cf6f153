//! A reused tape allocates nothing after the first step.
//!
//! This binary installs a counting global allocator (counted per thread, so the test
//! harness's own threads do not interfere) and records allocations while steps 2 and 3 of
//! an identical forward + backward + parameter-gradient accumulation run.

mod common;
use common::mini::Mini;
use ionode_autodiff::{ParamId, ParamStore, Result, Tape, Var};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: TLS may already be gone while a thread shuts down.
    let _ = COUNT.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call forwards to the system allocator unchanged; the counter is a
// const-initialised thread-local `Cell` that needs no allocation of its own.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    COUNT.with(|c| c.get())
}

/// A 5-layer tanh MLP (width 64), as in the benchmark.
fn mlp_loss(t: &mut Tape, store: &ParamStore, ids: &[ParamId], x: &[f64]) -> Result<Var> {
    let mut h = t.constant(&[x.len() / 64, 64], x)?;
    for (l, wb) in ids.chunks(2).enumerate() {
        let (w, b) = (t.param(store, wb[0]), t.param(store, wb[1]));
        h = t.linear(h, w, Some(b))?;
        if l < 4 {
            h = t.tanh(h)?;
        }
    }
    let sq = t.square(h)?;
    t.mean(sq)
}

#[test]
fn reused_mlp_tape_allocates_nothing_after_the_first_step() {
    let mut store = ParamStore::new();
    let mut ids = Vec::new();
    for l in 0..5 {
        let w: Vec<f64> = (0..64 * 64)
            .map(|i| ((i * 37 + l) % 101) as f64 / 800.0 - 0.06)
            .collect();
        ids.push(store.add(format!("w{l}"), &[64, 64], &w).unwrap());
        ids.push(store.add(format!("b{l}"), &[64], &[0.01; 64]).unwrap());
    }
    let x: Vec<f64> = (0..64 * 64).map(|i| (i as f64 * 0.37).sin()).collect();
    let mut tape = Tape::new();
    let mut counts = Vec::with_capacity(3);
    for _ in 0..3 {
        let before = allocations();
        tape.clear();
        store.zero_grad();
        let loss = mlp_loss(&mut tape, &store, &ids, &x).unwrap();
        tape.backward_into(loss, &mut store).unwrap();
        counts.push(allocations() - before);
    }
    eprintln!("mlp: allocations per step {counts:?}, {:?}", tape.stats());
    assert!(counts[0] > 0);
    assert_eq!(&counts[1..], &[0, 0], "steps 2 and 3 must not allocate");
}

#[test]
fn reused_tape_allocates_nothing_after_the_first_step() {
    // Attention-NODE mini model in RK4 (every op kind the model uses).
    let mut store = ParamStore::new();
    let mini = Mini::new(&mut store, 5, (16, 7, 16, 64), 4);
    let mut tape = Tape::new();
    let mut counts = Vec::with_capacity(3);
    for _ in 0..3 {
        let before = allocations();
        tape.clear();
        store.zero_grad();
        let loss = mini.loss(&mut tape, &store).unwrap();
        tape.backward_into(loss, &mut store).unwrap();
        counts.push(allocations() - before);
    }
    eprintln!(
        "rk4 attention model: allocations per step {counts:?}, {:?}",
        tape.stats()
    );
    assert!(
        counts[0] > 0,
        "the counter must see the first step's allocations"
    );
    assert_eq!(&counts[1..], &[0, 0], "steps 2 and 3 must not allocate");
}
