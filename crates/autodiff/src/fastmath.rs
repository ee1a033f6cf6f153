//! Branch-free `exp` and `tanh` that LLVM vectorises.
//!
//! libm's `tanh` costs ~10-20 ns per call and cannot be vectorised; in a width-64 tanh MLP
//! that is as much time as the matmuls themselves. These versions use the Cephes rational
//! approximations (relative error a few ulp, checked against std over wide ranges in the
//! tests) written without branches, so a slice loop compiles to SIMD code; on x86-64 an
//! AVX-512 or AVX2 build of the loop runs when the CPU has it ([`crate::isa`]). No fused
//! multiply-add is used, so results are bit-identical whichever build runs.

// Coefficients are quoted digit for digit from Cephes so they can be checked against it.
#![allow(clippy::excessive_precision)]

/// 1.5 * 2^52: adding it rounds a float (|v| < 2^51) to an integer held in the low mantissa bits.
const MAGIC: f64 = 6755399441055744.0;
const LOG2E: f64 = std::f64::consts::LOG2_E;
/// ln 2 split so `n * LN2_HI` is exact for |n| < 2^11 (Cephes C1, C2).
const LN2_HI: f64 = 6.931_457_519_531_25e-1;
const LN2_LO: f64 = 1.428_606_820_309_417_232e-6;

/// `e^r` for |r| <= ln2/2 (Cephes Padé form).
#[inline(always)]
fn exp_reduced(r: f64) -> f64 {
    const P0: f64 = 1.261_771_930_748_105_908_78e-4;
    const P1: f64 = 3.029_944_077_074_419_613e-2;
    const P2: f64 = 9.999_999_999_999_999_999_1e-1;
    const Q0: f64 = 3.001_985_051_386_644_550_42e-6;
    const Q1: f64 = 2.524_483_403_496_841_041_92e-3;
    const Q2: f64 = 2.272_655_482_081_550_287_66e-1;
    const Q3: f64 = 2.0;
    let rr = r * r;
    let px = r * ((P0 * rr + P1) * rr + P2);
    let qx = ((Q0 * rr + Q1) * rr + Q2) * rr + Q3;
    1.0 + 2.0 * px / (qx - px)
}

/// `2^n` for an integer `n` in the normal exponent range.
#[inline(always)]
fn pow2(n: i64) -> f64 {
    f64::from_bits(((n + 1023) as u64) << 52)
}

/// `e^x` for all f64 (overflow to +inf, underflow through subnormals to exactly 0, NaN kept).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    // Below -760 the result rounds to 0; above 710 it is inf. Clamping keeps n in i64 range.
    let xc = x.clamp(-760.0, 710.0);
    let t = xc * LOG2E + MAGIC;
    let nf = t - MAGIC;
    let r = (xc - nf * LN2_HI) - nf * LN2_LO;
    let n = t.to_bits() as i64 - MAGIC.to_bits() as i64;
    // Two factors so both stay normal: the product then rounds correctly into the
    // subnormal range or overflows to inf.
    let n1 = n >> 1;
    exp_reduced(r) * pow2(n1) * pow2(n - n1)
}

/// `tanh(x)` for all f64 (NaN kept, +-inf give +-1, -0 stays -0).
///
/// Both branches are written as a fraction and selected *before* the one division, because
/// division throughput is what limits a vectorised tanh:
/// - |x| < 0.625: `x + x z P(z)/Q(z)` with `z = x^2`, i.e. `(x Q + x z P) / Q`;
/// - |x| >= 0.625: `1 - 2/(e^{2|x|} + 1)` with `e^{2|x|} = 2^n (q + p)/(q - p)` (the Padé
///   form of `exp_reduced`), i.e. `(N - 2D)/N` with `D = q - p`, `N = 2^n (q + p) + D`.
///   `N - 2D = D (e - 1)` with `e >= 3.49` here, so there is no cancellation.
#[inline(always)]
pub fn tanh(x: f64) -> f64 {
    const P0: f64 = -9.643_991_794_250_522_386_28e-1;
    const P1: f64 = -9.928_772_310_019_185_865_64e1;
    const P2: f64 = -1.614_687_684_417_084_479_52e3;
    const Q0: f64 = 1.128_116_784_916_329_314_02e2;
    const Q1: f64 = 2.235_488_390_601_004_485_83e3;
    const Q2: f64 = 4.844_063_053_251_254_860_48e3;
    const EP0: f64 = 1.261_771_930_748_105_908_78e-4;
    const EP1: f64 = 3.029_944_077_074_419_613e-2;
    const EP2: f64 = 9.999_999_999_999_999_999_1e-1;
    const EQ0: f64 = 3.001_985_051_386_644_550_42e-6;
    const EQ1: f64 = 2.524_483_403_496_841_041_92e-3;
    const EQ2: f64 = 2.272_655_482_081_550_287_66e-1;
    const EQ3: f64 = 2.0;
    let a = x.abs();
    // Small branch.
    let z = x * x;
    let sq = ((z + Q0) * z + Q1) * z + Q2;
    let sn = x * sq + x * z * ((P0 * z + P1) * z + P2);
    // Large branch: tanh(20) already rounds to 1, so clamp to keep 2^n small.
    let y = 2.0 * a.min(20.0);
    let t = y * LOG2E + MAGIC;
    let nf = t - MAGIC;
    let r = (y - nf * LN2_HI) - nf * LN2_LO;
    let n = t.to_bits() as i64 - MAGIC.to_bits() as i64;
    let rr = r * r;
    let p = r * ((EP0 * rr + EP1) * rr + EP2);
    let q = ((EQ0 * rr + EQ1) * rr + EQ2) * rr + EQ3;
    let d = q - p;
    let big_den = pow2(n) * (q + p) + d;
    let big_num = (big_den - 2.0 * d).copysign(x);
    // NaN fails the comparison and takes the small branch, which propagates it.
    let (num, den) = if a >= 0.625 {
        (big_num, big_den)
    } else {
        (sn, sq)
    };
    // copysign keeps -0 (0 * Q + ... gives +0); tanh never changes sign, so it is exact.
    (num / den).copysign(x)
}

