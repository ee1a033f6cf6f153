//! The classical baseline of the ablation study (MODEL.md section 4): DSPM-DE with its four
//! membrane parameters calibrated on the same training data as the neural ODE.
//!
//! The model is the pre-training DSPM-DE: flux-driven point solves ([`PointSolver`]), ideal
//! activities, no concentration polarisation, one pore element, each point at its row's
//! temperature (or one temperature for all, if the config sets it). The fit minimises the mean squared rejection error over every present
//! (row, ion) pair with argmin's Nelder-Mead, from several deterministic starts (the NF270
//! preset and a Latin hypercube of the literature box), keeping the best.
//!
//! Bounds are imposed by a smooth transform rather than by the optimiser: each parameter is
//! `lo + (hi - lo) * sigmoid(theta)` (the thickness log-uniformly, as it spans a decade), so
//! Nelder-Mead works on an unbounded space and can never propose an unphysical membrane.
//!
//! The four parameters are not separately identifiable from rejections alone: pore radius,
//! dielectric exclusion and charge trade off (a smaller pore and a lower pore permittivity
//! both exclude divalent ions), and the thickness only scales the flux axis together with
//! the hindered diffusivities. The fit is judged by its rejections, not by recovering the
//! parameters.
//!
//! A point the physics cannot solve during fitting is charged `failure_penalty` per ion
//! (squared error; 1.0 is a rejection off by 1) and counted; the cost is never NaN. At
//! prediction time a failed point is reported and predicted as zero rejection.

mod space;

pub use space::{Bounds, ChargeFit, LITERATURE_BOX};

use crate::data::Samples;
use crate::error::{Result, TrainError};
use argmin::core::{CostFunction, Executor, State};
use argmin::solver::neldermead::NelderMead;
use ionode_physics::constants::WATER_MOLAR_MASS;
use ionode_physics::membrane::Membrane;
use ionode_physics::{ActivityModel, Drive, Ion, PointSolver, PointSpec, Polarisation};
use ionode_physics::{ChargeModel, ChargedMembrane};
use ionode_random::{stream_seed, Rng};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use space::{Space, Theta, MAX_DIMS};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Mixed into the seed of the Latin-hypercube starts.
const START_STREAM_SALT: u64 = 0x6361_6c69_6272_6174;

/// How the baseline is calibrated; part of a run's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibrationConfig {
    /// Nelder-Mead starts: the NF270 preset, then `starts - 1` Latin-hypercube points.
    pub starts: usize,
    /// Nelder-Mead iterations per start.
    pub max_iters: u64,
    /// Seed of the Latin hypercube.
    pub seed: u64,
    /// Solve every point at this temperature, K, instead of its row's own (which is the
    /// default and what the data says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_k: Option<f64>,
    /// Squared rejection error charged per ion of a point the physics cannot solve.
    pub failure_penalty: f64,
    /// Stop a start when the standard deviation of the simplex's costs falls below this.
    pub sd_tolerance: f64,
    /// Edge of the initial simplex in the transformed (logit) coordinates.
    pub initial_step: f64,
    pub bounds: Bounds,
    /// How the charge depends on the feed (docs/DSPMDE.md): constant (the default: one
    /// charge density in `bounds`), Freundlich or Langmuir, with the box of each parameter.
    #[serde(skip_serializing_if = "ChargeFit::is_constant")]
    pub charge: ChargeFit,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        CalibrationConfig {
            starts: 4,
            max_iters: 300,
            seed: 0,
            temperature_k: None,
            failure_penalty: 1.0,
            sd_tolerance: 1e-10,
            initial_step: 0.6,
            bounds: LITERATURE_BOX,
            charge: ChargeFit::Constant,
        }
    }
}

/// Most Nelder-Mead starts of a calibration.
pub const MAX_STARTS: usize = 1000;
/// Most Nelder-Mead iterations of one start.
pub const MAX_ITERS: u64 = 1_000_000;

