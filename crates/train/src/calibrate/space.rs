//! The space a calibration searches: the membrane's parameters and its charge model's, each
//! in a box, mapped to unbounded coordinates for Nelder-Mead.
//!
//! Each parameter is `lo + (hi - lo) u` (or log-uniform, `exp(ln lo + (ln hi - ln lo) u)`,
//! for those that span decades) with `u = sigmoid(theta)`, so the optimiser works on an
//! unbounded space and can never propose an unphysical membrane. The axes are, in order:
//! pore radius, thickness (log), the charge's first parameter, pore dielectric, then the
//! charge model's others:
//! - constant: the charge density X (the calibration of four parameters as it always was,
//!   to the bit);
//! - Freundlich: `a` (log), `b`;
//! - Langmuir: the sites `S` (log), `K_1` (log), `K_2` (log).

use crate::error::{Result, TrainError};
use argmin_math::{ArgminAdd, ArgminMul, ArgminSub};
use ionode_physics::membrane::Membrane;
use ionode_physics::{ChargeModel, ChargedMembrane};
use serde::{Deserialize, Serialize};

/// The most parameters of one calibration (Langmuir: three of the membrane, three of the
/// charge).
pub const MAX_DIMS: usize = 6;

/// Lower and upper bounds of the four membrane parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Pore radius, m.
    pub pore_radius_m: (f64, f64),
    /// Effective thickness, m (searched log-uniformly).
    pub effective_thickness_m: (f64, f64),
    /// Charge density, mol/m3 (the constant charge model's).
    pub charge_density_mol_m3: (f64, f64),
    /// Pore dielectric constant.
    pub pore_dielectric: (f64, f64),
}

/// The literature box for NF270-like membranes (DSPMDE.md section 5, widened): r_p
/// 0.35-0.7 nm, dx_e 0.3-5 um, X -200..-1 mol/m3, eps_p 20-78 (78 is bulk water).
pub const LITERATURE_BOX: Bounds = Bounds {
    pore_radius_m: (0.35e-9, 0.7e-9),
    effective_thickness_m: (0.3e-6, 5e-6),
    charge_density_mol_m3: (-200.0, -1.0),
    pore_dielectric: (20.0, 78.0),
};

/// Which charge model a calibration fits, with the box of each of its parameters (the
/// defaults span what the NF literature reports, widened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChargeFit {
    /// One charge density for every feed (in `bounds.charge_density_mol_m3`).
    #[default]
    Constant,
    /// `X = -a c_eq^b`.
    Freundlich {
        #[serde(default = "freundlich_a")]
        a_mol_m3: (f64, f64),
        #[serde(default = "freundlich_b")]
        b: (f64, f64),
    },
    /// `X = -S + S sum_i z_i theta_i`, competitive Langmuir binding of cations.
    Langmuir {
        #[serde(default = "langmuir_sites")]
        sites_mol_m3: (f64, f64),
        #[serde(default = "langmuir_k_mono")]
        k_mono_m3_mol: (f64, f64),
        #[serde(default = "langmuir_k_multi")]
        k_multi_m3_mol: (f64, f64),
    },
}

fn freundlich_a() -> (f64, f64) {
    (0.5, 300.0)
}
fn freundlich_b() -> (f64, f64) {
    (0.0, 1.2)
}
fn langmuir_sites() -> (f64, f64) {
    (1.0, 1000.0)
}
fn langmuir_k_mono() -> (f64, f64) {
    (1e-5, 10.0)
}
fn langmuir_k_multi() -> (f64, f64) {
    (1e-5, 100.0)
}

impl ChargeFit {
    /// Whether this is the constant charge (the default, omitted from configs, so the run
    /// ids of configs written before charge models stay what they were).
    pub fn is_constant(&self) -> bool {
        matches!(self, ChargeFit::Constant)
    }

    /// The charge model's axes: (name, bounds, log-uniform).
    fn axes(&self, bounds: &Bounds) -> Vec<(&'static str, (f64, f64), bool)> {
        match *self {
            ChargeFit::Constant => {
                vec![("charge_density_mol_m3", bounds.charge_density_mol_m3, false)]
            }
            ChargeFit::Freundlich { a_mol_m3, b } => {
                vec![("charge.a_mol_m3", a_mol_m3, true), ("charge.b", b, false)]
            }
            ChargeFit::Langmuir {
                sites_mol_m3,
                k_mono_m3_mol,
                k_multi_m3_mol,
            } => vec![
                ("charge.sites_mol_m3", sites_mol_m3, true),
                ("charge.k_mono_m3_mol", k_mono_m3_mol, true),
                ("charge.k_multi_m3_mol", k_multi_m3_mol, true),
            ],
        }
    }

    /// The model at the charge axes' values (in the order of [`Self::axes`]).
    fn model(&self, v: &[f64]) -> ChargeModel {
        match self {
            ChargeFit::Constant => ChargeModel::Constant,
            ChargeFit::Freundlich { .. } => ChargeModel::Freundlich {
                a_mol_m3: v[0],
                b: v[1],
            },
            ChargeFit::Langmuir { .. } => ChargeModel::Langmuir {
                sites_mol_m3: v[0],
                k_mono_m3_mol: v[1],
                k_multi_m3_mol: v[2],
            },
        }
    }

