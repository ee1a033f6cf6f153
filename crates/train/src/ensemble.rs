//! Ensembles and their prediction intervals.
//!
//! An ensemble is N members of one run config, each trained from its own seed (and,
//! optionally, members 1..N on their own bootstrap resamples of the training rows). It predicts the
//! members' mean transmission `T = c_p / c_f` of every ion, and a central interval
//! `mean ± k (s + s₀)`, where `s` is the members' standard deviation at that point (large
//! where they disagree: typically where the model extrapolates) and `k`, `s₀` come from
//! one of two rules ([`IntervalMethod`]):
//!
//! - `spread`: the members as draws of the model: `k` is Student's t quantile of the level
//!   with N - 1 degrees of freedom times `sqrt(1 + 1/N)` (the prediction interval of a new
//!   draw), `s₀ = 0`. It says how much the members disagree, not how wrong they are
//!   together; on a held-out salt family that is far too narrow.
//! - `conformal` (default): split-conformal calibration of the normalised residual
//!   `|y - mean| / (s + s₀)` on the run's validation values (Papadopoulos et al. 2002; Lei
//!   et al., JASA 113 (2018) 1094, section 5.2 for the normalised score): `k` is the
//!   `⌈(n + 1) level⌉`-th smallest of the n scores, `s₀` the median absolute validation
//!   residual (at least [`MIN_FLOOR`]). The floor sets the width where the members agree,
//!   and keeps the score bounded where their spread says nothing about the error (with
//!   `s₀` the median spread instead, one confident miss on the validation rows made the
//!   intervals of a held-out family ten rejection units wide); the spread then widens
//!   the interval where the members disagree.
//!   With validation rows drawn like the test rows (a random split), the interval covers
//!   a new value with probability at least the level; with out-of-family validation
//!   (`validate_on = "each_family"`), it is calibrated on errors made on unseen families,
//!   which is what a held-out family's interval needs. Without validation values the rule
//!   falls back to `spread`, and the fit says so.
//!
//! Intervals are computed in transmission and clipped to `0 <= T <= 3` (a rejection above
//! 1 is impossible, and -2 is the lowest the measured-data format accepts); a rejection
//! interval is `[1 - T_hi, 1 - T_lo]`.

use crate::data::Samples;
use crate::error::TrainError;
use ndarray::{Array2, Zip};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The most members an ensemble may have (each costs one run).
pub const MAX_MEMBERS: usize = 64;

/// The smallest conformal floor `s₀`, in transmission (0.1 % of rejection).
pub const MIN_FLOOR: f64 = 1e-3;

/// `[ensemble]` of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleConfig {
    /// Members, 2 to [`MAX_MEMBERS`]. Member 0 is the run's own seed; member m > 0 derives
    /// its seeds (model, batches, calibration starts) from it.
    pub members: usize,
    /// Train each member but the first on a bootstrap resample of the training rows (drawn
    /// with replacement, as many as there are), so that the members also differ by the
    /// data; member 0 is the run itself, on every training row.
    #[serde(default)]
    pub bootstrap: bool,
    /// Central interval level, in (0, 1).
    #[serde(default = "default_level")]
    pub level: f64,
    #[serde(default)]
    pub interval: IntervalMethod,
}

fn default_level() -> f64 {
    0.9
}

/// How an ensemble's spread becomes an interval (module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    Spread,
    #[default]
    Conformal,
}

impl IntervalMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            IntervalMethod::Spread => "spread",
            IntervalMethod::Conformal => "conformal",
        }
    }
}

impl EnsembleConfig {
    /// Checks every field: all problems, as (field, value, what would be valid).
    pub fn problems(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        if !(2..=MAX_MEMBERS).contains(&self.members) {
            out.push((
                "ensemble.members".into(),
                self.members.to_string(),
                format!("an integer from 2 to {MAX_MEMBERS} (leave [ensemble] out for one model)"),
            ));
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            out.push((
                "ensemble.level".into(),
                self.level.to_string(),
                "a level strictly between 0 and 1, e.g. 0.9".into(),
            ));
        }
        out
    }
}

/// The members' mean and standard deviation of every transmission `[rows, slots]` (0
/// where an ion is absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    pub mean: Array2<f64>,
    pub sd: Array2<f64>,
}

