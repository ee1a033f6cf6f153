//! The case format of `crates/physics/tests/data/dspmde_watertap_cases.json`: typed inputs, their
//! conversion into solver specs, and outputs with the same keys as the reference's
//! `expected` blocks. Only the data model lives here (serde derives); reading and writing
//! files is the `ablate` program's job.

use crate::activity::ActivityModel;
use crate::constants::WATER_MOLAR_MASS;
use crate::error::{PhysicsError, Result};
use crate::ions::{Ion, IonDb};
use crate::membrane::Membrane;
use crate::module0d::{MassTransfer, ModuleSolution, ModuleSpec, ModuleSpecified};
use crate::partition::IonConstants;
use crate::point::{Drive, PointSolution, PointSpec};
use crate::polarisation::{FilmModel, Polarisation, SpiralWound};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-ion values keyed by ion name.
pub type PerIon = BTreeMap<String, f64>;

/// An ion as the case files give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseIon {
    pub z: i32,
    #[serde(rename = "D_inf_m2_s")]
    pub diffusivity_m2_s: f64,
    pub r_stokes_m: f64,
    pub mw_kg_mol: f64,
}

/// A membrane as the case files give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseMembrane {
    #[serde(default)]
    pub label: Option<String>,
    pub r_pore_m: f64,
    pub dx_eff_m: f64,
    #[serde(rename = "X_mol_m3")]
    pub x_mol_m3: f64,
    pub eps_pore: f64,
}

impl From<CaseMembrane> for Membrane {
    fn from(m: CaseMembrane) -> Self {
        Membrane {
            pore_radius_m: m.r_pore_m,
            effective_thickness_m: m.dx_eff_m,
            charge_density_mol_m3: m.x_mol_m3,
            pore_dielectric: m.eps_pore,
        }
    }
}

/// Channel data of a spiral-wound point case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSpiralWound {
    pub channel_height_m: f64,
    pub velocity_m_s: f64,
    #[serde(default = "half")]
    pub spacer_mixing_efficiency: f64,
    #[serde(default = "point_six")]
    pub spacer_mixing_length_m: f64,
}

fn half() -> f64 {
    0.5
}
fn point_six() -> f64 {
    0.6
}
fn room_temperature() -> f64 {
    298.15
}
fn ideal() -> String {
    "ideal".into()
}
fn no_cp() -> String {
    "none".into()
}

/// Inputs of a `point` or `point_given_Jv` case. Fields missing in terse cases (such as the
/// reference's `no_solution_cases`) fall back to the ion database, the membrane presets and
/// WaterTAP's default channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointCaseInputs {
    #[serde(rename = "T_K", default = "room_temperature")]
    pub temperature_k: f64,
    #[serde(default)]
    pub ions: Option<BTreeMap<String, CaseIon>>,
    pub c_bulk_mol_m3: PerIon,
    #[serde(rename = "dP_Pa", default)]
    pub dp_pa: Option<f64>,
    #[serde(rename = "P_feed_Pa", default)]
    pub p_feed_pa: Option<f64>,
    #[serde(rename = "P_perm_Pa", default)]
    pub p_perm_pa: Option<f64>,
    #[serde(rename = "Jv_m_s", default)]
    pub jv_m_s: Option<f64>,
    #[serde(default)]
    pub membrane: Option<CaseMembrane>,
    #[serde(default)]
    pub membrane_label: Option<String>,
    #[serde(default = "ideal")]
    pub activity_model: String,
    #[serde(default = "no_cp")]
    pub cp_mode: String,
    /// `linearised` (WaterTAP, default) or `exponential`.
    #[serde(default)]
    pub film_model: Option<String>,
    #[serde(default)]
    pub k_mass_transfer_m_s: Option<PerIon>,
    #[serde(default)]
    pub spiral_wound: Option<CaseSpiralWound>,
    /// Pore elements (1 = WaterTAP).
    #[serde(default)]
    pub elements: Option<usize>,
    #[serde(rename = "mw_H2O_kg_mol", default)]
    pub mw_water_kg_mol: Option<f64>,
}

