//! Activity coefficient models of the MCAS property package (watertap 1.8.0).

use crate::constants::{
    water_density, AVOGADRO, BOLTZMANN, BULK_DIELECTRIC, ELEMENTARY_CHARGE, SOLUTION_DENSITY,
    VACUUM_PERMITTIVITY,
};
use serde::{Deserialize, Serialize};
use std::f64::consts::{LN_10, PI};

/// How activity coefficients are computed, everywhere (interface, both pore mouths, permeate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityModel {
    /// gamma = 1 (WaterTAP's default).
    #[default]
    Ideal,
    /// Davies on a log10 basis with molal ionic strength, as fixed in watertap 1.8.0:
    /// log10 gamma_i = -A z_i^2 (sqrt(I)/(1+sqrt(I)) - 0.3 I). WaterTAP applies it in the
    /// pore too (with the bulk dielectric constant); so do we, for parity.
    Davies,
}

impl ActivityModel {
    /// Parses `ideal` or `davies`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ideal" => Some(ActivityModel::Ideal),
            "davies" => Some(ActivityModel::Davies),
            _ => None,
        }
    }
}

/// Debye-Hueckel constant A of the Davies equation (log10 basis), kg^0.5/mol^0.5:
/// A = sqrt(2 pi N_A rho_w(T)) / ln 10 * (e^2 / (4 pi eps0 eps_b k_B T))^(3/2).
/// 0.5102 at 25 C with eps_b = 78.36.
pub fn davies_a(temperature_k: f64) -> f64 {
    let bjerrum = ELEMENTARY_CHARGE.powi(2)
        / (4.0 * PI * VACUUM_PERMITTIVITY * BULK_DIELECTRIC * BOLTZMANN * temperature_k);
    (2.0 * PI * AVOGADRO * water_density(temperature_k)).sqrt() / LN_10 * bjerrum.powf(1.5)
}

/// Molal ionic strength `I = 1/2 sum z^2 m_i` with `m_i = c_i / (1000 - sum_k c_k M_k)`;
/// `None` if no water is left.
pub fn ionic_strength_molal(z: &[f64], molar_mass: &[f64], c: &[f64]) -> Option<f64> {
    let water_mass: f64 =
        SOLUTION_DENSITY - c.iter().zip(molar_mass).map(|(c, m)| c * m).sum::<f64>();
    (water_mass > 0.0)
        .then(|| 0.5 * c.iter().zip(z).map(|(c, z)| z * z * c).sum::<f64>() / water_mass)
}

/// Natural-log activity coefficients of a solution with concentrations `c` (mol/m3 of
/// solution), written into `ln_gamma`. Molality uses the constant solution density:
/// m_i = c_i / (1000 - sum_k c_k M_k). Returns `None` if the solution has no water left
/// (the molality is undefined), which callers report as an error.
pub fn ln_gamma_into(
    model: ActivityModel,
    davies_a: f64,
    z: &[f64],
    molar_mass: &[f64],
    c: &[f64],
    ln_gamma: &mut [f64],
) -> Option<()> {
    match model {
        ActivityModel::Ideal => {
            ln_gamma.iter_mut().for_each(|g| *g = 0.0);
            Some(())
        }
        ActivityModel::Davies => {
            let ionic_strength = ionic_strength_molal(z, molar_mass, c)?;
            let s = ionic_strength.sqrt();
            let bracket = s / (1.0 + s) - 0.3 * ionic_strength;
            for (g, z) in ln_gamma.iter_mut().zip(z) {
                *g = -LN_10 * davies_a * z * z * bracket;
            }
            Some(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn davies_constant_at_25c() {
        let a = davies_a(298.15);
        assert!((a - 0.5102).abs() < 5e-4, "{a}");
    }

    #[test]
    fn davies_lowers_gamma_of_dilute_salt() {
        let mut g = [0.0; 2];
        ln_gamma_into(
            ActivityModel::Davies,
            davies_a(298.15),
            &[1.0, -1.0],
            &[0.023, 0.035],
            &[100.0, 100.0],
            &mut g,
        )
        .unwrap();
        // I = 0.1 mol/kg: log10 gamma = -0.51 (0.2403 - 0.03) ~ -0.107 -> gamma ~ 0.78
        let gamma = g[0].exp();
        assert!((gamma - 0.781).abs() < 0.005, "{gamma}");
        assert_eq!(g[0], g[1]);
    }
}
