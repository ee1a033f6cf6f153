//! The training-ready sample set, independent of the model.
//!
//! A [`Samples`] is one row per (feed, flux) point over a fixed, ordered list of ion *slots*
//! (MODEL.md section 2): feed and permeate concentrations per slot, a mask of the ions
//! present, the water flux, and bookkeeping (family, synthetic flag, where the row came
//! from). Simulated DSPM-DE datasets and measured CSV files both become this one form, so
//! splits, metrics, augmentation, the calibrated DSPM-DE baseline and the neural ODE all see
//! the same arrays in the same slot order.

use crate::error::{Result, TrainError};
use crate::measured::MeasuredData;
use ionode_physics::simulate::Dataset;
use ionode_physics::{Ion, IonDb};
use ionode_random::{stream_seed, Rng};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// Mixed into the seed of the batch-order streams, so that they differ from every other
/// stream derived from the same run seed (augmentation, splits, calibration starts).
const BATCH_STREAM_SALT: u64 = 0x6261_7463_6865_7321;

/// Samples over ion slots. Rows are points; columns of the 2-D arrays are slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    /// Slot names: canonical physics names (`Na+`, `SO4^2-`) where the ion database knows
    /// the ion, otherwise as given.
    pub species: Vec<String>,
    /// Charge number of each slot.
    pub charges: Vec<i32>,
    /// `[N, S]` feed concentrations, mol/m3 (0 for absent ions).
    pub feed_mol_m3: Array2<f64>,
    /// `[N, S]` which slots are present (feed > 0): what the model sees.
    pub mask: Array2<bool>,
    /// `[N, S]` which present slots have a measured outcome: what losses and metrics
    /// count. Equal to `mask` for simulations; measured data may be partial (an ion in the
    /// feed whose permeate was not measured).
    pub observed: Array2<bool>,
    /// `[N]` water flux, m/s.
    pub flux_m_s: Array1<f64>,
    /// `[N, S]` permeate concentrations, mol/m3 (0 for absent ions, NaN where present but
    /// not observed, so that a value no one measured can never pass for a target).
    pub permeate_mol_m3: Array2<f64>,
    /// `[N, S]` standard deviations of the permeate concentrations, mol/m3; 0 where none
    /// was stated (and for absent ions). `None` when no row states any.
    pub permeate_sd_mol_m3: Option<Array2<f64>>,
    /// `[N]` temperature, K.
    pub temperature_k: Vec<f64>,
    /// Mixture family per row (leave-one-family-out splits); `None` if unlabelled.
    pub family: Vec<Option<String>>,
    /// Simulated or surrogate data (`true`), or a real measurement.
    pub synthetic: Vec<bool>,
    /// Where each row came from: the sample index of a simulated dataset (shared by all
    /// fluxes of one feed, so splits can keep a feed's points together), or the index into
    /// `MeasuredData::rows` of a measured file.
    pub origin: Vec<usize>,
    /// `[N, S]` the calibrated DSPM-DE's transmission `c_p / c_f` of every present ion at
    /// the row's flux: what a physics-anchored model (`model.prior`) is given beside the
    /// feed. Absent until [`Samples::with_prior`] attaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_transmission: Option<Array2<f64>>,
    /// `[N]` the concentration-polarisation modulus `exp(J_v / k)` of rows whose measured
    /// rejections are observed ones with a film coefficient (1 elsewhere); `None` when no
    /// row has one. Models predict intrinsic rejections; [`Samples::observed_basis`] and
    /// the training loss turn them into what such a row measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub film_factor: Option<Array1<f64>>,
}

/// Plain arrays of a model batch (rows in the order of the indices given).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[B, S]` feed, mol/m3.
    pub feed: Array2<f64>,
    /// `[B, S]` present slots.
    pub mask: Array2<bool>,
    /// `[B, S]` slots with a measured outcome (the loss counts only these).
    pub observed: Array2<bool>,
    /// `[B]` water flux, m/s.
    pub flux: Array1<f64>,
    /// `[B, S]` the physics' transmissions, if the samples carry them.
    pub prior: Option<Array2<f64>>,
    /// `[B]` the film factors, if the samples have any.
    pub film: Option<Array1<f64>>,
    /// `[B, S]` target permeate, mol/m3.
    pub target: Array2<f64>,
    /// `[B, S]` permeate standard deviation, mol/m3 (0 where unknown), if the samples have any.
    pub sd: Option<Array2<f64>>,
}

