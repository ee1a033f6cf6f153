//! Train / validation / test splits, seeded and deterministic.
//!
//! The unit a split permutes is a *group*: the rows that share an `origin` in the
//! [`Samples`] (all fluxes of one simulated feed; one row of a measured file). Keeping a
//! simulated feed's flux points together stops a test feed from leaking into training
//! through its neighbouring fluxes. Fractions and `n_train` count groups; for measured data
//! a group is one row, so they count measurements.
//!
//! Seeds derive from the run seed only (never from execution order), and every spec draws
//! from the same stream, so `random` and `first_n` with the same seed and `test_fraction`
//! hold out the same test set, and `first_n` with n = 10 trains on a subset of n = 20.

use crate::data::Samples;
use crate::error::{Result, TrainError};
use ionode_random::{stream_seed, Rng};
use serde::{Deserialize, Serialize};

/// Mixed into the split stream's seed (distinct from batch and augmentation streams).
const SPLIT_STREAM_SALT: u64 = 0x7370_6c69_7473_2121;

/// How to split; part of a run's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitSpec {
    /// A random `test_fraction` of the groups is the test set; a random
    /// `validation_fraction` of the rest validates; the remainder trains.
    Random {
        test_fraction: f64,
        validation_fraction: f64,
    },
    /// Leave one composition family out: every row of `test_family` is the test set;
    /// a random `validation_fraction` of the other groups validates (unlabelled rows are
    /// in that pool), or, with `validate_on = "family"`, one whole other family does.
    ByFamily {
        test_family: String,
        validation_fraction: f64,
        /// What the validation set is: random rows (the default) or a whole family.
        #[serde(default, skip_serializing_if = "ValidateOn::is_rows")]
        validate_on: ValidateOn,
    },
    /// The data-limited setting: the test set is drawn as in `random`; from the rest, a
    /// fixed `validation_fraction` is held for validation, and training uses the first
    /// `n_train` groups of a seeded permutation of what remains. The validation set does
    /// not depend on `n_train`, and a smaller `n_train` trains on a subset of a larger
    /// one (same seed), so a learning curve varies only the training set.
    FirstN {
        n_train: usize,
        test_fraction: f64,
        validation_fraction: f64,
    },
    /// A model to ship: every row trains and nothing is held out for a test, but each
    /// family validates in turn in a nested run while the others train (as
    /// `validate_on = "each_family"` inside a leave-one-family-out fold), so the run's
    /// validation metrics (and an ensemble's intervals) measure transfer to a family it
    /// has not seen, and fine-tuning runs the nested runs' mean best epoch count.
    AllFamilies,
}

/// What a leave-one-family-out split validates on.
///
/// Random rows of the training families measure how well a model interpolates between the
/// salts it is trained on, which says little about a family it has never seen: on the
/// bundled NF270 data random rows gave validation MAEs of 0.02 to 0.06 where the held-out
/// family's test MAE was 0.42 to 1.11. A whole training family held out validates what a
/// leave-one-family-out test asks: transfer to an unseen salt. Which family is chosen by
/// the split's seed, so over the replicate seeds of a study the families take turns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidateOn {
    /// `validation_fraction` of the other groups, at random.
    #[default]
    Rows,
    /// Every row of one other family (rows without a family stay in training);
    /// `validation_fraction` is not used.
    Family,
    /// Each other family in turn, nested in the fold: the split itself has no validation
    /// rows; the run validates on every training family while the others train, then
    /// trains on them all (`crate::run`). `validation_fraction` is not used.
    EachFamily,
}

impl ValidateOn {
    /// Whether this is the default (omitted from configs, so older run ids stay).
    pub fn is_rows(&self) -> bool {
        *self == ValidateOn::Rows
    }
}

/// Row indices of each part, ascending; the three are disjoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub test: Vec<usize>,
}

fn check_fraction(field: &str, f: f64) -> Result<()> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(TrainError::invalid(field, f, "a fraction in [0, 1)"))
    }
}

/// `round(f * n)`, at most `n`.
fn part(f: f64, n: usize) -> usize {
    ((f * n as f64).round() as usize).min(n)
}

