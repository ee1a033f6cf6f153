//! Two studies compared cell by cell (`ablate compare STUDY_A STUDY_B`): the configurations
//! both ran (the same `cell`: a run's config without its seed and held-out family), each
//! scored per replicate seed by its measured test MAE (the mean over that seed's folds, as
//! the report's tables score it), and the seeds both ran paired with the report's
//! statistics: mean of each, B − A with its 95 % interval, paired t-test and Wilcoxon p.
//! The same study run twice (another commit, another machine) gives B − A = 0 in every
//! cell; a change that moves a cell says by how much and whether beyond seed noise.

use crate::collect::Study;
use crate::roles::Roles;
use crate::stats::Paired;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One configuration both studies ran.
#[derive(Debug, Clone)]
pub struct Cell {
    pub cell: String,
    /// What the configuration is, as the report's tables name it.
    pub label: String,
    /// Seeds with a score in A and in B.
    pub seeds_a: usize,
    pub seeds_b: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// B − A over the seeds both have.
    pub paired: Paired,
}

/// Two studies compared.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub shared: Vec<Cell>,
    /// Cells only one study ran.
    pub only_a: usize,
    pub only_b: usize,
}

/// Per cell: its label and seed -> mean test MAE over the seed's folds.
type Scores = BTreeMap<String, (String, BTreeMap<u64, f64>)>;
/// Per cell: its label and seed -> (sum of test MAE over the seed's folds, folds).
type Sums = BTreeMap<String, (String, BTreeMap<u64, (f64, usize)>)>;

fn scores(study: &Study) -> Scores {
    let mut sums = Sums::new();
    for run in &study.runs {
        let Some(mae) = run.test_mae() else { continue };
        let r = Roles::of(run);
        let label = [
            Some(crate::roles::pretty(&r.model)),
            r.constraint.clone(),
            Some(if r.pretrained {
                "pre-trained".into()
            } else {
                "from scratch".into()
            }),
            Some(r.setting.clone()),
        ]
        .into_iter()
        .flatten()
        .chain(r.extra.iter().map(|(k, v)| format!("{k} = {v}")))
        .collect::<Vec<_>>()
        .join(", ");
        let entry = sums
            .entry(r.cell)
            .or_insert_with(|| (label, BTreeMap::new()));
        let s = entry.1.entry(run.seed()).or_insert((0.0, 0));
        s.0 += mae;
        s.1 += 1;
    }
    sums.into_iter()
        .map(|(cell, (label, seeds))| {
            let means = seeds
                .into_iter()
                .map(|(seed, (sum, n))| (seed, sum / n as f64))
                .collect();
            (cell, (label, means))
        })
        .collect()
}

fn mean(values: &BTreeMap<u64, f64>) -> f64 {
    values.values().sum::<f64>() / values.len() as f64
}

/// Compares study B with study A, cell by cell.
pub fn compare(a: &Study, b: &Study) -> Comparison {
    let (sa, sb) = (scores(a), scores(b));
    let shared: Vec<Cell> = sa
        .iter()
        .filter_map(|(cell, (label, xa))| {
            let (_, xb) = sb.get(cell)?;
            Some(Cell {
                cell: cell.clone(),
                label: label.clone(),
                seeds_a: xa.len(),
                seeds_b: xb.len(),
                mean_a: mean(xa),
                mean_b: mean(xb),
                paired: Paired::of(xb, xa),
            })
        })
        .collect();
    let mut shared = shared;
    shared.sort_by(|x, y| x.label.cmp(&y.label).then_with(|| x.cell.cmp(&y.cell)));
    Comparison {
        only_a: sa.len() - shared.len(),
        only_b: sb.len() - shared.len(),
        shared,
    }
}

/// The comparison as text for a terminal: one line per shared cell, significant
/// differences (paired t-test at the report's level) marked `*`.
pub fn text(a: &Study, b: &Study, c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A: study '{}' ({} finished runs, {})\nB: study '{}' ({} finished runs, {})\n",
        a.plan.study,
        a.runs.len(),
        a.dir.display(),
        b.plan.study,
        b.runs.len(),
        b.dir.display()
    );
    let _ = writeln!(
        out,
        "{} configuration(s) in both; {} only in A, {} only in B. Test MAE per seed (the mean over its folds), paired over the seeds both ran; * marks p < {} (paired t-test).\n",
        c.shared.len(),
        c.only_a,
        c.only_b,
        crate::stats::ALPHA
    );
    let _ = writeln!(
        out,
        "{:<60} {:>5} {:>10} {:>10} {:>11} {:>24} {:>8} {:>8}",
        "configuration", "pairs", "A", "B", "B − A", "95 % interval", "p (t)", "p (W)"
    );
    for cell in &c.shared {
        let p = &cell.paired;
        let label: String = cell.label.chars().take(60).collect();
        let _ = writeln!(
            out,
            "{label:<60} {:>5} {:>10.5} {:>10.5} {:>+10.5}{} {:>24} {:>8.3} {:>8.3}",
            p.n,
            cell.mean_a,
            cell.mean_b,
            p.mean_diff,
            if p.significant() { "*" } else { " " },
            format!("[{:+.5}, {:+.5}]", p.ci95.0, p.ci95.1),
            p.p_t,
            p.p_wilcoxon
        );
    }
    out
}
