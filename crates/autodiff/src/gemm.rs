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
//! (6 x 8 tile) and AVX-512 (8 x 8 tile) are selected at run time ([`crate::isa`]). Every
//! copy computes each element of C as the same chain of fused multiply-adds in depth order,
//! so all of them give the same bits (the tile only decides how many chains run at once).
//! The `unsafe` here is only the call into those copies, guarded by
//! [`KernelPath::is_available`].

use crate::isa::{kernel_path, KernelPath};

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

/// How a product's result meets what C held before.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Write<'a> {
    /// `C = A B`.
    Set,
    /// `C += A B` (gradient accumulation).
    Add,
    /// `C = A B + 1 bias^T`: a linear layer's bias (one per column) added in the
    /// write-back, instead of a pass that first fills every row of C with it.
    Bias(&'a [f64]),
}

impl Write<'_> {
    /// The new value of `C[i][j]` from its old value and the product's `v`.
    #[inline(always)]
    fn put(self, old: f64, v: f64, j: usize) -> f64 {
        match self {
            Write::Set => v,
            Write::Add => old + v,
            Write::Bias(b) => v + b[j],
        }
    }
}

/// Reusable packing buffers; they grow to the largest problem seen and are never shrunk.
#[derive(Debug)]
pub(crate) struct Gemm {
    pa: Vec<f64>,
    pb: Vec<f64>,
    kernel: KernelPath,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm {
            pa: Vec::new(),
            pb: Vec::new(),
            kernel: kernel_path(),
        }
    }
}

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

impl Gemm {
    #[cfg(test)]
    pub fn with_kernel(kernel: KernelPath) -> Gemm {
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
        mnk: (usize, usize, usize),
        a: MatRef<'_>,
        b: MatRef<'_>,
        c: MatMut<'_>,
        accumulate: bool,
    ) {
        let w = if accumulate { Write::Add } else { Write::Set };
        self.run_with(mnk, a, b, c, w)
    }