impl CalibrationConfig {
    /// Checks every field (the one range check of a calibration config).
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_STARTS).contains(&self.starts) {
            return Err(TrainError::invalid(
                "starts",
                self.starts,
                format!("a count in 1..={MAX_STARTS}"),
            ));
        }
        if !(1..=MAX_ITERS).contains(&self.max_iters) {
            return Err(TrainError::invalid(
                "max_iters",
                self.max_iters,
                format!("a count in 1..={MAX_ITERS}"),
            ));
        }
        if let Some(t) = self.temperature_k {
            if !(t.is_finite() && (273.15..=373.15).contains(&t)) {
                return Err(TrainError::invalid(
                    "temperature_k",
                    t,
                    "a temperature in 273.15..=373.15 K",
                ));
            }
        }
        for (field, v) in [
            ("failure_penalty", self.failure_penalty),
            ("sd_tolerance", self.sd_tolerance),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(TrainError::invalid(field, v, "a finite number >= 0"));
            }
        }
        if !(self.initial_step.is_finite() && self.initial_step > 0.0) {
            return Err(TrainError::invalid(
                "initial_step",
                self.initial_step,
                "a finite number > 0",
            ));
        }
        Space::new(&self.bounds, &self.charge).map(drop)
    }
}

/// One Nelder-Mead run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartReport {
    pub initial: Membrane,
    /// The charge model it started from (absent: constant).
    #[serde(default, skip_serializing_if = "ChargeModel::is_constant")]
    pub initial_charge: ChargeModel,
    pub membrane: Membrane,
    /// The charge model it ended at (absent: constant).
    #[serde(default, skip_serializing_if = "ChargeModel::is_constant")]
    pub charge: ChargeModel,
    /// Rejection MSE (with failure penalties) at `membrane`.
    pub cost: f64,
    pub iterations: u64,
    /// argmin's termination status, as text.
    pub termination: String,
}

/// A calibrated DSPM-DE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DspmdeFit {
    /// The best membrane over all starts.
    pub membrane: Membrane,
    /// How its charge depends on the feed (absent: constant, `membrane`'s own).
    #[serde(default, skip_serializing_if = "ChargeModel::is_constant")]
    pub charge: ChargeModel,
    /// Its rejection MSE on the training samples (with failure penalties).
    pub cost: f64,
    /// Training points the physics could not solve at `membrane`.
    pub failed_points: usize,
    /// Point solves that failed during the whole fit (all starts, all evaluations).
    pub failed_solves_during_fit: usize,
    /// Cost evaluations over all starts.
    pub evaluations: usize,
    pub starts: Vec<StartReport>,
    /// The slot names and ions the fit was made for.
    pub species: Vec<String>,
    pub ions: Vec<Ion>,
    /// The one temperature every point was solved at, K; `None`: each at its row's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_k: Option<f64>,
}

/// Predicted permeate of a [`DspmdeFit`].
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// `[N, S]` permeate, mol/m3 (0 for absent ions; the feed where the point failed).
    pub permeate: Array2<f64>,
    /// Rows the physics could not solve (predicted as zero rejection).
    pub failed_rows: Vec<usize>,
}

/// Points sharing one feed: solved by one warm-started solver, fluxes in increasing order.
#[derive(Debug, Clone)]
struct Group {
    /// Present slots.
    slots: Vec<usize>,
    ions: Vec<Ion>,
    /// Feed of the present slots, made exactly electroneutral for the physics.
    c_bulk: Vec<f64>,
    /// The temperature of its points, K.
    temperature_k: f64,
    /// (row, flux) in increasing flux.
    points: Vec<(usize, f64)>,
}

/// Groups the rows by identical feed and temperature (`temperature_k` overrides every
/// row's own).
fn groups(samples: &Samples, ions: &[Ion], temperature_k: Option<f64>) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut keys: Vec<Vec<u64>> = Vec::new();
    for row in 0..samples.len() {
        let t = temperature_k.unwrap_or(samples.temperature_k[row]);
        let mut key: Vec<u64> = samples
            .feed_mol_m3
            .row(row)
            .iter()
            .zip(samples.mask.row(row))
            .map(|(c, &m)| if m { c.to_bits() } else { 0 })
            .collect();
        key.push(t.to_bits());
        let jv = samples.flux_m_s[row];
        if let Some(k) = keys.iter().position(|k| *k == key) {
            out[k].points.push((row, jv));
            continue;
        }
        let slots: Vec<usize> = (0..samples.slots())
            .filter(|&s| samples.mask[[row, s]])
            .collect();
        let c: Vec<f64> = slots
            .iter()
            .map(|&s| samples.feed_mol_m3[[row, s]])
            .collect();
        let z: Vec<f64> = slots
            .iter()
            .map(|&s| f64::from(samples.charges[s]))
            .collect();
        keys.push(key);
        out.push(Group {
            ions: slots.iter().map(|&s| ions[s].clone()).collect(),
            c_bulk: balance(&z, &c),
            slots,
            temperature_k: t,
            points: vec![(row, jv)],
        });
    }
    for g in &mut out {
        g.points
            .sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    }
    out
}

