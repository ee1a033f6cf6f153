//! The report's figures, each as PNG, SVG and PDF ([`style::render`]).
//!
//! Every figure is a small data struct filled from the study plus a `draw` generic over the
//! plotters backend. Figures a study has no data for (no attention maps without the
//! attention NODE, no learning curves for the DSPM-DE baseline, no separation factor
//! without a family holding Li⁺ and Mg²⁺) are skipped with a note.
//!
//! - `ablation_bars`: test MAE of every configuration, one panel per setting, groups by
//!   model, colour by constraint, light bars without pre-training, ±1 std over seeds, ★ on
//!   a best bar significantly better than the runner-up.
//! - `rejection_vs_flux`, `separation_factor`: the best configuration's best run, one
//!   panel per test family: measured points (one marker per feed) and the model evaluated
//!   on a dense flux grid.
//! - `transfer_by_family`: one panel per held-out family of a leave-one-family-out study:
//!   the measured points and, in one line pattern each, the best physics-anchored, plain
//!   neural and calibrated DSPM-DE configurations (best by validation MAE, never test),
//!   their lowest replicate seed.
//! - `parity`: predicted vs measured rejection per ion with the panel's MAE.
//! - `learning_curves`: every seed of the best configuration, per stage.
//! - `attention_heatmaps`, `attention_correlation`: the best attention-NODE configuration.

mod attention;
mod bars;
mod curves;
mod flux;
pub mod pareto;
mod parity;
pub mod style;

use super::collect::{read_attention, read_predictions, Attention, Study};
use super::scores::Scores;
use super::{best, varying, Group};
use crate::error::Result;
use std::path::Path;
use style::render;

/// Writes every figure it has data for into `out/figures/`; returns the names written
/// and notes on the ones skipped.
pub fn write(
    study: &Study,
    groups: &[Group],
    scores: &Scores,
    validation: &Scores,
    out: &Path,
) -> Result<(Vec<String>, Vec<String>)> {
    style::register_font()?;
    let dir = out.join("figures");
    let syn = super::synthetic_note(study);
    let mut written = Vec::new();
    let mut notes = Vec::new();
    let label_fields = varying(groups);
    let mut done = |name: &str| written.push(name.to_string());

    match bars::Bars::new(groups, scores, syn) {
        Some(b) => {
            render(&dir, "ablation_bars", &b)?;
            done("ablation_bars");
        }
        None => notes.push("ablation bars skipped: no configuration has a test MAE".to_string()),
    }

    // The best configuration with predictions, and its best seed's run.
    let with = |has: &dyn Fn(usize) -> bool| -> Vec<Group> {
        groups
            .iter()
            .filter(|g| g.runs.iter().any(|&i| has(i)))
            .cloned()
            .collect()
    };
    let with_pred = with(&|i| study.runs[i].record.has_predictions);
    match best(scores, &with_pred) {
        Some(b) => {
            let g = &with_pred[b];
            let run = g
                .runs
                .iter()
                .copied()
                .filter(|&i| study.runs[i].record.has_predictions)
                .min_by(|&a, &b| {
                    let m = |i: usize| study.runs[i].test_mae().unwrap_or(f64::INFINITY);
                    m(a).total_cmp(&m(b))
                })
                .expect("the group has a run with predictions");
            let r = &study.runs[run];
            let pred = read_predictions(&r.path)?;
            let what = format!(
                "best configuration [{}], seed {}{syn}",
                g.label(&label_fields),
                r.seed()
            );
            render(&dir, "parity", &parity::Parity::new(&pred, &what))?;
            done("parity");
            let curves = flux::ModelCurves::of(&r.path, &pred);
            if let Err(e) = &curves {
                notes.push(format!(
                    "model curves left out of the flux figures: the run's model could not be evaluated ({e:#})"
                ));
            }
            let curves = curves.ok();
            match flux::Flux::rejection(&pred, curves.as_ref(), &what) {
                Some(f) => {
                    render(&dir, "rejection_vs_flux", &f)?;
                    done("rejection_vs_flux");
                }
                None => notes.push("rejection vs flux skipped: no prediction has a family".into()),
            }
            match flux::Flux::separation(&pred, curves.as_ref(), &what) {
                Some(f) => {
                    render(&dir, "separation_factor", &f)?;
                    done("separation_factor");
                }
                None => notes.push(
                    "separation factor skipped: no test family holds both Li⁺ and Mg²⁺".into(),
                ),
            }
        }
        None => notes.push(
            "parity and flux figures skipped: no finished run has predictions with a test MAE"
                .into(),
        ),
    }

    match transfer(study, groups, validation, &label_fields)? {
        Some((figure, chosen)) => {
            render(&dir, "transfer_by_family", &figure)?;
            done("transfer_by_family");
            notes.extend(chosen);
        }
        None => notes.push(
            "transfer by family skipped: it needs leave-one-family-out folds of at least two of \
             a physics-anchored, a plain neural and a calibrated DSPM-DE model"
                .into(),
        ),
    }

    let with_curves = with(&|i| !study.runs[i].record.curves.is_empty());
    match best(scores, &with_curves) {
        Some(b) => {
            let g = &with_curves[b];
            let c = curves::Curves::new(study, g, &g.label(&label_fields), syn);
            render(&dir, "learning_curves", &c)?;
            done("learning_curves");
        }
        None => notes.push("learning curves skipped: no run has curves".into()),
    }

    let with_att = with(&|i| study.runs[i].record.has_attention);
    let att_group = best(scores, &with_att).or(if with_att.is_empty() { None } else { Some(0) });
    match att_group {
        Some(b) => {
            let g = &with_att[b];
            let maps: Vec<Attention> = g
                .runs
                .iter()
                .filter(|&&i| study.runs[i].record.has_attention)
                .map(|&i| read_attention(&study.runs[i].path))
                .collect::<ionode_study::errors::Result<_>>()?;
            let families = attention::family_means(&maps);
            let config = g.label(&label_fields);
            render(
                &dir,
                "attention_heatmaps",
                &attention::Heat::new(families.clone(), &config, syn),
            )?;
            done("attention_heatmaps");
            let (corr, unknown) = attention::Correlation::new(&families, &config, syn);
            if !unknown.is_empty() {
                notes.push(format!(
                    "attention correlation: ions not in the built-in database left out: {}",
                    unknown.join(", ")
                ));
            }
            render(&dir, "attention_correlation", &corr)?;
            done("attention_correlation");
        }
        None => notes.push(
            "attention heat maps and correlation skipped: no run has attention maps (attention_node)"
                .into(),
        ),
    }
    Ok((written, notes))
}