    /// The charge axes' values of a model this fit can give (`None` for another kind, or
    /// for a constant charge, whose value is the membrane's).
    fn values(&self, m: &ChargeModel) -> Option<Vec<f64>> {
        match (self, *m) {
            (ChargeFit::Freundlich { .. }, ChargeModel::Freundlich { a_mol_m3, b }) => {
                Some(vec![a_mol_m3, b])
            }
            (
                ChargeFit::Langmuir { .. },
                ChargeModel::Langmuir {
                    sites_mol_m3,
                    k_mono_m3_mol,
                    k_multi_m3_mol,
                },
            ) => Some(vec![sites_mol_m3, k_mono_m3_mol, k_multi_m3_mol]),
            _ => None,
        }
    }
}

/// One searched parameter.
#[derive(Debug, Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn at(&self, u: f64) -> f64 {
        if self.log {
            (self.lo.ln() + (self.hi.ln() - self.lo.ln()) * u).exp()
        } else {
            self.lo + (self.hi - self.lo) * u
        }
    }

    fn unit(&self, x: f64) -> f64 {
        if self.log {
            (x.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (x - self.lo) / (self.hi - self.lo)
        }
    }
}

/// The search space of one calibration.
#[derive(Debug, Clone)]
pub(super) struct Space {
    axes: Vec<Axis>,
    charge: ChargeFit,
}

impl Space {
    /// The space of `bounds` and `charge`, checked.
    pub fn new(bounds: &Bounds, charge: &ChargeFit) -> Result<Space> {
        let charge_axes = charge.axes(bounds);
        let mut named = vec![
            ("pore_radius_m", bounds.pore_radius_m, false),
            ("effective_thickness_m", bounds.effective_thickness_m, true),
            charge_axes[0],
            ("pore_dielectric", bounds.pore_dielectric, false),
        ];
        named.extend_from_slice(&charge_axes[1..]);
        for (name, (lo, hi), log) in &named {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(TrainError::invalid(
                    format!("bounds.{name}"),
                    format!("({lo}, {hi})"),
                    "finite lower < upper",
                ));
            }
            if *log && *lo <= 0.0 {
                return Err(TrainError::invalid(
                    format!("bounds.{name}"),
                    format!("({lo}, {hi})"),
                    "a positive lower bound (it is searched log-uniformly)",
                ));
            }
        }
        if !(bounds.pore_radius_m.0 > 0.0 && bounds.pore_dielectric.0 > 0.0) {
            return Err(TrainError::invalid(
                "bounds",
                format!("{bounds:?}"),
                "positive pore radius, thickness and dielectric bounds",
            ));
        }
        if let ChargeFit::Freundlich { b, .. } = charge {
            if b.0 < 0.0 || b.1 > 1.5 {
                return Err(TrainError::invalid(
                    "calibration.charge.b",
                    format!("({}, {})", b.0, b.1),
                    "bounds within [0, 1.5]",
                ));
            }
        }
        Ok(Space {
            axes: named
                .into_iter()
                .map(|(_, (lo, hi), log)| Axis { lo, hi, log })
                .collect(),
            charge: *charge,
        })
    }

    /// How many parameters are searched.
    pub fn dims(&self) -> usize {
        self.axes.len()
    }

    /// The model at unit-cube coordinates `u`.
    pub fn model_at(&self, u: &[f64]) -> ChargedMembrane {
        let v: Vec<f64> = self.axes.iter().zip(u).map(|(a, &u)| a.at(u)).collect();
        let constant = self.charge.is_constant();
        let mut charge_values = vec![v[2]];
        charge_values.extend_from_slice(&v[4..]);
        ChargedMembrane {
            membrane: Membrane {
                pore_radius_m: v[0],
                effective_thickness_m: v[1],
                charge_density_mol_m3: if constant { v[2] } else { 0.0 },
                pore_dielectric: v[3],
            },
            charge: self.charge.model(&charge_values),
        }
    }

    /// The unit-cube coordinates of `m`; a charge of another kind than the fit's (the
    /// preset's constant charge, as a start of a Freundlich fit) sits in the middle of the
    /// charge box.
    pub fn unit_of(&self, m: &ChargedMembrane) -> Vec<f64> {
        let c = &m.membrane;
        let charge = if self.charge.is_constant() {
            Some(vec![c.charge_density_mol_m3])
        } else {
            self.charge.values(&m.charge)
        };
        let mut v = vec![
            c.pore_radius_m,
            c.effective_thickness_m,
            0.0,
            c.pore_dielectric,
        ];
        let mut u: Vec<f64> = Vec::with_capacity(self.dims());
        match charge {
            Some(cv) => {
                v[2] = cv[0];
                v.extend_from_slice(&cv[1..]);
                u.extend(self.axes.iter().zip(&v).map(|(a, &x)| a.unit(x)));
            }
            None => {
                u.extend(self.axes.iter().zip(&v).map(|(a, &x)| a.unit(x)));
                u[2] = 0.5;
                u.resize(self.dims(), 0.5);
            }
        }
        u
    }

    /// The model at unbounded coordinates.
    pub fn model(&self, theta: &Theta) -> ChargedMembrane {
        let u: Vec<f64> = theta.0[..self.dims()].iter().map(|&t| sigmoid(t)).collect();
        self.model_at(&u)
    }

    /// The unbounded coordinates of `m`.
    pub fn theta(&self, m: &ChargedMembrane) -> Theta {
        let mut t = [0.0; MAX_DIMS];
        for (d, u) in self.unit_of(m).into_iter().enumerate() {
            t[d] = logit(u);
        }
        Theta(t)
    }
}