/// Scales cations down and anions up by the square root of their charge ratio (as the
/// simulator does), so a measured feed neutral to a few percent becomes exactly neutral,
/// which the point solver requires. Rejections are relative, so they transfer back to the
/// stated feed unchanged.
fn balance(z: &[f64], c: &[f64]) -> Vec<f64> {
    let pos: f64 = z
        .iter()
        .zip(c)
        .filter(|(z, _)| **z > 0.0)
        .map(|(z, c)| z * c)
        .sum();
    let neg: f64 = z
        .iter()
        .zip(c)
        .filter(|(z, _)| **z < 0.0)
        .map(|(z, c)| -z * c)
        .sum();
    if !(pos > 0.0 && neg > 0.0) {
        return c.to_vec();
    }
    let q = (pos / neg).sqrt();
    z.iter()
        .zip(c)
        .map(|(z, c)| {
            if *z > 0.0 {
                c / q
            } else if *z < 0.0 {
                c * q
            } else {
                *c
            }
        })
        .collect()
}

/// Rejections of every point of a group (`None` where the physics failed), with the
/// charge the model gives the group's feed.
fn solve_group(group: &Group, model: &ChargedMembrane) -> Vec<Option<Vec<f64>>> {
    let spec = PointSpec {
        ions: group.ions.clone(),
        c_bulk: group.c_bulk.clone(),
        membrane: model.for_feed(&group.ions, &group.c_bulk),
        temperature_k: group.temperature_k,
        activity: ActivityModel::Ideal,
        polarisation: Polarisation::None,
        elements: 1,
        water_molar_mass_kg_mol: WATER_MOLAR_MASS,
    };
    match PointSolver::new(&spec) {
        Ok(mut solver) => group
            .points
            .iter()
            .map(|&(_, jv)| {
                solver
                    .solve(Drive::Flux { jv_m_s: jv })
                    .ok()
                    .map(|s| s.rejection_vs_bulk)
                    .filter(|r| r.iter().all(|x| x.is_finite()))
            })
            .collect(),
        Err(_) => vec![None; group.points.len()],
    }
}

/// The rejection MSE over the training groups (measured outcomes only).
struct Objective<'a> {
    groups: &'a [Group],
    /// Target rejections `[N, S]`.
    target: Array2<f64>,
    /// Which targets were measured `[N, S]`.
    observed: &'a ndarray::Array2<bool>,
    /// Film factors of rows whose targets are observed rejections (`Samples::film_factor`):
    /// their intrinsic rejections are compared after the film model's conversion.
    film: Option<&'a ndarray::Array1<f64>>,
    n_values: usize,
    config: &'a CalibrationConfig,
    space: Space,
    failed_solves: AtomicUsize,
    evaluations: AtomicUsize,
}

impl Objective<'_> {
    /// Cost and failed points at a model.
    fn evaluate(&self, model: &ChargedMembrane) -> (f64, usize) {
        let (mut sum, mut failed) = (0.0, 0);
        for g in self.groups {
            for (&(row, _), r) in g.points.iter().zip(solve_group(g, model)) {
                match r {
                    Some(r) => {
                        let e = self.film.map_or(1.0, |f| f[row]);
                        for (&s, &r) in g.slots.iter().zip(&r) {
                            if self.observed[[row, s]] {
                                let r = if e == 1.0 {
                                    r
                                } else {
                                    1.0 - crate::measured::observed_transmission(1.0 - r, e)
                                };
                                sum += (r - self.target[[row, s]]).powi(2);
                            }
                        }
                    }
                    None => {
                        failed += 1;
                        let measured = g.slots.iter().filter(|&&s| self.observed[[row, s]]);
                        sum += self.config.failure_penalty * measured.count() as f64;
                    }
                }
            }
        }
        (sum / self.n_values as f64, failed)
    }
}

impl CostFunction for &Objective<'_> {
    type Param = Theta;
    type Output = f64;

    fn cost(&self, theta: &Theta) -> std::result::Result<f64, argmin::core::Error> {
        let (cost, failed) = self.evaluate(&self.space.model(theta));
        self.failed_solves.fetch_add(failed, Ordering::Relaxed);
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        Ok(cost)
    }
}