/// One epoch's shuffled order, cut into batches. Iterate with [`Batches::iter`] (or
/// `for batch in &batches`), which yields index slices into the [`Samples`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batches {
    order: Vec<usize>,
    size: usize,
}

impl Batches {
    /// The index slices, in order; the last may be shorter.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.size)
    }

    /// Number of batches.
    pub fn len(&self) -> usize {
        self.order.len().div_ceil(self.size)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The whole epoch's permutation.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

impl<'a> IntoIterator for &'a Batches {
    type Item = &'a [usize];
    type IntoIter = std::slice::Chunks<'a, usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Loose ion-name key: `Na+`, `Na_+` and `Na ^+` compare equal, `SO4^2-`, `SO4_2-` and
/// `SO42-` too (the same rule as the ion database's aliases).
fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '^' | ' '))
        .collect()
}

/// The slot list resolved: canonical names and charges. A slot's charge comes from the
/// data when the data has the ion (custom ions), otherwise from the built-in database.
fn resolve_slots(slots: &[&str], data_ions: &[(String, i32)]) -> Result<(Vec<String>, Vec<i32>)> {
    if slots.is_empty() {
        return Err(TrainError::invalid(
            "slots",
            "an empty list",
            "at least one ion slot",
        ));
    }
    let db = IonDb::builtin();
    let mut names = Vec::with_capacity(slots.len());
    let mut charges = Vec::with_capacity(slots.len());
    for slot in slots {
        let key = name_key(slot);
        let (name, charge) =
            if let Some((n, z)) = data_ions.iter().find(|(n, _)| name_key(n) == key) {
                let canonical = db
                    .get(n)
                    .map(|i| i.name.clone())
                    .unwrap_or_else(|_| n.clone());
                (canonical, *z)
            } else if let Ok(ion) = db.get(slot) {
                (ion.name.clone(), ion.charge)
            } else {
                return Err(TrainError::invalid(
                    "slot",
                    format!("'{slot}'"),
                    "an ion of the data or of the built-in database",
                ));
            };
        if names
            .iter()
            .any(|n: &String| name_key(n) == name_key(&name))
        {
            return Err(TrainError::invalid(
                "slots",
                format!("'{slot}' twice"),
                "each ion at most once",
            ));
        }
        names.push(name);
        charges.push(charge);
    }
    Ok((names, charges))
}

/// The slot of each data ion (`None` if it has none).
fn slot_map(names: &[String], data_ions: &[(String, i32)]) -> Vec<Option<usize>> {
    data_ions
        .iter()
        .map(|(n, _)| names.iter().position(|s| name_key(s) == name_key(n)))
        .collect()
}

impl Samples {
    /// Flattens a simulated dataset (samples x fluxes) into rows, mapping its species onto
    /// `slots`. Failed points (status != 0) are skipped; the second value is how many.
    /// An ion present in some sample but without a slot is an error naming the ion; a slot
    /// that the dataset does not have is simply always absent.
    pub fn from_simulation(data: &Dataset, slots: &[&str]) -> Result<(Samples, usize)> {
        let ions: Vec<(String, i32)> = data
            .species
            .iter()
            .cloned()
            .zip(data.charges.iter().copied())
            .collect();
        let (species, charges) = resolve_slots(slots, &ions)?;
        let map = slot_map(&species, &ions);
        let (n_samples, n_fluxes) = data.status.dim();
        let s = species.len();
        for (j, m) in map.iter().enumerate() {
            if m.is_none() && data.mask.column(j).iter().any(|&v| v != 0) {
                return Err(TrainError::NoSlot {
                    ion: data.species[j].clone(),
                    location: "the simulated dataset".into(),
                    slots: species.join(", "),
                });
            }
        }
        let points: Vec<(usize, usize)> = (0..n_samples)
            .flat_map(|i| (0..n_fluxes).map(move |k| (i, k)))
            .filter(|&(i, k)| data.status[[i, k]] == 0)
            .collect();
        let skipped = n_samples * n_fluxes - points.len();
        let n = points.len();
        let mut feed = Array2::zeros((n, s));
        let mut mask = Array2::from_elem((n, s), false);
        let mut permeate = Array2::zeros((n, s));
        let mut flux = Array1::zeros(n);
        for (row, &(i, k)) in points.iter().enumerate() {
            flux[row] = data.fluxes_m_s[k];
            for (j, m) in map.iter().enumerate() {
                if let Some(slot) = *m {
                    if data.mask[[i, j]] != 0 {
                        feed[[row, slot]] = data.feed[[i, j]];
                        mask[[row, slot]] = true;
                        permeate[[row, slot]] = data.permeate[[i, k, j]];
                    }
                }
            }
        }
        let samples = Samples {
            species,
            charges,
            feed_mol_m3: feed,
            observed: mask.clone(),
            mask,
            flux_m_s: flux,
            permeate_mol_m3: permeate,
            permeate_sd_mol_m3: None,
            temperature_k: points.iter().map(|&(i, _)| data.temperature_k[i]).collect(),
            family: vec![None; n],
            synthetic: vec![true; n],
            origin: points.iter().map(|&(i, _)| i).collect(),
            prior_transmission: None,
            film_factor: None,
        };
        Ok((samples, skipped))
    }

