//! # ionode-autodiff: a from-scratch reverse-mode tape over small dense f64 tensors
//!
//! The neural ODE of ionode trains on this crate (no ML framework). It is built for the
//! model's workload: batches of a few hundred samples, tensors of rank <= 3 with extents in
//! the tens (7 ion slots, width 16 to 64), thousands of ops per step (an attention block and
//! a 5-layer MLP evaluated 64 times inside an unrolled RK4), in f64, on one CPU core.
//!
//! ## Design
//!
//! * **A Wengert list.** [`Tape`] records nodes in a `Vec`; a [`Var`] is a small `Copy`
//!   handle (node index + the tape's epoch, so handles from another tape or from before a
//!   [`Tape::clear`] are rejected instead of silently aliasing). Each node stores an op enum
//!   with the indices of its operands and any constants it needs (axis, scale, transpose
//!   flags). Backward is one reverse scan over the nodes with a hand-written rule per op,
//!   skipping nodes that need no gradient or do not reach the loss. There is no
//!   `Rc<RefCell>` graph, no boxed closure and no hash map anywhere on the hot path.
//! * **Two arenas.** All node values live in one `Vec<f64>` (each node records an offset),
//!   gradients in a second one with the same layout. Inputs always precede outputs, so an op
//!   reads `vals[..off]` and writes `vals[off..]` through `split_at_mut`, and a backward rule
//!   reads its own gradient above the split and accumulates into its inputs' below it: safe
//!   Rust, no `unsafe`, no reference counting. `reshape` and `detach` are free (the node
//!   aliases its source's storage).
//! * **Reuse without allocation.** [`Tape::clear`] keeps every buffer's capacity (the arenas
//!   keep their high-water length, so not even a zero-fill is repeated), so recording the
//!   same step again allocates nothing; `tests/alloc.rs` proves it with a counting global
//!   allocator (zero allocations in steps 2 and 3 of an RK4 attention model).
//! * **Parameters outside the tape.** A [`ParamStore`] holds named parameters and their
//!   gradients in two flat vectors. [`Tape::param`] copies a parameter in as a leaf;
//!   [`Tape::backward_into`] runs backward and adds each parameter leaf's gradient into the
//!   store. An optimiser (in the `train` crate) updates the flat vectors in one loop
//!   ([`ParamStore::values_and_grads_mut`]).
//! * **Speed.** Matrix products use the crate's own GEMM (packed panels, register tiles,
//!   AVX-512 / AVX2+FMA copies chosen at run time and giving the portable code's bits
//!   ([`isa`]), arbitrary strides so transposes in
//!   backward are free, accumulate-into-output for gradients, a linear layer's bias added
//!   in the write-back) because ndarray's `dot` (matrixmultiply) and the `gemm` crate
//!   allocate on every call. Tiny and shallow products (per-sample attention, K <= 16) skip
//!   packing and run in 4 x 8 register tiles. `benches/gemm_peer.rs` times every product of
//!   the model's training step against the `gemm` crate. `tanh` and `exp` are branch-free
//!   vectorised Cephes approximations (a few ulp; [`fastmath`]); `tanh` is about 12x faster
//!   than libm's.
//! * **Gradients written on first touch.** Backward initialises an input's gradient region
//!   when it first reaches it (cache-hot), not in one sweep over the arena: a rule that
//!   writes every element of the region (products, element-wise ops without broadcasting,
//!   concatenation, projection) stores instead of adding, the others zero it first; nodes
//!   the sweep never reaches are zeroed at the end, so every gradient read is exact
//!   (`tests/reuse.rs`: a reused tape gives a new tape's gradients bit for bit).
//! * **Errors at recording time.** Every op checks shapes when it is recorded and returns
//!   [`AdError`] naming the op and both shapes; a failed op records nothing.
//!
//! ## Ops
//!
//! | group | methods on [`Tape`] |
//! |---|---|
//! | leaves | [`constant`](Tape::constant), [`constant_array`](Tape::constant_array), [`full`](Tape::full), [`scalar`](Tape::scalar), [`mask`](Tape::mask) (from `bool`s), [`input`](Tape::input) (takes a gradient), [`param`](Tape::param) |
//! | elementwise, broadcasting (numpy rules, right-aligned: a row, a column `[B, 1]`, a scalar) | [`add`](Tape::add), [`sub`](Tape::sub), [`mul`](Tape::mul), [`div`](Tape::div) |
//! | elementwise | [`neg`](Tape::neg), [`scale`](Tape::scale), [`add_scalar`](Tape::add_scalar), [`exp`](Tape::exp), [`log`](Tape::log), [`tanh`](Tape::tanh), [`square`](Tape::square), [`sqrt`](Tape::sqrt) |
//! | linear algebra | [`matmul`](Tape::matmul) (2-D, batched 3-D, 3-D by shared 2-D), [`matmul_t`](Tape::matmul_t) (free transposes), [`transpose`](Tape::transpose), [`linear`](Tape::linear) (fused `x W + b` over the last axis, `x` of rank 1 to 3) |
//! | shape | [`reshape`](Tape::reshape), [`concat`](Tape::concat), [`slice`](Tape::slice), [`select`](Tape::select), [`detach`](Tape::detach) |
//! | reductions | [`sum`](Tape::sum), [`mean`](Tape::mean), [`sum_axis`](Tape::sum_axis), [`mean_axis`](Tape::mean_axis), and `_keepdim` variants |
//! | model-specific | [`softmax`](Tape::softmax), [`masked_softmax`](Tape::masked_softmax) (masked entries exactly 0 with exactly 0 gradient; a fully masked row gives zeros, never NaN), [`project_orthogonal`](Tape::project_orthogonal) (`f - w (w.f)/(w.w)` per row; `w` constant; its backward is the projector itself) |
//!
//! Backward: [`Tape::backward`] (scalar loss), [`Tape::backward_into`] (and write parameter
//! gradients to the store), [`Tape::backward_seeded`] (vector-Jacobian product from any node,
//! for gradient checkpointing through long RK4 trajectories).
//! Gradient mode: [`Tape::no_grad`] / [`Tape::set_grad_enabled`]; reading without copying:
//! [`Tape::value`], [`Tape::view`]; gradients: [`Tape::grad`], [`Tape::zero_grad`],
//! [`ParamStore::zero_grad`]. Sizes: [`Tape::stats`].
//!
//! ## Checking gradients
//!
//! [`gradcheck`] compares the tape with central differences (eps 1e-6, atol 1e-5, rtol 1e-3
//! by default), either for every parameter scalar ([`gradcheck::check_params`]) or along
//! random directions ([`gradcheck::check_direction`], two forward passes, for whole models).
//! The loss is given as a closure that records it on a fresh tape from a [`ParamStore`].
//!
//! ## Example
//!
//! ```
//! use ionode_autodiff::{ParamStore, Tape};
//!
//! # fn main() -> ionode_autodiff::Result<()> {
//! let mut params = ParamStore::new();
//! let w = params.add("w", &[2, 3], &[0.1, -0.2, 0.3, 0.4, 0.5, -0.6])?;
//! let b = params.add("b", &[3], &[0.0, 0.1, 0.2])?;
//!
//! let mut tape = Tape::new();
//! for _step in 0..3 {
//!     tape.clear(); // keeps every buffer: no allocation after the first step
//!     params.zero_grad();
//!     let x = tape.constant(&[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])?;
//!     let (wv, bv) = (tape.param(&params, w), tape.param(&params, b));
//!     let h = tape.linear(x, wv, Some(bv))?;
//!     let h = tape.tanh(h)?;
//!     let sq = tape.square(h)?;
//!     let loss = tape.mean(sq)?;
//!     tape.backward_into(loss, &mut params)?;
//!     // An optimiser would update `params.values_and_grads_mut()` here.
//! }
//! assert!(params.grad(w).iter().any(|g| *g != 0.0));
//!
//! // Shape errors name both shapes.
//! let x = tape.constant(&[4, 2], &[0.0; 8])?;
//! let bad = tape.constant(&[3], &[0.0; 3])?;
//! let err = tape.add(x, bad).unwrap_err().to_string();
//! assert!(err.contains("[4, 2]") && err.contains("[3]"));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod backward;
mod broadcast;
mod error;
pub mod fastmath;
mod gemm;
pub mod gradcheck;
pub mod isa;
mod ops;
mod params;
mod shape;
mod tape;

