//! Measured nanofiltration data: the CSV format in which users bring their own
//! measurements (and the surrogate laboratory writes its synthetic ones), and its
//! validating loader.
//!
//! The format is documented for users in `datasets/README.md` ("Measured-data format");
//! in short, one row per measurement, units in the header names, free column order:
//!
//! | column | required | content |
//! |---|---|---|
//! | `source` | yes | DOI, lab notebook id, or e.g. `ionode-lab surrogate v1` |
//! | `membrane` | yes | e.g. `NF270` |
//! | `temperature_K` | yes | 273.15 to 373.15 |
//! | `synthetic` | yes | `true` or `false` |
//! | `Jv_m_s` or `Jv_LMH` | exactly one | water flux, > 0 and <= 1e-3 m/s (3600 LMH) |
//! | `dP_bar` | no | transmembrane pressure, > 0 |
//! | `family`, `sample_id` | no | text (`family` labels leave-one-family-out splits) |
//! | `repeat` | no | non-negative integer |
//! | `feed_<ion>_mol_m3` | per ion | >= 0; 0 or empty when the ion is absent |
//! | `permeate_<ion>_mol_m3`, `rejection_<ion>` | a column for each ion in the feed; a cell empty where that ion was not measured | |
//! | `permeate_<ion>_mol_m3_sd`, `rejection_<ion>_sd` | no | absolute standard deviations |
//!
//! [`parse_csv`] reads the text of such a file (no file I/O here) and returns
//! [`MeasuredData`] or a [`LoadError`] that lists every problem: a file is never partly
//! loaded.

pub mod csv;
pub mod digitised;
mod error;
mod load;
mod schema;
#[cfg(test)]
mod tests;

pub use error::{LoadError, Problem, MAX_PROBLEMS};
pub use load::parse_csv;
pub use schema::{FIXED_COLUMNS, REQUIRED_COLUMNS};

use ionode_physics::Ion;
use serde::{Deserialize, Serialize};

/// One litre per square metre per hour (LMH) in m/s.
pub const LMH_M_S: f64 = 1.0 / 3.6e6;
/// The largest water flux accepted, m/s (3600 LMH).
pub const MAX_FLUX_M_S: f64 = 1e-3;
/// One bar in Pa.
pub const BAR_PA: f64 = 1e5;
/// The accepted temperature range, K.
pub const TEMPERATURE_RANGE_K: (f64, f64) = (273.15, 373.15);
/// The accepted rejection range.
pub const REJECTION_RANGE: (f64, f64) = (-2.0, 1.0);
/// How closely a permeate concentration and a rejection given for the same ion must
/// agree: `|R - (1 - c_p/c_feed)| <= AGREEMENT * max(|R|, c_p/c_feed)`.
pub const AGREEMENT: f64 = 1e-6;
/// The default electroneutrality tolerance, `|sum z c| / sum |z| c`.
pub const DEFAULT_ELECTRONEUTRALITY_TOLERANCE: f64 = 0.05;

/// How a file is loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Adjust this ion's feed concentration in every row so that the feed is exactly
    /// electroneutral (it is added to the ion list if the file has no column for it). A
    /// permeate given for it is kept and its rejection recomputed; a rejection given
    /// alone is kept and its permeate recomputed.
    pub balance_with: Option<String>,
    /// Largest accepted `|sum z c| / sum |z| c` of a feed (without `balance_with`).
    pub electroneutrality_tolerance: f64,
    /// Whether every present ion needs an outcome column and every row an outcome (data
    /// to train or score on), or a file may hold feeds only (data to predict).
    pub outcomes: Outcomes,
}

/// What a file must say about the permeate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcomes {
    /// Every present ion has an outcome column, every row at least one measured outcome.
    #[default]
    Required,
    /// Feeds and fluxes are enough; outcomes where given are read as usual.
    Optional,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            balance_with: None,
            electroneutrality_tolerance: DEFAULT_ELECTRONEUTRALITY_TOLERANCE,
            outcomes: Outcomes::Required,
        }
    }
}

