//! Recording ops: shape checks (with both shapes in every error) and forward kernels.

use crate::broadcast::{strides_in, Bcast};
use crate::error::{AdError, Result};
use crate::fastmath;
use crate::gemm::{MatMut, MatRef, Write};
use crate::shape::{Shape, MAX_RANK};
use crate::tape::{BinOp, Op, Tape, UnOp, Var};

/// Batched-matmul geometry shared by forward and backward.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MmDims {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Element stride between consecutive batch items (0 for a shared rank-2 operand).
    pub sa: usize,
    pub sb: usize,
}

impl MmDims {
    pub(crate) fn new(a: Shape, b: Shape, ta: bool, tb: bool) -> Result<(MmDims, Shape)> {
        let err = |why| AdError::Shape {
            op: "matmul",
            lhs: a,
            rhs: b,
            why,
        };
        if !(2..=3).contains(&a.rank()) || !(2..=3).contains(&b.rank()) {
            return Err(err("operands must have rank 2 or 3"));
        }
        let split = |s: Shape, t: bool| {
            let d = s.dims();
            let (bt, r, c) = if d.len() == 3 {
                (d[0], d[1], d[2])
            } else {
                (1, d[0], d[1])
            };
            if t {
                (bt, c, r)
            } else {
                (bt, r, c)
            }
        };
        let (ba, m, ka) = split(a, ta);
        let (bb, kb, n) = split(b, tb);
        if ka != kb {
            return Err(err("inner dimensions differ"));
        }
        if a.rank() == 3 && b.rank() == 3 && ba != bb {
            return Err(err("batch sizes differ"));
        }
        let batch = ba.max(bb);
        let mut d = MmDims {
            batch,
            m,
            n,
            k: ka,
            sa: if a.rank() == 3 { m * ka } else { 0 },
            sb: if b.rank() == 3 { ka * n } else { 0 },
        };
        let out = if a.rank() == 3 || b.rank() == 3 {
            Shape::new(&[batch, m, n])?
        } else {
            Shape::new(&[m, n])?
        };
        // [B, M, K] x [K, N] with A not transposed is one [B*M, K] x [K, N] product.
        if a.rank() == 3 && b.rank() == 2 && !ta {
            d.m *= batch;
            d.batch = 1;
            d.sa = 0;
        }
        Ok((d, out))
    }

    /// `op(A)` for batch item `i`, as a strided view.
    pub(crate) fn op_a<'a>(&self, a: &'a [f64], i: usize, ta: bool) -> MatRef<'a> {
        let s = &a[i * self.sa..i * self.sa + self.m * self.k];
        if ta {
            MatRef::rows(s, self.m).t()
        } else {
            MatRef::rows(s, self.k)
        }
    }

    /// `op(B)` for batch item `i`, as a strided view.
    pub(crate) fn op_b<'a>(&self, b: &'a [f64], i: usize, tb: bool) -> MatRef<'a> {
        let s = &b[i * self.sb..i * self.sb + self.k * self.n];
        if tb {
            MatRef::rows(s, self.k).t()
        } else {
            MatRef::rows(s, self.n)
        }
    }
}