/// The parameter transform between the box and unbounded coordinates.
fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

fn logit(u: f64) -> f64 {
    let u = u.clamp(1e-9, 1.0 - 1e-9);
    (u / (1.0 - u)).ln()
}

/// The transformed parameters, with the vector arithmetic Nelder-Mead needs (coordinates
/// past the space's dimensions stay zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Theta(pub [f64; MAX_DIMS]);

impl ArgminAdd<Theta, Theta> for Theta {
    fn add(&self, other: &Theta) -> Theta {
        Theta(std::array::from_fn(|i| self.0[i] + other.0[i]))
    }
}

impl ArgminSub<Theta, Theta> for Theta {
    fn sub(&self, other: &Theta) -> Theta {
        Theta(std::array::from_fn(|i| self.0[i] - other.0[i]))
    }
}

impl ArgminMul<f64, Theta> for Theta {
    fn mul(&self, other: &f64) -> Theta {
        Theta(self.0.map(|x| x * other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> ChargedMembrane {
        ChargedMembrane::constant(Membrane {
            pore_radius_m: 0.45e-9,
            effective_thickness_m: 1.0e-6,
            charge_density_mol_m3: -40.0,
            pore_dielectric: 35.0,
        })
    }

    #[test]
    fn transform_round_trips_for_every_charge_model() {
        let constant = Space::new(&LITERATURE_BOX, &ChargeFit::Constant).unwrap();
        assert_eq!(constant.dims(), 4);
        let m = truth();
        let back = constant.model(&constant.theta(&m));
        assert!((back.membrane.pore_radius_m - m.membrane.pore_radius_m).abs() < 1e-20);
        let dx = back.membrane.effective_thickness_m / m.membrane.effective_thickness_m;
        assert!((dx - 1.0).abs() < 1e-12);
        let x = back.membrane.charge_density_mol_m3 - m.membrane.charge_density_mol_m3;
        assert!(x.abs() < 1e-9);
        let fits = [
            (
                ChargeFit::Freundlich {
                    a_mol_m3: freundlich_a(),
                    b: freundlich_b(),
                },
                ChargeModel::Freundlich {
                    a_mol_m3: 12.0,
                    b: 0.45,
                },
            ),
            (
                ChargeFit::Langmuir {
                    sites_mol_m3: langmuir_sites(),
                    k_mono_m3_mol: langmuir_k_mono(),
                    k_multi_m3_mol: langmuir_k_multi(),
                },
                ChargeModel::Langmuir {
                    sites_mol_m3: 80.0,
                    k_mono_m3_mol: 0.002,
                    k_multi_m3_mol: 0.5,
                },
            ),
        ];
        for (fit, model) in fits {
            let space = Space::new(&LITERATURE_BOX, &fit).unwrap();
            let m = ChargedMembrane {
                charge: model,
                ..truth()
            };
            let back = space.model(&space.theta(&m));
            let (a, b) = (
                fit.values(&back.charge).unwrap(),
                fit.values(&model).unwrap(),
            );
            for (x, y) in a.iter().zip(&b) {
                assert!((x / y - 1.0).abs() < 1e-9, "{a:?} vs {b:?}");
            }
            // A constant-charge start sits mid-box on the charge axes.
            let mid = space.model_at(&space.unit_of(&truth()));
            assert_eq!(mid.charge.name(), model.name());
        }
    }

    #[test]
    fn bad_boxes_name_the_parameter() {
        let fit = ChargeFit::Langmuir {
            sites_mol_m3: (0.0, 10.0),
            k_mono_m3_mol: langmuir_k_mono(),
            k_multi_m3_mol: langmuir_k_multi(),
        };
        let e = Space::new(&LITERATURE_BOX, &fit).unwrap_err().to_string();
        assert!(
            e.contains("bounds.charge.sites_mol_m3") && e.contains("positive lower bound"),
            "{e}"
        );
        let fit = ChargeFit::Freundlich {
            a_mol_m3: freundlich_a(),
            b: (0.0, 2.0),
        };
        let e = Space::new(&LITERATURE_BOX, &fit).unwrap_err().to_string();
        assert!(e.contains("charge.b"), "{e}");
    }
}
