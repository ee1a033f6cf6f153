//! Membrane parameters of DSPM-DE and named presets.

use crate::constants::VISCOSITY;
use crate::error::{require_positive, PhysicsError, Result};
use serde::{Deserialize, Serialize};

/// The four DSPM-DE membrane parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membrane {
    /// Mean pore radius r_p, m.
    pub pore_radius_m: f64,
    /// Effective thickness, thickness over porosity (Delta x_e), m.
    pub effective_thickness_m: f64,
    /// Volumetric membrane charge density X, mol/m3 of pore volume (negative for NF270).
    pub charge_density_mol_m3: f64,
    /// Relative permittivity of the solution inside the pores (epsilon_p).
    pub pore_dielectric: f64,
}

/// A named parameter set with its provenance.
#[derive(Debug, Clone, Copy)]
pub struct MembranePreset {
    pub name: &'static str,
    pub membrane: Membrane,
    pub source: &'static str,
}

const fn m(r: f64, dx: f64, x: f64, eps: f64) -> Membrane {
    Membrane {
        pore_radius_m: r,
        effective_thickness_m: dx,
        charge_density_mol_m3: x,
        pore_dielectric: eps,
    }
}

/// The presets `--membrane NAME` accepts.
pub const PRESETS: &[MembranePreset] = &[
    MembranePreset {
        name: "nf270",
        membrane: m(0.5e-9, 1.33e-6, -27.0, 41.3),
        source: "NF270-like set of docs/BENCH.md: dx_e = 1.33 um as attributed to Labban et al. \
                 (JMS 521, 2017) by WaterTAP; r_p, X and eps_p inside the NF270 ranges of DSPMDE.md section 5 \
                 (r_p 0.40-0.55 nm, X -10..-100 mol/m3, eps_p 30-50). Gives L_p = 8.5 LMH/bar.",
    },
    MembranePreset {
        name: "wt_test",
        membrane: m(0.5e-9, 1.33e-6, -27.0, 41.3),
        source: "WaterTAP 1.8.0 NanofiltrationDSPMDE0D unit tests (the reference file's membrane)",
    },
    MembranePreset {
        name: "wt_flowsheet",
        membrane: m(0.5e-9, 0.85989e-6, -50.0, 41.3),
        source: "WaterTAP nf_dspmde/nf.py NF270-like flowsheet (20 C feed, 3-5 bar)",
    },
    MembranePreset {
        name: "wt_default",
        membrane: m(0.5e-9, 1.33e-6, -50.0, 42.0),
        source: "WaterTAP NanofiltrationDSPMDE0D default initial values (X and eps_p 'near Roy et al. 2015')",
    },
];

impl Membrane {
    /// Looks a preset up by name.
    pub fn preset(name: &str) -> Result<Membrane> {
        PRESETS
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
            .map(|p| p.membrane)
            .ok_or_else(|| {
                PhysicsError::invalid(
                    "membrane",
                    format!("'{name}'"),
                    format!(
                        "one of {}",
                        PRESETS
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }

    /// Checks ranges; X may have either sign (or be zero).
    pub fn validate(&self) -> Result<()> {
        require_positive("membrane pore_radius_m", self.pore_radius_m)?;
        require_positive("membrane effective_thickness_m", self.effective_thickness_m)?;
        require_positive("membrane pore_dielectric", self.pore_dielectric)?;
        if !self.charge_density_mol_m3.is_finite() {
            return Err(PhysicsError::invalid(
                "membrane charge_density_mol_m3",
                self.charge_density_mol_m3,
                "a finite number (negative for a negatively charged membrane)",
            ));
        }
        if self.pore_radius_m > 1e-7 || self.effective_thickness_m > 1e-2 {
            return Err(PhysicsError::invalid(
                "membrane pore_radius_m / effective_thickness_m",
                format!(
                    "{:e} / {:e}",
                    self.pore_radius_m, self.effective_thickness_m
                ),
                "SI units: metres (pore radius ~5e-10, thickness ~1e-6)",
            ));
        }
        Ok(())
    }

    /// Hagen-Poiseuille hydraulic permeability L_p = r_p^2 / (8 mu dx_e), m/(Pa s).
    pub fn permeability(&self) -> f64 {
        self.pore_radius_m.powi(2) / (8.0 * VISCOSITY * self.effective_thickness_m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nf270_permeability_is_8_5_lmh_per_bar() {
        let lp = Membrane::preset("nf270").unwrap().permeability();
        let lmh_per_bar = lp * 1e5 * 3.6e6;
        assert!((lmh_per_bar - 8.46).abs() < 0.01, "{lmh_per_bar}");
    }

    #[test]
    fn unknown_preset_names_the_valid_ones() {
        let err = Membrane::preset("nf90").unwrap_err().to_string();
        assert!(
            err.contains("'nf90'") && err.contains("nf270, wt_test"),
            "{err}"
        );
    }
}
