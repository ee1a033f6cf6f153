//! `ablate predict --run DIR --data FILE.csv --out PRED.csv`: a finished run applied to
//! every row of a measured-data file (with or without outcomes).
//!
//! DIR is an `ablate train` output folder or one run of a study
//! (`results/<study>/runs/<id>/`, verified against its DONE marker); both hold the run's
//! record, `run.h5`. Everything is checked before anything is predicted, and PRED.csv is written
//! only when all of it worked: a file that fails validation, an ion the model has no slot
//! for, a flux or temperature outside what the model was trained on (unless
//! `--extrapolate`), a point the physics cannot solve or a prediction that is physically
//! impossible is an error naming the row and column, and nothing is written.

use crate::cli::PredictArgs;
use crate::predictor::{LoadedRun, Predicted};
use crate::{output, tabular};
use anyhow::{bail, Context, Result};
use ionode_physics::IonDb;
use ionode_train::data::Samples;
use ionode_train::measured::{csv, parse_csv, LoadOptions, MeasuredData, Outcomes};
use ionode_train::metrics::{implausible, Metrics};
use ionode_train::run::Domain;
use std::fmt::Write as _;
use std::path::Path;

/// The flux column's name as written in the file.
fn flux_column(data: &MeasuredData) -> &str {
    data.columns
        .iter()
        .find(|c| *c == "Jv_m_s" || *c == "Jv_LMH")
        .map_or("Jv_m_s", String::as_str)
}

/// Rows outside what the model was trained on, one located line each.
fn outside(data: &MeasuredData, domain: &Domain, neural: bool) -> Vec<String> {
    let name = &data.source_name;
    let flux_col = flux_column(data);
    let lmh = flux_col == "Jv_LMH";
    let mut out = Vec::new();
    // A relative slack for numbers that went through text and back.
    let within = |x: f64, [lo, hi]: [f64; 2], slack: f64| x >= lo - slack && x <= hi + slack;
    for r in &data.rows {
        let [lo, hi] = domain.flux_m_s;
        if !within(r.jv_m_s, domain.flux_m_s, 1e-9 * hi) {
            let (v, a, b, unit) = if lmh {
                (r.jv_m_s * 3.6e6, lo * 3.6e6, hi * 3.6e6, "LMH")
            } else {
                (r.jv_m_s, lo, hi, "m/s")
            };
            out.push(format!(
                "{name}, line {}, column '{flux_col}', value '{v}': outside the fluxes the model was trained on, {a:.6e} to {b:.6e} {unit}; expected a flux in that range (or --extrapolate)",
                r.line
            ));
        }
        // A neural model has no temperature input: it knows only the temperatures it saw.
        // DSPM-DE solves each point at its temperature, so its range is a warning at most.
        if neural && !within(r.temperature_k, domain.temperature_k, 0.01) {
            let [lo, hi] = domain.temperature_k;
            out.push(format!(
                "{name}, line {}, column 'temperature_K', value '{}': outside the temperatures the model was trained on, {lo} to {hi} K; expected a temperature in that range (or --extrapolate)",
                r.line, r.temperature_k
            ));
        }
    }
    out
}

