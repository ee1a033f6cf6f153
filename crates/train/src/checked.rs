//! Settings checked once (linfa's checked-parameter idea): a [`Checked`] value can only be
//! made by [`Check::check`], which runs every range check of the settings and refuses
//! them with all their problems at once. The run ([`crate::run::run`]) and the trainer
//! ([`crate::trainer::train_stage`]) accept only checked settings, so they check nothing
//! again; readers (a manifest, `ablate train`'s config) check once and locate the
//! problems. Reading a `Checked` value with serde checks it too.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt::Display;
use std::ops::Deref;

/// Settings with range checks.
pub trait Check: Sized {
    /// One problem, naming its field.
    type Problem: Display;

    /// Every problem of the settings (none when they are valid).
    fn problems(&self) -> Vec<Self::Problem>;

    /// The settings, checked; or all their problems.
    fn check(self) -> Result<Checked<Self>, Vec<Self::Problem>> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(Checked(self))
        } else {
            Err(problems)
        }
    }
}

/// Settings that passed their checks. Read-only (through `Deref`); changing one means
/// checking the result again.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T>(T);

impl<T> Checked<T> {
    /// The settings, to change them (then check them again).
    pub fn into_inner(self) -> T {
        self.0
    }

    /// Settings known valid because they are part of settings that were checked whole
    /// (a run config's stage, say).
    pub(crate) fn trusted(value: T) -> Checked<T> {
        Checked(value)
    }
}

impl<T> Deref for Checked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Serialised exactly as the settings are.
impl<T: Serialize> Serialize for Checked<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Read and checked: settings with a problem are a serde error listing them.
impl<'de, T: Deserialize<'de> + Check> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer)?.check().map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(text.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rate(f64);

    impl Check for Rate {
        type Problem = String;
        fn problems(&self) -> Vec<String> {
            if self.0 > 0.0 {
                vec![]
            } else {
                vec![format!("rate = {}: expected > 0", self.0)]
            }
        }
    }

    #[test]
    fn only_valid_settings_are_checked_and_reading_checks() {
        assert_eq!(*Rate(0.1).check().unwrap(), Rate(0.1));
        assert_eq!(Rate(-1.0).check().unwrap_err(), ["rate = -1: expected > 0"]);
        let read: Result<Checked<Rate>, _> = serde_json::from_str("-2.0");
        assert!(read
            .unwrap_err()
            .to_string()
            .contains("rate = -2: expected > 0"));
        let ok: Checked<Rate> = serde_json::from_str("2.0").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "2.0");
    }
}