/// The starting models: the NF270 preset (clamped into the box; a charge model it lacks in
/// the middle of its box), then a Latin hypercube over the central 90 % of each
/// (transformed) range. The hypercube's first four columns are drawn first, so a constant
/// charge starts where it always did.
fn start_models(config: &CalibrationConfig, space: &Space) -> Vec<ChargedMembrane> {
    let nf270 =
        ChargedMembrane::constant(Membrane::preset("nf270").expect("the nf270 preset exists"));
    let preset: Vec<f64> = space
        .unit_of(&nf270)
        .iter()
        .map(|u| u.clamp(0.05, 0.95))
        .collect();
    let mut starts = vec![space.model_at(&preset)];
    let m = config.starts.saturating_sub(1);
    if m > 0 {
        let mut rng = Rng::new(stream_seed(config.seed ^ START_STREAM_SALT, 0));
        // Per dimension, one uniform point in each of m strata, strata in random order.
        let columns: Vec<Vec<f64>> = (0..space.dims())
            .map(|_| {
                let mut strata: Vec<usize> = (0..m).collect();
                rng.shuffle(&mut strata);
                strata
                    .into_iter()
                    .map(|k| 0.05 + 0.9 * (k as f64 + rng.uniform()) / m as f64)
                    .collect()
            })
            .collect();
        starts.extend((0..m).map(|i| {
            let u: Vec<f64> = columns.iter().map(|c| c[i]).collect();
            space.model_at(&u)
        }));
    }
    starts
}

/// Calibrates the DSPM-DE membrane on `samples`; `ions` are the slots' ions in slot order
/// (see [`Samples::slot_ions`]).
pub fn dspmde_fit(
    samples: &Samples,
    ions: &[Ion],
    config: &CalibrationConfig,
) -> Result<DspmdeFit> {
    samples.validate()?;
    check_ions(samples, ions)?;
    config.validate()?;
    let n_values = samples.observed.iter().filter(|&&m| m).count();
    if n_values == 0 {
        return Err(TrainError::invalid(
            "training samples",
            "none",
            "at least one row with a measured outcome",
        ));
    }
    let groups = groups(samples, ions, config.temperature_k);
    let space = Space::new(&config.bounds, &config.charge)?;
    let objective = Objective {
        groups: &groups,
        target: samples.rejection(),
        observed: &samples.observed,
        film: samples.film_factor.as_ref(),
        n_values,
        config,
        space: space.clone(),
        failed_solves: AtomicUsize::new(0),
        evaluations: AtomicUsize::new(0),
    };
    let mut reports = Vec::new();
    let mut best: Option<(f64, ChargedMembrane)> = None;
    for initial in start_models(config, &space) {
        let t0 = space.theta(&initial);
        let mut simplex = vec![t0];
        for d in 0..space.dims().min(MAX_DIMS) {
            let mut t = t0;
            t.0[d] += config.initial_step;
            simplex.push(t);
        }
        let solver = NelderMead::new(simplex)
            .with_sd_tolerance(config.sd_tolerance)
            .map_err(|e| TrainError::invalid("sd_tolerance", config.sd_tolerance, e.to_string()))?;
        let result = Executor::new(&objective, solver)
            .configure(|s| s.max_iters(config.max_iters))
            .run()
            .map_err(|e| TrainError::invalid("calibration", e, "a run of Nelder-Mead"))?;
        let state = result.state();
        let theta = *state.get_best_param().unwrap_or(&t0);
        let model = space.model(&theta);
        let cost = state.get_best_cost();
        reports.push(StartReport {
            initial: initial.membrane,
            initial_charge: initial.charge,
            membrane: model.membrane,
            charge: model.charge,
            cost,
            iterations: state.get_iter(),
            termination: state.get_termination_status().to_string(),
        });
        if best.is_none_or(|(c, _)| cost < c) {
            best = Some((cost, model));
        }
    }
    let (_, model) = best.expect("at least one start");
    // Re-evaluate at the best model for an exact cost and failure count.
    let (cost, failed_points) = objective.evaluate(&model);
    Ok(DspmdeFit {
        membrane: model.membrane,
        charge: model.charge,
        cost,
        failed_points,
        failed_solves_during_fit: objective.failed_solves.load(Ordering::Relaxed),
        evaluations: objective.evaluations.load(Ordering::Relaxed),
        starts: reports,
        species: samples.species.clone(),
        ions: ions.to_vec(),
        temperature_k: config.temperature_k,
    })
}

