//! Searches compared by how fast they find a good candidate: for each TPE study (a random
//! search is a TPE study whose candidates are all its random start), the best score found
//! after each candidate, in the order the candidates were proposed; the mean of each
//! sampler's curves; how many candidates TPE needs to reach the random search's final best;
//! and each search's winner with its test score, read only after the search (`ablate
//! search-curves`). Scores are the search's own (validation, never test).

use crate::collect::Run;
use crate::error::{ReportError, Result};
use crate::figures::style::{font, px, render, width, Area, Figure};
use ionode_study::manifest::search_spec::Direction;
use ionode_study::manifest::Plan;
use ionode_study::{output, record, store, tpe};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// One search's curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub study: String,
    /// `tpe`, or `random` when every candidate is of the random start.
    pub sampler: String,
    /// The manifest seed (searches of the same seed share their random start).
    pub seed: u64,
    /// The study's manifest hash (which manifest, overrides included, it ran).
    pub manifest_hash: String,
    pub metric: String,
    pub direction: Direction,
    /// After candidate k (in proposal order), the best score so far (`None` before any).
    pub best: Vec<Option<f64>>,
    /// Runs per candidate (folds x seeds).
    pub runs_per_candidate: usize,
    /// The winner, its score and its mean measured test MAE over its runs.
    pub winner: Option<(usize, f64, Option<f64>)>,
}

/// The curve of the finished TPE study in `dir`.
pub fn curve(dir: &Path) -> Result<Curve> {
    let plan = Plan::read(dir)?;
    let Some(state) = tpe::State::read(&plan, dir)? else {
        return Err(ReportError::Failed(format!(
            "'{}' is not a TPE search (sampler = \"tpe\"); its curve is not defined",
            dir.display()
        )));
    };
    let search = plan.search.as_ref().expect("a TPE state has a search");
    let objectives = search.spec.objectives();
    if objectives.len() != 1 {
        return Err(ReportError::Failed(format!(
            "'{}' searches {} objectives: it has a Pareto front (its report draws it), not one \
             best score to follow",
            dir.display(),
            objectives.len()
        )));
    }
    let better = |a: f64, b: f64| match search.spec.direction {
        Direction::Minimize => a < b,
        Direction::Maximize => a > b,
    };
    if state.candidates.len() < state.tpe.candidates {
        return Err(ReportError::Failed(format!(
            "'{}' has proposed {} of its {} candidates; finish the search first (`ablate run`)",
            dir.display(),
            state.candidates.len(),
            state.tpe.candidates
        )));
    }
    let mut best: Vec<Option<f64>> = Vec::with_capacity(state.candidates.len());
    let mut current: Option<(usize, f64)> = None;
    for c in 0..state.candidates.len() {
        let Some(s) = state.score(dir, c, &objectives) else {
            return Err(ReportError::Failed(format!(
                "'{}': candidate {c} is not finished; finish the search first (`ablate run`)",
                dir.display()
            )));
        };
        if let Some(v) = s.score {
            if current.is_none_or(|(_, b)| better(v, b)) {
                current = Some((c, v));
            }
        }
        best.push(current.map(|(_, v)| v));
    }
    let winner = match current {
        Some((c, v)) => Some((c, v, test_mae(dir, &state, c)?)),
        None => None,
    };
    let sampler = if tpe::generation_count(search, state.tpe) == 1 {
        "random"
    } else {
        "tpe"
    };
    Ok(Curve {
        study: plan.study.clone(),
        sampler: sampler.into(),
        seed: plan.seed,
        manifest_hash: plan.manifest_hash.clone(),
        metric: search.spec.metric.clone(),
        direction: search.spec.direction,
        best,
        runs_per_candidate: state
            .candidates
            .first()
            .map_or(0, |c| c.runs.iter().flatten().count()),
        winner,
    })
}

/// The mean measured test MAE over a candidate's runs (its folds and seeds).
fn test_mae(dir: &Path, state: &tpe::State, c: usize) -> Result<Option<f64>> {
    let mut values = Vec::new();
    for &i in state.candidates[c].runs.iter().flatten() {
        let path = store::run_dir(dir, &state.runs[i].id).join(store::RUN_FILE);
        let record = record::read(&path)?;
        let run = Run {
            path: path.clone(),
            record,
        };
        match run.test_mae() {
            Some(v) => values.push(v),
            None => return Ok(None),
        }
    }
    Ok((!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64))
}

