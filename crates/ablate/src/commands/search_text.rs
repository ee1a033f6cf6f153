//! What `ablate check` and `ablate status` say about a study's `[search]`: its shape
//! before it runs, and where it is while it runs (each rung of a halving search, each
//! generation of a TPE search).

use anyhow::Result;
use ionode_study::manifest::search_spec::{promoted_count, Halving, Scheduler};
use ionode_study::manifest::{Plan, SearchPlan};
use ionode_study::{halving, hyperband, store, tpe};
use std::path::Path;

/// `ablate check`'s lines on a search of a plan of `n` runs.
pub fn check(s: &SearchPlan, n: usize) -> String {
    match (s.spec.halving(), s.spec.tpe()) {
        (Some(h), _) => check_halving(s, h, n),
        (None, Some(t)) => tpe_check(s, t, n),
        (None, None) => String::new(),
    }
}

fn tpe_check(s: &SearchPlan, t: ionode_study::manifest::search_spec::Tpe, n: usize) -> String {
    let mut out = format!(
        "TPE: {} candidates in all over {} axes ({}), {} run(s) each (folds x seeds): {} \
             named or random ({n} runs planned now), then {} generation(s) of up to {} proposed as runs \
             finish, by {}, each the mean over a candidate's runs\n",
        t.candidates,
        s.space.len(),
        s.space
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.candidates
            .first()
            .map_or(0, |c| c.runs.iter().flatten().count()),
        s.candidates.len(),
        tpe::generation_count(s, t) - 1,
        t.generation,
        s.spec.objective_label()
    );
    if !s.spec.enqueue.is_empty() {
        out.push_str(&format!(
            "the first {} candidate(s) are named in search.enqueue\n",
            s.spec.enqueue.len()
        ));
    }
    if !s.spec.warm_start.is_empty() {
        out.push_str(&format!(
            "warm start: the finished points of {} are told first (read when the plan is \
             written)\n",
            s.spec.warm_start.join(", ")
        ));
    }
    out
}

fn check_halving(s: &SearchPlan, h: Halving<'_>, n: usize) -> String {
    if s.spec.scheduler == Scheduler::Hyperband {
        let brackets = hyperband::brackets(s);
        let budgets: Vec<String> = s.budgets.iter().map(|b| b.to_string()).collect();
        return format!(
            "Hyperband: {} candidates in {} brackets ({}), rungs {} = {}, eta = {}, by {}: at \
             most {} runs\n",
            s.candidates.len(),
            brackets.len(),
            brackets
                .iter()
                .map(|b| format!(
                    "{} from {} = {}",
                    b.candidates.len(),
                    h.budget,
                    s.budgets[b.start]
                ))
                .collect::<Vec<_>>()
                .join(", "),
            h.budget,
            budgets.join(", "),
            h.eta,
            s.spec.metric_label(),
            hyperband::most_runs(s).min(n)
        );
    }
    // The most runs the search can start: at each rung, the promoted candidates with the
    // most runs no earlier rung ran (a method the budget does not change reuses its run
    // at every rung), never more than the plan holds.
    let mut active = s.candidates.len();
    let (mut most, mut spent) = (0, 0.0);
    for (rung, budget) in s.budgets.iter().enumerate() {
        let mut new: Vec<usize> = s
            .candidates
            .iter()
            .map(|c| {
                let earlier = &c.runs[..rung];
                c.runs[rung]
                    .iter()
                    .filter(|i| !earlier.iter().any(|r| r.contains(i)))
                    .count()
            })
            .collect();
        new.sort_unstable_by(|a, b| b.cmp(a));
        let added: usize = new.iter().take(active).sum();
        most += added;
        spent += added as f64 * budget.value();
        if rung + 1 < s.budgets.len() {
            active = promoted_count(active, h.eta);
        }
    }
    let most = most.min(n);
    let last = s.budgets.len() - 1;
    let full: std::collections::BTreeSet<usize> = s
        .candidates
        .iter()
        .flat_map(|c| c.runs[last].iter().copied())
        .collect();
    let budgets: Vec<String> = s.budgets.iter().map(|b| b.to_string()).collect();
    format!(
        "successive halving: {} candidates, {} rungs ({} = {}), eta = {}, by {}: at most {most} runs \
         (total {} {spent}), against {} runs of the full grid at {} = {} (total {})\n",
        s.candidates.len(),
        s.budgets.len(),
        h.budget,
        budgets.join(", "),
        h.eta,
        s.spec.metric_label(),
        h.budget,
        full.len(),
        h.budget,
        s.budgets[last],
        full.len() as f64 * s.budgets[last].value()
    )
}

/// `ablate status`'s lines on a search.
pub fn status(plan: &Plan, search: &SearchPlan, study_dir: &Path) -> Result<String> {
    match search.spec.halving() {
        Some(h) => halving_status(plan, search, h, study_dir),
        None => tpe_status(plan, search, study_dir),
    }
}

fn score(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{v:.4}"))
}