/// Resolves case ions (or database ions where the case gives none) for the named species.
fn resolve_ions(
    names: impl Iterator<Item = String>,
    given: Option<&BTreeMap<String, CaseIon>>,
    db: &IonDb,
) -> Result<Vec<Ion>> {
    names
        .map(|name| match given.and_then(|g| g.get(&name)) {
            Some(c) => Ok(Ion {
                name: name.clone(),
                charge: c.z,
                diffusivity_m2_s: c.diffusivity_m2_s,
                stokes_radius_m: c.r_stokes_m,
                molar_mass_kg_mol: c.mw_kg_mol,
                source: "case file".into(),
            }),
            None if given.is_some() => Err(PhysicsError::invalid(
                format!("ions.{name}"),
                "missing",
                "ion data for every ion with a concentration",
            )),
            None => db.get(&name).cloned().map(|mut ion| {
                ion.name = name.clone();
                ion
            }),
        })
        .collect()
}

fn parse_activity(s: &str) -> Result<ActivityModel> {
    ActivityModel::parse(s)
        .ok_or_else(|| PhysicsError::invalid("activity_model", format!("'{s}'"), "ideal or davies"))
}

fn parse_film(s: Option<&str>) -> Result<FilmModel> {
    match s.map(str::to_ascii_lowercase).as_deref() {
        None | Some("linearised") | Some("linearized") => Ok(FilmModel::Linearised),
        Some("exponential") => Ok(FilmModel::Exponential),
        Some(other) => Err(PhysicsError::invalid(
            "film_model",
            format!("'{other}'"),
            "linearised or exponential",
        )),
    }
}

fn per_ion(values: &PerIon, ions: &[Ion], field: &str) -> Result<Vec<f64>> {
    ions.iter()
        .map(|ion| {
            values.get(&ion.name).copied().ok_or_else(|| {
                PhysicsError::invalid(
                    format!("{field}.{}", ion.name),
                    "missing",
                    "a value per ion",
                )
            })
        })
        .collect()
}

impl PointCaseInputs {
    /// Builds the solver spec and drive. Flux-driven if `Jv_m_s` is given (or `given_jv`).
    pub fn to_spec(&self, db: &IonDb, given_jv: bool) -> Result<(PointSpec, Drive)> {
        let ions = resolve_ions(self.c_bulk_mol_m3.keys().cloned(), self.ions.as_ref(), db)?;
        let c_bulk = per_ion(&self.c_bulk_mol_m3, &ions, "c_bulk_mol_m3")?;
        let membrane = match (&self.membrane, &self.membrane_label) {
            (Some(m), _) => Membrane::from(m.clone()),
            (None, Some(label)) => Membrane::preset(label)?,
            (None, None) => {
                return Err(PhysicsError::invalid(
                    "membrane",
                    "missing",
                    "a membrane object or a membrane_label preset",
                ))
            }
        };
        let polarisation = match self.cp_mode.as_str() {
            "none" => Polarisation::None,
            "fixed" | "spiral_wound" | "calculated" => {
                let k = match (&self.k_mass_transfer_m_s, self.cp_mode.as_str()) {
                    (Some(k), _) => per_ion(k, &ions, "k_mass_transfer_m_s")?,
                    (None, "spiral_wound") => {
                        let channel = self
                            .spiral_wound
                            .as_ref()
                            .map(|s| SpiralWound {
                                channel_height_m: s.channel_height_m,
                                velocity_m_s: s.velocity_m_s,
                                mixing_efficiency: s.spacer_mixing_efficiency,
                                mixing_length_m: s.spacer_mixing_length_m,
                            })
                            .unwrap_or_default();
                        channel.validate()?;
                        channel.mass_transfer(&ions)
                    }
                    (None, _) => {
                        return Err(PhysicsError::invalid(
                            "k_mass_transfer_m_s",
                            "missing",
                            format!("per-ion coefficients for cp_mode '{}'", self.cp_mode),
                        ))
                    }
                };
                Polarisation::Film {
                    model: parse_film(self.film_model.as_deref())?,
                    mass_transfer_m_s: k,
                }
            }
            other => {
                return Err(PhysicsError::invalid(
                    "cp_mode",
                    format!("'{other}'"),
                    "none, fixed or spiral_wound",
                ))
            }
        };
        let spec = PointSpec {
            ions,
            c_bulk,
            membrane,
            temperature_k: self.temperature_k,
            activity: parse_activity(&self.activity_model)?,
            polarisation,
            elements: self.elements.unwrap_or(1),
            water_molar_mass_kg_mol: self.mw_water_kg_mol.unwrap_or(WATER_MOLAR_MASS),
        };
        let drive = if given_jv || self.jv_m_s.is_some() {
            Drive::Flux {
                jv_m_s: self.jv_m_s.ok_or_else(|| {
                    PhysicsError::invalid("inputs.Jv_m_s", "missing", "the water flux in m/s")
                })?,
            }
        } else {
            let dp = match (self.dp_pa, self.p_feed_pa, self.p_perm_pa) {
                (Some(dp), _, _) => dp,
                (None, Some(f), Some(p)) => f - p,
                _ => {
                    return Err(PhysicsError::invalid(
                        "inputs.dP_Pa",
                        "missing",
                        "dP_Pa (or P_feed_Pa and P_perm_Pa), or Jv_m_s",
                    ))
                }
            };
            Drive::Pressure { dp_pa: dp }
        };
        Ok((spec, drive))
    }
}