impl SplitSpec {
    /// Checks the fields that do not depend on the data (fractions in `[0, 1)`, `n_train`
    /// at least 1); the field names are those of the spec (`test_fraction`). Whether the
    /// data has the test family or enough rows is known only with the data, at
    /// [`SplitSpec::split`].
    pub fn validate(&self) -> Result<()> {
        match self {
            SplitSpec::Random {
                test_fraction,
                validation_fraction,
            } => {
                check_fraction("test_fraction", *test_fraction)?;
                check_fraction("validation_fraction", *validation_fraction)
            }
            SplitSpec::FirstN {
                n_train,
                test_fraction,
                validation_fraction,
            } => {
                if *n_train == 0 {
                    return Err(TrainError::invalid("n_train", n_train, "at least 1"));
                }
                check_fraction("test_fraction", *test_fraction)?;
                check_fraction("validation_fraction", *validation_fraction)
            }
            SplitSpec::ByFamily {
                test_family,
                validation_fraction,
                ..
            } => {
                if test_family.trim().is_empty() {
                    return Err(TrainError::invalid(
                        "test_family",
                        format!("{test_family:?}"),
                        "the name of a family of the data",
                    ));
                }
                check_fraction("validation_fraction", *validation_fraction)
            }
            SplitSpec::AllFamilies => Ok(()),
        }
    }

    /// Splits `samples` with `seed` (see the module docs for what is permuted).
    pub fn split(&self, samples: &Samples, seed: u64) -> Result<Split> {
        split_groups(self, &samples.origin, &samples.family, seed)
    }
}

/// The split over rows given each row's group key and family; [`SplitSpec::split`] uses
/// `Samples::origin` and `Samples::family`.
pub fn split_groups(
    spec: &SplitSpec,
    group: &[usize],
    family: &[Option<String>],
    seed: u64,
) -> Result<Split> {
    spec.validate()?;
    if group.len() != family.len() {
        return Err(TrainError::shape(
            "split",
            format!("{} group keys but {} families", group.len(), family.len()),
        ));
    }
    // Groups in order of first appearance, with their rows.
    let mut keys: Vec<usize> = Vec::new();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (row, &g) in group.iter().enumerate() {
        let k = *index.entry(g).or_insert_with(|| {
            keys.push(g);
            rows.push(Vec::new());
            keys.len() - 1
        });
        rows[k].push(row);
    }
    let n_groups = keys.len();
    let mut rng = Rng::new(stream_seed(seed ^ SPLIT_STREAM_SALT, 0));
    let mut perm: Vec<usize> = (0..n_groups).collect();
    rng.shuffle(&mut perm);

    let (test, validation, train): (Vec<usize>, Vec<usize>, Vec<usize>) = match spec {
        SplitSpec::AllFamilies => (Vec::new(), Vec::new(), perm.clone()),
        SplitSpec::Random {
            test_fraction,
            validation_fraction,
        } => {
            let n_test = part(*test_fraction, n_groups);
            let pool = &perm[n_test..];
            let n_val = part(*validation_fraction, pool.len());
            let cut = pool.len() - n_val;
            (
                perm[..n_test].to_vec(),
                pool[cut..].to_vec(),
                pool[..cut].to_vec(),
            )
        }
        SplitSpec::FirstN {
            n_train,
            test_fraction,
            validation_fraction,
        } => {
            let n_test = part(*test_fraction, n_groups);
            let pool = &perm[n_test..];
            let n_val = part(*validation_fraction, pool.len());
            let cut = pool.len() - n_val;
            if *n_train > cut {
                return Err(TrainError::invalid(
                    "n_train",
                    n_train,
                    format!("at most {cut} (the groups left after test and validation)"),
                ));
            }
            (
                perm[..n_test].to_vec(),
                pool[cut..].to_vec(),
                pool[..*n_train].to_vec(),
            )
        }
        SplitSpec::ByFamily {
            test_family,
            validation_fraction,
            validate_on,
        } => {
            // A group's family is that of its first row (a group is one feed).
            let fam = |k: usize| family[rows[k][0]].as_deref();
            by_family(
                (test_family, *validation_fraction, *validate_on),
                &perm,
                &fam,
                &mut rng,
            )?
        }
    };
    if train.is_empty() {
        return Err(TrainError::invalid(
            "split",
            format!("{spec:?} of {n_groups} groups"),
            "a non-empty training set",
        ));
    }
    let expand = |gs: Vec<usize>| {
        let mut out: Vec<usize> = gs.into_iter().flat_map(|k| rows[k].clone()).collect();
        out.sort_unstable();
        out
    };
    Ok(Split {
        train: expand(train),
        validation: expand(validation),
        test: expand(test),
    })
}

