//! Which instruction-set build of the kernels runs, and the rule that makes the choice
//! invisible in the results.
//!
//! The GEMM and the vectorised `exp`/`tanh` ([`crate::fastmath`]) are compiled three times:
//! portable code, an AVX2+FMA copy and an AVX-512 copy, picked at run time from what the
//! CPU supports. A run must give the same bits on every machine, so every copy performs the
//! same floating-point operations in the same order:
//!
//! - every product term is one fused multiply-add (`f64::mul_add`) in every copy, the
//!   portable one included (there it is a hardware instruction on aarch64 and on x86-64
//!   CPUs with FMA, a correctly rounded library call elsewhere: slower, never different);
//! - each element of a product is one chain over the depth, in depth order; the copies
//!   differ only in how many such chains they keep in registers at once (the register
//!   tile), never in the order within a chain;
//! - `exp` and `tanh` use no fused operation at all, so LLVM compiles the same
//!   element-wise sequence at any vector width.
//!
//! `tests/kernel_paths.rs` forces each path this CPU has and requires identical values and
//! gradients, bit for bit, for every op and for a whole training step.

use std::sync::atomic::{AtomicU8, Ordering};

/// A build of the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// Portable Rust (whatever the compile target allows).
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512F (and AVX2 and FMA).
    Avx512,
}

impl KernelPath {
    /// Every path, in order of preference from the least to the most capable.
    pub const ALL: [KernelPath; 3] = [KernelPath::Portable, KernelPath::Avx2, KernelPath::Avx512];

    /// The path's name, as `IONODE_KERNEL_PATH` and messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            KernelPath::Portable => "portable",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
        }
    }

    /// The path of that name.
    pub fn from_name(name: &str) -> Option<KernelPath> {
        KernelPath::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether this CPU (and this build) can run the path.
    pub fn is_available(self) -> bool {
        match self {
            KernelPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(ionode_avx512)]
            KernelPath::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The paths this CPU can run.
    pub fn available() -> Vec<KernelPath> {
        KernelPath::ALL
            .into_iter()
            .filter(|p| p.is_available())
            .collect()
    }

    fn code(self) -> u8 {
        match self {
            KernelPath::Portable => 1,
            KernelPath::Avx2 => 2,
            KernelPath::Avx512 => 3,
        }
    }
}

impl std::fmt::Display for KernelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// 0: not forced (the best available path runs); otherwise a [`KernelPath::code`].
static FORCED: AtomicU8 = AtomicU8::new(0);

/// The path the kernels take now: the forced one, or the most capable this CPU has.
pub fn kernel_path() -> KernelPath {
    match FORCED.load(Ordering::Relaxed) {
        1 => KernelPath::Portable,
        2 => KernelPath::Avx2,
        3 => KernelPath::Avx512,
        _ => best(),
    }
}

fn best() -> KernelPath {
    *KernelPath::ALL
        .iter()
        .rev()
        .find(|p| p.is_available())
        .unwrap_or(&KernelPath::Portable)
}

/// The path this CPU cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kernel path '{0}' is not supported by this CPU (available: {1})")]
pub struct Unavailable(pub KernelPath, pub String);

/// Makes every kernel take `path` from now on (`None`: the best available again), for the
/// whole process: tapes made afterwards use its GEMM, and `exp`/`tanh` switch at once. The
/// results are the same bits on every path; forcing one is for tests, benchmarks, and
/// anyone checking that claim on their own machine.
pub fn force_kernel_path(path: Option<KernelPath>) -> Result<(), Unavailable> {
    match path {
        None => FORCED.store(0, Ordering::Relaxed),
        Some(p) if p.is_available() => FORCED.store(p.code(), Ordering::Relaxed),
        Some(p) => {
            let names: Vec<&str> = KernelPath::available().iter().map(|p| p.name()).collect();
            return Err(Unavailable(p, names.join(", ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_portable_is_always_there() {
        for p in KernelPath::ALL {
            assert_eq!(KernelPath::from_name(p.name()), Some(p));
        }
        assert_eq!(KernelPath::from_name("sse2"), None);
        assert!(KernelPath::available().contains(&KernelPath::Portable));
        assert!(KernelPath::available().contains(&best()));
    }
}