/// Visit the rows along `ax` (padded axis 0..3) of a rank-3-padded tensor: calls
/// `f(x_base, x_step, m_base, m_step)` for each, where `m*` index a broadcast mask.
#[inline(always)]
pub(crate) fn for_rows(
    dims: [usize; MAX_RANK],
    ax: usize,
    ms: [usize; MAX_RANK],
    mut f: impl FnMut(usize, usize, usize, usize),
) {
    let xs = [dims[1] * dims[2], dims[2], 1];
    let (p, q) = match ax {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    for u in 0..dims[p] {
        for v in 0..dims[q] {
            f(u * xs[p] + v * xs[q], xs[ax], u * ms[p] + v * ms[q], ms[ax]);
        }
    }
}

fn check_axis(op: &'static str, shape: Shape, axis: usize) -> Result<()> {
    if axis >= shape.rank() {
        Err(AdError::Axis { op, axis, shape })
    } else {
        Ok(())
    }
}

impl Tape {
    // ----- elementwise binary ops with broadcasting -----

    fn binary(&mut self, op: BinOp, a: Var, b: Var) -> Result<Var> {
        let (ia, ib) = (self.id(a)?, self.id(b)?);
        let (na, nb) = (self.node(ia), self.node(ib));
        let plan = Bcast::new(op.name(), na.shape, nb.shape)?;
        let (v, r) = self.push(Op::Binary(op, ia, ib), plan.out, na.rg || nb.rg);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let (x, y) = (&src[na.range()], &src[nb.range()]);
        match op {
            BinOp::Add => bin_fwd(&plan, out, x, y, |p, q| p + q),
            BinOp::Sub => bin_fwd(&plan, out, x, y, |p, q| p - q),
            BinOp::Mul => bin_fwd(&plan, out, x, y, |p, q| p * q),
            BinOp::Div => bin_fwd(&plan, out, x, y, |p, q| p / q),
        }
        Ok(v)
    }

    /// `a + b` with right-aligned broadcasting (a row, a column, a scalar, ...).
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinOp::Add, a, b)
    }

    /// `a - b` with broadcasting.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinOp::Sub, a, b)
    }

    /// `a * b` (elementwise) with broadcasting.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinOp::Mul, a, b)
    }

    /// `a / b` (elementwise) with broadcasting.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinOp::Div, a, b)
    }

    // ----- elementwise unary ops -----

    fn unary(&mut self, op: UnOp, x: Var) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        let (v, r) = self.push(Op::Unary(op, ix), nx.shape, nx.rg);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let x = &src[nx.range()];
        match op {
            UnOp::Tanh => fastmath::tanh_slice(out, x),
            UnOp::Exp => fastmath::exp_slice(out, x),
            UnOp::Neg => out.iter_mut().zip(x).for_each(|(o, &p)| *o = -p),
            UnOp::Scale(c) => out.iter_mut().zip(x).for_each(|(o, &p)| *o = c * p),
            UnOp::Shift(c) => out.iter_mut().zip(x).for_each(|(o, &p)| *o = p + c),
            UnOp::Square => out.iter_mut().zip(x).for_each(|(o, &p)| *o = p * p),
            UnOp::Sqrt => out.iter_mut().zip(x).for_each(|(o, &p)| *o = p.sqrt()),
            UnOp::Log => out.iter_mut().zip(x).for_each(|(o, &p)| *o = p.ln()),
        }
        Ok(v)
    }

    /// `-x`.
    pub fn neg(&mut self, x: Var) -> Result<Var> {
        self.unary(UnOp::Neg, x)
    }

    /// `c * x` for a constant `c` (no constant node needed, e.g. RK4 weights).
    pub fn scale(&mut self, x: Var, c: f64) -> Result<Var> {
        self.unary(UnOp::Scale(c), x)
    }

    /// `x + c` for a constant `c`.
    pub fn add_scalar(&mut self, x: Var, c: f64) -> Result<Var> {
        self.unary(UnOp::Shift(c), x)
    }

    /// `e^x` (vectorised Cephes approximation, a few ulp).
    pub fn exp(&mut self, x: Var) -> Result<Var> {
        self.unary(UnOp::Exp, x)
    }

    /// Natural logarithm (gradient `1/x`; the caller keeps `x > 0`).
    pub fn log(&mut self, x: Var) -> Result<Var> {
        self.unary(UnOp::Log, x)
    }

    /// `tanh(x)` (vectorised Cephes approximation, a few ulp; gradient `1 - y^2`).
    pub fn tanh(&mut self, x: Var) -> Result<Var> {
        self.unary(UnOp::Tanh, x)
    }

    /// `x^2`.
    pub fn square(&mut self, x: Var) -> Result<Var> {
        self.unary(UnOp::Square, x)
    }

    /// `sqrt(x)` (gradient `1/(2 sqrt x)`, infinite at 0).
    pub fn sqrt(&mut self, x: Var) -> Result<Var> {
        self.unary(UnOp::Sqrt, x)
    }

    // ----- linear algebra -----

    /// Matrix product: `[M,K] x [K,N]`, batched `[B,M,K] x [B,K,N]`, or a rank-3 by rank-2
    /// product with the rank-2 operand shared across the batch.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.matmul_t(a, b, false, false)
    }

    /// `op(a) op(b)` where `op` transposes the last two axes when `ta`/`tb` is set; the
    /// transpose is free (strided read), e.g. attention scores are `matmul_t(q, k, false, true)`.
    pub fn matmul_t(&mut self, a: Var, b: Var, ta: bool, tb: bool) -> Result<Var> {
        let (ia, ib) = (self.id(a)?, self.id(b)?);
        let (na, nb) = (self.node(ia), self.node(ib));
        let (d, out_shape) = MmDims::new(na.shape, nb.shape, ta, tb)?;
        let (v, r) = self.push(
            Op::MatMul {
                a: ia,
                b: ib,
                ta,
                tb,
            },
            out_shape,
            na.rg || nb.rg,
        );
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let (x, y) = (&src[na.range()], &src[nb.range()]);
        for i in 0..d.batch {
            let c = MatMut {
                data: &mut out[i * d.m * d.n..(i + 1) * d.m * d.n],
                rs: d.n,
                cs: 1,
            };
            self.gemm.run(
                (d.m, d.n, d.k),
                d.op_a(x, i, ta),
                d.op_b(y, i, tb),
                c,
                false,
            );
        }
        Ok(v)
    }

    /// Fused linear layer `x W + b` over the last axis of `x`: `x` is `[.., in]` (rank 1 to 3,
    /// e.g. `[B, S, in]` applies the layer to every token), `W` is `[in, out]`, `b` is `[out]`.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var> {
        let (ix, iw) = (self.id(x)?, self.id(w)?);
        let ib = b.map(|b| self.id(b)).transpose()?;
        let (nx, nw) = (self.node(ix), self.node(iw));
        if nw.shape.rank() != 2 {
            return Err(AdError::Shape {
                op: "linear",
                lhs: nx.shape,
                rhs: nw.shape,
                why: "the weight must be [in, out]",
            });
        }
        let (fan_in, fan_out) = (nw.shape.dim(0), nw.shape.dim(1));
        if nx.shape.rank() == 0 || nx.shape.last() != fan_in {
            return Err(AdError::Shape {
                op: "linear",
                lhs: nx.shape,
                rhs: nw.shape,
                why: "the input's last axis must equal the weight's first",
            });
        }
        let mut rg = nx.rg || nw.rg;
        if let Some(ib) = ib {
            let nb = self.node(ib);
            if nb.shape.rank() != 1 || nb.shape.dim(0) != fan_out {
                return Err(AdError::Shape {
                    op: "linear (bias)",
                    lhs: nw.shape,
                    rhs: nb.shape,
                    why: "the bias must be [out] for a weight [in, out]",
                });
            }
            rg |= nb.rg;
        }
        let out_shape = nx.shape.with_dim(nx.shape.rank() - 1, fan_out);
        let rows = nx.shape.numel() / fan_in;
        let (v, r) = self.push(
            Op::Linear {
                x: ix,
                w: iw,
                b: ib,
            },
            out_shape,
            rg,
        );
        let (src, out) = Tape::split_out(&mut self.vals, r);
        // The bias is added in the product's write-back (no pass filling the rows first).
        let write = match ib {
            Some(ib) => Write::Bias(&src[self.nodes[ib as usize].range()]),
            None => Write::Set,
        };
        let c = MatMut {
            data: out,
            rs: fan_out,
            cs: 1,
        };
        self.gemm.run_with(
            (rows, fan_out, fan_in),
            MatRef::rows(&src[nx.range()], fan_in),
            MatRef::rows(&src[nw.range()], fan_out),
            c,
            write,
        );
        Ok(v)
    }

    /// Swap the last two axes (materialised).
    pub fn transpose(&mut self, x: Var) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        let r = nx.shape.rank();
        if r < 2 {
            return Err(AdError::BadShape {
                op: "transpose",
                shape: nx.shape,
                why: "needs rank 2 or 3",
            });
        }
        let (rows, cols) = (nx.shape.dim(r - 2), nx.shape.dim(r - 1));
        let out_shape = nx.shape.with_dim(r - 2, cols).with_dim(r - 1, rows);
        let (v, r) = self.push(Op::Transpose(ix), out_shape, nx.rg);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let x = &src[nx.range()];
        for (xb, ob) in x
            .chunks_exact(rows * cols)
            .zip(out.chunks_exact_mut(rows * cols))
        {
            for i in 0..rows {
                for j in 0..cols {
                    ob[j * rows + i] = xb[i * cols + j];
                }
            }
        }
        Ok(v)
    }

    // ----- shape ops -----

    /// Same values, new shape (same element count). Free: the result shares storage.
    pub fn reshape(&mut self, x: Var, dims: &[usize]) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        let shape = Shape::new(dims)?;
        if shape.numel() != nx.shape.numel() {
            return Err(AdError::Shape {
                op: "reshape",
                lhs: nx.shape,
                rhs: shape,
                why: "element counts differ",
            });
        }
        let root = nx.op.storage_root(ix);
        Ok(self.push_at(Op::Alias(root), shape, nx.off, nx.rg).0)
    }

    /// The same value with gradient flow cut (free: shares storage).
    pub fn detach(&mut self, x: Var) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        let root = nx.op.storage_root(ix);
        Ok(self.push_at(Op::Alias(root), nx.shape, nx.off, false).0)
    }

    /// Concatenate along `axis`; all other extents must agree.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var> {
        let Some(&first) = xs.first() else {
            return Err(AdError::Invalid {
                op: "concat",
                why: "needs at least one operand",
            });
        };
        let s0 = self.shape_checked(first)?;
        check_axis("concat", s0, axis)?;
        let start = self.operands.len();
        let mut total = 0;
        let mut rg = false;
        for &x in xs {
            let ix = match self.id(x) {
                Ok(i) => i,
                Err(e) => {
                    self.operands.truncate(start);
                    return Err(e);
                }
            };
            let n = self.node(ix);
            if n.shape.rank() != s0.rank() || n.shape.with_dim(axis, 1) != s0.with_dim(axis, 1) {
                self.operands.truncate(start);
                return Err(AdError::Shape {
                    op: "concat",
                    lhs: s0,
                    rhs: n.shape,
                    why: "extents must agree except along the concat axis",
                });
            }
            total += n.shape.dim(axis);
            rg |= n.rg;
            self.operands.push(ix);
        }
        let out_shape = s0.with_dim(axis, total);
        let op = Op::Concat {
            start: start as u32,
            len: xs.len() as u32,
            axis: axis as u8,
        };
        let (v, r) = self.push(op, out_shape, rg);
        let (outer, _, inner) = out_shape.split_at_axis(axis);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let mut cum = 0;
        for &ix in &self.operands[start..] {
            let n = self.nodes[ix as usize];
            let w = n.shape.dim(axis) * inner;
            let x = &src[n.range()];
            if w == 1 {
                // One element per row (a token's features): a strided gather, not a
                // `memcpy` call per element.
                for (o, &v) in x.iter().enumerate() {
                    out[o * total * inner + cum] = v;
                }
            } else {
                for o in 0..outer {
                    let d = o * total * inner + cum;
                    out[d..d + w].copy_from_slice(&x[o * w..(o + 1) * w]);
                }
            }
            cum += w;
        }
        Ok(v)
    }

    fn slice_impl(
        &mut self,
        op: &'static str,
        x: Var,
        axis: usize,
        start: usize,
        len: usize,
        keep: bool,
    ) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        check_axis(op, nx.shape, axis)?;
        let n = nx.shape.dim(axis);
        if len == 0 || start + len > n {
            return Err(AdError::BadShape {
                op,
                shape: nx.shape,
                why: "range is empty or exceeds the axis extent",
            });
        }
        let out_shape = if keep {
            nx.shape.with_dim(axis, len)
        } else {
            nx.shape.without_axis(axis)
        };
        let sop = Op::Slice {
            x: ix,
            axis: axis as u8,
            start: start as u32,
            len: len as u32,
        };
        let (v, r) = self.push(sop, out_shape, nx.rg);
        let (outer, _, inner) = nx.shape.split_at_axis(axis);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let x = &src[nx.range()];
        let w = len * inner;
        for o in 0..outer {
            let s = (o * n + start) * inner;
            out[o * w..(o + 1) * w].copy_from_slice(&x[s..s + w]);
        }
        Ok(v)
    }

    /// Entries `start..start + len` along `axis` (the axis is kept, with extent `len`).
    pub fn slice(&mut self, x: Var, axis: usize, start: usize, len: usize) -> Result<Var> {
        self.slice_impl("slice", x, axis, start, len, true)
    }

    /// Entry `index` along `axis`, dropping the axis (e.g. slot `i` of `[B, S]` gives `[B]`).
    pub fn select(&mut self, x: Var, axis: usize, index: usize) -> Result<Var> {
        self.slice_impl("select", x, axis, index, 1, false)
    }

    // ----- reductions -----

    fn reduce(&mut self, x: Var, axis: Option<usize>, mean: bool, keep: bool) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        let (out_shape, count) = match axis {
            None => (Shape::scalar(), nx.shape.numel()),
            Some(ax) => {
                check_axis(if mean { "mean_axis" } else { "sum_axis" }, nx.shape, ax)?;
                let s = if keep {
                    nx.shape.with_dim(ax, 1)
                } else {
                    nx.shape.without_axis(ax)
                };
                (s, nx.shape.dim(ax))
            }
        };
        let scale = if mean { 1.0 / count as f64 } else { 1.0 };
        let op = Op::Sum {
            x: ix,
            axis: axis.map(|a| a as u8),
            scale,
        };
        let (v, r) = self.push(op, out_shape, nx.rg);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let x = &src[nx.range()];
        match axis {
            None => out[0] = scale * x.iter().sum::<f64>(),
            Some(ax) => {
                let (outer, n, inner) = nx.shape.split_at_axis(ax);
                out.fill(0.0);
                for o in 0..outer {
                    let dst = &mut out[o * inner..(o + 1) * inner];
                    for j in 0..n {
                        let s = &x[(o * n + j) * inner..(o * n + j + 1) * inner];
                        for (d, &e) in dst.iter_mut().zip(s) {
                            *d += e;
                        }
                    }
                    if scale != 1.0 {
                        dst.iter_mut().for_each(|d| *d *= scale);
                    }
                }
            }
        }
        Ok(v)
    }

    /// Sum of all elements (a scalar).
    pub fn sum(&mut self, x: Var) -> Result<Var> {
        self.reduce(x, None, false, false)
    }

    /// Mean of all elements (a scalar).
    pub fn mean(&mut self, x: Var) -> Result<Var> {
        self.reduce(x, None, true, false)
    }

    /// Sum along `axis`, removing it.
    pub fn sum_axis(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(x, Some(axis), false, false)
    }

    /// Mean along `axis`, removing it.
    pub fn mean_axis(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(x, Some(axis), true, false)
    }

    /// Sum along `axis`, keeping it with extent 1 (so the result broadcasts back).
    pub fn sum_axis_keepdim(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(x, Some(axis), false, true)
    }

    /// Mean along `axis`, keeping it with extent 1.
    pub fn mean_axis_keepdim(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.reduce(x, Some(axis), true, true)
    }

    // ----- softmax and the projector -----

    /// Softmax along `axis`.
    pub fn softmax(&mut self, x: Var, axis: usize) -> Result<Var> {
        self.softmax_impl(x, None, axis)
    }

    /// Softmax along `axis` over the entries where `mask != 0` only. `mask` is a constant
    /// broadcastable to `x` (e.g. a key mask `[B, 1, S]` for scores `[B, S, S]`). Masked
    /// entries are exactly 0 and get exactly 0 gradient; a fully masked row is all zeros.
    pub fn masked_softmax(&mut self, x: Var, mask: Var, axis: usize) -> Result<Var> {
        self.softmax_impl(x, Some(mask), axis)
    }

    fn softmax_impl(&mut self, x: Var, mask: Option<Var>, axis: usize) -> Result<Var> {
        let ix = self.id(x)?;
        let nx = self.node(ix);
        check_axis("softmax", nx.shape, axis)?;
        let im = mask.map(|m| self.id(m)).transpose()?;
        let mut ms = [0; MAX_RANK];
        if let Some(im) = im {
            let nm = self.node(im);
            let plan = Bcast::new("masked_softmax", nx.shape, nm.shape)?;
            if plan.out != nx.shape {
                return Err(AdError::Shape {
                    op: "masked_softmax",
                    lhs: nx.shape,
                    rhs: nm.shape,
                    why: "the mask must broadcast to the input's shape",
                });
            }
            if nm.rg {
                return Err(AdError::Invalid {
                    op: "masked_softmax",
                    why: "the mask must be a constant (it receives no gradient)",
                });
            }
            // Per-axis strides (the plan's own are axis-merged).
            ms = strides_in(nm.shape.padded(), nx.shape.padded());
        }
        let op = Op::Softmax {
            x: ix,
            axis: axis as u8,
        };
        let (v, r) = self.push(op, nx.shape, nx.rg);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        let x = &src[nx.range()];
        let mvals = im.map(|im| &src[self.nodes[im as usize].range()]);
        let dims = nx.shape.padded();
        let ax = axis + MAX_RANK - nx.shape.rank();
        let len = dims[ax];
        if ax == MAX_RANK - 1 {
            softmax_rows_fwd(x, out, len, dims[1], ms, mvals);
            return Ok(v);
        }
        let keep = |mb: usize| mvals.is_none_or(|m| m[mb] != 0.0);
        // Pass 1: shift by the row max over kept entries; masked entries become -inf.
        for_rows(dims, ax, ms, |xb, xs, mb, mstep| {
            let mut mx = f64::NEG_INFINITY;
            for t in 0..len {
                if keep(mb + t * mstep) {
                    mx = mx.max(x[xb + t * xs]);
                }
            }
            for t in 0..len {
                let i = xb + t * xs;
                out[i] = if keep(mb + t * mstep) && mx > f64::NEG_INFINITY {
                    x[i] - mx
                } else {
                    f64::NEG_INFINITY
                };
            }
        });
        // Pass 2: one vectorised exp over the whole tensor (exp(-inf) is exactly 0).
        fastmath::exp_inplace(out);
        // Pass 3: normalise; an all-masked row has sum 0 and stays all zeros.
        for_rows(dims, ax, ms, |xb, xs, _, _| {
            let s: f64 = (0..len).map(|t| out[xb + t * xs]).sum();
            let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
            for t in 0..len {
                out[xb + t * xs] *= inv;
            }
        });
        Ok(v)
    }

    /// Orthogonal projection of every row of `f` (last axis) onto the complement of `w`:
    /// `f - w (w.f)/(w.w)`, the hard electroneutrality constraint with `w = z * m`.
    ///
    /// `w` has `f`'s shape (one direction per row) or is `[S]` (shared by all rows). It must
    /// be a constant: its gradient is not implemented (it is a fixed charge-times-mask
    /// vector in the model). A row with `w.w == 0` is passed through unchanged (`P = I`).
    /// Since `P = I - w w^T/(w^T w)` is symmetric, the backward pass applies `P` to the
    /// incoming gradient.
    pub fn project_orthogonal(&mut self, f: Var, w: Var) -> Result<Var> {
        let (i_f, iw) = (self.id(f)?, self.id(w)?);
        let (nf, nw) = (self.node(i_f), self.node(iw));
        let s = nf.shape.last();
        let ok = nf.shape.rank() >= 1
            && (nw.shape == nf.shape || (nw.shape.rank() == 1 && nw.shape.dim(0) == s));
        if !ok {
            return Err(AdError::Shape {
                op: "project_orthogonal",
                lhs: nf.shape,
                rhs: nw.shape,
                why: "w must have f's shape or be one row [S]",
            });
        }
        if nw.rg {
            return Err(AdError::Invalid {
                op: "project_orthogonal",
                why: "w must be a constant (its gradient is not implemented)",
            });
        }
        let (v, r) = self.push(Op::Project { f: i_f, w: iw }, nf.shape, nf.rg);
        let (src, out) = Tape::split_out(&mut self.vals, r);
        project_rows(out, &src[nf.range()], &src[nw.range()], s, false);
        Ok(v)
    }

    fn shape_checked(&self, v: Var) -> Result<Shape> {
        Ok(self.node(self.id(v)?).shape)
    }
}

