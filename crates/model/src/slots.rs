//! Ion slots and masking: a [`Batch`] of plain arrays in physical units becomes the
//! dimensionless, masked host-side data the model records on the tape ([`Prepared`]).
//!
//! Everything an absent slot could influence is masked here, on the host, before any
//! arithmetic: its initial state, its log feature and its target are exactly 0 whatever the
//! caller put in the feed array (even NaN), and `c_scale` sums present ions only. That is
//! what makes "absent ions never influence present ones" exact rather than approximate.
#![allow(clippy::needless_range_loop)] // (sample, slot) index loops over several arrays read clearest

use crate::config::{ModelConfig, Prior, State};
use crate::error::{ModelError, Result};
use ndarray::{Array1, Array2};

/// A batch of samples over the config's ion slots, in physical units.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Feed concentrations `c_f` in mol/m3, `[B, S]` (absent slots: any value, ignored).
    pub feed_mol_m3: Array2<f64>,
    /// Which ions are present, `[B, S]`.
    pub mask: Array2<bool>,
    /// Transmembrane water flux `J_v` in m/s, `[B]`.
    pub flux_m_s: Array1<f64>,
    /// Measured or simulated permeate `c_p` in mol/m3, `[B, S]` (needed for the loss only).
    pub target_permeate_mol_m3: Option<Array2<f64>>,
    /// Per-value weights of the loss, `[B, S]`, >= 0 (default 1 for present ions). A weight
    /// of 0 marks a missing measurement; its target may then be NaN.
    pub target_weight: Option<Array2<f64>>,
    /// The calibrated DSPM-DE's transmission `c_p / c_f` of every present ion at the
    /// sample's flux, `[B, S]` (absent slots: ignored). Required exactly when the config's
    /// [`crate::Prior`] is not `none`.
    pub prior_transmission: Option<Array2<f64>>,
    /// Per sample, the film model's polarisation modulus `E = exp(J_v / k)` of a sample
    /// whose targets are observed rejections (1 for intrinsic ones), `[B]`. The loss then
    /// compares `T E / (1 + T (E - 1))` with the target instead of the predicted intrinsic
    /// transmission `T`, so the model learns intrinsic rejections through the conversion.
    pub film_factor: Option<Array1<f64>>,
}

impl Batch {
    /// A batch without targets (for prediction).
    pub fn new(feed_mol_m3: Array2<f64>, mask: Array2<bool>, flux_m_s: Array1<f64>) -> Batch {
        Batch {
            feed_mol_m3,
            mask,
            flux_m_s,
            target_permeate_mol_m3: None,
            target_weight: None,
            prior_transmission: None,
            film_factor: None,
        }
    }

    /// Rows `range` of the batch, as a batch of their own (a micro-batch).
    pub fn rows(&self, range: std::ops::Range<usize>) -> Batch {
        use ndarray::{Axis, Slice};
        let r = Slice::from(range);
        Batch {
            feed_mol_m3: self.feed_mol_m3.slice_axis(Axis(0), r).to_owned(),
            mask: self.mask.slice_axis(Axis(0), r).to_owned(),
            flux_m_s: self.flux_m_s.slice_axis(Axis(0), r).to_owned(),
            target_permeate_mol_m3: self
                .target_permeate_mol_m3
                .as_ref()
                .map(|t| t.slice_axis(Axis(0), r).to_owned()),
            target_weight: self
                .target_weight
                .as_ref()
                .map(|t| t.slice_axis(Axis(0), r).to_owned()),
            prior_transmission: self
                .prior_transmission
                .as_ref()
                .map(|t| t.slice_axis(Axis(0), r).to_owned()),
            film_factor: self
                .film_factor
                .as_ref()
                .map(|t| t.slice_axis(Axis(0), r).to_owned()),
        }
    }

    /// The same batch with permeate targets.
    pub fn with_target(mut self, target_permeate_mol_m3: Array2<f64>) -> Batch {
        self.target_permeate_mol_m3 = Some(target_permeate_mol_m3);
        self
    }

    /// The same batch with the physics prior (see [`Batch::prior_transmission`]).
    pub fn with_prior(mut self, prior_transmission: Option<Array2<f64>>) -> Batch {
        self.prior_transmission = prior_transmission;
        self
    }

    /// The same batch with film factors (see [`Batch::film_factor`]).
    pub fn with_film(mut self, film_factor: Option<Array1<f64>>) -> Batch {
        self.film_factor = film_factor;
        self
    }

    /// Number of samples B.
    pub fn len(&self) -> usize {
        self.flux_m_s.len()
    }

    /// True if the batch has no sample.
    pub fn is_empty(&self) -> bool {
        self.flux_m_s.is_empty()
    }
}

