//! The model's configuration: every choice that `MODEL.md` marks **\[ours\]** is a field here,
//! with the project's canonical value as its default, so a user who has the paper's numbers
//! can set them (serde, `#[serde(default)]`: a config file names only what it changes).

use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};

/// Which architecture (the ablation's "model" axis).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The paper's model: tokens -> embedding + slot encoding -> one attention head ->
    /// ODENet, integrated along the flux.
    #[default]
    AttentionNode,
    /// The same ODE without the attention head: the embedded tokens (embedding + slot
    /// encoding, absent rows zeroed) are flattened straight into the ODENet, so the only
    /// difference from `attention_node` is the head.
    Node,
    /// No ODE: (feed, flux) -> permeate through an MLP of the ODENet's width and depth.
    Mlp,
}

/// How a slot's position is encoded (added to the token embedding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Fixed transformer encoding `sin(p / base^(2k/d))`, `cos(...)` on alternate features.
    #[default]
    Sinusoidal,
    /// A learned vector per species (a `[S, d]` parameter).
    Learned,
}

/// How electroneutrality (`sum z c_p = 0`) is imposed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Electroneutrality {
    /// Project every derivative onto the complement of `w = z * m` (exact to rounding).
    #[default]
    Hard,
    /// Add `lambda * mean((sum_i z_i x_i)^2)` to the loss at the output, and with
    /// `also_trajectory` averaged over every mesh point of the integration instead.
    Soft {
        /// Weight of the penalty.
        lambda: f64,
        /// Penalise the residual along the whole trajectory, not only at the end.
        also_trajectory: bool,
    },
    /// No constraint (the ablation's control).
    None,
}

/// The ODE solver (ignored by the `mlp` variant). Both backpropagate through their steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Solver {
    /// Classical fixed-step RK4; each sample takes `steps` steps of `t / steps`.
    Rk4 {
        /// Steps per sample.
        steps: usize,
    },
    /// Adaptive Dormand-Prince 5(4) with one step size for the whole batch (see `solver.rs`).
    Dopri5 {
        /// Relative tolerance of the local error.
        rtol: f64,
        /// Absolute tolerance of the local error (in units of the state x).
        atol: f64,
        /// Attempted steps (accepted + rejected) before giving up with an error.
        max_steps: usize,
        /// First trial step in the normalised variable `s` in `[0, 1]`.
        first_step: f64,
    },
}

impl Default for Solver {
    fn default() -> Self {
        Solver::Rk4 { steps: 16 }
    }
}

impl Solver {
    /// Dormand-Prince with the crate's default tolerances (rtol 1e-6, atol 1e-8, 10 000
    /// steps, first step 0.1).
    pub fn dopri5_default() -> Solver {
        Solver::Dopri5 {
            rtol: 1e-6,
            atol: 1e-8,
            max_steps: 10_000,
            first_step: 0.1,
        }
    }
}

/// The sample's concentration scale `c_scale` that makes the state dimensionless.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CScale {
    /// `sum_i |z_i| c_f,i / 2` over present ions: the feed's equivalent concentration
    /// (for an electroneutral feed, the total cation charge = the total anion charge).
    #[default]
    HalfEquivalent,
}

/// What the ODE's state measures **\[ours\]**. Both start from the feed at `t = 0`, keep the
/// charge residual `sum_i z_i c_p,i / c_scale` as the electroneutrality measure, and
/// differ in how each ion's concentration is scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// MODEL.md: `x = c_p / c_scale`, `x(0) = c_f / c_scale`, projector direction
    /// `w = z * m`. An ion that is 1 % of its feed moves by 1 % of the state's scale, so
    /// the state loss hardly sees its rejection.
    #[default]
    Scaled,
    /// The transmission `x = c_p / c_f = 1 - R`, `x(0) = 1`, projector direction
    /// `w = z * m * c_f / c_scale` (so `sum w x` is the same charge residual). Every ion's
    /// rejection is on the same O(1) scale, whatever its share of the feed; present ions
    /// need a positive feed.
    Transmission,
}

