//! Successive halving over a study's candidates ([`crate::manifest::search_spec`] is the
//! `[search]` table): which candidates a rung runs, and the promotion decision once the
//! rung is complete.
//!
//! The run store is the search's state. A rung's runs are ordinary runs (the budget is in
//! their config, so each is cached by id and never redone); its decision is
//! `RESULTS/<study>/search/rung-<k>.json`, written atomically once every run of the rung is
//! DONE or FAILED, and computed only from those runs' records. So a search killed at any
//! point resumes where it was, any number of processes (`--jobs`, `--shard`, Slurm tasks)
//! reach the same decisions, and no server or lock is needed: two processes that decide a
//! rung at once write the same file. A decision records the hash of the search it was made
//! for; one of another search (the grid changed, `plan --force`) is never read as this
//! search's, so it is simply made again.

use crate::errors::{Context, Result};
use crate::manifest::search_spec::{promoted_count, Direction};
use crate::manifest::{Plan, SearchPlan};
use crate::output;
pub use crate::score::Scored;
use crate::score::{self, rank};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The outcome of one complete rung.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// [`search_hash`] of the search it was made for (empty in decisions written before
    /// it was recorded, which are therefore made again).
    #[serde(default)]
    pub search: String,
    pub rung: usize,
    pub budget: serde_json::Value,
    pub metric: String,
    pub direction: Direction,
    /// Every candidate of the rung, best first.
    pub ranked: Vec<Scored>,
    /// The candidates that run at the next rung (empty at the last rung).
    pub promoted: Vec<usize>,
    /// The best candidate of the last rung: the search's result.
    pub winner: Option<usize>,
    /// The Hyperband bracket the rung belongs to (absent for a single halving search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bracket: Option<usize>,
}

/// Where a rung's decision is kept: `rung-<k>.json`, or `bracket-<b>-rung-<k>.json` for a
/// rung of Hyperband's bracket b.
pub fn decision_path(study_dir: &Path, bracket: Option<usize>, rung: usize) -> PathBuf {
    let name = match bracket {
        None => format!("rung-{rung}.json"),
        Some(b) => format!("bracket-{b}-rung-{rung}.json"),
    };
    study_dir.join("search").join(name)
}

/// The identity of a search: its candidates, rungs and metric (the plan's search table).
pub fn search_hash(search: &SearchPlan) -> String {
    crate::provenance::text_hash(&serde_json::to_string(search).expect("a search serialises"))
}

/// A rung's decision for this search, if it was made: a file that is unreadable (a
/// writer killed mid-way leaves none, but a disk may) or was made for another search
/// counts as not made.
pub fn read_decision(
    study_dir: &Path,
    search: &SearchPlan,
    rung: usize,
) -> Result<Option<Decision>> {
    read_bracket_decision(study_dir, search, None, rung)
}

/// [`read_decision`] of a rung of a bracket (`None`: the single halving search).
pub fn read_bracket_decision(
    study_dir: &Path,
    search: &SearchPlan,
    bracket: Option<usize>,
    rung: usize,
) -> Result<Option<Decision>> {
    let path = decision_path(study_dir, bracket, rung);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read '{}'", path.display())),
    };
    let Ok(d) = serde_json::from_str::<Decision>(&text) else {
        tracing::warn!(path = %path.display(), "an unreadable rung decision is made again");
        return Ok(None);
    };
    let fits = d.search == search_hash(search)
        && d.rung == rung
        && d.bracket == bracket
        && d.ranked
            .iter()
            .all(|s| s.candidate < search.candidates.len())
        && d.promoted.iter().all(|&c| c < search.candidates.len());
    Ok(fits.then_some(d))
}

/// The candidates of a rung: all at rung 0, else the ones the previous rung promoted
/// (`None` while that rung is undecided).
pub fn active(search: &SearchPlan, study_dir: &Path, rung: usize) -> Result<Option<Vec<usize>>> {
    if rung == 0 {
        return Ok(Some((0..search.candidates.len()).collect()));
    }
    Ok(read_decision(study_dir, search, rung - 1)?.map(|d| d.promoted))
}