    /// `C (+)= A B` written as `w` says; a [`Write::Bias`] holds `n` values.
    pub fn run_with(
        &mut self,
        (m, n, k): (usize, usize, usize),
        a: MatRef<'_>,
        b: MatRef<'_>,
        c: MatMut<'_>,
        w: Write<'_>,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        // A column-major C (as gradients of transposed operands are) is solved as the
        // transposed problem C^T = B^T A^T, whose output rows are contiguous. (A bias is
        // per column of C, so a biased product keeps its orientation.)
        if c.cs != 1 && c.rs == 1 && !matches!(w, Write::Bias(_)) {
            let ct = MatMut {
                data: c.data,
                rs: c.cs,
                cs: 1,
            };
            return self.run_with((n, m, k), b.t(), a.t(), ct, w);
        }
        if k == 0 {
            for i in 0..m {
                for j in 0..n {
                    let cij = &mut c.data[i * c.rs + j * c.cs];
                    *cij = w.put(*cij, 0.0, j);
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
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `kernel_path` and `with_kernel`'s callers only give a path that
            // `is_available` confirmed on this CPU (AVX2 and FMA).
            KernelPath::Avx2 => unsafe { gemm_avx2_fma(pa, pb, mnk, a, b, c, w) },
            #[cfg(ionode_avx512)]
            // SAFETY: as above, AVX-512F, AVX2 and FMA confirmed.
            KernelPath::Avx512 => unsafe { gemm_avx512(pa, pb, mnk, a, b, c, w) },
            _ => gemm_impl::<4, 8>(pa, pb, mnk, a, b, c, w),
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
    w: Write<'_>,
) {
    gemm_impl::<6, 8>(pa, pb, mnk, a, b, c, w)
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
    w: Write<'_>,
) {
    gemm_impl::<8, 8>(pa, pb, mnk, a, b, c, w)
}

#[inline(always)]
fn gemm_impl<const MR: usize, const NR: usize>(
    pa: &mut [f64],
    pb: &mut [f64],
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    w: Write<'_>,
) {
    // Tiny products (per-sample attention, 7 x 16 x 7) lose more to packing than they gain:
    // compute them directly, in 4 x 8 register tiles (`gemm_peer` times each shape).
    let tiny = m * n * k <= SMALL;
    // A weight gradient `X^T G` with fewer rows than one packed panel (the token
    // embedding's 4): packing would copy both operands per depth block for half-empty
    // tiles. (Measured: at 16 rows the packed path is faster.)
    let thin_m = m <= 8 && a.rs == 1;
    if tiny || k <= THIN_K || thin_m {
        if c.cs == 1 && b.cs == 1 && n >= 8 {
            return small_axpy((m, n, k), a, b, c, w);
        }
        if n <= 8 && pb.len() >= 8 * k {
            return small_narrow(pb, (m, n, k), a, b, c, w);
        }
    }
    if tiny && a.cs == 1 && b.rs == 1 {
        return small_dot((m, n, k), a, b, c, w);
    }
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            pack_b::<NR>(pb, b, pc, kc, jc, nc);
            // Only the first depth block meets C's old values; the rest add to it.
            let wr = if pc == 0 { w } else { Write::Add };
            for ic in (0..m).step_by(MC) {
                let mc = MC.min(m - ic);
                pack_a::<MR>(pa, a, ic, mc, pc, kc);
                for q in 0..nc.div_ceil(NR) {
                    let bp = &pb[q * kc * NR..(q + 1) * kc * NR];
                    let j0 = jc + q * NR;
                    let nr = NR.min(jc + nc - j0);
                    for r in 0..mc.div_ceil(MR) {
                        let ap = &pa[r * kc * MR..(r + 1) * kc * MR];
                        let tile = micro::<MR, NR>(ap, bp);
                        let i0 = ic + r * MR;
                        let mr = MR.min(ic + mc - i0);
                        store(&tile, c.data, c.rs, c.cs, i0, j0, mr, nr, wr);
                    }
                }
            }
        }
    }
}

/// Products with `m * n * k` at most this go through the unpacked paths.
const SMALL: usize = 4096;

/// Products this shallow (token embedding K = 4, Q/K/V K = 16) go through the unpacked
/// paths whatever their size: packing A would cost as much as the product.
const THIN_K: usize = 16;

/// `a b + c` rounded once: the one product step of every path (see [`crate::isa`]).
#[inline(always)]
fn fma(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// Rows of C per register tile of the unpacked paths: eight independent FMA chains, enough
/// to keep two FMA units busy at a latency of four cycles.
const TR: usize = 4;

/// `C (+)= A B` for a small product whose B is stored as contiguous rows (`brs` apart) of
/// at least `8 * blocks` columns: every `TR`-row x 8-column tile of C is held in registers
/// across the whole depth and nothing is packed. Only the first `n` columns and `m` rows
/// are written (a last partial row group recomputes row `m - 1` and discards it). Used for
/// the per-sample attention products and for products of depth at most `THIN_K`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn small_tiles(
    bsrc: &[f64],
    brs: usize,
    blocks: usize,
    mnk: (usize, usize, usize),
    a: MatRef<'_>,
    c: &mut MatMut<'_>,
    w: Write<'_>,
) {
    // One copy of the loops per write mode: a `match` inside them keeps LLVM from holding
    // the tile in registers (measured: 2.7x slower on 7 x 16 x 7).
    match w {
        Write::Set => small_tiles_with(bsrc, brs, blocks, mnk, a, c, |_, v, _| v),
        Write::Add => small_tiles_with(bsrc, brs, blocks, mnk, a, c, |o, v, _| o + v),
        Write::Bias(b) => small_tiles_with(bsrc, brs, blocks, mnk, a, c, |_, v, j| v + b[j]),
    }
}

/// [`small_tiles`] for one write mode, `put(old, v, column)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn small_tiles_with(
    bsrc: &[f64],
    brs: usize,
    blocks: usize,
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    c: &mut MatMut<'_>,
    put: impl Fn(f64, f64, usize) -> f64,
) {
    for i0 in (0..m).step_by(TR) {
        let rows = TR.min(m - i0);
        let ri: [usize; TR] = std::array::from_fn(|r| (i0 + r).min(m - 1));
        for q in 0..blocks {
            let j0 = q * 8;
            let mut acc = [[0.0; 8]; TR];
            for p in 0..k {
                let s = p * brs + j0;
                let brow: &[f64; 8] = (&bsrc[s..s + 8]).try_into().expect("8 columns");
                for r in 0..TR {
                    let air = a.at(ri[r], p);
                    for l in 0..8 {
                        acc[r][l] = fma(air, brow[l], acc[r][l]);
                    }
                }
            }
            let cols = 8.min(n - j0);
            for (r, row) in acc.iter().enumerate().take(rows) {
                if c.cs == 1 && cols == 8 {
                    let s = (i0 + r) * c.rs + j0;
                    let dst: &mut [f64; 8] = (&mut c.data[s..s + 8]).try_into().expect("8");
                    for l in 0..8 {
                        dst[l] = put(dst[l], row[l], j0 + l);
                    }
                    continue;
                }
                for (l, &v) in row.iter().enumerate().take(cols) {
                    let cij = &mut c.data[(i0 + r) * c.rs + (j0 + l) * c.cs];
                    *cij = put(*cij, v, j0 + l);
                }
            }
        }
    }
}

/// `C (+)= A B` for a small product with contiguous rows of B and C: the full 8-column
/// blocks through [`small_tiles`], the last `n % 8` columns element by element.
#[inline(always)]
fn small_axpy(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    mut c: MatMut<'_>,
    w: Write<'_>,
) {
    let full = n - n % 8;
    small_tiles(b.data, b.rs, full / 8, (m, full, k), a, &mut c, w);
    for i in 0..m {
        for j in full..n {
            let mut acc = 0.0;
            for p in 0..k {
                acc = fma(a.at(i, p), b.data[p * b.rs + j], acc);
            }
            let cij = &mut c.data[i * c.rs + j];
            *cij = w.put(*cij, acc, j);
        }
    }
}

/// `C (+)= A B` for a small product with at most 8 columns in any layout (attention scores
/// `Q K^T` read B transposed): B is copied into `bt` (`k x 8`, zero padded), then
/// [`small_tiles`]. (Dot products would end each of the `m n` entries with a horizontal
/// reduction.)
#[inline(always)]
fn small_narrow(
    bt: &mut [f64],
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    mut c: MatMut<'_>,
    w: Write<'_>,
) {
    let bt = &mut bt[..8 * k];
    if b.rs == 1 {
        // B^T stored row-major (`Q K^T`): each column of B is a contiguous slice.
        for j in 0..8 {
            if j < n {
                let col = &b.data[j * b.cs..j * b.cs + k];
                for (p, &v) in col.iter().enumerate() {
                    bt[p * 8 + j] = v;
                }
            } else {
                for p in 0..k {
                    bt[p * 8 + j] = 0.0;
                }
            }
        }
    } else {
        for (p, row) in bt.chunks_exact_mut(8).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = if j < n { b.at(p, j) } else { 0.0 };
            }
        }
    }
    small_tiles(bt, 8, 1, (m, n, k), a, &mut c, w);
}

