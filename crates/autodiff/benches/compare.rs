//! Side-by-side comparison, as BENCH.md asks: every candidate runs in the same process,
//! interleaved round-robin (so load from other processes hits all of them alike), and the
//! report gives medians over rounds and ratios. It also counts heap allocations during the
//! timed tape steps (a reused tape must make none).
//!
//! Run: `cargo bench -p ionode-autodiff --bench compare` (about 30 s).
//!
//! FLOPs are matmul FLOPs (2 m n k per product). Tape "backward" is the reverse sweep plus
//! the write-back of parameter gradients, on a recorded forward; "fwd+bwd" is a whole step
//! on a reused tape (clear, record, backward, write-back).

mod common;
#[path = "../tests/common/mod.rs"]
mod test_common;

use common::{values, Attention, Mlp};
use ionode_autodiff::__bench::Gemm;
use ionode_autodiff::{fastmath, ParamStore, Tape};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, Array3, Axis};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use test_common::mini::Mini;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: usize = 15;
const ROUND_SECONDS: f64 = 0.02;

struct Candidate<'a> {
    name: String,
    flops: f64,
    /// Whether allocations during its timed runs are reported (tape steps).
    count_allocs: bool,
    run: Box<dyn FnMut() + 'a>,
    iters: usize,
    times: Vec<f64>,
    allocs: usize,
}

fn cand<'a>(name: &str, flops: u64, count_allocs: bool, run: impl FnMut() + 'a) -> Candidate<'a> {
    Candidate {
        name: name.to_string(),
        flops: flops as f64,
        count_allocs,
        run: Box::new(run),
        iters: 1,
        times: Vec::new(),
        allocs: 0,
    }
}

