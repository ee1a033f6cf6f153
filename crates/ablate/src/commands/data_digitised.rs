//! `ablate data digitised --spec SPEC.toml --out FILE.csv`: digitised figure points into
//! the measured-data format (`ionode_train::measured::digitised` has the rules). The spec
//! is read with the manifests' located checks; the written file is validated by the
//! format's own loader before it replaces anything, so what is written always passes
//! `ablate data check`.

use crate::cli::DataDigitisedArgs;
use anyhow::{anyhow, Context, Result};
use ionode_physics::IonDb;
use ionode_study::limits::{read_text, MAX_DATA_FILE_BYTES, MAX_TEXT_FILE_BYTES};
use ionode_study::manifest::locate::{show, toml_error, typed, Locations};
use ionode_study::manifest::Problems;
use ionode_study::output;
use ionode_train::measured::digitised::{convert, parse_points, Quantity, Series, Spec};
use ionode_train::measured::{parse_csv, LoadOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The spec file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    points: PathBuf,
    source: String,
    membrane: String,
    #[serde(rename = "temperature_K")]
    temperature_k: f64,
    quantity: QuantityName,
    #[serde(default = "three")]
    match_sigmas: f64,
    series: Vec<SeriesFile>,
}

fn three() -> f64 {
    3.0
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum QuantityName {
    ReciprocalTransmission,
    Rejection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesFile {
    name: String,
    feed: String,
    species: BTreeMap<String, Vec<String>>,
}

/// Reads and checks the spec; every problem located in its file.
fn read_spec(path: &Path, db: &IonDb) -> Result<(Spec, PathBuf), Problems> {
    let name = path.display().to_string();
    let text = read_text(path, MAX_TEXT_FILE_BYTES)
        .map_err(|e| Problems(vec![format!("cannot read spec '{name}': {e}")]))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| Problems(vec![toml_error(&name, &text, &e)]))?;
    let mut locs = Locations::default();
    locs.record(&name, &text);
    let locate = |p: &[String]| locs.find(p).map(|l| (l, show(p)));
    let (file, mut problems) = typed::<SpecFile>(&table, &locate, &name);
    let Some(file) = file else {
        return Err(Problems(problems));
    };
    let at = |p: &[&str]| locs.at(p, &name);
    if !(file.temperature_k.is_finite() && (273.15..=373.15).contains(&file.temperature_k)) {
        problems.push(format!(
            "{}: temperature_K = {}: expected a temperature in 273.15..=373.15 K",
            at(&["temperature_K"]),
            file.temperature_k
        ));
    }
    if !(file.match_sigmas.is_finite() && file.match_sigmas > 0.0) {
        problems.push(format!(
            "{}: match_sigmas = {}: expected a number > 0",
            at(&["match_sigmas"]),
            file.match_sigmas
        ));
    }
    let mut series = Vec::new();
    for (i, s) in file.series.iter().enumerate() {
        let here = |key: &str| at(&["series", &format!("[{i}]"), key]);
        let feed = match ionode_physics::feed::parse_feed(&s.feed, db) {
            Ok(f) => match f.check_electroneutral() {
                Ok(()) => f.ions.into_iter().zip(f.c_mol_m3).collect(),
                Err(e) => {
                    problems.push(format!("{}: series[{i}].feed: {e}", here("feed")));
                    Vec::new()
                }
            },
            Err(e) => {
                problems.push(format!("{}: series[{i}].feed: {e}", here("feed")));
                Vec::new()
            }
        };
        let mut species = Vec::new();
        for (sp, ions) in &s.species {
            let mut names = Vec::new();
            for ion in ions {
                match db.get(ion) {
                    Ok(i) => names.push(i.name.clone()),
                    Err(e) => problems.push(format!(
                        "{}: series[{i}].species.{sp}: {e}",
                        at(&["series", &format!("[{i}]"), "species", sp])
                    )),
                }
            }
            species.push((sp.clone(), names));
        }
        series.push(Series {
            name: s.name.clone(),
            feed,
            species,
        });
    }
    if !problems.is_empty() {
        return Err(Problems(problems));
    }
    let points = path.parent().unwrap_or(Path::new("")).join(&file.points);
    let spec = Spec {
        source: file.source,
        membrane: file.membrane,
        temperature_k: file.temperature_k,
        quantity: match file.quantity {
            QuantityName::ReciprocalTransmission => Quantity::ReciprocalTransmission,
            QuantityName::Rejection => Quantity::Rejection,
        },
        match_sigmas: file.match_sigmas,
        series,
    };
    Ok((spec, points))
}

pub fn run(args: &DataDigitisedArgs) -> Result<()> {
    let db = IonDb::builtin();
    let (spec, points_path) =
        read_spec(&args.spec, &db).map_err(|p| super::problems("spec", &args.spec, p))?;
    let points_name = points_path.display().to_string();
    let text = read_text(&points_path, MAX_DATA_FILE_BYTES)
        .with_context(|| format!("cannot read points file '{points_name}'"))?;
    let located = |e: ionode_train::measured::LoadError| {
        for line in e.lines() {
            eprintln!("{line}");
        }
        crate::usage!("{}", e.headline())
    };
    let points = parse_points(&text, &points_name).map_err(located)?;
    let data = convert(&points, &spec, &db, &points_name).map_err(located)?;
    let csv = data.to_csv();
    // The format's own validator must accept what is written.
    let out_name = args.out.display().to_string();
    let check = parse_csv(&csv, &out_name, &LoadOptions::default(), &db)
        .map_err(|e| anyhow!("the converted data does not load: {e}"))?;
    output::write_text(&args.out, &csv)?;
    let (measured, entries) = check.outcome_counts();
    eprintln!(
        "{} points -> {} measurements of {} series ({measured} of {entries} ion outcomes measured, the rest left empty); wrote {out_name}",
        points.len(),
        check.rows.len(),
        spec.series.len(),
    );
    Ok(())
}
