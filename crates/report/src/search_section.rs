//! The search section of a report, as `tables/search.md` and in the page. For successive
//! halving: one table of its rungs (budget, candidates, promoted, best score) and the last
//! rung's candidates ranked with the winner marked, read from the study's `plan.json` and
//! its rung decisions ([`ionode_study::halving`]), never recomputed here. For TPE: one
//! table of its generations (candidates, best score so far) and the best candidates
//! ranked, from its generation files and result ([`ionode_study::tpe`]).

use super::names::escape;
use super::tables::Written;
use crate::error::{Context, Result};
use ionode_study::manifest::search_spec::{Direction, Halving, Scheduler};
use ionode_study::manifest::{Plan, SearchPlan};
use ionode_study::{halving, hyperband, output, tpe};
use std::fmt::Write as _;
use std::path::Path;

fn score(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{v:.4}"))
}

/// Writes `out/tables/search.md` when the study is a search (and, for a search with
/// several objectives, `out/figures/pareto_front.*`); returns the table for the page and
/// the figures written.
pub fn write(plan: &Plan, study_dir: &Path, out: &Path) -> Result<Option<(Written, Vec<String>)>> {
    let Some(s) = &plan.search else {
        return Ok(None);
    };
    let (md, html, figures) = match s.spec.halving() {
        Some(h) if s.spec.scheduler == Scheduler::Hyperband => {
            let (md, html) = hyperband_tables(plan, s, h, study_dir)?;
            (md, html, vec![])
        }
        Some(h) => {
            let (md, html) = halving_tables(s, h, study_dir)?;
            (md, html, vec![])
        }
        None => tpe_tables(plan, s, study_dir, out)?,
    };
    let dir = out.join("tables");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    output::write_text(&dir.join("search.md"), &md)?;
    Ok(Some((
        Written {
            stem: "search".into(),
            html,
        },
        figures,
    )))
}

/// Most candidates listed by a TPE search's table (the best; the winner is among them).
const LISTED: usize = 15;

/// A Markdown and an HTML table built together.
struct Table {
    md: String,
    html: String,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        let mut t = Table {
            md: format!("| {} |\n|{}\n", head.join(" | "), "---|".repeat(head.len())),
            html: String::from("<table><thead><tr>"),
        };
        for h in head {
            let _ = write!(t.html, "<th>{}</th>", escape(h));
        }
        t.html.push_str("</tr></thead><tbody>\n");
        t
    }

    fn row(&mut self, cells: &[String]) {
        let _ = writeln!(self.md, "| {} |", cells.join(" | "));
        self.html.push_str("<tr>");
        for c in cells {
            let _ = write!(self.html, "<td>{}</td>", escape(c));
        }
        self.html.push_str("</tr>\n");
    }

    fn end(mut self) -> (String, String) {
        self.html.push_str("</tbody></table>\n");
        (self.md, self.html)
    }
}

fn tpe_tables(
    plan: &Plan,
    s: &SearchPlan,
    study_dir: &Path,
    out: &Path,
) -> Result<(String, String, Vec<String>)> {
    let Some(state) = tpe::State::read(plan, study_dir)? else {
        return Ok((String::new(), String::new(), vec![]));
    };
    let objectives = s.spec.objectives();
    let directions: Vec<Direction> = objectives.iter().map(|o| o.2).collect();
    let several = objectives.len() > 1;
    let chosen = if several {
        format!("kept on the Pareto front of {}", s.spec.metric_label())
    } else {
        format!("chosen by {} ({})", s.spec.metric, s.spec.direction)
    };
    let intro = format!(
        "TPE over {} candidates in all ({} named or random, then generations of {}), {chosen}; each objective is the mean over a candidate's runs (folds and seeds), and the test part is never used to choose.",
        state.tpe.candidates,
        s.candidates.len(),
        state.tpe.generation
    );
    let mut md = format!("# TPE search\n\n{intro}\n\n");
    let mut html = format!("<h3>TPE search</h3>\n<p>{}</p>\n", escape(&intro));
    let better = |a: f64, b: f64| match s.spec.direction {
        Direction::Minimize => a < b,
        Direction::Maximize => a > b,
    };
    let last = if several {
        "Pareto front so far"
    } else {
        "best so far"
    };
    let mut t = Table::new(&["generation", "candidates", "finished", last]);
    let mut best: Option<f64> = None;
    let mut scored = Vec::new();
    for (g, range) in state.generations.iter().enumerate() {
        let mut finished = 0;
        for c in range.clone() {
            if let Some(sc) = state.score(study_dir, c, &objectives) {
                finished += 1;
                if let Some(v) = sc.score {
                    if best.is_none_or(|b| better(v, b)) {
                        best = Some(v);
                    }
                }
                scored.push(sc);
            }
        }
        let shown = if several {
            format!(
                "{} candidate(s)",
                ionode_study::score::pareto_front(&scored, &directions).len()
            )
        } else {
            score(best)
        };
        t.row(&[
            g.to_string(),
            range.len().to_string(),
            finished.to_string(),
            shown,
        ]);
    }
    let (m, h) = t.end();
    md.push_str(&m);
    html.push_str(&h);
    let outcome = tpe::read_outcome(plan, study_dir);
    let winner = outcome.as_ref().and_then(|o| o.winner);
    ionode_study::score::rank(&mut scored, &directions);
    let front = ionode_study::score::pareto_front(&scored, &directions);
    let shown = if several {
        front.len().max(scored.len().min(LISTED))
    } else {
        scored.len().min(LISTED)
    };
    let head = match (&outcome, several) {
        (Some(_), false) => format!("The best {shown} of {} candidates:", scored.len()),
        (Some(_), true) => format!(
            "The Pareto front ({} of {} candidates, marked) and the next best, in NSGA-II order:",
            front.len(),
            scored.len()
        ),
        (None, _) => {
            format!("The search has not finished. The best {shown} finished candidates so far:")
        }
    };
    let _ = write!(md, "\n{head}\n\n");
    let _ = writeln!(html, "<p>{}</p>", escape(&head));
    let mut columns = vec!["", "candidate"];
    columns.extend(objectives.iter().map(|o| o.0.as_str()));
    let mut t = Table::new(&columns);
    for r in scored.iter().take(shown) {
        let mark = if Some(r.candidate) == winner {
            "winner"
        } else if several && front.contains(&r.candidate) {
            "front"
        } else {
            ""
        };
        let mut cells = vec![
            mark.to_string(),
            format!(
                "{}: {}",
                r.candidate,
                state.candidates[r.candidate].describe()
            ),
        ];
        if several {
            cells.extend(r.objectives.iter().map(|v| score(*v)));
        } else {
            cells.push(score(r.score));
        }
        t.row(&cells);
    }
    let (m, h) = t.end();
    md.push_str(&m);
    html.push_str(&h);
    let mut figures = Vec::new();
    if several && outcome.is_some() {
        crate::figures::style::register_font()?;
        let points: Vec<(Vec<f64>, bool)> = scored
            .iter()
            .filter_map(|r| r.values().map(|v| (v, front.contains(&r.candidate))))
            .collect();
        if !points.is_empty() {
            let names: Vec<String> = objectives.iter().map(|o| o.0.clone()).collect();
            crate::figures::style::render(
                &out.join("figures"),
                "pareto_front",
                &crate::figures::pareto::Pareto::new(&names, &directions, &points),
            )?;
            figures.push("pareto_front".to_string());
        }
    }
    Ok((md, html, figures))
}

