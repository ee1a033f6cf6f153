//! A finished run's facts: the flat record every cross-study query reads (`ablate runs`,
//! `ablate compare`), and its cache beside the run (`facts.json`), so a query over 100 000
//! runs reads one small JSON file per run instead of opening every `run.h5`.
//!
//! The facts are a map from a dotted key to a JSON value (number, text, boolean or a list):
//! - `run`, `study`, `method`, `synthetic`;
//! - `config.<path>`: the resolved config's leaves (the summary's `config.*` columns);
//! - `axes.<axis>`: a study's axis values (none outside a study);
//! - `metrics.<stage>.<part>.<metric>` with stage `pretrain` or `measured`, part `train`,
//!   `validation` or `test`, metric `mae`, `rmse`, `r2`, `en_mean`, `en_max`, `coverage`,
//!   `interval_width`, `n_samples`; and `metrics.<stage>.<part>.<metric>.<ion>` for `mae`,
//!   `rmse` and `r2` of each ion (`metrics.measured.test.mae.Li+`);
//! - `seconds.total`, `seconds.pretrain`, `seconds.finetune`;
//! - `provenance.<field>`: git commit and dirty flag, host, version, time, manifest and its
//!   hash, plan index, command line, overrides.
//!
//! An undefined value (a metric of an empty part) is absent, never NaN.
//!
//! Beside it, `record.json` caches the run's whole record as `run.h5` stores it
//! ([`record::Stored`]), so a report reads its runs from small files too ([`record`]); two
//! files, so that a query, which reads a hundred thousand of them, reads no record and a
//! report no facts. Both are written when the run finishes from the values just written
//! (no read back), and otherwise made together from `run.h5`, stamped alike. A record
//! whose JSON would not read back as the same values (a NaN or infinite metric or loss is
//! `null` in JSON) is left out of its cache, and then `run.h5` is read.
//!
//! The cache is valid when it was made by this format from this very `run.h5`: it records
//! the file's BLAKE3 checksum, size and modification time. A study run's checksum must be
//! the one its `DONE` marker recorded (a rerun run has another), and the size and time
//! must be the file's now (a file changed in place has others); otherwise the file is
//! hashed, checked, read and the cache written again. The cache is only ever derived from
//! `run.h5`, so a lost or stale one costs one read, never a wrong answer; where it cannot
//! be written (a read-only shared folder) the facts are used without it.

use crate::errors::{Context, Result, StudyError};
use crate::record::{self, RunRecord, Stored};
use crate::store;
use ionode_train::metrics::Metrics;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

pub use crate::store::{FACTS_FILE, RECORD_FILE};

/// The caches' format: a change of the keys above or of [`Stored`] changes it, and every
/// cache of an older format is rebuilt on its next read.
const FORMAT: u32 = 4;

/// The largest cache file read (a run's facts are a few kilobytes).
const MAX_CACHE_BYTES: u64 = 4 << 20;

/// A run's facts: dotted key -> value, in key order.
pub type Facts = BTreeMap<String, Value>;

/// Which `run.h5` a cache was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    blake3: String,
    bytes: u64,
    modified_ns: u64,
}

/// `facts.json`.
#[derive(Serialize, Deserialize)]
struct Cache {
    format: u32,
    run_file: Stamp,
    facts: Facts,
}

/// `record.json`.
#[derive(Serialize, Deserialize)]
struct RecordCache {
    format: u32,
    run_file: Stamp,
    /// `None` when it would not read back exactly ([`exact`]).
    record: Option<Stored>,
}

/// Whether a reader may write the caches it had to make (a report written elsewhere with
/// `--out` leaves the study folder untouched: it may be read-only, or someone else's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    Write,
    ReadOnly,
}

/// Where the facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A valid cache.
    Cache,
    /// `run.h5`, and the cache was written.
    Rebuilt,
    /// `run.h5`; the cache could not be written (the folder is read-only, say).
    Uncached,
}

