//! What a run's model was trained on (its domain), and how far a new row lies outside it.
//!
//! A model answers for any feed it has slots for, and a neural model answers confidently
//! far outside what it saw. The domain keeps what a user needs to judge that: the fluxes and
//! temperatures of every trained stage (a model cannot be evaluated beyond them without
//! `--extrapolate`), and per stage the feed compositions it was fitted to — each ion's
//! range of feed concentrations *where its outcome was measured*, the ionic strength, and
//! so which ions it never saw. [`Domain::flags`] turns a new row into the list of ways it
//! lies outside, in words (`Li+ never measured; Mg^2+ 8.4x above the largest measured`).

use crate::data::Samples;
use crate::trainer::Stage;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A relative slack for numbers that went through text and back: a row at the edge of the
/// domain is inside it.
const SLACK: f64 = 1e-6;

/// What a run's model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// [lowest, highest] water flux of every trained stage's rows, m/s.
    pub flux_m_s: [f64; 2],
    /// [lowest, highest] temperature of every trained stage's rows, K.
    pub temperature_k: [f64; 2],
    /// The simulated feeds of pre-training (`None`: no pre-training, or a record written
    /// before compositions were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<Composition>,
    /// The measured rows a model was fine-tuned (or DSPM-DE calibrated) on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<Composition>,
}

/// The feeds one stage was fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Composition {
    /// Rows fitted to.
    pub rows: usize,
    /// [lowest, highest] ionic strength `I = ½ Σ z² c` of the feeds, mol/m3.
    pub ionic_strength_mol_m3: [f64; 2],
    /// Per slot, in slot order.
    pub ions: Vec<IonSpan>,
}

/// One ion's place in a stage's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IonSpan {
    /// Canonical name.
    pub ion: String,
    /// [lowest, highest] feed concentration of the rows where its outcome was measured,
    /// mol/m3; `None` if it never was.
    pub feed_mol_m3: Option<[f64; 2]>,
    /// Measured values (rows where it was present and measured).
    pub values: usize,
}

fn widen(acc: Option<[f64; 2]>, x: f64) -> Option<[f64; 2]> {
    Some(acc.map_or([x, x], |[lo, hi]| [lo.min(x), hi.max(x)]))
}

fn union(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0].min(b[0]), a[1].max(b[1])]
}

/// Ionic strength of one feed, mol/m3.
pub fn ionic_strength(charges: &[i32], feed_mol_m3: impl IntoIterator<Item = f64>) -> f64 {
    0.5 * charges
        .iter()
        .zip(feed_mol_m3)
        .map(|(&z, c)| f64::from(z * z) * c)
        .sum::<f64>()
}

impl Composition {
    /// The composition of some rows (`None` for no rows).
    pub fn of(samples: &Samples, rows: &[usize]) -> Option<Composition> {
        let strength = rows.iter().fold(None, |acc, &r| {
            widen(
                acc,
                ionic_strength(&samples.charges, samples.feed_mol_m3.row(r).iter().copied()),
            )
        })?;
        let ions = samples
            .species
            .iter()
            .enumerate()
            .map(|(s, ion)| {
                let measured = rows.iter().filter(|&&r| samples.observed[[r, s]]);
                IonSpan {
                    ion: ion.clone(),
                    feed_mol_m3: measured
                        .clone()
                        .fold(None, |acc, &r| widen(acc, samples.feed_mol_m3[[r, s]])),
                    values: measured.count(),
                }
            })
            .collect();
        Some(Composition {
            rows: rows.len(),
            ionic_strength_mol_m3: strength,
            ions,
        })
    }

    /// The composition of both (ions matched by name; an ion of one only is kept).
    pub fn union(mut self, other: Composition) -> Composition {
        self.rows += other.rows;
        self.ionic_strength_mol_m3 = union(self.ionic_strength_mol_m3, other.ionic_strength_mol_m3);
        for o in other.ions {
            match self.ions.iter_mut().find(|i| i.ion == o.ion) {
                Some(i) => {
                    i.values += o.values;
                    i.feed_mol_m3 = match (i.feed_mol_m3, o.feed_mol_m3) {
                        (Some(a), Some(b)) => Some(union(a, b)),
                        (a, b) => a.or(b),
                    };
                }
                None => self.ions.push(o),
            }
        }
        self
    }

    /// The span of an ion (`None` if the stage had no slot for it).
    pub fn ion(&self, name: &str) -> Option<&IonSpan> {
        self.ions.iter().find(|i| i.ion == name)
    }
}

