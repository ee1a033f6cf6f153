//! Hand-written backward rules, one per op.
//!
//! Called by [`Tape::backward`] in reverse recording order. For node `i` the gradient arena
//! is split at the node's offset: its own gradient `g` is above the split (read-only) and all
//! its inputs' gradients are below (mutable), because inputs are always recorded earlier.
//! Each input is updated in its own pass so `x * x` (both operands the same node) is fine.

use crate::broadcast::Bcast;
use crate::gemm::{Gemm, MatMut};
use crate::ops::{for_rows, project_rows, MmDims};
use crate::shape::{Shape, MAX_RANK};
use crate::tape::{BinOp, Node, Op, Tape, UnOp};

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
        let mut rule = Rule {
            nodes,
            vals,
            reached,
            zeroed,
            g: &hi[..node.shape.numel()],
            y: &vals[node.range()],
        };

        match node.op {
            Op::Leaf | Op::Param(_) => {}
            // Shares its root's gradient storage: everything is already in place. (That
            // region starts at this node's offset, above the split, and was zeroed when the
            // alias was first reached; only the root's `reached` flag is left to set.)
            Op::Alias(root) => {
                debug_assert!(rule.zeroed[root as usize]);
                rule.reached[root as usize] = true;
            }
            Op::Binary(op, a, b) => binary(&mut rule, lo, op, a, b),
            Op::Unary(op, a) => unary(&mut rule, lo, op, a),
            Op::MatMul { a, b, ta, tb } => matmul(&mut rule, lo, gemm, (a, b, ta, tb)),
            Op::Linear { x, w, b } => linear(&mut rule, lo, gemm, (x, w, b)),
            Op::Transpose(a) => transpose(&mut rule, lo, a),
            Op::Concat { start, len, axis } => concat(
                &mut rule,
                lo,
                node.shape,
                &operands[start as usize..(start + len) as usize],
                axis,
            ),
            Op::Slice {
                x,
                axis,
                start,
                len,
            } => slice(&mut rule, lo, (x, axis, start, len)),
            Op::Sum { x, axis, scale } => sum(&mut rule, lo, x, axis, scale),
            Op::Softmax { x, axis, .. } => softmax(&mut rule, lo, x, axis),
            Op::Project { f, w } => project(&mut rule, lo, f, w),
        }
    }
}

/// What the backward rule of one node reads, and the marks it leaves on its inputs.
struct Rule<'a> {
    nodes: &'a [Node],
    vals: &'a [f64],
    reached: &'a mut [bool],
    zeroed: &'a mut [bool],
    /// The node's own gradient and value.
    g: &'a [f64],
    y: &'a [f64],
}

impl Rule<'_> {
    /// Whether input `j` takes a gradient: `None` if not, else `Some(fresh)`. It marks `j`
    /// reached. On the first touch of its storage this sweep the gradient region holds
    /// stale values: a rule that writes every element of it (`overwrite`) gets
    /// `Some(true)` and must store instead of add; otherwise the region is zeroed here
    /// (just before it is accumulated into, so it is cache-hot) and the answer is
    /// `Some(false)`. Aliases share their root's region and flag. Storing instead of
    /// zeroing and adding gives the same values and saves a pass over the region.
    #[inline(always)]
    fn wants(&mut self, j: u32, lo: &mut [f64], overwrite: bool) -> Option<bool> {
        let n = self.nodes[j as usize];
        if !n.rg {
            return None;
        }
        self.reached[j as usize] = true;
        let root = n.op.storage_root(j) as usize;
        if self.zeroed[root] {
            return Some(false);
        }
        self.zeroed[root] = true;
        if !overwrite {
            lo[n.range()].fill(0.0);
        }
        Some(overwrite)
    }
}

