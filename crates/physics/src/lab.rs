//! The surrogate laboratory: a "truth" model of an NF270-like membrane that departs from the
//! pre-training DSPM-DE in physically motivated, individually switchable ways, plus
//! measurement noise. It stands in for experiments (public multi-ion NF270 tables are
//! scarce); everything it produces is synthetic and must be labelled so.
//!
//! Departures (each off in [`LabModel::plain`], which is exactly the pre-training DSPM-DE):
//! - **Concentration-dependent charge** (Freundlich form, as in the NF characterisation
//!   literature, e.g. Bowen & Mohammad 1998, Labban et al. 2017): `X = -a c_eq^b` with
//!   `c_eq = sum |z| c / 2` of the feed (mol/m3). Typical `b` 0.3 to 0.7.
//! - **Log-normal pore-size distribution** around the nominal radius (number density of
//!   `ln r` normal with standard deviation `sigma_ln`), integrated by Gauss-Hermite
//!   quadrature. Each pore class carries the flux its Hagen-Poiseuille permeability gives at
//!   the common pressure; the permeate is the flux-weighted mix.
//! - **Exponential-film concentration polarisation** at a stated cross-flow (spiral-wound
//!   mass transfer), common to all pore classes, with the film field fixed by interface
//!   electroneutrality.
//! - **Davies activities** everywhere.
//! - **Measurement noise**: relative Gaussian noise on permeate concentrations.

use crate::activity::ActivityModel;
use crate::constants::f_over_rt;
use crate::error::{require_positive, PhysicsError, Result, Stage};
use crate::ions::Ion;
use crate::membrane::Membrane;
use crate::point::{check_electroneutral, Drive, PointSolver, PointSpec};
use crate::polarisation::{interface_concentration, FilmModel, SpiralWound};
use argmin::core::{CostFunction, Executor, State};
use argmin::solver::brent::BrentRoot;
use ionode_random::Rng;

pub use crate::charge::ChargeModel;

/// A log-normal distribution of pore radii around the membrane's nominal (median) radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoreDistribution {
    /// Standard deviation of `ln r`.
    pub sigma_ln: f64,
    /// Gauss-Hermite nodes: 1, 3, 5 or 7.
    pub nodes: usize,
}

/// Concentration polarisation in the lab's feed channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabFilm {
    None,
    /// Exponential film (exact integral of the film balance) with spiral-wound coefficients.
    Exponential {
        channel: SpiralWound,
    },
}

/// The surrogate laboratory's model.
#[derive(Debug, Clone, PartialEq)]
pub struct LabModel {
    /// Nominal membrane (its X is used only with [`ChargeModel::Constant`]).
    pub membrane: Membrane,
    pub temperature_k: f64,
    pub charge: ChargeModel,
    pub pores: Option<PoreDistribution>,
    pub film: LabFilm,
    pub activity: ActivityModel,
    /// Pore elements of the Nernst-Planck discretisation. The truth model uses a converged
    /// pore (8): with one element, tight pore classes at high Peclet have no positive
    /// solution (the linear profile overshoots).
    pub elements: usize,
    /// Relative standard deviation of the permeate-concentration noise.
    pub noise_rel: f64,
}

/// One measurement of the lab before noise.
#[derive(Debug, Clone, PartialEq)]
pub struct LabPoint {
    pub jv_m_s: f64,
    pub dp_pa: f64,
    /// Flux-weighted (mixed) permeate, mol/m3.
    pub c_permeate: Vec<f64>,
    pub c_interface: Vec<f64>,
    /// The membrane charge used, mol/m3.
    pub charge_density_mol_m3: f64,
}

