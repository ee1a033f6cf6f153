//! Pre-training datasets: random electroneutral feeds over a flux grid for one membrane,
//! solved in parallel with rayon. Sample `i` draws from its own random stream
//! (`ionode_random::stream_seed(seed, i)`) and results are collected in sample order, so a
//! dataset is bit-identical for a seed whatever the thread count. Points that fail are reported, not
//! dropped or filled with NaN.

use crate::activity::ActivityModel;
use crate::charge::ChargeModel;
use crate::error::{PhysicsError, Result};
use crate::ions::Ion;
use crate::membrane::Membrane;
use crate::point::{Drive, PointSolver, PointSpec};
use crate::polarisation::{FilmModel, Polarisation, SpiralWound};
use ionode_random::{stream_seed, Rng};
use ndarray::{Array2, Array3};
use rayon::prelude::*;

/// How the flux grid is spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    Linear,
    Log,
}

/// The water fluxes every feed is solved at, m/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FluxGrid {
    pub min_m_s: f64,
    pub max_m_s: f64,
    pub count: usize,
    pub spacing: Spacing,
}

impl Default for FluxGrid {
    /// 16 fluxes from 2e-6 to 3e-5 m/s (7 to 108 LMH), the range of `BENCH.md`.
    fn default() -> Self {
        FluxGrid {
            min_m_s: 2e-6,
            max_m_s: 3e-5,
            count: 16,
            spacing: Spacing::Linear,
        }
    }
}

impl FluxGrid {
    /// The fluxes, increasing.
    pub fn values(&self) -> Vec<f64> {
        if self.count == 1 {
            return vec![self.min_m_s];
        }
        (0..self.count)
            .map(|k| {
                let t = k as f64 / (self.count - 1) as f64;
                match self.spacing {
                    Spacing::Linear => self.min_m_s + t * (self.max_m_s - self.min_m_s),
                    Spacing::Log => {
                        (self.min_m_s.ln() + t * (self.max_m_s / self.min_m_s).ln()).exp()
                    }
                }
            })
            .collect()
    }
}

/// Concentration polarisation of simulated points.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum SimPolarisation {
    #[default]
    None,
    /// A film with the spiral-wound coefficients of each ion.
    Film {
        model: FilmModel,
        channel: SpiralWound,
    },
}

/// Most random feeds of one dataset.
pub const MAX_SAMPLES: usize = 10_000_000;
/// Most fluxes of the grid.
pub const MAX_FLUXES: usize = 10_000;
/// Most points (feeds x fluxes): the dataset is built in memory, about 120 bytes per point
/// with 7 species, so this is ~2.4 GB.
pub const MAX_POINTS: usize = 20_000_000;

/// A dataset's generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationConfig {
    /// The ion slots feeds are drawn from (the dataset's species axis).
    pub species: Vec<Ion>,
    pub membrane: Membrane,
    /// How the membrane's charge depends on each feed (constant: the membrane's own).
    pub charge: ChargeModel,
    /// Temperature, K; with `temperature_max_k` the lower end of a range.
    pub temperature_k: f64,
    /// Draw each feed's temperature uniformly from `temperature_k..=temperature_max_k`
    /// (after its composition, so the feeds are those of the same seed without a range).
    pub temperature_max_k: Option<f64>,
    pub activity: ActivityModel,
    pub polarisation: SimPolarisation,
    pub elements: usize,
    pub samples: usize,
    pub seed: u64,
    pub min_ions: usize,
    pub max_ions: usize,
    pub c_min_mol_m3: f64,
    pub c_max_mol_m3: f64,
    pub fluxes: FluxGrid,
}