/// Loss targets in the model's scaled units.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// `c_p / unit` (the state's units) where the effective weight is positive, 0
    /// elsewhere, `[B*S]`.
    pub x: Vec<f64>,
    /// Effective weight `mask * target_weight`, `[B*S]`.
    pub weight: Vec<f64>,
    /// Sum of the effective weights (the masked mean's denominator).
    pub weight_sum: f64,
    /// The film conversion, when the batch has film factors.
    pub film: Option<Film>,
}

/// What the loss needs to turn a predicted intrinsic state into an observed one, per value
/// `[B*S]` (absent slots: 0, 1, 0, 0).
#[derive(Clone, Debug, PartialEq)]
pub struct Film {
    /// `unit / c_f`: the state to the transmission.
    pub to_t: Vec<f64>,
    /// The sample's polarisation modulus `E`.
    pub e: Vec<f64>,
    /// `E - 1`.
    pub e_minus_1: Vec<f64>,
    /// `c_f / unit`: the transmission back to the state.
    pub from_t: Vec<f64>,
}

/// A batch in the model's dimensionless, masked form (row-major `[B, S]` vectors).
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// Samples B.
    pub b: usize,
    /// Slots S.
    pub s: usize,
    /// 1.0 for present ions, 0.0 for absent.
    pub mask: Vec<f64>,
    /// The concentration (mol/m3) that a state of 1 stands for: `c_scale` (scaled state) or
    /// `c_f` (transmission state); 0 for absent slots. `c_p = unit * x`.
    pub unit: Vec<f64>,
    /// Projection direction `w = z * m * unit / c_scale`: `sum w x = sum z c_p / c_scale`.
    pub w: Vec<f64>,
    /// Initial state `x(0) = c_f / unit` (0 for absent slots).
    pub x0: Vec<f64>,
    /// Token feature `log(c_f / c_scale + log_floor) * m` (0 for absent slots).
    pub log_feed: Vec<f64>,
    /// Token feature `ln(c_scale / c_ref) * m` with [`crate::FeedLevel::Log`] (0 for absent slots;
    /// all 0 and unused without it).
    pub level: Vec<f64>,
    /// The prior's transmission `T_phys * m` (a token feature; all 0 without a prior).
    pub prior: Vec<f64>,
    /// The prior in the state's units, `T_phys c_f / unit * m` (the residual's base; all 0
    /// without a prior).
    pub prior_x: Vec<f64>,
    /// End time `t` of each sample's flux (`J_v / J_ref` or its log map), `[B]`.
    pub t_end: Vec<f64>,
    /// `c_scale = sum |z| c_f / 2` over present ions, mol/m3, `[B]`.
    pub c_scale: Vec<f64>,
    /// Loss targets, if the batch has them.
    pub targets: Option<Targets>,
}

fn bad<T>(why: String) -> Result<T> {
    Err(ModelError::Batch(why))
}