/// A loaded, validated file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredData {
    /// The name the file was loaded under (a path, usually).
    pub source_name: String,
    /// The header's column names, in file order.
    pub columns: Vec<String>,
    /// The ions of the file (every ion named in a column, plus the balance ion): those of
    /// `IonDb::builtin()` in its order, then others in order of first appearance. Every
    /// per-ion vector of a row is indexed like this.
    pub ions: Vec<Ion>,
    pub rows: Vec<MeasuredRow>,
    /// What balancing changed, when [`LoadOptions::balance_with`] was set.
    pub balance: Option<BalanceReport>,
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredRow {
    /// 1-based line of the row in the file.
    pub line: usize,
    pub source: String,
    pub membrane: String,
    /// Mixture family (for leave-one-family-out splits).
    pub family: Option<String>,
    pub sample_id: Option<String>,
    pub repeat: Option<u32>,
    pub temperature_k: f64,
    /// Simulated or surrogate data (`true`), or a real measurement (`false`).
    pub synthetic: bool,
    /// Water flux, m/s.
    pub jv_m_s: f64,
    /// Transmembrane pressure, Pa.
    pub dp_pa: Option<f64>,
    /// Feed concentrations, mol/m3 (0 for absent ions).
    pub feed_mol_m3: Vec<f64>,
    /// Permeate concentrations, mol/m3 (given, or `(1 - R) c_feed`; 0 for absent ions,
    /// NaN for present ions that were not measured).
    pub permeate_mol_m3: Vec<f64>,
    /// Rejections `1 - c_p / c_feed` (0 for absent ions, NaN where not measured).
    pub rejection: Vec<f64>,
    /// Standard deviation of the permeate concentration, mol/m3 (given, or
    /// `sd_R * c_feed`); `None` where none was given and for absent ions.
    pub permeate_sd_mol_m3: Vec<Option<f64>>,
    /// Which ions are in the feed (feed > 0).
    pub present: Vec<bool>,
    /// Which present ions have a measured outcome. Real data is partial: a present ion
    /// whose permeate and rejection cells are empty was not measured in this row; it is
    /// still part of the feed (the model sees it) but no loss or metric counts it.
    pub measured: Vec<bool>,
    /// What the row's rejections are relative to (column `rejection_basis`; intrinsic when
    /// the file has none).
    #[serde(default)]
    pub basis: RejectionBasis,
    /// The film mass-transfer coefficient of an observed row, m/s (`k_film_m_s`): what
    /// converts a model's intrinsic rejection into the observed one ([`film_factor`]).
    #[serde(default)]
    pub k_film_m_s: Option<f64>,
}

/// What a measured rejection is relative to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionBasis {
    /// `1 - c_p / c_m`, the concentration at the membrane's surface: corrected for
    /// concentration polarisation (or measured where there is none, as in a rotating-disk
    /// cell at high speed). What every ionode model predicts.
    #[default]
    Intrinsic,
    /// `1 - c_p / c_b`, the bulk feed: what a cross-flow or stirred cell measures, with
    /// concentration polarisation in it.
    Observed,
}

impl RejectionBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionBasis::Intrinsic => "intrinsic",
            RejectionBasis::Observed => "observed",
        }
    }
}

impl MeasuredRow {
    /// The row's concentration-polarisation modulus `exp(J_v / k)` when its rejections are
    /// observed and it states a film coefficient; `None` otherwise (its rejections are then
    /// compared as they are).
    pub fn film_factor(&self) -> Option<f64> {
        match (self.basis, self.k_film_m_s) {
            (RejectionBasis::Observed, Some(k)) => Some(film_factor(self.jv_m_s, k)),
            _ => None,
        }
    }
}

/// The film model's polarisation modulus `E = exp(J_v / k)` (flux and mass-transfer
/// coefficient in m/s).
pub fn film_factor(jv_m_s: f64, k_m_s: f64) -> f64 {
    (jv_m_s / k_m_s).exp()
}

/// An ion's observed transmission `c_p / c_b` from its intrinsic one `T = c_p / c_m` by the
/// film model: with `c_m = c_p + (c_b - c_p) E` (each ion on its own, the film's
/// electromigration neglected), `c_p / c_b = T E / (1 + T (E - 1))`. `E = 1` (no
/// polarisation) leaves `T` as it is, to the bit.
pub fn observed_transmission(t_intrinsic: f64, e: f64) -> f64 {
    t_intrinsic * e / (1.0 + t_intrinsic * (e - 1.0))
}

/// The inverse of [`observed_transmission`]: `T = T_obs / (E - T_obs (E - 1))`.
pub fn intrinsic_transmission(t_observed: f64, e: f64) -> f64 {
    t_observed / (e - t_observed * (e - 1.0))
}

/// What [`LoadOptions::balance_with`] changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceReport {
    /// The balance ion (display name, e.g. `Cl-`).
    pub ion: String,
    /// Rows whose feed of the balance ion changed, in file order.
    pub adjustments: Vec<BalanceAdjustment>,
}

/// One row's change of the balance ion's feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceAdjustment {
    pub line: usize,
    pub before_mol_m3: f64,
    pub after_mol_m3: f64,
}

impl MeasuredData {
    /// The ions' display names (`Na+`, `SO4^2-`), the spelling the writer uses.
    pub fn ion_names(&self) -> Vec<String> {
        self.ions.iter().map(Ion::display_name).collect()
    }

    /// The index of an ion by canonical (`SO4^2-`) or WaterTAP-style (`SO4_2-`) name.
    pub fn ion_index(&self, name: &str) -> Option<usize> {
        let name = ionode_physics::ions::canonical_name(name);
        self.ions.iter().position(|i| i.display_name() == name)
    }

    /// (measured, present) ion outcomes over all rows: how partial the data is.
    pub fn outcome_counts(&self) -> (usize, usize) {
        let count = |v: &[bool]| v.iter().filter(|&&x| x).count();
        let measured = self.rows.iter().map(|r| count(&r.measured)).sum();
        let present = self.rows.iter().map(|r| count(&r.present)).sum();
        (measured, present)
    }

