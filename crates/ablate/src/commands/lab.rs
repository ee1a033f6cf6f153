//! `ablate lab`: an experimental campaign from the surrogate laboratory, written in the
//! measured-data CSV format (every row `synthetic = true`).
//!
//! A design file (TOML) names mixture families, their concentration levels and the fluxes
//! or pressures to run, plus repeats and any change to the lab's departures from the
//! pre-training DSPM-DE. The truth of each (family, level, drive) is solved once, in
//! parallel; each repeat then draws its own measurement noise from the random stream
//! `(seed, row index)`, so a campaign is a pure function of the design and the seed and
//! its file is byte-identical on every run.

use crate::cli::LabArgs;
use anyhow::{Context, Result};
use ionode_physics::feed::parse_feed;
use ionode_physics::lab::{ChargeModel, LabFilm, LabModel, PoreDistribution};
use ionode_physics::{ActivityModel, Drive, Ion, IonDb, SpiralWound};
use ionode_random::{stream_seed, Rng};
use ionode_study::errors::OrUsage;
use ionode_train::measured::{MeasuredData, MeasuredRow};
use rayon::prelude::*;
use serde::Deserialize;
use std::path::Path;
use std::time::Instant;

const LMH: f64 = 1.0 / 3.6e6;

/// A campaign design.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Design {
    /// Campaign name (used in `source` and `sample_id`).
    name: String,
    #[serde(default)]
    #[allow(dead_code)] // documentation for the reader of the design file
    description: String,
    /// Membrane preset (or membrane file, relative to the design) giving the nominal pore
    /// radius, thickness, charge and dielectric.
    #[serde(default = "default_membrane")]
    membrane: String,
    #[serde(default = "default_temperature", rename = "temperature_K")]
    temperature_k: f64,
    /// Noisy measurements per truth point.
    #[serde(default = "default_repeats")]
    repeats: u32,
    /// Changes to the surrogate NF270 (`LabModel::nf270_surrogate`).
    #[serde(default)]
    lab: LabSection,
    #[serde(rename = "family")]
    families: Vec<Family>,
}

fn default_membrane() -> String {
    "nf270".into()
}
fn default_temperature() -> f64 {
    298.15
}
fn default_repeats() -> u32 {
    1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabSection {
    charge: Option<ChargeModel>,
    pores: Option<PoresSection>,
    film: Option<FilmSection>,
    activity: Option<String>,
    elements: Option<usize>,
    noise_rel: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoresSection {
    /// 0 switches the distribution off (one pore radius).
    sigma_ln: f64,
    #[serde(default = "default_nodes")]
    nodes: usize,
}

fn default_nodes() -> usize {
    5
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "model", rename_all = "snake_case")]
enum FilmSection {
    None,
    Exponential {
        crossflow_m_s: f64,
        #[serde(default = "default_channel_height")]
        channel_height_m: f64,
    },
}

fn default_channel_height() -> f64 {
    5e-4
}

/// One mixture family: a composition scaled to several levels, run at several drives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Family {
    name: String,
    /// Composition at level 1, e.g. `"LiCl=1,MgCl2=10"` (mol/m3).
    feed: String,
    /// Multipliers of the composition.
    levels: Vec<f64>,
    flux_lmh: Option<Vec<f64>>,
    pressure_bar: Option<Vec<f64>>,
}

