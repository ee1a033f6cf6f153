//! The DSPM-DE point model: one location of a membrane, given the bulk feed and either the
//! water flux or the applied pressure (`docs/DSPMDE.md` sections 2.1 to 2.8).
//!
//! # How it is solved
//!
//! Unknowns `u` (all scaled to order one):
//! - `ln c_p` for every ion (log keeps permeate concentrations positive; sulfate can be 1e-3
//!   of its feed value),
//! - `phi_N = F psi_N / RT`, the pore potential at the exit node,
//! - for a pore of `N > 1` elements, `ln c_k` and `phi_k` at each interior node,
//! - with concentration polarisation, the scaled film field `eta` (see `Film`).
//!
//! Residuals: extended Nernst-Planck per ion and element, electroneutrality at each interior
//! node, in the permeate and (with polarisation) at the feed interface. The pore-mouth
//! concentrations are not unknowns: each residual evaluation solves the two Donnan equilibria
//! as monotone 1-D problems (module `donnan`), which removes the stiffest coupling from the
//! Newton system.
//!
//! The system (at most `N (n + 1) + 1` unknowns) is solved by a damped Newton method with a
//! forward-difference Jacobian and an Armijo line search, warm-started from the previous
//! solve of the same solver; if that fails it falls back to continuation in `J_v` from a
//! nearly zero flux, where the permeate equals the feed. In pressure-driven mode `J_v` is
//! the root of the Hagen-Poiseuille balance, found with argmin's Brent solver: the entry
//! point for either drive, `PointSolver::solve`, is in module `flux_root`, which builds on
//! the flux-driven solve here (so this file does not import it).

use crate::activity::{davies_a, ionic_strength_molal, ln_gamma_into, ActivityModel};
use crate::constants::{f_over_rt, water_density, GAS_CONSTANT, WATER_MOLAR_MASS};
use crate::donnan::{Mouth, MouthFailure, MouthScratch};
use crate::error::{require_positive, PhysicsError, Result, Stage};
use crate::ions::Ion;
use crate::linalg::lu_solve;
use crate::membrane::Membrane;
use crate::partition::IonConstants;
use crate::polarisation::{interface_concentration, FilmModel, Polarisation};
use serde::Serialize;

/// Relative charge imbalance of the bulk feed that is accepted as electroneutral.
pub const ELECTRONEUTRALITY_TOLERANCE: f64 = 1e-6;

/// What drives the water through the membrane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Drive {
    /// Water flux `J_v` given (m/s); the pressure is an output.
    Flux { jv_m_s: f64 },
    /// Transmembrane pressure `P_feed - P_perm` given (Pa); `J_v` is solved.
    Pressure { dp_pa: f64 },
}

/// Everything a point solve needs except the drive.
#[derive(Debug, Clone, PartialEq)]
pub struct PointSpec {
    /// Ions present, in output order.
    pub ions: Vec<Ion>,
    /// Bulk feed concentration of each ion, mol/m3 (> 0, electroneutral).
    pub c_bulk: Vec<f64>,
    pub membrane: Membrane,
    pub temperature_k: f64,
    pub activity: ActivityModel,
    pub polarisation: Polarisation,
    /// Finite-difference elements across the pore; 1 reproduces WaterTAP.
    pub elements: usize,
    /// Molar mass of water, kg/mol: converts the volumetric water flux to a molar one
    /// (WaterTAP's unit tests use 0.018, its property package 0.018015).
    pub water_molar_mass_kg_mol: f64,
}

impl PointSpec {
    /// A spec with WaterTAP's defaults: 25 C, ideal activity, no polarisation, one element.
    pub fn new(ions: Vec<Ion>, c_bulk: Vec<f64>, membrane: Membrane) -> Self {
        PointSpec {
            ions,
            c_bulk,
            membrane,
            temperature_k: 298.15,
            activity: ActivityModel::Ideal,
            polarisation: Polarisation::None,
            elements: 1,
            water_molar_mass_kg_mol: WATER_MOLAR_MASS,
        }
    }

