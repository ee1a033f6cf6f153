//! A finished run as something that predicts: the neural model rebuilt from its config
//! and parameters (with, for a physics-anchored model, the DSPM-DE it was calibrated
//! with, solved for every row first), or the calibrated DSPM-DE, read from the run's record. `ablate predict`
//! applies it to a data file, the report to dense flux grids for its model curves.

use crate::errors::{Context, Result};
use crate::{record, store};
use ionode_autodiff::ParamStore;
use ionode_model::{Model, SavedParams};
use ionode_train::calibrate::DspmdeFit;
use ionode_train::data::Samples;
use ionode_train::ensemble::{Bounds, IntervalFit, Spread};
use ionode_train::run::{predict_neural, Artefact, Domain, RunConfig};
use ndarray::Array2;
use std::path::Path;

/// What a finished run predicts with.
pub enum Predictor {
    Neural {
        model: Box<Model>,
        store: ParamStore,
        /// The physics prior of a physics-anchored model.
        physics: Option<Box<DspmdeFit>>,
    },
    Dspmde(Box<DspmdeFit>),
    /// An ensemble: its members (none an ensemble) and its interval rule.
    Ensemble {
        members: Vec<Predictor>,
        interval: IntervalFit,
    },
}

/// Permeates of every row, and the rows DSPM-DE could not solve (their permeate is
/// NaN; for a physics-anchored model too, whose input they are).
pub struct Predicted {
    /// `[rows, slots]` permeate, mol/m3.
    pub permeate: Array2<f64>,
    /// Rows without a DSPM-DE solution, ascending.
    pub failed_rows: Vec<usize>,
    /// An ensemble's central interval of every permeate (the mean is `permeate`).
    pub interval: Option<Interval>,
}

/// Lower and upper transmissions `c_p / c_f` `[rows, slots]` at a level.
pub struct Interval {
    pub level: f64,
    pub bounds: Bounds,
}

impl Predictor {
    /// From a run's config and artefact.
    pub fn new(config: &RunConfig, artefact: Artefact) -> Result<Predictor> {
        Ok(match artefact {
            Artefact::Params(p) => neural(config, p, None)?,
            Artefact::Anchored { params, physics } => neural(config, params, Some(physics))?,
            Artefact::Calibration(fit) => Predictor::Dspmde(fit),
            Artefact::Ensemble { members, interval } => Predictor::Ensemble {
                members: members
                    .into_iter()
                    .map(|a| Predictor::new(config, a))
                    .collect::<Result<_>>()?,
                interval,
            },
        })
    }

    /// The slot names the model predicts for.
    pub fn slots(&self) -> Vec<String> {
        match self {
            Predictor::Neural { model, .. } => model
                .config()
                .slots
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            Predictor::Dspmde(fit) => fit.species.clone(),
            Predictor::Ensemble { members, .. } => members[0].slots(),
        }
    }

    /// The slots as a sample set names them (the ion database's spelling where it knows
    /// the ion) with their charge numbers, in slot order.
    pub fn slot_ions(&self) -> (Vec<String>, Vec<i32>) {
        match self {
            Predictor::Neural { model, .. } => {
                let db = ionode_physics::IonDb::builtin();
                model
                    .config()
                    .slots
                    .iter()
                    .map(|s| {
                        let name = db.get(&s.name).map_or(s.name.clone(), |i| i.name.clone());
                        (name, s.charge.round() as i32)
                    })
                    .unzip()
            }
            Predictor::Dspmde(fit) => (
                fit.species.clone(),
                fit.ions.iter().map(|i| i.charge).collect(),
            ),
            Predictor::Ensemble { members, .. } => members[0].slot_ions(),
        }
    }

    pub fn is_neural(&self) -> bool {
        match self {
            Predictor::Neural { .. } => true,
            Predictor::Dspmde(_) => false,
            Predictor::Ensemble { members, .. } => members[0].is_neural(),
        }
    }