/// Calibrate each candidate to ~ROUND_SECONDS per round, then interleave the rounds.
fn run_group(title: &str, cands: &mut [Candidate<'_>]) {
    for c in cands.iter_mut() {
        (c.run)(); // warm-up (first step allocates the tape's buffers)
        let s = Instant::now();
        (c.run)();
        let t = s.elapsed().as_secs_f64().max(1e-7);
        c.iters = ((ROUND_SECONDS / t) as usize).clamp(1, 100_000);
    }
    for _ in 0..ROUNDS {
        for c in cands.iter_mut() {
            let a0 = ALLOCS.load(Ordering::Relaxed);
            let s = Instant::now();
            for _ in 0..c.iters {
                (c.run)();
            }
            let t = s.elapsed().as_secs_f64() / c.iters as f64;
            c.allocs += ALLOCS.load(Ordering::Relaxed) - a0;
            c.times.push(t);
        }
    }
    println!("\n## {title}\n");
    println!("| candidate | median | GFLOP/s | allocations per step |");
    println!("|---|---:|---:|---:|");
    for c in cands.iter_mut() {
        c.times.sort_by(f64::total_cmp);
        let med = c.times[c.times.len() / 2];
        let gf = if c.flops > 0.0 {
            format!("{:.1}", c.flops / med / 1e9)
        } else {
            "-".into()
        };
        let al = if c.count_allocs {
            format!("{}", c.allocs as f64 / (ROUNDS * c.iters) as f64)
        } else {
            "-".into()
        };
        println!("| {} | {} | {gf} | {al} |", c.name, fmt_t(med));
    }
}

fn median(c: &Candidate<'_>) -> f64 {
    c.times[c.times.len() / 2]
}

fn fmt_t(t: f64) -> String {
    if t < 1e-6 {
        format!("{:.0} ns", t * 1e9)
    } else if t < 1e-3 {
        format!("{:.1} µs", t * 1e6)
    } else {
        format!("{:.2} ms", t * 1e3)
    }
}

fn mlp_group(batch: usize) {
    let fwd = Mlp::new(batch, 64);
    let mut bwd = Mlp::new(batch, 64);
    let mut step = Mlp::new(batch, 64);
    let (f, b) = (fwd.forward_flops(), fwd.backward_flops());
    let (mut t1, mut t2, mut t3) = (Tape::new(), Tape::new(), Tape::new());
    let loss = bwd.loss(&mut t2).unwrap();
    let stats = t2.stats();
    // ndarray: the same products into preallocated outputs.
    let w: Vec<Array2<f64>> = (0..5)
        .map(|l| Array2::from_shape_vec((64, 64), values(64 * 64, l, 0.2)).unwrap())
        .collect();
    let mut acts: Vec<Array2<f64>> = (0..6)
        .map(|l| {
            Array2::from_shape_vec((batch, 64), values(batch * 64, 10 + l as u64, 1.0)).unwrap()
        })
        .collect();
    let grads: Vec<Array2<f64>> = (0..6)
        .map(|l| {
            Array2::from_shape_vec((batch, 64), values(batch * 64, 20 + l as u64, 1.0)).unwrap()
        })
        .collect();
    let (mut dx, mut dw) = (
        Array2::<f64>::zeros((batch, 64)),
        Array2::<f64>::zeros((64, 64)),
    );
    let mut acts2 = acts.clone();
    let mut cands = vec![
        cand("tape forward", f, true, || {
            t1.clear();
            black_box(fwd.loss(&mut t1).unwrap());
        }),
        cand("tape backward", b, true, || {
            bwd.store.zero_grad();
            t2.backward_into(black_box(loss), &mut bwd.store).unwrap();
        }),
        cand("tape forward+backward", f + b, true, || {
            t3.clear();
            let l = step.loss(&mut t3).unwrap();
            step.store.zero_grad();
            t3.backward_into(l, &mut step.store).unwrap();
        }),
        cand("ndarray forward products", f, false, || {
            for l in 0..5 {
                let (lo, hi) = acts.split_at_mut(l + 1);
                general_mat_mul(1.0, &lo[l], &w[l], 0.0, &mut hi[0]);
            }
            black_box(&acts[5]);
        }),
        cand("ndarray forward+backward products", f + b, false, || {
            for l in 0..5 {
                let (lo, hi) = acts2.split_at_mut(l + 1);
                general_mat_mul(1.0, &lo[l], &w[l], 0.0, &mut hi[0]);
            }
            for l in (0..5).rev() {
                general_mat_mul(1.0, &acts2[l].t(), &grads[l + 1], 1.0, &mut dw);
                if l > 0 {
                    general_mat_mul(1.0, &grads[l + 1], &w[l].t(), 1.0, &mut dx);
                }
            }
            black_box((&dx, &dw));
        }),
    ];
    run_group(
        &format!("5-layer tanh MLP, width 64, batch {batch} (forward {f} FLOPs, backward {b})"),
        &mut cands,
    );
    let m: Vec<f64> = cands.iter().map(median).collect();
    println!(
        "\nbackward / forward = {:.2}; tape / ndarray FLOP rate: forward {:.0}%, forward+backward {:.0}%",
        m[1] / m[0],
        100.0 * m[3] / m[0],
        100.0 * m[4] / m[2]
    );
    println!("tape per step: {stats:?}");
}

fn attention_group() {
    let batch = 64;
    let (a1, mut a2, mut a3) = (
        Attention::new(batch, 7, 16),
        Attention::new(batch, 7, 16),
        Attention::new(batch, 7, 16),
    );
    let f = a1.forward_flops();
    let (mut t1, mut t2, mut t3) = (Tape::new(), Tape::new(), Tape::new());
    let loss = a2.loss(&mut t2).unwrap();
    let stats = t2.stats();
    let (b, s, d) = (batch, 7usize, 16usize);
    let tokens = Array2::from_shape_vec((b * s, 3), values(b * s * 3, 1, 1.0)).unwrap();
    let we = Array2::from_shape_vec((3, d), values(3 * d, 2, 0.5)).unwrap();
    let wq = Array2::from_shape_vec((d, d), values(d * d, 3, 0.4)).unwrap();
    let mut emb = Array2::<f64>::zeros((b * s, d));
    let mut qkv: Vec<Array2<f64>> = (0..3).map(|_| Array2::zeros((b * s, d))).collect();
    let mut scores = Array3::<f64>::zeros((b, s, s));
    let mut ctx = Array3::<f64>::zeros((b, s, d));
    let mut cands = vec![
        cand("tape forward", f, true, || {
            t1.clear();
            black_box(a1.loss(&mut t1).unwrap());
        }),
        cand("tape backward", 2 * f, true, || {
            a2.store.zero_grad();
            t2.backward_into(black_box(loss), &mut a2.store).unwrap();
        }),
        cand("tape forward+backward", 3 * f, true, || {
            t3.clear();
            let l = a3.loss(&mut t3).unwrap();
            a3.store.zero_grad();
            t3.backward_into(l, &mut a3.store).unwrap();
        }),
        cand("ndarray forward products only", f, false, || {
            general_mat_mul(1.0, &tokens, &we, 0.0, &mut emb);
            for m in qkv.iter_mut() {
                general_mat_mul(1.0, &emb, &wq, 0.0, m);
            }
            let q3 = qkv[0].view().into_shape_with_order((b, s, d)).unwrap();
            let k3 = qkv[1].view().into_shape_with_order((b, s, d)).unwrap();
            let v3 = qkv[2].view().into_shape_with_order((b, s, d)).unwrap();
            for i in 0..b {
                let mut sc = scores.index_axis_mut(Axis(0), i);
                let (qi, ki) = (q3.index_axis(Axis(0), i), k3.index_axis(Axis(0), i));
                general_mat_mul(1.0, &qi, &ki.t(), 0.0, &mut sc);
                let mut cx = ctx.index_axis_mut(Axis(0), i);
                let (si, vi) = (scores.index_axis(Axis(0), i), v3.index_axis(Axis(0), i));
                general_mat_mul(1.0, &si, &vi, 0.0, &mut cx);
            }
            black_box(&ctx);
        }),
    ];
    run_group(
        &format!("attention block, batch {batch}, S = 7, d = 16 (forward {f} FLOPs)"),
        &mut cands,
    );
    let m: Vec<f64> = cands.iter().map(median).collect();
    println!(
        "\nbackward / forward = {:.2}; tape forward (all ops) / ndarray products-only FLOP rate: {:.0}%",
        m[1] / m[0],
        100.0 * m[3] / m[0]
    );
    println!("tape per step: {stats:?}");
}

fn kernel_group() {
    let shapes = [
        (64, 64, 64),
        (1024, 64, 64),
        (1024, 113, 64),
        (448, 16, 16),
        (7, 16, 7),
    ];
    let mut data = Vec::new();
    for &(m, k, n) in &shapes {
        let a = values(m * k, 1, 1.0);
        let b = values(k * n, 2, 1.0);
        let aa = Array2::from_shape_vec((m, k), a.clone()).unwrap();
        let bb = Array2::from_shape_vec((k, n), b.clone()).unwrap();
        data.push((
            m,
            k,
            n,
            a,
            b,
            aa,
            bb,
            vec![0.0; m * n],
            Array2::<f64>::zeros((m, n)),
            Gemm::default(),
        ));
    }
    let x = values(65536, 3, 3.0);
    let (mut y1, mut y2) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    let mut cands = Vec::new();
    for (m, k, n, a, b, aa, bb, out, cc, gemm) in data.iter_mut() {
        let (m, k, n) = (*m, *k, *n);
        let fl = (2 * m * n * k) as u64;
        let (a, b, aa, bb) = (&*a, &*b, &*aa, &*bb);
        cands.push(cand(
            &format!("tape GEMM {m}x{k}x{n}"),
            fl,
            true,
            move || gemm.matmul((m, n, k), black_box(a), b, out),
        ));
        cands.push(cand(
            &format!("ndarray {m}x{k}x{n}"),
            fl,
            false,
            move || general_mat_mul(1.0, black_box(aa), bb, 0.0, cc),
        ));
    }
    cands.push(cand("tanh vectorised (65536)", 0, true, || {
        fastmath::tanh_slice(&mut y1, black_box(&x))
    }));
    cands.push(cand("tanh libm (65536)", 0, false, || {
        for (o, v) in y2.iter_mut().zip(black_box(&x)) {
            *o = v.tanh();
        }
    }));
    run_group(
        "kernels: the tape's GEMM vs ndarray (matrixmultiply); tanh",
        &mut cands,
    );
}

fn rk4_group() {
    let mut store = ParamStore::new();
    let mini = Mini::new(&mut store, 1, (64, 7, 16, 64), 16);
    let mut store2 = store.clone();
    let (mut t1, mut t2) = (Tape::new(), Tape::new());
    let loss = mini.loss(&mut t2, &store2).unwrap();
    let stats = t2.stats();
    let mut cands = vec![
        cand("tape forward", 0, true, || {
            t1.clear();
            black_box(mini.loss(&mut t1, &store).unwrap());
        }),
        cand("tape backward", 0, true, || {
            store2.zero_grad();
            t2.backward_into(black_box(loss), &mut store2).unwrap();
        }),
    ];
    run_group(
        "RK4 mini attention-NODE (tests/common/mini.rs: attention + tanh MLP 113-64-64-7 + projector), batch 64, 16 RK4 steps",
        &mut cands,
    );
    let m: Vec<f64> = cands.iter().map(median).collect();
    println!("\nbackward / forward = {:.2}", m[1] / m[0]);
    println!("tape per step: {stats:?}");
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no options.
    println!("# ionode-autodiff side-by-side comparison ({ROUNDS} interleaved rounds, medians)");
    mlp_group(64);
    mlp_group(1024);
    attention_group();
    rk4_group();
    kernel_group();
}
