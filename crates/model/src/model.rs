//! The three variants on the tape: `attention_node` (the paper), `node` (no attention
//! head) and `mlp` (no ODE), with the loss and gradient-free prediction.
//!
//! How a trainer uses it, per step:
//!
//! ```text
//! tape.clear(); store.zero_grad();
//! let fwd = model.forward(&mut tape, &store, &batch, ForwardOptions::default())?;
//! let loss = model.loss(&mut tape, &fwd)?;          // needs batch targets
//! tape.backward_into(loss.total, &mut store)?;
//! adam.step(&mut store)?;                            // ionode_train::optim
//! ```
//! and `model.predict(&store, &batch)` for permeates, rejections and attention maps.

use crate::attention::{attend, HeadVars};
use crate::config::{Electroneutrality, Encoding, FeedLevel, ModelConfig, Prior, Solver, Variant};
use crate::constraint::{charge_penalty, charge_residual, project};
use crate::encoding::sinusoidal;
use crate::error::{ModelError, Result};
use crate::odenet::{add_linear, OdeNet};
use crate::slots::{Batch, Prepared};
use crate::solver::{dopri5, rk4, DopriOptions, Trajectory};
use ionode_autodiff::{ParamId, ParamStore, Tape, Var};
use ionode_random::SplitMix64;
use ndarray::{Array2, Array3};

/// What [`Model::forward`] records besides the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Read the attention maps (end point and trajectory mean) off the tape
    /// (`attention_node` only; costs one extra gradient-free field evaluation with RK4).
    pub attention: bool,
}

/// Per-sample attention maps `[B, S, S]` (row = query ion, column = key ion; rows of absent
/// ions are zero, every present row sums to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionMaps {
    /// At the end point `(x(t), t)`.
    pub end: Array3<f64>,
    /// Averaged over the trajectory (trapezoidal rule over the solver's mesh in `s`).
    pub mean: Array3<f64>,
}

/// Work done by the solver in one forward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SolverStats {
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps (Dormand-Prince).
    pub rejected: usize,
    /// Vector-field evaluations.
    pub evaluations: usize,
}

/// The recorded forward pass.
#[derive(Clone, Debug)]
pub struct Forward {
    /// Predicted state `x(t) = c_p / unit` (see [`crate::State`]), `[B, S]`.
    pub x: Var,
    /// Charge residual `sum_i z_i x_i(t)` per sample, `[B]` (the soft penalty's input).
    pub charge: Var,
    /// States at the solver's mesh points `s_0 = 0 .. s_N = 1` (the first is `x(0)`, the
    /// last is `x`; for a [`Prior::Residual`], the correction's states, from 0); empty for
    /// mlp, which has no trajectory.
    pub trajectory: Vec<Var>,
    /// The mesh points `s_n` of `trajectory` (`s = tau / t`, so 1 is each sample's end).
    pub mesh_s: Vec<f64>,
    /// Attention maps, when asked for and the variant has a head.
    pub attention: Option<AttentionMaps>,
    /// Solver work.
    pub stats: SolverStats,
    /// The batch in the model's units (targets, `c_scale`, masks).
    pub prepared: Prepared,
    /// The projection direction `w` on the tape (see [`Prepared::w`]).
    w: Var,
}

/// The loss and its parts (scalars on the tape).
#[derive(Clone, Copy, Debug)]
pub struct Loss {
    /// What to backpropagate: `mse + lambda * penalty`.
    pub total: Var,
    /// Weighted masked mean squared error of `x(t)` against the target state.
    pub mse: Var,
    /// Soft electroneutrality penalty (before `lambda`), if the constraint is soft.
    pub penalty: Option<Var>,
}

/// Gradient-free predictions in physical units.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Permeate concentrations, mol/m3, `[B, S]` (0 for absent ions).
    pub permeate_mol_m3: Array2<f64>,
    /// Rejections `1 - c_p / c_f`, `[B, S]` (NaN for absent ions or a zero feed).
    pub rejection: Array2<f64>,
    /// Attention at the end point, `[B, S, S]` (attention_node only).
    pub attention_end: Option<Array3<f64>>,
    /// Attention averaged over the trajectory, `[B, S, S]` (attention_node only).
    pub attention_mean: Option<Array3<f64>>,
}

/// The model: its config and the handles of its parameters in a [`ParamStore`].
#[derive(Clone, Debug)]
pub struct Model {
    cfg: ModelConfig,
    /// Sinusoidal slot table `[S, d]` (empty when the encoding is learned or unused).
    pos_table: Vec<f64>,
    embed: Option<(ParamId, ParamId)>,
    pos: Option<ParamId>,
    head: Option<[ParamId; 3]>,
    net: OdeNet,
}