    /// Checks every input; the error names the field and the value.
    pub fn validate(&self) -> Result<()> {
        if self.ions.len() < 2 {
            return Err(PhysicsError::invalid(
                "feed",
                format!("{} ion(s)", self.ions.len()),
                "at least one cation and one anion",
            ));
        }
        if self.c_bulk.len() != self.ions.len() {
            return Err(PhysicsError::invalid(
                "c_bulk",
                format!("{} values", self.c_bulk.len()),
                format!("one per ion ({})", self.ions.len()),
            ));
        }
        for (i, ion) in self.ions.iter().enumerate() {
            ion.validate()?;
            if self.ions[..i].iter().any(|o| o.name == ion.name) {
                return Err(PhysicsError::invalid(
                    "feed",
                    &ion.name,
                    "each ion at most once",
                ));
            }
            require_positive(
                &format!("feed concentration of {}", ion.name),
                self.c_bulk[i],
            )?;
        }
        self.membrane.validate()?;
        require_positive("mw_H2O_kg_mol", self.water_molar_mass_kg_mol)?;
        if !(self.temperature_k >= 273.15 && self.temperature_k <= 373.15) {
            return Err(PhysicsError::invalid(
                "temperature_K",
                self.temperature_k,
                "liquid water, 273.15 to 373.15 K",
            ));
        }
        if self.elements == 0 || self.elements > 1000 {
            return Err(PhysicsError::invalid(
                "elements",
                self.elements,
                "an integer from 1 to 1000",
            ));
        }
        if let Polarisation::Film {
            mass_transfer_m_s, ..
        } = &self.polarisation
        {
            if mass_transfer_m_s.len() != self.ions.len() {
                return Err(PhysicsError::invalid(
                    "mass_transfer_m_s",
                    format!("{} values", mass_transfer_m_s.len()),
                    format!("one per ion ({})", self.ions.len()),
                ));
            }
            for (ion, k) in self.ions.iter().zip(mass_transfer_m_s) {
                require_positive(&format!("mass-transfer coefficient of {}", ion.name), *k)?;
            }
        }
        check_electroneutral(&self.ions, &self.c_bulk)?;
        for ion in &self.ions {
            IonConstants::new(ion, &self.membrane, self.temperature_k)?;
        }
        Ok(())
    }
}

/// Fails unless `|sum z c| <= ELECTRONEUTRALITY_TOLERANCE * sum |z| c`.
pub fn check_electroneutral(ions: &[Ion], c: &[f64]) -> Result<()> {
    let imbalance: f64 = ions.iter().zip(c).map(|(i, c)| i.z() * c).sum();
    let total: f64 = ions.iter().zip(c).map(|(i, c)| i.z().abs() * c).sum();
    let relative = if total > 0.0 {
        imbalance.abs() / total
    } else {
        f64::INFINITY
    };
    if relative <= ELECTRONEUTRALITY_TOLERANCE {
        Ok(())
    } else {
        Err(PhysicsError::NotElectroneutral {
            imbalance,
            relative,
            total,
        })
    }
}

/// The solved state of one point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointSolution {
    /// Ion names, the order of every per-ion vector.
    pub ions: Vec<String>,
    pub jv_m_s: f64,
    /// Transmembrane pressure: the input in pressure mode, implied by Hagen-Poiseuille
    /// (`J_v / L_p + pi_m - pi_p`) in flux mode, Pa.
    pub dp_pa: f64,
    pub water_flux_mol_m2_s: f64,
    pub solute_flux_mol_m2_s: Vec<f64>,
    pub c_bulk: Vec<f64>,
    pub c_interface: Vec<f64>,
    pub c_pore_entrance: Vec<f64>,
    pub c_pore_exit: Vec<f64>,
    pub c_permeate: Vec<f64>,
    /// Potentials relative to the feed-side interface, V.
    pub psi_pore_entrance_v: f64,
    pub psi_pore_exit_v: f64,
    pub psi_permeate_v: f64,
    /// Film field (polarisation only). Ill-conditioned: never compare it to a reference.
    pub xi_v_m: Option<f64>,
    pub pi_interface_pa: f64,
    pub pi_permeate_pa: f64,
    pub rejection_vs_interface: Vec<f64>,
    pub rejection_vs_bulk: Vec<f64>,
    /// Concentrations at every pore node, entrance (0) to exit (N), mol/m3.
    pub pore_nodes: Vec<Vec<f64>>,
    /// Pore potential at every node, V.
    pub pore_potential_v: Vec<f64>,
    pub constants: Vec<IonConstants>,
    /// Activity coefficients and ionic strengths where they are not ideal.
    pub activity: Option<ActivityReport>,
    /// Newton iterations of the final solve (summed over continuation steps).
    pub iterations: usize,
}

/// Davies activity coefficients (gamma, not ln) and molal ionic strengths at the four
/// locations of a point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityReport {
    /// Debye-Hueckel A of the Davies equation (log10 basis).
    pub davies_a: f64,
    pub gamma_interface: Vec<f64>,
    pub gamma_pore_entrance: Vec<f64>,
    pub gamma_pore_exit: Vec<f64>,
    pub gamma_permeate: Vec<f64>,
    pub ionic_strength_interface: f64,
    pub ionic_strength_pore_entrance: f64,
    pub ionic_strength_pore_exit: f64,
    pub ionic_strength_permeate: f64,
}

/// The film part of the model.
#[derive(Debug, Clone)]
struct Film {
    model: FilmModel,
    k: Vec<f64>,
    /// `z_i D_i k_mean / D_mean`: `z D f xi = zdk_i * eta` with the scaled unknown `eta`.
    zdk: Vec<f64>,
    /// `xi = eta * xi_per_eta`.
    xi_per_eta: f64,
}

/// Why one residual evaluation failed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EvalFailure {
    NonFinite,
    InterfaceNotPositive(usize),
    Mouth(Stage, MouthFailure),
}