/// The facts of one run record.
pub fn of_record(r: &RunRecord) -> Facts {
    let mut f = Facts::new();
    let p = &r.head.provenance;
    f.insert("run".into(), p.run_id.clone().into());
    f.insert("study".into(), p.study.clone().into());
    f.insert("method".into(), record::method_name(r.method()).into());
    f.insert("synthetic".into(), r.synthetic.into());
    for (key, value) in r.head.canonical().leaves() {
        f.insert(format!("config.{key}"), value.clone());
    }
    for (axis, value) in &r.head.axes {
        if !value.is_null() {
            f.insert(format!("axes.{axis}"), value.clone());
        }
    }
    let stages = [
        ("pretrain", &r.metrics.pretrain),
        ("measured", &r.metrics.measured),
    ];
    for (stage, split) in stages {
        let Some(split) = split else { continue };
        let parts = [
            ("train", &split.train),
            ("validation", &split.validation),
            ("test", &split.test),
        ];
        for (part, m) in parts {
            if let Some(m) = m {
                metrics(&mut f, &format!("metrics.{stage}.{part}"), m);
            }
        }
    }
    let t = &r.timings;
    for (k, v) in [
        ("total", t.total),
        ("pretrain", t.pretrain),
        ("finetune", t.finetune),
    ] {
        number(&mut f, format!("seconds.{k}"), Some(v));
    }
    let prov = [
        ("git_commit", Value::from(p.git_commit.clone())),
        ("git_dirty", p.git_dirty.map_or(Value::Null, Value::from)),
        ("host", p.host.clone().into()),
        ("ionode_version", p.ionode_version.clone().into()),
        ("created_utc", p.created_utc.clone().into()),
        ("manifest", p.manifest.clone().into()),
        ("manifest_hash", p.manifest_hash.clone().into()),
        ("plan_index", p.plan_index.map_or(Value::Null, Value::from)),
        ("command_line", p.command_line.clone().into()),
        ("overrides", p.overrides.clone().into()),
    ];
    for (k, v) in prov {
        if !v.is_null() {
            f.insert(format!("provenance.{k}"), v);
        }
    }
    f
}

fn number(f: &mut Facts, key: String, v: Option<f64>) {
    if let Some(v) = v.filter(|v| v.is_finite()) {
        f.insert(key, v.into());
    }
}

fn metrics(f: &mut Facts, prefix: &str, m: &Metrics) {
    let whole = [
        ("mae", m.mae),
        ("rmse", m.rmse),
        ("r2", m.r2),
        ("en_mean", m.electroneutrality_mean),
        ("en_max", m.electroneutrality_max),
        ("coverage", m.coverage),
        ("interval_width", m.interval_width),
    ];
    for (name, v) in whole {
        number(f, format!("{prefix}.{name}"), v);
    }
    f.insert(format!("{prefix}.n_samples"), m.n_samples.into());
    for ion in &m.per_ion {
        for (name, v) in [("mae", ion.mae), ("rmse", ion.rmse), ("r2", ion.r2)] {
            number(f, format!("{prefix}.{name}.{}", ion.species), v);
        }
    }
}

/// The size and modification time of a file.
fn stat(path: &Path) -> Result<(u64, u64)> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Ok((meta.len(), modified))
}

