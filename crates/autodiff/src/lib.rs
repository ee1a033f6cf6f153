//! Placeholder; the crate doc is written below once the API settles.
#![forbid(unsafe_op_in_unsafe_fn)]

mod backward;
mod error;
pub mod fastmath;
mod gemm;
pub mod gradcheck;
mod ops;
mod params;
mod shape;
mod tape;

pub use error::{AdError, Result};
pub use params::{ParamId, ParamStore};
pub use shape::{Shape, MAX_RANK};
pub use tape::{Tape, TapeStats, Var};

/// Internals exposed only so the benchmarks can time them in isolation. Not a stable API.
#[doc(hidden)]
pub mod __bench {
    /// The tape's GEMM with its own packing buffers.
    #[derive(Default)]
    pub struct Gemm(crate::gemm::Gemm);

    impl Gemm {
        /// `c = a b` for row-major `a` (m x k), `b` (k x n), `c` (m x n).
        pub fn matmul(
            &mut self,
            (m, n, k): (usize, usize, usize),
            a: &[f64],
            b: &[f64],
            c: &mut [f64],
        ) {
            let cm = crate::gemm::MatMut {
                data: c,
                rs: n,
                cs: 1,
            };
            self.0.run(
                (m, n, k),
                crate::gemm::MatRef::rows(a, k),
                crate::gemm::MatRef::rows(b, n),
                cm,
                false,
            );
        }
    }
}
