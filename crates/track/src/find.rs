//! Finding every finished run under the folders a user names: a study folder (it holds
//! `plan.json`: its plan's runs marked DONE, as the report reads them), an `ablate train`
//! folder (it holds `run.h5`), or a folder of those (`results/`, one level down).
//!
//! Each run's facts come from its cache ([`ionode_study::facts`]), so a query over 100 000
//! runs reads one small file per run, in parallel. To the cached facts the finder adds what
//! is not in `run.h5`:
//! - `path`: the run's folder; `kind`: `study` or `train`;
//! - `tags`: the run's tags and its study's; `note`: the run's note; `study_note`: its
//!   study's.

use crate::error::{Result, TrackError};
use crate::filter::Fields;
use ionode_study::annotations::{self, Annotations};
use ionode_study::facts::{self, Facts, Source};
use ionode_study::store;
use rayon::prelude::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One finished run: where it is and its facts (with the finder's keys).
#[derive(Debug, Clone)]
pub struct Row {
    pub path: PathBuf,
    pub facts: Facts,
}

/// Which facts a query keeps of each run; the rest are only counted in the fields (a
/// run has a couple of hundred, a query reads a few: keeping all of 100 000 runs' would
/// take gigabytes).
#[derive(Debug, Clone, Default)]
pub struct Want {
    pub all: bool,
    /// Only runs whose facts cache is valid: nothing is hashed or rebuilt (the pages over
    /// every study, written by `ablate run` and `ablate report`, stay cheap).
    pub cached_only: bool,
    pub keys: BTreeSet<String>,
    /// Key prefixes (`axes.` for a column `axes.*`).
    pub prefixes: Vec<String>,
}

impl Want {
    pub fn all() -> Want {
        Want {
            all: true,
            ..Want::default()
        }
    }

    /// The keys and `prefix.*` patterns named.
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Want {
        let mut w = Want::default();
        for n in names {
            match n.strip_suffix('*') {
                Some(prefix) => w.prefixes.push(prefix.to_string()),
                None => {
                    w.keys.insert(n.to_string());
                }
            }
        }
        w
    }

    pub fn wants(&self, key: &str) -> bool {
        self.all || self.keys.contains(key) || self.prefixes.iter().any(|p| key.starts_with(p))
    }
}

/// Every finished run found, and what was passed over.
#[derive(Debug, Default)]
pub struct Found {
    pub rows: Vec<Row>,
    /// Every field of every run found (also those not kept), with its kinds and count.
    pub fields: Fields,
    /// Planned runs that are not finished (running, interrupted, failed, never started).
    pub unfinished: usize,
    /// Finished runs left out because they have no valid cache ([`Want::cached_only`]).
    pub uncached: usize,
    /// Runs marked DONE whose `run.h5` is damaged or unreadable: (folder, why).
    pub damaged: Vec<(PathBuf, String)>,
    /// How many facts came from a valid cache, and how many were read from `run.h5`.
    pub cached: usize,
    pub rebuilt: usize,
}

/// A place that holds runs.
enum Place {
    Study(PathBuf),
    Train(PathBuf),
}

fn place(dir: &Path) -> Option<Place> {
    if dir.join("plan.json").is_file() {
        Some(Place::Study(dir.to_path_buf()))
    } else if dir.join(store::RUN_FILE).is_file() {
        Some(Place::Train(dir.to_path_buf()))
    } else {
        None
    }
}

/// The places in `dir`: itself, or its sub-folders (sorted by name).
fn places(dir: &Path) -> Result<Vec<Place>> {
    if !dir.is_dir() {
        return Err(TrackError::Usage(format!(
            "'{}' is not a folder; give a results folder, a study folder or an `ablate train --out` folder",
            dir.display()
        )));
    }
    if let Some(p) = place(dir) {
        return Ok(vec![p]);
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TrackError::Usage(format!("cannot read '{}': {e}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    let found: Vec<Place> = subs.iter().filter_map(|d| place(d)).collect();
    if found.is_empty() {
        return Err(TrackError::Usage(format!(
            "no study (a folder with plan.json) or run (a folder with run.h5) in '{}' or its sub-folders",
            dir.display()
        )));
    }
    Ok(found)
}

/// One run to read: its folder, the checksum its DONE marker recorded (a study run's),
/// and its study's annotations.
struct Task<'a> {
    folder: PathBuf,
    /// A study run's id (its DONE marker must name it); `None` for an `ablate train` run.
    id: Option<&'a str>,
    study: Option<&'a Annotations>,
}

/// Every finished run under `dirs`, in the order the folders are given, each study's runs
/// in plan order, with the facts `want` asks for.
pub fn find(dirs: &[PathBuf], want: &Want) -> Result<Found> {
    let mut found = Found::default();
    let mut places_all = Vec::new();
    for d in dirs {
        places_all.extend(places(d)?);
    }
    // Study annotations are read once per study, before the runs.
    let mut studies: Vec<(PathBuf, Annotations, Vec<String>)> = Vec::new();
    let mut trains: Vec<PathBuf> = Vec::new();
    for p in places_all {
        match p {
            Place::Study(dir) => {
                let (_, ids) = ionode_study::tpe::study_run_ids(&dir)?;
                let a = annotations::read(&dir)?;
                studies.push((dir, a, ids));
            }
            Place::Train(dir) => trains.push(dir),
        }
    }
    let mut tasks: Vec<Task<'_>> = Vec::new();
    for (dir, a, ids) in &studies {
        for id in ids {
            tasks.push(Task {
                folder: store::run_dir(dir, id),
                id: Some(id),
                study: Some(a),
            });
        }
    }
    for dir in &trains {
        tasks.push(Task {
            folder: dir.clone(),
            id: None,
            study: None,
        });
    }
    // In parallel, each worker with its own fields; rayon's reduce keeps the runs' order.
    type Acc = (Vec<Read>, Fields, Option<TrackError>);
    let empty = || -> Acc { (Vec::new(), Fields::default(), None) };
    let (reads, fields, error) = tasks
        .par_iter()
        .fold(empty, |(mut reads, mut fields, mut error): Acc, t| {
            if error.is_none() {
                match read_one(t, want, &mut fields) {
                    Ok(r) => reads.push(r),
                    // A bad tags file is the user's to mend: an error, not a damaged run.
                    Err(e) => error = Some(e),
                }
            }
            (reads, fields, error)
        })
        .reduce(empty, |(mut ra, mut fa, ea), (rb, fb, eb)| {
            ra.extend(rb);
            fa.merge(fb);
            (ra, fa, ea.or(eb))
        });
    if let Some(e) = error {
        return Err(e);
    }
    found.fields = fields;
    for r in reads {
        match r {
            Read::Row(row, source) => {
                match source {
                    Source::Cache => found.cached += 1,
                    Source::Rebuilt | Source::Uncached => found.rebuilt += 1,
                }
                found.rows.push(row);
            }
            Read::Damaged(folder, why) => found.damaged.push((folder, why)),
            Read::Unfinished => found.unfinished += 1,
            Read::Uncached => found.uncached += 1,
        }
    }
    Ok(found)
}

/// What became of one run: its row and where its facts came from, or why its `run.h5`
/// cannot give one, or not finished (no DONE marker of its own).
enum Read {
    Row(Row, Source),
    Damaged(PathBuf, String),
    Unfinished,
    /// Finished, with no valid cache, and only cached facts were asked for.
    Uncached,
}

/// One run's row with the facts `want` asks for (every fact counted in `fields`); an
/// unreadable tags file is an error. Its DONE marker is read here, in parallel with the
/// other runs': a study of 100 000 runs has as many markers.
fn read_one(t: &Task<'_>, want: &Want, fields: &mut Fields) -> Result<Read> {
    let recorded = match t.id {
        Some(id) => match store::recorded_checksum(&t.folder, id) {
            Some(sum) => Some(sum),
            None => return Ok(Read::Unfinished),
        },
        None => None,
    };
    let own = annotations::read(&t.folder)?;
    let keep = |raw: &facts::RawFacts<'_>, fields: &mut Fields| -> Result<Facts> {
        let mut kept = Facts::new();
        fields.next_run();
        for (k, v) in raw.iter() {
            fields.add_raw(k, v);
            if want.wants(k) {
                kept.insert(k.to_string(), serde_json::from_str(v.get())?);
            }
        }
        Ok(kept)
    };
    if want.cached_only {
        return Ok(
            match facts::cached_with(&t.folder, recorded.as_deref(), |raw| keep(raw, fields)) {
                Some(f) => with_finder_keys(t, f?, own, Source::Cache, fields),
                None => Read::Uncached,
            },
        );
    }
    let (f, source) =
        match facts::load_with(&t.folder, recorded.as_deref(), |raw| keep(raw, fields)) {
            Ok((f, source)) => (f?, source),
            Err(e) => {
                let why = ionode_study::errors::one_line(&e);
                return Ok(Read::Damaged(t.folder.clone(), why));
            }
        };
    Ok(with_finder_keys(t, f, own, source, fields))
}

/// A run's row: its facts with the finder's keys added (and counted in `fields`).
fn with_finder_keys(
    t: &Task<'_>,
    mut f: Facts,
    own: Annotations,
    source: Source,
    fields: &mut Fields,
) -> Read {
    let mut tags: Vec<String> = own.tags.iter().cloned().collect();
    if let Some(s) = t.study {
        tags.extend(s.tags.iter().cloned());
        if let Some(n) = &s.note {
            f.insert("study_note".into(), n.clone().into());
        }
    }
    tags.sort();
    tags.dedup();
    f.insert(
        "tags".into(),
        Value::Array(tags.into_iter().map(Value::from).collect()),
    );
    if let Some(n) = own.note {
        f.insert("note".into(), n.into());
    }
    f.insert("path".into(), t.folder.display().to_string().into());
    let kind = if t.id.is_some() { "study" } else { "train" };
    f.insert("kind".into(), kind.into());
    for key in ["study_note", "tags", "note", "path", "kind"] {
        if let Some(v) = f.get(key) {
            fields.add_value(key, v);
        }
    }
    let row = Row {
        path: t.folder.clone(),
        facts: f,
    };
    Read::Row(row, source)
}

/// The run a user names for `compare` or `tag`: a run folder (a study's `runs/<id>` or an
/// `ablate train` folder), checked and read.
pub fn one(folder: &Path) -> Result<Row> {
    // As the file system names it: `.` or `runs/<id>/.` has the run's id and study too.
    let canonical = folder.canonicalize();
    let folder = canonical.as_deref().unwrap_or(folder);
    if !folder.join(store::RUN_FILE).is_file() {
        return Err(TrackError::Usage(format!(
            "'{}' is not a run folder (it has no {}); give STUDY/runs/<run-id> or an `ablate train --out` folder",
            folder.display(),
            store::RUN_FILE
        )));
    }
    let id = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_study = folder
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "runs"))
        .and_then(Path::parent)
        .filter(|s| s.join("plan.json").is_file());
    let study_notes = match in_study {
        Some(s) => Some(annotations::read(s)?),
        None => None,
    };
    let task = Task {
        folder: folder.to_path_buf(),
        id: in_study.map(|_| id.as_str()),
        study: study_notes.as_ref(),
    };
    match read_one(&task, &Want::all(), &mut Fields::default())? {
        Read::Row(row, _) => Ok(row),
        Read::Damaged(_, why) => Err(TrackError::Study(ionode_study::errors::StudyError::Failed(
            format!("run '{}': {why}", folder.display()),
        ))),
        // (Uncached only comes of `Want::cached_only`.)
        Read::Unfinished | Read::Uncached => Err(TrackError::Usage(format!(
            "run '{}' is not finished (it has no DONE marker of run {id})",
            folder.display()
        ))),
    }
}