impl Prepared {
    /// Validate `batch` against `cfg` and convert it.
    pub fn new(cfg: &ModelConfig, batch: &Batch) -> Result<Prepared> {
        let s = cfg.num_slots();
        let b = batch.len();
        if b == 0 {
            return bad("no samples".into());
        }
        if batch.feed_mol_m3.dim() != (b, s) {
            return bad(format!(
                "feed is {:?}, expected [{b}, {s}] (samples x slots)",
                batch.feed_mol_m3.shape()
            ));
        }
        if batch.mask.dim() != (b, s) {
            return bad(format!(
                "mask is {:?}, expected [{b}, {s}]",
                batch.mask.shape()
            ));
        }
        let prior = match (cfg.prior, &batch.prior_transmission) {
            (Prior::None, None) => None,
            (Prior::None, Some(_)) => {
                return bad(
                    "the batch has a physics prior but the model has none (prior = \"none\")"
                        .into(),
                )
            }
            (_, None) => {
                return bad(format!(
                    "the model is anchored to DSPM-DE (prior = \"{}\"): its batches need the \
                     physics' transmissions",
                    cfg.prior.name()
                ))
            }
            (_, Some(p)) if p.dim() != (b, s) => {
                return bad(format!("prior is {:?}, expected [{b}, {s}]", p.shape()))
            }
            (_, Some(p)) => Some(p),
        };
        let z = cfg.charges();
        let mut p = Prepared {
            b,
            s,
            mask: vec![0.0; b * s],
            unit: vec![0.0; b * s],
            w: vec![0.0; b * s],
            x0: vec![0.0; b * s],
            log_feed: vec![0.0; b * s],
            level: vec![0.0; b * s],
            prior: vec![0.0; b * s],
            prior_x: vec![0.0; b * s],
            t_end: vec![0.0; b],
            c_scale: vec![0.0; b],
            targets: None,
        };
        for i in 0..b {
            let flux = batch.flux_m_s[i];
            if !(flux >= 0.0 && flux.is_finite()) {
                return bad(format!(
                    "sample {i}: flux {flux} m/s is not finite and >= 0"
                ));
            }
            p.t_end[i] = cfg.time.t(flux, cfg.j_ref_m_s);
            let mut cs = 0.0;
            for j in 0..s {
                if batch.mask[[i, j]] {
                    let c = batch.feed_mol_m3[[i, j]];
                    if !(c >= 0.0 && c.is_finite()) {
                        return bad(format!(
                            "sample {i}: feed of present ion {} is {c}",
                            cfg.slots[j].name
                        ));
                    }
                    cs += z[j].abs() * c;
                }
            }
            cs *= 0.5;
            if !(cs > 0.0 && cs.is_finite()) {
                return bad(format!("sample {i}: no present ion with a positive feed"));
            }
            p.c_scale[i] = cs;
            for j in 0..s {
                let k = i * s + j;
                if batch.mask[[i, j]] {
                    let cf = batch.feed_mol_m3[[i, j]];
                    let unit = match cfg.state {
                        State::Scaled => cs,
                        State::Transmission if cf > 0.0 => cf,
                        State::Transmission => {
                            return bad(format!(
                                "sample {i}: present ion {} has a zero feed, which has no \
                                 transmission (mark it absent, or use state = \"scaled\")",
                                cfg.slots[j].name
                            ))
                        }
                    };
                    p.mask[k] = 1.0;
                    p.unit[k] = unit;
                    p.w[k] = match cfg.state {
                        State::Scaled => z[j],
                        State::Transmission => z[j] * (cf / cs),
                    };
                    p.x0[k] = cf / unit;
                    p.log_feed[k] = (cf / cs + cfg.log_floor).ln();
                    p.level[k] = cfg.feed_level.feature(cs);
                    if let Some(prior) = prior {
                        let tp = prior[[i, j]];
                        if !tp.is_finite() {
                            return bad(format!(
                                "sample {i}: the physics' transmission of {} is {tp}",
                                cfg.slots[j].name
                            ));
                        }
                        p.prior[k] = tp;
                        p.prior_x[k] = tp * cf / unit;
                    }
                }
            }
        }
        if let Some(tp) = &batch.target_permeate_mol_m3 {
            p.targets = Some(p.targets_from(batch, tp)?);
        }
        Ok(p)
    }

    fn targets_from(&self, batch: &Batch, tp: &Array2<f64>) -> Result<Targets> {
        let (b, s) = (self.b, self.s);
        if tp.dim() != (b, s) {
            return bad(format!("target is {:?}, expected [{b}, {s}]", tp.shape()));
        }
        if let Some(w) = &batch.target_weight {
            if w.dim() != (b, s) {
                return bad(format!(
                    "target weight is {:?}, expected [{b}, {s}]",
                    w.shape()
                ));
            }
        }
        let mut t = Targets {
            x: vec![0.0; b * s],
            weight: vec![0.0; b * s],
            weight_sum: 0.0,
            film: None,
        };
        if let Some(e) = &batch.film_factor {
            if e.len() != b {
                return bad(format!("film factors are {}, expected {b}", e.len()));
            }
            let mut f = Film {
                to_t: vec![0.0; b * s],
                e: vec![1.0; b * s],
                e_minus_1: vec![0.0; b * s],
                from_t: vec![0.0; b * s],
            };
            for i in 0..b {
                if !(e[i].is_finite() && e[i] > 0.0) {
                    return bad(format!("sample {i}: film factor {}", e[i]));
                }
                for j in 0..s {
                    let k = i * s + j;
                    let cf = batch.feed_mol_m3[[i, j]];
                    if self.mask[k] != 0.0 {
                        f.to_t[k] = self.unit[k] / cf;
                        f.from_t[k] = cf / self.unit[k];
                        f.e[k] = e[i];
                        f.e_minus_1[k] = e[i] - 1.0;
                    }
                }
            }
            t.film = Some(f);
        }
        for i in 0..b {
            for j in 0..s {
                let k = i * s + j;
                let wt = batch.target_weight.as_ref().map_or(1.0, |w| w[[i, j]]);
                if !(wt >= 0.0 && wt.is_finite()) {
                    return bad(format!("sample {i}, slot {j}: target weight {wt}"));
                }
                let eff = wt * self.mask[k];
                if eff > 0.0 {
                    let c = tp[[i, j]];
                    if !c.is_finite() {
                        return bad(format!("sample {i}, slot {j}: target {c} with weight {wt}"));
                    }
                    t.x[k] = c / self.unit[k];
                    t.weight[k] = eff;
                    t.weight_sum += eff;
                }
            }
        }
        if t.weight_sum <= 0.0 {
            return bad("every target weight is zero".into());
        }
        Ok(t)
    }
}
