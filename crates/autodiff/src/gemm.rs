//! A small, allocation-free GEMM for the tape's matmuls and linear layers.
//!
//! Why not ndarray's `dot`? It calls `matrixmultiply`, which allocates a fresh packing buffer
//! on every call, so a tape built on it could never reach "zero allocations per reused step".
//! This kernel keeps its packing buffers in the tape (they only ever grow), accepts arbitrary
//! strides (so transposes in backward cost nothing), and can accumulate into the output
//! (`C += A B`), which is exactly what gradient accumulation needs.
//!
//! Structure (GotoBLAS/BLIS, scaled down for the model's small matrices): pack a `KC x NC`
//! block of B into `NR`-wide column panels and an `MC x KC` block of A into `MR`-tall row
//! panels, then run an `MR x NR` register-tile micro-kernel over the panels. The micro-kernel
//! is plain safe Rust written so LLVM vectorises it; on x86-64, copies compiled for AVX2+FMA
//! (6 x 8 tile) and AVX-512 (8 x 8 tile) are selected at run time. The `unsafe` here is
//! only the call into those copies, guarded by `is_x86_feature_detected!`.

/// Rows of A packed at once (a multiple of 24, hence of every MR used: 4, 6, 8).
const MC: usize = 96;
/// Depth packed at once.
const KC: usize = 256;
/// Columns of B packed at once (a multiple of every NR used).
const NC: usize = 1024;

/// A read-only strided matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f64],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f64], cols: usize) -> Self {
        MatRef {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose (free: swaps the strides).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// A writable strided matrix.
pub(crate) struct MatMut<'a> {
    pub data: &'a mut [f64],
    pub rs: usize,
    pub cs: usize,
}

/// Which micro-kernel build to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Portable code (whatever the compile target allows).
    Generic,
    /// x86-64 with AVX2 and FMA, detected at run time.
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    /// x86-64 with AVX-512F, detected at run time (needs rustc >= 1.89, see build.rs).
    #[cfg(ionode_avx512)]
    Avx512,
}

impl Kernel {
    /// The best kernel this CPU supports.
    pub fn detect() -> Kernel {
        #[cfg(ionode_avx512)]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2Fma;
            }
        }
        Kernel::Generic
    }
}

/// Reusable packing buffers; they grow to the largest problem seen and are never shrunk.
#[derive(Debug)]
pub(crate) struct Gemm {
    pa: Vec<f64>,
    pb: Vec<f64>,
    kernel: Kernel,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm {
            pa: Vec::new(),
            pb: Vec::new(),
            kernel: Kernel::detect(),
        }
    }
}

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

impl Gemm {
    #[cfg(test)]
    pub fn with_kernel(kernel: Kernel) -> Gemm {
        Gemm {
            kernel,
            ..Gemm::default()
        }
    }

    /// Bytes held by the packing buffers.
    pub fn capacity_bytes(&self) -> usize {
        (self.pa.capacity() + self.pb.capacity()) * std::mem::size_of::<f64>()
    }