/// The plan indices a rung runs for these candidates, each once, in plan order.
pub fn rung_runs(search: &SearchPlan, rung: usize, candidates: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = candidates
        .iter()
        .flat_map(|&c| search.candidates[c].runs[rung].iter().copied())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The decision of a rung whose runs are all finished (`None` while any is not).
pub fn decide(
    plan: &Plan,
    study_dir: &Path,
    rung: usize,
    candidates: &[usize],
) -> Option<Decision> {
    let search = plan.search.as_ref()?;
    let objectives = search.spec.objectives();
    let directions: Vec<Direction> = objectives.iter().map(|o| o.2).collect();
    let mut scored = Vec::with_capacity(candidates.len());
    for &c in candidates {
        let runs: Vec<&str> = search.candidates[c].runs[rung]
            .iter()
            .map(|&i| plan.runs[i].id.as_str())
            .collect();
        scored.push(score::candidate(study_dir, c, &runs, &objectives)?);
    }
    rank(&mut scored, &directions);
    let last = rung + 1 == search.budgets.len();
    let promoted = if last {
        vec![]
    } else {
        let n = promoted_count(scored.len(), search.spec.eta);
        scored.iter().take(n).map(|s| s.candidate).collect()
    };
    Some(Decision {
        search: search_hash(search),
        rung,
        budget: search.budgets[rung].to_json(),
        metric: search.spec.metric_label(),
        direction: search.spec.direction,
        winner: if last {
            scored.first().map(|s| s.candidate)
        } else {
            None
        },
        ranked: scored,
        promoted,
        bracket: None,
    })
}

/// Writes a decision atomically unless the same one is there. Two processes deciding a
/// rung from the same finished runs write the same text; a different one means the runs
/// changed since (`--retry-failed` reran a failed run), and the new decision replaces it.
pub fn write_decision(study_dir: &Path, d: &Decision) -> Result<()> {
    let path = decision_path(study_dir, d.bracket, d.rung);
    let text = serde_json::to_string_pretty(d).expect("decisions serialise") + "\n";
    output::write_text_unless_same(&path, &text)
}

/// The search's winner, once its last rung is decided.
pub fn winner(plan: &Plan, study_dir: &Path) -> Result<Option<(usize, Decision)>> {
    let Some(search) = &plan.search else {
        return Ok(None);
    };
    let last = search.budgets.len() - 1;
    Ok(read_decision(study_dir, search, last)?.and_then(|d| d.winner.map(|w| (w, d))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(candidate: usize, score: Option<f64>, id: &str) -> Scored {
        crate::score::scored(candidate, score, id)
    }

    /// A search of `n` candidates over two rungs.
    fn search(n: usize) -> SearchPlan {
        use crate::manifest::search_spec::{Budget, SearchSpec};
        SearchPlan {
            spec: SearchSpec::halving_example(Budget::Int(1), Budget::Int(3), 3),
            budgets: vec![Budget::Int(1), Budget::Int(3)],
            candidates: (0..n)
                .map(|c| crate::manifest::Candidate {
                    axes: Default::default(),
                    runs: vec![vec![2 * c], vec![2 * c + 1]],
                    drawn: vec![],
                })
                .collect(),
            space: vec![],
            warm: vec![],
        }
    }

    #[test]
    fn a_decision_is_written_once_and_replaced_only_when_the_runs_changed() {
        let dir = tempfile::tempdir().unwrap();
        let plan = search(2);
        let mut d = Decision {
            search: search_hash(&plan),
            rung: 0,
            budget: serde_json::json!(1),
            metric: "finetune.validation.mae".into(),
            direction: Direction::Minimize,
            ranked: vec![s(1, Some(0.1), "b"), s(0, None, "a")],
            promoted: vec![1],
            winner: None,
            bracket: None,
        };
        write_decision(dir.path(), &d).unwrap();
        let path = decision_path(dir.path(), None, 0);
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_decision(dir.path(), &d).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written
        );
        assert_eq!(
            read_decision(dir.path(), &plan, 0).unwrap(),
            Some(d.clone())
        );
        // A failed run retried and now scored: the decision follows the runs.
        d.ranked = vec![s(0, Some(0.05), "a"), s(1, Some(0.1), "b")];
        d.promoted = vec![0];
        write_decision(dir.path(), &d).unwrap();
        assert_eq!(read_decision(dir.path(), &plan, 0).unwrap(), Some(d));
        assert_eq!(read_decision(dir.path(), &plan, 1).unwrap(), None);
    }

    #[test]
    fn a_decision_of_another_search_or_an_unreadable_one_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (search(5), search(2));
        let d = Decision {
            search: search_hash(&old),
            rung: 0,
            budget: serde_json::json!(1),
            metric: "finetune.validation.mae".into(),
            direction: Direction::Minimize,
            ranked: vec![s(4, Some(0.1), "e")],
            promoted: vec![4],
            winner: None,
            bracket: None,
        };
        write_decision(dir.path(), &d).unwrap();
        assert_eq!(read_decision(dir.path(), &old, 0).unwrap(), Some(d.clone()));
        assert_eq!(read_decision(dir.path(), &new, 0).unwrap(), None);
        assert_eq!(active(&new, dir.path(), 1).unwrap(), None);
        // Forged with the new search's hash, it still names a candidate that is not there.
        write_decision(
            dir.path(),
            &Decision {
                search: search_hash(&new),
                ..d
            },
        )
        .unwrap();
        assert_eq!(read_decision(dir.path(), &new, 0).unwrap(), None);
        std::fs::write(decision_path(dir.path(), None, 0), "").unwrap();
        assert_eq!(read_decision(dir.path(), &new, 0).unwrap(), None);
    }
}
