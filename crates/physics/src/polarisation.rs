//! Concentration polarisation in the feed-side film: the interface concentration `c_m` of
//! each ion from its bulk value, its permeate value, the water flux and the film's electric
//! field `xi` (fixed by interface electroneutrality), plus the spiral-wound mass-transfer
//! correlation WaterTAP uses.

use crate::constants::{SOLUTION_DENSITY, VISCOSITY};
use crate::error::{require_positive, PhysicsError, Result};
use crate::ions::Ion;
use serde::{Deserialize, Serialize};

/// How the film equation is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilmModel {
    /// WaterTAP's linearised film balance with electromigration:
    /// `J_v c_p = -k (c_m - c_b) + J_v c_m - z c_m D f xi`. It has no positive solution
    /// when `J_v` exceeds `k` of a strongly rejected ion.
    Linearised,
    /// The exact integral of the same film equation across a film of thickness `D / k`
    /// with a constant field: `c_m = c_b e^a + (J_v c_p / k) (1 - e^a) / a`,
    /// `a = (J_v - z D f xi) / k`. Reduces to the classic `exp(J_v / k)` film model at
    /// `xi = 0`. Not WaterTAP's; an option for data generation.
    Exponential,
}

/// Concentration polarisation of a point solve.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Polarisation {
    /// `c_m = c_b`.
    #[default]
    None,
    /// A film with a mass-transfer coefficient per ion (m/s, in the spec's ion order).
    Film {
        model: FilmModel,
        mass_transfer_m_s: Vec<f64>,
    },
}

/// Interface concentration of one ion. `zdf_xi` is `z D f xi` (m/s).
#[inline]
pub(crate) fn interface_concentration(
    model: FilmModel,
    c_bulk: f64,
    c_perm: f64,
    jv: f64,
    k: f64,
    zdf_xi: f64,
) -> f64 {
    match model {
        FilmModel::Linearised => (k * c_bulk - jv * c_perm) / (k - jv + zdf_xi),
        FilmModel::Exponential => {
            let a = (jv - zdf_xi) / k;
            c_bulk * a.exp() - jv * c_perm / k * exprel(a)
        }
    }
}

/// `(e^x - 1) / x`, accurate near 0.
fn exprel(x: f64) -> f64 {
    if x.abs() < 1e-5 {
        1.0 + x / 2.0 + x * x / 6.0
    } else {
        x.exp_m1() / x
    }
}

/// Spiral-wound channel geometry for the mass-transfer correlation of WaterTAP
/// (after Roy et al. 2015):
/// `k = 0.753 (eta/(2-eta))^0.5 (2D/h) Sc^(-1/6) (Pe h / (2 L_mix))^0.5`,
/// `Sc = mu/(rho D)`, `Pe = 2 h u / D`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpiralWound {
    /// Feed-channel height h, m.
    pub channel_height_m: f64,
    /// Cross-flow velocity u, m/s.
    pub velocity_m_s: f64,
    /// Spacer mixing efficiency eta (WaterTAP default 0.5).
    #[serde(default = "default_mixing_efficiency")]
    pub mixing_efficiency: f64,
    /// Spacer mixing length, m (WaterTAP default 0.6).
    #[serde(default = "default_mixing_length")]
    pub mixing_length_m: f64,
}

fn default_mixing_efficiency() -> f64 {
    0.5
}
fn default_mixing_length() -> f64 {
    0.6
}

impl Default for SpiralWound {
    /// WaterTAP's test channel: h = 0.5 mm, u = 0.25 m/s.
    fn default() -> Self {
        SpiralWound {
            channel_height_m: 5e-4,
            velocity_m_s: 0.25,
            mixing_efficiency: default_mixing_efficiency(),
            mixing_length_m: default_mixing_length(),
        }
    }
}

impl SpiralWound {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        require_positive("spiral_wound channel_height_m", self.channel_height_m)?;
        require_positive("spiral_wound velocity_m_s", self.velocity_m_s)?;
        require_positive("spiral_wound mixing_length_m", self.mixing_length_m)?;
        if !(self.mixing_efficiency > 0.0 && self.mixing_efficiency < 2.0) {
            return Err(PhysicsError::invalid(
                "spiral_wound mixing_efficiency",
                self.mixing_efficiency,
                "a number in (0, 2)",
            ));
        }
        Ok(())
    }

    /// Schmidt number of an ion.
    pub fn schmidt(&self, ion: &Ion) -> f64 {
        VISCOSITY / (SOLUTION_DENSITY * ion.diffusivity_m2_s)
    }

    /// Peclet number of an ion.
    pub fn peclet(&self, ion: &Ion) -> f64 {
        2.0 * self.channel_height_m * self.velocity_m_s / ion.diffusivity_m2_s
    }

    /// Mass-transfer coefficient of each ion, m/s.
    pub fn mass_transfer(&self, ions: &[Ion]) -> Vec<f64> {
        let eta = self.mixing_efficiency;
        let h = self.channel_height_m;
        ions.iter()
            .map(|ion| {
                0.753
                    * (eta / (2.0 - eta)).sqrt()
                    * (2.0 * ion.diffusivity_m2_s / h)
                    * self.schmidt(ion).powf(-1.0 / 6.0)
                    * (self.peclet(ion) * h / (2.0 * self.mixing_length_m)).sqrt()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ions::IonDb;

    #[test]
    fn spiral_wound_matches_watertap_k() {
        // the WaterTAP reference file (tests/data), point case NaCl_50mM|wt_test|ideal|cp=spiral_wound|dP=3bar
        let db = IonDb::builtin();
        let ions = [
            db.get("Na+").unwrap().clone(),
            db.get("Cl-").unwrap().clone(),
        ];
        let k = SpiralWound::default().mass_transfer(&ions);
        assert!((k[0] / 6.78776009467e-06 - 1.0).abs() < 1e-9, "{}", k[0]);
        assert!((k[1] / 8.99820912475e-06 - 1.0).abs() < 1e-9, "{}", k[1]);
    }

    #[test]
    fn exponential_film_is_the_classic_model_without_field() {
        let (cb, cp, jv, k) = (10.0, 2.0, 5e-6, 1e-5);
        let cm = interface_concentration(FilmModel::Exponential, cb, cp, jv, k, 0.0);
        let classic = cp + (cb - cp) * (jv / k).exp();
        assert!((cm - classic).abs() < 1e-12, "{cm} {classic}");
    }

    #[test]
    fn film_models_agree_at_low_peclet() {
        let (cb, cp, jv, k) = (10.0, 2.0, 1e-9, 1e-5);
        let lin = interface_concentration(FilmModel::Linearised, cb, cp, jv, k, 1e-9);
        let exp = interface_concentration(FilmModel::Exponential, cb, cp, jv, k, 1e-9);
        assert!((lin - exp).abs() / lin < 1e-6, "{lin} {exp}");
    }
}