fn join_composition(a: Option<Composition>, b: Option<Composition>) -> Option<Composition> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.union(b)),
        (a, b) => a.or(b),
    }
}

/// One way a row lies outside a run's domain.
#[derive(Debug, Clone, PartialEq)]
pub enum Flag {
    /// No measured outcome of this ion was fitted to; `simulated` is its feed range in
    /// pre-training, if it was simulated there.
    NeverMeasured {
        ion: String,
        simulated: Option<[f64; 2]>,
    },
    /// The ion's feed is `ratio` times the largest (`above`) or `1/ratio` of the smallest
    /// (below) feed at which it was fitted to.
    Feed {
        ion: String,
        ratio: f64,
        above: bool,
        basis: Basis,
    },
    /// The feed's ionic strength, likewise.
    IonicStrength {
        ratio: f64,
        above: bool,
        basis: Basis,
    },
    /// The flux lies `ratio` times beyond the trained range (above or below).
    Flux { ratio: f64, above: bool },
    /// The temperature lies `by` kelvin beyond the trained range.
    Temperature { by: f64, above: bool },
}

/// Which stage's data a flag compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Measured,
    Simulated,
}

/// A positive number to three significant digits (`1.04`, `8.40`, `24.8`, `864`).
fn sig3(x: f64) -> String {
    match x.abs() {
        a if a >= 100.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        a if a >= 1.0 => format!("{x:.2}"),
        _ => format!("{x:.3}"),
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |above: bool| {
            if above {
                "above the largest"
            } else {
                "below the smallest"
            }
        };
        let word = |b: &Basis| match b {
            Basis::Measured => "measured",
            Basis::Simulated => "simulated",
        };
        match self {
            Flag::NeverMeasured {
                ion,
                simulated: None,
            } => write!(f, "{ion} never measured"),
            Flag::NeverMeasured {
                ion,
                simulated: Some([lo, hi]),
            } => write!(
                f,
                "{ion} never measured (simulated in pre-training at {} to {} mol/m3)",
                sig3(*lo),
                sig3(*hi)
            ),
            Flag::Feed {
                ion,
                ratio,
                above,
                basis,
            } => write!(
                f,
                "{ion} {}x {} {}",
                sig3(*ratio),
                side(*above),
                word(basis)
            ),
            Flag::IonicStrength {
                ratio,
                above,
                basis,
            } => write!(
                f,
                "ionic strength {}x {} {}",
                sig3(*ratio),
                side(*above),
                word(basis)
            ),
            Flag::Flux { ratio, above } => {
                write!(f, "flux {}x {} trained", sig3(*ratio), side(*above))
            }
            Flag::Temperature { by, above } => write!(
                f,
                "temperature {by:.1} K {} trained",
                if *above {
                    "above the highest"
                } else {
                    "below the lowest"
                }
            ),
        }
    }
}

impl Flag {
    /// The kind of flag with its ion, without the numbers: what a summary counts rows by
    /// (`Li+ never measured`, `Mg^2+ above the largest measured`).
    pub fn kind(&self) -> String {
        match self {
            Flag::NeverMeasured { ion, .. } => format!("{ion} never measured"),
            Flag::Feed {
                ion, above, basis, ..
            } => format!(
                "{ion} {} {}",
                if *above {
                    "above the largest"
                } else {
                    "below the smallest"
                },
                if *basis == Basis::Measured {
                    "measured"
                } else {
                    "simulated"
                }
            ),
            Flag::IonicStrength { above, .. } => {
                format!("ionic strength {}", if *above { "above" } else { "below" })
            }
            Flag::Flux { .. } => "flux outside".into(),
            Flag::Temperature { .. } => "temperature outside".into(),
        }
    }
}

/// How far `x` lies outside `[lo, hi]`: `Some((ratio, above))` beyond the slack.
fn beyond(x: f64, [lo, hi]: [f64; 2]) -> Option<(f64, bool)> {
    if x > hi * (1.0 + SLACK) {
        Some((if hi > 0.0 { x / hi } else { f64::INFINITY }, true))
    } else if x < lo * (1.0 - SLACK) {
        Some((if x > 0.0 { lo / x } else { f64::INFINITY }, false))
    } else {
        None
    }
}

/// One row to judge: its present ions with their feeds, flux and temperature.
#[derive(Debug, Clone, Copy)]
pub struct RowPoint<'a> {
    /// (canonical ion name, charge number, feed mol/m3) of each present ion.
    pub ions: &'a [(&'a str, i32, f64)],
    pub flux_m_s: f64,
    pub temperature_k: f64,
}