/// Softmax over contiguous rows of length `len` (the last axis), the common case.
/// `ms` are the mask's per-axis strides (padded rank 3) and `d1` the padded middle extent.
fn softmax_rows_fwd(
    x: &[f64],
    out: &mut [f64],
    len: usize,
    d1: usize,
    ms: [usize; MAX_RANK],
    mask: Option<&[f64]>,
) {
    let mut rows = x.chunks_exact(len).zip(out.chunks_exact_mut(len));
    // Rows are visited in order (u, v) over the two leading padded axes, so the mask row
    // start needs no integer division per row.
    let d0 = x.len() / (len * d1);
    for u in 0..d0 {
        for v in 0..d1 {
            let (xr, or) = rows.next().expect("row count");
            let mut mx = f64::NEG_INFINITY;
            match mask {
                None => {
                    for &e in xr {
                        mx = mx.max(e);
                    }
                    for (o, &e) in or.iter_mut().zip(xr) {
                        *o = e - mx;
                    }
                }
                Some(m) => {
                    let mb = u * ms[0] + v * ms[1];
                    let keep = |t: usize| m[mb + t * ms[2]] != 0.0;
                    for (t, &e) in xr.iter().enumerate() {
                        if keep(t) {
                            mx = mx.max(e);
                        }
                    }
                    for (t, (o, &e)) in or.iter_mut().zip(xr).enumerate() {
                        *o = if keep(t) && mx > f64::NEG_INFINITY {
                            e - mx
                        } else {
                            f64::NEG_INFINITY
                        };
                    }
                }
            }
        }
    }
    fastmath::exp_inplace(out);
    for or in out.chunks_exact_mut(len) {
        let s: f64 = or.iter().sum();
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        or.iter_mut().for_each(|o| *o *= inv);
    }
}