/// How the water flux maps to the ODE's independent variable `t` **\[ours\]**.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeMap {
    /// MODEL.md: `t = J_v / j_ref`.
    #[default]
    Linear,
    /// `t = ln(1 + J_v / j_ref)`: linear below `j_ref`, logarithmic above. DSPM-DE
    /// rejections rise from 0 to most of their plateau within a few 1e-6 m/s; with
    /// `j_ref` near that scale, the rise and the plateau get comparable shares of `t`
    /// instead of the rise being squeezed into the first solver steps.
    Log,
}

impl TimeMap {
    /// `t` of a flux `J_v` (m/s) for the reference flux `j_ref` (m/s).
    pub fn t(self, flux_m_s: f64, j_ref_m_s: f64) -> f64 {
        match self {
            TimeMap::Linear => flux_m_s / j_ref_m_s,
            TimeMap::Log => (flux_m_s / j_ref_m_s).ln_1p(),
        }
    }
}

/// Whether the model sees the feed's overall concentration **\[ours\]**.
///
/// MODEL.md's token `[x_i, log(c_f,i / c_scale), t]` is scale-free: a feed and the same feed
/// ten times more concentrated give the model identical inputs, although Donnan exclusion
/// (fixed membrane charge against the feed's ionic strength) makes their rejections differ
/// a lot. `Log` appends `ln(c_scale / c_ref)` to every present ion's token (and to the mlp's
/// input).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeedLevel {
    /// MODEL.md: no level feature.
    #[default]
    None,
    /// Append `ln(c_scale / c_ref_mol_m3)`.
    Log {
        /// Reference concentration, mol/m3 (a typical feed level keeps the feature O(1)).
        c_ref_mol_m3: f64,
    },
}

impl FeedLevel {
    /// Token features per slot: 3, or 4 with the level.
    pub fn token_features(self) -> usize {
        match self {
            FeedLevel::None => 3,
            FeedLevel::Log { .. } => 4,
        }
    }

    /// The feature of a sample whose `c_scale` is `c_scale_mol_m3` (0 without the level).
    pub fn feature(self, c_scale_mol_m3: f64) -> f64 {
        match self {
            FeedLevel::None => 0.0,
            FeedLevel::Log { c_ref_mol_m3 } => (c_scale_mol_m3 / c_ref_mol_m3).ln(),
        }
    }
}

/// How the model uses the calibrated DSPM-DE's prediction of each sample **\[ours\]**
/// (MODEL.md section 7). The prediction comes with the batch ([`crate::Batch::prior_transmission`]):
/// the physics is solved once per sample by the caller, not on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Prior {
    /// MODEL.md: no physics in the model.
    #[default]
    None,
    /// Every present ion's token (the mlp: its input) also carries the DSPM-DE
    /// transmission `T_phys = 1 - R_phys` of that ion at the sample's flux.
    Feature,
    /// The prediction is the DSPM-DE's, corrected: `x = x_phys + delta(t)`, where the
    /// variant integrates the correction `delta` from `delta(0) = 0` (the mlp:
    /// `t * P(net)`), with `T_phys` in the tokens as for `feature`. The network's last
    /// layer starts at zero, so an untrained model is the physics exactly, and the hard
    /// constraint projects the correction (the physics' permeate is itself electroneutral).
    Residual,
}

impl Prior {
    /// True for [`Prior::None`] (the serialised config then omits the key).
    pub fn is_none(&self) -> bool {
        *self == Prior::None
    }

    /// The name a config file gives it (`none`, `feature`, `residual`).
    pub fn name(self) -> &'static str {
        match self {
            Prior::None => "none",
            Prior::Feature => "feature",
            Prior::Residual => "residual",
        }
    }

    /// Token features the prior adds (0 or 1).
    pub fn token_features(self) -> usize {
        usize::from(self != Prior::None)
    }
}

/// One ion slot: a species name and its charge number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IonSlot {
    /// Species name (as in the datasets, e.g. `Na+`, `SO4^2-`).
    pub name: String,
    /// Charge number z.
    pub charge: f64,
}

