//! The summary: one row per finished run, typed columns, the lossless layer every table
//! and figure of the report is computed from (`summary.parquet`, and `summary.csv` written
//! from the same frame, so the two agree).
//!
//! Columns, in order:
//! - `run_id`, `plan_index` (u64), `seed` (u64, the replicate seed);
//! - the roles ([`super::roles`]): `model`, `constraint`, `pretrained` (bool), `split`,
//!   `n_train` (u64), `test_family`, `setting`, `cell`;
//! - `config.<path>`: the resolved config flattened ([`ionode_train::run::CanonicalConfig::leaves`] of the
//!   `config_json` the run wrote), each
//!   column of its leaves' type (bool, i64, f64, or text; lists as JSON text); a stage
//!   that does not run leaves its columns empty;
//! - metrics of the measured data: `test_mae`, `test_rmse`, `test_r2`, `test_en_mean`,
//!   `test_en_max`, the same for `validation_` and `train_`; in a study with ensembles,
//!   `test_coverage` and `test_interval_width` (share of measured values inside their
//!   interval, mean width in rejection), the same for `validation_` and `train_`;
//!   `n_test` (rows scored);
//!   `pretrain_test_mae` when any run pre-trained; `test_mae_<ion>` per ion (canonical
//!   ion names, e.g. `test_mae_Mg^2+`);
//! - `seconds_total`, `seconds_pretrain`, `seconds_finetune`, `synthetic` (bool),
//!   `git_commit`, `git_dirty` (bool), `manifest_hash`, `created_utc`, `overrides` (the
//!   study's `--set` arguments, one per line; null when none); in a study with `[search]`,
//!   `search.budget` (i64 or f64, before `created_utc`: the run's budget, null where its
//!   method ignores it).
//!
//! An undefined value (a metric of an empty part, an R² of a constant target) is an empty
//! cell, never NaN.

use super::collect::{Run, Study};
use super::roles::Roles;
use crate::error::{Context, Result};
use ionode_study::output;
use ionode_train::metrics::Metrics;
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// A metric column of the measured data: (suffix, value).
type MetricFn = fn(&Metrics) -> Option<f64>;
const METRICS: [(&str, MetricFn); 5] = [
    ("mae", |m| m.mae),
    ("rmse", |m| m.rmse),
    ("r2", |m| m.r2),
    ("en_mean", |m| m.electroneutrality_mean),
    ("en_max", |m| m.electroneutrality_max),
];

