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
use anyhow::{bail, Context, Result};
use ionode_physics::IonDb;
use ionode_study::predictor::{Interval, LoadedRun, Predicted};
use ionode_study::{output, tabular};
use ionode_train::data::Samples;
use ionode_train::ensemble::{coverage, Bounds};
use ionode_train::measured::{csv, parse_csv, LoadOptions, MeasuredData, Outcomes, RejectionBasis};
use ionode_train::metrics::{implausible, Metrics};
use ionode_train::run::{Domain, Flag, RowPoint};
use ndarray::Array2;
use std::fmt::Write as _;
use std::path::Path;

/// The flux column's name as written in the file.
fn flux_column(data: &MeasuredData) -> &str {
    data.columns
        .iter()
        .find(|c| *c == "Jv_m_s" || *c == "Jv_LMH")
        .map_or("Jv_m_s", String::as_str)
}

/// Rows outside the fluxes and temperatures the model was trained on, one located line
/// each: what `predict` refuses without `--extrapolate`.
fn outside(data: &MeasuredData, domain: &Domain, neural: bool) -> Vec<String> {
    let name = &data.source_name;
    let flux_col = flux_column(data);
    let lmh = flux_col == "Jv_LMH";
    let mut out = Vec::new();
    for (r, flags) in data.rows.iter().zip(row_flags(data, domain)) {
        for flag in flags {
            match flag {
                Flag::Flux { .. } => {
                    let [lo, hi] = domain.flux_m_s;
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
                // A neural model has no temperature input: it knows only the temperatures
                // it saw. DSPM-DE solves each point at its temperature, so its range is a
                // flag at most.
                Flag::Temperature { .. } if neural => {
                    let [lo, hi] = domain.temperature_k;
                    out.push(format!(
                        "{name}, line {}, column 'temperature_K', value '{}': outside the temperatures the model was trained on, {lo} to {hi} K; expected a temperature in that range (or --extrapolate)",
                        r.line, r.temperature_k
                    ));
                }
                _ => {}
            }
        }
    }
    out
}

/// Every way each row lies outside the run's domain (ions, ionic strength, flux,
/// temperature), in row order.
fn row_flags(data: &MeasuredData, domain: &Domain) -> Vec<Vec<Flag>> {
    data.rows
        .iter()
        .map(|r| {
            let ions: Vec<(&str, i32, f64)> = data
                .ions
                .iter()
                .enumerate()
                .filter(|&(k, _)| r.present[k])
                .map(|(k, ion)| (ion.name.as_str(), ion.charge, r.feed_mol_m3[k]))
                .collect();
            domain.flags(RowPoint {
                ions: &ions,
                flux_m_s: r.jv_m_s,
                temperature_k: r.temperature_k,
            })
        })
        .collect()
}

/// One line on how many rows lie outside the domain, and why (the most frequent reasons
/// first).
fn domain_summary(flags: &[Vec<Flag>]) -> String {
    let outside = flags.iter().filter(|f| !f.is_empty()).count();
    if outside == 0 {
        return format!(
            "domain: all {} rows inside what the model was trained on",
            flags.len()
        );
    }
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for f in flags {
        let mut seen: Vec<String> = f.iter().map(Flag::kind).collect();
        seen.dedup();
        for k in seen {
            match kinds.iter_mut().find(|(n, _)| *n == k) {
                Some((_, c)) => *c += 1,
                None => kinds.push((k, 1)),
            }
        }
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    let reasons: Vec<String> = kinds
        .iter()
        .map(|(k, c)| format!("{k}: {c} row{}", if *c == 1 { "" } else { "s" }))
        .collect();
    format!(
        "domain: {outside} of {} rows outside what the model was trained on ({}); see the 'domain' column",
        flags.len(),
        reasons.join("; ")
    )
}

/// The Li+ and Mg^2+ slots, when the model has both: PRED.csv then gives the separation
/// factor `S = (1 - R_Li) / (1 - R_Mg) = T_Li / T_Mg` of every row holding both.
struct Separation {
    li: usize,
    mg: usize,
}

impl Separation {
    fn of(slot_keys: &[String]) -> Option<Separation> {
        let at = |n: &str| slot_keys.iter().position(|s| s == n);
        Some(Separation {
            li: at("Li+")?,
            mg: at("Mg^2+")?,
        })
    }
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

    let slots = SlotNames::of(&run.predictor.slots(), &db);
    let mut problems = unslotted(&data, &slots);
    match &run.domain {
        Some(d) if !args.extrapolate => {
            problems.extend(outside(&data, d, run.predictor.is_neural()));
        }
        _ => {}
    }
    if !problems.is_empty() {
        return Err(refuse(&args.data, problems));
    }
    let slot_refs: Vec<&str> = slots.given.iter().map(String::as_str).collect();
    let samples =
        Samples::from_measured(&data, &slot_refs).with_context(|| format!("data '{name}'"))?;
    let predicted = run.predictor.predict(&samples)?;
    if !predicted.failed_rows.is_empty() {
        let lines: Vec<String> = predicted
            .failed_rows
            .iter()
            .map(|&r| data.rows[r].line.to_string())
            .collect();
        bail!(
            "DSPM-DE has no solution at line(s) {} of '{name}' with the calibrated membrane; nothing was predicted",
            lines.join(", ")
        );
    }
    if let Some(why) = implausible(&samples, predicted.permeate.view()) {
        bail!("{why}; nothing was predicted");
    }
    let p = Prediction::new(&data, samples, slots, predicted, run.domain.as_ref());
    if let Some(note) = data.unconverted_note() {
        eprintln!("note: {note}");
    }
    output::write_text(&args.out, &p.csv())?;
    let mut report = format!(
        "predicted {} rows ({} ion values) of {name}; wrote {}\n",
        data.rows.len(),
        p.samples.mask.iter().filter(|&&m| m).count(),
        args.out.display()
    );
    if run.domain.is_some() {
        writeln!(report, "{}", domain_summary(&p.flags))?;
    }
    if p.columns.measured {
        report.push_str(&p.scores()?);
    }
    super::print_stdout(&report)
}

/// The model's slots: as the run names them, as ion keys (to match the data's ions) and
/// as display names (PRED.csv's `ion` column).
struct SlotNames {
    given: Vec<String>,
    keys: Vec<String>,
    shown: Vec<String>,
}

impl SlotNames {
    fn of(slots: &[String], db: &IonDb) -> SlotNames {
        let keys = slots
            .iter()
            .map(|n| {
                db.get(n)
                    .map(|i| i.name.clone())
                    .unwrap_or_else(|_| n.clone())
            })
            .collect();
        let shown = slots
            .iter()
            .map(|s| {
                db.get(s)
                    .map(|i| i.display_name())
                    .unwrap_or_else(|_| s.clone())
            })
            .collect();
        SlotNames {
            given: slots.to_vec(),
            keys,
            shown,
        }
    }
}

/// Every present ion the model has no slot for, one located line each.
fn unslotted(data: &MeasuredData, slots: &SlotNames) -> Vec<String> {
    let mut problems = Vec::new();
    for r in &data.rows {
        for (k, ion) in data.ions.iter().enumerate() {
            if r.present[k] && !slots.keys.contains(&ion.name) {
                problems.push(format!(
                    "{}, line {}, column 'feed_{}_mol_m3', value '{}': the model has no slot for {}; its slots are {}",
                    data.source_name,
                    r.line,
                    ion.display_name(),
                    r.feed_mol_m3[k],
                    ion.display_name(),
                    slots.shown.join(", ")
                ));
            }
        }
    }
    problems
}

/// Which optional column groups PRED.csv has.
struct Columns {
    /// An ensemble's interval of every prediction.
    interval: bool,
    /// The observed-basis prediction of rows with a film coefficient.
    film: bool,
    /// The rejection basis of every row (when any row is observed).
    basis: bool,
    /// The measured rejection (when the file has outcomes).
    measured: bool,
    /// The Li/Mg separation factor.
    separation: bool,
}

impl Columns {
    fn header(&self) -> Vec<String> {
        let mut header: Vec<&str> = vec![
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
        ];
        if self.interval {
            header.extend(["rejection_predicted_lower", "rejection_predicted_upper"]);
        }
        if self.film {
            header.push("rejection_predicted_observed");
            if self.interval {
                header.extend([
                    "rejection_predicted_observed_lower",
                    "rejection_predicted_observed_upper",
                ]);
            }
        }
        if self.basis {
            header.push("rejection_basis");
        }
        if self.measured {
            header.extend(["rejection_measured", "rejection_measured_sd"]);
        }
        if self.separation {
            header.push("separation_Li_Mg_predicted");
            if self.interval {
                header.extend(["separation_Li_Mg_lower", "separation_Li_Mg_upper"]);
            }
            if self.measured {
                header.push("separation_Li_Mg_measured");
            }
        }
        header.push("domain");
        header.into_iter().map(String::from).collect()
    }
}

/// A run's predictions of a data file, with everything PRED.csv and the summary show.
struct Prediction<'a> {
    data: &'a MeasuredData,
    samples: Samples,
    slots: SlotNames,
    /// `[rows, slots]` intrinsic permeate, mol/m3.
    predicted: Array2<f64>,
    interval: Option<Interval>,
    /// The permeate as each row measured it: observed rows with a film coefficient
    /// through the film model, the rest intrinsic.
    as_measured: Array2<f64>,
    /// The interval's transmissions on the same basis.
    as_measured_bounds: Option<Bounds>,
    /// Every way each row lies outside the run's domain.
    flags: Vec<Vec<Flag>>,
    separation: Option<Separation>,
    columns: Columns,
}

fn num(x: f64) -> String {
    format!("{x:?}")
}

impl<'a> Prediction<'a> {
    fn new(
        data: &'a MeasuredData,
        samples: Samples,
        slots: SlotNames,
        predicted: Predicted,
        domain: Option<&Domain>,
    ) -> Prediction<'a> {
        let Predicted {
            permeate: predicted,
            interval,
            ..
        } = predicted;
        let flags: Vec<Vec<Flag>> = match domain {
            Some(d) => row_flags(data, d),
            None => vec![Vec::new(); data.rows.len()],
        };
        let separation = Separation::of(&slots.keys).filter(|sep| {
            (0..samples.len()).any(|r| samples.mask[[r, sep.li]] && samples.mask[[r, sep.mg]])
        });
        // Rows of observed rejections with a film coefficient: the intrinsic prediction,
        // and the observed one the film model makes of it (what such a row measured).
        let as_measured = samples.observed_basis(&predicted);
        let as_measured_bounds = interval.as_ref().map(|i| {
            let feed = &samples.feed_mol_m3;
            let convert = |t: &Array2<f64>| {
                let p = samples.observed_basis(&(t * feed));
                ndarray::Zip::from(&p)
                    .and(feed)
                    .map_collect(|&p, &f| if f > 0.0 { p / f } else { 0.0 })
            };
            Bounds {
                lower: convert(&i.bounds.lower),
                upper: convert(&i.bounds.upper),
            }
        });
        let columns = Columns {
            interval: interval.is_some(),
            film: samples.film_factor.is_some(),
            basis: data
                .rows
                .iter()
                .any(|r| r.basis == RejectionBasis::Observed),
            measured: data.rows.iter().any(|r| r.measured.iter().any(|&m| m)),
            separation: separation.is_some(),
        };
        Prediction {
            data,
            samples,
            slots,
            predicted,
            interval,
            as_measured,
            as_measured_bounds,
            flags,
            separation,
            columns,
        }
    }

    /// PRED.csv: one row per data row and present ion.
    fn csv(&self) -> String {
        let mut out = String::new();
        csv::write_record(&mut out, &self.columns.header());
        for row in 0..self.data.rows.len() {
            for s in 0..self.slots.shown.len() {
                if self.samples.mask[[row, s]] {
                    csv::write_record(&mut out, &self.cells(row, s));
                }
            }
        }
        out
    }

    /// The cells of data row `row`, slot `s`, in the header's order.
    fn cells(&self, row: usize, s: usize) -> Vec<String> {
        let (r, samples, c) = (&self.data.rows[row], &self.samples, &self.columns);
        let feed = samples.feed_mol_m3[[row, s]];
        let p = self.predicted[[row, s]];
        let mut f = vec![
            (row + 1).to_string(),
            r.line.to_string(),
            r.sample_id.clone().unwrap_or_default(),
            r.family.clone().unwrap_or_default(),
            self.slots.shown[s].clone(),
            num(feed),
            num(r.jv_m_s),
            num(r.temperature_k),
            num(p),
            num(1.0 - p / feed),
        ];
        if let Some(i) = &self.interval {
            // The permeate's upper bound is the rejection's lower one.
            f.push(num(1.0 - i.bounds.upper[[row, s]]));
            f.push(num(1.0 - i.bounds.lower[[row, s]]));
        }
        if c.film {
            let converted = r.film_factor().is_some();
            let cell = |v: f64| if converted { num(v) } else { String::new() };
            f.push(cell(1.0 - self.as_measured[[row, s]] / feed));
            if let Some(b) = &self.as_measured_bounds {
                f.push(cell(1.0 - b.upper[[row, s]]));
                f.push(cell(1.0 - b.lower[[row, s]]));
            }
        }
        if c.basis {
            f.push(
                match (r.basis, r.k_film_m_s) {
                    (RejectionBasis::Intrinsic, _) => "intrinsic",
                    (RejectionBasis::Observed, Some(_)) => "observed",
                    (RejectionBasis::Observed, None) => {
                        "observed; compared as intrinsic (no k_film_m_s)"
                    }
                }
                .to_string(),
            );
        }
        if c.measured {
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
        if let Some(sep) = &self.separation {
            f.extend(self.separation_cells(sep, row));
        }
        let words: Vec<String> = self.flags[row].iter().map(ToString::to_string).collect();
        f.push(words.join("; "));
        f
    }

    /// The separation factor's cells of data row `row`: predicted, its interval (the
    /// widest ratio the two ions' intervals allow) and measured; empty where the row
    /// lacks either ion.
    fn separation_cells(&self, sep: &Separation, row: usize) -> Vec<String> {
        let samples = &self.samples;
        let t = |p: &Array2<f64>, s: usize| p[[row, s]] / samples.feed_mol_m3[[row, s]];
        let both = samples.mask[[row, sep.li]] && samples.mask[[row, sep.mg]];
        let mut f = vec![if both {
            num(t(&self.as_measured, sep.li) / t(&self.as_measured, sep.mg))
        } else {
            String::new()
        }];
        if let Some(b) = &self.as_measured_bounds {
            let (lo, hi) = if both {
                (
                    num(b.lower[[row, sep.li]] / b.upper[[row, sep.mg]]),
                    num(b.upper[[row, sep.li]] / b.lower[[row, sep.mg]]),
                )
            } else {
                Default::default()
            };
            f.extend([lo, hi]);
        }
        if self.columns.measured {
            let measured =
                both && samples.observed[[row, sep.li]] && samples.observed[[row, sep.mg]];
            f.push(if measured {
                let m = &samples.permeate_mol_m3;
                num(t(m, sep.li) / t(m, sep.mg))
            } else {
                String::new()
            });
        }
        f
    }

    /// The scores against the file's measured values: rejection MAE and RMSE per ion and
    /// overall, and an ensemble's interval coverage.
    fn scores(&self) -> Result<String> {
        let samples = &self.samples;
        let m = Metrics::of(samples, self.as_measured.view())?;
        let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
        let mut report = String::new();
        writeln!(
            report,
            "{:<10} {:>6} {:>14} {:>15}",
            "ion", "n", "rejection MAE", "rejection RMSE"
        )?;
        for (ion, slot) in m.per_ion.iter().zip(&self.slots.shown) {
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
        if let (Some(i), Some(b)) = (&self.interval, &self.as_measured_bounds) {
            let rows: Vec<usize> = (0..samples.len()).collect();
            if let Some((share, width, n)) = coverage(samples, &rows, b) {
                writeln!(
                    report,
                    "{:.0} % intervals: {:.1} % of {n} measured values inside, mean width {width:.4} in rejection",
                    100.0 * i.level,
                    100.0 * share,
                )?;
            }
        }
        Ok(report)
    }
}