/// Constants of a prepared spec.
#[derive(Debug, Clone)]
struct Model {
    n: usize,
    elements: usize,
    z: Vec<f64>,
    molar_mass: Vec<f64>,
    partition: Vec<f64>,
    d_pore: Vec<f64>,
    k_c: Vec<f64>,
    c_bulk: Vec<f64>,
    x: f64,
    f: f64,
    dx: f64,
    activity: ActivityModel,
    davies_a: f64,
    film: Option<Film>,
    /// `sum |z| c_b`, the scale of the permeate and interface charge balances.
    en_bulk: f64,
    temperature_k: f64,
    water_molar_mass: f64,
    lp: f64,
    constants: Vec<IonConstants>,
    names: Vec<String>,
}

/// Mutable buffers of residual evaluations and Newton steps; sized once per solver.
#[derive(Debug, Clone)]
struct Work {
    c_p: Vec<f64>,
    c_m: Vec<f64>,
    lng_m: Vec<f64>,
    lng_p: Vec<f64>,
    /// Node concentrations, `(N + 1) * n`, node-major.
    nodes: Vec<f64>,
    /// Node potentials (dimensionless), `N + 1`.
    phi: Vec<f64>,
    /// Exit Donnan jump `phi_N - phi_p`.
    phi_d: f64,
    mouth_in: MouthScratch,
    mouth_out: MouthScratch,
    /// Scale of each ion's transport rows, fixed for one Newton run (see `set_scales`).
    enp_scale: Vec<f64>,
    r: Vec<f64>,
    r_trial: Vec<f64>,
    u_trial: Vec<f64>,
    jac: Vec<f64>,
    step: Vec<f64>,
    last_failure: Option<EvalFailure>,
}

/// A reusable DSPM-DE point solver for one feed and membrane. Solving several drives in
/// increasing order (a flux grid) warm-starts each from the previous solution.
#[derive(Debug, Clone)]
pub struct PointSolver {
    model: Model,
    work: Work,
    /// Last converged unknowns and their flux.
    warm: Option<(f64, Vec<f64>)>,
}

const NEWTON_MAX_ITERATIONS: usize = 60;
const RESIDUAL_TOLERANCE: f64 = 1e-12;
/// Accepted for the transport rows when the line search can no longer decrease the residual
/// (the floating-point floor of near-cancelling flux terms at tiny fluxes), provided every
/// charge balance holds to 5e-11.
const FLOOR_TOLERANCE: f64 = 1e-9;
/// Largest Newton step in any unknown (log-concentration or dimensionless potential).
const MAX_STEP: f64 = 2.0;

impl PointSolver {
    /// Validates the spec and prepares the per-ion constants.
    pub fn new(spec: &PointSpec) -> Result<Self> {
        spec.validate()?;
        let n = spec.ions.len();
        let t = spec.temperature_k;
        let constants = spec
            .ions
            .iter()
            .map(|ion| IonConstants::new(ion, &spec.membrane, t))
            .collect::<Result<Vec<_>>>()?;
        let z: Vec<f64> = spec.ions.iter().map(Ion::z).collect();
        let f = f_over_rt(t);
        let film = match &spec.polarisation {
            Polarisation::None => None,
            Polarisation::Film {
                model,
                mass_transfer_m_s,
            } => {
                let d: Vec<f64> = spec.ions.iter().map(|i| i.diffusivity_m2_s).collect();
                let k_mean = mass_transfer_m_s.iter().sum::<f64>() / n as f64;
                let d_mean = d.iter().sum::<f64>() / n as f64;
                Some(Film {
                    model: *model,
                    k: mass_transfer_m_s.clone(),
                    zdk: z
                        .iter()
                        .zip(&d)
                        .map(|(z, d)| z * d * k_mean / d_mean)
                        .collect(),
                    xi_per_eta: k_mean / (f * d_mean),
                })
            }
        };
        let model = Model {
            n,
            elements: spec.elements,
            partition: constants.iter().map(IonConstants::partition).collect(),
            d_pore: constants.iter().map(|c| c.d_pore).collect(),
            k_c: constants.iter().map(|c| c.k_c).collect(),
            molar_mass: spec.ions.iter().map(|i| i.molar_mass_kg_mol).collect(),
            c_bulk: spec.c_bulk.clone(),
            x: spec.membrane.charge_density_mol_m3,
            f,
            dx: spec.membrane.effective_thickness_m,
            activity: spec.activity,
            davies_a: davies_a(t),
            film,
            en_bulk: z.iter().zip(&spec.c_bulk).map(|(z, c)| z.abs() * c).sum(),
            temperature_k: t,
            water_molar_mass: spec.water_molar_mass_kg_mol,
            lp: spec.membrane.permeability(),
            names: spec.ions.iter().map(|i| i.name.clone()).collect(),
            constants,
            z,
        };
        let m = model.unknowns();
        let nodes = spec.elements + 1;
        let mut work = Work {
            c_p: vec![0.0; n],
            c_m: spec.c_bulk.clone(),
            lng_m: vec![0.0; n],
            lng_p: vec![0.0; n],
            nodes: vec![0.0; nodes * n],
            phi: vec![0.0; nodes],
            phi_d: 0.0,
            mouth_in: MouthScratch::new(n),
            mouth_out: MouthScratch::new(n),
            enp_scale: vec![1.0; n],
            r: vec![0.0; m],
            r_trial: vec![0.0; m],
            u_trial: vec![0.0; m],
            jac: vec![0.0; m * m],
            step: vec![0.0; m],
            last_failure: None,
        };
        // Without a film the entrance depends on the bulk only: solve it once here.
        model
            .entrance(&mut work)
            .map_err(|f| model.failure_error(Some(f), None, None))?;
        Ok(PointSolver {
            model,
            work,
            warm: None,
        })
    }

