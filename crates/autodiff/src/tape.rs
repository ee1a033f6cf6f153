//! The tape (Wengert list): storage, leaves, readers and the backward driver.
//!
//! Op recording lives in `ops.rs` and the per-op backward rules in `backward.rs`; both are
//! `impl Tape` blocks over the private fields defined here.

use crate::error::{AdError, Result};
use crate::gemm::Gemm;
use crate::params::{ParamId, ParamStore};
use crate::shape::Shape;
use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension, IxDyn};
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

/// Source of epochs: every tape, and every `clear`, gets a fresh one, so a handle from another
/// tape or from before a clear is detected instead of silently reading the wrong node.
static NEXT_EPOCH: AtomicU32 = AtomicU32::new(1);

fn next_epoch() -> u32 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// Handle of a node on a [`Tape`]: a small integer index plus the tape's epoch.
///
/// `Copy`, 8 bytes, valid until the tape is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var {
    pub(crate) idx: u32,
    pub(crate) epoch: u32,
}

impl Var {
    /// Position of the node on its tape (recording order).
    pub fn index(self) -> usize {
        self.idx as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum UnOp {
    Neg,
    Scale(f64),
    Shift(f64),
    Exp,
    Log,
    Tanh,
    Square,
    Sqrt,
}

/// What produced a node, with its saved operands (node indices, already validated).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    /// Constant or input leaf.
    Leaf,
    /// A copy of a parameter; its gradient goes back to the store.
    Param(ParamId),
    /// Reshape or detach: shares the storage (values and gradient) of the root node that owns
    /// it (the source, or the source's own root if the source is an alias). No backward work.
    Alias(u32),
    Binary(BinOp, u32, u32),
    Unary(UnOp, u32),
    MatMul {
        a: u32,
        b: u32,
        ta: bool,
        tb: bool,
    },
    Linear {
        x: u32,
        w: u32,
        b: Option<u32>,
    },
    Transpose(u32),
    /// Operands are `operands[start..start + len]`.
    Concat {
        start: u32,
        len: u32,
        axis: u8,
    },
    Slice {
        x: u32,
        axis: u8,
        start: u32,
        len: u32,
    },
    /// Sum over one axis or (axis `None`) over everything, times `scale` (1/n for a mean).
    Sum {
        x: u32,
        axis: Option<u8>,
        scale: f64,
    },
    /// The mask is only needed in forward: backward skips the exact zeros it produced.
    Softmax {
        x: u32,
        axis: u8,
    },
    Project {
        f: u32,
        w: u32,
    },
}

impl Op {
    /// The node that owns the storage of node `j` recorded with this op (aliases record
    /// their root directly).
    pub(crate) fn storage_root(self, j: u32) -> u32 {
        match self {
            Op::Alias(root) => root,
            _ => j,
        }
    }
}

/// One entry of the Wengert list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub op: Op,
    pub shape: Shape,
    /// Start of the node's values in `vals` (and of its gradient in `grads`).
    pub off: usize,
    /// Whether a gradient flows to this node.
    pub rg: bool,
}

impl Node {
    pub(crate) fn range(&self) -> Range<usize> {
        self.off..self.off + self.shape.numel()
    }
}

/// Size of one recorded step, for benchmarks and memory budgeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapeStats {
    /// Nodes recorded.
    pub nodes: usize,
    /// f64 values stored for this step (outputs of every node; aliases share storage).
    pub values: usize,
    /// Bytes this step uses: node records + values + gradients.
    pub step_bytes: usize,
    /// Bytes reserved by the tape (all buffer capacities, including GEMM packing buffers).
    pub reserved_bytes: usize,
}

/// A reverse-mode tape over small dense f64 tensors.
///
/// Values of all nodes live in one arena `Vec<f64>` (each node records an offset), gradients
/// in a second arena with the same layout. Inputs always precede outputs in the arena, so a
/// node's computation reads `vals[..off]` and writes `vals[off..]` through `split_at_mut`,
/// with no `unsafe` and no reference counting. [`Tape::clear`] forgets the nodes but keeps
/// every buffer (the arenas even keep their length, so they are not zero-filled again):
/// re-recording the same computation allocates nothing.
#[derive(Debug)]
pub struct Tape {
    pub(crate) nodes: Vec<Node>,
    pub(crate) vals: Vec<f64>,
    pub(crate) grads: Vec<f64>,
    pub(crate) reached: Vec<bool>,
    /// Per storage root: whether its gradient region was zeroed during this backward sweep.
    pub(crate) zeroed: Vec<bool>,
    pub(crate) operands: Vec<u32>,
    pub(crate) gemm: Gemm,
    /// Values in use this step; `vals.len()` is the high-water mark (see [`Tape::push`]).
    pub(crate) used: usize,
    epoch: u32,
    grad_enabled: bool,
    /// Nodes covered by the last backward (gradients of later nodes are not computed).
    grads_for: usize,
}