/// `a op b` with broadcasting: each side gets `g` (times the other operand, for `*` and
/// `/`), summed over its broadcast axes.
#[inline(always)]
fn binary(r: &mut Rule, lo: &mut [f64], op: BinOp, a: u32, b: u32) {
    let (g, vals) = (r.g, r.vals);
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    let plan = Bcast::new(op.name(), shape(a), shape(b)).expect("checked when recorded");
    let (x, z) = (&vals[range(a)], &vals[range(b)]);
    // Without broadcasting each input element takes exactly one output element.
    let same = plan.same;
    if let Some(fresh) = r.wants(a, lo, same) {
        let ga = &mut lo[range(a)];
        if fresh {
            match op {
                BinOp::Add | BinOp::Sub => ga.copy_from_slice(g),
                BinOp::Mul => set_each(ga, |o| g[o] * z[o]),
                BinOp::Div => set_each(ga, |o| g[o] / z[o]),
            }
        } else {
            match op {
                BinOp::Add => acc_bcast(&plan, ga, Side::A, |o, _, _| g[o]),
                BinOp::Sub => acc_bcast(&plan, ga, Side::A, |o, _, _| g[o]),
                BinOp::Mul => acc_bcast(&plan, ga, Side::A, |o, _, j| g[o] * z[j]),
                BinOp::Div => acc_bcast(&plan, ga, Side::A, |o, _, j| g[o] / z[j]),
            }
        }
    }
    if let Some(fresh) = r.wants(b, lo, same) {
        let gb = &mut lo[range(b)];
        if fresh {
            match op {
                BinOp::Add => gb.copy_from_slice(g),
                BinOp::Sub => set_each(gb, |o| -g[o]),
                BinOp::Mul => set_each(gb, |o| g[o] * x[o]),
                BinOp::Div => set_each(gb, |o| -g[o] * x[o] / (z[o] * z[o])),
            }
        } else {
            match op {
                BinOp::Add => acc_bcast(&plan, gb, Side::B, |o, _, _| g[o]),
                BinOp::Sub => acc_bcast(&plan, gb, Side::B, |o, _, _| -g[o]),
                BinOp::Mul => acc_bcast(&plan, gb, Side::B, |o, i, _| g[o] * x[i]),
                BinOp::Div => acc_bcast(&plan, gb, Side::B, |o, i, j| -g[o] * x[i] / (z[j] * z[j])),
            }
        }
    }
}

/// An element-wise function: `g` times its derivative (from the input or the output).
#[inline(always)]
fn unary(r: &mut Rule, lo: &mut [f64], op: UnOp, a: u32) {
    let (g, y, vals) = (r.g, r.y, r.vals);
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    if let Some(fresh) = r.wants(a, lo, true) {
        let x = &vals[range(a)];
        let ga = &mut lo[range(a)];
        match op {
            UnOp::Neg => put_each(ga, fresh, |o| -g[o]),
            UnOp::Scale(c) => put_each(ga, fresh, |o| c * g[o]),
            UnOp::Shift(_) => put_each(ga, fresh, |o| g[o]),
            UnOp::Exp => put_each(ga, fresh, |o| g[o] * y[o]),
            UnOp::Log => put_each(ga, fresh, |o| g[o] / x[o]),
            UnOp::Tanh => put_each(ga, fresh, |o| g[o] * (1.0 - y[o] * y[o])),
            UnOp::Square => put_each(ga, fresh, |o| 2.0 * g[o] * x[o]),
            UnOp::Sqrt => put_each(ga, fresh, |o| 0.5 * g[o] / y[o]),
        }
    }
}