/// The lab model of a design: the surrogate with the design's changes.
fn lab_model(design: &Design, base: &std::path::Path) -> Result<LabModel> {
    let mut lab = LabModel::nf270_surrogate();
    let membrane = ionode_study::membrane::resolve(&design.membrane, base)?;
    lab.membrane = membrane.membrane;
    // A membrane file's charge model, unless the design sets one.
    if !membrane.charge.is_constant() {
        lab.charge = membrane.charge;
    }
    lab.temperature_k = design.temperature_k;
    let s = &design.lab;
    if let Some(charge) = s.charge {
        lab.charge = charge;
    }
    if let Some(p) = &s.pores {
        lab.pores = (p.sigma_ln > 0.0).then_some(PoreDistribution {
            sigma_ln: p.sigma_ln,
            nodes: p.nodes,
        });
    }
    if let Some(film) = &s.film {
        lab.film = match film {
            FilmSection::None => LabFilm::None,
            FilmSection::Exponential {
                crossflow_m_s,
                channel_height_m,
            } => LabFilm::Exponential {
                channel: SpiralWound {
                    channel_height_m: *channel_height_m,
                    velocity_m_s: *crossflow_m_s,
                    ..SpiralWound::default()
                },
            },
        };
    }
    if let Some(a) = &s.activity {
        lab.activity = ActivityModel::parse(a)
            .with_context(|| format!("lab.activity = '{a}': expected ideal or davies"))?;
    }
    if let Some(e) = s.elements {
        lab.elements = e;
    }
    if let Some(noise) = s.noise_rel {
        lab.noise_rel = noise;
    }
    lab.validate().context("[lab]")?;
    Ok(lab)
}

/// One truth point to solve: family index, level, drive.
struct Job {
    family: usize,
    level_index: usize,
    drive_index: usize,
    ions: Vec<Ion>,
    c_feed: Vec<f64>,
    drive: Drive,
}

fn jobs(design: &Design, db: &IonDb) -> Result<Vec<Job>> {
    if design.families.is_empty() {
        return Err(crate::usage!("the design has no [[family]] tables"));
    }
    if !(1..=MAX_REPEATS).contains(&design.repeats) {
        return Err(crate::usage!(
            "repeats = {}: expected 1..={MAX_REPEATS}",
            design.repeats
        ));
    }
    let mut jobs = Vec::new();
    for (f, family) in design.families.iter().enumerate() {
        let ctx = || format!("family '{}'", family.name);
        let composition = parse_feed(&family.feed, db).with_context(ctx)?;
        composition.check_electroneutral().with_context(ctx)?;
        let drives: Vec<Drive> = match (&family.flux_lmh, &family.pressure_bar) {
            (Some(j), None) => j.iter().map(|j| Drive::Flux { jv_m_s: j * LMH }).collect(),
            (None, Some(p)) => p
                .iter()
                .map(|p| Drive::Pressure { dp_pa: p * 1e5 })
                .collect(),
            _ => {
                return Err(crate::usage!(
                    "family '{}': give exactly one of flux_lmh or pressure_bar",
                    family.name
                ))
            }
        };
        if family.levels.is_empty() || drives.is_empty() {
            return Err(crate::usage!(
                "family '{}': levels and drives must not be empty",
                family.name
            ));
        }
        for (l, level) in family.levels.iter().enumerate() {
            if !(level.is_finite() && *level > 0.0) {
                return Err(crate::usage!(
                    "family '{}': level {level} must be a number > 0",
                    family.name
                ));
            }
            for (d, drive) in drives.iter().enumerate() {
                jobs.push(Job {
                    family: f,
                    level_index: l,
                    drive_index: d,
                    ions: composition.ions.clone(),
                    c_feed: composition.c_mol_m3.iter().map(|c| c * level).collect(),
                    drive: *drive,
                });
            }
        }
    }
    let rows = jobs.len() as u64 * u64::from(design.repeats);
    if rows > MAX_ROWS {
        return Err(crate::usage!(
            "the design makes {} points x {} repeats = {rows} rows, more than the most, {MAX_ROWS}",
            jobs.len(),
            design.repeats
        ));
    }
    Ok(jobs)
}

/// Most repeats of each point of a campaign.
const MAX_REPEATS: u32 = 1000;
/// Most rows of a campaign (points x repeats), each a lab solve's measurement.
const MAX_ROWS: u64 = 1_000_000;