impl Default for Tape {
    fn default() -> Self {
        Tape::new()
    }
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Tape {
        Tape {
            nodes: Vec::new(),
            vals: Vec::new(),
            grads: Vec::new(),
            reached: Vec::new(),
            zeroed: Vec::new(),
            operands: Vec::new(),
            gemm: Gemm::default(),
            used: 0,
            epoch: next_epoch(),
            grad_enabled: true,
            grads_for: 0,
        }
    }

    /// Forget every node but keep all buffers' capacity. Old [`Var`]s become invalid.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.used = 0;
        self.reached.clear();
        self.zeroed.clear();
        self.operands.clear();
        self.epoch = next_epoch();
        self.grads_for = 0;
    }

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Size of the current recording.
    pub fn stats(&self) -> TapeStats {
        let f = std::mem::size_of::<f64>();
        TapeStats {
            nodes: self.nodes.len(),
            values: self.used,
            step_bytes: self.nodes.len() * std::mem::size_of::<Node>()
                + 2 * self.used * f
                + self.operands.len() * 4,
            reserved_bytes: self.nodes.capacity() * std::mem::size_of::<Node>()
                + (self.vals.capacity() + self.grads.capacity()) * f
                + self.reached.capacity()
                + self.zeroed.capacity()
                + self.operands.capacity() * 4
                + self.gemm.capacity_bytes(),
        }
    }

    // ----- gradient mode -----

    /// Whether newly recorded ops track gradients.
    pub fn grad_enabled(&self) -> bool {
        self.grad_enabled
    }

    /// Turn gradient tracking for newly recorded ops on or off; returns the previous setting.
    /// With tracking off every new node is a constant (cheaper backward, nothing flows back).
    pub fn set_grad_enabled(&mut self, on: bool) -> bool {
        std::mem::replace(&mut self.grad_enabled, on)
    }

    /// Run `f` with gradient tracking off (like `torch.no_grad()`), restoring the mode after.
    pub fn no_grad<R>(&mut self, f: impl FnOnce(&mut Tape) -> R) -> R {
        let prev = self.set_grad_enabled(false);
        let r = f(self);
        self.grad_enabled = prev;
        r
    }

    // ----- internal helpers -----

    pub(crate) fn id(&self, v: Var) -> Result<u32> {
        if v.epoch != self.epoch || v.idx as usize >= self.nodes.len() {
            Err(AdError::StaleVar { idx: v.idx })
        } else {
            Ok(v.idx)
        }
    }

    fn expect_node(&self, v: Var) -> &Node {
        match self.id(v) {
            Ok(i) => &self.nodes[i as usize],
            Err(e) => panic!("{e}"),
        }
    }

    /// Split the arena into everything before `out` (read-only inputs) and `out` itself.
    pub(crate) fn split_out(vals: &mut [f64], out: Range<usize>) -> (&[f64], &mut [f64]) {
        let (src, rest) = vals.split_at_mut(out.start);
        (src, &mut rest[..out.len()])
    }

    pub(crate) fn node(&self, i: u32) -> Node {
        self.nodes[i as usize]
    }

    /// Append a node with a fresh value region; returns its handle and the region.
    ///
    /// The arena is never shrunk: after the first step the region already exists and holds
    /// a previous step's numbers, so nothing is zero-filled. Every op therefore writes its
    /// whole output (reductions zero their output first).
    pub(crate) fn push(&mut self, op: Op, shape: Shape, rg: bool) -> (Var, Range<usize>) {
        let off = self.used;
        self.used += shape.numel();
        if self.vals.len() < self.used {
            self.vals.resize(self.used, 0.0);
        }
        (self.push_at(op, shape, off, rg).0, off..self.used)
    }

    /// Append a node whose storage is `off` (an alias of an earlier node's storage).
    pub(crate) fn push_at(&mut self, op: Op, shape: Shape, off: usize, rg: bool) -> (Var, usize) {
        self.nodes.push(Node {
            op,
            shape,
            off,
            rg: rg && self.grad_enabled,
        });
        let v = Var {
            idx: self.nodes.len() as u32 - 1,
            epoch: self.epoch,
        };
        (v, off)
    }

    // ----- leaves -----

    fn leaf(&mut self, op: &'static str, dims: &[usize], data: &[f64], rg: bool) -> Result<Var> {
        let shape = Shape::new(dims)?;
        if data.len() != shape.numel() {
            return Err(AdError::DataLen {
                op,
                len: data.len(),
                shape,
                need: shape.numel(),
            });
        }
        let (v, r) = self.push(Op::Leaf, shape, rg);
        self.vals[r].copy_from_slice(data);
        Ok(v)
    }

    /// A constant (no gradient) with row-major `data`.
    pub fn constant(&mut self, dims: &[usize], data: &[f64]) -> Result<Var> {
        self.leaf("constant", dims, data, false)
    }

    /// An input leaf that receives a gradient (read it with [`Tape::grad`] after backward).
    pub fn input(&mut self, dims: &[usize], data: &[f64]) -> Result<Var> {
        self.leaf("input", dims, data, true)
    }

    /// A constant copied from an ndarray (any layout, any rank up to 3).
    pub fn constant_array<S, D>(&mut self, a: &ArrayBase<S, D>) -> Result<Var>
    where
        S: Data<Elem = f64>,
        D: Dimension,
    {
        let shape = Shape::new(a.shape())?;
        let (v, r) = self.push(Op::Leaf, shape, false);
        for (o, x) in self.vals[r].iter_mut().zip(a.iter()) {
            *o = *x;
        }
        Ok(v)
    }

    /// A constant filled with `value`.
    pub fn full(&mut self, dims: &[usize], value: f64) -> Result<Var> {
        let shape = Shape::new(dims)?;
        let (v, r) = self.push(Op::Leaf, shape, false);
        self.vals[r].fill(value);
        Ok(v)
    }

    /// A boolean mask as a constant (`true` -> 1.0, `false` -> 0.0), for
    /// [`Tape::masked_softmax`] or to zero absent slots with [`Tape::mul`].
    pub fn mask(&mut self, dims: &[usize], keep: &[bool]) -> Result<Var> {
        let shape = Shape::new(dims)?;
        if keep.len() != shape.numel() {
            return Err(AdError::DataLen {
                op: "mask",
                len: keep.len(),
                shape,
                need: shape.numel(),
            });
        }
        let (v, r) = self.push(Op::Leaf, shape, false);
        for (o, &k) in self.vals[r].iter_mut().zip(keep) {
            *o = if k { 1.0 } else { 0.0 };
        }
        Ok(v)
    }

    /// A rank-0 constant.
    pub fn scalar(&mut self, value: f64) -> Var {
        let (v, r) = self.push(Op::Leaf, Shape::scalar(), false);
        self.vals[r.start] = value;
        v
    }

    /// Feed parameter `id` of `store` into the tape as a leaf (its current value is copied).
    /// After [`Tape::backward`], [`Tape::accumulate_param_grads`] adds its gradient into the
    /// store. Record each parameter once per step and reuse the handle (e.g. across RK4
    /// stages): the copy is then made once per step.
    ///
    /// # Panics
    /// If `id` does not belong to `store`.
    pub fn param(&mut self, store: &ParamStore, id: ParamId) -> Var {
        let data = store.value(id);
        let (v, r) = self.push(Op::Param(id), store.shape(id), true);
        self.vals[r].copy_from_slice(data);
        v
    }

    // ----- readers (panic on stale handles: that is a programming error) -----

    /// The node's shape.
    ///
    /// # Panics
    /// If `v` is stale (from another tape or before the last clear); so do the other readers.
    pub fn shape(&self, v: Var) -> Shape {
        self.expect_node(v).shape
    }

    /// The node's value, row-major, without copying.
    pub fn value(&self, v: Var) -> &[f64] {
        &self.vals[self.expect_node(v).range()]
    }

    /// The node's value as an ndarray view (no copy).
    pub fn view(&self, v: Var) -> ArrayViewD<'_, f64> {
        let n = self.expect_node(v);
        ArrayViewD::from_shape(IxDyn(n.shape.dims()), &self.vals[n.range()])
            .expect("arena region matches shape")
    }

    /// The node's value copied into an owned ndarray.
    pub fn to_array(&self, v: Var) -> ArrayD<f64> {
        self.view(v).to_owned()
    }

    /// The first (for a scalar, the only) element of the node's value.
    pub fn item(&self, v: Var) -> f64 {
        self.value(v)[0]
    }

    /// Whether a gradient flows to this node.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.expect_node(v).rg
    }

    /// The node's gradient from the last [`Tape::backward`], if it requires one (`None` also
    /// for nodes recorded after that backward).
    pub fn grad(&self, v: Var) -> Option<&[f64]> {
        let n = self.expect_node(v);
        (n.rg && v.index() < self.grads_for).then(|| &self.grads[n.range()])
    }

    /// The node's gradient as an ndarray view.
    pub fn grad_view(&self, v: Var) -> Option<ArrayViewD<'_, f64>> {
        let shape = self.shape(v);
        self.grad(v)
            .map(|g| ArrayViewD::from_shape(IxDyn(shape.dims()), g).expect("shape"))
    }

    // ----- backward -----

    /// Reverse-mode sweep from a scalar `loss`: one scan over the nodes in reverse order,
    /// each accumulating into its inputs' gradients. Gradients start from zero on every call.
    pub fn backward(&mut self, loss: Var) -> Result<()> {
        let il = self.id(loss)? as usize;
        let nl = self.nodes[il];
        if nl.shape.numel() != 1 {
            return Err(AdError::BadShape {
                op: "backward",
                shape: nl.shape,
                why: "the loss must have exactly one element",
            });
        }
        self.backward_seeded(loss, &[1.0])
    }

    /// Vector-Jacobian product: the reverse sweep from `output` with its gradient set to
    /// `seed` (row-major, `output`'s element count), so every node's gradient becomes
    /// `seed . d output / d node`. This is what gradient checkpointing needs: e.g. record one
    /// RK4 step from an [`input`](Tape::input) state, seed it with the adjoint of the next
    /// state, read the adjoint of this state with [`Tape::grad`], and accumulate parameter
    /// gradients, holding one step's tape in memory instead of the whole trajectory's.
    pub fn backward_seeded(&mut self, output: Var, seed: &[f64]) -> Result<()> {
        let il = self.id(output)? as usize;
        let nl = self.nodes[il];
        if seed.len() != nl.shape.numel() {
            return Err(AdError::DataLen {
                op: "backward_seeded",
                len: seed.len(),
                shape: nl.shape,
                need: nl.shape.numel(),
            });
        }
        if !nl.rg {
            return Err(AdError::Invalid {
                op: "backward",
                why: "the output does not depend on anything that requires a gradient",
            });
        }
        // Gradient regions are zeroed lazily, on first touch (see `backward_node`), instead of
        // one sweep over the whole arena up front: that sweep streamed tens of MB through the
        // cache for the RK4 model and cost about a fifth of backward.
        if self.grads.len() < self.used {
            self.grads.resize(self.used, 0.0);
        }
        self.reached.clear();
        self.reached.resize(self.nodes.len(), false);
        self.zeroed.clear();
        self.zeroed.resize(self.nodes.len(), false);
        let root = nl.op.storage_root(il as u32) as usize;
        self.grads[nl.range()].copy_from_slice(seed);
        self.zeroed[root] = true;
        self.reached[il] = true;
        for i in (0..=il).rev() {
            if self.nodes[i].rg && self.reached[i] {
                self.backward_node(i);
            }
        }
        // Nodes the sweep never reached have gradient zero: make their regions say so.
        for i in 0..self.nodes.len() {
            let n = self.nodes[i];
            let root = n.op.storage_root(i as u32) as usize;
            if n.rg && !self.zeroed[root] {
                self.grads[n.range()].fill(0.0);
                self.zeroed[root] = true;
            }
        }
        self.grads_for = self.nodes.len();
        Ok(())
    }

    /// Set all node gradients to zero (they are also reset by every [`Tape::backward`]).
    pub fn zero_grad(&mut self) {
        let n = self.used.min(self.grads.len());
        self.grads[..n].fill(0.0);
    }

    /// Add the gradients of every parameter leaf into `store` (which is not zeroed first, so
    /// several tapes or steps can accumulate; call [`ParamStore::zero_grad`] as needed).
    pub fn accumulate_param_grads(&self, store: &mut ParamStore) -> Result<()> {
        if self.grads_for == 0 {
            return Err(AdError::Invalid {
                op: "accumulate_param_grads",
                why: "no gradients: call backward first",
            });
        }
        for n in &self.nodes[..self.grads_for] {
            if let (Op::Param(id), true) = (n.op, n.rg) {
                for (d, s) in store.grad_mut(id).iter_mut().zip(&self.grads[n.range()]) {
                    *d += s;
                }
            }
        }
        Ok(())
    }

    /// [`Tape::backward`] then [`Tape::accumulate_param_grads`].
    pub fn backward_into(&mut self, loss: Var, store: &mut ParamStore) -> Result<()> {
        self.backward(loss)?;
        self.accumulate_param_grads(store)
    }
}