impl SimulationConfig {
    /// The defaults of the issue: 2 to 7 ions, log-uniform 1 to 200 mol/m3, the default flux
    /// grid, ideal activity, no polarisation, one pore element, 25 C.
    pub fn new(species: Vec<Ion>, membrane: Membrane, samples: usize, seed: u64) -> Self {
        SimulationConfig {
            species,
            membrane,
            charge: ChargeModel::Constant,
            temperature_k: 298.15,
            temperature_max_k: None,
            activity: ActivityModel::Ideal,
            polarisation: SimPolarisation::None,
            elements: 1,
            samples,
            seed,
            min_ions: 2,
            max_ions: 7,
            c_min_mol_m3: 1.0,
            c_max_mol_m3: 200.0,
            fluxes: FluxGrid::default(),
        }
    }

    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let s = self.species.len();
        let cations = self.species.iter().filter(|i| i.charge > 0).count();
        if cations == 0 || cations == s {
            return Err(PhysicsError::invalid(
                "species",
                self.species
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                "at least one cation and one anion",
            ));
        }
        if !(1..=MAX_SAMPLES).contains(&self.samples) {
            return Err(PhysicsError::invalid(
                "samples",
                self.samples,
                format!("a count in 1..={MAX_SAMPLES}"),
            ));
        }
        if !(1..=MAX_FLUXES).contains(&self.fluxes.count) {
            return Err(PhysicsError::invalid(
                "flux count",
                self.fluxes.count,
                format!("a count in 1..={MAX_FLUXES}"),
            ));
        }
        if self.samples.saturating_mul(self.fluxes.count) > MAX_POINTS {
            return Err(PhysicsError::invalid(
                "samples x fluxes",
                format!("{} x {}", self.samples, self.fluxes.count),
                format!("at most {MAX_POINTS} points (the arrays are held in memory)"),
            ));
        }
        if !(self.min_ions >= 2 && self.min_ions <= self.max_ions && self.max_ions <= s) {
            return Err(PhysicsError::invalid(
                "min_ions..max_ions",
                format!("{}..{}", self.min_ions, self.max_ions),
                format!("2 <= min <= max <= {s} (the number of species)"),
            ));
        }
        if !(self.c_min_mol_m3 > 0.0
            && self.c_min_mol_m3 < self.c_max_mol_m3
            && self.c_max_mol_m3.is_finite())
        {
            return Err(PhysicsError::invalid(
                "c_min..c_max",
                format!("{}..{}", self.c_min_mol_m3, self.c_max_mol_m3),
                "0 < c_min < c_max, mol/m3",
            ));
        }
        let g = &self.fluxes;
        if !(g.min_m_s > 0.0 && g.min_m_s <= g.max_m_s && g.max_m_s <= 1e-2 && g.count >= 1) {
            return Err(PhysicsError::invalid(
                "flux grid",
                format!("{:e}..{:e} m/s x {}", g.min_m_s, g.max_m_s, g.count),
                "0 < min <= max <= 1e-2 m/s and at least one flux",
            ));
        }
        if let SimPolarisation::Film { channel, .. } = &self.polarisation {
            channel.validate()?;
        }
        if !(self.temperature_k.is_finite() && (273.15..=373.15).contains(&self.temperature_k)) {
            return Err(PhysicsError::invalid(
                "temperature",
                self.temperature_k,
                "273.15..=373.15 K",
            ));
        }
        if let Some(hi) = self.temperature_max_k {
            if !(hi.is_finite() && hi > self.temperature_k && hi <= 373.15) {
                return Err(PhysicsError::invalid(
                    "temperature range",
                    format!("{}..{hi} K", self.temperature_k),
                    "a range of increasing temperatures within 273.15..=373.15 K",
                ));
            }
        }
        self.membrane.validate()?;
        self.charge.validate()?;
        for ion in &self.species {
            ion.validate()?;
            // Every species must fit the pore.
            crate::partition::IonConstants::new(ion, &self.membrane, self.temperature_k)?;
            if let Some(t) = self.temperature_max_k {
                crate::partition::IonConstants::new(ion, &self.membrane, t)?;
            }
        }
        if self.elements == 0 || self.elements > 1000 {
            return Err(PhysicsError::invalid(
                "elements",
                self.elements,
                "1 to 1000",
            ));
        }
        Ok(())
    }
}

/// A point that did not solve.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub sample: usize,
    pub flux_index: usize,
    pub jv_m_s: f64,
    pub message: String,
}

/// A simulated dataset. Absent ions have zero feed and permeate and mask 0; failed points
/// have status 1, zero permeate and an entry in `failures`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub species: Vec<String>,
    /// `[samples]` the temperature each feed's points were solved at, K.
    pub temperature_k: Vec<f64>,
    pub charges: Vec<i32>,
    pub fluxes_m_s: Vec<f64>,
    /// `[samples, species]`, mol/m3.
    pub feed: Array2<f64>,
    /// `[samples, species]`, 1 where the ion is present.
    pub mask: Array2<u8>,
    /// `[samples, fluxes, species]`, mol/m3.
    pub permeate: Array3<f64>,
    /// `[samples, fluxes, species]`, 1 - c_p / c_feed (0 for absent ions).
    pub rejection: Array3<f64>,
    /// `[samples, fluxes]`, the transmembrane pressure each point implies, Pa.
    pub pressure_pa: Array2<f64>,
    /// `[samples, fluxes]`, 0 solved, 1 failed.
    pub status: Array2<u8>,
    pub failures: Vec<Failure>,
}