/// Physicists' Gauss-Hermite nodes and weights (weights sum to sqrt(pi)).
fn gauss_hermite(n: usize) -> Option<(&'static [f64], &'static [f64])> {
    match n {
        1 => Some((&[0.0], &[1.772_453_850_905_516])),
        3 => Some((
            &[-1.224_744_871_391_589, 0.0, 1.224_744_871_391_589],
            &[
                0.295_408_975_150_919_3,
                1.181_635_900_603_677,
                0.295_408_975_150_919_3,
            ],
        )),
        5 => Some((
            &[
                -2.020_182_870_456_086,
                -0.958_572_464_613_818_5,
                0.0,
                0.958_572_464_613_818_5,
                2.020_182_870_456_086,
            ],
            &[
                0.019_953_242_059_045_91,
                0.393_619_323_152_241_2,
                0.945_308_720_482_941_9,
                0.393_619_323_152_241_2,
                0.019_953_242_059_045_91,
            ],
        )),
        7 => Some((
            &[
                -2.651_961_356_835_233,
                -1.673_551_628_767_471,
                -0.816_287_882_858_964_7,
                0.0,
                0.816_287_882_858_964_7,
                1.673_551_628_767_471,
                2.651_961_356_835_233,
            ],
            &[
                0.000_971_781_245_099_519_2,
                0.054_515_582_819_127_09,
                0.425_607_252_610_127_8,
                0.810_264_617_556_807_3,
                0.425_607_252_610_127_8,
                0.054_515_582_819_127_09,
                0.000_971_781_245_099_519_2,
            ],
        )),
        _ => None,
    }
}

impl LabModel {
    /// All departures off: exactly the pre-training DSPM-DE (constant X, one pore radius, no
    /// polarisation, ideal activities), and no noise.
    pub fn plain(membrane: Membrane) -> Self {
        LabModel {
            membrane,
            temperature_k: 298.15,
            charge: ChargeModel::Constant,
            pores: None,
            film: LabFilm::None,
            activity: ActivityModel::Ideal,
            elements: 1,
            noise_rel: 0.0,
        }
    }

    /// ionode's surrogate NF270 (synthetic; illustrative values inside literature ranges,
    /// not a fit): Freundlich charge with `a = 8 mol/m3, b = 0.4` (X = -20 mol/m3 at 10 mM,
    /// -50 at 100 mM of a 1:1 salt), pores log-normal with `sigma_ln = 0.1` (5 nodes),
    /// exponential film at 1 m/s cross-flow in a 0.5 mm spacer-filled channel (a lab cell),
    /// Davies activities, an
    /// 8-element pore, 3 % noise.
    pub fn nf270_surrogate() -> Self {
        LabModel {
            membrane: Membrane::preset("nf270").expect("nf270 preset exists"),
            temperature_k: 298.15,
            charge: ChargeModel::Freundlich {
                a_mol_m3: 8.0,
                b: 0.4,
            },
            pores: Some(PoreDistribution {
                sigma_ln: 0.1,
                nodes: 5,
            }),
            film: LabFilm::Exponential {
                channel: SpiralWound {
                    velocity_m_s: 1.0,
                    ..SpiralWound::default()
                },
            },
            activity: ActivityModel::Davies,
            elements: 8,
            noise_rel: 0.03,
        }
    }

    /// Checks parameters.
    pub fn validate(&self) -> Result<()> {
        self.membrane.validate()?;
        self.charge.validate()?;
        if let Some(p) = self.pores {
            if !(p.sigma_ln.is_finite() && (0.0..=0.5).contains(&p.sigma_ln)) {
                return Err(PhysicsError::invalid(
                    "pores sigma_ln",
                    p.sigma_ln,
                    "a standard deviation of ln r in [0, 0.5]",
                ));
            }
            if gauss_hermite(p.nodes).is_none() {
                return Err(PhysicsError::invalid(
                    "pores nodes",
                    p.nodes,
                    "1, 3, 5 or 7",
                ));
            }
        }
        if let LabFilm::Exponential { channel } = &self.film {
            channel.validate()?;
        }
        if self.elements == 0 || self.elements > 64 {
            return Err(PhysicsError::invalid("elements", self.elements, "1 to 64"));
        }
        if !(self.noise_rel.is_finite() && (0.0..0.5).contains(&self.noise_rel)) {
            return Err(PhysicsError::invalid(
                "noise_rel",
                self.noise_rel,
                "a relative standard deviation in [0, 0.5)",
            ));
        }
        Ok(())
    }

    /// The membrane charge for a feed.
    pub fn charge_density(&self, ions: &[Ion], c_feed: &[f64]) -> f64 {
        self.charge.charge_density(&self.membrane, ions, c_feed)
    }

