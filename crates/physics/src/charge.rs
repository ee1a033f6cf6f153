//! How a membrane's fixed charge depends on the feed it filters (docs/DSPMDE.md, section
//! "Feed-dependent charge").
//!
//! DSPM-DE takes one volumetric charge density X for the pore. A polyamide NF membrane's
//! charge is not one number: counter-ions bind to its carboxyl groups, and divalent cations
//! (Mg2+, Ca2+) can neutralise or reverse it, so one X cannot describe the same membrane in
//! NaCl and in MgCl2. A [`ChargeModel`] gives X for each feed; the point solver is then
//! solved with that X, unchanged. With [`ChargeModel::Constant`] every solve is exactly what
//! it was before charge models existed (the WaterTAP parity tests run that way).
//!
//! - **Freundlich**: `X = -a c_eq^b`, with `c_eq = sum_i |z_i| c_i / 2` the feed's
//!   equivalent concentration in mol/m3 (`a` in mol/m3 at `c_eq` = 1 mol/m3, `b` usually
//!   0.3 to 0.7). The empirical form of the NF characterisation literature (Bowen &
//!   Mohammad, AIChE J. 44 (1998) 1799; Labban et al., J. Membr. Sci. 521 (2017) 18), and
//!   the surrogate laboratory's.
//! - **Langmuir** (competitive adsorption of cations on the fixed groups): `S` mol/m3 of
//!   ionised groups, each of charge -1, on which every cation competes with a Langmuir
//!   constant by valence (`K_1` for monovalent, `K_2` for di- and multivalent cations):
//!   `theta_i = K_i c_i / (1 + sum_j K_j c_j)` and `X = -S + S sum_i z_i theta_i`. A bound
//!   monovalent cation neutralises its group, a bound divalent one leaves +1, so a strongly
//!   binding Mg2+ feed reverses the charge (X -> +S), a NaCl feed only screens it (X -> 0).
//!   After the adsorption-amphoteric picture of Bruni & Bandini, Desalination 241 (2009)
//!   315, reduced to three parameters (one constant per valence class instead of one per
//!   ion) so that it can be fitted to a few dozen rejections.

use crate::error::{PhysicsError, Result};
use crate::ions::Ion;
use crate::membrane::Membrane;
use serde::{Deserialize, Serialize};

/// How the membrane's charge density depends on the feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChargeModel {
    /// The membrane's own `charge_density_mol_m3`, whatever the feed.
    #[default]
    Constant,
    /// `X = -a c_eq^b`.
    Freundlich {
        /// `a`, mol/m3 (X at an equivalent concentration of 1 mol/m3).
        a_mol_m3: f64,
        /// `b`, dimensionless.
        b: f64,
    },
    /// `X = -S + S sum_i z_i theta_i`, competitive Langmuir binding of cations.
    Langmuir {
        /// `S`, ionised fixed groups, mol/m3 of pore volume.
        sites_mol_m3: f64,
        /// `K_1`, binding constant of monovalent cations, m3/mol.
        k_mono_m3_mol: f64,
        /// `K_2`, binding constant of di- and multivalent cations, m3/mol.
        k_multi_m3_mol: f64,
    },
}

impl ChargeModel {
    /// Whether this is the constant charge (the default, omitted from files).
    pub fn is_constant(&self) -> bool {
        matches!(self, ChargeModel::Constant)
    }