fn check_ions(samples: &Samples, ions: &[Ion]) -> Result<()> {
    if ions.len() != samples.slots()
        || ions
            .iter()
            .zip(&samples.charges)
            .any(|(i, &z)| i.charge != z)
    {
        return Err(TrainError::shape(
            "slot ions",
            format!(
                "{} ions ({}) for slots {} with charges {:?}",
                ions.len(),
                ions.iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                samples.species.join(", "),
                samples.charges
            ),
        ));
    }
    Ok(())
}

impl DspmdeFit {
    /// The calibrated membrane with its charge model.
    pub fn charged(&self) -> ChargedMembrane {
        ChargedMembrane {
            membrane: self.membrane,
            charge: self.charge,
        }
    }

    /// The calibrated model's permeate for `samples` (same slots as the fit). A point the
    /// physics cannot solve is predicted as the feed (zero rejection) and listed.
    pub fn predict(&self, samples: &Samples) -> Result<Prediction> {
        samples.validate()?;
        if samples.species != self.species {
            return Err(TrainError::shape(
                "prediction slots",
                format!(
                    "fit for {}, samples have {}",
                    self.species.join(", "),
                    samples.species.join(", ")
                ),
            ));
        }
        let mut permeate = Array2::zeros(samples.feed_mol_m3.dim());
        let mut failed_rows = Vec::new();
        let model = self.charged();
        for g in groups(samples, &self.ions, self.temperature_k) {
            for (&(row, _), r) in g.points.iter().zip(solve_group(&g, &model)) {
                if r.is_none() {
                    failed_rows.push(row);
                }
                for (k, &s) in g.slots.iter().enumerate() {
                    let rej = r.as_ref().map_or(0.0, |r| r[k]);
                    permeate[[row, s]] = (1.0 - rej) * samples.feed_mol_m3[[row, s]];
                }
            }
        }
        failed_rows.sort_unstable();
        Ok(Prediction {
            permeate,
            failed_rows,
        })
    }

