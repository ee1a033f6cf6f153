//! The paper's metrics (MODEL.md section 4): MAE and RMSE of rejection per ion and
//! overall, R^2 of rejection, and the electroneutrality residual of the predictions.
//!
//! Rejections are compared, not concentrations, because they are scale-free: a 1 mM and a
//! 100 mM feed weigh the same, as in the paper's tables. Only present ions count (absent
//! slots carry no information). Undefined values (an ion never present, a constant target)
//! are `None`, never NaN, so a `Metrics` always serialises to valid JSON.

use crate::data::{rejection_of, Samples};
use crate::error::{Result, TrainError};
use crate::split::Split;
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// How far a predicted permeate concentration may lie from anything physical before the
/// prediction counts as impossible: its magnitude may not exceed this many times the
/// feed's equivalent concentration `c_scale = sum |z| c_f / 2`. A barely trained model can
/// be far off (a trace ion's rejection of -9 is a bad prediction, not a divergence), but
/// a permeate a thousand times more concentrated than the whole feed only comes from
/// parameters that have blown up, and its metrics would be meaningless.
pub const PLAUSIBLE_PERMEATE_FACTOR: f64 = 1e3;

/// Why `predicted` (one row per row of `samples`) is physically impossible, if it is: the
/// first non-finite value or present ion's permeate beyond [`PLAUSIBLE_PERMEATE_FACTOR`]
/// times its feed's `c_scale`, and how many such entries there are.
pub fn implausible(samples: &Samples, predicted: ArrayView2<f64>) -> Option<String> {
    let mut first = None;
    let mut count = 0usize;
    for (r, row) in predicted.outer_iter().enumerate() {
        let c_scale: f64 = 0.5
            * (0..samples.slots())
                .filter(|&s| samples.mask[[r, s]])
                .map(|s| f64::from(samples.charges[s].abs()) * samples.feed_mol_m3[[r, s]])
                .sum::<f64>();
        for (s, &p) in row.iter().enumerate() {
            if samples.mask[[r, s]]
                && !(p.is_finite() && p.abs() <= PLAUSIBLE_PERMEATE_FACTOR * c_scale)
            {
                count += 1;
                first.get_or_insert((r, s, p, c_scale));
            }
        }
    }
    first.map(|(r, s, p, c_scale)| {
        format!(
            "{count} predicted permeate concentration(s) are physically impossible, e.g. {p:.4e} mol/m3 \
             of {} in row {r}, whose feed's equivalent concentration is {c_scale:.4e} mol/m3 \
             (at most {PLAUSIBLE_PERMEATE_FACTOR} times that is accepted)",
            samples.species[s]
        )
    })
}

/// Errors of one ion's rejection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IonMetrics {
    pub species: String,
    /// Rows in which the ion's outcome was measured (present and observed).
    pub n: usize,
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    pub r2: Option<f64>,
}

/// Metrics of one set of predictions (one split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Rows evaluated.
    pub n_samples: usize,
    /// (row, observed ion) pairs evaluated.
    pub n_values: usize,
    /// Per slot, in slot order.
    pub per_ion: Vec<IonMetrics>,
    /// Over all present (row, ion) pairs.
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    /// `1 - SS_res / SS_tot` of rejection over all present pairs.
    pub r2: Option<f64>,
    /// Mean and max over rows of `|sum_i z_i c_p,i| / c_scale` of the *predicted* permeate,
    /// `c_scale = sum_i |z_i| c_f,i / 2` (present ions).
    pub electroneutrality_mean: Option<f64>,
    pub electroneutrality_max: Option<f64>,
    /// An ensemble's: the share of measured values inside their prediction interval
    /// (`crate::ensemble`); `None` for one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// An ensemble's: the mean width of those intervals, in rejection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_width: Option<f64>,
}

/// Metrics of the train, validation and test parts of a run (a part may be empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    pub train: Option<Metrics>,
    pub validation: Option<Metrics>,
    pub test: Option<Metrics>,
}

