//! A search's scores: a run's metrics read from its record, a candidate's mean of each
//! objective over its runs (seeds, and a TPE search's folds), and the ranking every search
//! decision uses: by the metric, or with several objectives NSGA-II's order (Deb et al.
//! 2002, "A fast and elitist multiobjective genetic algorithm: NSGA-II", IEEE TEVC 6(2)):
//! Pareto fronts first, then crowding distance, so the first front is the Pareto front and
//! spread-out members of a front come before crowded ones. Metrics are read from a run's
//! train or validation part, never its test part (see [`crate::manifest::search_spec`]).

use crate::manifest::search_spec::{Direction, MetricRef};
use crate::{record, store};
use ionode_train::observe::Stage;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::path::Path;

/// One candidate's score: at a rung of a halving search, or over its runs in a TPE search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub candidate: usize,
    /// Mean of the metric over the candidate's runs; `None` when a run failed or its
    /// metric is undefined (ranked last).
    pub score: Option<f64>,
    /// The runs scored, in seed order.
    pub runs: Vec<String>,
    /// With several objectives, the mean of each (`score` is the first's); empty with one,
    /// so single-objective decisions read and hash as before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<Option<f64>>,
}

/// A search's objectives: (name, where it is read, direction), in order.
pub type Objectives = [(String, MetricRef, Direction)];

impl Scored {
    /// Every objective's value (`score` alone with one objective); `None` when any is
    /// undefined.
    pub fn values(&self) -> Option<Vec<f64>> {
        if self.objectives.is_empty() {
            self.score.map(|s| vec![s])
        } else {
            self.objectives.iter().copied().collect()
        }
    }
}

/// A finished run's metrics: `Some(None)` when it failed, `None` when the run is not
/// finished (missing or damaged).
fn run_metrics(study_dir: &Path, id: &str) -> Option<Option<ionode_train::run::RunMetrics>> {
    match store::state(study_dir, id) {
        store::State::Done => {}
        store::State::Failed(_) => return Some(None),
        store::State::Missing | store::State::Damaged(_) => return None,
    }
    let path = store::run_dir(study_dir, id).join(store::RUN_FILE);
    let r = record::read(&path).ok()?;
    Some(Some(r.metrics))
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
    if let Some(ion) = &metric.ion {
        let i = part.and_then(|m| m.per_ion.iter().find(|i| &i.species == ion));
        return i
            .and_then(|i| match metric.name.as_str() {
                "mae" => i.mae,
                "rmse" => i.rmse,
                "r2" => i.r2,
                _ => None,
            })
            .filter(|v| v.is_finite());
    }
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

/// Best first: defined scores in the metric's direction (with several objectives, in
/// NSGA-II's order, see the module), undefined last, ties by the candidate's first run id
/// (a stable, content-derived order).
pub fn rank(scored: &mut [Scored], directions: &[Direction]) {
    let by_id = |a: &Scored, b: &Scored| a.runs.first().cmp(&b.runs.first());
    if directions.len() <= 1 {
        let direction = directions.first().copied().unwrap_or_default();
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
            by_score.then_with(|| by_id(a, b))
        });
        return;
    }
    let order = nsga_order(scored, directions);
    let mut keyed: Vec<(usize, f64, Scored)> = scored
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (front, crowd) = order[i].unwrap_or((usize::MAX, 0.0));
            (front, crowd, s.clone())
        })
        .collect();
    keyed.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(b.1.total_cmp(&a.1))
            .then_with(|| by_id(&a.2, &b.2))
    });
    for (slot, (_, _, s)) in scored.iter_mut().zip(keyed) {
        *slot = s;
    }
}

/// Each candidate's (front, crowding distance) in NSGA-II's sense; `None` when an
/// objective is undefined.
fn nsga_order(scored: &[Scored], directions: &[Direction]) -> Vec<Option<(usize, f64)>> {
    let defined: Vec<(usize, Vec<f64>)> = scored
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            s.values()
                .filter(|v| v.len() == directions.len())
                .map(|v| (i, v))
        })
        .collect();
    let points: Vec<Vec<f64>> = defined.iter().map(|(_, v)| v.clone()).collect();
    let mut out = vec![None; scored.len()];
    for (k, front) in fronts(&points, directions).iter().enumerate() {
        for (&p, d) in front.iter().zip(crowding(&points, front)) {
            out[defined[p].0] = Some((k, d));
        }
    }
    out
}