/// The summary frame of a study (rows in the study's run order).
pub fn frame(study: &Study, roles: &[Roles]) -> Result<DataFrame> {
    let runs = &study.runs;
    let n = runs.len();
    let text = |name: &str, f: &dyn Fn(usize) -> Option<String>| {
        Column::new(name.into(), (0..n).map(f).collect::<Vec<_>>())
    };
    let num = |name: &str, f: &dyn Fn(&Run) -> Option<f64>| {
        Column::new(
            name.into(),
            runs.iter()
                .map(|r| f(r).filter(|v| v.is_finite()))
                .collect::<Vec<_>>(),
        )
    };
    let mut cols = vec![
        text("run_id", &|i| {
            Some(runs[i].record.head.provenance.run_id.clone())
        }),
        Column::new(
            "plan_index".into(),
            runs.iter()
                .map(|r| r.record.head.provenance.plan_index)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "seed".into(),
            runs.iter().map(|r| r.seed()).collect::<Vec<u64>>(),
        ),
        text("model", &|i| Some(roles[i].model.clone())),
        text("constraint", &|i| roles[i].constraint.clone()),
        Column::new(
            "pretrained".into(),
            roles.iter().map(|r| r.pretrained).collect::<Vec<_>>(),
        ),
        text("split", &|i| Some(roles[i].split.to_string())),
        Column::new(
            "n_train".into(),
            roles.iter().map(|r| r.n_train).collect::<Vec<_>>(),
        ),
        text("test_family", &|i| roles[i].test_family.clone()),
        text("setting", &|i| Some(roles[i].setting.clone())),
        text("cell", &|i| Some(roles[i].cell.clone())),
    ];
    cols.extend(config_columns(runs)?);
    for part in ["test", "validation", "train"] {
        for (suffix, f) in METRICS {
            cols.push(num(&format!("{part}_{suffix}"), &|r| r.measured(part, f)));
        }
    }
    // An ensemble's intervals: only in a study that has any, so other summaries keep
    // their columns.
    let intervals: [(&str, MetricFn); 2] = [
        ("coverage", |m| m.coverage),
        ("interval_width", |m| m.interval_width),
    ];
    if runs
        .iter()
        .any(|r| r.measured("test", |m| m.coverage).is_some())
    {
        for part in ["test", "validation", "train"] {
            for (suffix, f) in intervals {
                cols.push(num(&format!("{part}_{suffix}"), &|r| r.measured(part, f)));
            }
        }
    }
    cols.push(Column::new(
        "n_test".into(),
        runs.iter()
            .map(|r| {
                r.record
                    .metrics
                    .measured
                    .as_ref()
                    .and_then(|m| m.test.as_ref())
                    .map(|t| t.n_samples as u64)
            })
            .collect::<Vec<_>>(),
    ));
    let pretrain_mae = |r: &Run| {
        r.record
            .metrics
            .pretrain
            .as_ref()
            .and_then(|p| p.test.as_ref())
            .and_then(|t| t.mae)
    };
    if runs.iter().any(|r| pretrain_mae(r).is_some()) {
        cols.push(num("pretrain_test_mae", &pretrain_mae));
    }
    let mut species: Vec<String> = runs.iter().flat_map(|r| per_ion(r).into_keys()).collect();
    species.sort();
    species.dedup();
    for s in &species {
        cols.push(num(&format!("test_mae_{s}"), &|r| {
            per_ion(r).get(s).copied()
        }));
    }
    let t = |r: &Run| r.record.timings;
    cols.push(num("seconds_total", &|r| Some(t(r).total)));
    cols.push(num("seconds_pretrain", &|r| Some(t(r).pretrain)));
    cols.push(num("seconds_finetune", &|r| Some(t(r).finetune)));
    cols.push(Column::new(
        "synthetic".into(),
        runs.iter().map(|r| r.record.synthetic).collect::<Vec<_>>(),
    ));
    let p = |i: usize| &runs[i].record.head.provenance;
    cols.push(text("git_commit", &|i| Some(p(i).git_commit.clone())));
    cols.push(Column::new(
        "git_dirty".into(),
        (0..n).map(|i| p(i).git_dirty).collect::<Vec<_>>(),
    ));
    cols.push(text("manifest_hash", &|i| Some(p(i).manifest_hash.clone())));
    let budget = |i: usize| {
        runs[i]
            .record
            .head
            .axes
            .get(ionode_study::manifest::SEARCH_BUDGET_AXIS)
    };
    if (0..n).any(|i| budget(i).is_some()) {
        let name = ionode_study::manifest::SEARCH_BUDGET_AXIS;
        if (0..n).all(|i| budget(i).is_none_or(|v| v.is_null() || v.is_i64())) {
            cols.push(Column::new(
                name.into(),
                (0..n)
                    .map(|i| budget(i).and_then(|v| v.as_i64()))
                    .collect::<Vec<_>>(),
            ));
        } else {
            cols.push(Column::new(
                name.into(),
                (0..n)
                    .map(|i| budget(i).and_then(|v| v.as_f64()))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    cols.push(text("created_utc", &|i| Some(p(i).created_utc.clone())));
    cols.push(text("overrides", &|i| {
        let o = &p(i).overrides;
        (!o.is_empty()).then(|| o.join("\n"))
    }));
    DataFrame::new(n, cols).context("cannot build the summary table")
}

/// Per-ion test MAE of the measured data: species -> value.
pub fn per_ion(r: &Run) -> BTreeMap<String, f64> {
    r.record
        .metrics
        .measured
        .as_ref()
        .and_then(|m| m.test.as_ref())
        .map(|t| {
            t.per_ion
                .iter()
                .filter_map(|i| i.mae.map(|v| (i.species.clone(), v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The flattened configs as typed columns: a column is boolean, integer (i64, or u64 for
/// seeds beyond i64) or float when every value it has is, text otherwise (lists and mixed
/// kinds as JSON text).
fn config_columns(runs: &[Run]) -> Result<Vec<Column>> {
    let flat: Vec<BTreeMap<String, &Value>> = runs
        .iter()
        .map(|r| r.record.head.canonical().leaves().into_iter().collect())
        .collect();
    let mut keys: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut cols = Vec::new();
    for key in keys {
        let values: Vec<Option<&Value>> = flat.iter().map(|m| m.get(key).copied()).collect();
        let present = || values.iter().flatten();
        let name = format!("config.{key}");
        let col = if present().all(|v| v.is_boolean()) {
            Column::new(
                name.into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_bool))
                    .collect::<Vec<_>>(),
            )
        } else if present().all(|v| v.is_i64()) {
            Column::new(
                name.into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_i64))
                    .collect::<Vec<_>>(),
            )
        } else if present().all(|v| v.is_u64()) {
            Column::new(
                name.into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_u64))
                    .collect::<Vec<_>>(),
            )
        } else if present().all(|v| v.is_number()) {
            Column::new(
                name.into(),
                values
                    .iter()
                    .map(|v| v.and_then(Value::as_f64))
                    .collect::<Vec<_>>(),
            )
        } else {
            Column::new(
                name.into(),
                values
                    .iter()
                    .map(|v| {
                        v.map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        };
        cols.push(col);
    }
    Ok(cols)
}

/// Writes `summary.parquet` and `summary.csv` into `dir` (each atomically).
pub fn write(df: &mut DataFrame, dir: &Path) -> Result<()> {
    let parquet = dir.join("summary.parquet");
    output::write_atomically(&parquet, |tmp| {
        let what = |kind: &str| format!("cannot write {kind}'{}'", tmp.display());
        let mut file = std::fs::File::create(tmp).with_context(|| what(""))?;
        ParquetWriter::new(&mut file)
            .finish(df)
            .with_context(|| what("Parquet "))?;
        Ok::<_, crate::error::ReportError>(())
    })?;
    let csv = dir.join("summary.csv");
    output::write_atomically(&csv, |tmp| {
        let what = |kind: &str| format!("cannot write {kind}'{}'", tmp.display());
        let mut file = std::fs::File::create(tmp).with_context(|| what(""))?;
        CsvWriter::new(&mut file)
            .include_header(true)
            .finish(df)
            .with_context(|| what("CSV "))
    })?;
    Ok(())
}