    /// Predicts the permeate of every row of `samples` (whose slots are [`Self::slots`]).
    pub fn predict(&self, samples: &Samples) -> Result<Predicted> {
        Ok(match self {
            Predictor::Neural {
                model,
                store,
                physics: None,
            } => Predicted {
                permeate: predict_neural(model, store, samples)?,
                failed_rows: Vec::new(),
                interval: None,
            },
            Predictor::Neural {
                model,
                store,
                physics: Some(fit),
            } => {
                let (prior, failed_rows) = fit.transmissions(samples)?;
                let anchored = samples.clone().with_prior(prior)?;
                let mut permeate = predict_neural(model, store, &anchored)?;
                for &r in &failed_rows {
                    permeate.row_mut(r).fill(f64::NAN);
                }
                Predicted {
                    permeate,
                    failed_rows,
                    interval: None,
                }
            }
            Predictor::Dspmde(fit) => {
                let mut p = fit.predict(samples)?;
                for &r in &p.failed_rows {
                    p.permeate.row_mut(r).fill(f64::NAN);
                }
                Predicted {
                    permeate: p.permeate,
                    failed_rows: p.failed_rows,
                    interval: None,
                }
            }
            Predictor::Ensemble { members, interval } => {
                let mut failed_rows = Vec::new();
                let mut permeates = Vec::with_capacity(members.len());
                for m in members {
                    let p = m.predict(samples)?;
                    failed_rows.extend(p.failed_rows);
                    permeates.push(p.permeate);
                }
                failed_rows.sort_unstable();
                failed_rows.dedup();
                let spread = Spread::of(&permeates, samples)?;
                Predicted {
                    permeate: spread.mean_permeate(samples),
                    failed_rows,
                    interval: Some(Interval {
                        level: interval.level,
                        bounds: interval.bounds(&spread, samples),
                    }),
                }
            }
        })
    }
}

fn neural(
    config: &RunConfig,
    params: SavedParams,
    physics: Option<Box<DspmdeFit>>,
) -> Result<Predictor> {
    let mut store = ParamStore::new();
    let model = Model::new(config.model.clone(), &mut store, config.seed)
        .context("the run's model config")?;
    params
        .load_into(&mut store)
        .context("the run's parameters do not fit its model")?;
    Ok(Predictor::Neural {
        model: Box::new(model),
        store,
        physics,
    })
}

/// A run as read back: what it predicts with and what it was trained on.
pub struct LoadedRun {
    pub predictor: Predictor,
    pub domain: Option<Domain>,
}

impl LoadedRun {
    /// Reads a run's record file.
    pub fn from_file(path: &Path) -> Result<LoadedRun> {
        let run = record::read(path)?;
        let config = &run.head.config;
        let artefact = record::read_artefact(path, config)?;
        Ok(LoadedRun {
            predictor: Predictor::new(config, artefact)?,
            domain: run.domain,
        })
    }

    /// Reads a finished run: an `ablate train` folder (its `run.h5`) or one run of a study
    /// (`STUDY/runs/<id>/`, whose DONE marker, checksum and id are verified first). Which of
    /// the two it is, the record says (a study run records its plan index), not the name
    /// of the folder it sits in.
    pub fn from_dir(dir: &Path) -> Result<LoadedRun> {
        let path = dir.join(store::RUN_FILE);
        if !path.is_file() {
            return Err(crate::usage!(
                "'{}' is not a finished run: expected an `ablate train` output folder or a study run (both hold {})",
                dir.display(),
                store::RUN_FILE
            ));
        }
        let head = record::read(&path)?.head;
        if head.provenance.plan_index.is_some() {
            let id = &head.provenance.run_id;
            let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            let study_dir = dir.parent().and_then(Path::parent);
            let (Some(study_dir), Some(true)) = (study_dir, folder.map(|f| f == *id)) else {
                return Err(crate::usage!(
                    "'{}' holds run {id} of study '{}', which belongs in STUDY/runs/{id}/ beside \
                     its DONE marker (copied out of its study?)",
                    dir.display(),
                    head.provenance.study
                ));
            };
            match store::state(study_dir, id) {
                store::State::Done => {}
                store::State::Damaged(why) => {
                    return Err(crate::usage!("run '{}' is damaged: {why}", dir.display()))
                }
                store::State::Failed(e) => {
                    return Err(crate::usage!("run '{}' failed: {e}", dir.display()))
                }
                store::State::Missing => {
                    return Err(crate::usage!(
                        "run '{}' is not finished (no DONE marker)",
                        dir.display()
                    ))
                }
            }
        }
        Self::from_file(&path)
    }
}