/// The per-ion constants block of a case output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseConstants {
    pub lambda_: f64,
    #[serde(rename = "K_d")]
    pub k_d: f64,
    #[serde(rename = "K_c")]
    pub k_c: f64,
    #[serde(rename = "D_pore")]
    pub d_pore: f64,
    pub phi_steric: f64,
    #[serde(rename = "dG_born_J")]
    pub dg_born_j: f64,
    pub phi_born: f64,
}

impl From<&IonConstants> for CaseConstants {
    fn from(c: &IonConstants) -> Self {
        CaseConstants {
            lambda_: c.lambda,
            k_d: c.k_d,
            k_c: c.k_c,
            d_pore: c.d_pore,
            phi_steric: c.phi_steric,
            dg_born_j: c.born_energy_j,
            phi_born: c.phi_born,
        }
    }
}

/// A point result with the keys of the reference's `expected` blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointCaseOutput {
    #[serde(rename = "Jv_m_s")]
    pub jv_m_s: f64,
    #[serde(rename = "dP_Pa")]
    pub dp_pa: f64,
    pub solute_flux_mol_m2_s: PerIon,
    pub water_flux_mol_m2_s: f64,
    pub c_interface_mol_m3: PerIon,
    pub c_pore_entrance_mol_m3: PerIon,
    pub c_pore_exit_mol_m3: PerIon,
    pub c_permeate_mol_m3: PerIon,
    #[serde(rename = "psi_pore_entrance_V")]
    pub psi_pore_entrance_v: f64,
    #[serde(rename = "psi_pore_exit_V")]
    pub psi_pore_exit_v: f64,
    #[serde(rename = "psi_permeate_V")]
    pub psi_permeate_v: f64,
    #[serde(rename = "pi_interface_Pa")]
    pub pi_interface_pa: f64,
    #[serde(rename = "pi_permeate_Pa")]
    pub pi_permeate_pa: f64,
    pub rejection_vs_interface: PerIon,
    pub rejection_vs_bulk: PerIon,
    pub per_ion_constants: BTreeMap<String, CaseConstants>,
    #[serde(rename = "xi_V_m", skip_serializing_if = "Option::is_none", default)]
    pub xi_v_m: Option<f64>,
    /// Present with non-ideal activities.
    #[serde(flatten, skip_serializing_if = "Option::is_none", default)]
    pub activity: Option<CaseActivity>,
}

/// The activity block of a point-case output (Davies only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseActivity {
    pub gamma_interface: PerIon,
    pub ionic_strength_molal_interface: f64,
    pub gamma_pore_entrance: PerIon,
    pub ionic_strength_molal_pore_entrance: f64,
    pub gamma_pore_exit: PerIon,
    pub ionic_strength_molal_pore_exit: f64,
    pub gamma_permeate: PerIon,
    pub ionic_strength_molal_permeate: f64,
    #[serde(rename = "debye_huckel_A_interface")]
    pub debye_huckel_a_interface: f64,
}

fn keyed(names: &[String], values: &[f64]) -> PerIon {
    names.iter().cloned().zip(values.iter().copied()).collect()
}