    /// Hydraulic permeability of the membrane, m/(Pa s).
    pub fn permeability(&self) -> f64 {
        self.model.lp
    }

    /// Changes the bulk concentrations (same ions), keeping the warm start: for sequences
    /// of nearby problems such as the interface iteration of a polarised module.
    pub fn set_bulk(&mut self, c_bulk: &[f64]) -> Result<()> {
        let model = &mut self.model;
        if c_bulk.len() != model.n {
            return Err(PhysicsError::invalid(
                "c_bulk",
                format!("{} values", c_bulk.len()),
                format!("one per ion ({})", model.n),
            ));
        }
        for (name, c) in model.names.iter().zip(c_bulk) {
            require_positive(&format!("feed concentration of {name}"), *c)?;
        }
        let imbalance: f64 = model.z.iter().zip(c_bulk).map(|(z, c)| z * c).sum();
        let total: f64 = model.z.iter().zip(c_bulk).map(|(z, c)| z.abs() * c).sum();
        if imbalance.abs() > ELECTRONEUTRALITY_TOLERANCE * total {
            return Err(PhysicsError::NotElectroneutral {
                imbalance,
                relative: imbalance.abs() / total,
                total,
            });
        }
        model.c_bulk.copy_from_slice(c_bulk);
        model.en_bulk = total;
        self.work.c_m.copy_from_slice(c_bulk);
        let model = &self.model;
        model
            .entrance(&mut self.work)
            .map_err(|f| model.failure_error(Some(f), None, None))
    }

    /// Forgets the warm start (the next solve starts cold).
    pub fn reset(&mut self) {
        self.warm = None;
    }

    /// Solves the unknowns for a flux, with warm start and continuation fallbacks.
    pub(crate) fn solve_flux_unknowns(&mut self, jv: f64) -> Result<(Vec<f64>, usize)> {
        let m = self.model.unknowns();
        let mut u = vec![0.0; m];
        self.work.last_failure = None;
        if let Some((_, warm_u)) = &self.warm {
            u.copy_from_slice(warm_u);
            if let Ok(it) = self.model.newton(&mut self.work, &mut u, jv) {
                return Ok(self.remember(jv, u, it));
            }
        }
        self.model.cold_guess(&mut self.work, &mut u, jv);
        let mut newton_failure = match self.model.newton(&mut self.work, &mut u, jv) {
            Ok(it) => return Ok(self.remember(jv, u, it)),
            Err(f) => Some(f),
        };
        // Continuation from a nearly zero flux, where c_p = c_b is the solution: grow the
        // flux geometrically, shrinking the factor after a failure.
        let mut total = 0;
        let mut j = jv / 1024.0;
        self.model.cold_guess(&mut self.work, &mut u, j);
        let mut ok_u = u.clone();
        let mut ok_j = 0.0;
        let mut factor = 2.0_f64;
        for _ in 0..200 {
            u.copy_from_slice(&ok_u);
            match self.model.newton(&mut self.work, &mut u, j) {
                Ok(it) => {
                    total += it;
                    if j >= jv {
                        return Ok(self.remember(jv, u, total));
                    }
                    ok_u.copy_from_slice(&u);
                    ok_j = j;
                    factor = (factor * 1.5).min(2.0);
                    j = (j * factor).min(jv);
                }
                Err(f) => {
                    newton_failure = Some(f);
                    factor = factor.sqrt();
                    if ok_j == 0.0 || factor < 1.0 + 1e-6 {
                        break;
                    }
                    j = (ok_j * factor).min(jv);
                }
            }
        }
        Err(self
            .model
            .failure_error(self.work.last_failure, newton_failure, Some(jv)))
    }

    fn remember(&mut self, jv: f64, u: Vec<f64>, iterations: usize) -> (Vec<f64>, usize) {
        match &mut self.warm {
            Some((j, w)) => {
                *j = jv;
                w.copy_from_slice(&u);
            }
            None => self.warm = Some((jv, u.clone())),
        }
        (u, iterations)
    }