fn hyperband_tables(
    plan: &Plan,
    s: &SearchPlan,
    h: Halving<'_>,
    study_dir: &Path,
) -> Result<(String, String)> {
    let brackets = hyperband::brackets(s);
    let intro = format!(
        "{} candidates shared out among {} successive halving brackets, budget {}, eta = {}, chosen by {} ({}, mean over seeds; the test part is never used to choose); the winner is the best of the brackets' winners, all at the full budget.",
        s.candidates.len(),
        brackets.len(),
        h.budget,
        h.eta,
        s.spec.metric_label(),
        s.spec.direction
    );
    let mut md = format!("# Hyperband search\n\n{intro}\n\n");
    let mut html = format!("<h3>Hyperband search</h3>\n<p>{}</p>\n", escape(&intro));
    let mut t = Table::new(&[
        "bracket",
        "rung",
        "budget",
        "candidates",
        "promoted",
        "best",
    ]);
    for (j, b) in brackets.iter().enumerate() {
        for rung in b.start..s.budgets.len() {
            let n = hyperband::active(s, study_dir, b, j, rung)?.map(|c| c.len());
            let d = halving::read_bracket_decision(study_dir, s, Some(j), rung)?;
            let promoted = match &d {
                Some(d) if d.winner.is_some() => "winner".to_string(),
                Some(d) => d.promoted.len().to_string(),
                None => "(not decided)".to_string(),
            };
            let best = d.as_ref().map_or(String::new(), |d| {
                score(d.ranked.first().and_then(|r| r.score))
            });
            t.row(&[
                j.to_string(),
                rung.to_string(),
                s.budgets[rung].to_string(),
                n.map_or("(waits)".to_string(), |n| n.to_string()),
                promoted,
                best,
            ]);
        }
    }
    let (m, hh) = t.end();
    md.push_str(&m);
    html.push_str(&hh);
    let line = match hyperband::read_outcome(plan, study_dir).and_then(|o| o.winner) {
        Some(w) => format!("Winner: candidate {w}, {}.", s.candidates[w].describe()),
        None => "The search has not finished: no winner yet.".to_string(),
    };
    let _ = write!(md, "\n{line}\n");
    let _ = writeln!(html, "<p>{}</p>", escape(&line));
    Ok((md, html))
}

fn halving_tables(s: &SearchPlan, h: Halving<'_>, study_dir: &Path) -> Result<(String, String)> {
    let mut md = format!(
        "# Successive halving search\n\n{} candidates, budget `{}`, eta = {}, chosen by `{}` ({}, mean over seeds; the test part is never used to choose).\n\n",
        s.candidates.len(),
        h.budget,
        h.eta,
        s.spec.metric_label(),
        s.spec.direction
    );
    let mut html = format!(
        "<h3>Successive halving search</h3>\n<p>{} candidates, budget <code>{}</code>, eta = {}, chosen by <code>{}</code> (mean over seeds; the test part is never used to choose).</p>\n<table><thead><tr><th>rung</th><th>budget</th><th>candidates</th><th>promoted</th><th>best</th></tr></thead><tbody>\n",
        s.candidates.len(),
        escape(h.budget),
        h.eta,
        escape(&s.spec.metric_label())
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
            h.budget,
            d.budget,
            s.spec.metric_label()
        ));
        html.push_str(&format!(
            "<p>Last rung ({} = {}), best first:</p>\n<table><thead><tr><th></th><th>candidate</th><th>{}</th></tr></thead><tbody>\n",
            escape(h.budget),
            d.budget,
            escape(&s.spec.metric_label())
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