/// `C (+)= A B` as dot products of contiguous rows of A with contiguous columns of B.
#[inline(always)]
fn small_dot(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: MatMut<'_>,
    w: Write<'_>,
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
                    acc[l] = fma(x[l], y[l], acc[l]);
                }
            }
            for (l, (x, y)) in ar.iter().zip(br).enumerate() {
                acc[l] = fma(*x, *y, acc[l]);
            }
            let d =
                ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            let cij = &mut c.data[i * c.rs + j * c.cs];
            *cij = w.put(*cij, d, j);
        }
    }
}

/// The register tile: `MR x NR` dot products of length `kc` over packed panels.
#[inline(always)]
fn micro<const MR: usize, const NR: usize>(ap: &[f64], bp: &[f64]) -> [[f64; NR]; MR] {
    let mut acc = [[0.0; NR]; MR];
    for (a, b) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
        let a: &[f64; MR] = a.try_into().expect("MR chunk");
        let b: &[f64; NR] = b.try_into().expect("NR chunk");
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = fma(a[i], b[j], acc[i][j]);
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
    w: Write<'_>,
) {
    // One copy per write mode, as in `small_tiles`.
    let at = (rs, cs, i0, j0, mr, nr);
    match w {
        Write::Set => store_with(tile, c, at, |_, v, _| v),
        Write::Add => store_with(tile, c, at, |o, v, _| o + v),
        Write::Bias(b) => store_with(tile, c, at, |_, v, j| v + b[j]),
    }
}