    /// Evaluates everything at converged unknowns and packages it.
    pub(crate) fn solution(
        &mut self,
        u: &[f64],
        jv: f64,
        dp_pa: Option<f64>,
        iterations: usize,
    ) -> Result<PointSolution> {
        let model = &self.model;
        let w = &mut self.work;
        let mut r = std::mem::take(&mut w.r);
        let eval = model.residual(w, u, jv, &mut r);
        w.r = r;
        eval.map_err(|f| model.failure_error(Some(f), None, Some(jv)))?;
        let n = model.n;
        let nn = model.elements;
        let rt = GAS_CONSTANT * model.temperature_k;
        let pi_m = rt * w.c_m.iter().sum::<f64>();
        let pi_p = rt * w.c_p.iter().sum::<f64>();
        let dp = dp_pa.unwrap_or(jv / model.lp + pi_m - pi_p);
        let sol = PointSolution {
            ions: model.names.clone(),
            jv_m_s: jv,
            dp_pa: dp,
            water_flux_mol_m2_s: jv * water_density(model.temperature_k) / model.water_molar_mass,
            solute_flux_mol_m2_s: w.c_p.iter().map(|c| jv * c).collect(),
            c_bulk: model.c_bulk.clone(),
            c_interface: w.c_m.clone(),
            c_pore_entrance: w.nodes[..n].to_vec(),
            c_pore_exit: w.nodes[nn * n..].to_vec(),
            c_permeate: w.c_p.clone(),
            psi_pore_entrance_v: w.phi[0] / model.f,
            psi_pore_exit_v: w.phi[nn] / model.f,
            psi_permeate_v: (w.phi[nn] - w.phi_d) / model.f,
            xi_v_m: model.film.as_ref().map(|f| u[u.len() - 1] * f.xi_per_eta),
            pi_interface_pa: pi_m,
            pi_permeate_pa: pi_p,
            rejection_vs_interface: w.c_p.iter().zip(&w.c_m).map(|(p, m)| 1.0 - p / m).collect(),
            rejection_vs_bulk: w
                .c_p
                .iter()
                .zip(&model.c_bulk)
                .map(|(p, b)| 1.0 - p / b)
                .collect(),
            pore_nodes: w.nodes.chunks(n).map(<[f64]>::to_vec).collect(),
            pore_potential_v: w.phi.iter().map(|p| p / model.f).collect(),
            constants: model.constants.clone(),
            activity: (model.activity != ActivityModel::Ideal).then(|| model.activity_report(w)),
            iterations,
        };
        let finite = [
            sol.dp_pa,
            sol.psi_pore_entrance_v,
            sol.psi_pore_exit_v,
            sol.psi_permeate_v,
        ]
        .iter()
        .chain(&sol.c_interface)
        .chain(&sol.c_permeate)
        .chain(&sol.c_pore_entrance)
        .chain(&sol.c_pore_exit)
        .all(|v| v.is_finite());
        if !finite {
            return Err(PhysicsError::NoConvergence {
                stage: Stage::Membrane,
                reason: format!("the solution at Jv = {jv:e} m/s is not finite"),
            });
        }
        Ok(sol)
    }

    /// Osmotic pressure difference `pi_m - pi_p` at converged unknowns (pressure mode).
    pub(crate) fn osmotic_difference(&self) -> f64 {
        let rt = GAS_CONSTANT * self.model.temperature_k;
        rt * (self.work.c_m.iter().sum::<f64>() - self.work.c_p.iter().sum::<f64>())
    }

    /// Whether the spec has a film (whose linearised form can be infeasible at high flux).
    pub(crate) fn has_film(&self) -> bool {
        self.model.film.is_some()
    }
}

impl Model {
    fn unknowns(&self) -> usize {
        self.elements * (self.n + 1) + usize::from(self.film.is_some())
    }

    fn activity_report(&self, w: &Work) -> ActivityReport {
        let n = self.n;
        let nn = self.elements;
        let at = |c: &[f64]| {
            let mut ln_g = vec![0.0; n];
            ln_gamma_into(
                self.activity,
                self.davies_a,
                &self.z,
                &self.molar_mass,
                c,
                &mut ln_g,
            );
            let strength = ionic_strength_molal(&self.z, &self.molar_mass, c).unwrap_or(f64::NAN);
            (ln_g.iter().map(|g| g.exp()).collect::<Vec<_>>(), strength)
        };
        let (gamma_interface, ionic_strength_interface) = at(&w.c_m);
        let (gamma_pore_entrance, ionic_strength_pore_entrance) = at(&w.nodes[..n]);
        let (gamma_pore_exit, ionic_strength_pore_exit) = at(&w.nodes[nn * n..]);
        let (gamma_permeate, ionic_strength_permeate) = at(&w.c_p);
        ActivityReport {
            davies_a: self.davies_a,
            gamma_interface,
            gamma_pore_entrance,
            gamma_pore_exit,
            gamma_permeate,
            ionic_strength_interface,
            ionic_strength_pore_entrance,
            ionic_strength_pore_exit,
            ionic_strength_permeate,
        }
    }

