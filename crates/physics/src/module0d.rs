//! WaterTAP's 0D nanofiltration module (`docs/DSPMDE.md` section 2.9): the point
//! model evaluated at the inlet (x = 0) and the outlet (x = 1), fluxes averaged, and the
//! mass balance closed between them. It exists to reproduce WaterTAP's unit-test numbers; a
//! real module is better integrated along the channel.

use crate::activity::ActivityModel;
use crate::constants::{water_density, SOLUTION_DENSITY};
use crate::error::{require_positive, PhysicsError, Result, Stage};
use crate::ions::Ion;
use crate::membrane::Membrane;
use crate::point::{Drive, PointSolution, PointSolver, PointSpec};
use crate::polarisation::{FilmModel, Polarisation, SpiralWound};

/// How the feed-channel mass-transfer coefficients are obtained at each end.
#[derive(Debug, Clone, PartialEq)]
pub enum MassTransfer {
    /// No concentration polarisation.
    None,
    /// The same given coefficient per ion at both ends, m/s.
    Fixed(Vec<f64>),
    /// WaterTAP's spiral-wound correlation with the cross-flow velocity of each end.
    SpiralWound {
        mixing_efficiency: f64,
        mixing_length_m: f64,
    },
}

/// Which end's flows are given.
#[derive(Debug, Clone, PartialEq)]
pub enum ModuleSpecified {
    /// The inlet flows (the forward problem), mol/s.
    Inlet {
        water_mol_s: f64,
        ions_mol_s: Vec<f64>,
    },
    /// The retentate flows; the inlet is solved for (WaterTAP's "inverse" tests), mol/s.
    Retentate {
        water_mol_s: f64,
        ions_mol_s: Vec<f64>,
    },
}

/// A 0D module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSpec {
    pub ions: Vec<Ion>,
    pub membrane: Membrane,
    pub temperature_k: f64,
    pub activity: ActivityModel,
    pub film: FilmModel,
    pub mass_transfer: MassTransfer,
    pub area_m2: f64,
    pub channel_height_m: f64,
    pub spacer_porosity: f64,
    /// Cross-flow velocity at the inlet; the outlet's follows from its volumetric flow.
    pub velocity_inlet_m_s: f64,
    pub water_molar_mass_kg_mol: f64,
    /// P_feed - P_perm, the same at both ends (no pressure drop), Pa.
    pub dp_pa: f64,
    pub specified: ModuleSpecified,
    pub elements: usize,
}

/// The solved module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSolution {
    pub ions: Vec<String>,
    pub inlet_water_mol_s: f64,
    pub inlet_ions_mol_s: Vec<f64>,
    pub retentate_water_mol_s: f64,
    pub retentate_ions_mol_s: Vec<f64>,
    pub permeate_water_mol_s: f64,
    pub permeate_ions_mol_s: Vec<f64>,
    pub water_flux_avg_mol_m2_s: f64,
    pub solute_flux_avg_mol_m2_s: Vec<f64>,
    pub jv_avg_m_s: f64,
    /// 1 - c_mixed_permeate / c_interface(x = 0).
    pub rejection_intrinsic: Vec<f64>,
    /// 1 - c_mixed_permeate / c_feed.
    pub rejection_observed: Vec<f64>,
    pub c_mixed_permeate: Vec<f64>,
    pub recovery_vol: f64,
    pub area_m2: f64,
    pub inlet: PointSolution,
    pub outlet: PointSolution,
    /// Mass-balance iterations.
    pub iterations: usize,
}

/// Concentrations (mol/m3 of solution, constant density 1000) and volumetric flow (m3/s)
/// of a stream given by molar flows.
fn stream(ions: &[Ion], ions_mol_s: &[f64], water_mol_s: f64, mw_water: f64) -> (Vec<f64>, f64) {
    let mass = water_mol_s * mw_water
        + ions
            .iter()
            .zip(ions_mol_s)
            .map(|(i, n)| i.molar_mass_kg_mol * n)
            .sum::<f64>();
    let c = ions_mol_s
        .iter()
        .map(|n| SOLUTION_DENSITY * n / mass)
        .collect();
    (c, mass / SOLUTION_DENSITY)
}

