//! The run config: everything one run is (model, data, stages, split, calibration), as a
//! typed value with one check ([`RunConfig::problems`]) that every reader of a config (a
//! manifest, `ablate train`) and the run itself use.

use crate::calibrate::CalibrationConfig;
use crate::ensemble::EnsembleConfig;
use crate::error::TrainError;
use crate::split::SplitSpec;
use crate::trainer::StageConfig;
use ionode_model::{ModelConfig, Prior};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One run: the keys of `ablate train`'s config and of a manifest's `[base]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Seeds the model's initial weights, the splits, the batch order and augmentation.
    pub seed: u64,
    #[serde(default)]
    pub method: Method,
    #[serde(default)]
    pub model: ModelConfig,
    pub data: DataConfig,
    #[serde(default)]
    pub pretrain: Option<StageConfig>,
    #[serde(default)]
    pub finetune: Option<StageConfig>,
    /// How the measured data is split (`kind = "random" | "by_family" | "first_n"`).
    #[serde(default)]
    pub split: Option<SplitSpec>,
    #[serde(default)]
    pub calibration: CalibrationConfig,
    /// Train N members and predict with intervals (`crate::ensemble`); absent: one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleConfig>,
}

/// What is trained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The neural model of `[model]` (attention_node, node or mlp).
    #[default]
    Neural,
    /// DSPM-DE with its membrane calibrated on the training rows.
    DspmdeFit,
}

/// The data of a run: paths as the config wrote them (the reader of the config resolves
/// them; the run itself is given the loaded data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A pre-training set written by `ablate simulate`.
    #[serde(default)]
    pub pretrain: Option<PathBuf>,
    /// Use only the first N simulated feeds (each with all its fluxes).
    #[serde(default)]
    pub pretrain_max_feeds: Option<usize>,
    /// Fractions of simulated feeds held out for validation and test of pre-training.
    #[serde(default = "tenth")]
    pub pretrain_validation_fraction: f64,
    #[serde(default = "tenth")]
    pub pretrain_test_fraction: f64,
    /// Measured-data files (CSV or Parquet, datasets/README.md).
    #[serde(default)]
    pub measured: Vec<PathBuf>,
    /// Balance each measured feed with this ion.
    #[serde(default)]
    pub balance_with: Option<String>,
    /// Which membrane the pre-training targets come from (default: the one that
    /// simulated the file).
    #[serde(default, skip_serializing_if = "PretrainMembrane::is_simulated")]
    pub pretrain_membrane: PretrainMembrane,
}

/// The membrane behind the pre-training targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PretrainMembrane {
    /// The permeates of the pre-training file, as simulated (a preset, usually).
    #[default]
    Simulated,
    /// Calibrate, then pre-train: DSPM-DE is calibrated (`[calibration]`) on the run's
    /// measured training rows, never its validation or test rows, and the file's feeds,
    /// fluxes and temperatures are solved again with it; rows it cannot solve are left
    /// out. The pre-training then teaches the network this membrane, not the preset.
    Calibrated,
}

impl PretrainMembrane {
    /// Whether this is the default (omitted from configs, so older run ids stay).
    pub fn is_simulated(&self) -> bool {
        *self == PretrainMembrane::Simulated
    }
}

fn tenth() -> f64 {
    0.1
}

impl DataConfig {
    /// Checks the fields that do not need the data: the pre-training fractions leave
    /// something to train on, `pretrain_max_feeds` is at least 1.
    pub fn validate(&self) -> Result<(), TrainError> {
        for (field, v) in [
            (
                "pretrain_validation_fraction",
                self.pretrain_validation_fraction,
            ),
            ("pretrain_test_fraction", self.pretrain_test_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(TrainError::invalid(field, v, "a fraction in [0, 1)"));
            }
        }
        if self.pretrain_validation_fraction + self.pretrain_test_fraction >= 1.0 {
            return Err(TrainError::invalid(
                "pretrain_validation_fraction",
                self.pretrain_validation_fraction,
                format!(
                    "a fraction that leaves training feeds beside pretrain_test_fraction = {}",
                    self.pretrain_test_fraction
                ),
            ));
        }
        if self.pretrain_max_feeds == Some(0) {
            return Err(TrainError::invalid("pretrain_max_feeds", 0, "at least 1"));
        }
        if self.pretrain_membrane == PretrainMembrane::Calibrated
            && (self.pretrain.is_none() || self.measured.is_empty())
        {
            return Err(TrainError::invalid(
                "pretrain_membrane",
                "calibrated",
                "a pretrain set whose feeds are solved again, and measured files to \
                 calibrate the membrane on",
            ));
        }
        if self.pretrain.is_none() && self.measured.is_empty() {
            return Err(TrainError::invalid(
                "data",
                "no pretrain set and no measured files",
                "a pretrain set, measured files, or both",
            ));
        }
        Ok(())
    }
}

/// A problem of a run config: the dotted key it is about and what is wrong with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigProblem {
    /// E.g. `finetune.learning_rate`.
    pub key: String,
    /// The text after the key: ` = 0: expected at least 1`, or `: why`.
    pub detail: String,
}

impl ConfigProblem {
    /// A validation error of the part at `parent` (`""` for the whole config).
    pub fn of(parent: &str, e: TrainError) -> ConfigProblem {
        match e {
            TrainError::Invalid {
                field,
                value,
                expected,
            } => ConfigProblem {
                key: if parent.is_empty() || field == parent {
                    field
                } else {
                    format!("{parent}.{field}")
                },
                detail: format!(" = {value}: expected {expected}"),
            },
            other => ConfigProblem {
                key: parent.to_string(),
                detail: format!(": {other}"),
            },
        }
    }

    /// The key as a path (`["finetune", "learning_rate"]`).
    pub fn path(&self) -> Vec<String> {
        self.key.split('.').map(String::from).collect()
    }
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.key, self.detail)
    }
}

impl crate::checked::Checked<RunConfig> {
    /// The same config with another seed (a seed has no range to check).
    pub fn with_seed(&self, seed: u64) -> Self {
        crate::checked::Checked::trusted(RunConfig {
            seed,
            ..RunConfig::clone(self)
        })
    }

    /// The same config with its data files named as `resolve` says (where a reader found
    /// them; a path has no range to check).
    pub fn with_data_files(&self, mut resolve: impl FnMut(&PathBuf) -> PathBuf) -> Self {
        let mut c = RunConfig::clone(self);
        c.data.pretrain = c.data.pretrain.as_ref().map(&mut resolve);
        c.data.measured = c.data.measured.iter().map(&mut resolve).collect();
        crate::checked::Checked::trusted(c)
    }
}

impl crate::checked::Check for RunConfig {
    type Problem = ConfigProblem;

    fn problems(&self) -> Vec<ConfigProblem> {
        RunConfig::problems(self)
    }
}

impl RunConfig {
    /// Every problem a config has without looking at the data: each part's own
    /// `validate` (model, stages, split, calibration, data). The one range check of a run
    /// config; readers locate the keys in their files, the run refuses to start on any.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if let Err(e) = self.model.validate() {
            out.push(match &e {
                ionode_model::ModelError::Config { field, why } => ConfigProblem {
                    key: format!("model.{field}"),
                    detail: format!(": {why}"),
                },
                _ => ConfigProblem {
                    key: "model".into(),
                    detail: format!(": {e}"),
                },
            });
        }
        for (name, stage) in [("pretrain", &self.pretrain), ("finetune", &self.finetune)] {
            if let Some(s) = stage {
                out.extend(s.problems().into_iter().map(|e| ConfigProblem::of(name, e)));
            }
        }
        if let Some(Err(e)) = self.split.as_ref().map(|s| s.validate()) {
            out.push(ConfigProblem::of("split", e));
        }
        let anchored = self.method == Method::Neural && self.model.prior != Prior::None;
        if anchored {
            if self.pretrain.is_some() {
                out.push(ConfigProblem {
                    key: "pretrain".into(),
                    detail: format!(
                        ": a physics-anchored model (model.prior = \"{}\") starts from the \
                         calibrated physics and is not pre-trained; remove [pretrain]",
                        self.model.prior.name()
                    ),
                });
            }
            if self.data.measured.is_empty() {
                out.push(ConfigProblem {
                    key: "model.prior".into(),
                    detail:
                        ": a physics prior is calibrated on measured data; data.measured is empty"
                            .into(),
                });
            }
        }
        let calibrates = self.data.pretrain_membrane == PretrainMembrane::Calibrated;
        if self.method == Method::DspmdeFit || anchored || calibrates {
            if let Err(e) = self.calibration.validate() {
                out.push(ConfigProblem::of("calibration", e));
            }
        }
        if let Err(e) = self.data.validate() {
            out.push(ConfigProblem::of("data", e));
        }
        if let Some(e) = &self.ensemble {
            out.extend(
                e.problems()
                    .into_iter()
                    .map(|(key, value, expected)| ConfigProblem {
                        key,
                        detail: format!(" = {value}: expected {expected}"),
                    }),
            );
            if self.data.measured.is_empty() {
                out.push(ConfigProblem {
                    key: "ensemble".into(),
                    detail: ": an ensemble's intervals are calibrated and scored on measured \
                             data; data.measured is empty"
                        .into(),
                });
            }
        }
        if !self.data.measured.is_empty() && self.split.is_none() {
            out.push(ConfigProblem {
                key: "split".into(),
                detail: ": measured data needs a [split] (kind = \"random\", \"by_family\" or \"first_n\")"
                    .into(),
            });
        }
        out
    }

    /// The pre-training data settings at their defaults.
    fn reset_pretrain_data(&mut self) {
        self.data.pretrain = None;
        self.data.pretrain_membrane = PretrainMembrane::Simulated;
        self.data.pretrain_max_feeds = None;
        self.data.pretrain_validation_fraction = tenth();
        self.data.pretrain_test_fraction = tenth();
    }

    /// The parts a method does not use reset to their defaults, so runs that differ only
    /// there are one run; returns the reset parts' keys. `dspmde_fit` ignores the model
    /// (but keeps its slots: they say which ions the data may hold) and the stages;
    /// neural methods ignore the calibration, except a physics-anchored one, which ignores
    /// pre-training instead (it starts from the calibrated physics), and one that
    /// calibrates its pre-training membrane (which a run without pre-training ignores).
    pub fn normalise(&mut self) -> Vec<&'static str> {
        match self.method {
            Method::DspmdeFit => {
                let slots = std::mem::take(&mut self.model.slots);
                self.model = ModelConfig {
                    slots,
                    ..Default::default()
                };
                self.pretrain = None;
                self.finetune = None;
                self.reset_pretrain_data();
                vec!["model", "pretrain", "finetune", "data.pretrain"]
            }
            // A physics-anchored model calibrates its prior with `[calibration]` and starts
            // from the physics instead of a pre-training.
            Method::Neural if self.model.prior != Prior::None => {
                self.pretrain = None;
                self.reset_pretrain_data();
                vec!["pretrain", "data.pretrain"]
            }
            Method::Neural => {
                let mut ignored = Vec::new();
                if self.pretrain.is_none()
                    && self.data.pretrain_membrane == PretrainMembrane::Calibrated
                {
                    // Nothing is pre-trained, so nothing is calibrated for it.
                    self.data.pretrain_membrane = PretrainMembrane::Simulated;
                    ignored.push("data.pretrain_membrane");
                }
                // Calibrate-then-pretrain calibrates with `[calibration]`.
                if self.data.pretrain_membrane == PretrainMembrane::Simulated {
                    self.calibration = Default::default();
                    ignored.push("calibration");
                }
                ignored
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> RunConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn every_problem_of_every_part_is_listed_with_its_key() {
        let c = config(
            "seed = 1\n[data]\nmeasured = [\"m.csv\"]\npretrain_test_fraction = 1.5\n\
             [model]\nhidden = 0\n[finetune]\nepochs = 0\nlearning_rate = -1.0\n",
        );
        let p: Vec<String> = c.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            p,
            [
                "model.hidden: 0 is not in 1..=4096",
                "finetune.epochs = 0: expected a count in 1..=1000000",
                "finetune.learning_rate = -1: expected a finite number > 0",
                "data.pretrain_test_fraction = 1.5: expected a fraction in [0, 1)",
                "split: measured data needs a [split] (kind = \"random\", \"by_family\" or \"first_n\")",
            ]
        );
        assert!(crate::checked::Check::check(c.clone()).is_err());
        let ok = config("seed = 1\n[data]\npretrain = \"p.h5\"\n");
        assert!(ok.problems().is_empty());
    }

    #[test]
    fn normalising_keeps_what_the_method_uses() {
        let mut c = config(
            "seed = 1\nmethod = \"dspmde_fit\"\n[data]\nmeasured = [\"m.csv\"]\n\
             [model]\nhidden = 8\nslots = [{ name = \"Na+\", charge = 1 }, { name = \"Cl-\", charge = -1 }]\n\
             [finetune]\nepochs = 3\n",
        );
        assert_eq!(
            c.normalise(),
            ["model", "pretrain", "finetune", "data.pretrain"]
        );
        assert_eq!(c.model.hidden, ModelConfig::default().hidden);
        assert_eq!(c.model.slots.len(), 2);
        assert!(c.finetune.is_none());
    }
}