    /// Fixes the transport-row scales from the current pore-entrance concentrations: the
    /// magnitude of an ion's diffusive and convective terms is `(D_p / dx + 2 K_c J) c_0`.
    /// Scaling by the entrance rather than the feed keeps the rows of Donnan- and
    /// Born-excluded ions (pore concentrations 1e-6 of the feed) as well conditioned as the
    /// others; a scale that is constant during the iteration keeps Newton's convergence fast.
    fn set_scales(&self, w: &mut Work, jv: f64) {
        for i in 0..self.n {
            let c0 = w.nodes[i].max(1e-300);
            w.enp_scale[i] = (self.d_pore[i] / self.dx + 2.0 * self.k_c[i] * jv) * c0;
        }
    }

    /// Whether a stalled residual is good enough: charge balances (the rows after the
    /// `N n` transport rows) tight, transport rows at the floor.
    fn at_floor(&self, r: &[f64]) -> bool {
        let split = self.elements * self.n;
        inf_norm(&r[..split]) <= FLOOR_TOLERANCE && inf_norm(&r[split..]) <= 5e-11
    }

    /// `sum |z| c / sum |z| c_b`: turns a balance relative to `c` into one relative to the feed.
    fn charge_ratio(&self, c: &[f64]) -> f64 {
        let total: f64 = self.z.iter().zip(c).map(|(z, c)| z.abs() * c).sum();
        total / self.en_bulk
    }