    /// Pore classes: (radius, area fraction).
    fn pore_classes(&self, ions: &[Ion]) -> Result<Vec<(f64, f64)>> {
        let r0 = self.membrane.pore_radius_m;
        let classes: Vec<(f64, f64)> = match self.pores {
            None => vec![(r0, 1.0)],
            Some(p) => {
                let (x, w) = gauss_hermite(p.nodes).expect("validated");
                let raw: Vec<(f64, f64)> = x
                    .iter()
                    .zip(w)
                    .map(|(x, w)| {
                        let r = r0 * (std::f64::consts::SQRT_2 * p.sigma_ln * x).exp();
                        (r, w * r * r)
                    })
                    .collect();
                let total: f64 = raw.iter().map(|(_, a)| a).sum();
                raw.into_iter().map(|(r, a)| (r, a / total)).collect()
            }
        };
        let largest = ions.iter().map(|i| i.stokes_radius_m).fold(0.0, f64::max);
        if let Some((r, _)) = classes.iter().find(|(r, _)| *r <= largest * 1.01) {
            return Err(PhysicsError::invalid(
                "pores sigma_ln",
                format!("{:?}", self.pores.map(|p| p.sigma_ln)),
                format!(
                    "a distribution whose smallest quadrature radius ({r:.3e} m) exceeds the largest ion ({largest:.3e} m)"
                ),
            ));
        }
        Ok(classes)
    }

    /// Solves one measurement: feed `c_feed` (mol/m3, electroneutral) at a drive.
    pub fn solve(&self, ions: &[Ion], c_feed: &[f64], drive: Drive) -> Result<LabPoint> {
        self.validate()?;
        check_electroneutral(ions, c_feed)?;
        let x = self.charge_density(ions, c_feed);
        let classes = self.pore_classes(ions)?;
        let ctx = Context {
            model: self,
            ions,
            c_feed,
            x,
            classes: &classes,
        };
        match drive {
            Drive::Pressure { dp_pa } => {
                require_positive("pressure difference dP_Pa", dp_pa)?;
                ctx.at_pressure(&mut ctx.solvers()?, dp_pa)
            }
            Drive::Flux { jv_m_s } => {
                require_positive("water flux Jv_m_s", jv_m_s)?;
                ctx.at_flux(&mut ctx.solvers()?, jv_m_s)
            }
        }
    }

    /// Adds measurement noise: each permeate concentration times `1 + noise_rel * N(0, 1)`
    /// (clipped at zero). Returns the noisy values and their standard deviations
    /// (`noise_rel` times the noisy value, as an experimenter would state them).
    pub fn measure(&self, c_permeate: &[f64], rng: &mut Rng) -> (Vec<f64>, Vec<f64>) {
        let noisy: Vec<f64> = c_permeate
            .iter()
            .map(|c| (c * (1.0 + self.noise_rel * rng.normal())).max(0.0))
            .collect();
        let sd = noisy.iter().map(|c| c * self.noise_rel).collect();
        (noisy, sd)
    }
}

struct Context<'a> {
    model: &'a LabModel,
    ions: &'a [Ion],
    c_feed: &'a [f64],
    x: f64,
    classes: &'a [(f64, f64)],
}