/// [`store`] for one write mode, `put(old, v, column)`; `at` is
/// `(rs, cs, i0, j0, mr, nr)`.
#[inline(always)]
fn store_with<const MR: usize, const NR: usize>(
    tile: &[[f64; NR]; MR],
    c: &mut [f64],
    (rs, cs, i0, j0, mr, nr): (usize, usize, usize, usize, usize, usize),
    put: impl Fn(f64, f64, usize) -> f64,
) {
    if cs == 1 && mr == MR && nr == NR {
        // A full tile into row-major C: fixed-length rows, so the loads, adds and stores
        // are whole vector registers (the general loop below runs element by element).
        for (i, row) in tile.iter().enumerate() {
            let base = (i0 + i) * rs + j0;
            let dst: &mut [f64; NR] = (&mut c[base..base + NR]).try_into().expect("NR row");
            for j in 0..NR {
                dst[j] = put(dst[j], row[j], j0 + j);
            }
        }
        return;
    }
    for (i, row) in tile.iter().enumerate().take(mr) {
        let base = (i0 + i) * rs + j0 * cs;
        for (j, &s) in row.iter().enumerate().take(nr) {
            let d = &mut c[base + j * cs];
            *d = put(*d, s, j0 + j);
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
        if a.rs == 1 {
            // Column-major A (a transposed operand, as in every weight gradient `X^T G`):
            // the MR rows of one depth are contiguous, so a panel row is one copy.
            for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                let s = (pc + p) * a.cs + i0;
                if rows == MR {
                    // Fixed length: register moves, not a `memcpy` call per depth.
                    let dst: &mut [f64; MR] = dst.try_into().expect("MR panel row");
                    *dst = a.data[s..s + MR].try_into().expect("MR rows");
                } else {
                    dst[..rows].copy_from_slice(&a.data[s..s + rows]);
                    dst[rows..].fill(0.0);
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
        if b.rs == 1 && b.cs != 1 && nr == NR {
            // Column-major B (a transposed weight, as in every input gradient `G W^T`): read
            // the NR columns as contiguous slices and interleave them (a small transpose).
            let src: [&[f64]; NR] = std::array::from_fn(|j| {
                let s = (j0 + j) * b.cs + pc;
                &b.data[s..s + kc]
            });
            for (p, dst) in panel.chunks_exact_mut(NR).enumerate() {
                for j in 0..NR {
                    dst[j] = src[j][p];
                }
            }
            continue;
        }
        for p in 0..kc {
            let dst = &mut panel[p * NR..(p + 1) * NR];
            if b.cs == 1 && nr == NR {
                let s = (pc + p) * b.rs + j0;
                let dst: &mut [f64; NR] = dst.try_into().expect("NR panel row");
                *dst = b.data[s..s + NR].try_into().expect("NR columns");
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
        kernel: KernelPath,
        (m, n, k): (usize, usize, usize),
        ta: bool,
        tb: bool,
        acc: bool,
        colmajor: bool,
    ) {
        check_write(kernel, (m, n, k), (ta, tb), acc, colmajor, false);
        if !acc {
            check_write(kernel, (m, n, k), (ta, tb), acc, colmajor, true);
        }
    }

    /// Random A (m x k), B (k x n), C (m x n) and a bias (n), from a seed.
    struct Operands {
        a: Vec<f64>,
        b: Vec<f64>,
        c0: Vec<f64>,
        bias: Vec<f64>,
    }

    impl Operands {
        fn new((m, n, k): (usize, usize, usize), seed: u64) -> Operands {
            let mut s = seed;
            let mut draw = |len: usize| (0..len).map(|_| lcg(&mut s)).collect::<Vec<f64>>();
            let (a, b, c0) = (draw(m * k), draw(k * n), draw(m * n));
            Operands {
                a,
                b,
                c0,
                bias: draw(n),
            }
        }

        /// A and B as stored row-major, read transposed when `ta` / `tb`.
        fn views(
            &self,
            (m, n, k): (usize, usize, usize),
            (ta, tb): (bool, bool),
        ) -> (MatRef<'_>, MatRef<'_>) {
            let a = if ta {
                MatRef::rows(&self.a, m).t()
            } else {
                MatRef::rows(&self.a, k)
            };
            let b = if tb {
                MatRef::rows(&self.b, k).t()
            } else {
                MatRef::rows(&self.b, n)
            };
            (a, b)
        }
    }

    fn check_write(
        kernel: KernelPath,
        (m, n, k): (usize, usize, usize),
        (ta, tb): (bool, bool),
        acc: bool,
        colmajor: bool,
        with_bias: bool,
    ) {
        let ops = Operands::new((m, n, k), (m * 131 + n * 17 + k) as u64);
        let (c0, bias) = (&ops.c0, &ops.bias);
        let (ar, br) = ops.views((m, n, k), (ta, tb));
        let (rs, cs) = if colmajor { (1, m) } else { (n, 1) };
        let write = match (acc, with_bias) {
            (true, _) => Write::Add,
            (false, true) => Write::Bias(bias),
            (false, false) => Write::Set,
        };
        let mut c = c0.clone();
        let mut g = Gemm::with_kernel(kernel);
        g.run_with(
            (m, n, k),
            ar,
            br,
            MatMut {
                data: &mut c,
                rs,
                cs,
            },
            write,
        );
        for i in 0..m {
            for j in 0..n {
                let mut want = match write {
                    Write::Add => c0[i * rs + j * cs],
                    Write::Bias(b) => b[j],
                    Write::Set => 0.0,
                };
                for p in 0..k {
                    want += ar.at(i, p) * br.at(p, j);
                }
                let got = c[i * rs + j * cs];
                assert!(
                    (got - want).abs() < 1e-12 * (1.0 + k as f64),
                    "{kernel:?} m{m} n{n} k{k} ta{ta} tb{tb} {write:?} cm{colmajor} ({i},{j}): {got} vs {want}"
                );
            }
        }
    }

    /// Shapes of every path of `gemm_impl`: tiny, shallow, thin, packed, several depth
    /// blocks (k > KC), several row blocks (m > MC), partial tiles.
    const SHAPES: [(usize, usize, usize); 22] = [
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
        (16, 16, 16),
        (17, 17, 17),
        (7, 16, 7),
        (5, 3, 40),
        (2, 8, 300),
        (6, 20, 9),
        (300, 16, 4),
        (300, 4, 16),
        (70, 20, 7),
        (90, 64, 7),
        (200, 33, 600),
        (13, 7, 64),
    ];

    const LAYOUTS: [(bool, bool, bool); 4] = [
        (false, false, false),
        (true, false, true),
        (false, true, false),
        (true, true, true),
    ];

    #[test]
    fn gemm_matches_naive_on_edge_shapes() {
        for kern in KernelPath::available() {
            for &(m, n, k) in &SHAPES {
                for (ta, tb, acc) in LAYOUTS {
                    for colmajor in [false, true] {
                        check(kern, (m, n, k), ta, tb, acc, colmajor);
                    }
                }
            }
        }
    }

    /// `C` from one path: every write mode, every layout, concatenated.
    fn outputs(kernel: KernelPath, (m, n, k): (usize, usize, usize)) -> Vec<u64> {
        let ops = Operands::new((m, n, k), (m * 7 + n * 3 + k) as u64);
        let (c0, bias) = (&ops.c0, &ops.bias);
        let mut bits = Vec::new();
        let mut g = Gemm::with_kernel(kernel);
        for (ta, tb, _) in LAYOUTS {
            let (ar, br) = ops.views((m, n, k), (ta, tb));
            for colmajor in [false, true] {
                let (rs, cs) = if colmajor { (1, m) } else { (n, 1) };
                for write in [Write::Set, Write::Add, Write::Bias(bias)] {
                    let mut c = c0.clone();
                    let data = &mut c;
                    g.run_with((m, n, k), ar, br, MatMut { data, rs, cs }, write);
                    bits.extend(c.iter().map(|v| v.to_bits()));
                }
            }
        }
        bits
    }

    /// Every path this CPU has gives the portable path's bits (see `crate::isa`).
    #[test]
    fn every_kernel_path_gives_the_same_bits() {
        for &mnk in &SHAPES {
            let want = outputs(KernelPath::Portable, mnk);
            for kern in KernelPath::available() {
                assert!(
                    outputs(kern, mnk) == want,
                    "{kern} differs from portable at {mnk:?}"
                );
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