impl Spread {
    /// Of the members' permeates `[rows, slots]` for the feeds of `samples`; a NaN member
    /// value (a row DSPM-DE could not solve) makes the row's mean NaN.
    pub fn of(members: &[Array2<f64>], samples: &Samples) -> Result<Spread, TrainError> {
        let dim = samples.feed_mol_m3.dim();
        if members.len() < 2 || members.iter().any(|m| m.dim() != dim) {
            return Err(TrainError::shape(
                "ensemble spread",
                format!(
                    "{} members of shapes {:?} for samples of {dim:?}",
                    members.len(),
                    members.iter().map(Array2::dim).collect::<Vec<_>>()
                ),
            ));
        }
        let n = members.len() as f64;
        let t = |m: &Array2<f64>| {
            let mut t = m.clone();
            Zip::from(&mut t)
                .and(&samples.feed_mol_m3)
                .for_each(|t, &f| *t = if f > 0.0 { *t / f } else { 0.0 });
            t
        };
        let ts: Vec<Array2<f64>> = members.iter().map(t).collect();
        // Fixed order sums: the same bits however the members were computed.
        let mut mean = Array2::zeros(dim);
        for t in &ts {
            mean += t;
        }
        mean /= n;
        let mut var: Array2<f64> = Array2::zeros(dim);
        for t in &ts {
            Zip::from(&mut var)
                .and(t)
                .and(&mean)
                .for_each(|v, &x, &m| *v += (x - m) * (x - m));
        }
        let sd = var.mapv(|v| (v / (n - 1.0)).sqrt());
        Ok(Spread { mean, sd })
    }

    /// The mean as permeates, mol/m3.
    pub fn mean_permeate(&self, samples: &Samples) -> Array2<f64> {
        &self.mean * &samples.feed_mol_m3
    }
}

/// How a trained ensemble widens its spread into an interval: `mean ± scale (sd + floor)`
/// in transmission, with the ion's own scale and floor where its validation values
/// sufficed, else the pooled ones. Kept with the ensemble, so that predictions on new
/// feeds use the same rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalFit {
    pub level: f64,
    /// The rule that set the scales; `spread` also when `conformal` was asked for but the
    /// run had no validation values.
    pub method: IntervalMethod,
    /// Over every ion (and for an ion without a scale of its own).
    pub pooled: Scale,
    /// Per ion with enough validation values (`level (n + 1) <= n`), by canonical name.
    #[serde(default)]
    pub ions: Vec<IonScale>,
}

/// One conformal scale: half-width `scale (sd + floor)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    pub scale: f64,
    pub floor: f64,
    /// Validation values it was calibrated on (0 for `spread`).
    pub values: usize,
}

/// An ion's own scale (Mondrian conformal prediction, by ion).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IonScale {
    pub ion: String,
    #[serde(flatten)]
    pub scale: Scale,
}

/// The split-conformal scale of some (|residual|, sd) pairs (at least one); its `scale`
/// is infinite when there are too few for the level.
fn conformal_scale(level: f64, pairs: &[(f64, f64)]) -> Scale {
    let n = pairs.len();
    let residuals: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let floor = median(&residuals).max(MIN_FLOOR);
    let mut scores: Vec<f64> = pairs.iter().map(|(e, s)| e / (s + floor)).collect();
    scores.sort_by(f64::total_cmp);
    let k = (level * (n as f64 + 1.0)).ceil() as usize;
    Scale {
        scale: if k <= n {
            scores[k.max(1) - 1]
        } else {
            f64::INFINITY
        },
        floor,
        values: n,
    }
}

/// The median of some finite values (at least one).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The largest transmission an interval reaches: a permeate three times the feed, the
/// lowest rejection (-2) the measured-data format accepts.
pub const MAX_TRANSMISSION: f64 = 3.0;

/// The lower and upper transmissions of every point `[rows, slots]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    pub lower: Array2<f64>,
    pub upper: Array2<f64>,
}

impl IntervalFit {
    /// The `spread` rule for `members` members.
    pub fn spread(level: f64, members: usize) -> IntervalFit {
        let n = members as f64;
        let t = StudentsT::new(0.0, 1.0, n - 1.0)
            .expect("members >= 2: a valid Student t")
            .inverse_cdf(0.5 + level / 2.0);
        IntervalFit {
            level,
            method: IntervalMethod::Spread,
            pooled: Scale {
                scale: t * (1.0 + 1.0 / n).sqrt(),
                floor: 0.0,
                values: 0,
            },
            ions: Vec::new(),
        }
    }