    /// Converts loaded measured data, mapping its ions onto `slots`. An ion present in a
    /// row (feed > 0) without a slot is an error naming the row's line and the ion.
    pub fn from_measured(data: &MeasuredData, slots: &[&str]) -> Result<Samples> {
        let ions: Vec<(String, i32)> = data
            .ions
            .iter()
            .map(|i| (i.name.clone(), i.charge))
            .collect();
        let (species, charges) = resolve_slots(slots, &ions)?;
        let map = slot_map(&species, &ions);
        let (n, s) = (data.rows.len(), species.len());
        let mut feed = Array2::zeros((n, s));
        let mut mask = Array2::from_elem((n, s), false);
        let mut observed = Array2::from_elem((n, s), false);
        let mut permeate = Array2::zeros((n, s));
        let mut sd = Array2::zeros((n, s));
        let mut any_sd = false;
        let mut flux = Array1::zeros(n);
        for (row, r) in data.rows.iter().enumerate() {
            flux[row] = r.jv_m_s;
            for (k, m) in map.iter().enumerate() {
                if !r.present[k] {
                    continue;
                }
                let Some(slot) = *m else {
                    return Err(TrainError::NoSlot {
                        ion: data.ions[k].display_name(),
                        location: format!("line {}", r.line),
                        slots: species.join(", "),
                    });
                };
                feed[[row, slot]] = r.feed_mol_m3[k];
                mask[[row, slot]] = true;
                observed[[row, slot]] = r.measured[k];
                permeate[[row, slot]] = if r.measured[k] {
                    r.permeate_mol_m3[k]
                } else {
                    f64::NAN
                };
                if let Some(v) = r.permeate_sd_mol_m3[k] {
                    sd[[row, slot]] = v;
                    any_sd = true;
                }
            }
        }
        Ok(Samples {
            species,
            charges,
            feed_mol_m3: feed,
            mask,
            observed,
            flux_m_s: flux,
            permeate_mol_m3: permeate,
            permeate_sd_mol_m3: any_sd.then_some(sd),
            temperature_k: data.rows.iter().map(|r| r.temperature_k).collect(),
            family: data.rows.iter().map(|r| r.family.clone()).collect(),
            synthetic: data.rows.iter().map(|r| r.synthetic).collect(),
            origin: (0..n).collect(),
            prior_transmission: None,
            film_factor: data
                .rows
                .iter()
                .any(|r| r.film_factor().is_some())
                .then(|| {
                    data.rows
                        .iter()
                        .map(|r| r.film_factor().unwrap_or(1.0))
                        .collect()
                }),
        })
    }

    /// Points to predict at, with no outcome: each row's feed over the slots (`species`
    /// with their `charges`; present where above 0), its flux and temperature; nothing is
    /// observed (a model curve between measured fluxes, a new feed).
    pub fn unobserved(
        species: Vec<String>,
        charges: Vec<i32>,
        feed_mol_m3: Array2<f64>,
        flux_m_s: Array1<f64>,
        temperature_k: Vec<f64>,
        family: Vec<Option<String>>,
    ) -> Result<Samples> {
        let n = feed_mol_m3.nrows();
        let s = species.len();
        if charges.len() != s
            || feed_mol_m3.ncols() != s
            || flux_m_s.len() != n
            || temperature_k.len() != n
            || family.len() != n
        {
            return Err(TrainError::shape(
                "unobserved samples",
                format!(
                    "feeds {:?} over {s} slots, {} fluxes, {} temperatures, {} families",
                    feed_mol_m3.dim(),
                    flux_m_s.len(),
                    temperature_k.len(),
                    family.len()
                ),
            ));
        }
        let mask = feed_mol_m3.mapv(|c| c > 0.0);
        let samples = Samples {
            species,
            charges,
            permeate_mol_m3: mask.mapv(|m| if m { f64::NAN } else { 0.0 }),
            observed: Array2::from_elem((n, s), false),
            mask,
            feed_mol_m3,
            flux_m_s,
            permeate_sd_mol_m3: None,
            temperature_k,
            family,
            synthetic: vec![false; n],
            origin: (0..n).collect(),
            prior_transmission: None,
            film_factor: None,
        };
        samples.validate()?;
        Ok(samples)
    }

