//! Tracking across studies: every finished run under the folders a user names (study
//! runs and `ablate train` folders alike) as one table of facts, filtered by a small
//! language, sorted, and written for a terminal, CSV, JSON or Parquet; two runs compared.
//!
//! [`find`] reads each run's cached facts ([`ionode_study::facts`]) with its tags and note
//! ([`ionode_study::annotations`]); [`filter`] parses and checks a `--where` expression
//! against the fields the runs have; [`table`] chooses, sorts and writes the columns;
//! [`compare`] puts two runs side by side. Nothing here prints.

pub mod compare;
pub mod error;
pub mod filter;
pub mod find;
pub mod pages;
pub mod table;