    /// The `conformal` rule calibrated on the measured values of `rows` (their predictions
    /// in `spread`): one pooled scale, and one per ion that has at least the
    /// `⌈level (n + 1)⌉ <= n` values a finite scale needs. `None` without any value. With
    /// too few values overall the pooled interval is unbounded (the honest answer).
    pub fn conformal(
        level: f64,
        spread: &Spread,
        samples: &Samples,
        rows: &[usize],
    ) -> Option<IntervalFit> {
        let mut per_ion: Vec<Vec<(f64, f64)>> = vec![Vec::new(); samples.slots()];
        for &r in rows {
            for (s, pairs) in per_ion.iter_mut().enumerate() {
                if !samples.observed[[r, s]] {
                    continue;
                }
                let y = samples.permeate_mol_m3[[r, s]] / samples.feed_mol_m3[[r, s]];
                let (m, sd) = (spread.mean[[r, s]], spread.sd[[r, s]]);
                if m.is_finite() && sd.is_finite() && y.is_finite() {
                    pairs.push(((y - m).abs(), sd));
                }
            }
        }
        let all: Vec<(f64, f64)> = per_ion.iter().flatten().copied().collect();
        if all.is_empty() {
            return None;
        }
        let ions = samples
            .species
            .iter()
            .zip(&per_ion)
            .filter(|(_, pairs)| !pairs.is_empty())
            .map(|(ion, pairs)| IonScale {
                ion: ion.clone(),
                scale: conformal_scale(level, pairs),
            })
            .filter(|i| i.scale.scale.is_finite())
            .collect();
        Some(IntervalFit {
            level,
            method: IntervalMethod::Conformal,
            pooled: conformal_scale(level, &all),
            ions,
        })
    }

    /// The scale of an ion (its own, else the pooled one).
    pub fn scale_of(&self, ion: &str) -> Scale {
        self.ions
            .iter()
            .find(|i| i.ion == ion)
            .map_or(self.pooled, |i| i.scale)
    }

    /// The interval of every point of `samples` (transmissions, clipped to
    /// `[0, MAX_TRANSMISSION]`).
    pub fn bounds(&self, spread: &Spread, samples: &Samples) -> Bounds {
        let mut half = spread.sd.clone();
        for (s, mut column) in half.columns_mut().into_iter().enumerate() {
            let Scale { scale, floor, .. } = self.scale_of(&samples.species[s]);
            column.mapv_inplace(|sd| scale * (sd + floor));
        }
        Bounds {
            lower: (&spread.mean - &half).mapv(|t| t.clamp(0.0, MAX_TRANSMISSION)),
            upper: (&spread.mean + &half).mapv(|t| t.clamp(0.0, MAX_TRANSMISSION)),
        }
    }
}