impl Context<'_> {
    /// One point solver per pore class, built once per measurement and re-used (with warm
    /// starts) across the film iteration and the pressure search.
    fn solvers(&self) -> Result<Vec<(PointSolver, f64)>> {
        self.classes
            .iter()
            .map(|&(r, area)| {
                let membrane = Membrane {
                    pore_radius_m: r,
                    charge_density_mol_m3: self.x,
                    ..self.model.membrane
                };
                let mut spec = PointSpec::new(self.ions.to_vec(), self.c_feed.to_vec(), membrane);
                spec.temperature_k = self.model.temperature_k;
                spec.activity = self.model.activity;
                spec.elements = self.model.elements;
                Ok((PointSolver::new(&spec)?, area))
            })
            .collect()
    }

    /// The pore-class mix at total flux `jv` with interface `c_m`: the common pressure and
    /// the flux-weighted permeate. Each class is solved flux-driven at its own share `J_k`
    /// of the flux; the shares are moved until every class needs the same pressure, with
    /// `sum a_k J_k = jv` held at every step: linearising `dP_k(J_k)` with slope `s_k`
    /// (secant, starting from Hagen-Poiseuille's `1 / L_p,k`), the common pressure is
    /// `dP = (jv - sum a_k (J_k - dP_k / s_k)) / sum (a_k / s_k)`.
    fn membrane_at_flux(
        &self,
        solvers: &mut [(PointSolver, f64)],
        c_m: &[f64],
        jv: f64,
    ) -> Result<(f64, Vec<f64>)> {
        let n = self.ions.len();
        let k_classes = solvers.len();
        let viscous = 8.0 * crate::constants::VISCOSITY * self.model.membrane.effective_thickness_m;
        let lp: Vec<f64> = self.classes.iter().map(|(r, _)| r * r / viscous).collect();
        let lp_mean: f64 = self.classes.iter().zip(&lp).map(|((_, a), l)| a * l).sum();
        let mut share: Vec<f64> = lp.iter().map(|l| jv * l / lp_mean).collect();
        let mut slope: Vec<f64> = lp.iter().map(|l| 1.0 / l).collect();
        let mut previous: Vec<Option<(f64, f64)>> = vec![None; k_classes];
        let mut dp_k = vec![0.0; k_classes];
        let mut permeate = vec![vec![0.0; n]; k_classes];
        for (solver, _) in solvers.iter_mut() {
            solver.set_bulk(c_m)?;
        }
        for _ in 0..100 {
            for (k, (solver, _)) in solvers.iter_mut().enumerate() {
                let sol = solver.solve(Drive::Flux { jv_m_s: share[k] })?;
                dp_k[k] = sol.dp_pa;
                permeate[k] = sol.c_permeate;
                if let Some((j0, p0)) = previous[k] {
                    if (share[k] - j0).abs() > 1e-14 * share[k] {
                        let s = (dp_k[k] - p0) / (share[k] - j0);
                        if s > 0.0 {
                            slope[k] = s;
                        }
                    }
                }
                previous[k] = Some((share[k], dp_k[k]));
            }
            let (lo, hi) = dp_k
                .iter()
                .fold((f64::INFINITY, 0.0_f64), |(l, h), p| (l.min(*p), h.max(*p)));
            if hi - lo <= 1e-10 * hi {
                let mixed = (0..n)
                    .map(|i| {
                        self.classes
                            .iter()
                            .zip(&share)
                            .zip(&permeate)
                            .map(|(((_, a), j), c)| a * j * c[i])
                            .sum::<f64>()
                            / jv
                    })
                    .collect();
                let dp = self
                    .classes
                    .iter()
                    .zip(&dp_k)
                    .map(|((_, a), p)| a * p)
                    .sum::<f64>();
                return Ok((dp, mixed));
            }
            let inv: f64 = self
                .classes
                .iter()
                .zip(&slope)
                .map(|((_, a), s)| a / s)
                .sum();
            let rest: f64 = self
                .classes
                .iter()
                .zip(share.iter().zip(&dp_k).zip(&slope))
                .map(|((_, a), ((j, p), s))| a * (j - p / s))
                .sum();
            let dp = (jv - rest) / inv;
            for k in 0..k_classes {
                // Keep every share positive (halve towards zero rather than cross it).
                let next = share[k] + (dp - dp_k[k]) / slope[k];
                share[k] = if next > 0.0 { next } else { 0.5 * share[k] };
            }
        }
        Err(PhysicsError::NoConvergence {
            stage: Stage::WaterFlux,
            reason: format!("the pore classes found no common pressure at Jv = {jv:.4e} m/s"),
        })
    }

    /// The full model at a water flux. With a film, the interface follows from the permeate
    /// at this fixed flux, which makes the film/membrane fixed point mild (the flux, and so
    /// the polarisation, cannot swing between iterations as they do at fixed pressure).
    fn at_flux(&self, solvers: &mut [(PointSolver, f64)], jv: f64) -> Result<LabPoint> {
        let channel = match self.model.film {
            LabFilm::None => {
                let (dp, c_p) = self.membrane_at_flux(solvers, self.c_feed, jv)?;
                return Ok(self.point(jv, dp, c_p, self.c_feed.to_vec()));
            }
            LabFilm::Exponential { channel } => channel,
        };
        let k = channel.mass_transfer(self.ions);
        let mut c_m = self.c_feed.to_vec();
        let mut damping: f64 = 1.0;
        let mut last_change = f64::INFINITY;
        for _ in 0..200 {
            let (dp, c_p) = self.membrane_at_flux(solvers, &c_m, jv)?;
            let target = film_interface(
                self.ions,
                self.c_feed,
                &c_p,
                jv,
                &k,
                self.model.temperature_k,
            )?;
            let change = target
                .iter()
                .zip(&c_m)
                .map(|(t, c)| ((t - c) / c).abs())
                .fold(0.0, f64::max);
            if change < 1e-10 {
                return Ok(self.point(jv, dp, c_p, c_m));
            }
            if change > last_change {
                damping = (damping * 0.5).max(0.05);
            }
            last_change = change;
            // Both ends are electroneutral, so the damped mix is too.
            for (c, t) in c_m.iter_mut().zip(&target) {
                *c += damping * (t - *c);
            }
        }
        Err(PhysicsError::NoConvergence {
            stage: Stage::Polarisation,
            reason: format!("the film/membrane iteration at Jv = {jv:.4e} m/s did not settle"),
        })
    }

    /// The full model at a pressure: the flux whose [`Self::at_flux`] pressure matches, by
    /// Brent's method (each evaluation is a full flux-driven solve, so this is the slower
    /// mode).
    fn at_pressure(&self, solvers: &mut Vec<(PointSolver, f64)>, dp: f64) -> Result<LabPoint> {
        let lp_max = self
            .classes
            .iter()
            .map(|(r, _)| {
                r * r
                    / (8.0
                        * crate::constants::VISCOSITY
                        * self.model.membrane.effective_thickness_m)
            })
            .fold(0.0, f64::max);
        let solvers = std::cell::RefCell::new(solvers);
        let excess = |jv: f64| -> Result<f64> {
            Ok(self.at_flux(&mut solvers.borrow_mut(), jv)?.dp_pa / dp - 1.0)
        };
        // dP(J) - dP rises from -1 (J -> 0) and is >= 0 at the osmosis-free flux.
        let lo = lp_max * dp * 1e-6;
        let mut hi = lp_max * dp;
        let f_lo = excess(lo)?;
        if f_lo >= 0.0 {
            return Err(PhysicsError::NoConvergence {
                stage: Stage::WaterFlux,
                reason: format!("dP = {dp:.4e} Pa is below the pressure of a vanishing flux"),
            });
        }
        // Find an upper flux with dP(J) >= dP. Strong polarisation can make the film
        // infeasible at the osmosis-free flux: then step down towards the last good flux.
        let (mut good, mut bad): (f64, Option<(f64, PhysicsError)>) = (lo, None);
        let mut bracketed = false;
        for _ in 0..60 {
            match excess(hi) {
                Ok(f) if f >= 0.0 => {
                    bracketed = true;
                    break;
                }
                Ok(_) => {
                    good = hi;
                    hi = match &bad {
                        Some((b, _)) => (hi * b).sqrt(),
                        None => hi * 2.0,
                    };
                }
                Err(e) => {
                    bad = Some((hi, e));
                    hi = (good * hi).sqrt();
                }
            }
            if hi > 1e-2 || matches!(&bad, Some((b, _)) if b / good < 1.0 + 1e-9) {
                break;
            }
        }
        if !bracketed {
            return Err(match bad {
                Some((b, e)) => PhysicsError::NoSolution {
                    stage: Stage::WaterFlux,
                    reason: format!("dP = {dp:.4e} Pa needs a flux above {b:.4e} m/s, where: {e}"),
                },
                None => PhysicsError::NoSolution {
                    stage: Stage::WaterFlux,
                    reason: format!("no flux below 1e-2 m/s matches dP = {dp:.4e} Pa"),
                },
            });
        }
        struct Balance<'b, 'c, 'd> {
            ctx: &'b Context<'c>,
            solvers: &'b std::cell::RefCell<&'d mut Vec<(PointSolver, f64)>>,
            dp: f64,
        }
        impl CostFunction for Balance<'_, '_, '_> {
            type Param = f64;
            type Output = f64;
            fn cost(&self, jv: &f64) -> std::result::Result<f64, argmin::core::Error> {
                self.ctx
                    .at_flux(&mut self.solvers.borrow_mut(), *jv)
                    .map(|p| p.dp_pa / self.dp - 1.0)
                    .map_err(|e| argmin::core::Error::msg(e.to_string()))
            }
        }
        let balance = Balance {
            ctx: self,
            solvers: &solvers,
            dp,
        };
        let res = Executor::new(balance, BrentRoot::new(lo, hi, hi * 1e-12))
            .configure(|s| s.max_iters(100))
            .timer(false)
            .run()
            .map_err(|e| PhysicsError::NoConvergence {
                stage: Stage::WaterFlux,
                reason: e.to_string(),
            })?;
        let jv = *res
            .state()
            .get_best_param()
            .ok_or_else(|| PhysicsError::NoConvergence {
                stage: Stage::WaterFlux,
                reason: "Brent returned no flux".into(),
            })?;
        let mut point = self.at_flux(&mut solvers.borrow_mut(), jv)?;
        // Report the requested pressure; the root matches it to 1e-12 relative.
        point.dp_pa = dp;
        Ok(point)
    }

    fn point(&self, jv: f64, dp: f64, c_p: Vec<f64>, c_m: Vec<f64>) -> LabPoint {
        LabPoint {
            jv_m_s: jv,
            dp_pa: dp,
            c_permeate: c_p,
            c_interface: c_m,
            charge_density_mol_m3: self.x,
        }
    }
}

