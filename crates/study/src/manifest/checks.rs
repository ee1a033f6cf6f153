//! The checks of a resolved run config that need the measured data: the test family
//! exists, `n_train` fits, every ion has a slot (its range checks are the config's own,
//! `Check::check`). Each problem comes back as the run-config key path it is about, so
//! the caller can say where the user wrote it.

use super::locate::{key_path, KeyPath};
use crate::runner::DataCache;
use ionode_train::error::TrainError;
use ionode_train::run::{ConfigProblem, RunConfig};
use std::path::Path;

/// A problem of a run config: the key path and the text after the key (`= 0: expected
/// at least 1`, or `: why`).
pub type Problem = (KeyPath, String);

/// The checks that need the measured data: the split can be made (its test family is in
/// the data, `n_train` rows are left), and the data's ions have slots. `resolve` turns a
/// config's data path into the file to read. Reads go through `cache`, so a study's runs
/// parse each file once.
pub fn data_problems(
    c: &RunConfig,
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
                format!(": {}", crate::errors::one_line(&e)),
            )]
        }
    };
    let Some(samples) = samples.as_ref() else {
        return Vec::new();
    };
    let Some(spec) = &c.split else {
        return Vec::new(); // a problem of the config, reported with the range checks
    };
    match spec.split(samples, c.seed) {
        Ok(_) => Vec::new(),
        Err(TrainError::UnknownFamily { family, present }) => vec![(
            key_path(&["split", "test_family"]),
            format!(" = \"{family}\": not a family of the data; the families are {present}"),
        )],
        Err(e) => {
            let p = ConfigProblem::of("split", e);
            vec![(p.path(), p.detail)]
        }
    }
}