impl SplitMetrics {
    /// Metrics of each part of `split`; `predicted` has one row per row of `samples`.
    /// An empty part has `None`.
    pub fn compute(samples: &Samples, split: &Split, predicted: ArrayView2<f64>) -> Result<Self> {
        if predicted.dim() != samples.feed_mol_m3.dim() {
            return Err(TrainError::shape(
                "split metrics",
                format!(
                    "predicted {:?} for samples {:?}",
                    predicted.dim(),
                    samples.feed_mol_m3.dim()
                ),
            ));
        }
        let part = |rows: &[usize]| -> Result<Option<Metrics>> {
            if rows.is_empty() {
                return Ok(None);
            }
            let sub = samples.subset(rows);
            let pred = predicted.select(Axis(0), rows);
            Metrics::of(&sub, pred.view()).map(Some)
        };
        Ok(SplitMetrics {
            train: part(&split.train)?,
            validation: part(&split.validation)?,
            test: part(&split.test)?,
        })
    }
}

/// Running sums for MAE, RMSE and R^2.
#[derive(Default)]
struct Acc {
    n: usize,
    abs: f64,
    sq: f64,
    sum_t: f64,
    sum_t2: f64,
}

impl Acc {
    fn add(&mut self, target: f64, pred: f64) {
        let e = pred - target;
        self.n += 1;
        self.abs += e.abs();
        self.sq += e * e;
        self.sum_t += target;
        self.sum_t2 += target * target;
    }
    fn mae(&self) -> Option<f64> {
        (self.n > 0).then(|| self.abs / self.n as f64)
    }
    fn rmse(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.sq / self.n as f64).sqrt())
    }
    fn r2(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let mean = self.sum_t / self.n as f64;
        let ss_tot = (self.sum_t2 - self.n as f64 * mean * mean).max(0.0);
        // A constant target has no variance to explain.
        (ss_tot > 1e-12 * self.n as f64).then(|| 1.0 - self.sq / ss_tot)
    }
}

impl Metrics {
    /// Metrics of `predicted` permeate concentrations (`[N, S]`, rows as in `samples`)
    /// against the samples' permeate.
    pub fn of(samples: &Samples, predicted: ArrayView2<f64>) -> Result<Metrics> {
        Metrics::compute(
            &samples.species,
            &samples.charges,
            samples.feed_mol_m3.view(),
            samples.mask.view(),
            samples.observed.view(),
            samples.permeate_mol_m3.view(),
            predicted,
        )
    }

    /// Metrics from plain arrays (all `[N, S]`, concentrations in mol/m3): the errors of
    /// the `observed` (measured) entries, the electroneutrality of the predicted permeate
    /// over every present (`mask`) ion.
    pub fn compute(
        species: &[String],
        charges: &[i32],
        feed: ArrayView2<f64>,
        mask: ArrayView2<bool>,
        observed: ArrayView2<bool>,
        target: ArrayView2<f64>,
        predicted: ArrayView2<f64>,
    ) -> Result<Metrics> {
        let dim = feed.dim();
        if mask.dim() != dim
            || observed.dim() != dim
            || target.dim() != dim
            || predicted.dim() != dim
            || species.len() != dim.1
            || charges.len() != dim.1
        {
            return Err(TrainError::shape(
                "metrics",
                format!(
                    "feed {:?}, mask {:?}, target {:?}, predicted {:?}, {} species, {} charges",
                    dim,
                    mask.dim(),
                    target.dim(),
                    predicted.dim(),
                    species.len(),
                    charges.len()
                ),
            ));
        }
        if let Some(((r, s), v)) = feed
            .indexed_iter()
            .find(|(ix, v)| mask[*ix] && !(**v > 0.0 && v.is_finite()))
        {
            return Err(TrainError::invalid(
                format!("feed of {} in row {r}", species[s]),
                v,
                "a finite concentration > 0 for a present ion",
            ));
        }
        if let Some(((r, s), _)) = observed.indexed_iter().find(|(ix, o)| **o && !mask[*ix]) {
            return Err(TrainError::invalid(
                format!("observed outcome of {} in row {r}", species[s]),
                "an absent ion",
                "outcomes only for ions in the feed",
            ));
        }
        if let Some(((r, s), v)) = target
            .indexed_iter()
            .find(|(ix, v)| observed[*ix] && !v.is_finite())
        {
            return Err(TrainError::invalid(
                format!("target permeate of {} in row {r}", species[s]),
                v,
                "a finite concentration",
            ));
        }
        if let Some(((r, s), v)) = predicted
            .indexed_iter()
            .find(|(ix, v)| mask[*ix] && !v.is_finite())
        {
            return Err(TrainError::invalid(
                format!("predicted permeate of {} in row {r}", species[s]),
                v,
                "a finite concentration",
            ));
        }
        let (feed, mask, observed) = (feed.to_owned(), mask.to_owned(), observed.to_owned());
        let r_t = rejection_of(&feed, &observed, &target.to_owned());
        let r_p = rejection_of(&feed, &observed, &predicted.to_owned());
        let mut total = Acc::default();
        let mut per: Vec<Acc> = species.iter().map(|_| Acc::default()).collect();
        for ((ix, &m), (&t, &p)) in observed.indexed_iter().zip(r_t.iter().zip(r_p.iter())) {
            if m {
                total.add(t, p);
                per[ix.1].add(t, p);
            }
        }
        let en = electroneutrality_residual(charges, &feed, &mask, predicted);
        let n_rows = en.len();
        Ok(Metrics {
            n_samples: n_rows,
            n_values: total.n,
            per_ion: species
                .iter()
                .zip(&per)
                .map(|(s, a)| IonMetrics {
                    species: s.clone(),
                    n: a.n,
                    mae: a.mae(),
                    rmse: a.rmse(),
                    r2: a.r2(),
                })
                .collect(),
            mae: total.mae(),
            rmse: total.rmse(),
            r2: total.r2(),
            electroneutrality_mean: (n_rows > 0).then(|| en.iter().sum::<f64>() / n_rows as f64),
            electroneutrality_max: en.iter().copied().reduce(f64::max),
            coverage: None,
            interval_width: None,
        })
    }
}