    /// Checks that the arrays agree in shape and hold usable values: finite feeds above 0
    /// and permeates at or above 0 where an ion is present, fluxes above 0, standard
    /// deviations at or above 0. The fields are public, so consumers that divide by feeds
    /// (metrics, the calibration) call this first; the constructors always produce valid
    /// samples.
    pub fn validate(&self) -> Result<()> {
        let (n, s) = (self.len(), self.slots());
        let dim = (n, s);
        let shapes = [
            ("feed_mol_m3", self.feed_mol_m3.dim()),
            ("mask", self.mask.dim()),
            ("observed", self.observed.dim()),
            ("permeate_mol_m3", self.permeate_mol_m3.dim()),
        ];
        for (name, d) in shapes {
            if d != dim {
                return Err(TrainError::shape(
                    "samples",
                    format!("{name} is {d:?}, expected {dim:?} (rows, slots)"),
                ));
            }
        }
        if let Some(sd) = &self.permeate_sd_mol_m3 {
            if sd.dim() != dim {
                return Err(TrainError::shape(
                    "samples",
                    format!("permeate_sd_mol_m3 is {:?}, expected {dim:?}", sd.dim()),
                ));
            }
        }
        let lens = [
            ("charges", self.charges.len(), s),
            ("family", self.family.len(), n),
            ("temperature_k", self.temperature_k.len(), n),
            ("synthetic", self.synthetic.len(), n),
            ("origin", self.origin.len(), n),
        ];
        for (name, got, want) in lens {
            if got != want {
                return Err(TrainError::shape(
                    "samples",
                    format!("{name} has {got} entries, expected {want}"),
                ));
            }
        }
        for (r, &jv) in self.flux_m_s.iter().enumerate() {
            if !(jv > 0.0 && jv.is_finite()) {
                return Err(TrainError::invalid(
                    format!("flux of row {r}"),
                    jv,
                    "a finite flux > 0 m/s",
                ));
            }
        }
        for (r, &t) in self.temperature_k.iter().enumerate() {
            if !(t > 0.0 && t.is_finite()) {
                return Err(TrainError::invalid(
                    format!("temperature of row {r}"),
                    t,
                    "a finite temperature > 0 K",
                ));
            }
        }
        for ((r, k), &m) in self.mask.indexed_iter() {
            let sd = self.permeate_sd_mol_m3.as_ref().map_or(0.0, |a| a[[r, k]]);
            let (f, p) = (self.feed_mol_m3[[r, k]], self.permeate_mol_m3[[r, k]]);
            let observed = self.observed[[r, k]];
            let bad = if !(sd >= 0.0 && sd.is_finite()) {
                Some(("permeate sd", sd, "a finite value >= 0"))
            } else if m && !(f > 0.0 && f.is_finite()) {
                Some(("feed", f, "a finite value > 0 for a present ion"))
            } else if observed && !m {
                Some(("outcome", p, "no observed outcome for an absent ion"))
            } else if observed && !(p >= 0.0 && p.is_finite()) {
                Some(("permeate", p, "a finite value >= 0"))
            } else {
                None
            };
            if let Some((what, v, expected)) = bad {
                return Err(TrainError::invalid(
                    format!("{what} of {} in row {r}", self.species[k]),
                    v,
                    expected,
                ));
            }
        }
        Ok(())
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.flux_m_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.species.len()
    }

    /// The same rows with the physics' transmissions `[N, S]` attached (see
    /// [`Samples::prior_transmission`]); every present ion needs a finite one.
    pub fn with_prior(mut self, transmission: Array2<f64>) -> Result<Samples> {
        if transmission.dim() != self.feed_mol_m3.dim() {
            return Err(TrainError::shape(
                "physics prior",
                format!(
                    "{:?} for samples of {:?}",
                    transmission.shape(),
                    self.feed_mol_m3.shape()
                ),
            ));
        }
        if let Some(((row, slot), _)) = transmission
            .indexed_iter()
            .find(|(ix, t)| self.mask[*ix] && !t.is_finite())
        {
            return Err(TrainError::shape(
                "physics prior",
                format!("row {row}, {}: not finite", self.species[slot]),
            ));
        }
        self.prior_transmission = Some(transmission);
        Ok(self)
    }