    /// The model's name, as files and messages spell it.
    pub fn name(&self) -> &'static str {
        match self {
            ChargeModel::Constant => "constant",
            ChargeModel::Freundlich { .. } => "freundlich",
            ChargeModel::Langmuir { .. } => "langmuir",
        }
    }

    /// Checks ranges: every parameter finite, `a`, `S` and the constants >= 0, `b` in
    /// [0, 1.5].
    pub fn validate(&self) -> Result<()> {
        let check = |field: &str, v: f64, ok: bool, valid: &str| {
            if v.is_finite() && ok {
                Ok(())
            } else {
                Err(PhysicsError::invalid(field, v, valid))
            }
        };
        match *self {
            ChargeModel::Constant => Ok(()),
            ChargeModel::Freundlich { a_mol_m3, b } => {
                check(
                    "charge a_mol_m3",
                    a_mol_m3,
                    a_mol_m3 >= 0.0,
                    "a finite number >= 0",
                )?;
                check(
                    "charge b",
                    b,
                    (0.0..=1.5).contains(&b),
                    "an exponent in [0, 1.5]",
                )
            }
            ChargeModel::Langmuir {
                sites_mol_m3,
                k_mono_m3_mol,
                k_multi_m3_mol,
            } => {
                check(
                    "charge sites_mol_m3",
                    sites_mol_m3,
                    sites_mol_m3 >= 0.0,
                    "a finite number >= 0",
                )?;
                check(
                    "charge k_mono_m3_mol",
                    k_mono_m3_mol,
                    k_mono_m3_mol >= 0.0,
                    "a finite number >= 0",
                )?;
                check(
                    "charge k_multi_m3_mol",
                    k_multi_m3_mol,
                    k_multi_m3_mol >= 0.0,
                    "a finite number >= 0",
                )
            }
        }
    }

    /// The charge density X (mol/m3) of `membrane` for a feed of `ions` at `c_feed`
    /// (mol/m3).
    pub fn charge_density(&self, membrane: &Membrane, ions: &[Ion], c_feed: &[f64]) -> f64 {
        match *self {
            ChargeModel::Constant => membrane.charge_density_mol_m3,
            ChargeModel::Freundlich { a_mol_m3, b } => {
                let c_eq = 0.5
                    * ions
                        .iter()
                        .zip(c_feed)
                        .map(|(i, c)| i.z().abs() * c)
                        .sum::<f64>();
                -a_mol_m3 * c_eq.powf(b)
            }
            ChargeModel::Langmuir {
                sites_mol_m3,
                k_mono_m3_mol,
                k_multi_m3_mol,
            } => {
                let (mut bound, mut charge) = (0.0, 0.0);
                for (ion, &c) in ions.iter().zip(c_feed) {
                    let z = ion.z();
                    if z > 0.0 {
                        let k = if z < 1.5 {
                            k_mono_m3_mol
                        } else {
                            k_multi_m3_mol
                        };
                        bound += k * c;
                        charge += z * k * c;
                    }
                }
                // sum_i z_i theta_i = sum_i z_i K_i c_i / (1 + sum_j K_j c_j)
                -sites_mol_m3 + sites_mol_m3 * charge / (1.0 + bound)
            }
        }
    }

    /// `membrane` with the charge density this model gives for the feed.
    pub fn membrane_for(&self, membrane: &Membrane, ions: &[Ion], c_feed: &[f64]) -> Membrane {
        Membrane {
            charge_density_mol_m3: self.charge_density(membrane, ions, c_feed),
            ..*membrane
        }
    }
}

/// A membrane and how its charge depends on the feed: what a membrane file, a preset or a
/// calibration describes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargedMembrane {
    pub membrane: Membrane,
    pub charge: ChargeModel,
}

impl ChargedMembrane {
    /// A membrane of constant charge.
    pub fn constant(membrane: Membrane) -> ChargedMembrane {
        ChargedMembrane {
            membrane,
            charge: ChargeModel::Constant,
        }
    }

    /// Checks both parts.
    pub fn validate(&self) -> Result<()> {
        self.membrane.validate()?;
        self.charge.validate()
    }

