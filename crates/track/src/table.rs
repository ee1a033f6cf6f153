//! The run table of `ablate runs`: which columns, in which order, and how it is written
//! (a terminal table, CSV, JSON or Parquet).
//!
//! A column is a fact's key; `prefix.*` stands for every key under `prefix.` that some run
//! has. Without `--columns` the table shows who the run is, what varied (`axes.*`), its
//! headline errors and its tags. Rows sort by one or more keys (`key` ascending,
//! `key:desc` descending); a run without the key sorts last either way, and ties keep the
//! finder's order, so the same runs give the same table.

use crate::error::{Result, TrackError};
use crate::filter::Fields;
use crate::find::Row;
use polars::prelude::{Column, CsvWriter, DataFrame, ParquetWriter, SerWriter};
use serde_json::Value;
use std::cmp::Ordering;
use std::path::Path;

/// The columns shown when none are asked for (those no run has are left out).
pub const DEFAULT_COLUMNS: [&str; 8] = [
    "study",
    "run",
    "method",
    "axes.*",
    "metrics.measured.validation.mae",
    "metrics.measured.test.mae",
    "tags",
    "provenance.created_utc",
];

/// The terminal table cuts a longer cell to this many characters (the other formats keep
/// every character).
const MAX_CELL_CHARS: usize = 48;

/// The most columns a table has (a `config.*` of a big study stays readable).
pub const MAX_COLUMNS: usize = 500;

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub key: String,
    pub descending: bool,
}

impl SortKey {
    /// `key` or `key:asc` or `key:desc`.
    pub fn parse(text: &str) -> Result<SortKey> {
        let (key, descending) = match text.rsplit_once(':') {
            Some((k, "desc")) => (k, true),
            Some((k, "asc")) => (k, false),
            Some((_, other)) => {
                return Err(TrackError::Usage(format!(
                    "--sort '{text}': '{other}' is no direction; write KEY, KEY:asc or KEY:desc"
                )))
            }
            None => (text, false),
        };
        if key.trim().is_empty() {
            return Err(TrackError::Usage(format!(
                "--sort '{text}': no key; write KEY, KEY:asc or KEY:desc"
            )));
        }
        Ok(SortKey {
            key: key.trim().to_string(),
            descending,
        })
    }
}

fn unknown(flag: &str, key: &str, fields: &Fields) -> TrackError {
    let hint = match fields.nearest(key) {
        Some(near) => format!("; did you mean '{near}'?"),
        None => "; `ablate runs --fields` lists the fields".into(),
    };
    TrackError::Usage(format!("{flag} '{key}': no run has this field{hint}"))
}

fn always(key: &str) -> bool {
    Fields::always(key)
}

