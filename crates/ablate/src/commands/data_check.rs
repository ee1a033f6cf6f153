//! `ablate data check FILE`: validates a measured-data CSV file (the format of
//! `datasets/README.md`, loaded by `ionode_train::measured`) and summarises it.
//!
//! A good file: a summary on stdout, exit 0. A bad file: every problem on stderr, one per
//! line (the loader caps the list at 20 and says how many more), then one `error:` line,
//! exit 2.

use super::print_stdout;
use crate::cli::DataCheckArgs;
use anyhow::Result;
use ionode_study::{ions, units};
use ionode_train::measured::{self, LoadOptions, MeasuredData, RejectionBasis};
use std::fmt::Write as _;

/// A number with 4 significant digits, no trailing zeros (1e-5, 36, 298.15, 0.01235).
fn g4(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{}", if x == 0.0 { 0.0 } else { x });
    }
    let exponent = x.abs().log10().floor() as i32;
    let trim = |s: &str| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if (-3..6).contains(&exponent) {
        trim(&format!("{:.*}", (3 - exponent).max(0) as usize, x))
    } else {
        let s = format!("{x:.3e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{exp}", trim(mantissa))
    }
}

/// `lo to hi UNIT`, or `x UNIT` when they look equal, with numbers as `fmt` writes them.
fn range_with(lo: f64, hi: f64, unit: &str, fmt: fn(f64) -> String) -> String {
    let text = if fmt(lo) == fmt(hi) {
        format!("{} {unit}", fmt(lo))
    } else {
        format!("{} to {} {unit}", fmt(lo), fmt(hi))
    };
    text.trim_end().to_string()
}

/// [`range_with`] 4 significant digits.
fn range(lo: f64, hi: f64, unit: &str) -> String {
    range_with(lo, hi, unit, g4)
}

/// Temperatures to 0.01 K (298.15, 303.2).
fn kelvin(t: f64) -> String {
    let s = format!("{t:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, x| match acc {
        None => Some((x, x)),
        Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
    })
}

fn rows(n: usize) -> String {
    format!("{n} row{}", if n == 1 { "" } else { "s" })
}

/// `a (3 rows), b (1 row)` in order of first appearance; at most `max` names.
fn counted<'a>(values: impl Iterator<Item = &'a str>, max: usize) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for v in values {
        match counts.iter_mut().find(|(name, _)| *name == v) {
            Some((_, n)) => *n += 1,
            None => counts.push((v, 1)),
        }
    }
    let mut parts: Vec<String> = counts
        .iter()
        .take(max)
        .map(|(name, n)| format!("{name} ({})", rows(*n)))
        .collect();
    if counts.len() > max {
        parts.push(format!("and {} more", counts.len() - max));
    }
    parts.join(", ")
}

/// The summary of a loaded file.
fn summary(data: &MeasuredData) -> String {
    let n = data.rows.len();
    let synthetic = data.synthetic_rows();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: valid, {} ({synthetic} synthetic, {} measured)",
        data.source_name,
        rows(n),
        n - synthetic
    );
    origin(&mut s, data);
    conditions(&mut s, data);
    feeds(&mut s, data);
    outcomes(&mut s, data);
    electroneutrality(&mut s, data);
    basis(&mut s, data);
    s
}

/// One `  name              value` line of the summary.
fn field(s: &mut String, name: &str, value: String) {
    let _ = writeln!(s, "  {name:<18}{value}");
}

/// `ION (N rows)` for every ion with rows where `has` holds.
fn per_ion(
    data: &MeasuredData,
    has: &dyn Fn(&measured::MeasuredRow, usize) -> bool,
) -> Vec<String> {
    data.ion_names()
        .iter()
        .enumerate()
        .filter_map(|(k, name)| {
            let count = data.rows.iter().filter(|r| has(r, k)).count();
            (count > 0).then(|| format!("{name} ({})", rows(count)))
        })
        .collect()
}