/// One line per generation of a TPE search, and its winner once finished.
fn tpe_status(plan: &Plan, search: &SearchPlan, study_dir: &Path) -> Result<String> {
    let Some(state) = tpe::State::read(plan, study_dir)? else {
        return Ok(String::new());
    };
    let count = tpe::generation_count(search, state.tpe);
    let mut out = format!(
        "TPE over {} candidates by {}, {count} generations ({} named or random, then up to {} each); \
         later generations are proposed as the runs before them finish\n",
        state.tpe.candidates,
        search.spec.objective_label(),
        search.candidates.len(),
        state.tpe.generation
    );
    for (g, range) in state.generations.iter().enumerate() {
        let (mut done, mut failed, mut remaining) = (0, 0, 0);
        for r in state.generation_runs(g) {
            match store::state(study_dir, &r.id) {
                store::State::Done => done += 1,
                store::State::Failed(_) => failed += 1,
                _ => remaining += 1,
            }
        }
        out.push_str(&format!(
            "generation {g} (candidates {}..{}): {done} runs done, {failed} failed, {remaining} remaining\n",
            range.start, range.end
        ));
    }
    if state.generations.len() < count {
        out.push_str(&format!(
            "generations {}..{count}: not proposed yet\n",
            state.generations.len()
        ));
    }
    for (c, why) in &state.problems {
        out.push_str(&format!("candidate {c} cannot run: {why}\n"));
    }
    if let Some(o) = tpe::read_outcome(plan, study_dir) {
        if !o.front.is_empty() {
            out.push_str(&format!(
                "Pareto front of {}: {} candidate(s)\n",
                search.spec.metric_label(),
                o.front.len()
            ));
            for r in o
                .ranked
                .iter()
                .filter(|r| o.front.contains(&r.candidate) && r.candidate < state.candidates.len())
            {
                let values: Vec<String> = r.objectives.iter().map(|v| score(*v)).collect();
                out.push_str(&format!(
                    "  candidate {} ({}): {}\n",
                    r.candidate,
                    state.candidates[r.candidate].describe(),
                    values.join(", ")
                ));
            }
        }
        if let Some(w) = o.winner.filter(|&w| w < state.candidates.len()) {
            out.push_str(&format!(
                "winner: candidate {w} ({}), {} = {}\n",
                state.candidates[w].describe(),
                search.spec.metric_label(),
                score(o.ranked[0].score)
            ));
        }
    }
    Ok(out)
}

/// One line per rung of a halving search (per bracket of a Hyperband search): its budget,
/// candidates, runs and decision.
fn halving_status(
    plan: &Plan,
    search: &SearchPlan,
    h: Halving<'_>,
    study_dir: &Path,
) -> Result<String> {
    let hyperband = search.spec.scheduler == Scheduler::Hyperband;
    let mut out = format!(
        "{} over {} candidates by {} ({}), eta = {}; a study's runs are its possible runs at \
         every rung, most never run\n",
        if hyperband {
            "Hyperband"
        } else {
            "successive halving"
        },
        search.candidates.len(),
        search.spec.metric_label(),
        search.spec.direction,
        h.eta
    );
    if !hyperband {
        for rung in 0..search.budgets.len() {
            let active = halving::active(search, study_dir, rung)?;
            out.push_str(&rung_line(plan, search, h, study_dir, None, rung, active)?);
        }
        return Ok(out);
    }
    for (j, b) in hyperband::brackets(search).iter().enumerate() {
        out.push_str(&format!(
            "bracket {j} (from rung {}, {} candidates):\n",
            b.start,
            b.candidates.len()
        ));
        for rung in b.start..search.budgets.len() {
            let active = hyperband::active(search, study_dir, b, j, rung)?;
            out.push_str("  ");
            out.push_str(&rung_line(
                plan,
                search,
                h,
                study_dir,
                Some(j),
                rung,
                active,
            )?);
        }
    }
    if let Some(o) = hyperband::read_outcome(plan, study_dir) {
        if let Some(w) = o.winner {
            out.push_str(&format!(
                "winner: candidate {w} ({}), the best of the brackets' winners\n",
                search.candidates[w].describe()
            ));
        }
    }
    Ok(out)
}

/// A rung's line: its candidates (`None` while the rung before is undecided), runs and
/// decision.
fn rung_line(
    plan: &Plan,
    search: &SearchPlan,
    h: Halving<'_>,
    study_dir: &Path,
    bracket: Option<usize>,
    rung: usize,
    active: Option<Vec<usize>>,
) -> Result<String> {
    let head = format!("rung {rung} ({} = {})", h.budget, search.budgets[rung]);
    let Some(candidates) = active else {
        return Ok(format!(
            "{head}: waits for rung {}\n",
            rung.saturating_sub(1)
        ));
    };
    let (mut done, mut failed, mut remaining) = (0, 0, 0);
    for i in halving::rung_runs(search, rung, &candidates) {
        match store::state(study_dir, &plan.runs[i].id) {
            store::State::Done => done += 1,
            store::State::Failed(_) => failed += 1,
            _ => remaining += 1,
        }
    }
    let decided = match halving::read_bracket_decision(study_dir, search, bracket, rung)? {
        Some(d) => match d.winner {
            Some(w) => format!(
                "; winner: candidate {w} ({}), {} = {}",
                search.candidates[w].describe(),
                search.spec.metric_label(),
                score(d.ranked[0].score)
            ),
            None => format!("; {} promoted", d.promoted.len()),
        },
        None => String::new(),
    };
    Ok(format!(
        "{head}: {} candidates, {done} runs done, {failed} failed, {remaining} remaining{decided}\n",
        candidates.len()
    ))
}