    /// The calibrated model's transmissions `c_p / c_f` of every present ion `[N, S]` (1
    /// for absent ions), and the rows it could not solve (transmission 1: the feed), for
    /// a physics-anchored model. One solve per row, warm-started along each feed's fluxes.
    pub fn transmissions(&self, samples: &Samples) -> Result<(Array2<f64>, Vec<usize>)> {
        let p = self.predict(samples)?;
        let mut t = Array2::ones(samples.feed_mol_m3.dim());
        for ((ix, out), &present) in t.indexed_iter_mut().zip(&samples.mask) {
            let cf = samples.feed_mol_m3[ix];
            if present && cf > 0.0 {
                *out = p.permeate[ix] / cf;
            }
        }
        Ok((t, p.failed_rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use ionode_physics::IonDb;
    use ndarray::Array1;

    const SLOTS: [&str; 4] = ["Na+", "Mg^2+", "Cl-", "SO4^2-"];
    const LMH: f64 = 1.0 / 3.6e6;

    fn truth() -> Membrane {
        Membrane {
            pore_radius_m: 0.45e-9,
            effective_thickness_m: 1.0e-6,
            charge_density_mol_m3: -40.0,
            pore_dielectric: 35.0,
        }
    }

    /// Samples generated by the physics at `membrane`: each feed (slot concentrations) at
    /// each flux.
    fn synthetic(membrane: Membrane, feeds: &[[f64; 4]], fluxes_lmh: &[f64]) -> Samples {
        synthetic_with(&ChargedMembrane::constant(membrane), feeds, fluxes_lmh)
    }

    /// Samples measured in the surrogate laboratory set up as the calibration's own model
    /// (DSPM-DE with `model`'s charge; one pore radius, no film, ideal activities, one pore
    /// element, no noise): each feed at each flux.
    fn synthetic_with(model: &ChargedMembrane, feeds: &[[f64; 4]], fluxes_lmh: &[f64]) -> Samples {
        use ionode_physics::lab::{LabFilm, LabModel};
        let lab = LabModel {
            membrane: model.membrane,
            temperature_k: 298.15,
            charge: model.charge,
            pores: None,
            film: LabFilm::None,
            activity: ActivityModel::Ideal,
            elements: 1,
            noise_rel: 0.0,
        };
        let db = IonDb::builtin();
        let ions: Vec<Ion> = SLOTS.iter().map(|s| db.get(s).unwrap().clone()).collect();
        let n = feeds.len() * fluxes_lmh.len();
        let mut feed = Array2::zeros((n, 4));
        let mut permeate = Array2::zeros((n, 4));
        let mut flux = Array1::zeros(n);
        let mut origin = Vec::new();
        let mut row = 0;
        for (i, f) in feeds.iter().enumerate() {
            let present: Vec<usize> = (0..4).filter(|&s| f[s] > 0.0).collect();
            let feed_ions: Vec<Ion> = present.iter().map(|&s| ions[s].clone()).collect();
            let c: Vec<f64> = present.iter().map(|&s| f[s]).collect();
            for &j in fluxes_lmh {
                let point = lab
                    .solve(&feed_ions, &c, Drive::Flux { jv_m_s: j * LMH })
                    .unwrap();
                for (k, &s) in present.iter().enumerate() {
                    feed[[row, s]] = f[s];
                    permeate[[row, s]] = point.c_permeate[k];
                }
                flux[row] = j * LMH;
                origin.push(i);
                row += 1;
            }
        }
        Samples {
            species: SLOTS.iter().map(|s| s.to_string()).collect(),
            charges: ions.iter().map(|i| i.charge).collect(),
            mask: feed.mapv(|c: f64| c > 0.0),
            observed: feed.mapv(|c: f64| c > 0.0),
            feed_mol_m3: feed,
            flux_m_s: flux,
            permeate_mol_m3: permeate,
            permeate_sd_mol_m3: None,
            temperature_k: vec![298.15; n],
            family: vec![None; n],
            synthetic: vec![true; n],
            origin,
            prior_transmission: None,
            film_factor: None,
        }
    }

    fn slot_ions() -> Vec<Ion> {
        let db = IonDb::builtin();
        SLOTS.iter().map(|s| db.get(s).unwrap().clone()).collect()
    }

    fn quick() -> CalibrationConfig {
        CalibrationConfig {
            starts: 4,
            max_iters: 120,
            ..CalibrationConfig::default()
        }
    }

    #[test]
    fn fit_recovers_rejections_of_a_known_membrane() {
        let train_feeds = [
            [10.0, 0.0, 10.0, 0.0], // NaCl
            [50.0, 0.0, 50.0, 0.0], // NaCl
            [20.0, 0.0, 0.0, 10.0], // Na2SO4
            [0.0, 10.0, 20.0, 0.0], // MgCl2
            [20.0, 5.0, 20.0, 5.0], // NaCl + MgSO4
        ];
        let fluxes = [3.0, 10.0, 25.0];
        let train = synthetic(truth(), &train_feeds, &fluxes);
        let fit = dspmde_fit(&train, &slot_ions(), &quick()).unwrap();
        let pred = fit.predict(&train).unwrap();
        let m = Metrics::of(&train, pred.permeate.view()).unwrap();
        // Held-out feeds: the fitted membrane generalises within the same physics.
        let test = synthetic(
            truth(),
            &[
                [30.0, 0.0, 30.0, 0.0],
                [0.0, 20.0, 0.0, 20.0],
                [10.0, 10.0, 30.0, 0.0],
            ],
            &[5.0, 20.0],
        );
        let pt = fit.predict(&test).unwrap();
        let mt = Metrics::of(&test, pt.permeate.view()).unwrap();
        eprintln!(
            "dspmde_fit: truth {:?}\n fitted {:?}\n train MAE {:.2e} RMSE {:.2e}, test MAE {:.2e}; cost {:.2e}, {} evaluations, {} failed solves; starts {:?}",
            truth(),
            fit.membrane,
            m.mae.unwrap(),
            m.rmse.unwrap(),
            mt.mae.unwrap(),
            fit.cost,
            fit.evaluations,
            fit.failed_solves_during_fit,
            fit.starts.iter().map(|s| (s.cost, s.iterations)).collect::<Vec<_>>()
        );
        assert!(m.mae.unwrap() < 0.01, "train MAE {}", m.mae.unwrap());
        assert!(mt.mae.unwrap() < 0.02, "test MAE {}", mt.mae.unwrap());
        assert_eq!(fit.failed_points, 0);
        assert!(pred.failed_rows.is_empty());
        assert_eq!(fit.starts.len(), 4);
        // The fit is deterministic.
        let again = dspmde_fit(&train, &slot_ions(), &quick()).unwrap();
        assert_eq!(again.membrane, fit.membrane);
    }

    #[test]
    fn unsolvable_points_are_penalised_and_reported() {
        let mut s = synthetic(truth(), &[[10.0, 0.0, 10.0, 0.0]], &[5.0, 10.0]);
        // 5e-2 m/s is beyond what the point solver accepts: the point always fails.
        s.flux_m_s[1] = 5e-2;
        let cfg = CalibrationConfig {
            starts: 1,
            max_iters: 5,
            ..CalibrationConfig::default()
        };
        let fit = dspmde_fit(&s, &slot_ions(), &cfg).unwrap();
        assert_eq!(fit.failed_points, 1);
        assert!(fit.failed_solves_during_fit >= fit.evaluations);
        assert!(fit.cost.is_finite() && fit.cost >= 0.5, "{}", fit.cost);
        let p = fit.predict(&s).unwrap();
        assert_eq!(p.failed_rows, [1]);
        assert_eq!(p.permeate.row(1), s.feed_mol_m3.row(1));
    }

    #[test]
    fn starts_are_in_the_box_and_the_first_is_the_preset() {
        let config = CalibrationConfig::default();
        let space = Space::new(&config.bounds, &config.charge).unwrap();
        let starts = start_models(&config, &space);
        assert_eq!(starts.len(), 4);
        let nf270 = Membrane::preset("nf270").unwrap();
        let first = starts[0].membrane;
        assert!((first.charge_density_mol_m3 - nf270.charge_density_mol_m3).abs() < 1e-9);
        assert!((first.pore_radius_m / nf270.pore_radius_m - 1.0).abs() < 1e-12);
        let b = config.bounds;
        for s in &starts {
            let m = s.membrane;
            assert!(s.charge.is_constant());
            assert!((b.pore_radius_m.0..b.pore_radius_m.1).contains(&m.pore_radius_m));
            assert!((b.charge_density_mol_m3.0..b.charge_density_mol_m3.1)
                .contains(&m.charge_density_mol_m3));
            assert!((b.pore_dielectric.0..b.pore_dielectric.1).contains(&m.pore_dielectric));
        }
        assert_eq!(starts, start_models(&config, &space));
    }

    /// End to end on the bundled surrogate-laboratory mixtures (synthetic): load, leave
    /// one family out, calibrate on the rest, score the held-out family. The surrogate is
    /// richer than DSPM-DE (charge growing with the feed, pore-size distribution,
    /// polarisation, Davies activities), so the calibrated baseline is not exact.
    #[test]
    fn calibrated_baseline_on_the_surrogate_mixtures() {
        use crate::measured::{parse_csv, LoadOptions};
        use crate::split::SplitSpec;
        let text = include_str!("../../../../datasets/exp/nf270_mixtures.csv");
        let db = IonDb::builtin();
        let data = parse_csv(text, "nf270_mixtures.csv", &LoadOptions::default(), &db).unwrap();
        let slots = ["Na+", "K+", "Li+", "Mg^2+", "Ca^2+", "Cl-", "SO4^2-"];
        let samples = Samples::from_measured(&data, &slots).unwrap();
        let split = SplitSpec::ByFamily {
            test_family: "NaCl+MgSO4".into(),
            validation_fraction: 0.0,
            validate_on: crate::split::ValidateOn::Rows,
        }
        .split(&samples, 1)
        .unwrap();
        let (train, test) = (samples.subset(&split.train), samples.subset(&split.test));
        let ions = samples.slot_ions(&db).unwrap();
        let fit = dspmde_fit(&train, &ions, &quick()).unwrap();
        let m_train = Metrics::of(&train, fit.predict(&train).unwrap().permeate.view()).unwrap();
        let p = fit.predict(&test).unwrap();
        let m_test = Metrics::of(&test, p.permeate.view()).unwrap();
        eprintln!(
            "surrogate mixtures, test family NaCl+MgSO4: fitted {:?}; train MAE {:.4} (n {}), test MAE {:.4} RMSE {:.4} R2 {:?} (n {}); {} evaluations",
            fit.membrane,
            m_train.mae.unwrap(),
            m_train.n_values,
            m_test.mae.unwrap(),
            m_test.rmse.unwrap(),
            m_test.r2,
            m_test.n_values,
            fit.evaluations
        );
        assert_eq!(split.test.len(), 12);
        assert!(p.failed_rows.is_empty());
        assert!(m_train.mae.unwrap() < 0.1 && m_test.mae.unwrap() < 0.15);
    }

    /// Feeds that tell a feed-dependent charge apart: three levels of NaCl, MgCl2, Na2SO4
    /// and MgSO4.
    const CHARGE_FEEDS: [[f64; 4]; 9] = [
        [5.0, 0.0, 5.0, 0.0],
        [20.0, 0.0, 20.0, 0.0],
        [80.0, 0.0, 80.0, 0.0],
        [0.0, 5.0, 10.0, 0.0],
        [0.0, 20.0, 40.0, 0.0],
        [0.0, 80.0, 160.0, 0.0],
        [10.0, 0.0, 0.0, 5.0],
        [40.0, 0.0, 0.0, 20.0],
        [0.0, 10.0, 0.0, 10.0],
    ];

    /// Surrogate-laboratory data made with a known charge model, fitted with that model and
    /// the other parameters boxed to 1 % around the truth: the charge parameters come back.
    fn recovered(charge: ChargeModel, fit: ChargeFit) -> (ChargeModel, f64) {
        let m = ChargedMembrane {
            membrane: truth(),
            charge,
        };
        let data = synthetic_with(&m, &CHARGE_FEEDS, &[3.0, 10.0, 25.0]);
        let near = |x: f64| {
            let (a, b) = (0.99 * x, 1.01 * x);
            (a.min(b), a.max(b))
        };
        let t = m.membrane;
        let config = CalibrationConfig {
            starts: 4,
            max_iters: 600,
            bounds: Bounds {
                pore_radius_m: near(t.pore_radius_m),
                effective_thickness_m: near(t.effective_thickness_m),
                charge_density_mol_m3: LITERATURE_BOX.charge_density_mol_m3,
                pore_dielectric: near(t.pore_dielectric),
            },
            charge: fit,
            ..CalibrationConfig::default()
        };
        let f = dspmde_fit(&data, &slot_ions(), &config).unwrap();
        let mae = Metrics::of(&data, f.predict(&data).unwrap().permeate.view())
            .unwrap()
            .mae
            .unwrap();
        eprintln!(
            "truth {charge:?}\n fitted {:?}, train MAE {mae:.2e}, {} evaluations",
            f.charge, f.evaluations
        );
        (f.charge, mae)
    }

    #[test]
    fn a_freundlich_charge_is_recovered_from_rejections_it_made() {
        let truth = ChargeModel::Freundlich {
            a_mol_m3: 10.0,
            b: 0.45,
        };
        let fit = ChargeFit::Freundlich {
            a_mol_m3: (0.5, 300.0),
            b: (0.0, 1.2),
        };
        let (got, mae) = recovered(truth, fit);
        let ChargeModel::Freundlich { a_mol_m3, b } = got else {
            panic!("{got:?}")
        };
        assert!((a_mol_m3 / 10.0 - 1.0).abs() < 0.05, "a = {a_mol_m3}");
        assert!((b - 0.45).abs() < 0.02, "b = {b}");
        assert!(mae < 2e-3, "train MAE {mae}");
    }

    #[test]
    fn a_langmuir_charge_fits_rejections_it_made() {
        let truth = ChargeModel::Langmuir {
            sites_mol_m3: 60.0,
            k_mono_m3_mol: 0.01,
            k_multi_m3_mol: 0.2,
        };
        let fit = ChargeFit::Langmuir {
            sites_mol_m3: (1.0, 1000.0),
            k_mono_m3_mol: (1e-5, 10.0),
            k_multi_m3_mol: (1e-5, 100.0),
        };
        let (got, mae) = recovered(truth, fit);
        assert_eq!(got.name(), "langmuir");
        assert!(mae < 5e-3, "train MAE {mae}");
    }

    #[test]
    fn a_constant_charge_fit_is_the_fit_of_four_parameters() {
        // Written with the charge model absent, so configs and artefacts of constant fits
        // keep their bytes (and run ids).
        let config = CalibrationConfig::default();
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("charge\":"), "{json}");
        let s = synthetic(truth(), &[[10.0, 0.0, 10.0, 0.0]], &[5.0, 10.0]);
        let fit = dspmde_fit(
            &s,
            &slot_ions(),
            &CalibrationConfig {
                starts: 2,
                max_iters: 20,
                ..config
            },
        )
        .unwrap();
        let json = serde_json::to_string(&fit).unwrap();
        // (Ions have a "charge" of their own: the model would be an object.)
        assert!(
            !json.contains("\"charge\":{") && !json.contains("initial_charge"),
            "{json}"
        );
        assert!(fit.charge.is_constant());
    }

    #[test]
    fn wrong_ions_are_refused() {
        let s = synthetic(truth(), &[[10.0, 0.0, 10.0, 0.0]], &[5.0]);
        let mut ions = slot_ions();
        ions.swap(0, 2);
        assert!(dspmde_fit(&s, &ions, &quick()).is_err());
    }
}
