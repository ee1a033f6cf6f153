//! Digitised figure data -> the measured-data format.
//!
//! Published rejections often exist only as figures: one panel per species, a series of
//! points (water flux, value) per experiment. A digitiser reads each marker with its
//! reading error. This module turns such points into measurements (one row per feed at one
//! flux), by rules that are written down in `datasets/README.md` ("Digitised data") and
//! tested here:
//!
//! 1. **Series.** Every point belongs to a series (one experiment: one feed, varied flux);
//!    the series' feed comes from the spec, and its name is each row's `family`.
//! 2. **Matching.** The same measurement appears in several panels, with fluxes that differ
//!    by reading error. Within a series, points are taken in increasing flux; a point joins
//!    the current measurement when its flux lies within `match_sigmas` combined reading
//!    errors of the measurement's flux (`|J - J_m| <= k sqrt(e^2 + e_m^2)`) and its species
//!    is not in it yet; otherwise it starts the next measurement. A point within reach of
//!    a measurement that already has its species is ambiguous and refused. A measurement's
//!    flux is the inverse-variance weighted mean of its points' fluxes (`e_m` its error).
//! 3. **Species -> ions.** A point is either one ion's or a salt's; the spec says which
//!    ions each species stands for. A salt's value is given to each of its ions (for a
//!    binary salt, electroneutrality makes the equivalent rejections of its two ions
//!    equal).
//! 4. **Values.** A reciprocal transmission `f = 1/(1 - R)` becomes `R = 1 - 1/f` with
//!    `sd_R = e_f / f^2` (first order; the reading error is taken as one standard
//!    deviation); a rejection is taken as it is, with `sd_R = e_R`.
//! 5. **Partial rows.** An ion of the feed without a point in a measurement was not
//!    measured there: its outcome stays empty.
//!
//! The input layout (one point per row): `dominant_salt` (the series), `species`,
//! `flux_um_s`, `flux_reading_error_um_s`, `f_measured`, `f_reading_error`,
//! `figure_quality` (`clean` or `occluded`; kept for the record, an occluded marker has a
//! larger reading error).

use super::csv;
use super::error::{LoadError, Problems};
use super::{MeasuredData, MeasuredRow, REJECTION_RANGE};
use ionode_physics::{Ion, IonDb};

/// The columns of a digitised-points file, in any order.
pub const POINT_COLUMNS: [&str; 7] = [
    "dominant_salt",
    "species",
    "flux_um_s",
    "flux_reading_error_um_s",
    "f_measured",
    "f_reading_error",
    "figure_quality",
];

/// What the digitised values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// `f = 1 / (1 - R)`, the reciprocal transmission.
    ReciprocalTransmission,
    /// `R` itself.
    Rejection,
}

/// One digitised marker.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// 1-based line in the points file.
    pub line: usize,
    pub series: String,
    pub species: String,
    pub flux_m_s: f64,
    pub flux_error_m_s: f64,
    pub value: f64,
    pub value_error: f64,
    pub quality: String,
}

/// One experiment series: its feed and which ions each digitised species stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// The feed's ions and concentrations, mol/m3 (electroneutral).
    pub feed: Vec<(Ion, f64)>,
    /// Species name -> canonical names of the ions it gives the outcome of.
    pub species: Vec<(String, Vec<String>)>,
}

/// How a points file becomes measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub source: String,
    pub membrane: String,
    pub temperature_k: f64,
    pub quantity: Quantity,
    /// Combined reading errors within which points of one series are one measurement.
    pub match_sigmas: f64,
    pub series: Vec<Series>,
}

