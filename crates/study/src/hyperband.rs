//! Hyperband (`[search] scheduler = "hyperband"`; Li et al. 2018, "Hyperband: a novel
//! bandit-based approach to hyperparameter optimization", JMLR 18(185)): several successive
//! halving brackets over the same candidates and rungs.
//!
//! With K rungs (budgets b_0 < ... < b_{K-1} = max) there are K brackets; bracket j starts
//! at rung j (s = K-1-j halvings left) and its weight is Hyperband's n_s =
//! ceil(K / (s + 1) * eta^s). The manifest's candidates are shared out among the brackets
//! in proportion to the weights, interleaved (candidate c goes to the bracket furthest below
//! its share), so no bracket gets one corner of a grid. A bracket is a successive halving
//! from its first rung to the last ([`halving::decide`]), its decisions kept as
//! `search/bracket-<j>-rung-<k>.json`; the search's winner is the best of the brackets'
//! winners, all scored at the full budget (`search/hyperband.json`).
//!
//! Unlike the single bracket, which runs rung by rung, a Hyperband search is run by
//! [`crate::executor::run_dynamic`]: any run of any bracket whose rung's inputs are decided
//! can start, so a worker waits only when no bracket has a runnable run. Every decision is
//! still a pure function of its rung's finished runs, so the candidates, decisions and
//! winner are the same at any `--jobs`, over shards and after kills.

use crate::errors::Result;
use crate::halving::{self, Decision};
use crate::manifest::search_spec::Direction;
use crate::manifest::{Plan, SearchPlan};
use crate::output;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One bracket: its first rung and its candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    pub start: usize,
    pub candidates: Vec<usize>,
}