/// Tape handles of one forward pass (parameters copied in once, reused by every stage).
struct Vars {
    embed: Option<(Var, Var)>,
    pos: Option<Var>,
    head: Option<HeadVars>,
    net: Vec<(Var, Var)>,
}

/// Constants of one forward pass.
struct Consts {
    mask: Var,
    key_mask: Var,
    row_mask: Var,
    w: Var,
    log_feed3: Var,
    /// The level feature `[B, S, 1]`, with [`FeedLevel::Log`].
    level3: Option<Var>,
    /// The physics' transmission `[B, S, 1]`, with a [`Prior`].
    prior3: Option<Var>,
    zeros3: Var,
    t_col: Var,
}

impl Model {
    /// Build the model and register its freshly initialised parameters in `store`
    /// (PyTorch's default `nn.Linear` scheme, from a SplitMix64 stream seeded by `seed`).
    /// Parameter names: `embed.w/b`, `pos` (learned encoding), `att.wq/wk/wv`, `net.l{i}.w/b`.
    pub fn new(cfg: ModelConfig, store: &mut ParamStore, seed: u64) -> Result<Model> {
        cfg.validate()?;
        let (s, d, hdim) = (cfg.num_slots(), cfg.embed_dim, cfg.hidden);
        let mut rng = SplitMix64::new(seed);
        let ode = cfg.variant != Variant::Mlp;
        let embed = if ode {
            Some(add_linear(
                store,
                &mut rng,
                "embed",
                cfg.token_features(),
                d,
            )?)
        } else {
            None
        };
        let pos = if ode && cfg.encoding == Encoding::Learned {
            let v: Vec<f64> = (0..s * d).map(|_| rng.symmetric(1.0)).collect();
            Some(store.add("pos", &[s, d], &v)?)
        } else {
            None
        };
        let head = if cfg.variant == Variant::AttentionNode {
            let a = 1.0 / (d as f64).sqrt();
            let mut mat = |name: &str| {
                let v: Vec<f64> = (0..d * d).map(|_| rng.symmetric(a)).collect();
                store.add(name, &[d, d], &v)
            };
            Some([mat("att.wq")?, mat("att.wk")?, mat("att.wv")?])
        } else {
            None
        };
        let level = cfg.feed_level.token_features() - 3;
        let prior = cfg.prior.token_features() * s;
        let input = if ode {
            s * d + 1
        } else {
            2 * s + 1 + level + prior
        };
        let net = OdeNet::new(store, &mut rng, "net", (input, hdim, s, cfg.layers))?;
        if cfg.prior == Prior::Residual {
            // The correction starts at exactly zero: an untrained residual model is the
            // physics, and training moves it only as far as the data ask.
            let (w, b) = net.last().expect("at least one layer");
            store.value_mut(w).fill(0.0);
            store.value_mut(b).fill(0.0);
        }
        let pos_table = if ode && cfg.encoding == Encoding::Sinusoidal {
            sinusoidal(s, d, cfg.encoding_base)
        } else {
            Vec::new()
        };
        Ok(Model {
            cfg,
            pos_table,
            embed,
            pos,
            head,
            net,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// Validate and convert a batch (see [`Prepared`]).
    pub fn prepare(&self, batch: &Batch) -> Result<Prepared> {
        Prepared::new(&self.cfg, batch)
    }

    /// Record the forward pass of `batch` on `t`.
    pub fn forward(
        &self,
        t: &mut Tape,
        store: &ParamStore,
        batch: &Batch,
        opts: ForwardOptions,
    ) -> Result<Forward> {
        let prep = self.prepare(batch)?;
        self.forward_prepared(t, store, prep, opts)
    }

    /// Record the forward pass of an already prepared batch.
    pub fn forward_prepared(
        &self,
        t: &mut Tape,
        store: &ParamStore,
        prep: Prepared,
        opts: ForwardOptions,
    ) -> Result<Forward> {
        let (b, s, d) = (prep.b, prep.s, self.cfg.embed_dim);
        let mut net = Vec::with_capacity(self.net.len());
        self.net.vars(t, store, &mut net);
        let v = Vars {
            embed: self
                .embed
                .map(|(w, bb)| (t.param(store, w), t.param(store, bb))),
            pos: match self.pos {
                Some(p) => Some(t.param(store, p)),
                None if !self.pos_table.is_empty() => Some(t.constant(&[s, d], &self.pos_table)?),
                None => None,
            },
            head: self.head.map(|[q, k, vv]| HeadVars {
                wq: t.param(store, q),
                wk: t.param(store, k),
                wv: t.param(store, vv),
            }),
            net,
        };
        let c = Consts {
            mask: t.constant(&[b, s], &prep.mask)?,
            key_mask: t.constant(&[b, 1, s], &prep.mask)?,
            row_mask: t.constant(&[b, s, 1], &prep.mask)?,
            w: t.constant(&[b, s], &prep.w)?,
            log_feed3: t.constant(&[b, s, 1], &prep.log_feed)?,
            level3: match self.cfg.feed_level {
                FeedLevel::None => None,
                FeedLevel::Log { .. } => Some(t.constant(&[b, s, 1], &prep.level)?),
            },
            prior3: match self.cfg.prior {
                Prior::None => None,
                _ => Some(t.constant(&[b, s, 1], &prep.prior)?),
            },
            zeros3: t.full(&[b, s, 1], 0.0)?,
            t_col: t.constant(&[b, 1], &prep.t_end)?,
        };
        let x0 = t.constant(&[b, s], &prep.x0)?;
        // The residual's base: the physics' state, to which the variant adds its correction.
        let base = match self.cfg.prior {
            Prior::Residual => Some(t.constant(&[b, s], &prep.prior_x)?),
            _ => None,
        };
        let (x, trajectory, mesh_s, attention, stats) = if self.cfg.variant == Variant::Mlp {
            let x = self.mlp(t, &v, &c, &prep, x0, base.unwrap_or(x0))?;
            (x, Vec::new(), Vec::new(), None, SolverStats::default())
        } else {
            // A residual integrates the correction, from zero.
            let start = match base {
                Some(_) => t.full(&[b, s], 0.0)?,
                None => x0,
            };
            let want = opts.attention && self.head.is_some();
            let tr = self.integrate(t, &v, &c, &prep, start, want)?;
            let maps = if want {
                Some(attention_maps(t, &tr, &prep))
            } else {
                None
            };
            let stats = SolverStats {
                accepted: tr.accepted,
                rejected: tr.rejected,
                evaluations: tr.evaluations,
            };
            let mut states = Vec::with_capacity(tr.mesh.len() + 1);
            states.push(start);
            states.extend_from_slice(&tr.mesh);
            let x = match base {
                Some(base) => t.add(base, tr.x_end)?,
                None => tr.x_end,
            };
            (x, states, tr.s, maps, stats)
        };
        let charge = charge_residual(t, x, c.w)?;
        Ok(Forward {
            x,
            charge,
            trajectory,
            mesh_s,
            attention,
            stats,
            prepared: prep,
            w: c.w,
        })
    }

    /// The `mlp` baseline: `x = base + t * P(m * net([x0, log feed, t]))`, where `base` is
    /// the feed's state `x0` (or, for a residual, the physics' state). The residual form
    /// keeps the physical limit of the ODE variants (`t = 0` gives the feed) and the same
    /// hard constraint, so the ablation compares architectures, not priors.
    fn mlp(
        &self,
        t: &mut Tape,
        v: &Vars,
        c: &Consts,
        prep: &Prepared,
        x0: Var,
        base: Var,
    ) -> Result<Var> {
        let (b, s) = (prep.b, prep.s);
        let lf = t.reshape(c.log_feed3, &[b, s])?;
        let mut parts = vec![x0, lf, c.t_col];
        if let FeedLevel::Log { .. } = self.cfg.feed_level {
            let level: Vec<f64> = prep
                .c_scale
                .iter()
                .map(|&cs| self.cfg.feed_level.feature(cs))
                .collect();
            parts.push(t.constant(&[b, 1], &level)?);
        }
        if let Some(p3) = c.prior3 {
            parts.push(t.reshape(p3, &[b, s])?);
        }
        let inp = t.concat(&parts, 1)?;
        let out = OdeNet::apply(t, &v.net, inp)?;
        let out = self.constrain(t, c, out)?;
        let inc = t.mul(out, c.t_col)?;
        let x = t.add(base, inc)?;
        if let Some(pos) = t.value(x).iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite {
                what: "state",
                sample: pos / s,
                s: 1.0,
            });
        }
        Ok(x)
    }

    /// Mask the network's output and, for the hard constraint, project it.
    fn constrain(&self, t: &mut Tape, c: &Consts, out: Var) -> Result<Var> {
        let out = t.mul(out, c.mask)?;
        match self.cfg.electroneutrality {
            Electroneutrality::Hard => Ok(project(t, out, c.w)?),
            _ => Ok(out),
        }
    }

    /// The vector field in the normalised variable: `g(x, s) = t * f(x, s t)`, `[B, S]`,
    /// and the attention map of this evaluation when `want_att`.
    fn field(
        &self,
        t: &mut Tape,
        v: &Vars,
        c: &Consts,
        (x, tau): (Var, Var),
        want_att: bool,
    ) -> Result<(Var, Option<Var>)> {
        let dims = t.shape(x);
        let (b, s) = (dims.dim(0), dims.dim(1));
        let d = self.cfg.embed_dim;
        let x3 = t.reshape(x, &[b, s, 1])?;
        let tau3 = t.reshape(tau, &[b, 1, 1])?;
        let tau_tok = t.add(c.zeros3, tau3)?;
        let mut parts = vec![x3, c.log_feed3, tau_tok];
        parts.extend(c.level3);
        parts.extend(c.prior3);
        let tokens = t.concat(&parts, 2)?;
        let (ew, eb) = v.embed.expect("ODE variants have an embedding");
        let mut emb = t.linear(tokens, ew, Some(eb))?;
        if let Some(p) = v.pos {
            emb = t.add(emb, p)?;
        }
        let (feat, att) = match v.head {
            Some(h) => {
                let (ctx, att) = attend(t, h, emb, c.key_mask, c.row_mask)?;
                (ctx, want_att.then_some(att))
            }
            None => (t.mul(emb, c.row_mask)?, None),
        };
        let flat = t.reshape(feat, &[b, s * d])?;
        let hin = t.concat(&[flat, tau], 1)?;
        let out = OdeNet::apply(t, &v.net, hin)?;
        let out = self.constrain(t, c, out)?;
        Ok((t.mul(out, c.t_col)?, att))
    }

    fn integrate(
        &self,
        t: &mut Tape,
        v: &Vars,
        c: &Consts,
        prep: &Prepared,
        x0: Var,
        want_att: bool,
    ) -> Result<Trajectory> {
        let b = prep.b;
        let mut tau = vec![0.0; b];
        let mut g = |t: &mut Tape, x: Var, sv: f64| -> Result<(Var, Option<Var>)> {
            for (o, &te) in tau.iter_mut().zip(&prep.t_end) {
                *o = sv * te;
            }
            let tau_v = t.constant(&[b, 1], &tau)?;
            self.field(t, v, c, (x, tau_v), want_att)
        };
        match self.cfg.solver {
            Solver::Rk4 { steps } => rk4(t, x0, steps, &mut g),
            Solver::Dopri5 {
                rtol,
                atol,
                max_steps,
                first_step,
            } => dopri5(
                t,
                x0,
                &prep.mask,
                DopriOptions {
                    rtol,
                    atol,
                    max_steps,
                    first_step,
                },
                &mut g,
            ),
        }
    }

    /// Record the loss of a forward pass: the weighted masked MSE of `x(t)` against the
    /// target state (`c_p / c_scale`, or `c_p / c_f` for the transmission state; mean over
    /// present, weighted values), plus for the soft constraint
    /// `lambda * mean_b (sum_i z_i x_i)^2` at the output, or with `also_trajectory` its
    /// average over the trajectory (trapezoidal in `s` on the solver's mesh; the mlp has no
    /// trajectory and uses the output).
    pub fn loss(&self, t: &mut Tape, fwd: &Forward) -> Result<Loss> {
        let prep = &fwd.prepared;
        let tg = prep
            .targets
            .as_ref()
            .ok_or_else(|| ModelError::Batch("the loss needs target permeates".into()))?;
        let (b, s) = (prep.b, prep.s);
        let y = t.constant(&[b, s], &tg.x)?;
        let wt = t.constant(&[b, s], &tg.weight)?;
        // Observed targets: the intrinsic prediction through the film model first,
        // T_obs = T E / (1 + T (E - 1)) (an intrinsic sample has E = 1).
        let x = match &tg.film {
            None => fwd.x,
            Some(f) => {
                let to_t = t.constant(&[b, s], &f.to_t)?;
                let e = t.constant(&[b, s], &f.e)?;
                let e1 = t.constant(&[b, s], &f.e_minus_1)?;
                let from_t = t.constant(&[b, s], &f.from_t)?;
                let tr = t.mul(fwd.x, to_t)?;
                let num = t.mul(tr, e)?;
                let den = t.mul(tr, e1)?;
                let den = t.add_scalar(den, 1.0)?;
                let obs = t.div(num, den)?;
                t.mul(obs, from_t)?
            }
        };
        let e = t.sub(x, y)?;
        let e2 = t.square(e)?;
        let we2 = t.mul(e2, wt)?;
        let sse = t.sum(we2)?;
        let mse = t.scale(sse, 1.0 / tg.weight_sum)?;
        match self.cfg.electroneutrality {
            Electroneutrality::Soft {
                lambda,
                also_trajectory,
            } => {
                let penalty = if also_trajectory && fwd.trajectory.len() > 1 {
                    // Time average over s in [0, 1] by the trapezoidal rule on the solver's
                    // mesh: unlike a plain mean over mesh points it converges as the mesh
                    // refines, so an adaptive mesh that moves with the parameters changes
                    // it only at the quadrature error.
                    let sm = &fwd.mesh_s;
                    let mut acc = None;
                    for (n, &xn) in fwd.trajectory.iter().enumerate() {
                        let left = if n > 0 { sm[n] - sm[n - 1] } else { 0.0 };
                        let right = if n + 1 < sm.len() {
                            sm[n + 1] - sm[n]
                        } else {
                            0.0
                        };
                        let p = charge_penalty(t, xn, fwd.w)?;
                        let p = t.scale(p, 0.5 * (left + right))?;
                        acc = Some(match acc {
                            Some(a) => t.add(a, p)?,
                            None => p,
                        });
                    }
                    acc.expect("a trajectory has states")
                } else {
                    charge_penalty(t, fwd.x, fwd.w)?
                };
                let lp = t.scale(penalty, lambda)?;
                Ok(Loss {
                    total: t.add(mse, lp)?,
                    mse,
                    penalty: Some(penalty),
                })
            }
            _ => Ok(Loss {
                total: mse,
                mse,
                penalty: None,
            }),
        }
    }

    /// Predict permeates, rejections and (attention_node) attention maps, without gradients.
    pub fn predict(&self, store: &ParamStore, batch: &Batch) -> Result<Prediction> {
        self.predict_with(&mut Tape::new(), store, batch)
    }

    /// [`Model::predict`] reusing a tape (cleared first; its buffers are kept).
    pub fn predict_with(
        &self,
        t: &mut Tape,
        store: &ParamStore,
        batch: &Batch,
    ) -> Result<Prediction> {
        t.clear();
        let prev = t.set_grad_enabled(false);
        let fwd = self.forward(t, store, batch, ForwardOptions { attention: true });
        t.set_grad_enabled(prev);
        let fwd = fwd?;
        let prep = &fwd.prepared;
        let (b, s) = (prep.b, prep.s);
        let xv = t.value(fwd.x);
        let mut permeate = Array2::zeros((b, s));
        let mut rejection = Array2::from_elem((b, s), f64::NAN);
        for i in 0..b {
            for j in 0..s {
                let k = i * s + j;
                if prep.mask[k] != 0.0 {
                    let cp = prep.unit[k] * xv[k];
                    permeate[[i, j]] = cp;
                    let cf = batch.feed_mol_m3[[i, j]];
                    if cf > 0.0 {
                        rejection[[i, j]] = 1.0 - cp / cf;
                    }
                }
            }
        }
        let (attention_end, attention_mean) = match fwd.attention {
            Some(m) => (Some(m.end), Some(m.mean)),
            None => (None, None),
        };
        Ok(Prediction {
            permeate_mol_m3: permeate,
            rejection,
            attention_end,
            attention_mean,
        })
    }
}

/// Host copies of the attention maps: the end point and the trapezoidal mean over the mesh
/// in `s` (the trajectory's length is 1 in `s` for every sample). Rows of absent ions are
/// zeroed (their softmax over present keys is computed but never used by the model).
fn attention_maps(t: &Tape, tr: &Trajectory, prep: &Prepared) -> AttentionMaps {
    let (b, s) = (prep.b, prep.s);
    let mut end = Array3::zeros((b, s, s));
    let mut mean = Array3::zeros((b, s, s));
    let n = tr.attention.len().min(tr.s.len());
    if n == 0 {
        return AttentionMaps { end, mean };
    }
    let ev = t.value(tr.attention[n - 1]);
    for (o, &a) in end.iter_mut().zip(ev) {
        *o = a;
    }
    if n == 1 {
        mean.assign(&end);
    } else {
        for i in 0..n - 1 {
            let wgt = 0.5 * (tr.s[i + 1] - tr.s[i]);
            for a in [tr.attention[i], tr.attention[i + 1]] {
                for (o, &v) in mean.iter_mut().zip(t.value(a)) {
                    *o += wgt * v;
                }
            }
        }
    }
    for bi in 0..b {
        for q in 0..s {
            if prep.mask[bi * s + q] == 0.0 {
                for k in 0..s {
                    end[[bi, q, k]] = 0.0;
                    mean[[bi, q, k]] = 0.0;
                }
            }
        }
    }
    AttentionMaps { end, mean }
}