/// The mean curve of a sampler's searches over the candidates all of them have.
fn mean_curve(curves: &[&Curve]) -> Vec<Option<f64>> {
    let n = curves.iter().map(|c| c.best.len()).min().unwrap_or(0);
    (0..n)
        .map(|k| {
            let v: Option<Vec<f64>> = curves.iter().map(|c| c.best[k]).collect();
            v.map(|v| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect()
}

/// Writes `out/search_curves.csv`, `out/search_curves.{png,svg,pdf}` and
/// `out/search_curves.json` (the studies compared, each with its manifest hash, winner and
/// its test score, the summary, and when and by which commit it was made); returns the
/// summary for people.
pub fn write(curves: &[Curve], out: &Path) -> Result<String> {
    let Some(first) = curves.first() else {
        return Err(ReportError::Failed("no search to compare".into()));
    };
    if let Some(c) = curves
        .iter()
        .find(|c| c.metric != first.metric || c.direction != first.direction)
    {
        return Err(ReportError::Failed(format!(
            "'{}' is chosen by {} ({}), '{}' by {} ({}): only searches by one metric compare",
            first.study, first.metric, first.direction, c.study, c.metric, c.direction
        )));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| ReportError::Failed(format!("cannot create '{}': {e}", out.display())))?;
    let mut csv = String::from("study,sampler,seed,candidate,runs,best\n");
    for c in curves {
        for (k, b) in c.best.iter().enumerate() {
            writeln!(
                csv,
                "{},{},{},{},{},{}",
                c.study,
                c.sampler,
                c.seed,
                k + 1,
                (k + 1) * c.runs_per_candidate,
                b.map_or(String::new(), |v| format!("{v}"))
            )?;
        }
    }
    output::write_text(&out.join("search_curves.csv"), &csv)?;
    crate::figures::style::register_font()?;
    render(out, "search_curves", &Plot(curves))?;
    let text = summary(curves);
    let git = ionode_study::provenance::git_state();
    let studies: Vec<serde_json::Value> = curves
        .iter()
        .map(|c| {
            serde_json::json!({
                "study": c.study,
                "sampler": c.sampler,
                "seed": c.seed,
                "manifest_hash": c.manifest_hash,
                "candidates": c.best.len(),
                "runs_per_candidate": c.runs_per_candidate,
                "winner": c.winner.map(|w| w.0),
                "winner_score": c.winner.map(|w| w.1),
                "winner_test_mae": c.winner.and_then(|w| w.2),
            })
        })
        .collect();
    let record = serde_json::json!({
        "metric": first.metric,
        "direction": first.direction,
        "studies": studies,
        "summary": text.lines().collect::<Vec<_>>(),
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "ionode_version": env!("CARGO_PKG_VERSION"),
        "created_utc": ionode_study::provenance::now_utc(),
    });
    output::write_text(
        &out.join("search_curves.json"),
        &(serde_json::to_string_pretty(&record).expect("JSON values serialise") + "\n"),
    )?;
    Ok(text)
}

fn summary(curves: &[Curve]) -> String {
    let mut text = String::new();
    let better = |a: f64, b: f64| match curves[0].direction {
        Direction::Minimize => a <= b,
        Direction::Maximize => a >= b,
    };
    let by = |s: &str| -> Vec<&Curve> { curves.iter().filter(|c| c.sampler == s).collect() };
    let (tpe, random) = (by("tpe"), by("random"));
    for (name, group) in [("tpe", &tpe), ("random", &random)] {
        if group.is_empty() {
            continue;
        }
        let mean = mean_curve(group);
        let at = |k: usize| {
            mean.get(k.saturating_sub(1))
                .copied()
                .flatten()
                .map_or("-".to_string(), |v| format!("{v:.4}"))
        };
        let n = mean.len();
        let _ = writeln!(
            text,
            "{name}: {} search(es); mean best {} after {} candidates: {}, after {}: {}, after {n}: {}",
            group.len(),
            curves[0].metric,
            n / 4,
            at(n / 4),
            n / 2,
            at(n / 2),
            at(n)
        );
    }
    if !tpe.is_empty() && !random.is_empty() {
        let (t, r) = (mean_curve(&tpe), mean_curve(&random));
        if let Some(target) = r.last().copied().flatten() {
            let reach = t.iter().position(|v| v.is_some_and(|v| better(v, target)));
            let _ = writeln!(
                text,
                "TPE's mean curve reaches the random search's mean final best ({target:.4}, after {} candidates) {}",
                r.len(),
                match reach {
                    Some(k) => format!("after {} candidates ({:.0} % of them)", k + 1, 100.0 * (k + 1) as f64 / r.len() as f64),
                    None => "not within its candidates".to_string(),
                }
            );
        }
        // Paired by seed: the searches that share a random start.
        for t in &tpe {
            let Some(r) = random.iter().find(|r| r.seed == t.seed) else {
                continue;
            };
            let Some(target) = r.best.last().copied().flatten() else {
                continue;
            };
            let reach = t
                .best
                .iter()
                .position(|v| v.is_some_and(|v| better(v, target)));
            let _ = writeln!(
                text,
                "seed {}: random's best {target:.4} after {} candidates; TPE reaches it {}",
                t.seed,
                r.best.len(),
                reach.map_or("never".to_string(), |k| format!("after {}", k + 1))
            );
        }
    }
    for c in curves {
        if let Some((w, v, test)) = c.winner {
            let _ = writeln!(
                text,
                "{} ({}, seed {}): winner candidate {w}, {} = {v:.4}, test MAE (read after the search) = {}",
                c.study,
                c.sampler,
                c.seed,
                c.metric,
                test.map_or("undefined".to_string(), |t| format!("{t:.4}"))
            );
        }
    }
    text
}

/// Best so far against candidates: a thin line per search, a thick one per sampler's mean.
struct Plot<'a>(&'a [Curve]);

fn colour(sampler: &str) -> RGBColor {
    if sampler == "tpe" {
        RGBColor(0xc0, 0x39, 0x2b)
    } else {
        RGBColor(0x3b, 0x6e, 0xa8)
    }
}

impl Figure for Plot<'_> {
    fn size(&self) -> (u32, u32) {
        (640, 420)
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<()> {
        let curves = self.0;
        let n = curves.iter().map(|c| c.best.len()).max().unwrap_or(1);
        let values = curves.iter().flat_map(|c| c.best.iter().flatten().copied());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Best {} found, TPE and random search", curves[0].metric),
                font(15.0),
            )
            .margin(px(10.0))
            .x_label_area_size(px(36.0))
            .y_label_area_size(px(56.0))
            .build_cartesian_2d(1.0..n as f64, (lo - pad)..(hi + pad))
            .map_err(crate::error::draw)?;
        chart
            .configure_mesh()
            .x_max_light_lines(0)
            .y_max_light_lines(0)
            .x_desc(format!(
                "candidates ({} runs each: folds x seeds)",
                curves[0].runs_per_candidate
            ))
            .y_desc(format!("best {} so far", curves[0].metric))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .label_style(font(12.0))
            .draw()
            .map_err(crate::error::draw)?;
        let line = |c: &[Option<f64>]| -> Vec<(f64, f64)> {
            c.iter()
                .enumerate()
                .filter_map(|(k, v)| v.map(|v| ((k + 1) as f64, v)))
                .collect()
        };
        for c in curves {
            let col = colour(&c.sampler).mix(0.35);
            chart
                .draw_series(LineSeries::new(line(&c.best), col.stroke_width(width(1.0))))
                .map_err(crate::error::draw)?;
        }
        for sampler in ["tpe", "random"] {
            let group: Vec<&Curve> = curves.iter().filter(|c| c.sampler == sampler).collect();
            if group.is_empty() {
                continue;
            }
            let col = colour(sampler);
            chart
                .draw_series(LineSeries::new(
                    line(&mean_curve(&group)),
                    col.stroke_width(width(3.0)),
                ))
                .map_err(crate::error::draw)?
                .label(format!("{sampler}: mean of {} searches", group.len()))
                .legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + px(20.0), y)],
                        col.stroke_width(width(3.0)),
                    )
                });
        }
        chart
            .configure_series_labels()
            .label_font(font(12.0))
            .legend_area_size(px(30.0))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(crate::error::draw)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(sampler: &str, seed: u64, best: &[f64]) -> Curve {
        Curve {
            study: format!("{sampler}_{seed}"),
            sampler: sampler.into(),
            seed,
            manifest_hash: String::new(),
            metric: "finetune.validation.mae".into(),
            direction: Direction::Minimize,
            best: best.iter().map(|&v| Some(v)).collect(),
            runs_per_candidate: 4,
            winner: None,
        }
    }

    #[test]
    fn the_summary_says_when_tpe_reaches_the_random_searchs_best() {
        let curves = vec![
            curve("tpe", 1, &[0.5, 0.4, 0.3, 0.3]),
            curve("tpe", 2, &[0.6, 0.5, 0.2, 0.2]),
            curve("random", 1, &[0.5, 0.4, 0.4, 0.35]),
            curve("random", 2, &[0.6, 0.5, 0.5, 0.25]),
        ];
        assert_eq!(
            mean_curve(&curves[..2].iter().collect::<Vec<_>>()),
            vec![Some(0.55), Some(0.45), Some(0.25), Some(0.25)]
        );
        let text = summary(&curves);
        // Random's mean final best is 0.3; TPE's mean curve is 0.25 after 3 candidates.
        assert!(
            text.contains("reaches the random search's mean final best (0.3000, after 4 candidates) after 3 candidates (75 %"),
            "{text}"
        );
        assert!(
            text.contains(
                "seed 1: random's best 0.3500 after 4 candidates; TPE reaches it after 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "seed 2: random's best 0.2500 after 4 candidates; TPE reaches it after 3"
            ),
            "{text}"
        );
    }
}