/// Where the rows come from: sources, membranes, salt families.
fn origin(s: &mut String, data: &MeasuredData) {
    let n = data.rows.len();
    let sources = data.rows.iter().map(|r| r.source.as_str());
    let distinct_sources = {
        let mut v: Vec<&str> = sources.clone().collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    field(
        s,
        "sources",
        format!("{distinct_sources}: {}", counted(sources, 5)),
    );
    field(
        s,
        "membranes",
        counted(data.rows.iter().map(|r| r.membrane.as_str()), 10),
    );
    let families: Vec<&str> = data
        .rows
        .iter()
        .filter_map(|r| r.family.as_deref())
        .collect();
    let unlabelled = n - families.len();
    let mut families_text = if families.is_empty() {
        "none given".to_string()
    } else {
        counted(families.into_iter(), 10)
    };
    if unlabelled > 0 && unlabelled < n {
        let _ = write!(families_text, "; {} without a family", rows(unlabelled));
    }
    field(s, "families", families_text);
}

/// The conditions: temperature, flux and pressure ranges.
fn conditions(s: &mut String, data: &MeasuredData) {
    if let Some((lo, hi)) = min_max(data.rows.iter().map(|r| r.temperature_k)) {
        field(s, "temperature", range_with(lo, hi, "K", kelvin));
    }
    if let Some((lo, hi)) = min_max(data.rows.iter().map(|r| r.jv_m_s)) {
        field(
            s,
            "flux",
            format!(
                "{} ({})",
                range(lo, hi, "m/s"),
                range(lo / units::LMH, hi / units::LMH, "LMH")
            ),
        );
    }
    let pressures = data.rows.iter().filter_map(|r| r.dp_pa);
    field(
        s,
        "pressure",
        match min_max(pressures.clone()) {
            Some((lo, hi)) => format!(
                "{} in {}",
                range(lo / units::BAR, hi / units::BAR, "bar"),
                rows(pressures.count())
            ),
            None => "not given".into(),
        },
    );
}

/// Every ion's feed range over the rows where it is present.
fn feeds(s: &mut String, data: &MeasuredData) {
    let _ = writeln!(
        s,
        "  ions (feed, mol/m3, in the rows where the ion is present):"
    );
    for (k, name) in data.ion_names().iter().enumerate() {
        let present = data.rows.iter().filter(|r| r.present[k]);
        match min_max(present.clone().map(|r| r.feed_mol_m3[k])) {
            Some((lo, hi)) => {
                let _ = writeln!(
                    s,
                    "    {name:<16}{:<24}{}",
                    range(lo, hi, ""),
                    rows(present.count())
                );
            }
            None => {
                let _ = writeln!(s, "    {name:<16}absent from every row");
            }
        }
    }
}

/// Which outcomes were measured, and with which uncertainties.
fn outcomes(s: &mut String, data: &MeasuredData) {
    // Partial data: present ions whose outcome was not measured.
    let unmeasured = per_ion(data, &|r, k| r.present[k] && !r.measured[k]);
    let (measured, entries) = data.outcome_counts();
    field(
        s,
        "outcomes",
        if unmeasured.is_empty() {
            format!("every present ion measured ({entries})")
        } else {
            format!(
                "{measured} of {entries} measured; not measured (empty, left out of every loss and metric): {}",
                unmeasured.join(", ")
            )
        },
    );

    let sd_columns: Vec<&str> = data
        .columns
        .iter()
        .map(String::as_str)
        .filter(|c| c.ends_with("_sd"))
        .collect();
    let with_sd = per_ion(data, &|r, k| r.permeate_sd_mol_m3[k].is_some());
    field(
        s,
        "uncertainties",
        if sd_columns.is_empty() {
            "none given".into()
        } else {
            format!(
                "{}; permeate sd for {}",
                sd_columns.join(", "),
                if with_sd.is_empty() {
                    "no row".into()
                } else {
                    with_sd.join(", ")
                }
            )
        },
    );
}

/// How the feeds were balanced, or how far from neutral the worst one is.
fn electroneutrality(s: &mut String, data: &MeasuredData) {
    let n = data.rows.len();
    match &data.balance {
        Some(balance) => {
            let largest = balance.adjustments.iter().max_by(|a, b| {
                let change =
                    |x: &measured::BalanceAdjustment| (x.after_mol_m3 - x.before_mol_m3).abs();
                change(a).total_cmp(&change(b))
            });
            let text = match largest {
                None => format!("{} feed balanced: no row changed", balance.ion),
                Some(a) => format!(
                    "{} feed balanced: changed in {} of {}, largest change {}{} mol/m3 (line {}: {} -> {})",
                    balance.ion,
                    balance.adjustments.len(),
                    rows(n),
                    if a.after_mol_m3 > a.before_mol_m3 { "+" } else { "" },
                    g4(a.after_mol_m3 - a.before_mol_m3),
                    a.line,
                    g4(a.before_mol_m3),
                    g4(a.after_mol_m3)
                ),
            };
            field(s, "electroneutrality", text);
        }
        None => {
            let worst = data
                .rows
                .iter()
                .map(|r| {
                    let (net, total) = data
                        .ions
                        .iter()
                        .zip(&r.feed_mol_m3)
                        .fold((0.0, 0.0), |(net, total), (ion, c)| {
                            (net + ion.z() * c, total + ion.z().abs() * c)
                        });
                    (net.abs() / total, r.line)
                })
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((relative, line)) = worst.filter(|(r, _)| *r > 0.0) {
                field(
                    s,
                    "electroneutrality",
                    format!(
                        "largest imbalance |sum z*c| / sum |z|*c = {} % (line {line})",
                        g4(100.0 * relative)
                    ),
                );
            } else {
                field(s, "electroneutrality", "every feed exactly neutral".into());
            }
        }
    }
}

/// The rejection basis of the rows (intrinsic or observed, converted or not).
fn basis(s: &mut String, data: &MeasuredData) {
    let observed = data
        .rows
        .iter()
        .filter(|r| r.basis == RejectionBasis::Observed)
        .count();
    let converted = data
        .rows
        .iter()
        .filter(|r| r.film_factor().is_some())
        .count();
    field(
        s,
        "rejection basis",
        if observed == 0 {
            "intrinsic (every row)".to_string()
        } else {
            format!(
                "{} intrinsic, {observed} observed ({converted} with a film coefficient, converted by the film model)",
                data.rows.len() - observed
            )
        },
    );
    if let Some(note) = data.unconverted_note() {
        field(s, "note", note);
    }
}

pub fn run(args: &DataCheckArgs) -> Result<()> {
    let db = ions::load(args.ions.as_deref())?;
    let text = ionode_study::tabular::read_text(&args.file)?;
    let options = LoadOptions {
        balance_with: args.balance_with.clone(),
        electroneutrality_tolerance: args.en_tolerance,
        ..LoadOptions::default()
    };
    let name = args.file.display().to_string();
    match measured::parse_csv(&text, &name, &options, &db) {
        Ok(data) => print_stdout(&summary(&data)),
        Err(err) => {
            for line in err.lines() {
                eprintln!("{line}");
            }
            Err(crate::usage!("{}", err.headline()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_four_significant_digits() {
        assert_eq!(g4(0.0), "0");
        assert_eq!(g4(1e-5), "1e-5");
        assert_eq!(g4(2.5e-5), "2.5e-5");
        assert_eq!(g4(36.0), "36");
        assert_eq!(g4(298.15), "298.1");
        assert_eq!(kelvin(298.15), "298.15");
        assert_eq!(kelvin(303.2), "303.2");
        assert_eq!(g4(0.0123456), "0.01235");
        assert_eq!(g4(3600.0), "3600");
    }

    #[test]
    fn counts_in_order_of_appearance() {
        let v = ["b", "a", "b", "c"];
        assert_eq!(
            counted(v.into_iter(), 5),
            "b (2 rows), a (1 row), c (1 row)"
        );
        assert_eq!(counted(v.into_iter(), 1), "b (2 rows), and 2 more");
        assert_eq!(range(1.0, 1.0, "K"), "1 K");
        assert_eq!(range(1.0, 2.0, "K"), "1 to 2 K");
    }
}