/// Reads a points file (`POINT_COLUMNS`, fluxes in um/s) with every problem located.
pub fn parse_points(text: &str, name: &str) -> Result<Vec<Point>, LoadError> {
    let mut problems = Problems::new(name);
    let mut records = csv::read(text.strip_prefix('\u{feff}').unwrap_or(text)).into_iter();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            problems.line(e.line(), e.to_string());
            return problems.finish(Vec::new());
        }
        None => {
            problems.file(format!(
                "empty file; expected a header with the columns {}",
                POINT_COLUMNS.join(", ")
            ));
            return problems.finish(Vec::new());
        }
    };
    let names: Vec<&str> = header.fields.iter().map(|f| f.trim()).collect();
    let mut index = [0usize; POINT_COLUMNS.len()];
    for (k, col) in POINT_COLUMNS.iter().enumerate() {
        match names.iter().position(|n| n == col) {
            Some(i) => index[k] = i,
            None => problems.line(
                header.line,
                format!(
                    "missing column '{col}'; expected the columns {}",
                    POINT_COLUMNS.join(", ")
                ),
            ),
        }
    }
    for n in &names {
        if !POINT_COLUMNS.contains(n) {
            problems.add(
                Some(header.line),
                Some(n),
                None,
                format!("unknown column; expected {}", POINT_COLUMNS.join(", ")),
            );
        }
    }
    if problems.len() > 0 {
        return problems.finish(Vec::new());
    }
    let mut points = Vec::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.line(e.line(), e.to_string());
                continue;
            }
        };
        if record.fields.len() != names.len() {
            problems.line(
                record.line,
                format!(
                    "{} fields, but the header has {} columns",
                    record.fields.len(),
                    names.len()
                ),
            );
            continue;
        }
        let cell = |k: usize| record.fields[index[k]].trim();
        let mut number = |k: usize, positive: bool| -> Option<f64> {
            let raw = cell(k);
            match raw.parse::<f64>() {
                Ok(x) if x.is_finite() && (x > 0.0 || (!positive && x >= 0.0)) => Some(x),
                _ => {
                    problems.add(
                        Some(record.line),
                        Some(POINT_COLUMNS[k]),
                        Some(raw),
                        if positive {
                            "not a number > 0"
                        } else {
                            "not a number >= 0"
                        },
                    );
                    None
                }
            }
        };
        let (flux, flux_err, value, value_err) = (
            number(2, true),
            number(3, false),
            number(4, true),
            number(5, false),
        );
        let text = |k: usize| cell(k).to_string();
        if let (Some(flux), Some(flux_err), Some(value), Some(value_err)) =
            (flux, flux_err, value, value_err)
        {
            for k in [0, 1, 6] {
                if cell(k).is_empty() {
                    problems.add(
                        Some(record.line),
                        Some(POINT_COLUMNS[k]),
                        None,
                        "missing value",
                    );
                }
            }
            points.push(Point {
                line: record.line,
                series: text(0),
                species: text(1),
                flux_m_s: flux * 1e-6,
                flux_error_m_s: flux_err * 1e-6,
                value,
                value_error: value_err,
                quality: text(6),
            });
        }
    }
    if points.is_empty() && problems.len() == 0 {
        problems.line(header.line, "no points after the header");
    }
    problems.finish(points)
}

/// A measurement being gathered: its points, weighted-mean flux and that mean's error.
struct Cluster<'a> {
    points: Vec<&'a Point>,
    flux: f64,
    error: f64,
}

impl<'a> Cluster<'a> {
    fn new(p: &'a Point) -> Self {
        Cluster {
            points: vec![p],
            flux: p.flux_m_s,
            error: p.flux_error_m_s,
        }
    }

    /// Inverse-variance weights (a zero reading error counts as a very small one).
    fn add(&mut self, p: &'a Point) {
        self.points.push(p);
        let w = |e: f64| 1.0 / e.max(1e-12).powi(2);
        let total: f64 = self.points.iter().map(|q| w(q.flux_error_m_s)).sum();
        self.flux = self
            .points
            .iter()
            .map(|q| w(q.flux_error_m_s) * q.flux_m_s)
            .sum::<f64>()
            / total;
        self.error = total.sqrt().recip();
    }

    fn reaches(&self, p: &Point, sigmas: f64) -> bool {
        (p.flux_m_s - self.flux).abs()
            <= sigmas * (p.flux_error_m_s.powi(2) + self.error.powi(2)).sqrt()
    }
}