/// Whether `a` dominates `b`: no worse in every objective, better in one.
fn dominates(a: &[f64], b: &[f64], directions: &[Direction]) -> bool {
    let mut better = false;
    for ((x, y), d) in a.iter().zip(b).zip(directions) {
        let (x, y) = match d {
            Direction::Minimize => (*x, *y),
            Direction::Maximize => (-*x, -*y),
        };
        if x > y {
            return false;
        }
        better |= x < y;
    }
    better
}

/// Non-dominated sorting: the indices of `points` front by front (the first is the
/// Pareto front), each front in index order.
pub fn fronts(points: &[Vec<f64>], directions: &[Direction]) -> Vec<Vec<usize>> {
    let n = points.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if i != j && dominates(&points[i], &points[j], directions) {
                dominates_list[i].push(j);
                dominated_by[j] += 1;
            }
        }
    }
    let mut out = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominates_list[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        out.push(std::mem::replace(&mut current, next));
    }
    out
}

/// Crowding distance of each member of a front (in the front's order): the sum over the
/// objectives of the gap between its neighbours, as a fraction of the front's range; the
/// ends of each objective are infinitely far (always kept).
pub fn crowding(points: &[Vec<f64>], front: &[usize]) -> Vec<f64> {
    let mut d = vec![0.0; front.len()];
    let objectives = front.first().map_or(0, |&i| points[i].len());
    (0..objectives).for_each(|k| add_gaps(front, &|i| points[i][k], &mut d));
    d
}

/// One objective's share of the crowding distances `d` of a front's members.
fn add_gaps(front: &[usize], value: &dyn Fn(usize) -> f64, d: &mut [f64]) {
    let mut order: Vec<usize> = (0..front.len()).collect();
    order.sort_by(|&a, &b| {
        value(front[a])
            .total_cmp(&value(front[b]))
            .then(front[a].cmp(&front[b]))
    });
    let (Some(&lo), Some(&hi)) = (order.first(), order.last()) else {
        return;
    };
    let range = value(front[hi]) - value(front[lo]);
    d[lo] = f64::INFINITY;
    d[hi] = f64::INFINITY;
    if range <= 0.0 {
        return;
    }
    for w in order.windows(3) {
        d[w[1]] += (value(front[w[2]]) - value(front[w[0]])) / range;
    }
}

/// The value a sampler is told for each candidate of a search with several objectives
/// (smaller is better): its front, plus up to one half for being crowded, so the sampler
/// prefers the Pareto front and its spread-out members (NSGA-II's selection as one
/// number). `None` where an objective is undefined.
pub fn nsga_values(scored: &[Scored], directions: &[Direction]) -> Vec<Option<f64>> {
    let order = nsga_order(scored, directions);
    // Crowding normalised by the largest finite one of the candidate's front.
    let mut largest: Vec<f64> = Vec::new();
    for (front, d) in order.iter().flatten() {
        if largest.len() <= *front {
            largest.resize(front + 1, 0.0);
        }
        if d.is_finite() {
            largest[*front] = largest[*front].max(*d);
        }
    }
    order
        .iter()
        .map(|o| {
            o.map(|(front, d)| {
                let spread = if d.is_infinite() {
                    1.0
                } else if largest[front] > 0.0 {
                    d / largest[front]
                } else {
                    0.0
                };
                front as f64 + 0.5 * (1.0 - spread.min(1.0))
            })
        })
        .collect()
}

/// The candidates of the Pareto front (the first front), in ranked order.
pub fn pareto_front(ranked: &[Scored], directions: &[Direction]) -> Vec<usize> {
    let order = nsga_order(ranked, directions);
    ranked
        .iter()
        .zip(order)
        .filter(|(_, o)| o.is_some_and(|(f, _)| f == 0))
        .map(|(s, _)| s.candidate)
        .collect()
}