    /// Rows flagged synthetic.
    pub fn synthetic_rows(&self) -> usize {
        self.rows.iter().filter(|r| r.synthetic).count()
    }

    /// The data in the canonical form of the format (display-name ion columns, `Jv_m_s`,
    /// permeate and rejection both, permeate standard deviations; optional columns only
    /// when some row has a value). Loading it back gives the same rows, up to rounding of
    /// rejections that were given without a permeate.
    /// Rows of observed rejections without a film coefficient: they are compared with the
    /// models' intrinsic predictions as they are.
    pub fn unconverted_observed_rows(&self) -> Vec<usize> {
        self.rows
            .iter()
            .filter(|r| r.basis == RejectionBasis::Observed && r.k_film_m_s.is_none())
            .map(|r| r.line)
            .collect()
    }

    /// The one note a file with such rows gets (`None` without any).
    pub fn unconverted_note(&self) -> Option<String> {
        let lines = self.unconverted_observed_rows();
        let n = lines.len();
        (n > 0).then(|| {
            let shown: Vec<String> = lines.iter().take(5).map(ToString::to_string).collect();
            format!(
                "{}: {n} row{} of observed rejections without k_film_m_s (line{} {}{}) {} used as if intrinsic; give the film mass-transfer coefficient to have them converted",
                self.source_name,
                if n == 1 { "" } else { "s" },
                if n == 1 { "" } else { "s" },
                shown.join(", "),
                if n > 5 { ", ..." } else { "" },
                if n == 1 { "is" } else { "are" },
            )
        })
    }

    pub fn to_csv(&self) -> String {
        let any = |f: &dyn Fn(&MeasuredRow) -> bool| self.rows.iter().any(f);
        let names = self.ion_names();
        let with_family = any(&|r| r.family.is_some());
        let with_sample = any(&|r| r.sample_id.is_some());
        let with_repeat = any(&|r| r.repeat.is_some());
        let with_dp = any(&|r| r.dp_pa.is_some());
        let with_basis = any(&|r| r.basis == RejectionBasis::Observed);
        let with_k = any(&|r| r.k_film_m_s.is_some());
        let with_sd: Vec<bool> = (0..self.ions.len())
            .map(|k| any(&|r| r.permeate_sd_mol_m3[k].is_some()))
            .collect();

        let mut header: Vec<String> = vec!["source".into(), "membrane".into()];
        let optional = |on: bool, name: &str, header: &mut Vec<String>| {
            if on {
                header.push(name.into());
            }
        };
        optional(with_family, "family", &mut header);
        optional(with_sample, "sample_id", &mut header);
        optional(with_repeat, "repeat", &mut header);
        header.extend(["synthetic", "temperature_K", "Jv_m_s"].map(String::from));
        optional(with_dp, "dP_bar", &mut header);
        optional(with_basis, "rejection_basis", &mut header);
        optional(with_k, "k_film_m_s", &mut header);
        header.extend(names.iter().map(|n| format!("feed_{n}_mol_m3")));
        header.extend(names.iter().map(|n| format!("permeate_{n}_mol_m3")));
        header.extend(names.iter().map(|n| format!("rejection_{n}")));
        for (n, on) in names.iter().zip(&with_sd) {
            optional(*on, &format!("permeate_{n}_mol_m3_sd"), &mut header);
        }

        let mut out = String::new();
        csv::write_record(&mut out, &header);
        let num = |x: f64| format!("{x:?}");
        for r in &self.rows {
            let mut f: Vec<String> = vec![r.source.clone(), r.membrane.clone()];
            if with_family {
                f.push(r.family.clone().unwrap_or_default());
            }
            if with_sample {
                f.push(r.sample_id.clone().unwrap_or_default());
            }
            if with_repeat {
                f.push(r.repeat.map(|x| x.to_string()).unwrap_or_default());
            }
            f.extend([r.synthetic.to_string(), num(r.temperature_k), num(r.jv_m_s)]);
            if with_dp {
                f.push(r.dp_pa.map(|p| num(p / BAR_PA)).unwrap_or_default());
            }
            if with_basis {
                f.push(r.basis.as_str().to_string());
            }
            if with_k {
                f.push(r.k_film_m_s.map(num).unwrap_or_default());
            }
            f.extend(r.feed_mol_m3.iter().map(|&c| num(c)));
            let outcome = |v: &[f64]| -> Vec<String> {
                v.iter()
                    .zip(&r.measured)
                    .map(|(&x, &m)| if m { num(x) } else { String::new() })
                    .collect()
            };
            f.extend(outcome(&r.permeate_mol_m3));
            f.extend(outcome(&r.rejection));
            for (sd, on) in r.permeate_sd_mol_m3.iter().zip(&with_sd) {
                if *on {
                    f.push(sd.map(num).unwrap_or_default());
                }
            }
            csv::write_record(&mut out, &f);
        }
        out
    }
}