/// How often the measured values of `rows` fall inside their intervals, and the mean
/// width of those intervals in rejection: `(coverage, mean width, values)`; `None`
/// without any measured value.
pub fn coverage(samples: &Samples, rows: &[usize], bounds: &Bounds) -> Option<(f64, f64, usize)> {
    let (mut inside, mut width, mut n) = (0usize, 0.0, 0usize);
    for &r in rows {
        for s in 0..samples.slots() {
            if !samples.observed[[r, s]] {
                continue;
            }
            let y = samples.permeate_mol_m3[[r, s]] / samples.feed_mol_m3[[r, s]];
            let (lo, hi) = (bounds.lower[[r, s]], bounds.upper[[r, s]]);
            // A row DSPM-DE could not solve has no interval.
            if lo.is_nan() || hi.is_nan() {
                continue;
            }
            n += 1;
            inside += usize::from(lo <= y && y <= hi);
            width += hi - lo;
        }
    }
    (n > 0).then(|| (inside as f64 / n as f64, width / n as f64, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ionode_random::Rng;
    use ndarray::Array2;

    /// `n` rows of one ion at feed 1, measured transmissions `y`.
    fn samples(y: &[f64]) -> Samples {
        let n = y.len();
        Samples {
            species: vec!["Na+".into()],
            charges: vec![1],
            feed_mol_m3: Array2::ones((n, 1)),
            mask: Array2::from_elem((n, 1), true),
            observed: Array2::from_elem((n, 1), true),
            flux_m_s: ndarray::Array1::from_elem(n, 1e-5),
            permeate_mol_m3: Array2::from_shape_vec((n, 1), y.to_vec()).unwrap(),
            permeate_sd_mol_m3: None,
            temperature_k: vec![298.15; n],
            family: vec![None; n],
            synthetic: vec![true; n],
            origin: (0..n).collect(),
            prior_transmission: None,
            film_factor: None,
        }
    }

    #[test]
    fn the_spread_is_the_members_mean_and_sample_sd() {
        let s = samples(&[0.5, 0.5]);
        let members = [
            Array2::from_elem((2, 1), 0.2),
            Array2::from_elem((2, 1), 0.4),
            Array2::from_elem((2, 1), 0.6),
        ];
        let sp = Spread::of(&members, &s).unwrap();
        assert!((sp.mean[[0, 0]] - 0.4).abs() < 1e-15);
        assert!((sp.sd[[0, 0]] - 0.2).abs() < 1e-15);
        assert!(Spread::of(&members[..1], &s).is_err());
    }

    #[test]
    fn the_spread_rule_is_students_prediction_interval() {
        // t(0.95, 4) = 2.131847 (tables), times sqrt(1 + 1/5).
        let fit = IntervalFit::spread(0.9, 5);
        assert!(
            (fit.pooled.scale - 2.131_847 * 1.2f64.sqrt()).abs() < 1e-5,
            "{fit:?}"
        );
        assert_eq!(fit.scale_of("Na+"), fit.pooled);
    }

    /// Exchangeable calibration and test values: the conformal interval covers a new value
    /// with probability >= level (and < level + 1/(n+1)), whatever the spread.
    #[test]
    fn conformal_coverage_is_nominal_on_exchangeable_data() {
        let mut rng = Rng::new(7);
        let (n_cal, n_test, trials) = (99, 200, 200);
        let mut covered = 0.0;
        for _ in 0..trials {
            // Truth y = m + e, e ~ N(0, σ_i²) with σ_i known to the members up to a
            // factor: members' sd = σ_i / 3.
            let rows = n_cal + n_test;
            let sig: Vec<f64> = (0..rows).map(|_| 0.01 + 0.1 * rng.uniform()).collect();
            let y: Vec<f64> = sig.iter().map(|s| 0.5 + s * rng.normal()).collect();
            let s = samples(&y);
            let spread = Spread {
                mean: Array2::from_elem((rows, 1), 0.5),
                sd: Array2::from_shape_vec((rows, 1), sig.iter().map(|s| s / 3.0).collect())
                    .unwrap(),
            };
            let cal: Vec<usize> = (0..n_cal).collect();
            let test: Vec<usize> = (n_cal..rows).collect();
            let fit = IntervalFit::conformal(0.9, &spread, &s, &cal).unwrap();
            assert_eq!(fit.pooled.values, n_cal);
            let (c, _, n) = coverage(&s, &test, &fit.bounds(&spread, &s)).unwrap();
            assert_eq!(n, n_test);
            covered += c;
        }
        let mean = covered / trials as f64;
        // Theory: E[coverage] = ceil(0.9 · 100) / 100 = 0.90; the average of 200 trials
        // of 200 values has a standard error of about 0.0015.
        assert!((mean - 0.90).abs() < 0.008, "mean coverage {mean}");
    }

    #[test]
    fn intervals_widen_where_members_disagree_and_never_reach_negative_transmission() {
        let s = samples(&[0.1, 0.1]);
        let spread = Spread {
            mean: ndarray::array![[0.1], [0.1]],
            sd: ndarray::array![[0.01], [0.2]],
        };
        let fit = IntervalFit {
            level: 0.9,
            method: IntervalMethod::Conformal,
            pooled: Scale {
                scale: 2.0,
                floor: 0.01,
                values: 10,
            },
            ions: Vec::new(),
        };
        let b = fit.bounds(&spread, &s);
        assert!((b.upper[[0, 0]] - 0.14).abs() < 1e-15);
        assert!((b.lower[[0, 0]] - 0.06).abs() < 1e-15);
        assert_eq!(b.lower[[1, 0]], 0.0);
        assert!((b.upper[[1, 0]] - 0.52).abs() < 1e-15);
        // Both values (0.1) are inside; mean width (0.08 + 0.52) / 2.
        let (c, w, n) = coverage(&s, &[0, 1], &b).unwrap();
        assert_eq!((c, n), (1.0, 2));
        assert!((w - 0.30).abs() < 1e-12);
    }

    #[test]
    fn too_few_calibration_values_give_an_unbounded_interval() {
        // 0.9 (n + 1) > n for n < 9.
        let s = samples(&[0.5; 5]);
        let spread = Spread {
            mean: Array2::from_elem((5, 1), 0.4),
            sd: Array2::from_elem((5, 1), 0.0),
        };
        let fit = IntervalFit::conformal(0.9, &spread, &s, &[0, 1, 2, 3, 4]).unwrap();
        assert_eq!(fit.pooled.scale, f64::INFINITY);
        assert!(
            (fit.pooled.floor - 0.1).abs() < 1e-15,
            "median residual: {fit:?}"
        );
        // No ion has a finite scale of its own; the unbounded interval is clipped to the
        // physical range.
        assert!(fit.ions.is_empty());
        let b = fit.bounds(&spread, &s);
        assert_eq!((b.lower[[0, 0]], b.upper[[0, 0]]), (0.0, MAX_TRANSMISSION));
        assert!(IntervalFit::conformal(0.9, &spread, &s, &[]).is_none());
    }

    /// Each ion is calibrated on its own errors (Mondrian by ion): an ion the model gets
    /// wrong by 0.3 gets a wider interval than one it gets wrong by 0.01, and an ion without
    /// validation values takes the pooled scale.
    #[test]
    fn each_ion_with_enough_values_has_its_own_scale() {
        let rows = 19;
        let mut s = samples(&vec![0.5; rows]);
        s.species = vec!["Na+".into(), "Cl-".into(), "Li+".into()];
        s.charges = vec![1, -1, 1];
        s.feed_mol_m3 = Array2::ones((rows, 3));
        s.mask = Array2::from_elem((rows, 3), true);
        s.observed = Array2::from_shape_fn((rows, 3), |(_, k)| k < 2);
        // Residuals: Na+ 0.01 · (1..=19)/19, Cl- 0.3 · (1..=19)/19.
        s.permeate_mol_m3 = Array2::from_shape_fn((rows, 3), |(r, k)| {
            let e = (r + 1) as f64 / rows as f64;
            0.5 + [0.01 * e, 0.3 * e, 0.0][k]
        });
        let spread = Spread {
            mean: Array2::from_elem((rows, 3), 0.5),
            sd: Array2::zeros((rows, 3)),
        };
        let all: Vec<usize> = (0..rows).collect();
        let fit = IntervalFit::conformal(0.9, &spread, &s, &all).unwrap();
        let b = fit.bounds(&spread, &s);
        let width = |k: usize| b.upper[[0, k]] - b.lower[[0, k]];
        // k = ⌈0.9 · 20⌉ = 18: the 18th smallest residual of each ion.
        assert!(
            (width(0) - 2.0 * 0.01 * 18.0 / 19.0).abs() < 1e-12,
            "{fit:?}"
        );
        assert!(
            (width(1) - 2.0 * 0.3 * 18.0 / 19.0).abs() < 1e-12,
            "{fit:?}"
        );
        assert_eq!(fit.ions.len(), 2);
        assert_eq!(fit.scale_of("Li+"), fit.pooled);
        assert_eq!(fit.pooled.values, 2 * rows);
        // Every calibration value is inside its own ion's interval but the two largest.
        let (c, _, n) = coverage(&s, &all, &b).unwrap();
        assert_eq!(n, 38);
        assert!((c - 36.0 / 38.0).abs() < 1e-12, "{c}");
    }

    #[test]
    fn bad_configs_name_every_problem() {
        let c = EnsembleConfig {
            members: 1,
            bootstrap: false,
            level: 1.0,
            interval: IntervalMethod::Conformal,
        };
        let p = c.problems();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0, "ensemble.members");
        assert_eq!(p[1].0, "ensemble.level");
    }
}