impl Domain {
    /// The domain of some rows of one stage (`None` for no rows).
    pub fn of(samples: &Samples, rows: &[usize], stage: Stage) -> Option<Domain> {
        let range = |v: &mut dyn Iterator<Item = f64>| v.fold(None, widen);
        let composition = Composition::of(samples, rows);
        let (pretrain, measured) = match stage {
            Stage::Pretrain => (composition, None),
            Stage::Finetune => (None, composition),
        };
        Some(Domain {
            flux_m_s: range(&mut rows.iter().map(|&r| samples.flux_m_s[r]))?,
            temperature_k: range(&mut rows.iter().map(|&r| samples.temperature_k[r]))?,
            pretrain,
            measured,
        })
    }

    /// The smallest domain holding both.
    pub fn union(self, other: Domain) -> Domain {
        Domain {
            flux_m_s: union(self.flux_m_s, other.flux_m_s),
            temperature_k: union(self.temperature_k, other.temperature_k),
            pretrain: join_composition(self.pretrain, other.pretrain),
            measured: join_composition(self.measured, other.measured),
        }
    }

    /// `a ∪ b` where either may be absent.
    pub fn join(a: Option<Domain>, b: Option<Domain>) -> Option<Domain> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.union(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every way `row` lies outside the domain, ions in the order given. Compositions are
    /// judged against the measured stage where there is one (what the model was last fitted
    /// to), else against pre-training. A record without compositions flags flux and
    /// temperature only.
    pub fn flags(&self, row: RowPoint<'_>) -> Vec<Flag> {
        let mut out = Vec::new();
        let (basis, composition) = match (&self.measured, &self.pretrain) {
            (Some(m), _) => (Basis::Measured, Some(m)),
            (None, Some(p)) => (Basis::Simulated, Some(p)),
            (None, None) => (Basis::Measured, None),
        };
        if let Some(c) = composition {
            for &(ion, _, feed) in row.ions {
                match c.ion(ion).and_then(|s| s.feed_mol_m3) {
                    None => out.push(Flag::NeverMeasured {
                        ion: ion.to_string(),
                        simulated: match basis {
                            Basis::Measured => self
                                .pretrain
                                .as_ref()
                                .and_then(|p| p.ion(ion))
                                .and_then(|s| s.feed_mol_m3),
                            Basis::Simulated => None,
                        },
                    }),
                    Some(range) => {
                        if let Some((ratio, above)) = beyond(feed, range) {
                            out.push(Flag::Feed {
                                ion: ion.to_string(),
                                ratio,
                                above,
                                basis,
                            });
                        }
                    }
                }
            }
            let charges: Vec<i32> = row.ions.iter().map(|i| i.1).collect();
            let strength = ionic_strength(&charges, row.ions.iter().map(|i| i.2));
            if let Some((ratio, above)) = beyond(strength, c.ionic_strength_mol_m3) {
                out.push(Flag::IonicStrength {
                    ratio,
                    above,
                    basis,
                });
            }
        }
        if let Some((ratio, above)) = beyond(row.flux_m_s, self.flux_m_s) {
            out.push(Flag::Flux { ratio, above });
        }
        let [lo, hi] = self.temperature_k;
        // Temperatures went through text as kelvin with two decimals at most.
        if row.temperature_k > hi + 0.01 {
            out.push(Flag::Temperature {
                by: row.temperature_k - hi,
                above: true,
            });
        } else if row.temperature_k < lo - 0.01 {
            out.push(Flag::Temperature {
                by: lo - row.temperature_k,
                above: false,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        let span = |ion: &str, r: Option<[f64; 2]>| IonSpan {
            ion: ion.into(),
            feed_mol_m3: r,
            values: usize::from(r.is_some()),
        };
        Domain {
            flux_m_s: [1e-6, 1e-5],
            temperature_k: [293.15, 298.15],
            pretrain: Some(Composition {
                rows: 10,
                ionic_strength_mol_m3: [1.0, 100.0],
                ions: vec![
                    span("Li+", Some([1.0, 50.0])),
                    span("Mg^2+", Some([1.0, 50.0])),
                    span("Cl-", Some([1.0, 150.0])),
                ],
            }),
            measured: Some(Composition {
                rows: 4,
                ionic_strength_mol_m3: [10.0, 30.0],
                ions: vec![
                    span("Li+", None),
                    span("Mg^2+", Some([10.0, 10.0])),
                    span("Cl-", Some([10.0, 20.0])),
                ],
            }),
        }
    }

    fn flags(ions: &[(&str, i32, f64)], flux: f64, t: f64) -> Vec<String> {
        domain()
            .flags(RowPoint {
                ions,
                flux_m_s: flux,
                temperature_k: t,
            })
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_row_inside_has_no_flags() {
        // I = ½(4·10 + 20) = 30: at the edge, inside.
        let f = flags(&[("Mg^2+", 2, 10.0), ("Cl-", -1, 20.0)], 5e-6, 293.15);
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn every_kind_of_flag_is_raised_and_worded() {
        let f = flags(
            &[("Li+", 1, 10.0), ("Mg^2+", 2, 84.0), ("Cl-", -1, 6.0)],
            2e-5,
            310.15,
        );
        assert_eq!(
            f,
            [
                "Li+ never measured (simulated in pre-training at 1.00 to 50.0 mol/m3)",
                "Mg^2+ 8.40x above the largest measured",
                "Cl- 1.67x below the smallest measured",
                // I = ½(10 + 4·84 + 6) = 176, 5.87 times 30.
                "ionic strength 5.87x above the largest measured",
                "flux 2.00x above the largest trained",
                "temperature 12.0 K above the highest trained",
            ]
        );
    }

    #[test]
    fn without_a_measured_stage_the_simulations_are_the_basis() {
        let mut d = domain();
        d.measured = None;
        let f = d.flags(RowPoint {
            // I = ½(10 + 300) = 155.
            ions: &[("Na+", 1, 10.0), ("Cl-", -1, 300.0)],
            flux_m_s: 5e-7,
            temperature_k: 290.0,
        });
        let words: Vec<String> = f.iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            [
                "Na+ never measured",
                "Cl- 2.00x above the largest simulated",
                "ionic strength 1.55x above the largest simulated",
                "flux 2.00x below the smallest trained",
                "temperature 3.1 K below the lowest trained",
            ]
        );
        assert_eq!(f[1].kind(), "Cl- above the largest simulated");
    }

    #[test]
    fn compositions_are_measured_where_outcomes_were() {
        use ndarray::array;
        let samples = Samples {
            species: vec!["Na+".into(), "Mg^2+".into(), "Cl-".into()],
            charges: vec![1, 2, -1],
            feed_mol_m3: array![[10.0, 0.0, 10.0], [0.0, 5.0, 10.0], [20.0, 0.0, 20.0]],
            mask: array![
                [true, false, true],
                [false, true, true],
                [true, false, true]
            ],
            // Mg^2+ is in a feed but never measured; Na+ only in row 2.
            observed: array![
                [false, false, true],
                [false, false, true],
                [true, false, true]
            ],
            flux_m_s: array![1e-6, 2e-6, 3e-6],
            permeate_mol_m3: array![[f64::NAN, 0.0, 5.0], [0.0, f64::NAN, 5.0], [9.0, 0.0, 9.0]],
            permeate_sd_mol_m3: None,
            temperature_k: vec![293.15; 3],
            family: vec![None; 3],
            synthetic: vec![false; 3],
            origin: vec![0, 1, 2],
            prior_transmission: None,
            film_factor: None,
        };
        let d = Domain::of(&samples, &[0, 1, 2], Stage::Finetune).unwrap();
        let c = d.measured.as_ref().unwrap();
        assert!(d.pretrain.is_none());
        assert_eq!(c.rows, 3);
        assert_eq!(c.ion("Na+").unwrap().feed_mol_m3, Some([20.0, 20.0]));
        assert_eq!(c.ion("Mg^2+").unwrap().feed_mol_m3, None);
        assert_eq!(c.ion("Cl-").unwrap().feed_mol_m3, Some([10.0, 20.0]));
        assert_eq!(c.ion("Cl-").unwrap().values, 3);
        assert_eq!(c.ionic_strength_mol_m3, [10.0, 20.0]);
        // A union with another stage keeps both and widens ranges.
        let p = Domain::of(&samples, &[0], Stage::Pretrain).unwrap();
        let u = d.clone().union(p);
        assert_eq!(u.pretrain.as_ref().unwrap().rows, 1);
        assert_eq!(u.measured, d.measured);
        assert_eq!(u.flux_m_s, [1e-6, 3e-6]);
        let again = u.measured.clone().unwrap().union(c.clone());
        assert_eq!(again.rows, 6);
        assert_eq!(again.ion("Cl-").unwrap().values, 6);
    }
}