impl IonSlot {
    /// A slot.
    pub fn new(name: &str, charge: f64) -> IonSlot {
        IonSlot {
            name: name.to_string(),
            charge,
        }
    }
}

/// The default slots of `BENCH.md`: Na+, K+, Li+, Mg^2+, Ca^2+, Cl-, SO4^2-.
pub fn default_slots() -> Vec<IonSlot> {
    vec![
        IonSlot::new("Na+", 1.0),
        IonSlot::new("K+", 1.0),
        IonSlot::new("Li+", 1.0),
        IonSlot::new("Mg^2+", 2.0),
        IonSlot::new("Ca^2+", 2.0),
        IonSlot::new("Cl-", -1.0),
        IonSlot::new("SO4^2-", -2.0),
    ]
}

/// Upper bounds of the sizes a config may ask for. The parameters and the tape grow with
/// them, so a typo (`hidden = 6400000`) must be refused before anything is allocated, not
/// end the process in an allocation failure. Each bound is far above any model of the
/// paper's kind (d 16, width 64, 5 layers, 16 steps).
pub const MAX_SLOTS: usize = 64;
/// See [`MAX_SLOTS`].
pub const MAX_EMBED_DIM: usize = 1024;
/// See [`MAX_SLOTS`].
pub const MAX_HIDDEN: usize = 4096;
/// See [`MAX_SLOTS`].
pub const MAX_LAYERS: usize = 64;
/// Fixed RK4 steps per sample (see [`MAX_SLOTS`]).
pub const MAX_STEPS: usize = 10_000;
/// Attempted Dormand-Prince steps (see [`MAX_SLOTS`]).
pub const MAX_ADAPTIVE_STEPS: usize = 1_000_000;

/// Everything that defines the model (not its weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Architecture.
    pub variant: Variant,
    /// Ordered ion slots with charges (default the 7 of `BENCH.md`).
    pub slots: Vec<IonSlot>,
    /// Token embedding width d (default 16).
    pub embed_dim: usize,
    /// Hidden width of the ODENet (default 64).
    pub hidden: usize,
    /// Number of linear layers of the ODENet, tanh after all but the last (default 5).
    pub layers: usize,
    /// Slot encoding (default sinusoidal).
    pub encoding: Encoding,
    /// Base of the sinusoidal encoding (default 10 000, the transformer's).
    pub encoding_base: f64,
    /// Electroneutrality constraint (default hard).
    pub electroneutrality: Electroneutrality,
    /// ODE solver (default RK4, 16 steps).
    pub solver: Solver,
    /// Reference flux: `t = J_v / j_ref_m_s` (default 1e-5 m/s; see `time`).
    pub j_ref_m_s: f64,
    /// Flux -> `t` map (default MODEL.md's linear one).
    pub time: TimeMap,
    /// Definition of `c_scale` (default `sum |z| c_f / 2`).
    pub c_scale: CScale,
    /// What the state measures (default MODEL.md's `c_p / c_scale`).
    pub state: State,
    /// Whether tokens carry the feed's concentration level (default no, as MODEL.md).
    pub feed_level: FeedLevel,
    /// Floor inside the token's log feature `log(c_f / c_scale + floor)` (default 1e-12).
    pub log_floor: f64,
    /// Whether and how the calibrated DSPM-DE anchors the model (default: not at all).
    #[serde(skip_serializing_if = "Prior::is_none")]
    pub prior: Prior,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            variant: Variant::AttentionNode,
            slots: default_slots(),
            embed_dim: 16,
            hidden: 64,
            layers: 5,
            encoding: Encoding::Sinusoidal,
            encoding_base: 10_000.0,
            electroneutrality: Electroneutrality::Hard,
            solver: Solver::Rk4 { steps: 16 },
            j_ref_m_s: 1e-5,
            time: TimeMap::Linear,
            c_scale: CScale::HalfEquivalent,
            state: State::Scaled,
            feed_level: FeedLevel::None,
            log_floor: 1e-12,
            prior: Prior::None,
        }
    }
}

impl ModelConfig {
    /// Number of slots S.
    pub fn num_slots(&self) -> usize {
        self.slots.len()
    }