/// The groups of a leave-one-family-out split, as (test, validation, train) group
/// indices: the test family's groups, and the rest validated as `validate_on` says.
fn by_family<'a>(
    (test_family, validation_fraction, validate_on): (&str, f64, ValidateOn),
    perm: &[usize],
    fam: &dyn Fn(usize) -> Option<&'a str>,
    rng: &mut Rng,
) -> Result<(Vec<usize>, Vec<usize>, Vec<usize>)> {
    if !(0..perm.len()).any(|k| fam(k) == Some(test_family)) {
        let mut present: Vec<&str> = Vec::new();
        for k in 0..perm.len() {
            if let Some(f) = fam(k) {
                if !present.contains(&f) {
                    present.push(f);
                }
            }
        }
        return Err(TrainError::UnknownFamily {
            family: test_family.to_string(),
            present: if present.is_empty() {
                "none (no row has a family)".into()
            } else {
                present.join(", ")
            },
        });
    }
    let (test, pool): (Vec<usize>, Vec<usize>) =
        perm.iter().partition(|&&k| fam(k) == Some(test_family));
    Ok(match validate_on {
        ValidateOn::Rows => {
            let n_val = part(validation_fraction, pool.len());
            let cut = pool.len() - n_val;
            (test, pool[cut..].to_vec(), pool[..cut].to_vec())
        }
        ValidateOn::EachFamily => (test, Vec::new(), pool),
        ValidateOn::Family => {
            // The other families in order of first appearance, one drawn by the
            // split's stream (after the permutation, so the test set is as ever).
            let mut others: Vec<&str> = Vec::new();
            for &k in &pool {
                if let Some(f) = fam(k) {
                    if !others.contains(&f) {
                        others.push(f);
                    }
                }
            }
            others.sort_unstable();
            if others.len() < 2 {
                return Err(TrainError::invalid(
                    "validate_on",
                    "family",
                    format!(
                        "at least two families besides the test family '{test_family}' \
                         (one validates, the others train); found {}",
                        others.len()
                    ),
                ));
            }
            let chosen = others[rng.int_inclusive(0, others.len() - 1)];
            let (validation, train): (Vec<usize>, Vec<usize>) =
                pool.iter().partition(|&&k| fam(k) == Some(chosen));
            (test, validation, train)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 40 groups of 3 rows each (a simulated dataset's shape); families cycle over three.
    fn rows() -> (Vec<usize>, Vec<Option<String>>) {
        let group: Vec<usize> = (0..120).map(|r| r / 3).collect();
        let family = group
            .iter()
            .map(|g| Some(["NaCl", "MgSO4", "LiCl+MgCl2"][g % 3].to_string()))
            .collect();
        (group, family)
    }

    fn check_partition(s: &Split, n: usize) {
        let mut all: Vec<usize> = [&s.train, &s.validation, &s.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        let total = s.train.len() + s.validation.len() + s.test.len();
        assert_eq!(all.len(), total, "parts overlap");
        assert!(all.iter().all(|&r| r < n));
    }

    fn same_group(s: &[usize], group: &[usize]) -> bool {
        // Every group is wholly inside or outside the part.
        s.iter().all(|&r| {
            group
                .iter()
                .enumerate()
                .all(|(o, &g)| g != group[r] || s.contains(&o))
        })
    }

    #[test]
    fn random_split_is_disjoint_covering_grouped_and_deterministic() {
        let (g, f) = rows();
        let spec = SplitSpec::Random {
            test_fraction: 0.2,
            validation_fraction: 0.25,
        };
        let s = split_groups(&spec, &g, &f, 11).unwrap();
        check_partition(&s, 120);
        assert_eq!(s.train.len() + s.validation.len() + s.test.len(), 120);
        assert_eq!(
            (s.test.len(), s.validation.len(), s.train.len()),
            (24, 24, 72)
        );
        for part in [&s.train, &s.validation, &s.test] {
            assert!(same_group(part, &g));
        }
        assert_eq!(s, split_groups(&spec, &g, &f, 11).unwrap());
        assert_ne!(s, split_groups(&spec, &g, &f, 12).unwrap());
    }

    #[test]
    fn by_family_holds_out_exactly_one_family() {
        let (g, f) = rows();
        let spec = SplitSpec::ByFamily {
            test_family: "MgSO4".into(),
            validation_fraction: 0.1,
            validate_on: ValidateOn::Rows,
        };
        let s = split_groups(&spec, &g, &f, 3).unwrap();
        check_partition(&s, 120);
        assert_eq!(s.train.len() + s.validation.len() + s.test.len(), 120);
        assert!(s.test.iter().all(|&r| f[r].as_deref() == Some("MgSO4")));
        assert_eq!(s.test.len(), 13 * 3);
        assert!(s
            .train
            .iter()
            .chain(&s.validation)
            .all(|&r| f[r].as_deref() != Some("MgSO4")));
        let bad = SplitSpec::ByFamily {
            test_family: "CaCl2".into(),
            validation_fraction: 0.1,
            validate_on: ValidateOn::Rows,
        };
        let msg = split_groups(&bad, &g, &f, 3).unwrap_err().to_string();
        assert!(
            msg.contains("CaCl2") && msg.contains("NaCl, MgSO4, LiCl+MgCl2"),
            "{msg}"
        );
    }

    #[test]
    fn family_validation_holds_out_one_whole_other_family_chosen_by_the_seed() {
        let (g, f) = rows();
        let spec = SplitSpec::ByFamily {
            test_family: "MgSO4".into(),
            validation_fraction: 0.1,
            validate_on: ValidateOn::Family,
        };
        let mut chosen = std::collections::BTreeSet::new();
        for seed in 0..12 {
            let s = split_groups(&spec, &g, &f, seed).unwrap();
            check_partition(&s, 120);
            let family_of = |r: &usize| f[*r].clone().unwrap();
            let val: std::collections::BTreeSet<String> =
                s.validation.iter().map(family_of).collect();
            assert_eq!(val.len(), 1, "{val:?}");
            let v = val.into_iter().next().unwrap();
            assert_ne!(v, "MgSO4");
            // Every row of that family validates; none trains; the test set is as with rows.
            let in_family = f
                .iter()
                .filter(|x| x.as_deref() == Some(v.as_str()))
                .count();
            assert_eq!(s.validation.len(), in_family);
            assert!(s
                .train
                .iter()
                .all(|r| family_of(r) != v && family_of(r) != "MgSO4"));
            let rows_spec = SplitSpec::ByFamily {
                test_family: "MgSO4".into(),
                validation_fraction: 0.1,
                validate_on: ValidateOn::Rows,
            };
            assert_eq!(split_groups(&rows_spec, &g, &f, seed).unwrap().test, s.test);
            chosen.insert(v);
        }
        assert_eq!(
            chosen.len(),
            2,
            "both other families take turns over the seeds"
        );
        // With one other family there is nothing left to train on.
        let two: Vec<Option<String>> = g
            .iter()
            .map(|k| Some(["NaCl", "MgSO4"][k % 2].to_string()))
            .collect();
        let e = split_groups(&spec, &g, &two, 1).unwrap_err().to_string();
        assert!(e.contains("at least two families"), "{e}");
        // Written as before when it is the default.
        let json = serde_json::to_string(&SplitSpec::ByFamily {
            test_family: "x".into(),
            validation_fraction: 0.1,
            validate_on: ValidateOn::Rows,
        })
        .unwrap();
        assert!(!json.contains("validate_on"), "{json}");
    }

    #[test]
    fn first_n_nests_and_shares_test_and_validation() {
        let (g, f) = rows();
        let spec = |n| SplitSpec::FirstN {
            n_train: n,
            test_fraction: 0.25,
            validation_fraction: 0.2,
        };
        let s10 = split_groups(&spec(10), &g, &f, 5).unwrap();
        let s20 = split_groups(&spec(20), &g, &f, 5).unwrap();
        check_partition(&s10, 120);
        check_partition(&s20, 120);
        assert_eq!(s10.train.len(), 30);
        assert_eq!(s20.train.len(), 60);
        assert!(
            s10.train.iter().all(|r| s20.train.contains(r)),
            "not nested"
        );
        assert_eq!(s10.test, s20.test);
        assert_eq!(s10.validation, s20.validation);
        // The same test set as `random` with the same seed and fraction.
        let r = split_groups(
            &SplitSpec::Random {
                test_fraction: 0.25,
                validation_fraction: 0.2,
            },
            &g,
            &f,
            5,
        )
        .unwrap();
        assert_eq!(r.test, s10.test);
        assert_eq!(r.validation, s10.validation);
        // 30 groups after test; 6 validate; at most 24 train.
        assert!(split_groups(&spec(24), &g, &f, 5).is_ok());
        assert!(split_groups(&spec(25), &g, &f, 5).is_err());
    }

    #[test]
    fn bad_fractions_and_empty_training_are_refused() {
        let (g, f) = rows();
        let spec = SplitSpec::Random {
            test_fraction: 1.0,
            validation_fraction: 0.1,
        };
        assert!(split_groups(&spec, &g, &f, 1).is_err());
        let spec = SplitSpec::FirstN {
            n_train: 0,
            test_fraction: 0.1,
            validation_fraction: 0.1,
        };
        assert!(split_groups(&spec, &g, &f, 1).is_err());
    }

    #[test]
    fn spec_is_tagged_serde() {
        let spec: SplitSpec = serde_json::from_str(
            r#"{"kind": "first_n", "n_train": 10, "test_fraction": 0.2, "validation_fraction": 0.1}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            SplitSpec::FirstN {
                n_train: 10,
                test_fraction: 0.2,
                validation_fraction: 0.1
            }
        );
        let json = serde_json::to_string(&SplitSpec::ByFamily {
            test_family: "NaCl".into(),
            validation_fraction: 0.1,
            validate_on: ValidateOn::Rows,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"kind":"by_family","test_family":"NaCl","validation_fraction":0.1}"#
        );
    }
}