/// `out_row (+)= P f_row` for each row, `P = I - w w^T / (w.w)` (identity where `w.w == 0`).
#[inline]
pub(crate) fn project_rows(out: &mut [f64], f: &[f64], w: &[f64], s: usize, accumulate: bool) {
    let shared = w.len() == s;
    for (r, (orow, frow)) in out.chunks_exact_mut(s).zip(f.chunks_exact(s)).enumerate() {
        let wrow = if shared { w } else { &w[r * s..(r + 1) * s] };
        let (mut ww, mut wf) = (0.0, 0.0);
        for (&wi, &fi) in wrow.iter().zip(frow) {
            ww += wi * wi;
            wf += wi * fi;
        }
        let c = if ww > 0.0 { wf / ww } else { 0.0 };
        for ((o, &fi), &wi) in orow.iter_mut().zip(frow).zip(wrow) {
            let p = fi - c * wi;
            if accumulate {
                *o += p;
            } else {
                *o = p;
            }
        }
    }
}

#[inline(always)]
fn bin_fwd(plan: &Bcast, out: &mut [f64], x: &[f64], y: &[f64], f: impl Fn(f64, f64) -> f64) {
    if plan.same {
        for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
            *o = f(p, q);
        }
        return;
    }
    let n = plan.dims[2];
    // Rows along the merged last axis; each operand is contiguous (stride 1) or a repeated
    // scalar (stride 0) inside a row, so every case is a plain vectorisable loop.
    plan.for_each_row(|o, ia, ib| {
        let orow = &mut out[o..o + n];
        match (plan.sa[2], plan.sb[2]) {
            (1, 1) => {
                for ((o, &p), &q) in orow.iter_mut().zip(&x[ia..ia + n]).zip(&y[ib..ib + n]) {
                    *o = f(p, q);
                }
            }
            (1, _) => {
                let q = y[ib];
                for (o, &p) in orow.iter_mut().zip(&x[ia..ia + n]) {
                    *o = f(p, q);
                }
            }
            (_, 1) => {
                let p = x[ia];
                for (o, &q) in orow.iter_mut().zip(&y[ib..ib + n]) {
                    *o = f(p, q);
                }
            }
            _ => orow.fill(f(x[ia], y[ib])),
        }
    });
}