/// Runs the command.
pub fn run(args: &LabArgs) -> Result<()> {
    let text =
        ionode_study::limits::read_text(&args.design, ionode_study::limits::MAX_TEXT_FILE_BYTES)
            .or_usage(|| format!("cannot read design '{}'", args.design.display()))?;
    let design: Design =
        toml::from_str(&text).or_usage(|| format!("design '{}'", args.design.display()))?;
    let db = ionode_study::ions::load(args.ions.as_deref())?;
    let base = args.design.parent().unwrap_or(std::path::Path::new(""));
    let lab =
        lab_model(&design, base).with_context(|| format!("design '{}'", args.design.display()))?;
    let jobs = jobs(&design, &db).with_context(|| format!("design '{}'", args.design.display()))?;
    let started = Instant::now();
    let truths: Vec<_> = jobs
        .par_iter()
        .map(|job| lab.solve(&job.ions, &job.c_feed, job.drive))
        .collect();
    let data = campaign(&design, &lab, &jobs, truths, args.seed, &db)?;
    write(&args.out, &data)?;
    eprintln!(
        "lab: {} truth points x {} repeats = {} rows (synthetic) in {:.1} s; wrote {}",
        jobs.len(),
        design.repeats,
        data.rows.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

/// Assembles the noisy rows in design order.
fn campaign(
    design: &Design,
    lab: &LabModel,
    jobs: &[Job],
    truths: Vec<ionode_physics::Result<ionode_physics::lab::LabPoint>>,
    seed: u64,
    db: &IonDb,
) -> Result<MeasuredData> {
    // The file's ions: the built-in order, then any others.
    let mut ions: Vec<Ion> = db
        .ions()
        .iter()
        .filter(|i| jobs.iter().any(|j| j.ions.iter().any(|k| k.name == i.name)))
        .cloned()
        .collect();
    for job in jobs {
        for ion in &job.ions {
            if !ions.iter().any(|i| i.name == ion.name) {
                ions.push(ion.clone());
            }
        }
    }
    let source = format!(
        "ionode-lab surrogate NF270 (synthetic), design {}, seed {seed}",
        design.name
    );
    let mut rows = Vec::new();
    for (job, truth) in jobs.iter().zip(truths) {
        let family = &design.families[job.family];
        let truth = truth.map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "family '{}', level {}, {:?}: the lab has no result; change the design",
                family.name, family.levels[job.level_index], job.drive
            ))
        })?;
        let slot = |name: &str| {
            ions.iter()
                .position(|i| i.name == name)
                .expect("ion listed")
        };
        for repeat in 0..design.repeats {
            let mut rng = Rng::new(stream_seed(seed, rows.len() as u64));
            let (noisy, sd) = lab.measure(&truth.c_permeate, &mut rng);
            let n = ions.len();
            let (mut feed, mut permeate, mut rejection) =
                (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            let (mut sds, mut present) = (vec![None; n], vec![false; n]);
            for (k, ion) in job.ions.iter().enumerate() {
                let i = slot(&ion.name);
                feed[i] = job.c_feed[k];
                permeate[i] = noisy[k];
                rejection[i] = 1.0 - noisy[k] / job.c_feed[k];
                sds[i] = Some(sd[k]);
                present[i] = true;
            }
            rows.push(MeasuredRow {
                line: rows.len() + 2,
                source: source.clone(),
                membrane: "NF270 (surrogate)".into(),
                family: Some(family.name.clone()),
                sample_id: Some(format!(
                    "{}-{}-L{}-D{}",
                    design.name, family.name, job.level_index, job.drive_index
                )),
                repeat: Some(repeat),
                temperature_k: design.temperature_k,
                synthetic: true,
                jv_m_s: truth.jv_m_s,
                dp_pa: Some(truth.dp_pa),
                feed_mol_m3: feed,
                permeate_mol_m3: permeate,
                rejection,
                permeate_sd_mol_m3: sds,
                measured: present.clone(),
                present,
                basis: Default::default(),
                k_film_m_s: None,
            });
        }
    }
    let columns = Vec::new();
    Ok(MeasuredData {
        source_name: design.name.clone(),
        columns,
        ions,
        rows,
        balance: None,
    })
}

/// CSV or Parquet by the output's extension.
fn write(path: &Path, data: &MeasuredData) -> Result<()> {
    Ok(ionode_study::tabular::write_text(path, &data.to_csv())?)
}