    /// Features of one token: `[x, log feed, t]`, the level, the prior.
    pub fn token_features(&self) -> usize {
        self.feed_level.token_features() + self.prior.token_features()
    }

    /// Charges in slot order.
    pub fn charges(&self) -> Vec<f64> {
        self.slots.iter().map(|s| s.charge).collect()
    }

    /// Check every field; the model refuses to build from an invalid config.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, why: String| Err(ModelError::Config { field, why });
        if self.slots.is_empty() {
            return bad("slots", "at least one ion slot is needed".into());
        }
        if self.slots.len() > MAX_SLOTS {
            return bad(
                "slots",
                format!(
                    "{} slots is more than the most, {MAX_SLOTS}",
                    self.slots.len()
                ),
            );
        }
        for (i, s) in self.slots.iter().enumerate() {
            if !s.charge.is_finite() || s.charge == 0.0 {
                return bad(
                    "slots",
                    format!("slot {i} ({}) has charge {}", s.name, s.charge),
                );
            }
            if self.slots[..i].iter().any(|o| o.name == s.name) {
                return bad("slots", format!("slot name {} appears twice", s.name));
            }
        }
        if self.embed_dim == 0 || self.embed_dim > MAX_EMBED_DIM {
            return bad(
                "embed_dim",
                format!("{} is not in 1..={}", self.embed_dim, MAX_EMBED_DIM),
            );
        }
        if self.hidden == 0 || self.hidden > MAX_HIDDEN {
            return bad(
                "hidden",
                format!("{} is not in 1..={}", self.hidden, MAX_HIDDEN),
            );
        }
        if self.layers == 0 || self.layers > MAX_LAYERS {
            return bad(
                "layers",
                format!("{} is not in 1..={}", self.layers, MAX_LAYERS),
            );
        }
        if !(self.encoding_base > 1.0 && self.encoding_base.is_finite()) {
            return bad(
                "encoding_base",
                format!("{} is not > 1", self.encoding_base),
            );
        }
        if !(self.j_ref_m_s > 0.0 && self.j_ref_m_s.is_finite()) {
            return bad("j_ref_m_s", format!("{} is not > 0", self.j_ref_m_s));
        }
        if !(self.log_floor > 0.0 && self.log_floor.is_finite()) {
            return bad("log_floor", format!("{} is not > 0", self.log_floor));
        }
        if let FeedLevel::Log { c_ref_mol_m3 } = self.feed_level {
            if !(c_ref_mol_m3 > 0.0 && c_ref_mol_m3.is_finite()) {
                return bad(
                    "feed_level.c_ref_mol_m3",
                    format!("{c_ref_mol_m3} is not > 0"),
                );
            }
        }
        if let Electroneutrality::Soft { lambda, .. } = self.electroneutrality {
            if !(lambda >= 0.0 && lambda.is_finite()) {
                return bad("electroneutrality.lambda", format!("{lambda} is not >= 0"));
            }
        }
        match self.solver {
            Solver::Rk4 { steps } if steps == 0 || steps > MAX_STEPS => {
                bad("solver.steps", format!("{steps} is not in 1..={MAX_STEPS}"))
            }
            Solver::Dopri5 {
                rtol,
                atol,
                max_steps,
                first_step,
            } => {
                let finite = rtol.is_finite() && atol.is_finite();
                if !(finite && rtol >= 0.0 && atol >= 0.0 && rtol + atol > 0.0) {
                    return bad(
                        "solver.rtol/atol",
                        format!("rtol {rtol}, atol {atol}: both finite, >= 0, not both 0"),
                    );
                }
                if max_steps == 0 || max_steps > MAX_ADAPTIVE_STEPS {
                    return bad(
                        "solver.max_steps",
                        format!("{max_steps} is not in 1..={MAX_ADAPTIVE_STEPS}"),
                    );
                }
                if !(first_step > 0.0 && first_step <= 1.0) {
                    return bad("solver.first_step", format!("{first_step} not in (0, 1]"));
                }
                Ok(())
            }
            Solver::Rk4 { .. } => Ok(()),
        }
    }
}