/// A run's facts as its cache holds them: every key (in key order, as written), each value
/// still JSON text, so a query parses only the few of a run's couple of hundred facts it
/// needs. A list, not a map: nothing is looked up in it, and building a map of long keys
/// that share their first 25 characters cost a query over 100 000 runs a second.
#[derive(Debug, Default)]
pub struct RawFacts<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> RawFacts<'a> {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), *v))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawFacts<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Pairs;
        impl<'de> serde::de::Visitor<'de> for Pairs {
            type Value = RawFacts<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of facts")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<RawFacts<'de>, M::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(256));
                while let Some(pair) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    pairs.push(pair);
                }
                Ok(RawFacts(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// The cache as read: the facts left unparsed.
#[derive(Deserialize)]
struct RawCache<'a> {
    format: u32,
    run_file: Stamp,
    #[serde(borrow)]
    facts: RawFacts<'a>,
}

/// Every value of raw facts parsed.
pub fn parse_all(raw: &RawFacts<'_>) -> Result<Facts> {
    raw.iter()
        .map(|(k, v)| Ok((k.to_string(), serde_json::from_str(v.get())?)))
        .collect()
}

/// The facts of the run in `folder` (holding `run.h5`), from its cache when that is valid.
/// `recorded` is the checksum a study run's `DONE` marker recorded (`None` for an
/// `ablate train` folder, which has no marker): a `run.h5` without it is damaged, an error.
pub fn load(folder: &Path, recorded: Option<&str>) -> Result<(Facts, Source)> {
    let (facts, source) = load_with(folder, recorded, parse_all)?;
    Ok((facts?, source))
}

/// [`load_with`] from a valid cache only: `None` when there is none, and then nothing is
/// hashed, read or written (a page over every study must not rebuild old studies' caches).
pub fn cached_with<R>(
    folder: &Path,
    recorded: Option<&str>,
    use_facts: impl FnOnce(&RawFacts<'_>) -> R,
) -> Option<R> {
    let (bytes, modified_ns) = stat(&folder.join(store::RUN_FILE)).ok()?;
    let text = crate::limits::read_own_text(&folder.join(FACTS_FILE), MAX_CACHE_BYTES).ok()?;
    let c = serde_json::from_str::<RawCache>(&text).ok()?;
    valid(c.format, &c.run_file, bytes, modified_ns, recorded).then(|| use_facts(&c.facts))
}

/// Whether a cache was made by this format from this very file.
fn valid(format: u32, s: &Stamp, bytes: u64, modified_ns: u64, recorded: Option<&str>) -> bool {
    format == FORMAT
        && s.bytes == bytes
        && s.modified_ns == modified_ns
        && recorded.is_none_or(|sum| sum == s.blake3)
}

/// [`load`], handing the facts unparsed to `use_facts`.
pub fn load_with<R>(
    folder: &Path,
    recorded: Option<&str>,
    use_facts: impl FnOnce(&RawFacts<'_>) -> R,
) -> Result<(R, Source)> {
    let (bytes, modified_ns) = stat(&folder.join(store::RUN_FILE))?;
    let text = read_cache(folder, FACTS_FILE);
    if let Ok(c) = serde_json::from_str::<RawCache>(&text) {
        if valid(c.format, &c.run_file, bytes, modified_ns, recorded) {
            return Ok((use_facts(&c.facts), Source::Cache));
        }
    }
    let (rebuilt, source) = rebuild(folder, (bytes, modified_ns), recorded, Caching::Write)?;
    let raw: RawCache = serde_json::from_str(&rebuilt.facts)?;
    Ok((use_facts(&raw.facts), source))
}

/// The record of the run in `folder`, from its cache when that is valid, as
/// [`record::read`] would read it from `run.h5`; `recorded` as in [`load`].
pub fn record(
    folder: &Path,
    recorded: Option<&str>,
    caching: Caching,
) -> Result<(RunRecord, Source)> {
    let file = folder.join(store::RUN_FILE);
    let (bytes, modified_ns) = stat(&file)?;
    let cached = serde_json::from_str::<RecordCache>(&read_cache(folder, RECORD_FILE))
        .ok()
        .filter(|c| valid(c.format, &c.run_file, bytes, modified_ns, recorded));
    let (stored, source) = match cached {
        Some(c) => (c.record, Source::Cache),
        None => {
            let (rebuilt, source) = rebuild(folder, (bytes, modified_ns), recorded, caching)?;
            (rebuilt.record, source)
        }
    };
    let record = match stored {
        Some(s) => s.into_record(&file.display().to_string())?,
        None => record::read(&file)?,
    };
    Ok((record, source))
}

/// Writes the caches of a run that has just finished, from the values its `run.h5` (in
/// `folder`, with checksum `blake3`) was written with: nothing is read back.
pub fn write_finished(folder: &Path, stored: Stored, blake3: &str) -> Result<()> {
    let file = folder.join(store::RUN_FILE);
    let (bytes, modified_ns) = stat(&file)?;
    let facts = of_record(&stored.clone().into_record(&file.display().to_string())?);
    let stamp = Stamp {
        blake3: blake3.to_string(),
        bytes,
        modified_ns,
    };
    write_caches(folder, stamp, facts, exact(stored), Caching::Write).map(|_| ())
}

/// A cache file's text, or nothing.
fn read_cache(folder: &Path, name: &str) -> String {
    crate::limits::read_own_text(&folder.join(name), MAX_CACHE_BYTES).unwrap_or_default()
}

/// The record, when its JSON reads back as the very same values; `None` otherwise (a NaN
/// or an infinity is written as `null`), and then a report reads `run.h5` instead.
fn exact(stored: Stored) -> Option<Stored> {
    let text = serde_json::to_string(&stored).ok()?;
    let back: Stored = serde_json::from_str(&text).ok()?;
    // Debug prints each float in the shortest form that reads back as its bits.
    (format!("{back:?}") == format!("{stored:?}")).then_some(stored)
}

/// Both caches as made: the text of `facts.json` and the record.
struct Rebuilt {
    facts: String,
    record: Option<Stored>,
}

/// Makes both caches of `folder`'s `run.h5` (of this size and time) after checking its
/// checksum against `recorded`, and writes them as `caching` allows. When only the stamp
/// of the caches found is stale (the file was copied or touched), their values stand and
/// `run.h5` is not read.
fn rebuild(
    folder: &Path,
    (bytes, modified_ns): (u64, u64),
    recorded: Option<&str>,
    caching: Caching,
) -> Result<(Rebuilt, Source)> {
    let file = folder.join(store::RUN_FILE);
    let blake3 = store::checksum(&file)?;
    if let Some(sum) = recorded.filter(|sum| *sum != blake3) {
        return Err(StudyError::Failed(format!(
            "'{}' has checksum {} but its DONE marker recorded {} (changed or truncated after it finished)",
            file.display(),
            &blake3[..16],
            &sum[..sum.len().min(16)]
        )));
    }
    let same = |format: u32, s: &Stamp| format == FORMAT && s.blake3 == blake3;
    let old_facts = serde_json::from_str::<Cache>(&read_cache(folder, FACTS_FILE))
        .ok()
        .filter(|c| same(c.format, &c.run_file));
    let old_record = serde_json::from_str::<RecordCache>(&read_cache(folder, RECORD_FILE))
        .ok()
        .filter(|c| same(c.format, &c.run_file));
    let (facts, stored) = match (old_facts, old_record) {
        (Some(f), Some(r)) => (f.facts, r.record),
        _ => {
            let stored = Stored::read_file(&file)?;
            let facts = of_record(&stored.clone().into_record(&file.display().to_string())?);
            (facts, exact(stored))
        }
    };
    let stamp = Stamp {
        blake3,
        bytes,
        modified_ns,
    };
    write_caches(folder, stamp, facts, stored, caching)
}

/// Writes both caches (each atomically, when `caching` allows; the record first, so a
/// valid `facts.json` always has its `record.json`); returns them and whether they were
/// written.
fn write_caches(
    folder: &Path,
    run_file: Stamp,
    facts: Facts,
    record: Option<Stored>,
    caching: Caching,
) -> Result<(Rebuilt, Source)> {
    let record = RecordCache {
        format: FORMAT,
        run_file: run_file.clone(),
        record,
    };
    let record_text = serde_json::to_string(&record)? + "\n";
    let facts_text = serde_json::to_string(&Cache {
        format: FORMAT,
        run_file,
        facts,
    })? + "\n";
    let write = |name: &str, text: &str| crate::output::write_text(&folder.join(name), text);
    let source = match caching {
        Caching::Write
            if write(RECORD_FILE, &record_text).is_ok()
                && write(FACTS_FILE, &facts_text).is_ok() =>
        {
            Source::Rebuilt
        }
        _ => Source::Uncached,
    };
    Ok((
        Rebuilt {
            facts: facts_text,
            record: record.record,
        },
        source,
    ))
}