    /// The rows `indices`, in that order. Panics if an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Samples {
        let pick = |v: &[Option<String>]| indices.iter().map(|&i| v[i].clone()).collect();
        Samples {
            species: self.species.clone(),
            charges: self.charges.clone(),
            feed_mol_m3: self.feed_mol_m3.select(Axis(0), indices),
            mask: self.mask.select(Axis(0), indices),
            observed: self.observed.select(Axis(0), indices),
            flux_m_s: self.flux_m_s.select(Axis(0), indices),
            permeate_mol_m3: self.permeate_mol_m3.select(Axis(0), indices),
            permeate_sd_mol_m3: self
                .permeate_sd_mol_m3
                .as_ref()
                .map(|a| a.select(Axis(0), indices)),
            temperature_k: indices.iter().map(|&i| self.temperature_k[i]).collect(),
            family: pick(&self.family),
            synthetic: indices.iter().map(|&i| self.synthetic[i]).collect(),
            origin: indices.iter().map(|&i| self.origin[i]).collect(),
            prior_transmission: self
                .prior_transmission
                .as_ref()
                .map(|a| a.select(Axis(0), indices)),
            film_factor: self
                .film_factor
                .as_ref()
                .map(|a| a.select(Axis(0), indices)),
        }
    }

    /// The rows of several sample sets over the same slots, one after the other (several
    /// measured files of one study). `origin` is made unique by offsetting each part past
    /// the previous parts' origins, so group-preserving splits stay correct.
    pub fn concat(parts: &[Samples]) -> Result<Samples> {
        let first = parts
            .first()
            .ok_or_else(|| TrainError::invalid("data", "no sample sets", "at least one"))?;
        for p in parts {
            if p.species != first.species || p.charges != first.charges {
                return Err(TrainError::shape(
                    "concatenated samples",
                    format!("slots {:?} and {:?} differ", first.species, p.species),
                ));
            }
        }
        let views =
            |f: &dyn Fn(&Samples) -> ArrayView2<f64>| -> Vec<_> { parts.iter().map(f).collect() };
        let stack2 =
            |v: Vec<ArrayView2<f64>>| ndarray::concatenate(Axis(0), &v).expect("same widths");
        let sd = if parts.iter().any(|p| p.permeate_sd_mol_m3.is_some()) {
            let filled: Vec<Array2<f64>> = parts
                .iter()
                .map(|p| {
                    p.permeate_sd_mol_m3
                        .clone()
                        .unwrap_or_else(|| Array2::zeros(p.feed_mol_m3.dim()))
                })
                .collect();
            Some(stack2(filled.iter().map(|a| a.view()).collect()))
        } else {
            None
        };
        let masks: Vec<_> = parts.iter().map(|p| p.mask.view()).collect();
        let observed: Vec<_> = parts.iter().map(|p| p.observed.view()).collect();
        let fluxes: Vec<_> = parts.iter().map(|p| p.flux_m_s.view()).collect();
        let mut origin = Vec::new();
        let mut offset = 0;
        for p in parts {
            origin.extend(p.origin.iter().map(|o| o + offset));
            offset += p.origin.iter().max().map_or(0, |m| m + 1);
        }
        Ok(Samples {
            species: first.species.clone(),
            charges: first.charges.clone(),
            feed_mol_m3: stack2(views(&|p| p.feed_mol_m3.view())),
            mask: ndarray::concatenate(Axis(0), &masks).expect("same widths"),
            observed: ndarray::concatenate(Axis(0), &observed).expect("same widths"),
            flux_m_s: ndarray::concatenate(Axis(0), &fluxes).expect("same lengths"),
            permeate_mol_m3: stack2(views(&|p| p.permeate_mol_m3.view())),
            permeate_sd_mol_m3: sd,
            temperature_k: parts
                .iter()
                .flat_map(|p| p.temperature_k.iter().copied())
                .collect(),
            family: parts
                .iter()
                .flat_map(|p| p.family.iter().cloned())
                .collect(),
            synthetic: parts
                .iter()
                .flat_map(|p| p.synthetic.iter().copied())
                .collect(),
            origin,
            // A prior belongs to one calibration of one sample set: attach it after joining.
            prior_transmission: None,
            film_factor: parts.iter().any(|p| p.film_factor.is_some()).then(|| {
                let f: Vec<Array1<f64>> = parts
                    .iter()
                    .map(|p| {
                        p.film_factor
                            .clone()
                            .unwrap_or_else(|| Array1::ones(p.len()))
                    })
                    .collect();
                let views: Vec<_> = f.iter().map(|a| a.view()).collect();
                ndarray::concatenate(Axis(0), &views).expect("one column")
            }),
        })
    }

    /// Intrinsic permeates `[N, S]` (what a model predicts) as the rows measured them: for
    /// a row with a film factor `E`, each ion's `c_f T E / (1 + T (E - 1))`, `T = c_p / c_f`
    /// (`crate::measured::observed_transmission`); other rows as they are, to the bit.
    pub fn observed_basis(&self, intrinsic: &Array2<f64>) -> Array2<f64> {
        let mut out = intrinsic.clone();
        if let Some(film) = &self.film_factor {
            for (r, &e) in film.iter().enumerate() {
                if e == 1.0 {
                    continue;
                }
                for s in 0..self.slots() {
                    let cf = self.feed_mol_m3[[r, s]];
                    if cf > 0.0 {
                        let t = intrinsic[[r, s]] / cf;
                        out[[r, s]] = cf * crate::measured::observed_transmission(t, e);
                    }
                }
            }
        }
        out
    }

    /// The plain arrays of the rows `indices`, for one model batch. Panics if an index is
    /// out of range.
    pub fn to_batch_arrays(&self, indices: &[usize]) -> Batch {
        Batch {
            feed: self.feed_mol_m3.select(Axis(0), indices),
            mask: self.mask.select(Axis(0), indices),
            observed: self.observed.select(Axis(0), indices),
            flux: self.flux_m_s.select(Axis(0), indices),
            prior: self
                .prior_transmission
                .as_ref()
                .map(|a| a.select(Axis(0), indices)),
            film: self
                .film_factor
                .as_ref()
                .map(|a| a.select(Axis(0), indices)),
            target: self.permeate_mol_m3.select(Axis(0), indices),
            sd: self
                .permeate_sd_mol_m3
                .as_ref()
                .map(|a| a.select(Axis(0), indices)),
        }
    }

    /// One epoch's batches: a permutation of all rows drawn from the version-stable stream
    /// `(seed, epoch)`, cut into `batch_size` pieces (the last may be shorter). The same
    /// (seed, epoch) gives the same batches on every machine. `batch_size` 0 means one
    /// batch of everything.
    pub fn batches(&self, batch_size: usize, seed: u64, epoch: u64) -> Batches {
        let mut order: Vec<usize> = (0..self.len()).collect();
        Rng::new(stream_seed(seed ^ BATCH_STREAM_SALT, epoch)).shuffle(&mut order);
        let size = if batch_size == 0 {
            order.len().max(1)
        } else {
            batch_size
        };
        Batches { order, size }
    }

    /// `[N, S]` rejections `1 - c_p / c_f` of observed ions (0 elsewhere).
    pub fn rejection(&self) -> Array2<f64> {
        rejection_of(&self.feed_mol_m3, &self.observed, &self.permeate_mol_m3)
    }

    /// Whether some present ion has no measured outcome (partial data).
    pub fn is_partial(&self) -> bool {
        self.mask != self.observed
    }

    /// The slots' ions from a database (for the physics): each slot must be in `db` with
    /// the slot's charge.
    pub fn slot_ions(&self, db: &IonDb) -> Result<Vec<Ion>> {
        self.species
            .iter()
            .zip(&self.charges)
            .map(|(name, &z)| {
                let ion = db.get(name)?;
                if ion.charge != z {
                    return Err(TrainError::invalid(
                        format!("charge of slot {name}"),
                        z,
                        format!("the database's charge {}", ion.charge),
                    ));
                }
                Ok(ion.clone())
            })
            .collect()
    }

    /// Distinct families in order of first appearance (unlabelled rows not included).
    pub fn families(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self.family.iter().flatten() {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }
}