/// `op(A) op(B)` (batched): `d op(A) = G op(B)^T`, `d op(B) = op(A)^T G`.
#[inline(always)]
fn matmul(r: &mut Rule, lo: &mut [f64], gemm: &mut Gemm, (a, b, ta, tb): (u32, u32, bool, bool)) {
    let (g, vals) = (r.g, r.vals);
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    let (d, _) = MmDims::new(shape(a), shape(b), ta, tb).expect("checked when recorded");
    let (x, z) = (&vals[range(a)], &vals[range(b)]);
    let gm = |bi: usize| crate::gemm::MatRef::rows(&g[bi * d.m * d.n..(bi + 1) * d.m * d.n], d.n);
    if let Some(fresh) = r.wants(a, lo, true) {
        // d op(A) = G op(B)^T, written through op(A)'s own strides. The batch's
        // slices cover the region once, or (a shared operand, stride 0) are one
        // slice that every batch entry adds to.
        let ga = &mut lo[range(a)];
        for bi in 0..d.batch {
            let add = !fresh || (d.sa == 0 && bi > 0);
            let opa = d.op_a(x, bi, ta);
            let s = bi * d.sa;
            let c = MatMut {
                data: &mut ga[s..s + d.m * d.k],
                rs: opa.rs,
                cs: opa.cs,
            };
            gemm.run((d.m, d.k, d.n), gm(bi), d.op_b(z, bi, tb).t(), c, add);
        }
    }
    if let Some(fresh) = r.wants(b, lo, true) {
        // d op(B) = op(A)^T G.
        let gb = &mut lo[range(b)];
        for bi in 0..d.batch {
            let add = !fresh || (d.sb == 0 && bi > 0);
            let opb = d.op_b(z, bi, tb);
            let s = bi * d.sb;
            let c = MatMut {
                data: &mut gb[s..s + d.k * d.n],
                rs: opb.rs,
                cs: opb.cs,
            };
            gemm.run((d.k, d.n, d.m), d.op_a(x, bi, ta).t(), gm(bi), c, add);
        }
    }
}

/// `X W + b`: `dX = G W^T`, `dW = X^T G`, `db` = the column sums of `G`.
#[inline(always)]
fn linear(r: &mut Rule, lo: &mut [f64], gemm: &mut Gemm, (x, w, b): (u32, u32, Option<u32>)) {
    let (g, vals) = (r.g, r.vals);
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    let (fan_in, fan_out) = (shape(w).dim(0), shape(w).dim(1));
    let rows = shape(x).numel() / fan_in;
    let gm = crate::gemm::MatRef::rows(g, fan_out);
    if let Some(fresh) = r.wants(x, lo, true) {
        // dX = G W^T
        let c = MatMut {
            data: &mut lo[range(x)],
            rs: fan_in,
            cs: 1,
        };
        let wt = crate::gemm::MatRef::rows(&vals[range(w)], fan_out).t();
        gemm.run((rows, fan_in, fan_out), gm, wt, c, !fresh);
    }
    if let Some(fresh) = r.wants(w, lo, true) {
        // dW = X^T G
        let c = MatMut {
            data: &mut lo[range(w)],
            rs: fan_out,
            cs: 1,
        };
        let xt = crate::gemm::MatRef::rows(&vals[range(x)], fan_in).t();
        gemm.run((fan_in, fan_out, rows), xt, gm, c, !fresh);
    }
    if let Some(b) = b {
        if r.wants(b, lo, false).is_some() {
            let gb = &mut lo[range(b)];
            for row in g.chunks_exact(fan_out) {
                for (d, &e) in gb.iter_mut().zip(row) {
                    *d += e;
                }
            }
        }
    }
}

/// The last two axes swapped: `g` transposed back.
#[inline(always)]
fn transpose(r: &mut Rule, lo: &mut [f64], a: u32) {
    let g = r.g;
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    if r.wants(a, lo, false).is_some() {
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
                    db[i * cols + j] += gb[j * rows + i];
                }
            }
        }
    }
}

/// Operands joined along an axis: each gets its own part of `g`.
#[inline(always)]
fn concat(r: &mut Rule, lo: &mut [f64], out: Shape, parts: &[u32], axis: u8) {
    let g = r.g;
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    let axis = axis as usize;
    let (outer, total, inner) = out.split_at_axis(axis);
    let mut cum = 0;
    for &j in parts {
        let w = shape(j).dim(axis) * inner;
        // Each operand's gradient is its own part of g, read once.
        if let Some(fresh) = r.wants(j, lo, true) {
            let gj = &mut lo[range(j)];
            if w == 1 {
                // One element per row: a strided read (see the forward).
                for (o, d) in gj.iter_mut().enumerate() {
                    let e = g[o * total * inner + cum];
                    *d = if fresh { e } else { *d + e };
                }
            } else {
                for o in 0..outer {
                    let s = o * total * inner + cum;
                    let (dst, src) = (&mut gj[o * w..(o + 1) * w], &g[s..s + w]);
                    if fresh {
                        dst.copy_from_slice(src);
                    } else {
                        dst.iter_mut().zip(src).for_each(|(d, &e)| *d += e);
                    }
                }
            }
        }
        cum += w;
    }
}