/// One random feed of the configured distribution: indices into `config.species` (sorted)
/// and their concentrations, electroneutral. Public so benchmarks and tests draw feeds the
/// way datasets do.
pub fn random_feed(config: &SimulationConfig, rng: &mut Rng) -> (Vec<usize>, Vec<f64>) {
    let s = config.species.len();
    let (lo, hi) = (config.c_min_mol_m3, config.c_max_mol_m3);
    loop {
        let k = rng.int_inclusive(config.min_ions, config.max_ions);
        let mut order: Vec<usize> = (0..s).collect();
        rng.shuffle(&mut order);
        let mut chosen: Vec<usize> = order[..k].to_vec();
        chosen.sort_unstable();
        let z = |i: usize| config.species[i].z();
        if !chosen.iter().any(|&i| z(i) > 0.0) || !chosen.iter().any(|&i| z(i) < 0.0) {
            continue;
        }
        // Log-uniform draws, then the cations scaled down and the anions up by the square
        // root of their charge ratio; redraw if that leaves the range.
        for _ in 0..100 {
            let mut c: Vec<f64> = chosen.iter().map(|_| rng.log_uniform(lo, hi)).collect();
            let pos: f64 = chosen
                .iter()
                .zip(&c)
                .filter(|(&i, _)| z(i) > 0.0)
                .map(|(&i, c)| z(i) * c)
                .sum();
            let neg: f64 = chosen
                .iter()
                .zip(&c)
                .filter(|(&i, _)| z(i) < 0.0)
                .map(|(&i, c)| -z(i) * c)
                .sum();
            let q = (pos / neg).sqrt();
            for (&i, c) in chosen.iter().zip(c.iter_mut()) {
                *c = if z(i) > 0.0 { *c / q } else { *c * q };
            }
            if c.iter().all(|c| (lo..=hi).contains(c)) {
                return (chosen, c);
            }
        }
    }
}

/// Per-sample result before assembly.
struct SampleResult {
    present: Vec<usize>,
    feed: Vec<f64>,
    temperature_k: f64,
    /// Per flux: permeate and pressure, or the failure message.
    points: Vec<std::result::Result<(Vec<f64>, f64), String>>,
}

fn simulate_sample(config: &SimulationConfig, fluxes: &[f64], index: usize) -> SampleResult {
    let mut rng = Rng::new(stream_seed(config.seed, index as u64));
    let (present, feed) = random_feed(config, &mut rng);
    let temperature_k = match config.temperature_max_k {
        Some(hi) => config.temperature_k + (hi - config.temperature_k) * rng.uniform(),
        None => config.temperature_k,
    };
    let ions: Vec<Ion> = present.iter().map(|&i| config.species[i].clone()).collect();
    let polarisation = match config.polarisation {
        SimPolarisation::None => Polarisation::None,
        SimPolarisation::Film { model, channel } => Polarisation::Film {
            model,
            mass_transfer_m_s: channel.mass_transfer(&ions),
        },
    };
    let spec = PointSpec {
        membrane: config.charge.membrane_for(&config.membrane, &ions, &feed),
        ions,
        c_bulk: feed.clone(),
        temperature_k,
        activity: config.activity,
        polarisation,
        elements: config.elements,
        water_molar_mass_kg_mol: crate::constants::WATER_MOLAR_MASS,
    };
    let points = match PointSolver::new(&spec) {
        Ok(mut solver) => fluxes
            .iter()
            .map(|&jv| {
                solver
                    .solve(Drive::Flux { jv_m_s: jv })
                    .map(|s| (s.c_permeate, s.dp_pa))
                    .map_err(|e| e.to_string())
            })
            .collect(),
        Err(e) => fluxes.iter().map(|_| Err(e.to_string())).collect(),
    };
    SampleResult {
        present,
        feed,
        temperature_k,
        points,
    }
}

/// Simulates the dataset; `on_sample` is called once per finished sample (from any thread),
/// for progress reporting.
pub fn simulate(config: &SimulationConfig, on_sample: &(dyn Fn() + Sync)) -> Result<Dataset> {
    config.validate()?;
    let fluxes = config.fluxes.values();
    let results: Vec<SampleResult> = (0..config.samples)
        .into_par_iter()
        .map(|i| {
            let r = simulate_sample(config, &fluxes, i);
            on_sample();
            r
        })
        .collect();
    let (n, f, s) = (config.samples, fluxes.len(), config.species.len());
    let mut data = Dataset {
        species: config.species.iter().map(|i| i.name.clone()).collect(),
        charges: config.species.iter().map(|i| i.charge).collect(),
        temperature_k: Vec::with_capacity(n),
        fluxes_m_s: fluxes.clone(),
        feed: Array2::zeros((n, s)),
        mask: Array2::zeros((n, s)),
        permeate: Array3::zeros((n, f, s)),
        rejection: Array3::zeros((n, f, s)),
        pressure_pa: Array2::zeros((n, f)),
        status: Array2::zeros((n, f)),
        failures: Vec::new(),
    };
    for (sample, r) in results.into_iter().enumerate() {
        data.temperature_k.push(r.temperature_k);
        for (&slot, &c) in r.present.iter().zip(&r.feed) {
            data.feed[[sample, slot]] = c;
            data.mask[[sample, slot]] = 1;
        }
        for (k, point) in r.points.into_iter().enumerate() {
            match point {
                Ok((c_p, dp)) => {
                    for ((&slot, &cp), &cf) in r.present.iter().zip(&c_p).zip(&r.feed) {
                        data.permeate[[sample, k, slot]] = cp;
                        data.rejection[[sample, k, slot]] = 1.0 - cp / cf;
                    }
                    data.pressure_pa[[sample, k]] = dp;
                }
                Err(message) => {
                    data.status[[sample, k]] = 1;
                    data.failures.push(Failure {
                        sample,
                        flux_index: k,
                        jv_m_s: fluxes[k],
                        message,
                    });
                }
            }
        }
    }
    Ok(data)
}