/// Per row, `|sum_i z_i c_p,i| / c_scale` over present ions, `c_scale = sum_i |z_i| c_f,i / 2`
/// (the model's state scale, MODEL.md section 2): 0 for a neutral permeate.
pub fn electroneutrality_residual(
    charges: &[i32],
    feed: &Array2<f64>,
    mask: &Array2<bool>,
    permeate: ArrayView2<f64>,
) -> Vec<f64> {
    (0..feed.nrows())
        .map(|r| {
            let (mut q, mut scale) = (0.0, 0.0);
            for (s, &z) in charges.iter().enumerate() {
                if mask[[r, s]] {
                    q += z as f64 * permeate[[r, s]];
                    scale += (z as f64).abs() * feed[[r, s]] / 2.0;
                }
            }
            q.abs() / scale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn setup() -> (Vec<String>, Vec<i32>, Array2<f64>, Array2<bool>) {
        let species = vec!["Na+".to_string(), "Mg^2+".into(), "Cl-".into()];
        let charges = vec![1, 2, -1];
        // Row 0: NaCl 10/10; row 1: MgCl2 10/20; row 2: NaCl 20/20.
        let feed = array![[10.0, 0.0, 10.0], [0.0, 10.0, 20.0], [20.0, 0.0, 20.0]];
        let mask = feed.mapv(|c| c > 0.0);
        (species, charges, feed, mask)
    }

    #[test]
    fn hand_computed_values() {
        let (species, charges, feed, mask) = setup();
        // Target rejections: row 0 Na 0.5 Cl 0.5; row 1 Mg 0.9 Cl 0.9; row 2 Na 0.2 Cl 0.2.
        let target = array![[5.0, 0.0, 5.0], [0.0, 1.0, 2.0], [16.0, 0.0, 16.0]];
        // Predicted rejections: row 0 Na 0.6 Cl 0.5; row 1 Mg 0.8 Cl 0.9; row 2 Na 0.2 Cl 0.4.
        let pred = array![[4.0, 0.0, 5.0], [0.0, 2.0, 2.0], [16.0, 0.0, 12.0]];
        let m = Metrics::compute(
            &species,
            &charges,
            feed.view(),
            mask.view(),
            mask.view(),
            target.view(),
            pred.view(),
        )
        .unwrap();
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert_eq!((m.n_samples, m.n_values), (3, 6));
        // Errors: Na 0.1, 0; Mg 0.1; Cl 0, 0, 0.2.
        assert!(close(m.per_ion[0].mae, 0.05));
        assert!(close(m.per_ion[0].rmse, (0.01f64 / 2.0).sqrt()));
        assert!(close(m.per_ion[1].mae, 0.1));
        assert_eq!(m.per_ion[1].r2, None, "one value: undefined");
        assert!(close(m.per_ion[2].mae, 0.2 / 3.0));
        assert!(close(m.mae, 0.4 / 6.0));
        assert!(close(m.rmse, (0.06f64 / 6.0).sqrt()));
        // Targets 0.5 0.5 0.9 0.9 0.2 0.2: mean 0.5333.., SS_tot = 0.49333..
        let mean = 3.2 / 6.0;
        let ss_tot: f64 = [0.5, 0.5, 0.9, 0.9, 0.2, 0.2]
            .iter()
            .map(|t: &f64| (t - mean).powi(2))
            .sum();
        assert!(close(m.r2, 1.0 - 0.06 / ss_tot));
        // Electroneutrality: row 0 |4 - 5| / 10 = 0.1; row 1 |4 - 2| / 20 = 0.1;
        // row 2 |16 - 12| / 20 = 0.2.
        assert!(close(m.electroneutrality_mean, 0.4 / 3.0));
        assert!(close(m.electroneutrality_max, 0.2));
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"r2\":null"));
    }

    #[test]
    fn split_metrics_score_each_part() {
        let (species, charges, feed, mask) = setup();
        let target = array![[5.0, 0.0, 5.0], [0.0, 1.0, 2.0], [16.0, 0.0, 16.0]];
        let pred = array![[4.0, 0.0, 5.0], [0.0, 2.0, 2.0], [16.0, 0.0, 12.0]];
        let n = feed.nrows();
        let samples = Samples {
            species,
            charges,
            feed_mol_m3: feed,
            observed: mask.clone(),
            mask,
            flux_m_s: ndarray::Array1::from_elem(n, 1e-5),
            permeate_mol_m3: target,
            permeate_sd_mol_m3: None,
            temperature_k: vec![298.15; n],
            family: vec![None; n],
            synthetic: vec![true; n],
            origin: (0..n).collect(),
            prior_transmission: None,
            film_factor: None,
        };
        let split = Split {
            train: vec![0, 2],
            validation: vec![],
            test: vec![1],
        };
        let m = SplitMetrics::compute(&samples, &split, pred.view()).unwrap();
        assert!(m.validation.is_none());
        let train = m.train.unwrap();
        assert_eq!(train.n_values, 4);
        assert!((train.mae.unwrap() - 0.3 / 4.0).abs() < 1e-12);
        let test = m.test.unwrap();
        assert!((test.mae.unwrap() - 0.05).abs() < 1e-12);
        assert!((test.electroneutrality_max.unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn unmeasured_entries_count_in_no_error_but_in_the_charge_balance() {
        let (species, charges, feed, mask) = setup();
        let pred = array![[4.0, 0.0, 5.0], [0.0, 2.0, 2.0], [16.0, 0.0, 12.0]];
        // Row 2's Cl- was not measured: whatever its stored value, the errors are those of
        // the other five entries.
        let mut observed = mask.clone();
        observed[[2, 2]] = false;
        let of = |hidden: f64| {
            let target = array![[5.0, 0.0, 5.0], [0.0, 1.0, 2.0], [16.0, 0.0, hidden]];
            Metrics::compute(
                &species,
                &charges,
                feed.view(),
                mask.view(),
                observed.view(),
                target.view(),
                pred.view(),
            )
            .unwrap()
        };
        let (a, b, c) = (of(16.0), of(-3.0), of(f64::NAN));
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.n_values, 5);
        assert!((a.mae.unwrap() - 0.2 / 5.0).abs() < 1e-12);
        assert_eq!(a.per_ion[2].n, 2);
        // The predicted permeate's charge balance still covers every present ion.
        assert!((a.electroneutrality_max.unwrap() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn perfect_predictions_and_shape_errors() {
        let (species, charges, feed, mask) = setup();
        let target = array![[5.0, 0.0, 5.0], [0.0, 1.0, 2.0], [16.0, 0.0, 16.0]];
        let m = Metrics::compute(
            &species,
            &charges,
            feed.view(),
            mask.view(),
            mask.view(),
            target.view(),
            target.view(),
        )
        .unwrap();
        assert_eq!(m.mae, Some(0.0));
        assert_eq!(m.r2, Some(1.0));
        assert_eq!(m.electroneutrality_max, Some(0.0));
        let short = target.slice(ndarray::s![..2, ..]);
        assert!(Metrics::compute(
            &species,
            &charges,
            feed.view(),
            mask.view(),
            mask.view(),
            target.view(),
            short
        )
        .is_err());
        let mut nan = target.clone();
        nan[[0, 0]] = f64::NAN;
        let err = Metrics::compute(
            &species,
            &charges,
            feed.view(),
            mask.view(),
            mask.view(),
            target.view(),
            nan.view(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("Na+") && err.contains("row 0"), "{err}");
    }
}