/// The measurements of the points, by the module's rules. Rows are in the spec's series
/// order, then by flux; every problem (an unknown series or species, an ambiguous match, a
/// value out of range) is listed.
pub fn convert(
    points: &[Point],
    spec: &Spec,
    db: &IonDb,
    name: &str,
) -> Result<MeasuredData, LoadError> {
    let mut problems = Problems::new(name);
    check_series(points, spec, &mut problems);
    let ions = file_ions(spec, db);
    let mut rows = Vec::new();
    for series in &spec.series {
        let clusters = measurements(points, series, spec, &mut problems);
        for (k, c) in clusters.iter().enumerate() {
            let line = rows.len() + 2;
            rows.push(row_of(series, k, c, &ions, spec, line, &mut problems));
        }
    }
    problems.finish(MeasuredData {
        source_name: name.to_string(),
        columns: Vec::new(),
        ions,
        rows,
        balance: None,
    })
}

/// Every point names a series of the spec and a species that series lists.
fn check_series(points: &[Point], spec: &Spec, problems: &mut Problems) {
    for p in points {
        match spec.series.iter().find(|s| s.name == p.series) {
            None => problems.add(
                Some(p.line),
                Some("dominant_salt"),
                Some(&p.series),
                format!(
                    "a series the spec does not describe; expected one of {}",
                    spec.series
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(s) if !s.species.iter().any(|(sp, _)| *sp == p.species) => problems.add(
                Some(p.line),
                Some("species"),
                Some(&p.species),
                format!(
                    "a species series '{}' does not list; expected one of {}",
                    s.name,
                    s.species
                        .iter()
                        .map(|(sp, _)| sp.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            _ => {}
        }
    }
}

/// The file's ions: every feed ion of the spec, in the database's order (others after,
/// by first appearance).
fn file_ions(spec: &Spec, db: &IonDb) -> Vec<Ion> {
    let mut ions: Vec<Ion> = db
        .ions()
        .iter()
        .filter(|i| {
            spec.series
                .iter()
                .any(|s| s.feed.iter().any(|(f, _)| f.name == i.name))
        })
        .cloned()
        .collect();
    for s in &spec.series {
        for (ion, _) in &s.feed {
            if !ions.iter().any(|i| i.name == ion.name) {
                ions.push(ion.clone());
            }
        }
    }
    ions
}

/// The points of a series grouped into measurements: by flux, a point joining the last
/// measurement when within `match_sigmas` reading errors of it (a second point of one
/// species there is ambiguous, a problem).
fn measurements<'a>(
    points: &'a [Point],
    series: &Series,
    spec: &Spec,
    problems: &mut Problems,
) -> Vec<Cluster<'a>> {
    let mut mine: Vec<&Point> = points.iter().filter(|p| p.series == series.name).collect();
    mine.sort_by(|a, b| a.flux_m_s.total_cmp(&b.flux_m_s).then(a.line.cmp(&b.line)));
    let mut clusters: Vec<Cluster> = Vec::new();
    for p in mine {
        match clusters.last_mut() {
            Some(c) if c.reaches(p, spec.match_sigmas) => {
                if let Some(q) = c.points.iter().find(|q| q.species == p.species) {
                    problems.line(
                        p.line,
                        format!(
                            "ambiguous: {} at {:.4} um/s is within {} reading errors of the measurement at {:.4} um/s, which already has a {} point (line {}); expected one point per species and measurement",
                            p.species,
                            p.flux_m_s * 1e6,
                            spec.match_sigmas,
                            c.flux * 1e6,
                            q.species,
                            q.line
                        ),
                    );
                } else {
                    c.add(p);
                }
            }
            _ => clusters.push(Cluster::new(p)),
        }
    }
    clusters
}

/// The measured row of measurement `k` of a series, at file line `line`.
fn row_of(
    series: &Series,
    k: usize,
    c: &Cluster,
    ions: &[Ion],
    spec: &Spec,
    line: usize,
    problems: &mut Problems,
) -> MeasuredRow {
    let (lo, hi) = REJECTION_RANGE;
    let n = ions.len();
    let mut feed = vec![0.0; n];
    for (ion, conc) in &series.feed {
        let i = ions
            .iter()
            .position(|x| x.name == ion.name)
            .expect("listed");
        feed[i] += conc;
    }
    let mut row = MeasuredRow {
        line,
        source: spec.source.clone(),
        membrane: spec.membrane.clone(),
        family: Some(series.name.clone()),
        sample_id: Some(format!("{}-{}", series.name, k + 1)),
        repeat: None,
        temperature_k: spec.temperature_k,
        synthetic: false,
        jv_m_s: c.flux,
        dp_pa: None,
        present: feed.iter().map(|&x| x > 0.0).collect(),
        measured: vec![false; n],
        // The authors corrected for concentration polarisation.
        basis: crate::measured::RejectionBasis::Intrinsic,
        k_film_m_s: None,
        permeate_mol_m3: feed
            .iter()
            .map(|&x| if x > 0.0 { f64::NAN } else { 0.0 })
            .collect(),
        rejection: feed
            .iter()
            .map(|&x| if x > 0.0 { f64::NAN } else { 0.0 })
            .collect(),
        permeate_sd_mol_m3: vec![None; n],
        feed_mol_m3: feed,
    };
    for p in &c.points {
        let Some((_, targets)) = series.species.iter().find(|(sp, _)| *sp == p.species) else {
            continue; // reported above
        };
        let (r, sd) = match spec.quantity {
            Quantity::ReciprocalTransmission => {
                (1.0 - 1.0 / p.value, p.value_error / (p.value * p.value))
            }
            Quantity::Rejection => (p.value, p.value_error),
        };
        if !(lo..=hi).contains(&r) {
            problems.add(
                Some(p.line),
                Some("f_measured"),
                Some(&p.value.to_string()),
                format!("gives the rejection {r}, outside [{lo}, {hi}]"),
            );
            continue;
        }
        for target in targets {
            let Some(i) = ions
                .iter()
                .position(|x| x.name == *target)
                .filter(|&i| row.present[i])
            else {
                problems.line(
                    p.line,
                    format!(
                        "species {} stands for {target}, which is not in the feed of series {}",
                        p.species, series.name
                    ),
                );
                continue;
            };
            let cf = row.feed_mol_m3[i];
            row.measured[i] = true;
            row.rejection[i] = r;
            row.permeate_mol_m3[i] = (1.0 - r) * cf;
            row.permeate_sd_mol_m3[i] = Some(sd * cf);
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> IonDb {
        IonDb::builtin()
    }

    fn ion(name: &str) -> Ion {
        db().get(name).unwrap().clone()
    }

    fn spec() -> Spec {
        Spec {
            source: "doi:10/x".into(),
            membrane: "NF270".into(),
            temperature_k: 293.15,
            quantity: Quantity::ReciprocalTransmission,
            match_sigmas: 3.0,
            series: vec![Series {
                name: "NaCl".into(),
                feed: vec![
                    (ion("Na+"), 10.2),
                    (ion("Cl-"), 10.2),
                    (ion("NH4+"), 0.2),
                    (ion("NO3-"), 0.2),
                ],
                species: vec![
                    ("NaCl".into(), vec!["Na+".into(), "Cl-".into()]),
                    ("NH4".into(), vec!["NH4+".into()]),
                    ("NO3".into(), vec!["NO3-".into()]),
                ],
            }],
        }
    }

    const HEADER: &str =
        "dominant_salt,species,flux_um_s,flux_reading_error_um_s,f_measured,f_reading_error,figure_quality\n";

    fn points(rows: &str) -> Vec<Point> {
        parse_points(&format!("{HEADER}{rows}"), "p.csv").unwrap()
    }

    #[test]
    fn points_of_one_flux_become_one_row_and_salts_give_both_ions() {
        let p = points(
            "NaCl,NaCl,8.00,0.06,2.0,0.02,clean\n\
             NaCl,NH4,8.05,0.08,4.0,0.04,clean\n\
             NaCl,NO3,20.0,0.07,0.5,0.01,clean\n\
             NaCl,NaCl,20.1,0.06,5.0,0.02,occluded\n",
        );
        let data = convert(&p, &spec(), &db(), "p.csv").unwrap();
        let names: Vec<String> = data.ion_names();
        assert_eq!(names, ["Na+", "NH4+", "Cl-", "NO3-"]);
        assert_eq!(data.rows.len(), 2);
        let (a, b) = (&data.rows[0], &data.rows[1]);
        // Inverse-variance weighted flux: weights 1/0.06^2 and 1/0.08^2.
        let w = [1.0 / 0.0036, 1.0 / 0.0064];
        let flux = (w[0] * 8.0 + w[1] * 8.05) / (w[0] + w[1]) * 1e-6;
        assert!((a.jv_m_s - flux).abs() < 1e-18);
        // NaCl's f = 2 -> R = 0.5 for Na+ and Cl-, sd = 0.02 / 4; NH4+ f = 4 -> R = 0.75.
        assert_eq!(a.measured, [true, true, true, false]);
        assert!((a.rejection[0] - 0.5).abs() < 1e-15 && (a.rejection[2] - 0.5).abs() < 1e-15);
        assert!((a.permeate_sd_mol_m3[0].unwrap() - 0.005 * 10.2).abs() < 1e-15);
        assert!((a.rejection[1] - 0.75).abs() < 1e-15);
        assert!(a.rejection[3].is_nan(), "NO3- was not measured at 8 um/s");
        // f < 1: the ion is enriched in the permeate, R = 1 - 1/0.5 = -1.
        assert!((b.rejection[3] + 1.0).abs() < 1e-15);
        assert_eq!(b.measured, [true, false, true, true]);
        assert_eq!(a.sample_id.as_deref(), Some("NaCl-1"));
        assert!(!a.synthetic && a.family.as_deref() == Some("NaCl"));
        // What the converter writes, the format's own loader accepts unchanged.
        let text = data.to_csv();
        let back = super::super::parse_csv(&text, "x.csv", &Default::default(), &db()).unwrap();
        assert_eq!(back.to_csv(), text);
    }

    #[test]
    fn ambiguous_unknown_and_out_of_range_points_are_refused() {
        let p = points(
            "NaCl,NaCl,8.00,0.06,2.0,0.02,clean\n\
             NaCl,NaCl,8.10,0.06,2.1,0.02,clean\n\
             KCl,KCl,8.0,0.06,2.0,0.02,clean\n\
             NaCl,SO4,9.0,0.06,2.0,0.02,clean\n\
             NaCl,NO3,30.0,0.06,0.2,0.02,clean\n",
        );
        let e = convert(&p, &spec(), &db(), "p.csv").unwrap_err().lines();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(
            e[0].starts_with("p.csv, line 3: ambiguous: NaCl at 8.1000 um/s"),
            "{e:?}"
        );
        assert!(
            e[1].contains(
                "line 4, column 'dominant_salt', value 'KCl': a series the spec does not describe"
            ),
            "{e:?}"
        );
        assert!(
            e[2].contains("line 5, column 'species', value 'SO4'"),
            "{e:?}"
        );
        assert!(
            e[3].contains("line 6, column 'f_measured', value '0.2': gives the rejection -4"),
            "{e:?}"
        );
        let bad = parse_points(
            &format!("{HEADER}NaCl,NaCl,x,0.06,-2,0.02,clean\n"),
            "p.csv",
        )
        .unwrap_err()
        .lines();
        assert_eq!(
            bad,
            [
                "p.csv, line 2, column 'flux_um_s', value 'x': not a number > 0",
                "p.csv, line 2, column 'f_measured', value '-2': not a number > 0",
            ]
        );
    }
}
