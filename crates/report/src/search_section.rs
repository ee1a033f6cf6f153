//! The search section of a report: for a study with `[search]`, one table of its rungs
//! (budget, candidates, promoted, best score) and the last rung's candidates ranked with
//! the winner marked, as `tables/search.md` and in the page. Read from the study's
//! `plan.json` and its rung decisions ([`ionode_study::halving`]), never recomputed here.

use super::names::escape;
use super::tables::Written;
use crate::error::{Context, Result};
use ionode_study::manifest::Plan;
use ionode_study::{halving, output};
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
    let mut md = format!(
        "# Successive halving search\n\n{} candidates, budget `{}`, eta = {}, chosen by `{}` ({}, mean over seeds; the test part is never used to choose).\n\n",
        s.candidates.len(),
        s.spec.budget,
        s.spec.eta,
        s.spec.metric,
        s.spec.direction
    );
    let mut html = format!(
        "<h3>Successive halving search</h3>\n<p>{} candidates, budget <code>{}</code>, eta = {}, chosen by <code>{}</code> (mean over seeds; the test part is never used to choose).</p>\n<table><thead><tr><th>rung</th><th>budget</th><th>candidates</th><th>promoted</th><th>best</th></tr></thead><tbody>\n",
        s.candidates.len(),
        escape(&s.spec.budget),
        s.spec.eta,
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
            s.spec.budget, d.budget, s.spec.metric
        ));
        html.push_str(&format!(
            "<p>Last rung ({} = {}), best first:</p>\n<table><thead><tr><th></th><th>candidate</th><th>{}</th></tr></thead><tbody>\n",
            escape(&s.spec.budget),
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
    let dir = out.join("tables");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    output::write_text(&dir.join("search.md"), &md)?;
    Ok(Some(Written {
        stem: "search".into(),
        html,
    }))
}