/// Runs `body` compiled for the current [`crate::isa::kernel_path`]: the same operations
/// at another vector width (no fused multiply-add in any copy, so the same bits).
macro_rules! on_kernel_path {
    ($body:ident($($arg:ident: $ty:ty),*)) => {{
        match crate::isa::kernel_path() {
            #[cfg(ionode_avx512)]
            crate::isa::KernelPath::Avx512 => {
                #[target_feature(enable = "avx512f,avx2")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: `kernel_path` only returns a path this CPU supports.
                unsafe { avx512($($arg),*) }
            }
            #[cfg(target_arch = "x86_64")]
            crate::isa::KernelPath::Avx2 => {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                // SAFETY: as above.
                unsafe { avx2($($arg),*) }
            }
            _ => $body($($arg),*),
        }
    }};
}

/// `out[i] = exp(x[i])` (vectorised).
pub fn exp_slice(out: &mut [f64], x: &[f64]) {
    #[inline(always)]
    fn body(out: &mut [f64], x: &[f64]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = exp(v);
        }
    }
    on_kernel_path!(body(out: &mut [f64], x: &[f64]))
}

/// `out[i] = tanh(x[i])` (vectorised).
pub fn tanh_slice(out: &mut [f64], x: &[f64]) {
    #[inline(always)]
    fn body(out: &mut [f64], x: &[f64]) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = tanh(v);
        }
    }
    on_kernel_path!(body(out: &mut [f64], x: &[f64]))
}

/// In-place `v[i] = exp(v[i])` (vectorised).
pub fn exp_inplace(v: &mut [f64]) {
    #[inline(always)]
    fn body(v: &mut [f64]) {
        for x in v.iter_mut() {
            *x = exp(*x);
        }
    }
    on_kernel_path!(body(v: &mut [f64]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / b.abs().max(f64::MIN_POSITIVE)).abs() / f64::EPSILON
    }

    #[test]
    fn exp_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = -745.0;
        while x < 709.7 {
            let (got, want) = (exp(x), x.exp());
            if want > 1e-300 {
                worst = worst.max(ulps(got, want));
            } else {
                assert!((got - want).abs() <= 1e-300, "{x}: {got} vs {want}");
            }
            x += 0.0137;
        }
        assert!(worst < 4.0, "exp worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-800.0), 0.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn tanh_matches_std() {
        let mut worst: f64 = 0.0;
        let mut x = -25.0;
        while x < 25.0 {
            for v in [x, x * 1e-3, x * 1e-9] {
                worst = worst.max(ulps(tanh(v), v.tanh()));
            }
            x += 0.00731;
        }
        assert!(worst < 4.0, "tanh worst error {worst} ulp");
        assert_eq!(tanh(0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(tanh(-0.0).to_bits(), (-0.0f64).to_bits());
        assert_eq!(tanh(f64::INFINITY), 1.0);
        assert_eq!(tanh(f64::NEG_INFINITY), -1.0);
        assert!(tanh(f64::NAN).is_nan());
        let xs: Vec<f64> = (0..37).map(|i| i as f64 * 0.3 - 5.0).collect();
        let mut out = vec![0.0; xs.len()];
        tanh_slice(&mut out, &xs);
        for (o, x) in out.iter().zip(&xs) {
            assert_eq!(*o, tanh(*x));
        }
        exp_slice(&mut out, &xs);
        for (o, x) in out.iter().zip(&xs) {
            assert_eq!(*o, exp(*x));
        }
    }
}