pub use error::{AdError, Result};
pub use isa::{force_kernel_path, kernel_path, KernelPath};
pub use params::{ParamId, ParamStore};
pub use shape::{DimsError, Shape, MAX_RANK};
pub use tape::{Tape, TapeStats, Var};

/// Internals exposed only so the benchmarks can time them in isolation. Not a stable API.
#[doc(hidden)]
pub mod __bench {
    /// The tape's GEMM with its own packing buffers.
    #[derive(Default)]
    pub struct Gemm(crate::gemm::Gemm);

    impl Gemm {
        /// `c += a^T b` for row-major `a` (k x m), `b` (k x n), `c` (m x n): a weight
        /// gradient, the transpose read through strides.
        pub fn matmul_tn_acc(
            &mut self,
            mnk: (usize, usize, usize),
            a: &[f64],
            b: &[f64],
            c: &mut [f64],
        ) {
            let at = crate::gemm::MatRef::rows(a, mnk.0).t();
            self.run(mnk, at, b, c, true);
        }

        /// `c = a b` for row-major `a` (m x k), `b` (k x n), `c` (m x n).
        pub fn matmul(&mut self, mnk: (usize, usize, usize), a: &[f64], b: &[f64], c: &mut [f64]) {
            self.run(mnk, crate::gemm::MatRef::rows(a, mnk.2), b, c, false);
        }

        /// `c (+)= op(a) op(b)` for row-major buffers, `op` transposing when `ta` / `tb`
        /// (a stored `k x m`, b stored `n x k`): every orientation the tape's backward uses.
        #[allow(clippy::too_many_arguments)]
        pub fn product(
            &mut self,
            (m, n, k): (usize, usize, usize),
            (ta, tb): (bool, bool),
            a: &[f64],
            b: &[f64],
            c: &mut [f64],
            accumulate: bool,
        ) {
            use crate::gemm::MatRef;
            let a = if ta {
                MatRef::rows(a, m).t()
            } else {
                MatRef::rows(a, k)
            };
            let b = if tb {
                MatRef::rows(b, k).t()
            } else {
                MatRef::rows(b, n)
            };
            let cm = crate::gemm::MatMut {
                data: c,
                rs: n,
                cs: 1,
            };
            self.0.run((m, n, k), a, b, cm, accumulate);
        }

        fn run(
            &mut self,
            (m, n, k): (usize, usize, usize),
            a: crate::gemm::MatRef<'_>,
            b: &[f64],
            c: &mut [f64],
            accumulate: bool,
        ) {
            let cm = crate::gemm::MatMut {
                data: c,
                rs: n,
                cs: 1,
            };
            self.0.run(
                (m, n, k),
                a,
                crate::gemm::MatRef::rows(b, n),
                cm,
                accumulate,
            );
        }
    }
}
