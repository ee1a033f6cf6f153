//! The search section of a report, as `tables/search.md` and in the page. For successive
//! halving: one table of its rungs (budget, candidates, promoted, best score) and the last
//! rung's candidates ranked with the winner marked, read from the study's `plan.json` and
//! its rung decisions ([`ionode_study::halving`]), never recomputed here. For TPE: one
//! table of its generations (candidates, best score so far) and the best candidates
//! ranked, from its generation files and result ([`ionode_study::tpe`]).

use super::names::escape;
use super::tables::Written;
use crate::error::{Context, Result};
use ionode_study::manifest::search_spec::Halving;
use ionode_study::manifest::{Plan, SearchPlan};
use ionode_study::{halving, output, tpe};
use std::fmt::Write as _;
use std::path::Path;

fn score(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{v:.4}"))
}

/// Writes `out/tables/search.md` when the study is a search; returns it for the page.
pub fn write(plan: &Plan, study_dir: &Path, out: &Path) -> Result<Option<Written>> {
    let Some(s) = &plan.search else {
        return Ok(None);
    };
    let (md, html) = match s.spec.halving() {
        Some(h) => halving_tables(s, h, study_dir)?,
        None => tpe_tables(plan, s, study_dir)?,
    };
    let dir = out.join("tables");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    output::write_text(&dir.join("search.md"), &md)?;
    Ok(Some(Written {
        stem: "search".into(),
        html,
    }))
}

/// Most candidates listed by a TPE search's table (the best; the winner is among them).
const LISTED: usize = 15;

fn tpe_tables(plan: &Plan, s: &SearchPlan, study_dir: &Path) -> Result<(String, String)> {
    let Some(state) = tpe::State::read(plan, study_dir)? else {
        return Ok((String::new(), String::new()));
    };
    let metric = s
        .spec
        .metric_ref()
        .map_err(|e| crate::error::ReportError::Failed(format!("search.metric: {e}")))?;
    let intro = format!(
        "TPE over {} candidates in all ({} random, then generations of {}), chosen by {} ({}, mean over seeds; the test part is never used to choose).",
        state.tpe.candidates,
        s.candidates.len(),
        state.tpe.generation,
        s.spec.metric,
        s.spec.direction
    );
    let mut md = format!(
        "# TPE search

{intro}

"
    );
    let mut html = format!(
        "<h3>TPE search</h3>
<p>{}</p>
<table><thead><tr><th>generation</th><th>candidates</th><th>finished</th><th>best so far</th></tr></thead><tbody>
",
        escape(&intro)
    );
    md.push_str(
        "| generation | candidates | finished | best so far |
|---|---|---|---|
",
    );
    let better = |a: f64, b: f64| match s.spec.direction {
        ionode_study::manifest::search_spec::Direction::Minimize => a < b,
        ionode_study::manifest::search_spec::Direction::Maximize => a > b,
    };
    let mut best: Option<f64> = None;
    let mut scored = Vec::new();
    for (g, range) in state.generations.iter().enumerate() {
        let mut finished = 0;
        for c in range.clone() {
            if let Some(sc) = state.score(study_dir, c, &metric) {
                finished += 1;
                if let Some(v) = sc.score {
                    if best.is_none_or(|b| better(v, b)) {
                        best = Some(v);
                    }
                }
                scored.push(sc);
            }
        }
        let n = range.len();
        writeln!(md, "| {g} | {n} | {finished} | {} |", score(best))?;
        writeln!(
            html,
            "<tr><td>{g}</td><td>{n}</td><td>{finished}</td><td>{}</td></tr>",
            score(best)
        )?;
    }
    html.push_str(
        "</tbody></table>
",
    );
    let outcome = tpe::read_outcome(plan, study_dir);
    let winner = outcome.as_ref().and_then(|o| o.winner);
    ionode_study::score::rank(&mut scored, s.spec.direction);
    let shown = scored.len().min(LISTED);
    let head = if outcome.is_some() {
        format!("The best {shown} of {} candidates:", scored.len())
    } else {
        format!(
            "The search has not finished: no winner yet. The best {shown} finished candidates so far:"
        )
    };
    md.push_str(&format!(
        "
{head}

| | candidate | {} |
|---|---|---|
",
        s.spec.metric
    ));
    html.push_str(&format!(
        "<p>{}</p>
<table><thead><tr><th></th><th>candidate</th><th>{}</th></tr></thead><tbody>
",
        escape(&head),
        escape(&s.spec.metric)
    ));
    for r in scored.iter().take(shown) {
        let mark = if Some(r.candidate) == winner {
            "winner"
        } else {
            ""
        };
        let c = format!(
            "{}: {}",
            r.candidate,
            state.candidates[r.candidate].describe()
        );
        writeln!(md, "| {mark} | {c} | {} |", score(r.score))?;
        writeln!(
            html,
            "<tr><td><b>{mark}</b></td><td>{}</td><td>{}</td></tr>",
            escape(&c),
            score(r.score)
        )?;
    }
    html.push_str(
        "</tbody></table>
",
    );
    Ok((md, html))
}