impl From<&PointSolution> for PointCaseOutput {
    fn from(s: &PointSolution) -> Self {
        let k = |v: &[f64]| keyed(&s.ions, v);
        PointCaseOutput {
            jv_m_s: s.jv_m_s,
            dp_pa: s.dp_pa,
            solute_flux_mol_m2_s: k(&s.solute_flux_mol_m2_s),
            water_flux_mol_m2_s: s.water_flux_mol_m2_s,
            c_interface_mol_m3: k(&s.c_interface),
            c_pore_entrance_mol_m3: k(&s.c_pore_entrance),
            c_pore_exit_mol_m3: k(&s.c_pore_exit),
            c_permeate_mol_m3: k(&s.c_permeate),
            psi_pore_entrance_v: s.psi_pore_entrance_v,
            psi_pore_exit_v: s.psi_pore_exit_v,
            psi_permeate_v: s.psi_permeate_v,
            pi_interface_pa: s.pi_interface_pa,
            pi_permeate_pa: s.pi_permeate_pa,
            rejection_vs_interface: k(&s.rejection_vs_interface),
            rejection_vs_bulk: k(&s.rejection_vs_bulk),
            per_ion_constants: s
                .ions
                .iter()
                .cloned()
                .zip(s.constants.iter().map(CaseConstants::from))
                .collect(),
            xi_v_m: s.xi_v_m,
            activity: s.activity.as_ref().map(|a| CaseActivity {
                gamma_interface: k(&a.gamma_interface),
                ionic_strength_molal_interface: a.ionic_strength_interface,
                gamma_pore_entrance: k(&a.gamma_pore_entrance),
                ionic_strength_molal_pore_entrance: a.ionic_strength_pore_entrance,
                gamma_pore_exit: k(&a.gamma_pore_exit),
                ionic_strength_molal_pore_exit: a.ionic_strength_pore_exit,
                gamma_permeate: k(&a.gamma_permeate),
                ionic_strength_molal_permeate: a.ionic_strength_permeate,
                debye_huckel_a_interface: a.davies_a,
            }),
        }
    }
}

/// Channel data of a module case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseModule {
    pub area_m2: f64,
    pub channel_height_m: f64,
    pub spacer_porosity: f64,
    pub velocity_inlet_m_s: f64,
    #[serde(default = "half")]
    pub spacer_mixing_efficiency: f64,
    #[serde(default = "point_six")]
    pub spacer_mixing_length_m: f64,
}

/// Inputs of a `watertap_unit_test_module_0D` case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleCaseInputs {
    #[serde(rename = "T_K", default = "room_temperature")]
    pub temperature_k: f64,
    pub ions: BTreeMap<String, CaseIon>,
    #[serde(rename = "mw_H2O_kg_mol")]
    pub mw_water_kg_mol: f64,
    #[serde(default = "ideal")]
    pub activity_model: String,
    #[serde(default = "no_cp")]
    pub cp_mode: String,
    #[serde(rename = "P_feed_Pa")]
    pub p_feed_pa: f64,
    #[serde(rename = "P_perm_Pa")]
    pub p_perm_pa: f64,
    pub membrane: CaseMembrane,
    pub module: CaseModule,
    /// Inlet flows (forward problem), mol/s, including `H2O`.
    pub feed_flow_mol_s: PerIon,
    /// Present for inverse cases: the retentate flows are fixed and the inlet solved.
    #[serde(default)]
    pub inverse_spec: Option<String>,
    /// Retentate flows of an inverse case, mol/s (the reference states them in
    /// `inverse_spec` prose: Na = Cl = 0.429868, H2O = 47.356).
    #[serde(default)]
    pub retentate_flow_mol_s: Option<PerIon>,
    #[serde(rename = "Kf_m_s_all_ions", default)]
    pub kf_all_ions_m_s: Option<f64>,
}