/// The transfer figure: per class of model (physics-anchored, plain neural, calibrated
/// DSPM-DE), the leave-one-family-out configuration with the lowest validation MAE, and of
/// it the runs of its lowest replicate seed, one per held-out family. Also returns a note
/// per class naming the configuration chosen.
fn transfer(
    study: &Study,
    groups: &[Group],
    validation: &Scores,
    label_fields: &[String],
) -> Result<Option<(flux::Flux, Vec<String>)>> {
    use super::roles::{is_anchored, Roles};
    type Class = (&'static str, fn(&str) -> bool);
    let classes: [Class; 3] = [
        ("physics-anchored", |m| is_anchored(m)),
        ("neural", |m| m != "dspmde_fit" && !is_anchored(m)),
        ("DSPM-DE (calibrated)", |m| m == "dspmde_fit"),
    ];
    let mut compared = Vec::new();
    let mut chosen = Vec::new();
    for (class, member) in classes {
        let candidates: Vec<Group> = groups
            .iter()
            .filter(|g| g.roles.split == "by_family" && member(&g.roles.model))
            .filter(|g| g.runs.iter().any(|&i| study.runs[i].record.has_predictions))
            .cloned()
            .collect();
        let Some(b) = best(validation, &candidates) else {
            continue;
        };
        let g = &candidates[b];
        let seed = g.runs.iter().map(|&i| study.runs[i].seed()).min();
        let mut runs = std::collections::BTreeMap::new();
        for &i in &g.runs {
            let r = &study.runs[i];
            let family = Roles::of(r).test_family;
            let (Some(family), true) = (family, Some(r.seed()) == seed) else {
                continue;
            };
            if !r.record.has_predictions {
                continue;
            }
            let pred = read_predictions(&r.path)?;
            let curves = match flux::ModelCurves::of(&r.path, &pred) {
                Ok(c) => Some(c),
                Err(e) => {
                    chosen.push(format!(
                        "transfer by family, {class}, {family}: model curves left out, the run's \
                         model could not be evaluated ({e:#})"
                    ));
                    None
                }
            };
            runs.insert(family, (pred, curves));
        }
        if runs.is_empty() {
            continue;
        }
        let score = validation.get(&g.roles.cell).map_or(f64::NAN, |s| s.mean);
        chosen.push(format!(
            "transfer by family, {class}: {} (validation MAE {score:.4}, seed {})",
            g.label(label_fields),
            seed.unwrap_or_default()
        ));
        compared.push(flux::Compared {
            label: class.to_string(),
            runs,
        });
    }
    if compared.len() < 2 {
        return Ok(None);
    }
    Ok(flux::Flux::transfer(
        &compared,
        &format!(
            "best of each kind by validation MAE{}",
            super::synthetic_note(study)
        ),
    )
    .map(|f| (f, chosen)))
}

/// Pearson's correlation coefficient (NaN when a variable is constant or n < 2).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx).powi(2);
        syy += (b - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_of_lines_and_constants() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }
}
