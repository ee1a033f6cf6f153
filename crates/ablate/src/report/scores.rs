//! Scores of configurations, computed from the summary frame with polars, so every number
//! of a table or figure can be recomputed from `summary.parquet`:
//!
//! 1. per configuration (`cell`) and seed, the mean of the metric over the seed's runs
//!    (the folds of a leave-one-family-out setting; one run otherwise);
//! 2. per configuration, the mean, sample standard deviation (n - 1) and count of those
//!    per-seed values.
//!
//! Runs without the metric (an empty part) are left out before step 1.

use super::stats::Paired;
use super::Stat;
use anyhow::{Context, Result};
use polars::prelude::{col, DataFrame, DataType, IntoLazy};
use std::collections::BTreeMap;

/// One metric's scores of every configuration.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// cell -> seed -> value.
    pub per_seed: BTreeMap<String, BTreeMap<u64, f64>>,
    /// cell -> mean, std, n over seeds.
    pub stat: BTreeMap<String, Stat>,
}

impl Scores {
    /// The scores of `metric` (a float column of the summary); empty if the frame has no
    /// such column.
    pub fn of(frame: &DataFrame, metric: &str) -> Result<Scores> {
        if frame.column(metric).is_err() {
            return Ok(Scores::default());
        }
        let what = || format!("computing the scores of '{metric}' from the summary");
        let per_seed = frame
            .clone()
            .lazy()
            .filter(col(metric).is_not_null())
            .group_by([col("cell"), col("seed")])
            .agg([col(metric).cast(DataType::Float64).mean()]);
        let stats = per_seed
            .clone()
            .group_by([col("cell")])
            .agg([
                col(metric).mean().alias("mean"),
                col(metric).std(1).alias("std"),
                col(metric).count().cast(DataType::UInt64).alias("n"),
            ])
            .collect()
            .with_context(what)?;
        let per_seed = per_seed.collect().with_context(what)?;

        let mut out = Scores::default();
        let cells = per_seed.column("cell")?.str()?;
        let seeds = per_seed.column("seed")?.u64()?;
        let values = per_seed.column(metric)?.f64()?;
        for i in 0..per_seed.height() {
            if let (Some(c), Some(s), Some(v)) = (cells.get(i), seeds.get(i), values.get(i)) {
                out.per_seed.entry(c.to_string()).or_default().insert(s, v);
            }
        }
        let cells = stats.column("cell")?.str()?;
        let mean = stats.column("mean")?.f64()?;
        let std = stats.column("std")?.f64()?;
        let n = stats.column("n")?.u64()?;
        for i in 0..stats.height() {
            if let (Some(c), Some(m), Some(n)) = (cells.get(i), mean.get(i), n.get(i)) {
                out.stat.insert(
                    c.to_string(),
                    Stat {
                        mean: m,
                        // One seed has no spread (polars gives null).
                        std: std.get(i).filter(|_| n > 1).unwrap_or(f64::NAN),
                        n: n as usize,
                    },
                );
            }
        }
        Ok(out)
    }

    pub fn get(&self, cell: &str) -> Option<Stat> {
        self.stat.get(cell).copied()
    }

    /// The paired comparison of two configurations (a - b over shared seeds).
    pub fn paired(&self, a: &str, b: &str) -> Option<Paired> {
        let p = Paired::of(self.per_seed.get(a)?, self.per_seed.get(b)?);
        (p.n > 0).then_some(p)
    }
}