impl ModuleSpec {
    fn validate(&self) -> Result<()> {
        require_positive("module area_m2", self.area_m2)?;
        require_positive("module channel_height_m", self.channel_height_m)?;
        require_positive("module velocity_inlet_m_s", self.velocity_inlet_m_s)?;
        require_positive("mw_H2O_kg_mol", self.water_molar_mass_kg_mol)?;
        require_positive("P_feed_Pa - P_perm_Pa", self.dp_pa)?;
        if !(self.spacer_porosity > 0.0 && self.spacer_porosity <= 1.0) {
            return Err(PhysicsError::invalid(
                "module spacer_porosity",
                self.spacer_porosity,
                "a number in (0, 1]",
            ));
        }
        let (ModuleSpecified::Inlet {
            water_mol_s,
            ions_mol_s,
        }
        | ModuleSpecified::Retentate {
            water_mol_s,
            ions_mol_s,
        }) = &self.specified;
        require_positive("H2O flow", *water_mol_s)?;
        if ions_mol_s.len() != self.ions.len() {
            return Err(PhysicsError::invalid(
                "ion flows",
                format!("{} values", ions_mol_s.len()),
                format!("one per ion ({})", self.ions.len()),
            ));
        }
        for (ion, n) in self.ions.iter().zip(ions_mol_s) {
            require_positive(&format!("flow of {}", ion.name), *n)?;
        }
        Ok(())
    }

    /// Solves one end at bulk concentrations `c` and cross-flow velocity `u`.
    fn end(&self, c: Vec<f64>, u: f64) -> Result<PointSolution> {
        let polarisation = match &self.mass_transfer {
            MassTransfer::None => Polarisation::None,
            MassTransfer::Fixed(k) => Polarisation::Film {
                model: self.film,
                mass_transfer_m_s: k.clone(),
            },
            MassTransfer::SpiralWound {
                mixing_efficiency,
                mixing_length_m,
            } => {
                let channel = SpiralWound {
                    channel_height_m: self.channel_height_m,
                    velocity_m_s: u,
                    mixing_efficiency: *mixing_efficiency,
                    mixing_length_m: *mixing_length_m,
                };
                channel.validate()?;
                Polarisation::Film {
                    model: self.film,
                    mass_transfer_m_s: channel.mass_transfer(&self.ions),
                }
            }
        };
        let spec = PointSpec {
            ions: self.ions.clone(),
            c_bulk: c,
            membrane: self.membrane,
            temperature_k: self.temperature_k,
            activity: self.activity,
            polarisation,
            elements: self.elements,
            water_molar_mass_kg_mol: self.water_molar_mass_kg_mol,
        };
        PointSolver::new(&spec)?.solve(Drive::Pressure { dp_pa: self.dp_pa })
    }

