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
        }
    }
}

/// What a run's model was trained on: the range of fluxes and temperatures of its training
/// and validation rows (every trained stage), so that applying it elsewhere can refuse to
/// extrapolate silently.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// [lowest, highest] water flux, m/s.
    pub flux_m_s: [f64; 2],
    /// [lowest, highest] temperature, K.
    pub temperature_k: [f64; 2],
}

impl Domain {
    /// The domain of some rows (`None` for no rows).
    pub fn of(samples: &Samples, rows: &[usize]) -> Option<Domain> {
        let range = |v: &mut dyn Iterator<Item = f64>| {
            v.fold(None, |acc: Option<[f64; 2]>, x| {
                Some(acc.map_or([x, x], |[lo, hi]| [lo.min(x), hi.max(x)]))
            })
        };
        Some(Domain {
            flux_m_s: range(&mut rows.iter().map(|&r| samples.flux_m_s[r]))?,
            temperature_k: range(&mut rows.iter().map(|&r| samples.temperature_k[r]))?,
        })
    }

    /// The smallest domain holding both.
    pub fn union(self, other: Domain) -> Domain {
        let u = |a: [f64; 2], b: [f64; 2]| [a[0].min(b[0]), a[1].max(b[1])];
        Domain {
            flux_m_s: u(self.flux_m_s, other.flux_m_s),
            temperature_k: u(self.temperature_k, other.temperature_k),
        }
    }

    /// `a ∪ b` where either may be absent.
    pub fn join(a: Option<Domain>, b: Option<Domain>) -> Option<Domain> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.union(b)),
            (a, b) => a.or(b),
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
    pub domain: Option<Domain>,
    pub timings: Timings,
}