impl ModuleCaseInputs {
    /// Builds the module spec.
    pub fn to_spec(&self) -> Result<ModuleSpec> {
        let names: Vec<String> = self.ions.keys().cloned().collect();
        let ions = resolve_ions(names.into_iter(), Some(&self.ions), &IonDb::builtin())?;
        let mass_transfer = match (self.cp_mode.as_str(), self.kf_all_ions_m_s) {
            ("none", _) => MassTransfer::None,
            ("fixed", Some(k)) => MassTransfer::Fixed(vec![k; ions.len()]),
            ("fixed", None) => {
                return Err(PhysicsError::invalid(
                    "Kf_m_s_all_ions",
                    "missing",
                    "a mass-transfer coefficient for cp_mode 'fixed'",
                ))
            }
            ("spiral_wound", _) => MassTransfer::SpiralWound {
                mixing_efficiency: self.module.spacer_mixing_efficiency,
                mixing_length_m: self.module.spacer_mixing_length_m,
            },
            (other, _) => {
                return Err(PhysicsError::invalid(
                    "cp_mode",
                    format!("'{other}'"),
                    "none, fixed or spiral_wound",
                ))
            }
        };
        let water = |flows: &PerIon, field: &str| {
            flows.get("H2O").copied().ok_or_else(|| {
                PhysicsError::invalid(format!("{field}.H2O"), "missing", "the water flow in mol/s")
            })
        };
        // An inverse case with its retentate flows given is solved as such; otherwise the
        // inlet flows are used (for the reference's inverse cases they are the inlet WaterTAP
        // solved for, so the forward solve is the same problem).
        let specified = match &self.retentate_flow_mol_s {
            Some(r) => ModuleSpecified::Retentate {
                water_mol_s: water(r, "retentate_flow_mol_s")?,
                ions_mol_s: per_ion(r, &ions, "retentate_flow_mol_s")?,
            },
            None => ModuleSpecified::Inlet {
                water_mol_s: water(&self.feed_flow_mol_s, "feed_flow_mol_s")?,
                ions_mol_s: per_ion(&self.feed_flow_mol_s, &ions, "feed_flow_mol_s")?,
            },
        };
        Ok(ModuleSpec {
            ions,
            membrane: self.membrane.clone().into(),
            temperature_k: self.temperature_k,
            activity: parse_activity(&self.activity_model)?,
            film: FilmModel::Linearised,
            mass_transfer,
            area_m2: self.module.area_m2,
            channel_height_m: self.module.channel_height_m,
            spacer_porosity: self.module.spacer_porosity,
            velocity_inlet_m_s: self.module.velocity_inlet_m_s,
            water_molar_mass_kg_mol: self.mw_water_kg_mol,
            dp_pa: self.p_feed_pa - self.p_perm_pa,
            specified,
            elements: 1,
        })
    }
}

/// The module block of a module-case output (keys of the reference's
/// `oracle_full_precision.module`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleCaseOutput {
    pub flux_mol_avg_m2_s: PerIon,
    #[serde(rename = "Jv_avg_m_s")]
    pub jv_avg_m_s: f64,
    pub rejection_intrinsic: PerIon,
    pub rejection_observed: PerIon,
    pub c_mixed_permeate: PerIon,
    pub feed_flow_mol_s: PerIon,
    pub retentate_flow_mol_s: PerIon,
    pub permeate_flow_mol_s: PerIon,
    pub recovery_vol: f64,
    pub area_m2: f64,
}

fn with_water(names: &[String], ions: &[f64], water: f64) -> PerIon {
    let mut m = keyed(names, ions);
    m.insert("H2O".into(), water);
    m
}

impl From<&ModuleSolution> for ModuleCaseOutput {
    fn from(s: &ModuleSolution) -> Self {
        let names = &s.ions;
        ModuleCaseOutput {
            flux_mol_avg_m2_s: with_water(
                names,
                &s.solute_flux_avg_mol_m2_s,
                s.water_flux_avg_mol_m2_s,
            ),
            jv_avg_m_s: s.jv_avg_m_s,
            rejection_intrinsic: keyed(names, &s.rejection_intrinsic),
            rejection_observed: keyed(names, &s.rejection_observed),
            c_mixed_permeate: keyed(names, &s.c_mixed_permeate),
            feed_flow_mol_s: with_water(names, &s.inlet_ions_mol_s, s.inlet_water_mol_s),
            retentate_flow_mol_s: with_water(
                names,
                &s.retentate_ions_mol_s,
                s.retentate_water_mol_s,
            ),
            permeate_flow_mol_s: with_water(names, &s.permeate_ions_mol_s, s.permeate_water_mol_s),
            recovery_vol: s.recovery_vol,
            area_m2: s.area_m2,
        }
    }
}