    /// `C = A B` (or `C += A B` when `accumulate`), with A `m x k`, B `k x n`, C `m x n`.
    pub fn run(
        &mut self,
        (m, n, k): (usize, usize, usize),
        a: MatRef<'_>,
        b: MatRef<'_>,
        c: MatMut<'_>,
        accumulate: bool,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        // A column-major C (as gradients of transposed operands are) is solved as the
        // transposed problem C^T = B^T A^T, whose output rows are contiguous.
        if c.cs != 1 && c.rs == 1 {
            let ct = MatMut {
                data: c.data,
                rs: c.cs,
                cs: 1,
            };
            return self.run((n, m, k), b.t(), a.t(), ct, accumulate);
        }
        if k == 0 {
            if !accumulate {
                for i in 0..m {
                    for j in 0..n {
                        c.data[i * c.rs + j * c.cs] = 0.0;
                    }
                }
            }
            return;
        }
        // Sized for every tile in use (MR divides 24, NR divides 16).
        let need_a = round_up(m.min(MC), 24) * k.min(KC);
        let need_b = round_up(n.min(NC), 16) * k.min(KC);
        if self.pa.len() < need_a {
            self.pa.resize(need_a, 0.0);
        }
        if self.pb.len() < need_b {
            self.pb.resize(need_b, 0.0);
        }
        let (pa, pb) = (&mut self.pa[..], &mut self.pb[..]);
        let mnk = (m, n, k);
        match self.kernel {
            Kernel::Generic => gemm_impl::<false, 4, 8>(pa, pb, mnk, a, b, c, accumulate),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx2Fma` is only constructed by `Kernel::detect` after
            // `is_x86_feature_detected!` confirmed AVX2 and FMA on this CPU.
            Kernel::Avx2Fma => unsafe { gemm_avx2_fma(pa, pb, mnk, a, b, c, accumulate) },
            #[cfg(ionode_avx512)]
            // SAFETY: `Kernel::Avx512` is only constructed by `Kernel::detect` after
            // `is_x86_feature_detected!("avx512f")` on this CPU.
            Kernel::Avx512 => unsafe { gemm_avx512(pa, pb, mnk, a, b, c, accumulate) },
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gemm_avx2_fma(
    pa: &mut [f64],
    pb: &mut [f64],
    mnk: (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    accumulate: bool,
) {
    gemm_impl::<true, 6, 8>(pa, pb, mnk, a, b, c, accumulate)
}

#[cfg(ionode_avx512)]
#[target_feature(enable = "avx512f,avx2,fma")]
fn gemm_avx512(
    pa: &mut [f64],
    pb: &mut [f64],
    mnk: (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    accumulate: bool,
) {
    gemm_impl::<true, 8, 8>(pa, pb, mnk, a, b, c, accumulate)
}

#[inline(always)]
fn gemm_impl<const FMA: bool, const MR: usize, const NR: usize>(
    pa: &mut [f64],
    pb: &mut [f64],
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    accumulate: bool,
) {
    // Tiny products (per-sample attention, 7 x 16 x 7) lose more to packing than they gain:
    // compute them directly. (Measured: widening this to thin or narrow products is slower.)
    if m * n * k <= SMALL {
        // (Rows shorter than one SIMD register are faster through the packed path.)
        if c.cs == 1 && b.cs == 1 && n >= 8 {
            return small_axpy::<FMA>((m, n, k), a, b, c, accumulate);
        }
        if a.cs == 1 && b.rs == 1 {
            return small_dot::<FMA>((m, n, k), a, b, c, accumulate);
        }
    }
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b::<NR>(pb, b, pc, kc, jc, nc);
            let overwrite = pc == 0 && !accumulate;
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a::<MR>(pa, a, ic, mc, pc, kc);
                for q in 0..nc.div_ceil(NR) {
                    let bp = &pb[q * kc * NR..(q + 1) * kc * NR];
                    let j0 = jc + q * NR;
                    let nr = NR.min(jc + nc - j0);
                    for r in 0..mc.div_ceil(MR) {
                        let ap = &pa[r * kc * MR..(r + 1) * kc * MR];
                        let tile = micro::<FMA, MR, NR>(ap, bp);
                        let i0 = ic + r * MR;
                        let mr = MR.min(ic + mc - i0);
                        store(&tile, c.data, c.rs, c.cs, i0, j0, mr, nr, overwrite);
                    }
                }
            }
        }
    }
}

/// Products with `m * n * k` at most this go through the unpacked paths.
const SMALL: usize = 4096;

#[inline(always)]
fn fma<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `C (+)= A B` row by row as axpys over contiguous rows of B and C.
#[inline(always)]
fn small_axpy<const FMA: bool>(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    accumulate: bool,
) {
    for i in 0..m {
        let crow = &mut c.data[i * c.rs..i * c.rs + n];
        if !accumulate {
            crow.fill(0.0);
        }
        for p in 0..k {
            let aip = a.at(i, p);
            let brow = &b.data[p * b.rs..p * b.rs + n];
            for (cj, &bj) in crow.iter_mut().zip(brow) {
                *cj = fma::<FMA>(aip, bj, *cj);
            }
        }
    }
}

/// `C (+)= A B` as dot products of contiguous rows of A with contiguous columns of B.
#[inline(always)]
fn small_dot<const FMA: bool>(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    accumulate: bool,
) {
    for i in 0..m {
        let arow = &a.data[i * a.rs..i * a.rs + k];
        for j in 0..n {
            let bcol = &b.data[j * b.cs..j * b.cs + k];
            // Eight partial sums so the reduction vectorises (order fixed: deterministic).
            let mut acc = [0.0; 8];
            let (ac, bc) = (arow.chunks_exact(8), bcol.chunks_exact(8));
            let (ar, br) = (ac.remainder(), bc.remainder());
            for (x, y) in ac.zip(bc) {
                for l in 0..8 {
                    acc[l] = fma::<FMA>(x[l], y[l], acc[l]);
                }
            }
            for (l, (x, y)) in ar.iter().zip(br).enumerate() {
                acc[l] = fma::<FMA>(*x, *y, acc[l]);
            }
            let d =
                ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            let cij = &mut c.data[i * c.rs + j * c.cs];
            *cij = if accumulate { *cij + d } else { d };
        }
    }
}

/// The register tile: `MR x NR` dot products of length `kc` over packed panels.
#[inline(always)]
fn micro<const FMA: bool, const MR: usize, const NR: usize>(
    ap: &[f64],
    bp: &[f64],
) -> [[f64; NR]; MR] {
    let mut acc = [[0.0; NR]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        let a: &[f64; MR] = a.try_into().expect("MR chunk");
        let b: &[f64; NR] = b.try_into().expect("NR chunk");
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = fma::<FMA>(a[i], b[j], acc[i][j]);
            }
        }
    }
    acc
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn store<const MR: usize, const NR: usize>(
    tile: &[[f64; NR]; MR],
    c: &mut [f64],
    rs: usize,
    cs: usize,
    i0: usize,
    j0: usize,
    mr: usize,
    nr: usize,
    overwrite: bool,
) {
    for (i, row) in tile.iter().enumerate().take(mr) {
        let base = (i0 + i) * rs + j0 * cs;
        if cs == 1 {
            let dst = &mut c[base..base + nr];
            if overwrite {
                dst.copy_from_slice(&row[..nr]);
            } else {
                for (d, s) in dst.iter_mut().zip(row) {
                    *d += s;
                }
            }
        } else {
            for (j, s) in row.iter().enumerate().take(nr) {
                let d = &mut c[base + j * cs];
                *d = if overwrite { *s } else { *d + s };
            }
        }
    }
}

/// Pack rows `ic..ic+mc`, depth `pc..pc+kc` of A into `MR`-row panels (zero padded).
#[inline(always)]
fn pack_a<const MR: usize>(
    pa: &mut [f64],
    a: MatRef<'_>,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
) {
    for r in 0..mc.div_ceil(MR) {
        let panel = &mut pa[r * kc * MR..(r + 1) * kc * MR];
        let i0 = ic + r * MR;
        let rows = MR.min(ic + mc - i0);
        if a.cs == 1 && rows == MR {
            // Row-major A, full panel: read MR row slices, write the panel row by row
            // (a small transpose; no per-element index arithmetic or bounds checks).
            let src: [&[f64]; MR] = std::array::from_fn(|i| {
                let s = (i0 + i) * a.rs + pc;
                &a.data[s..s + kc]
            });
            for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                for i in 0..MR {
                    dst[i] = src[i][p];
                }
            }
            continue;
        }
        for i in 0..MR {
            let row = i0 + i;
            if i < rows {
                for p in 0..kc {
                    panel[p * MR + i] = a.at(row, pc + p);
                }
            } else {
                for p in 0..kc {
                    panel[p * MR + i] = 0.0;
                }
            }
        }
    }
}

/// Pack depth `pc..pc+kc`, columns `jc..jc+nc` of B into `NR`-column panels (zero padded).
#[inline(always)]
fn pack_b<const NR: usize>(
    pb: &mut [f64],
    b: MatRef<'_>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
) {
    for q in 0..nc.div_ceil(NR) {
        let panel = &mut pb[q * kc * NR..(q + 1) * kc * NR];
        let j0 = jc + q * NR;
        let nr = NR.min(jc + nc - j0);
        for p in 0..kc {
            let dst = &mut panel[p * NR..(p + 1) * NR];
            if b.cs == 1 && nr == NR {
                let s = (pc + p) * b.rs + j0;
                dst.copy_from_slice(&b.data[s..s + NR]);
            } else {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if j < nr { b.at(pc + p, j0 + j) } else { 0.0 };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5
    }

    fn check(
        kernel: Kernel,
        (m, n, k): (usize, usize, usize),
        ta: bool,
        tb: bool,
        acc: bool,
        colmajor: bool,
    ) {
        let mut s = (m * 131 + n * 17 + k) as u64;
        let a: Vec<f64> = (0..m * k).map(|_| lcg(&mut s)).collect();
        let b: Vec<f64> = (0..k * n).map(|_| lcg(&mut s)).collect();
        let c0: Vec<f64> = (0..m * n).map(|_| lcg(&mut s)).collect();
        let ar = if ta {
            MatRef::rows(&a, m).t()
        } else {
            MatRef::rows(&a, k)
        };
        let br = if tb {
            MatRef::rows(&b, k).t()
        } else {
            MatRef::rows(&b, n)
        };
        let (rs, cs) = if colmajor { (1, m) } else { (n, 1) };
        let mut c = c0.clone();
        let mut g = Gemm::with_kernel(kernel);
        g.run(
            (m, n, k),
            ar,
            br,
            MatMut {
                data: &mut c,
                rs,
                cs,
            },
            acc,
        );
        for i in 0..m {
            for j in 0..n {
                let mut want = if acc { c0[i * rs + j * cs] } else { 0.0 };
                for p in 0..k {
                    want += ar.at(i, p) * br.at(p, j);
                }
                let got = c[i * rs + j * cs];
                assert!(
                    (got - want).abs() < 1e-12 * (1.0 + k as f64),
                    "{kernel:?} m{m} n{n} k{k} ta{ta} tb{tb} acc{acc} cm{colmajor} ({i},{j}): {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn gemm_matches_naive_on_edge_shapes() {
        let mut kernels = vec![Kernel::Generic];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            kernels.push(Kernel::Avx2Fma);
        }
        #[cfg(ionode_avx512)]
        if std::arch::is_x86_feature_detected!("avx512f") {
            kernels.push(Kernel::Avx512);
        }
        for kern in kernels {
            for &(m, n, k) in &[
                (1, 1, 1),
                (3, 5, 2),
                (4, 8, 16),
                (5, 9, 17),
                (73, 17, 3),
                (7, 7, 16),
                (9, 1030, 5),
                (2, 3, 300),
                (150, 64, 113),
                (448, 16, 3),
                (7, 7, 16),
                (16, 16, 16),
                (17, 17, 17),
            ] {
                for (ta, tb, acc) in [
                    (false, false, false),
                    (true, false, true),
                    (false, true, false),
                    (true, true, true),
                ] {
                    for colmajor in [false, true] {
                        check(kern, (m, n, k), ta, tb, acc, colmajor);
                    }
                }
            }
        }
    }

    #[test]
    fn gemm_k_zero() {
        let mut c = vec![1.0; 6];
        let mut g = Gemm::default();
        let (a, b) = ([0.0; 0], [0.0; 0]);
        let mm = MatMut {
            data: &mut c,
            rs: 3,
            cs: 1,
        };
        g.run(
            (2, 3, 0),
            MatRef::rows(&a, 0),
            MatRef::rows(&b, 3),
            mm,
            false,
        );
        assert_eq!(c, vec![0.0; 6]);
    }
}