    /// The DSPM-DE membrane for a feed of `ions` at `c_feed` (mol/m3).
    pub fn for_feed(&self, ions: &[Ion], c_feed: &[f64]) -> Membrane {
        self.charge.membrane_for(&self.membrane, ions, c_feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IonDb;

    fn ions(names: &[&str]) -> Vec<Ion> {
        let db = IonDb::builtin();
        names.iter().map(|n| db.get(n).unwrap().clone()).collect()
    }

    #[test]
    fn constant_is_the_membrane_charge_bit_for_bit() {
        let m = Membrane::preset("nf270").unwrap();
        let na_cl = ions(&["Na+", "Cl-"]);
        let x = ChargeModel::Constant.charge_density(&m, &na_cl, &[10.0, 10.0]);
        assert_eq!(x.to_bits(), m.charge_density_mol_m3.to_bits());
        assert_eq!(
            ChargeModel::Constant.membrane_for(&m, &na_cl, &[5.0, 5.0]),
            m
        );
    }

    #[test]
    fn freundlich_follows_the_equivalent_concentration() {
        let m = Membrane::preset("nf270").unwrap();
        let f = ChargeModel::Freundlich {
            a_mol_m3: 8.0,
            b: 0.4,
        };
        // NaCl 10 mol/m3: c_eq = 10; MgCl2 10 mol/m3: c_eq = (2 * 10 + 20) / 2 = 20.
        let x_na = f.charge_density(&m, &ions(&["Na+", "Cl-"]), &[10.0, 10.0]);
        let x_mg = f.charge_density(&m, &ions(&["Mg2+", "Cl-"]), &[10.0, 20.0]);
        assert!((x_na + 8.0 * 10f64.powf(0.4)).abs() < 1e-12, "{x_na}");
        assert!((x_mg + 8.0 * 20f64.powf(0.4)).abs() < 1e-12, "{x_mg}");
    }

    #[test]
    fn langmuir_screens_with_monovalent_and_reverses_with_divalent_cations() {
        let m = Membrane::preset("nf270").unwrap();
        let l = ChargeModel::Langmuir {
            sites_mol_m3: 60.0,
            k_mono_m3_mol: 0.01,
            k_multi_m3_mol: 1.0,
        };
        let (na_cl, mg_cl) = (ions(&["Na+", "Cl-"]), ions(&["Mg2+", "Cl-"]));
        // No cation: the bare sites.
        assert_eq!(l.charge_density(&m, &na_cl, &[0.0, 0.0]), -60.0);
        // NaCl at 100 mol/m3: theta = 1/2, X = -60 + 60 * 0.5 = -30.
        let x = l.charge_density(&m, &na_cl, &[100.0, 100.0]);
        assert!((x + 30.0).abs() < 1e-12, "{x}");
        // MgCl2 at 1000 mol/m3: theta -> 1000/1001, X -> +60 (reversed).
        let x = l.charge_density(&m, &mg_cl, &[1000.0, 2000.0]);
        assert!(
            (x - (-60.0 + 120.0 * 1000.0 / 1001.0)).abs() < 1e-9 && x > 59.0,
            "{x}"
        );
        // Monotone in the Mg2+ concentration.
        let xs: Vec<f64> = [0.1, 1.0, 10.0, 100.0]
            .iter()
            .map(|c| l.charge_density(&m, &mg_cl, &[*c, 2.0 * c]))
            .collect();
        assert!(xs.windows(2).all(|w| w[1] > w[0]), "{xs:?}");
    }

    #[test]
    fn out_of_range_parameters_are_named() {
        let bad = ChargeModel::Freundlich {
            a_mol_m3: 1.0,
            b: 2.0,
        };
        assert!(bad.validate().unwrap_err().to_string().contains("charge b"));
        let bad = ChargeModel::Langmuir {
            sites_mol_m3: f64::NAN,
            k_mono_m3_mol: 1.0,
            k_multi_m3_mol: 1.0,
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sites_mol_m3"));
        assert!(ChargeModel::Constant.validate().is_ok());
    }

    #[test]
    fn models_read_and_write_as_tagged_tables() {
        let l: ChargeModel = serde_json::from_str(
            r#"{"model": "langmuir", "sites_mol_m3": 60.0, "k_mono_m3_mol": 0.01, "k_multi_m3_mol": 1.0}"#,
        )
        .unwrap();
        assert_eq!(l.name(), "langmuir");
        let back: ChargeModel = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        assert!(serde_json::from_str::<ChargeModel>(r#"{"model": "freundlich", "a": 1}"#).is_err());
    }
}
