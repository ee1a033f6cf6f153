//! What a run produces, as typed values: metrics per stage, test predictions, attention
//! maps, the trained parameters or the fitted membrane, the training domain, timings.
//! Files are written from these by the program (`ablate`), never here.

use crate::calibrate::DspmdeFit;
use crate::data::Samples;
use crate::metrics::SplitMetrics;
use crate::trainer::StageReport;
use ionode_model::SavedParams;
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

/// Which stage's data a set of predictions or metrics is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// The held-out simulated feeds of pre-training.
    PretrainTest,
    /// The measured test rows.
    Test,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::PretrainTest => "pretrain_test",
            Part::Test => "test",
        }
    }
}

/// One row per test sample and present ion, as columns. A target of an ion that was not
/// measured is NaN.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    pub part: Vec<String>,
    pub row: Vec<u64>,
    /// The row's family as stored (empty if unlabelled).
    pub family: Vec<String>,
    pub ion: Vec<String>,
    pub jv_m_s: Vec<f64>,
    /// The row's temperature, K.
    pub temperature_k: Vec<f64>,
    pub feed_mol_m3: Vec<f64>,
    pub target_permeate_mol_m3: Vec<f64>,
    pub predicted_permeate_mol_m3: Vec<f64>,
    pub target_rejection: Vec<f64>,
    pub predicted_rejection: Vec<f64>,
    /// An ensemble's central prediction interval of the rejection (empty for one model).
    pub rejection_lower: Vec<f64>,
    pub rejection_upper: Vec<f64>,
}

impl Predictions {
    /// Entries (sample, ion pairs).
    pub fn len(&self) -> usize {
        self.ion.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ion.is_empty()
    }

    /// The predictions of `rows` (present ions only).
    pub fn of(samples: &Samples, rows: &[usize], predicted: &Array2<f64>, part: Part) -> Self {
        let mut p = Predictions::default();
        for &r in rows {
            for (s, ion) in samples.species.iter().enumerate() {
                if !samples.mask[[r, s]] {
                    continue;
                }
                let (feed, target, pred) = (
                    samples.feed_mol_m3[[r, s]],
                    samples.permeate_mol_m3[[r, s]],
                    predicted[[r, s]],
                );
                p.part.push(part.as_str().to_string());
                p.row.push(r as u64);
                p.family.push(samples.family[r].clone().unwrap_or_default());
                p.ion.push(ion.clone());
                p.jv_m_s.push(samples.flux_m_s[r]);
                p.temperature_k.push(samples.temperature_k[r]);
                p.feed_mol_m3.push(feed);
                p.target_permeate_mol_m3.push(target);
                p.predicted_permeate_mol_m3.push(pred);
                p.target_rejection.push(1.0 - target / feed);
                p.predicted_rejection.push(1.0 - pred / feed);
            }
        }
        p
    }

    /// The same entries with their rejection intervals, from the transmission bounds of
    /// every row (`[rows, slots]`, as [`Predictions::of`] was given).
    pub fn with_bounds(mut self, samples: &Samples, bounds: &crate::ensemble::Bounds) -> Self {
        let slot = |ion: &str| samples.species.iter().position(|s| s == ion);
        for (r, ion) in self.row.iter().zip(&self.ion) {
            let (r, s) = (*r as usize, slot(ion).expect("an entry's ion is a slot"));
            self.rejection_lower.push(1.0 - bounds.upper[[r, s]]);
            self.rejection_upper.push(1.0 - bounds.lower[[r, s]]);
        }
        self
    }
}

/// Attention maps of the test rows (attention_node only).
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// `[N_test, S, S]` at the end of the integration.
    pub end: Array3<f64>,
    /// `[N_test, S, S]` averaged over the trajectory.
    pub mean: Array3<f64>,
    /// The test rows (indices into the scored sample set).
    pub rows: Vec<u64>,
    /// Slot names, in slot order.
    pub species: Vec<String>,
    /// Family per test row (empty if unlabelled).
    pub family: Vec<String>,
}

/// The model's learned state, or the calibrated baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Artefact {
    /// The trained parameters (neural methods).
    Params(SavedParams),
    /// The calibrated DSPM-DE (`dspmde_fit`).
    Calibration(Box<DspmdeFit>),
    /// A physics-anchored neural model (`model.prior`): its parameters and the DSPM-DE
    /// calibrated on its training rows, whose predictions it takes as input.
    Anchored {
        params: SavedParams,
        physics: Box<DspmdeFit>,
    },
    /// An ensemble (`[ensemble]`): each member's artefact (none of them an ensemble), and
    /// the rule that turns their spread into intervals.
    Ensemble {
        members: Vec<Artefact>,
        interval: crate::ensemble::IntervalFit,
    },
}

impl Artefact {
    /// The calibrated membrane, if the run calibrated one.
    pub fn membrane(&self) -> Option<ionode_physics::Membrane> {
        self.charged_membrane().map(|m| m.membrane)
    }

    /// The calibrated membrane with its charge model, if the run calibrated one.
    pub fn charged_membrane(&self) -> Option<ionode_physics::ChargedMembrane> {
        match self {
            Artefact::Calibration(f) | Artefact::Anchored { physics: f, .. } => Some(f.charged()),
            Artefact::Params(_) => None,
            // The first member's: the others are in the run's record.
            Artefact::Ensemble { members, .. } => members.first()?.charged_membrane(),
        }
    }
}

/// Wall-clock seconds of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub total: f64,
    /// This run's own pre-training time (0 when it reused a shared pre-training).
    pub pretrain: f64,
    pub finetune: f64,
}

/// The metrics of each scored stage: the held-out simulations of pre-training, and the
/// measured data's train / validation / test parts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<SplitMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<SplitMetrics>,
}

/// Everything one run produces.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub metrics: RunMetrics,
    /// Test predictions of the last scored data (measured, if any).
    pub predictions: Predictions,
    /// Loss curves per trained stage.
    pub curves: Vec<StageReport>,
    pub attention: Option<Attention>,
    pub artefact: Artefact,
    /// True when the data the run is fine-tuned and scored on (the measured data, or the
    /// simulations when there is none) holds synthetic rows (simulated or
    /// surrogate-laboratory data). Pre-training on simulations does not make a run on real
    /// measurements synthetic.
    pub synthetic: bool,
    /// What the model was trained on (`None` if no stage trained).
    pub domain: Option<super::Domain>,
    pub timings: Timings,
}
