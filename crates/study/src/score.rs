//! A search's scores: a run's metric read from its record, a candidate's mean over its
//! seeds' runs, and the ranking every search decision uses. The metric is read from a
//! run's train or validation part, never its test part (see
//! [`crate::manifest::search_spec`]).

use crate::manifest::search_spec::{Direction, MetricRef};
use crate::{record, store};
use ionode_train::observe::Stage;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::path::Path;

/// One candidate's score at a rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub candidate: usize,
    /// Mean of the metric over the candidate's runs; `None` when a run failed or its
    /// metric is undefined (ranked last).
    pub score: Option<f64>,
    /// The runs scored, in seed order.
    pub runs: Vec<String>,
}

/// A finished run's metric: `Some(None)` when it failed or the metric is undefined,
/// `None` when the run is not finished (missing or damaged).
fn run_score(study_dir: &Path, id: &str, metric: &MetricRef) -> Option<Option<f64>> {
    match store::state(study_dir, id) {
        store::State::Done => {}
        store::State::Failed(_) => return Some(None),
        store::State::Missing | store::State::Damaged(_) => return None,
    }
    let path = store::run_dir(study_dir, id).join(store::RUN_FILE);
    let r = record::read(&path).ok()?;
    Some(metric_of(&r.metrics, metric))
}

/// A run's metric from its record's metrics; `None` when it is undefined.
pub fn metric_of(metrics: &ionode_train::run::RunMetrics, metric: &MetricRef) -> Option<f64> {
    let split = match metric.stage {
        Stage::Pretrain => metrics.pretrain.as_ref(),
        Stage::Finetune => metrics.measured.as_ref(),
    };
    let part = split.and_then(|s| match metric.part.as_str() {
        "train" => s.train.as_ref(),
        _ => s.validation.as_ref(),
    });
    part.and_then(|m| match metric.name.as_str() {
        "mae" => m.mae,
        "rmse" => m.rmse,
        "r2" => m.r2,
        "electroneutrality_mean" => m.electroneutrality_mean,
        "electroneutrality_max" => m.electroneutrality_max,
        _ => None,
    })
    .filter(|v| v.is_finite())
}

/// Best first: defined scores in the metric's direction, undefined last, ties by the
/// candidate's first run id (a stable, content-derived order).
pub fn rank(scored: &mut [Scored], direction: Direction) {
    scored.sort_by(|a, b| {
        let by_score = match (a.score, b.score) {
            (Some(x), Some(y)) => match direction {
                Direction::Minimize => x.total_cmp(&y),
                Direction::Maximize => y.total_cmp(&x),
            },
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_score.then_with(|| a.runs.first().cmp(&b.runs.first()))
    });
}

/// A candidate's score from its runs (one per seed): the mean of the metric, `None` when
/// a run failed or its metric is undefined. `None` (outer) while any run is unfinished.
pub fn candidate(
    study_dir: &Path,
    candidate: usize,
    runs: &[&str],
    metric: &MetricRef,
) -> Option<Scored> {
    let mut values = Vec::with_capacity(runs.len());
    for id in runs {
        values.push(run_score(study_dir, id, metric)?);
    }
    let score = values
        .iter()
        .copied()
        .collect::<Option<Vec<f64>>>()
        .filter(|v| !v.is_empty())
        .map(|v| v.iter().sum::<f64>() / v.len() as f64);
    Some(Scored {
        candidate,
        score,
        runs: runs.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(candidate: usize, score: Option<f64>, id: &str) -> Scored {
        Scored {
            candidate,
            score,
            runs: vec![id.into()],
        }
    }

    #[test]
    fn ranking_puts_undefined_last_and_breaks_ties_by_run_id() {
        let mut v = vec![
            s(0, None, "a"),
            s(1, Some(0.2), "c"),
            s(2, Some(0.1), "d"),
            s(3, Some(0.2), "b"),
        ];
        rank(&mut v, Direction::Minimize);
        let order: Vec<usize> = v.iter().map(|x| x.candidate).collect();
        assert_eq!(order, vec![2, 3, 1, 0]);
        rank(&mut v, Direction::Maximize);
        let order: Vec<usize> = v.iter().map(|x| x.candidate).collect();
        assert_eq!(order, vec![3, 1, 2, 0]);
    }
}