    fn mouth(&self) -> Mouth<'_> {
        Mouth {
            z: &self.z,
            partition: &self.partition,
            molar_mass: &self.molar_mass,
            activity: self.activity,
            davies_a: self.davies_a,
            x: self.x,
        }
    }

    fn activities(&self, c: &[f64], out: &mut [f64]) -> std::result::Result<(), EvalFailure> {
        ln_gamma_into(
            self.activity,
            self.davies_a,
            &self.z,
            &self.molar_mass,
            c,
            out,
        )
        .ok_or(EvalFailure::Mouth(Stage::Activity, MouthFailure::NoWater))
    }

    /// Entrance Donnan from the current interface concentrations `w.c_m`.
    fn entrance(&self, w: &mut Work) -> std::result::Result<(), EvalFailure> {
        let n = self.n;
        let mut lng_m = std::mem::take(&mut w.lng_m);
        let res = self.activities(&w.c_m, &mut lng_m).and_then(|()| {
            self.mouth()
                .solve(&w.c_m, &lng_m, w.phi[0], &mut w.mouth_in, &mut w.nodes[..n])
                .map_err(|f| EvalFailure::Mouth(Stage::DonnanEntrance, f))
        });
        w.lng_m = lng_m;
        w.phi[0] = res?;
        Ok(())
    }

    /// A starting point from a one-ion estimate of each permeate concentration: with the
    /// entrance partition `Phi_i = c_0,i / c_m,i` (steric, Born and Donnan) and the pore
    /// Peclet number `Pe_i = K_c,i J dx / D_p,i`, a solute crossing a pore with the same
    /// partition at both mouths has `c_p / c_m = Phi K_c / (1 - (1 - Phi K_c) e^-Pe)` (capped
    /// at 1). The permeate is then made electroneutral by scaling down the side with excess
    /// charge (the counter-ions, which the co-ions limit). It is exact for J -> 0 and
    /// captures the excluded co-ions whose permeate is orders of magnitude below the feed;
    /// the pore is started flat.
    fn cold_guess(&self, w: &mut Work, u: &mut [f64], jv: f64) {
        let n = self.n;
        if self.film.is_some() {
            w.c_m.copy_from_slice(&self.c_bulk);
            // The entrance at the bulk composition exists (checked in `new`).
            let _ = self.entrance(w);
        }
        let (mut pos, mut neg) = (0.0, 0.0);
        for i in 0..n {
            let phi_kc = w.nodes[i] / w.c_m[i] * self.k_c[i];
            let pe = self.k_c[i] * jv * self.dx / self.d_pore[i];
            let ratio = if phi_kc < 1.0 {
                phi_kc / (1.0 - (1.0 - phi_kc) * (-pe).exp())
            } else {
                1.0
            };
            let c = w.c_m[i] * ratio.clamp(1e-12, 1.0);
            w.c_p[i] = c;
            if self.z[i] > 0.0 {
                pos += self.z[i] * c;
            } else {
                neg -= self.z[i] * c;
            }
        }
        for i in 0..n {
            let scale = match (self.z[i] > 0.0, pos > neg) {
                (true, true) => neg / pos,
                (false, false) => pos / neg,
                _ => 1.0,
            };
            u[i] = (w.c_p[i] * scale).ln();
        }
        u[n] = w.phi[0];
        for k in 1..self.elements {
            let off = (n + 1) * k;
            for i in 0..n {
                u[off + i] = w.nodes[i].ln();
            }
            u[off + n] = w.phi[0];
        }
        if self.film.is_some() {
            let last = u.len() - 1;
            u[last] = 0.0;
        }
    }

    /// Fills `r` with the scaled residuals at `u`; updates the state buffers in `w`.
    fn residual(
        &self,
        w: &mut Work,
        u: &[f64],
        jv: f64,
        r: &mut [f64],
    ) -> std::result::Result<(), EvalFailure> {
        let n = self.n;
        let nn = self.elements;
        for i in 0..n {
            let c = u[i].exp();
            if !(c > 0.0 && c.is_finite()) {
                return Err(EvalFailure::NonFinite);
            }
            w.c_p[i] = c;
        }
        if let Some(film) = &self.film {
            let eta = u[u.len() - 1];
            for i in 0..n {
                let cm = interface_concentration(
                    film.model,
                    self.c_bulk[i],
                    w.c_p[i],
                    jv,
                    film.k[i],
                    film.zdk[i] * eta,
                );
                if !(cm > 0.0 && cm.is_finite()) {
                    return Err(EvalFailure::InterfaceNotPositive(i));
                }
                w.c_m[i] = cm;
            }
            self.entrance(w)?;
        }
        // Exit Donnan between the permeate and the last pore node.
        let mut lng_p = std::mem::take(&mut w.lng_p);
        let exit = self.activities(&w.c_p, &mut lng_p).and_then(|()| {
            self.mouth()
                .solve(
                    &w.c_p,
                    &lng_p,
                    w.phi_d,
                    &mut w.mouth_out,
                    &mut w.nodes[nn * n..],
                )
                .map_err(|f| EvalFailure::Mouth(Stage::DonnanExit, f))
        });
        w.lng_p = lng_p;
        w.phi_d = exit?;
        w.phi[nn] = u[n];
        for k in 1..nn {
            let off = (n + 1) * k;
            for i in 0..n {
                w.nodes[k * n + i] = u[off + i].exp();
            }
            w.phi[k] = u[off + n];
        }
        // Extended Nernst-Planck per element and ion.
        let h = self.dx / nn as f64;
        for k in 1..=nn {
            let dphi = w.phi[k] - w.phi[k - 1];
            for i in 0..n {
                let ca = w.nodes[(k - 1) * n + i];
                let cb = w.nodes[k * n + i];
                let mean = 0.5 * (ca + cb);
                let dp = self.d_pore[i];
                r[(k - 1) * n + i] = (jv * w.c_p[i] + dp * (cb - ca) / h - self.k_c[i] * mean * jv
                    + self.z[i] * mean * dp * dphi / h)
                    / w.enp_scale[i];
            }
        }
        // Electroneutrality: interior nodes, permeate, interface.
        let mut row = nn * n;
        for k in 1..nn {
            r[row] = charge_balance(&self.z, &w.nodes[k * n..(k + 1) * n], self.x);
            row += 1;
        }
        // Scaled by the feed's total charge: a fixed scale keeps the Newton problem smooth
        // where the permeate is nearly pure water (scaling by the permeate's own charge made
        // Newton crawl for strongly rejected feeds).
        r[row] = charge_balance(&self.z, &w.c_p, 0.0) * self.charge_ratio(&w.c_p);
        if self.film.is_some() {
            r[row + 1] = charge_balance(&self.z, &w.c_m, 0.0) * self.charge_ratio(&w.c_m);
        }
        if r.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(EvalFailure::NonFinite)
        }
    }

    /// Damped Newton from `u`; on success `u` holds the root. Returns the iteration count.
    fn newton(
        &self,
        w: &mut Work,
        u: &mut [f64],
        jv: f64,
    ) -> std::result::Result<usize, NewtonFailure> {
        let m = u.len();
        let mut r = std::mem::take(&mut w.r);
        let mut r_trial = std::mem::take(&mut w.r_trial);
        let mut u_trial = std::mem::take(&mut w.u_trial);
        let mut jac = std::mem::take(&mut w.jac);
        let mut step = std::mem::take(&mut w.step);
        let outcome = (|| {
            let fail = |w: &mut Work, f| {
                w.last_failure = Some(f);
                NewtonFailure::Evaluation
            };
            if self.film.is_some() {
                // The entrance moves with the interface: evaluate once to place it.
                self.residual(w, u, jv, &mut r).map_err(|f| fail(w, f))?;
            }
            self.set_scales(w, jv);
            self.residual(w, u, jv, &mut r).map_err(|f| fail(w, f))?;
            let mut norm = inf_norm(&r);
            for it in 0..NEWTON_MAX_ITERATIONS {
                if norm <= RESIDUAL_TOLERANCE {
                    return Ok(it);
                }
                // Forward-difference Jacobian, column by column.
                for j in 0..m {
                    let saved = u[j];
                    let mut h = 1e-7 * saved.abs().max(1.0);
                    u[j] = saved + h;
                    if let Err(f) = self.residual(w, u, jv, &mut r_trial) {
                        w.last_failure = Some(f);
                        h = -h;
                        u[j] = saved + h;
                        if self.residual(w, u, jv, &mut r_trial).is_err() {
                            u[j] = saved;
                            return Err(NewtonFailure::Evaluation);
                        }
                    }
                    u[j] = saved;
                    for i in 0..m {
                        jac[i * m + j] = (r_trial[i] - r[i]) / h;
                    }
                }
                for i in 0..m {
                    step[i] = -r[i];
                }
                if !lu_solve(&mut jac, &mut step, m) {
                    return Err(NewtonFailure::Singular);
                }
                let largest = inf_norm(&step);
                if largest > MAX_STEP {
                    step.iter_mut().for_each(|s| *s *= MAX_STEP / largest);
                }
                // Armijo backtracking on |r|^2.
                let f0 = sum_sq(&r);
                let mut alpha = 1.0;
                let mut accepted = false;
                for _ in 0..40 {
                    for i in 0..m {
                        u_trial[i] = u[i] + alpha * step[i];
                    }
                    match self.residual(w, &u_trial, jv, &mut r_trial) {
                        Ok(()) if sum_sq(&r_trial) <= (1.0 - 1e-4 * alpha) * f0 => {
                            accepted = true;
                            break;
                        }
                        Ok(()) => {}
                        Err(f) => w.last_failure = Some(f),
                    }
                    alpha *= 0.5;
                }
                if !accepted {
                    // At the floating-point floor the residual cannot decrease any more.
                    if self.at_floor(&r) {
                        return Ok(it);
                    }
                    return Err(NewtonFailure::LineSearch);
                }
                u.copy_from_slice(&u_trial);
                std::mem::swap(&mut r, &mut r_trial);
                let moved = alpha * inf_norm(&step);
                norm = inf_norm(&r);
                if moved < 1e-14 && self.at_floor(&r) {
                    return Ok(it + 1);
                }
            }
            if self.at_floor(&r) {
                Ok(NEWTON_MAX_ITERATIONS)
            } else {
                Err(NewtonFailure::MaxIterations(norm))
            }
        })();
        w.r = r;
        w.r_trial = r_trial;
        w.u_trial = u_trial;
        w.jac = jac;
        w.step = step;
        outcome
    }

    /// Turns the failures of a solve into a user-facing error. An evaluation failure that
    /// marks infeasibility (no positive interface concentration, no Donnan root) wins over a
    /// Newton convergence failure, since it says why Newton could not get there.
    fn failure_error(
        &self,
        eval: Option<EvalFailure>,
        newton: Option<NewtonFailure>,
        jv: Option<f64>,
    ) -> PhysicsError {
        let at = jv
            .map(|jv| format!(" at Jv = {jv:.6e} m/s"))
            .unwrap_or_default();
        match eval {
            Some(EvalFailure::InterfaceNotPositive(i)) => {
                let film = self.film.as_ref().expect("interface failure needs a film");
                let k_min = film.k.iter().cloned().fold(f64::INFINITY, f64::min);
                let (model, alternative) = match film.model {
                    FilmModel::Linearised => ("linearised", ", or use the exponential film model"),
                    FilmModel::Exponential => ("exponential", ""),
                };
                return PhysicsError::NoSolution {
                    stage: Stage::Polarisation,
                    reason: format!(
                        "the {model} film model has no positive interface concentration of {}{at}; \
                         the water flux is too high for the mass-transfer coefficients (smallest k = {k_min:.4e} m/s). \
                         Lower the flux or pressure, raise the cross-flow{alternative}",
                        self.names[i]
                    ),
                };
            }
            Some(EvalFailure::Mouth(stage, MouthFailure::NoRoot)) => {
                return PhysicsError::NoSolution {
                    stage,
                    reason: format!(
                        "no potential balances the membrane charge X = {} mol/m3{at}",
                        self.x
                    ),
                }
            }
            Some(EvalFailure::Mouth(stage, MouthFailure::NoWater)) => {
                return PhysicsError::NoSolution {
                    stage,
                    reason: format!("concentrations leave no water for the Davies molality{at}"),
                }
            }
            Some(EvalFailure::Mouth(stage, MouthFailure::ActivityDiverged)) => {
                return PhysicsError::NoConvergence {
                    stage,
                    reason: format!("the Davies pore ionic strength iteration did not settle{at}"),
                }
            }
            Some(EvalFailure::NonFinite) | None => {}
        }
        let reason = match newton {
            Some(NewtonFailure::MaxIterations(norm)) => format!(
                "Newton stopped after {NEWTON_MAX_ITERATIONS} iterations with scaled residual {norm:.3e}{at}"
            ),
            Some(NewtonFailure::Singular) => format!("singular Jacobian{at}"),
            Some(NewtonFailure::LineSearch) => format!("the line search found no decrease{at}"),
            Some(NewtonFailure::Evaluation) | None => format!("non-finite residual{at}"),
        };
        PhysicsError::NoConvergence {
            stage: Stage::Membrane,
            reason,
        }
    }
}

/// Why a Newton run failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NewtonFailure {
    Evaluation,
    Singular,
    LineSearch,
    MaxIterations(f64),
}

/// `(sum z c + x) / (sum |z| c + |x|)`: a charge balance relative to its own scale.
fn charge_balance(z: &[f64], c: &[f64], x: f64) -> f64 {
    let (mut q, mut scale) = (x, x.abs());
    for (z, c) in z.iter().zip(c) {
        q += z * c;
        scale += z.abs() * c;
    }
    q / scale
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn sum_sq(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum()
}
