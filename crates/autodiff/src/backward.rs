//! Hand-written backward rules, one per op.
//!
//! Called by [`Tape::backward`] in reverse recording order. For node `i` the gradient arena
//! is split at the node's offset: its own gradient `g` is above the split (read-only) and all
//! its inputs' gradients are below (mutable), because inputs are always recorded earlier.
//! Each input is updated in its own pass so `x * x` (both operands the same node) is fine.
//!
//! The first contribution to a gradient region in a sweep *writes* it ([`Grad::Fresh`]);
//! later ones add to it ([`Grad::Add`]). Writing instead of zeroing and then adding saves a
//! pass over most of the gradient arena (zero-filling it was a tenth of a training step).
//! A rule that cannot cover its whole input region in one write (a broadcast, a slice,
//! masked softmax entries) zeroes it first with [`Grad::prepare`].

use crate::gemm::MatMut;
use crate::ops::{for_rows, project_rows, MmDims};
use crate::shape::{Bcast, MAX_RANK};
use crate::tape::{BinOp, Op, Tape, UnOp};

impl Tape {
    pub(crate) fn backward_node(&mut self, i: usize) {
        let Tape {
            nodes,
            vals,
            grads,
            reached,
            zeroed,
            operands,
            gemm,
            ..
        } = self;
        let node = nodes[i];
        let (lo, hi) = grads.split_at_mut(node.off);
        let g = &hi[..node.shape.numel()];
        let y = &vals[node.range()];
        // Whether input `j` takes a gradient, and whether this is the first touch of its
        // storage this sweep (aliases share their root's region and flag; an alias covers
        // its root's whole region, so writing through it initialises the root).
        let mut wants = |j: u32| {
            let n = nodes[j as usize];
            if !n.rg {
                return Grad::Skip;
            }
            reached[j as usize] = true;
            let root = storage_root(n.op, j) as usize;
            if zeroed[root] {
                Grad::Add
            } else {
                zeroed[root] = true;
                Grad::Fresh
            }
        };
        let range = |j: u32| nodes[j as usize].range();
        let shape = |j: u32| nodes[j as usize].shape;

        match node.op {
            Op::Leaf | Op::Param(_) => {}
            // Shares its root's gradient storage: everything is already in place. (That
            // region starts at this node's offset, above the split, and was zeroed when the
            // alias was first reached; only the root's `reached` flag is left to set.)
            Op::Alias(root) => {
                debug_assert!(zeroed[root as usize]);
                reached[root as usize] = true;
            }
            Op::Binary(op, a, b) => {
                let plan =
                    Bcast::new(op.name(), shape(a), shape(b)).expect("checked when recorded");
                let (x, z) = (&vals[range(a)], &vals[range(b)]);
                let wa = wants(a);
                if wa.any() {
                    let ga = &mut lo[range(a)];
                    match op {
                        BinOp::Add => acc_bcast(&plan, ga, wa, Side::A, |o, _, _| g[o]),
                        BinOp::Sub => acc_bcast(&plan, ga, wa, Side::A, |o, _, _| g[o]),
                        BinOp::Mul => acc_bcast(&plan, ga, wa, Side::A, |o, _, j| g[o] * z[j]),
                        BinOp::Div => acc_bcast(&plan, ga, wa, Side::A, |o, _, j| g[o] / z[j]),
                    }
                }
                let wb = wants(b);
                if wb.any() {
                    let gb = &mut lo[range(b)];
                    match op {
                        BinOp::Add => acc_bcast(&plan, gb, wb, Side::B, |o, _, _| g[o]),
                        BinOp::Sub => acc_bcast(&plan, gb, wb, Side::B, |o, _, _| -g[o]),
                        BinOp::Mul => acc_bcast(&plan, gb, wb, Side::B, |o, i, _| g[o] * x[i]),
                        BinOp::Div => acc_bcast(&plan, gb, wb, Side::B, |o, i, j| {
                            -g[o] * x[i] / (z[j] * z[j])
                        }),
                    }
                }
            }
            Op::Unary(op, a) => {
                let wa = wants(a);
                if wa.any() {
                    let x = &vals[range(a)];
                    let ga = &mut lo[range(a)];
                    match op {
                        UnOp::Neg => unary_grad(ga, wa, g, x, y, |g, _, _| -g),
                        UnOp::Scale(c) => unary_grad(ga, wa, g, x, y, |g, _, _| c * g),
                        UnOp::Shift(_) => unary_grad(ga, wa, g, x, y, |g, _, _| g),
                        UnOp::Exp => unary_grad(ga, wa, g, x, y, |g, _, y| g * y),
                        UnOp::Log => unary_grad(ga, wa, g, x, y, |g, x, _| g / x),
                        UnOp::Tanh => unary_grad(ga, wa, g, x, y, |g, _, y| g * (1.0 - y * y)),
                        UnOp::Square => unary_grad(ga, wa, g, x, y, |g, x, _| 2.0 * g * x),
                        UnOp::Sqrt => unary_grad(ga, wa, g, x, y, |g, _, y| 0.5 * g / y),
                    }
                }
            }
            Op::MatMul { a, b, ta, tb } => {
                let (d, _) =
                    MmDims::new(shape(a), shape(b), ta, tb).expect("checked when recorded");
                let (x, z) = (&vals[range(a)], &vals[range(b)]);
                let gm = |bi: usize| {
                    crate::gemm::MatRef::rows(&g[bi * d.m * d.n..(bi + 1) * d.m * d.n], d.n)
                };
                let wa = wants(a);
                if wa.any() {
                    // d op(A) = G op(B)^T, written through op(A)'s own strides. A rank-2 A
                    // shared by the batch (stride 0) sums over it, so it is zeroed first.
                    let ga = &mut lo[range(a)];
                    let wa = wa.prepare_unless(ga, d.sa != 0 || d.batch == 1);
                    for bi in 0..d.batch {
                        let opa = d.op_a(x, bi, ta);
                        let s = bi * d.sa;
                        let c = MatMut {
                            data: &mut ga[s..s + d.m * d.k],
                            rs: opa.rs,
                            cs: opa.cs,
                        };
                        gemm.run((d.m, d.k, d.n), gm(bi), d.op_b(z, bi, tb).t(), c, wa.adds());
                    }
                }
                let wb = wants(b);
                if wb.any() {
                    // d op(B) = op(A)^T G.
                    let gb = &mut lo[range(b)];
                    let wb = wb.prepare_unless(gb, d.sb != 0 || d.batch == 1);
                    for bi in 0..d.batch {
                        let opb = d.op_b(z, bi, tb);
                        let s = bi * d.sb;
                        let c = MatMut {
                            data: &mut gb[s..s + d.k * d.n],
                            rs: opb.rs,
                            cs: opb.cs,
                        };
                        gemm.run((d.k, d.n, d.m), d.op_a(x, bi, ta).t(), gm(bi), c, wb.adds());
                    }
                }
            }
            Op::Linear { x, w, b } => {
                let (fan_in, fan_out) = (shape(w).dim(0), shape(w).dim(1));
                let rows = shape(x).numel() / fan_in;
                let gm = crate::gemm::MatRef::rows(g, fan_out);
                let wx = wants(x);
                if wx.any() {
                    // dX = G W^T
                    let c = MatMut {
                        data: &mut lo[range(x)],
                        rs: fan_in,
                        cs: 1,
                    };
                    let wt = crate::gemm::MatRef::rows(&vals[range(w)], fan_out).t();
                    gemm.run((rows, fan_in, fan_out), gm, wt, c, wx.adds());
                }
                let ww = wants(w);
                if ww.any() {
                    // dW = X^T G
                    let c = MatMut {
                        data: &mut lo[range(w)],
                        rs: fan_out,
                        cs: 1,
                    };
                    let xt = crate::gemm::MatRef::rows(&vals[range(x)], fan_in).t();
                    gemm.run((fan_in, fan_out, rows), xt, gm, c, ww.adds());
                }
                if let Some(b) = b {
                    let wb = wants(b);
                    if wb.any() {
                        let gb = &mut lo[range(b)];
                        wb.prepare(gb);
                        for row in g.chunks_exact(fan_out) {
                            for (d, &e) in gb.iter_mut().zip(row) {
                                *d += e;
                            }
                        }
                    }
                }
            }
            Op::Transpose(a) => {
                let wa = wants(a);
                if wa.any() {
                    let s = shape(a);
                    let r = s.rank();
                    let (rows, cols) = (s.dim(r - 2), s.dim(r - 1));
                    let ga = &mut lo[range(a)];
                    for (db, gb) in ga
                        .chunks_exact_mut(rows * cols)
                        .zip(g.chunks_exact(rows * cols))
                    {
                        for i in 0..rows {
                            for j in 0..cols {
                                wa.put(&mut db[i * cols + j], gb[j * rows + i]);
                            }
                        }
                    }
                }
            }
            Op::Concat { start, len, axis } => {
                let axis = axis as usize;
                let (outer, total, inner) = node.shape.split_at_axis(axis);
                let mut cum = 0;
                for &j in &operands[start as usize..(start + len) as usize] {
                    let w = shape(j).dim(axis) * inner;
                    let wj = wants(j);
                    if wj.any() {
                        let gj = &mut lo[range(j)];
                        for o in 0..outer {
                            let s = o * total * inner + cum;
                            for (d, &e) in gj[o * w..(o + 1) * w].iter_mut().zip(&g[s..s + w]) {
                                wj.put(d, e);
                            }
                        }
                    }
                    cum += w;
                }
            }
            Op::Slice {
                x,
                axis,
                start,
                len,
            } => {
                let wx = wants(x);
                if wx.any() {
                    let (outer, n, inner) = shape(x).split_at_axis(axis as usize);
                    let w = len as usize * inner;
                    let gx = &mut lo[range(x)];
                    wx.prepare(gx);
                    for o in 0..outer {
                        let s = (o * n + start as usize) * inner;
                        for (d, &e) in gx[s..s + w].iter_mut().zip(&g[o * w..(o + 1) * w]) {
                            *d += e;
                        }
                    }
                }
            }
            Op::Sum { x, axis, scale } => {
                let wx = wants(x);
                if wx.any() {
                    let gx = &mut lo[range(x)];
                    match axis {
                        None => {
                            let v = scale * g[0];
                            gx.iter_mut().for_each(|d| wx.put(d, v));
                        }
                        Some(ax) => {
                            let (outer, n, inner) = shape(x).split_at_axis(ax as usize);
                            for o in 0..outer {
                                let src = &g[o * inner..(o + 1) * inner];
                                for j in 0..n {
                                    let s = (o * n + j) * inner;
                                    for (d, &e) in gx[s..s + inner].iter_mut().zip(src) {
                                        wx.put(d, scale * e);
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Op::Softmax { x, axis, .. } => {
                let wx = wants(x);
                if wx.any() {
                    let s = shape(x);
                    let dims = s.padded();
                    let ax = axis as usize + MAX_RANK - s.rank();
                    let len = dims[ax];
                    let gx = &mut lo[range(x)];
                    wx.prepare(gx);
                    // dx_t = y_t (g_t - sum_u y_u g_u). Masked (and underflowed) entries have
                    // y_t == 0 and are skipped, so their gradient is exactly zero.
                    if ax == MAX_RANK - 1 {
                        let rows = gx
                            .chunks_exact_mut(len)
                            .zip(y.chunks_exact(len).zip(g.chunks_exact(len)));
                        for (dr, (yr, gr)) in rows {
                            let dot: f64 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                            for ((d, &yt), &gt) in dr.iter_mut().zip(yr).zip(gr) {
                                if yt != 0.0 {
                                    *d += yt * (gt - dot);
                                }
                            }
                        }
                    } else {
                        for_rows(dims, ax, [0; MAX_RANK], |b, st, _, _| {
                            let dot: f64 = (0..len).map(|t| y[b + t * st] * g[b + t * st]).sum();
                            for t in 0..len {
                                let i = b + t * st;
                                if y[i] != 0.0 {
                                    gx[i] += y[i] * (g[i] - dot);
                                }
                            }
                        });
                    }
                }
            }
            Op::Project { f, w } => {
                let wf = wants(f);
                if wf.any() {
                    let s = shape(f).last();
                    project_rows(&mut lo[range(f)], g, &vals[range(w)], s, wf.adds());
                }
            }
        }
    }
}

/// The node that owns the storage of node `j` (aliases record their root directly).
pub(crate) fn storage_root(op: Op, j: u32) -> u32 {
    match op {
        Op::Alias(root) => root,
        _ => j,
    }
}

/// How a backward rule treats one input's gradient region.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Grad {
    /// The input takes no gradient.
    Skip,
    /// First touch this sweep: the region holds stale values, the rule overwrites it.
    Fresh,
    /// Already written this sweep: the rule adds to it.
    Add,
}

impl Grad {
    fn any(self) -> bool {
        self != Grad::Skip
    }

    /// Whether contributions are added (the GEMM's and projector's `accumulate` flag).
    fn adds(self) -> bool {
        self == Grad::Add
    }

    /// One contribution to one element.
    #[inline(always)]
    fn put(self, d: &mut f64, v: f64) {
        if self == Grad::Fresh {
            *d = v;
        } else {
            *d += v;
        }
    }

    /// For a rule that adds several contributions per element or leaves some untouched:
    /// zero a fresh region; from then on the rule adds.
    fn prepare(self, region: &mut [f64]) -> Grad {
        if self == Grad::Fresh {
            region.fill(0.0);
        }
        Grad::Add
    }

    /// [`Grad::prepare`] unless `covers_once` (every element written exactly once).
    fn prepare_unless(self, region: &mut [f64], covers_once: bool) -> Grad {
        if covers_once {
            self
        } else {
            self.prepare(region)
        }
    }
}

/// `ga = f(g, x, y)` (fresh) or `ga += f(g, x, y)` elementwise, with `x` the input and `y`
/// the output of the unary op; two loops so each vectorises.
#[inline(always)]
fn unary_grad(
    ga: &mut [f64],
    w: Grad,
    g: &[f64],
    x: &[f64],
    y: &[f64],
    f: impl Fn(f64, f64, f64) -> f64,
) {
    let it = ga.iter_mut().zip(g).zip(x.iter().zip(y));
    if w == Grad::Fresh {
        it.for_each(|((d, &g), (&x, &y))| *d = f(g, x, y));
    } else {
        it.for_each(|((d, &g), (&x, &y))| *d += f(g, x, y));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// `grad_side[idx] += f(out_index, a_index, b_index)` over the broadcast iteration space
/// (a broadcast operand's gradient sums over the axes it was broadcast along), or `=` for a
/// fresh region of same-shaped operands. Rows along the merged last axis are handled with
/// constant strides so the loops vectorise.
#[inline(always)]
fn acc_bcast(
    plan: &Bcast,
    ga: &mut [f64],
    w: Grad,
    side: Side,
    f: impl Fn(usize, usize, usize) -> f64,
) {
    if plan.same {
        if w == Grad::Fresh {
            for (o, d) in ga.iter_mut().enumerate() {
                *d = f(o, o, o);
            }
        } else {
            for (o, d) in ga.iter_mut().enumerate() {
                *d += f(o, o, o);
            }
        }
        return;
    }
    w.prepare(ga);
    let n = plan.dims[2];
    let (sa, sb) = (plan.sa[2], plan.sb[2]);
    plan.for_each_row(|o, ia, ib| {
        let (own, own_stride) = if side == Side::A { (ia, sa) } else { (ib, sb) };
        if own_stride == 1 {
            let dst = &mut ga[own..own + n];
            match (sa, sb) {
                (1, 1) => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(t, d)| *d += f(o + t, ia + t, ib + t)),
                (1, _) => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(t, d)| *d += f(o + t, ia + t, ib)),
                _ => dst
                    .iter_mut()
                    .enumerate()
                    .for_each(|(t, d)| *d += f(o + t, ia, ib + t)),
            }
        } else {
            let s: f64 = match (sa, sb) {
                (1, _) => (0..n).map(|t| f(o + t, ia + t, ib)).sum(),
                (_, 1) => (0..n).map(|t| f(o + t, ia, ib + t)).sum(),
                _ => (0..n).map(|t| f(o + t, ia, ib)).sum(),
            };
            ga[own] += s;
        }
    });
}
