//! The checks of a resolved run config that serde cannot make: every config type's own
//! `validate` (model, stages, split, calibration, data), and the checks that need the
//! measured data (the test family exists, `n_train` fits, every ion has a slot). Each
//! problem comes back as the run-config key path it is about, so the caller can say where
//! the user wrote it.

use super::locate::{key_path, KeyPath};
use crate::commands::train::{Method, TrainConfig};
use crate::runner::DataCache;
use ionode_train::error::TrainError;
use std::path::Path;

/// A problem of a run config: the key path and the text after the key (`= 0: expected
/// at least 1`, or `: why`).
pub type Problem = (KeyPath, String);

/// A validation error of the config part at `parent` as a [`Problem`].
fn problem(parent: &str, e: TrainError) -> Problem {
    match e {
        TrainError::Invalid {
            field,
            value,
            expected,
        } => {
            let path = if parent.is_empty() || field == parent {
                field
            } else {
                format!("{parent}.{field}")
            };
            (
                path.split('.').map(String::from).collect(),
                format!(" = {value}: expected {expected}"),
            )
        }
        other => (key_path(&[parent]), format!(": {other}")),
    }
}

/// The range checks of every part of a run config.
pub fn range_problems(c: &TrainConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(e) = c.model.validate() {
        out.push(match &e {
            ionode_model::ModelError::Config { field, why } => (
                format!("model.{field}")
                    .split('.')
                    .map(String::from)
                    .collect(),
                format!(": {why}"),
            ),
            _ => (key_path(&["model"]), format!(": {e}")),
        });
    }
    for (name, stage) in [("pretrain", &c.pretrain), ("finetune", &c.finetune)] {
        if let Some(s) = stage {
            out.extend(s.problems().into_iter().map(|e| problem(name, e)));
        }
    }
    if let Some(Err(e)) = c.split.as_ref().map(|s| s.validate()) {
        out.push(problem("split", e));
    }
    if c.method == Method::DspmdeFit {
        if let Err(e) = c.calibration.validate() {
            out.push(problem("calibration", e));
        }
    }
    if let Err(e) = c.data.validate() {
        out.push(problem("data", e));
    }
    out
}

/// The checks that need the measured data: the split can be made (its test family is in
/// the data, `n_train` rows are left), and the data's ions have slots. `resolve` turns a
/// config's data path into the file to read. Reads go through `cache`, so a study's runs
/// parse each file once.
pub fn data_problems(
    c: &TrainConfig,
    resolve: &dyn Fn(&Path) -> std::path::PathBuf,
    cache: &DataCache,
) -> Vec<Problem> {
    if c.data.measured.is_empty() {
        return Vec::new();
    }
    let files: Vec<_> = c.data.measured.iter().map(|p| resolve(p)).collect();
    if files.iter().any(|f| !f.exists()) {
        // Missing files are reported where they are named.
        return Vec::new();
    }
    let slots: Vec<&str> = c.model.slots.iter().map(|s| s.name.as_str()).collect();
    let db = ionode_physics::IonDb::builtin();
    let samples = match cache.measured(&files, &c.data.balance_with, &slots, &db) {
        Ok(s) => s,
        Err(e) => {
            return vec![(
                key_path(&["data", "measured"]),
                format!(": {}", crate::commands::one_line(&e)),
            )]
        }
    };
    let Some(samples) = samples.as_ref() else {
        return Vec::new();
    };
    match &c.split {
        None => vec![(
            key_path(&["split"]),
            ": measured data needs a [split] (kind = \"random\", \"by_family\" or \"first_n\")"
                .into(),
        )],
        Some(spec) => match spec.split(samples, c.seed) {
            Ok(_) => Vec::new(),
            Err(TrainError::UnknownFamily { family, present }) => vec![(
                key_path(&["split", "test_family"]),
                format!(" = \"{family}\": not a family of the data; the families are {present}"),
            )],
            Err(e) => vec![problem("split", e)],
        },
    }
}