/// Interface concentrations of the exponential film for a permeate and flux, with the film
/// field fixed by interface electroneutrality (a monotone 1-D root, bracketed and bisected
/// with secant steps).
fn film_interface(
    ions: &[Ion],
    c_b: &[f64],
    c_p: &[f64],
    jv: f64,
    k: &[f64],
    temperature_k: f64,
) -> Result<Vec<f64>> {
    let f = f_over_rt(temperature_k);
    let interface = |xi: f64| -> Vec<f64> {
        ions.iter()
            .enumerate()
            .map(|(i, ion)| {
                interface_concentration(
                    FilmModel::Exponential,
                    c_b[i],
                    c_p[i],
                    jv,
                    k[i],
                    ion.z() * ion.diffusivity_m2_s * f * xi,
                )
            })
            .collect()
    };
    let charge = |xi: f64| -> f64 { ions.iter().zip(interface(xi)).map(|(i, c)| i.z() * c).sum() };
    // Sum z c_m decreases with xi; bracket the root by doubling.
    let (mut lo, mut hi) = (-1.0, 1.0);
    for _ in 0..60 {
        if charge(lo) > 0.0 {
            break;
        }
        lo *= 2.0;
    }
    for _ in 0..60 {
        if charge(hi) < 0.0 {
            break;
        }
        hi *= 2.0;
    }
    let (mut q_lo, mut q_hi) = (charge(lo), charge(hi));
    if !(q_lo > 0.0 && q_hi < 0.0) {
        return Err(PhysicsError::NoSolution {
            stage: Stage::Polarisation,
            reason: "no film field balances the interface charge".into(),
        });
    }
    for _ in 0..200 {
        let secant = hi - q_hi * (hi - lo) / (q_hi - q_lo);
        let mid = if secant > lo && secant < hi {
            secant
        } else {
            0.5 * (lo + hi)
        };
        let q = charge(mid);
        if q.abs() <= 1e-14 * c_b.iter().sum::<f64>()
            || (hi - lo).abs() < 1e-15 * mid.abs().max(1.0)
        {
            let c_m = interface(mid);
            if c_m.iter().any(|c| !(*c > 0.0)) {
                return Err(PhysicsError::NoSolution {
                    stage: Stage::Polarisation,
                    reason: format!("the film gives a non-positive interface concentration at Jv = {jv:.4e} m/s"),
                });
            }
            return Ok(c_m);
        }
        if q > 0.0 {
            lo = mid;
            q_lo = q;
        } else {
            hi = mid;
            q_hi = q;
        }
    }
    Err(PhysicsError::NoConvergence {
        stage: Stage::Polarisation,
        reason: "the film-field root did not converge".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::parse_feed;
    use crate::ions::IonDb;

    fn feed(text: &str) -> (Vec<Ion>, Vec<f64>) {
        let f = parse_feed(text, &IonDb::builtin()).unwrap();
        (f.ions, f.c_mol_m3)
    }

    #[test]
    fn plain_lab_is_the_pretraining_dspmde() {
        let (ions, c) = feed("NaCl=50,MgSO4=10");
        let membrane = Membrane::preset("nf270").unwrap();
        let lab = LabModel::plain(membrane);
        for drive in [Drive::Flux { jv_m_s: 1e-5 }, Drive::Pressure { dp_pa: 6e5 }] {
            let point = lab.solve(&ions, &c, drive).unwrap();
            let spec = PointSpec::new(ions.clone(), c.clone(), membrane);
            let dspmde = PointSolver::new(&spec).unwrap().solve(drive).unwrap();
            for (a, b) in point.c_permeate.iter().zip(&dspmde.c_permeate) {
                assert!((a / b - 1.0).abs() < 1e-8, "{drive:?}: {a} vs {b}");
            }
            assert!((point.jv_m_s / dspmde.jv_m_s - 1.0).abs() < 1e-8);
        }
    }

    #[test]
    fn freundlich_charge_grows_with_concentration() {
        let lab = LabModel::nf270_surrogate();
        let (ions, c10) = feed("NaCl=10");
        let (_, c100) = feed("NaCl=100");
        let x10 = lab.charge_density(&ions, &c10);
        let x100 = lab.charge_density(&ions, &c100);
        assert!((x10 + 8.0 * 10f64.powf(0.4)).abs() < 1e-12, "{x10}");
        assert!(x100 < x10 && x10 < 0.0);
    }

    /// The surrogate with every departure on (a lighter quadrature and pore for speed):
    /// pressure-driven and flux-driven solves agree, and the permeate is electroneutral.
    #[test]
    fn surrogate_solves_at_flux_and_at_pressure_consistently() {
        let mut lab = LabModel::nf270_surrogate();
        lab.pores = Some(PoreDistribution {
            sigma_ln: 0.1,
            nodes: 3,
        });
        lab.elements = 4;
        let (ions, c) = feed("NaCl=20,MgSO4=5");
        let at_j = lab.solve(&ions, &c, Drive::Flux { jv_m_s: 5e-6 }).unwrap();
        let at_p = lab
            .solve(&ions, &c, Drive::Pressure { dp_pa: at_j.dp_pa })
            .unwrap();
        assert!((at_p.jv_m_s / 5e-6 - 1.0).abs() < 1e-7, "{}", at_p.jv_m_s);
        for (a, b) in at_j.c_permeate.iter().zip(&at_p.c_permeate) {
            assert!((a / b - 1.0).abs() < 1e-6, "{a} vs {b}");
        }
        let charge: f64 = ions
            .iter()
            .zip(&at_j.c_permeate)
            .map(|(i, c)| i.z() * c)
            .sum();
        assert!(charge.abs() < 1e-9 * c.iter().sum::<f64>(), "{charge}");
        let interface: f64 = ions
            .iter()
            .zip(&at_j.c_interface)
            .map(|(i, c)| i.z() * c)
            .sum();
        assert!(
            interface.abs() < 1e-9 * c.iter().sum::<f64>(),
            "{interface}"
        );
    }

    #[test]
    fn noise_has_the_stated_spread() {
        let lab = LabModel::nf270_surrogate();
        let mut rng = Rng::new(5);
        let truth = vec![10.0; 20_000];
        let (noisy, sd) = lab.measure(&truth, &mut rng);
        let mean = noisy.iter().sum::<f64>() / noisy.len() as f64;
        let var = noisy.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / noisy.len() as f64;
        assert!((mean - 10.0).abs() < 0.01, "{mean}");
        assert!((var.sqrt() - 0.3).abs() < 0.01, "{}", var.sqrt());
        assert!((sd[0] / noisy[0] - 0.03).abs() < 1e-15);
    }
}