/// The columns named, `prefix.*` expanded, unknown names refused; or, when none are
/// named, the defaults that some of `rows` have, with only the axes whose values differ
/// among them (a query across studies would otherwise show every study's axes).
pub fn columns(asked: Option<&[String]>, fields: &Fields, rows: &[Row]) -> Result<Vec<String>> {
    let Some(asked) = asked else {
        return Ok(default_columns(fields, rows));
    };
    let mut out: Vec<String> = Vec::new();
    for c in asked {
        let c = c.trim();
        if let Some(prefix) = c.strip_suffix('*') {
            let matched: Vec<&str> = fields.names().filter(|n| n.starts_with(prefix)).collect();
            if matched.is_empty() {
                return Err(TrackError::Usage(format!(
                    "--columns '{c}': no run has a field starting with '{prefix}'"
                )));
            }
            out.extend(matched.into_iter().map(String::from));
        } else if always(c) || fields.names().any(|n| n == c) {
            out.push(c.to_string());
        } else {
            return Err(unknown("--columns", c, fields));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    if out.len() > MAX_COLUMNS {
        return Err(TrackError::Usage(format!(
            "--columns: {} columns; a table has at most {MAX_COLUMNS} (name fewer, or a narrower prefix)",
            out.len()
        )));
    }
    Ok(out)
}

fn default_columns(fields: &Fields, rows: &[Row]) -> Vec<String> {
    let has = |c: &str| rows.iter().any(|r| r.facts.contains_key(c));
    let varies = |c: &str| {
        let mut values = rows.iter().map(|r| r.facts.get(c));
        let first = values.next().flatten();
        rows.len() == 1 || values.any(|v| v != first)
    };
    let mut out = Vec::new();
    for c in DEFAULT_COLUMNS {
        if let Some(prefix) = c.strip_suffix('*') {
            out.extend(
                fields
                    .names()
                    .filter(|n| n.starts_with(prefix) && has(n) && varies(n))
                    .map(String::from),
            );
        } else if always(c) || has(c) {
            out.push(c.to_string());
        }
    }
    out
}

/// Checks the sort keys against the runs' fields.
pub fn check_sort(keys: &[SortKey], fields: &Fields) -> Result<()> {
    for k in keys {
        if !always(&k.key) && !fields.names().any(|n| n == k.key) {
            return Err(unknown("--sort", &k.key, fields));
        }
    }
    Ok(())
}

/// Orders two values of one key: numbers by value, text by text, booleans false first;
/// a number before text (a column mixing them is rare: an axis of tables).
fn order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(f64::NAN)
            .total_cmp(&y.as_f64().unwrap_or(f64::NAN)),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(_), _) => Ordering::Less,
        (_, Value::Number(_)) => Ordering::Greater,
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

/// Sorts rows by the keys (stable: ties keep their order).
pub fn sort(rows: &mut [Row], keys: &[SortKey]) {
    let get = |r: &Row, k: &str| {
        r.facts
            .get(k)
            .filter(|v| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty))
            .cloned()
    };
    rows.sort_by(|a, b| {
        for k in keys {
            let o = match (get(a, &k.key), get(b, &k.key)) {
                (Some(x), Some(y)) if k.descending => order(&y, &x),
                (Some(x), Some(y)) => order(&x, &y),
                // Missing last, whatever the direction.
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// A cell as text: numbers as JSON writes them (shortest round-trip form), lists joined by
/// `;`, nothing for a missing value.
pub fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| text(Some(i)))
            .collect::<Vec<_>>()
            .join(";"),
        Some(v) => v.to_string(),
    }
}

/// A cell for a terminal: cut to `MAX_CELL_CHARS` characters.
pub fn short(s: String) -> String {
    if s.chars().count() > MAX_CELL_CHARS {
        let cut: String = s.chars().take(MAX_CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// A number for a person: six significant digits (CSV, JSON and Parquet keep every digit).
fn readable(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 1e-3 && x.abs() < 1e6 {
        let digits = (5 - x.abs().log10().floor() as i32).max(0) as usize;
        format!("{x:.digits$}")
    } else {
        format!("{x:.5e}")
    }
}

/// A terminal table: a header, one line per run; long cells cut.
pub fn terminal(rows: &[Row], columns: &[String]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(columns.iter().map(|c| c.as_str()));
    for r in rows {
        t.add_row(columns.iter().map(|c| match r.facts.get(c) {
            // Integers (seeds, counts) exactly; measurements readably.
            Some(Value::Number(n)) if n.is_f64() => n.as_f64().map_or(n.to_string(), readable),
            v => short(text(v)),
        }));
    }
    // Right-align numeric columns.
    for (i, c) in columns.iter().enumerate() {
        let numeric = rows
            .iter()
            .any(|r| r.facts.get(c).is_some_and(Value::is_number));
        if numeric {
            if let Some(col) = t.column_mut(i) {
                col.set_cell_alignment(comfy_table::CellAlignment::Right);
            }
        }
    }
    format!("{t}\n")
}

/// JSON: an array of objects, one per run, with the chosen columns (missing ones left
/// out).
pub fn json(rows: &[Row], columns: &[String]) -> Result<String> {
    let list: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .filter_map(|c| r.facts.get(c).map(|v| (c.clone(), v.clone())))
                .collect()
        })
        .collect();
    Ok(serde_json::to_string_pretty(&list)? + "\n")
}

/// A typed frame: a column of booleans, of integers (i64), of numbers (f64), else of text
/// (lists and tables as their text).
pub fn frame(rows: &[Row], columns: &[String]) -> Result<DataFrame> {
    let cols: Vec<Column> = columns
        .iter()
        .map(|c| {
            let values: Vec<Option<&Value>> = rows
                .iter()
                .map(|r| r.facts.get(c).filter(|v| !v.is_null()))
                .collect();
            let present = || values.iter().flatten();
            let name = c.as_str().into();
            if present().all(|v| v.is_boolean()) && present().next().is_some() {
                Column::new(
                    name,
                    values
                        .iter()
                        .map(|v| v.and_then(Value::as_bool))
                        .collect::<Vec<_>>(),
                )
            } else if present().all(|v| v.is_i64()) && present().next().is_some() {
                Column::new(
                    name,
                    values
                        .iter()
                        .map(|v| v.and_then(Value::as_i64))
                        .collect::<Vec<_>>(),
                )
            } else if present().all(|v| v.is_number()) && present().next().is_some() {
                Column::new(
                    name,
                    values
                        .iter()
                        .map(|v| v.and_then(Value::as_f64))
                        .collect::<Vec<_>>(),
                )
            } else {
                Column::new(
                    name,
                    values
                        .iter()
                        .map(|v| v.map(|v| text(Some(v))))
                        .collect::<Vec<_>>(),
                )
            }
        })
        .collect();
    Ok(DataFrame::new(rows.len(), cols)?)
}

/// CSV text of the frame.
pub fn csv(rows: &[Row], columns: &[String]) -> Result<String> {
    let mut df = frame(rows, columns)?;
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf)
        .include_header(true)
        .finish(&mut df)?;
    String::from_utf8(buf).map_err(|e| TrackError::Usage(format!("CSV is not UTF-8: {e}")))
}

/// Writes the frame as Parquet to `path` (atomically; only a new file or a regular file
/// that is no input is replaced).
pub fn parquet(rows: &[Row], columns: &[String], path: &Path) -> Result<()> {
    let mut df = frame(rows, columns)?;
    ionode_study::output::write_atomically(path, |tmp| {
        let mut file = std::fs::File::create(tmp)
            .map_err(|e| TrackError::Usage(format!("cannot write '{}': {e}", tmp.display())))?;
        ParquetWriter::new(&mut file).finish(&mut df)?;
        Ok::<_, TrackError>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_with_six_significant_digits() {
        assert_eq!(readable(0.022964590841997888), "0.0229646");
        assert_eq!(readable(150.0), "150");
        assert_eq!(readable(1234.56789), "1234.57");
        assert_eq!(readable(-0.5), "-0.500000");
        assert_eq!(readable(1.5e-7), "1.50000e-7");
        assert_eq!(readable(2.5e19), "2.50000e19");
    }

    #[test]
    fn sort_keys_parse_with_their_direction() {
        assert_eq!(
            SortKey::parse("metrics.measured.test.mae:desc").unwrap(),
            SortKey {
                key: "metrics.measured.test.mae".into(),
                descending: true
            }
        );
        assert!(!SortKey::parse("run:asc").unwrap().descending);
        assert!(!SortKey::parse("run").unwrap().descending);
        assert!(SortKey::parse("run:up").is_err());
        assert!(SortKey::parse(":desc").is_err());
    }
}