/// The brackets of a search (empty ones left out).
pub fn brackets(search: &SearchPlan) -> Vec<Bracket> {
    let k = search.budgets.len();
    let eta = search.spec.eta as f64;
    let weights: Vec<f64> = (0..k)
        .map(|j| {
            let s = (k - 1 - j) as i32;
            (k as f64 / (s + 1) as f64 * eta.powi(s)).ceil()
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut assigned = vec![Vec::new(); k];
    for c in 0..search.candidates.len() {
        // The bracket furthest below its share of the candidates so far (ties: the first).
        let n = (c + 1) as f64;
        let j = (0..k)
            .max_by(|&a, &b| {
                let deficit = |j: usize| n * weights[j] / total - assigned[j].len() as f64;
                deficit(a).total_cmp(&deficit(b)).then(b.cmp(&a))
            })
            .expect("a search has a rung");
        assigned[j].push(c);
    }
    assigned
        .into_iter()
        .enumerate()
        .filter(|(_, c)| !c.is_empty())
        .map(|(start, candidates)| Bracket { start, candidates })
        .collect()
}

/// The candidates of bracket `j` (by its index among [`brackets`]) at `rung`: all of them
/// at its first rung, else the ones its previous rung promoted (`None` while that rung is
/// undecided, or before the bracket's first rung).
pub fn active(
    search: &SearchPlan,
    study_dir: &Path,
    bracket: &Bracket,
    j: usize,
    rung: usize,
) -> Result<Option<Vec<usize>>> {
    if rung < bracket.start {
        return Ok(None);
    }
    if rung == bracket.start {
        return Ok(Some(bracket.candidates.clone()));
    }
    Ok(halving::read_bracket_decision(study_dir, search, Some(j), rung - 1)?.map(|d| d.promoted))
}

/// Makes every decision that is due: each rung whose candidates are known and whose runs
/// are all settled, unless `pending` says one of them is to be run again (a FAILED run that
/// `--retry-failed` has not retried yet). A rung decided before is decided again only with
/// `redecide` (after retries, whose runs may change it; a changed decision replaces the
/// old). Returns whether every bracket's last rung is decided, and then writes the result.
pub fn settle(
    plan: &Plan,
    study_dir: &Path,
    pending: &dyn Fn(usize) -> bool,
    redecide: bool,
) -> Result<bool> {
    let Some(search) = &plan.search else {
        return Ok(true);
    };
    let last = search.budgets.len() - 1;
    let mut complete = true;
    for (j, b) in brackets(search).iter().enumerate() {
        for rung in b.start..search.budgets.len() {
            let decided = halving::read_bracket_decision(study_dir, search, Some(j), rung)?;
            if decided.is_some() && !redecide {
                continue;
            }
            let fresh = match active(search, study_dir, b, j, rung)? {
                Some(candidates) => {
                    if halving::rung_runs(search, rung, &candidates)
                        .into_iter()
                        .any(pending)
                    {
                        // A run of it is to be run again: not complete, whatever was decided.
                        complete = false;
                        break;
                    }
                    halving::decide(plan, study_dir, rung, &candidates)
                }
                None => None,
            };
            match fresh {
                Some(d) => halving::write_decision(
                    study_dir,
                    &Decision {
                        bracket: Some(j),
                        ..d
                    },
                )?,
                None if decided.is_some() => {}
                None => {
                    complete = false;
                    break;
                }
            }
            // The next rung may now be ready, or decidable if its runs were run before.
        }
        complete =
            complete && halving::read_bracket_decision(study_dir, search, Some(j), last)?.is_some();
    }
    if complete {
        if let Some(o) = outcome(plan, study_dir)? {
            write_outcome(study_dir, &o)?;
        }
    }
    Ok(complete)
}

/// The plan indices of every run that can start now: the runs of each bracket's rungs
/// whose candidates are decided (each once, in plan order).
pub fn ready_runs(plan: &Plan, study_dir: &Path) -> Result<Vec<usize>> {
    let Some(search) = &plan.search else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for (j, b) in brackets(search).iter().enumerate() {
        for rung in b.start..search.budgets.len() {
            let Some(candidates) = active(search, study_dir, b, j, rung)? else {
                break;
            };
            out.extend(halving::rung_runs(search, rung, &candidates));
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The most runs a Hyperband search can start (each bracket's rungs at their promoted
/// counts, a run shared by rungs or brackets counted once at most as often as planned).
pub fn most_runs(search: &SearchPlan) -> usize {
    let seeds = search
        .candidates
        .first()
        .and_then(|c| c.runs.first())
        .map_or(0, |r| r.len());
    let mut most = 0;
    for b in brackets(search) {
        let mut n = b.candidates.len();
        for rung in b.start..search.budgets.len() {
            most += n * seeds;
            if rung + 1 < search.budgets.len() {
                n = crate::manifest::search_spec::promoted_count(n, search.spec.eta);
            }
        }
    }
    most
}

/// The result of a Hyperband search: each bracket's winner and the best of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub search: String,
    /// (bracket, its first rung, its winner, the winner's score at the full budget).
    pub brackets: Vec<(usize, usize, Option<usize>, Option<f64>)>,
    pub winner: Option<usize>,
}

/// Where the result is kept.
pub fn outcome_path(study_dir: &Path) -> PathBuf {
    study_dir.join("search").join("hyperband.json")
}

/// The result, once every bracket's last rung is decided.
pub fn outcome(plan: &Plan, study_dir: &Path) -> Result<Option<Outcome>> {
    let Some(search) = &plan.search else {
        return Ok(None);
    };
    let last = search.budgets.len() - 1;
    let mut rows = Vec::new();
    for (j, b) in brackets(search).iter().enumerate() {
        let Some(d) = halving::read_bracket_decision(study_dir, search, Some(j), last)? else {
            return Ok(None);
        };
        let score = d.ranked.first().and_then(|s| s.score);
        rows.push((j, b.start, d.winner, score));
    }
    let better = |a: f64, b: f64| match search.spec.direction {
        Direction::Minimize => a < b,
        Direction::Maximize => a > b,
    };
    let mut best: Option<(usize, f64)> = None;
    for &(_, _, w, s) in &rows {
        if let (Some(w), Some(s)) = (w, s) {
            if best.is_none_or(|(_, b)| better(s, b)) {
                best = Some((w, s));
            }
        }
    }
    Ok(Some(Outcome {
        search: halving::search_hash(search),
        brackets: rows,
        winner: best.map(|(w, _)| w),
    }))
}

fn write_outcome(study_dir: &Path, o: &Outcome) -> Result<()> {
    // (A result made again after retries replaces the old one.)
    let text = serde_json::to_string_pretty(o).expect("results serialise") + "\n";
    output::write_text_unless_same(&outcome_path(study_dir), &text)
}

/// The written result of this search, if it is there.
pub fn read_outcome(plan: &Plan, study_dir: &Path) -> Option<Outcome> {
    let search = plan.search.as_ref()?;
    let text = std::fs::read_to_string(outcome_path(study_dir)).ok()?;
    let o: Outcome = serde_json::from_str(&text).ok()?;
    let fits = o.search == halving::search_hash(search)
        && o.winner.is_none_or(|w| w < search.candidates.len());
    fits.then_some(o)
}

/// The plan indices of the runs a finished halving or Hyperband search never needed: the
/// later rungs' runs of the candidates it dropped. Empty while it runs (a run not needed
/// yet may be needed later), and for a sweep or a TPE search.
pub fn unneeded_runs(plan: &Plan, study_dir: &Path) -> Result<Vec<usize>> {
    use crate::manifest::search_spec::Scheduler;
    let Some(search) = plan.search.as_ref().filter(|s| s.spec.halving().is_some()) else {
        return Ok(Vec::new());
    };
    let mut needed = match search.spec.scheduler {
        Scheduler::Hyperband => {
            if read_outcome(plan, study_dir).is_none() {
                return Ok(Vec::new());
            }
            ready_runs(plan, study_dir)?
        }
        _ => {
            if halving::winner(plan, study_dir)?.is_none() {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            for rung in 0..search.budgets.len() {
                let Some(candidates) = halving::active(search, study_dir, rung)? else {
                    break;
                };
                out.extend(halving::rung_runs(search, rung, &candidates));
            }
            out
        }
    };
    needed.sort_unstable();
    Ok((0..plan.runs.len())
        .filter(|i| needed.binary_search(i).is_err())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::search_spec::{Budget, SearchSpec};

    fn search(candidates: usize, rungs: usize, eta: u64) -> SearchPlan {
        SearchPlan {
            spec: SearchSpec {
                scheduler: crate::manifest::search_spec::Scheduler::Hyperband,
                ..SearchSpec::halving_example(Budget::Int(1), Budget::Int(9), eta)
            },
            budgets: (0..rungs)
                .map(|k| Budget::Int(3i64.pow(k as u32)))
                .collect(),
            candidates: (0..candidates)
                .map(|c| crate::manifest::Candidate {
                    axes: Default::default(),
                    runs: (0..rungs).map(|k| vec![c * rungs + k]).collect(),
                    drawn: vec![],
                })
                .collect(),
            space: vec![],
            warm: vec![],
        }
    }

    #[test]
    fn candidates_are_shared_out_by_hyperbands_weights_and_interleaved() {
        // Three rungs at eta 3: weights ceil(3/3*9) = 9, ceil(3/2*3) = 5, ceil(3/1*1) = 3.
        let b = brackets(&search(34, 3, 3));
        let sizes: Vec<usize> = b.iter().map(|b| b.candidates.len()).collect();
        assert_eq!(sizes, vec![18, 10, 6]);
        assert_eq!(b.iter().map(|b| b.start).collect::<Vec<_>>(), vec![0, 1, 2]);
        // Every candidate once; each bracket's spread over the list, not one slice of it.
        let mut all: Vec<usize> = b.iter().flat_map(|b| b.candidates.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..34).collect::<Vec<_>>());
        assert!(b[2].candidates[0] < 10 && *b[2].candidates.last().unwrap() > 24);
        // Too few candidates: the brackets that get none are left out.
        let few = brackets(&search(2, 3, 3));
        assert_eq!(few.iter().map(|b| b.start).collect::<Vec<_>>(), vec![0, 1]);
        // The most runs: 18 + 6 + 2 (bracket 0), 10 + 3 (bracket 1), 6 (bracket 2).
        assert_eq!(most_runs(&search(34, 3, 3)), 45);
    }
}