/// Rejections `1 - c_p / c_f` where `mask` is set, 0 elsewhere.
pub fn rejection_of(
    feed: &Array2<f64>,
    mask: &Array2<bool>,
    permeate: &Array2<f64>,
) -> Array2<f64> {
    let mut r = Array2::zeros(feed.dim());
    ndarray::Zip::from(&mut r)
        .and(feed)
        .and(mask)
        .and(permeate)
        .for_each(|r, &f, &m, &p| {
            if m {
                *r = 1.0 - p / f;
            }
        });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measured::{parse_csv, LoadOptions};
    use ndarray::{array, Array3};

    fn toy_dataset() -> Dataset {
        // Two samples x two fluxes over Na, Cl, SO4; sample 1's second flux failed.
        let feed = array![[10.0, 10.0, 0.0], [30.0, 10.0, 10.0]];
        let mask = array![[1u8, 1, 0], [1, 1, 1]];
        let mut permeate = Array3::zeros((2, 2, 3));
        permeate[[0, 0, 0]] = 5.0;
        permeate[[0, 0, 1]] = 5.0;
        permeate[[0, 1, 0]] = 4.0;
        permeate[[0, 1, 1]] = 4.0;
        permeate[[1, 0, 0]] = 12.0;
        permeate[[1, 0, 1]] = 11.0;
        permeate[[1, 0, 2]] = 0.5;
        let rejection = Array3::zeros((2, 2, 3));
        Dataset {
            species: vec!["Na+".into(), "Cl-".into(), "SO4^2-".into()],
            charges: vec![1, -1, -2],
            temperature_k: vec![298.15; 2],
            fluxes_m_s: vec![1e-6, 1e-5],
            feed,
            mask,
            permeate,
            rejection,
            pressure_pa: Array2::zeros((2, 2)),
            status: array![[0u8, 0], [0, 1]],
            failures: vec![],
        }
    }

    #[test]
    fn unobserved_points_have_feeds_and_no_outcome() {
        let (like, _) = Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-", "SO4"]).unwrap();
        let feed = ndarray::array![[10.0, 10.0, 0.0], [5.0, 1.0, 2.0]];
        let s = Samples::unobserved(
            like.species.clone(),
            like.charges.clone(),
            feed,
            ndarray::array![1e-6, 2e-6],
            vec![293.15, 298.15],
            vec![Some("NaCl".into()), None],
        )
        .unwrap();
        assert_eq!(
            s.mask,
            ndarray::array![[true, true, false], [true, true, true]]
        );
        assert!(!s.observed.iter().any(|&o| o));
        assert!(s.permeate_mol_m3[[0, 0]].is_nan() && s.permeate_mol_m3[[0, 2]] == 0.0);
        let bad = Samples::unobserved(
            like.species.clone(),
            like.charges.clone(),
            ndarray::array![[1.0, 1.0, 0.0]],
            ndarray::array![-1.0],
            vec![298.15],
            vec![None],
        );
        assert!(bad.unwrap_err().to_string().contains("flux of row 0"));
    }

    #[test]
    fn simulation_is_flattened_onto_slots_skipping_failures() {
        let ds = toy_dataset();
        let (s, skipped) =
            Samples::from_simulation(&ds, &["SO4^2-", "Mg_2+", "Cl-", "Na_+"]).unwrap();
        assert_eq!(skipped, 1);
        assert_eq!(s.len(), 3);
        assert_eq!(s.species, ["SO4^2-", "Mg^2+", "Cl-", "Na+"]);
        assert_eq!(s.charges, [-2, 2, -1, 1]);
        assert_eq!(s.origin, [0, 0, 1]);
        assert_eq!(s.flux_m_s.to_vec(), [1e-6, 1e-5, 1e-6]);
        assert_eq!(s.feed_mol_m3.row(2).to_vec(), [10.0, 0.0, 10.0, 30.0]);
        assert_eq!(s.mask.row(0).to_vec(), [false, false, true, true]);
        assert_eq!(s.permeate_mol_m3.row(1).to_vec(), [0.0, 0.0, 4.0, 4.0]);
        assert_eq!(s.permeate_mol_m3.row(2).to_vec(), [0.5, 0.0, 11.0, 12.0]);
        assert!(s.synthetic.iter().all(|&x| x));
        assert!(s.permeate_sd_mol_m3.is_none());
        let r = s.rejection();
        assert!((r[[0, 3]] - 0.5).abs() < 1e-15 && r[[0, 0]] == 0.0);
    }

    #[test]
    fn simulation_ion_without_slot_is_named() {
        let err = Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("SO4^2-") && msg.contains("simulated"), "{msg}");
        // An unknown slot name and a duplicate are refused too.
        assert!(Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-", "SO4", "Xx+"]).is_err());
        assert!(Samples::from_simulation(&toy_dataset(), &["Na+", "Na+", "Cl-", "SO4"]).is_err());
    }

    const CSV: &str = "source,membrane,family,temperature_K,synthetic,Jv_LMH,feed_Na+_mol_m3,feed_Cl-_mol_m3,feed_Mg^2+_mol_m3,feed_SO4^2-_mol_m3,permeate_Na+_mol_m3,rejection_Cl-,permeate_Mg^2+_mol_m3,rejection_SO4^2-,permeate_Na+_mol_m3_sd
a,NF270,NaCl,298.15,false,36,50,50,0,0,20,0.6,,,0.5
b,NF270,MgSO4,298.15,true,72,0,0,10,10,,,1,0.95,
";

    #[test]
    fn measured_rows_map_onto_slots_with_sd() {
        let data = parse_csv(CSV, "t.csv", &LoadOptions::default(), &IonDb::builtin()).unwrap();
        let s = Samples::from_measured(&data, &["Na+", "Mg^2+", "Cl-", "SO4^2-"]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.feed_mol_m3.row(0).to_vec(), [50.0, 0.0, 50.0, 0.0]);
        let p = &s.permeate_mol_m3;
        assert!((p[[0, 2]] - 20.0).abs() < 1e-12 && (p[[1, 3]] - 0.5).abs() < 1e-12);
        let sd = s.permeate_sd_mol_m3.as_ref().unwrap();
        assert_eq!(sd.row(0).to_vec(), [0.5, 0.0, 0.0, 0.0]);
        assert_eq!(sd.row(1).to_vec(), [0.0; 4]);
        assert_eq!(s.family, [Some("NaCl".into()), Some("MgSO4".into())]);
        assert_eq!(s.synthetic, [false, true]);
        assert_eq!(s.origin, [0, 1]);
        assert!((s.flux_m_s[0] - 1e-5).abs() < 1e-18);
        assert_eq!(s.families(), ["NaCl", "MgSO4"]);
    }

    #[test]
    fn measured_ion_without_slot_names_line_and_ion() {
        let data = parse_csv(CSV, "t.csv", &LoadOptions::default(), &IonDb::builtin()).unwrap();
        let msg = Samples::from_measured(&data, &["Na+", "Cl-", "Mg^2+"])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3") && msg.contains("SO4^2-"), "{msg}");
    }

    #[test]
    fn subset_and_batch_arrays_pick_rows() {
        let (s, _) = Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-", "SO4"]).unwrap();
        let sub = s.subset(&[2, 0]);
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.origin, [1, 0]);
        assert_eq!(sub.feed_mol_m3.row(0).to_vec(), [30.0, 10.0, 10.0]);
        let b = s.to_batch_arrays(&[2, 0]);
        assert_eq!(b.feed, sub.feed_mol_m3);
        assert_eq!(b.target, sub.permeate_mol_m3);
        assert_eq!(b.mask, sub.mask);
        assert_eq!(b.flux, sub.flux_m_s);
        assert!(b.sd.is_none());
    }

    #[test]
    fn batches_are_a_deterministic_permutation() {
        let (base, _) = Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-", "SO4"]).unwrap();
        let idx: Vec<usize> = (0..23).map(|i| i % 3).collect();
        let s = base.subset(&idx);
        let b = s.batches(5, 7, 0);
        assert_eq!(b.len(), 5);
        let sizes: Vec<usize> = b.iter().map(<[usize]>::len).collect();
        assert_eq!(sizes, [5, 5, 5, 5, 3]);
        let mut all: Vec<usize> = (&b).into_iter().flatten().copied().collect();
        assert_eq!(b, s.batches(5, 7, 0));
        assert_ne!(b.order(), s.batches(5, 7, 1).order());
        assert_ne!(b.order(), s.batches(5, 8, 0).order());
        all.sort_unstable();
        assert_eq!(all, (0..23).collect::<Vec<_>>());
        assert_eq!(s.batches(0, 7, 0).len(), 1);
    }

    #[test]
    fn validate_catches_inconsistent_samples() {
        let (s, _) = Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-", "SO4"]).unwrap();
        s.validate().unwrap();
        let mut bad = s.clone();
        bad.feed_mol_m3[[0, 0]] = 0.0;
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("feed of Na+ in row 0"), "{msg}");
        let mut bad = s.clone();
        bad.origin.pop();
        assert!(bad.validate().is_err());
        let mut bad = s;
        bad.flux_m_s[1] = f64::NAN;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn slot_ions_come_from_the_database() {
        let (s, _) = Samples::from_simulation(&toy_dataset(), &["Na+", "Cl-", "SO4"]).unwrap();
        let ions = s.slot_ions(&IonDb::builtin()).unwrap();
        assert_eq!(ions[2].name, "SO4^2-");
        assert_eq!(ions[2].charge, -2);
    }
}