/// A candidate's scores from its runs (its seeds and folds): the mean of each objective,
/// `None` when a run failed or a metric is undefined. `None` (outer) while any run is
/// unfinished.
pub fn candidate(
    study_dir: &Path,
    candidate: usize,
    runs: &[&str],
    objectives: &Objectives,
) -> Option<Scored> {
    let mut metrics = Vec::with_capacity(runs.len());
    for id in runs {
        metrics.push(run_metrics(study_dir, id)?);
    }
    let means: Vec<Option<f64>> = objectives
        .iter()
        .map(|(_, metric, _)| {
            metrics
                .iter()
                .map(|m| m.as_ref().and_then(|m| metric_of(m, metric)))
                .collect::<Option<Vec<f64>>>()
                .filter(|v| !v.is_empty())
                .map(|v| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect();
    Some(Scored {
        candidate,
        score: means.first().copied().flatten(),
        runs: runs.iter().map(|s| s.to_string()).collect(),
        objectives: if means.len() > 1 { means } else { vec![] },
    })
}

/// A candidate scored by one run (for tests).
#[cfg(test)]
pub(crate) fn scored(candidate: usize, score: Option<f64>, id: &str) -> Scored {
    Scored {
        candidate,
        score,
        runs: vec![id.into()],
        objectives: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(candidate: usize, score: Option<f64>, id: &str) -> Scored {
        scored(candidate, score, id)
    }

    #[test]
    fn ranking_puts_undefined_last_and_breaks_ties_by_run_id() {
        let mut v = vec![
            s(0, None, "a"),
            s(1, Some(0.2), "c"),
            s(2, Some(0.1), "d"),
            s(3, Some(0.2), "b"),
        ];
        rank(&mut v, &[Direction::Minimize]);
        let order: Vec<usize> = v.iter().map(|x| x.candidate).collect();
        assert_eq!(order, vec![2, 3, 1, 0]);
        rank(&mut v, &[Direction::Maximize]);
        let order: Vec<usize> = v.iter().map(|x| x.candidate).collect();
        assert_eq!(order, vec![3, 1, 2, 0]);
    }

    /// A constructed problem with a known front: minimise both objectives.
    #[test]
    fn the_pareto_front_of_a_constructed_problem_is_found_and_ranked_first() {
        use Direction::Minimize as Min;
        // Front: (1,5) (2,3) (3,2) (5,1); second front: (2,5) (4,3) (6,2); last: (6,6).
        let points = [
            (6.0, 6.0),
            (2.0, 3.0),
            (4.0, 3.0),
            (1.0, 5.0),
            (5.0, 1.0),
            (2.0, 5.0),
            (3.0, 2.0),
            (6.0, 2.0),
        ];
        let pts: Vec<Vec<f64>> = points.iter().map(|&(a, b)| vec![a, b]).collect();
        assert_eq!(
            fronts(&pts, &[Min, Min]),
            vec![vec![1, 3, 4, 6], vec![2, 5, 7], vec![0]]
        );
        // The ends of a front are kept whatever their neighbours; (2,3) and (3,2) sit in
        // the middle: gaps (3-1)/4 + (5-2)/4 and (5-2)/4 + (3-1)/4.
        let d = crowding(&pts, &[1, 3, 4, 6]);
        assert_eq!(d[1], f64::INFINITY);
        assert_eq!(d[2], f64::INFINITY);
        assert!(
            (d[0] - 1.25).abs() < 1e-12 && (d[3] - 1.25).abs() < 1e-12,
            "{d:?}"
        );
        // As scored candidates, one failed: the front first, the failed one last.
        let mut scored: Vec<Scored> = points
            .iter()
            .enumerate()
            .map(|(c, &(a, b))| Scored {
                candidate: c,
                score: Some(a),
                runs: vec![format!("{c}")],
                objectives: vec![Some(a), Some(b)],
            })
            .collect();
        scored.push(Scored {
            candidate: 8,
            score: None,
            runs: vec!["8".into()],
            objectives: vec![None, Some(0.0)],
        });
        rank(&mut scored, &[Min, Min]);
        let order: Vec<usize> = scored.iter().map(|s| s.candidate).collect();
        assert_eq!(
            order,
            vec![3, 4, 1, 6, 5, 7, 2, 0, 8],
            "ends first, then by run id"
        );
        let mut front = pareto_front(&scored, &[Min, Min]);
        front.sort_unstable();
        assert_eq!(front, vec![1, 3, 4, 6]);
        // The values told to a sampler: the front below 1, the last front above 2.
        let v = nsga_values(&scored, &[Min, Min]);
        assert!(v[..4].iter().all(|x| x.is_some_and(|x| x < 1.0)), "{v:?}");
        assert!(v[7].is_some_and(|x| (2.0..3.0).contains(&x)) && v[8].is_none());
        // Maximising the second objective instead changes the front.
        let mut max_front = fronts(&pts, &[Min, Direction::Maximize])[0].clone();
        max_front.sort_unstable();
        assert_eq!(
            max_front,
            vec![0, 3],
            "(1,5) dominates (2,5); (6,6) has the largest second"
        );
    }
}