    /// Solves the module: fixed-point iteration on the unspecified end's flows, which
    /// contracts with the recovery (a few percent in WaterTAP's tests).
    pub fn solve(&self) -> Result<ModuleSolution> {
        self.validate()?;
        let mw_w = self.water_molar_mass_kg_mol;
        let water_per_jv = water_density(self.temperature_k) / mw_w;
        let (given_w, given_n, inverse) = match &self.specified {
            ModuleSpecified::Inlet {
                water_mol_s,
                ions_mol_s,
            } => (*water_mol_s, ions_mol_s.clone(), false),
            ModuleSpecified::Retentate {
                water_mol_s,
                ions_mol_s,
            } => (*water_mol_s, ions_mol_s.clone(), true),
        };
        // (inlet, outlet) flows; the unknown end starts equal to the given one.
        let (mut in_w, mut in_n) = (given_w, given_n.clone());
        let (mut out_w, mut out_n) = (given_w, given_n.clone());
        let mut inlet: Option<PointSolution> = None;
        for iteration in 1..=200 {
            let (c_in, q_in) = stream(&self.ions, &in_n, in_w, mw_w);
            let (c_out, q_out) = stream(&self.ions, &out_n, out_w, mw_w);
            if inverse || inlet.is_none() {
                inlet = Some(self.end(c_in, self.velocity_inlet_m_s)?);
            }
            let x0 = inlet.as_ref().expect("inlet solved above");
            let x1 = self.end(c_out, self.velocity_inlet_m_s * q_out / q_in)?;
            let jv_avg = 0.5 * (x0.jv_m_s + x1.jv_m_s);
            let flux_avg: Vec<f64> = x0
                .solute_flux_mol_m2_s
                .iter()
                .zip(&x1.solute_flux_mol_m2_s)
                .map(|(a, b)| 0.5 * (a + b))
                .collect();
            let perm_w = jv_avg * water_per_jv * self.area_m2;
            let perm_n: Vec<f64> = flux_avg.iter().map(|j| j * self.area_m2).collect();
            let (new_w, new_n): (f64, Vec<f64>) = if inverse {
                (
                    out_w + perm_w,
                    out_n.iter().zip(&perm_n).map(|(o, p)| o + p).collect(),
                )
            } else {
                (
                    in_w - perm_w,
                    in_n.iter().zip(&perm_n).map(|(i, p)| i - p).collect(),
                )
            };
            if new_w <= 0.0 || new_n.iter().any(|n| *n <= 0.0) {
                return Err(PhysicsError::NoSolution {
                    stage: Stage::Module,
                    reason: "the permeate takes more than the feed (recovery above 100 %); reduce the area or the pressure".into(),
                });
            }
            let (old_w, old_n) = if inverse {
                (in_w, &in_n)
            } else {
                (out_w, &out_n)
            };
            let change = old_n
                .iter()
                .zip(&new_n)
                .map(|(a, b)| ((a - b) / b).abs())
                .fold(((old_w - new_w) / new_w).abs(), f64::max);
            if inverse {
                in_w = new_w;
                in_n = new_n;
            } else {
                out_w = new_w;
                out_n = new_n;
            }
            if change < 1e-13 {
                let (c_in, q_in) = stream(&self.ions, &in_n, in_w, mw_w);
                let (c_mixed, q_perm) = stream(&self.ions, &perm_n, perm_w, mw_w);
                let x0 = inlet.take().expect("inlet solved");
                return Ok(ModuleSolution {
                    ions: self.ions.iter().map(|i| i.name.clone()).collect(),
                    inlet_water_mol_s: in_w,
                    retentate_water_mol_s: out_w,
                    permeate_water_mol_s: perm_w,
                    retentate_ions_mol_s: out_n,
                    permeate_ions_mol_s: perm_n,
                    water_flux_avg_mol_m2_s: jv_avg * water_per_jv,
                    jv_avg_m_s: jv_avg,
                    rejection_intrinsic: c_mixed
                        .iter()
                        .zip(&x0.c_interface)
                        .map(|(p, m)| 1.0 - p / m)
                        .collect(),
                    rejection_observed: c_mixed
                        .iter()
                        .zip(&c_in)
                        .map(|(p, b)| 1.0 - p / b)
                        .collect(),
                    inlet_ions_mol_s: in_n,
                    solute_flux_avg_mol_m2_s: flux_avg,
                    c_mixed_permeate: c_mixed,
                    recovery_vol: q_perm / q_in,
                    area_m2: self.area_m2,
                    inlet: x0,
                    outlet: x1,
                    iterations: iteration,
                });
            }
        }
        Err(PhysicsError::NoConvergence {
            stage: Stage::Module,
            reason: "the inlet/outlet mass balance did not settle in 200 iterations".into(),
        })
    }
}