/// Prints located problems and returns the one summary error (exit code 2).
fn refuse(file: &Path, lines: Vec<String>) -> anyhow::Error {
    let n = lines.len();
    for l in lines.iter().take(20) {
        eprintln!("{l}");
    }
    if n > 20 {
        eprintln!("... and {} more problems", n - 20);
    }
    crate::usage!(
        "data '{}': {n} problem{}; nothing was predicted",
        file.display(),
        if n == 1 { "" } else { "s" }
    )
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let run = LoadedRun::from_dir(&args.run)?;
    let db = IonDb::builtin();
    let text = tabular::read_text(&args.data)?;
    let name = args.data.display().to_string();
    let options = LoadOptions {
        balance_with: args.balance_with.clone(),
        outcomes: Outcomes::Optional,
        ..LoadOptions::default()
    };
    let data = parse_csv(&text, &name, &options, &db).map_err(|e| refuse(&args.data, e.lines()))?;

    // Every present ion needs a slot of the model.
    let slots = run.predictor.slots();
    let slot_refs: Vec<&str> = slots.iter().map(String::as_str).collect();
    let mut problems = Vec::new();
    let key = |n: &str| {
        db.get(n)
            .map(|i| i.name.clone())
            .unwrap_or_else(|_| n.to_string())
    };
    let slot_keys: Vec<String> = slots.iter().map(|s| key(s)).collect();
    let slot_names: Vec<String> = slots
        .iter()
        .map(|s| {
            db.get(s)
                .map(|i| i.display_name())
                .unwrap_or_else(|_| s.clone())
        })
        .collect();
    for r in &data.rows {
        for (k, ion) in data.ions.iter().enumerate() {
            if r.present[k] && !slot_keys.contains(&ion.name) {
                problems.push(format!(
                    "{name}, line {}, column 'feed_{}_mol_m3', value '{}': the model has no slot for {}; its slots are {}",
                    r.line,
                    ion.display_name(),
                    r.feed_mol_m3[k],
                    ion.display_name(),
                    slot_names.join(", ")
                ));
            }
        }
    }
    match &run.domain {
        Some(d) if !args.extrapolate => {
            let neural = run.predictor.is_neural();
            problems.extend(outside(&data, d, neural));
        }
        _ => {}
    }
    if !problems.is_empty() {
        return Err(refuse(&args.data, problems));
    }
    let samples =
        Samples::from_measured(&data, &slot_refs).with_context(|| format!("data '{name}'"))?;

    let Predicted {
        permeate: predicted,
        failed_rows,
    } = run.predictor.predict(&samples)?;
    if !failed_rows.is_empty() {
        let lines: Vec<String> = failed_rows
            .iter()
            .map(|&r| data.rows[r].line.to_string())
            .collect();
        bail!(
            "DSPM-DE has no solution at line(s) {} of '{name}' with the calibrated membrane; nothing was predicted",
            lines.join(", ")
        );
    }
    if let Some(why) = implausible(&samples, predicted.view()) {
        bail!("{why}; nothing was predicted");
    }

    // PRED.csv: one row per data row and present ion.
    let with_measured = data.rows.iter().any(|r| r.measured.iter().any(|&m| m));
    let mut header: Vec<String> = [
        "row",
        "line",
        "sample_id",
        "family",
        "ion",
        "feed_mol_m3",
        "Jv_m_s",
        "temperature_K",
        "permeate_predicted_mol_m3",
        "rejection_predicted",
    ]
    .map(String::from)
    .to_vec();
    if with_measured {
        header.extend(["rejection_measured", "rejection_measured_sd"].map(String::from));
    }
    let mut out = String::new();
    csv::write_record(&mut out, &header);
    let num = |x: f64| format!("{x:?}");
    for (row, r) in data.rows.iter().enumerate() {
        for (s, slot) in slot_names.iter().enumerate() {
            if !samples.mask[[row, s]] {
                continue;
            }
            let feed = samples.feed_mol_m3[[row, s]];
            let p = predicted[[row, s]];
            let mut f = vec![
                (row + 1).to_string(),
                r.line.to_string(),
                r.sample_id.clone().unwrap_or_default(),
                r.family.clone().unwrap_or_default(),
                slot.clone(),
                num(feed),
                num(r.jv_m_s),
                num(r.temperature_k),
                num(p),
                num(1.0 - p / feed),
            ];
            if with_measured {
                let measured = samples.observed[[row, s]];
                f.push(if measured {
                    num(1.0 - samples.permeate_mol_m3[[row, s]] / feed)
                } else {
                    String::new()
                });
                let sd = samples
                    .permeate_sd_mol_m3
                    .as_ref()
                    .map(|a| a[[row, s]])
                    .filter(|&v| measured && v > 0.0);
                f.push(sd.map(|v| num(v / feed)).unwrap_or_default());
            }
            csv::write_record(&mut out, &f);
        }
    }
    output::write_text(&args.out, &out)?;

    let mut report = format!(
        "predicted {} rows ({} ion values) of {name}; wrote {}\n",
        data.rows.len(),
        samples.mask.iter().filter(|&&m| m).count(),
        args.out.display()
    );
    if with_measured {
        let m = Metrics::of(&samples, predicted.view())?;
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
        writeln!(
            report,
            "{:<10} {:>6} {:>14} {:>15}",
            "ion", "n", "rejection MAE", "rejection RMSE"
        )?;
        for (ion, slot) in m.per_ion.iter().zip(&slot_names) {
            if ion.n > 0 {
                writeln!(
                    report,
                    "{slot:<10} {:>6} {:>14} {:>15}",
                    ion.n,
                    f(ion.mae),
                    f(ion.rmse)
                )?;
            }
        }
        writeln!(
            report,
            "{:<10} {:>6} {:>14} {:>15}",
            "overall",
            m.n_values,
            f(m.mae),
            f(m.rmse)
        )?;
    }
    super::print_stdout(&report)
}