fn halving_tables(s: &SearchPlan, h: Halving<'_>, study_dir: &Path) -> Result<(String, String)> {
    let mut md = format!(
        "# Successive halving search\n\n{} candidates, budget `{}`, eta = {}, chosen by `{}` ({}, mean over seeds; the test part is never used to choose).\n\n",
        s.candidates.len(),
        h.budget,
        h.eta,
        s.spec.metric,
        s.spec.direction
    );
    let mut html = format!(
        "<h3>Successive halving search</h3>\n<p>{} candidates, budget <code>{}</code>, eta = {}, chosen by <code>{}</code> (mean over seeds; the test part is never used to choose).</p>\n<table><thead><tr><th>rung</th><th>budget</th><th>candidates</th><th>promoted</th><th>best</th></tr></thead><tbody>\n",
        s.candidates.len(),
        escape(h.budget),
        h.eta,
        escape(&s.spec.metric)
    );
    md.push_str("| rung | budget | candidates | promoted | best |\n|---|---|---|---|---|\n");
    let mut last = None;
    for (rung, budget) in s.budgets.iter().enumerate() {
        let n = halving::active(s, study_dir, rung)?.map(|c| c.len());
        let d = halving::read_decision(study_dir, s, rung)?;
        let promoted = match &d {
            Some(d) if d.winner.is_some() => "winner".to_string(),
            Some(d) => d.promoted.len().to_string(),
            None => "(not decided)".to_string(),
        };
        let best = d
            .as_ref()
            .map_or("".into(), |d| score(d.ranked.first().and_then(|r| r.score)));
        let n = n.map_or("(waits)".to_string(), |n| n.to_string());
        writeln!(md, "| {rung} | {budget} | {n} | {promoted} | {best} |")?;
        writeln!(
            html,
            "<tr><td>{rung}</td><td>{budget}</td><td>{n}</td><td>{promoted}</td><td>{best}</td></tr>"
        )?;
        if d.as_ref().is_some_and(|d| d.winner.is_some()) {
            last = d;
        }
    }
    html.push_str("</tbody></table>\n");
    if let Some(d) = last {
        md.push_str(&format!(
            "\nLast rung ({} = {}), best first:\n\n| | candidate | {} |\n|---|---|---|\n",
            h.budget, d.budget, s.spec.metric
        ));
        html.push_str(&format!(
            "<p>Last rung ({} = {}), best first:</p>\n<table><thead><tr><th></th><th>candidate</th><th>{}</th></tr></thead><tbody>\n",
            escape(h.budget),
            d.budget,
            escape(&s.spec.metric)
        ));
        for r in &d.ranked {
            let mark = if Some(r.candidate) == d.winner {
                "winner"
            } else {
                ""
            };
            let c = s.candidates[r.candidate].describe();
            writeln!(md, "| {mark} | {c} | {} |", score(r.score))?;
            writeln!(
                html,
                "<tr><td><b>{mark}</b></td><td>{}</td><td>{}</td></tr>",
                escape(&c),
                score(r.score)
            )?;
        }
        html.push_str("</tbody></table>\n");
    } else {
        md.push_str("\nThe search has not finished: no winner yet.\n");
        html.push_str("<p>The search has not finished: no winner yet.</p>\n");
    }
    Ok((md, html))
}