/// A range along an axis: `g` added into that range.
#[inline(always)]
fn slice(r: &mut Rule, lo: &mut [f64], (x, axis, start, len): (u32, u8, u32, u32)) {
    let g = r.g;
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    if r.wants(x, lo, false).is_some() {
        let (outer, n, inner) = shape(x).split_at_axis(axis as usize);
        let w = len as usize * inner;
        let gx = &mut lo[range(x)];
        for o in 0..outer {
            let s = (o * n + start as usize) * inner;
            for (d, &e) in gx[s..s + w].iter_mut().zip(&g[o * w..(o + 1) * w]) {
                *d += e;
            }
        }
    }
}

/// A (scaled) sum over one axis or everything: `g` spread back over the summed axis.
#[inline(always)]
fn sum(r: &mut Rule, lo: &mut [f64], x: u32, axis: Option<u8>, scale: f64) {
    let g = r.g;
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    if r.wants(x, lo, false).is_some() {
        let gx = &mut lo[range(x)];
        match axis {
            None => {
                let v = scale * g[0];
                gx.iter_mut().for_each(|d| *d += v);
            }
            Some(ax) => {
                let (outer, n, inner) = shape(x).split_at_axis(ax as usize);
                for o in 0..outer {
                    let src = &g[o * inner..(o + 1) * inner];
                    for j in 0..n {
                        let s = (o * n + j) * inner;
                        for (d, &e) in gx[s..s + inner].iter_mut().zip(src) {
                            *d += scale * e;
                        }
                    }
                }
            }
        }
    }
}

/// `dx_t = y_t (g_t - sum_u y_u g_u)` along the axis.
#[inline(always)]
fn softmax(r: &mut Rule, lo: &mut [f64], x: u32, axis: u8) {
    let (g, y) = (r.g, r.y);
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    if r.wants(x, lo, false).is_some() {
        let s = shape(x);
        let dims = s.padded();
        let ax = axis as usize + MAX_RANK - s.rank();
        let len = dims[ax];
        let gx = &mut lo[range(x)];
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

/// The electroneutrality projector applied to each row.
#[inline(always)]
fn project(r: &mut Rule, lo: &mut [f64], f: u32, w: u32) {
    let (g, vals) = (r.g, r.vals);
    let nodes = r.nodes;
    let range = |j: u32| nodes[j as usize].range();
    let shape = |j: u32| nodes[j as usize].shape;
    if let Some(fresh) = r.wants(f, lo, true) {
        let s = shape(f).last();
        project_rows(&mut lo[range(f)], g, &vals[range(w)], s, !fresh);
    }
}

/// `d[o] = f(o)` for every element.
#[inline(always)]
fn set_each(d: &mut [f64], f: impl Fn(usize) -> f64) {
    for (o, v) in d.iter_mut().enumerate() {
        *v = f(o);
    }
}

/// `d[o] = f(o)` when `fresh` (the region's first touch), else `d[o] += f(o)`.
#[inline(always)]
fn put_each(d: &mut [f64], fresh: bool, f: impl Fn(usize) -> f64) {
    if fresh {
        set_each(d, f);
    } else {
        for (o, v) in d.iter_mut().enumerate() {
            *v += f(o);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    A,
    B,
}

/// `grad_side[idx] += f(out_index, a_index, b_index)` over the broadcast iteration space
/// (a broadcast operand's gradient sums over the axes it was broadcast along). Rows along the
/// merged last axis are handled with constant strides so the loops vectorise.
#[inline(always)]
fn acc_bcast(plan: &Bcast, ga: &mut [f64], side: Side, f: impl Fn(usize, usize, usize) -> f64) {
    if plan.same {
        for (o, d) in ga.iter_mut().enumerate() {
            *d += f(o, o, o);
        }
        return;
    }
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
