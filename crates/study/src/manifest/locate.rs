//! Where a key of a TOML file was written, and typed reading that reports every problem at
//! the key (or value) that causes it: `FILE:LINE:COLUMN: key: message`.
//!
//! Locations come from `toml::de::DeTable`'s spans. An error serde finds in a table built
//! from several files (a merged manifest, a run config with axis values set) is located by
//! re-serialising that table, reading the span of the error in that text back to a key
//! path, and looking the path up in a [`Locate`] function, so no second schema of the run
//! config is needed to locate its errors.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use toml::{Table, Value};

/// A key path in a TOML document: table keys, and `"[i]"` for an array element.
pub type KeyPath = Vec<String>;

/// A key path from string slices.
pub fn key_path(keys: &[&str]) -> KeyPath {
    keys.iter().map(|s| s.to_string()).collect()
}

/// A location in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Where each key path (and array element) of a merged document was written; later files
/// override earlier ones like their values do.
#[derive(Debug, Default, Clone)]
pub struct Locations(HashMap<KeyPath, Loc>);

impl Locations {
    /// The location of a path, or of its nearest located ancestor.
    pub fn find(&self, path: &[String]) -> Option<Loc> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.0.get(&path[..n]).cloned())
    }

    /// The location of a path, or the file name alone.
    pub fn at(&self, path: &[&str], file: &str) -> String {
        self.find(&key_path(path))
            .map_or(file.to_string(), |l| l.to_string())
    }

    /// Records every key of `text` (a file called `file`): keys at the key, array elements
    /// at their value.
    pub fn record(&mut self, file: &str, text: &str) {
        for (p, k, v) in spans(text) {
            let at = if p.last().is_some_and(|l| l.starts_with('[')) {
                v.start
            } else {
                k.start
            };
            let (line, column) = line_col(text, at);
            self.0.insert(
                p,
                Loc {
                    file: file.to_string(),
                    line,
                    column,
                },
            );
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Every key (and array element) of a TOML text with the byte span of the key and of the
/// value.
pub fn spans(text: &str) -> Vec<(KeyPath, Range<usize>, Range<usize>)> {
    use toml::de::{DeTable, DeValue};
    fn walk(
        prefix: &KeyPath,
        value: &toml::Spanned<DeValue<'_>>,
        key_span: Range<usize>,
        out: &mut Vec<(KeyPath, Range<usize>, Range<usize>)>,
    ) {
        out.push((prefix.clone(), key_span, value.span()));
        match value.get_ref() {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    let mut p = prefix.clone();
                    p.push(k.get_ref().to_string());
                    walk(&p, v, k.span(), out);
                }
            }
            DeValue::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    let mut p = prefix.clone();
                    p.push(format!("[{i}]"));
                    walk(&p, v, v.span(), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(root) = DeTable::parse(text) {
        for (k, v) in root.get_ref().iter() {
            walk(&vec![k.get_ref().to_string()], v, k.span(), &mut out);
        }
    }
    out
}

/// A parse error of a TOML text as one located line.
pub fn toml_error(file: &str, text: &str, err: &toml::de::Error) -> String {
    let loc = err
        .span()
        .map(|s| line_col(text, s.start))
        .unwrap_or((1, 1));
    format!("{file}:{}:{}: {}", loc.0, loc.1, err.message().trim())
}

/// A key path as the user wrote it: `grid."model.variant"[1].kind`.
pub fn show(path: &[String]) -> String {
    let mut out = String::new();
    for k in path {
        if k.starts_with('[') {
            out.push_str(k);
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        if k.contains('.') {
            out.push_str(&format!("\"{k}\""));
        } else {
            out.push_str(k);
        }
    }
    out
}

/// The closest valid key, if it is close enough to be a likely typo.
pub fn suggest<'a>(key: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    valid
        .into_iter()
        .map(|v| (strsim::levenshtein(key, v), v))
        .min()
        .filter(|(d, v)| *d <= 3.max(v.len() / 3))
        .map(|(_, v)| v)
}

/// `AT: unknown key 'SHOWN' (did you mean ...?)`, the suggestion in the key's own form.
pub fn unknown_key(at: &str, shown: &str, key: &str, valid: &[&str]) -> String {
    match suggest(key, valid.iter().copied()) {
        Some(s) => {
            let full = shown
                .strip_suffix(key)
                .map_or(s.to_string(), |parent| format!("{parent}{s}"));
            format!("{at}: unknown key '{shown}' (did you mean '{full}'?)")
        }
        None => format!(
            "{at}: unknown key '{shown}' (expected one of: {})",
            valid.join(", ")
        ),
    }
}

/// A key path of a typed table -> its location and its name as the user wrote it.
pub type Locate<'a> = dyn Fn(&[String]) -> Option<(Loc, String)> + 'a;

/// Every float of a document that is not finite (TOML has `inf` and `nan` literals; no
/// setting of ionode accepts them), as located problems: (`LOC: key`, the whole line), so a
/// caller can leave out the ones a range check already reports at the same key.
pub fn non_finite(table: &Table, locs: &Locations, file: &str) -> Vec<(String, String)> {
    fn walk(
        v: &Value,
        path: &mut KeyPath,
        locs: &Locations,
        file: &str,
        out: &mut Vec<(String, String)>,
    ) {
        match v {
            Value::Float(f) if !f.is_finite() => {
                let at = locs.find(path).map_or(file.to_string(), |l| l.to_string());
                let key = format!("{at}: {}", show(path));
                let line =
                    format!("{key}: {f} is not a finite number (no setting accepts inf or nan)");
                out.push((key, line));
            }
            Value::Table(t) => {
                for (k, v) in t {
                    path.push(k.clone());
                    walk(v, path, locs, file, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    walk(v, path, locs, file, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut path = Vec::new();
    for (k, v) in table {
        path.push(k.clone());
        walk(v, &mut path, locs, file, &mut out);
        path.pop();
    }
    out
}

/// One serde error of `table` read as `T`: the located message and the key path of the
/// table it is about (`None` when it cannot be pinned to a removable key).
fn first_error<T: serde::de::DeserializeOwned>(
    table: &Table,
    locate: &Locate,
    fallback: &str,
) -> Result<T, (String, Option<KeyPath>)> {
    let text = toml::to_string(table).map_err(|e| (format!("{fallback}: {e}"), None))?;
    toml::from_str::<T>(&text).map_err(|e| {
        let message = e.message().trim().to_string();
        let at = e.span().map(|s| s.start);
        // The deepest key or value whose span holds the error.
        let raw: KeyPath = at
            .and_then(|at| {
                spans(&text)
                    .into_iter()
                    .filter(|(_, k, v)| k.contains(&at) || v.contains(&at) || k.start == at)
                    .max_by_key(|(p, _, _)| p.len())
                    .map(|(p, _, _)| p)
            })
            .unwrap_or_default();
        let mut target: KeyPath = raw
            .iter()
            .filter(|p| !p.starts_with('['))
            .cloned()
            .collect();
        // A missing field is the fault of the table that lacks it: the key whose value
        // spans exactly the error (none: the document itself), not the table's first key.
        if message.starts_with("missing field") {
            let span = e.span();
            target = spans(&text)
                .into_iter()
                .find(|(_, _, v)| Some(v.clone()) == span)
                .map(|(p, _, _)| p.into_iter().filter(|k| !k.starts_with('[')).collect())
                .unwrap_or_default();
        }
        let unknown = message.strip_prefix("unknown field `").map(|rest| {
            let key = rest.split('`').next().unwrap_or("").to_string();
            let valid: Vec<String> = rest
                .split('`')
                .skip(1)
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s.to_string())
                .collect();
            (key, valid)
        });
        // What to remove to see the next problem: the unknown key, or the whole key (an
        // array, not one element of it) holding a value of the wrong type. A missing field
        // cannot be removed away.
        let mut removable: Option<KeyPath> = match raw.iter().position(|p| p.starts_with('[')) {
            Some(i) => Some(raw[..i].to_vec()),
            None => Some(raw.clone()),
        };
        if let Some((key, _)) = &unknown {
            if target.last() != Some(key) {
                target.push(key.clone());
            }
            if let Some(r) = removable.as_mut() {
                if r.last() != Some(key) {
                    r.push(key.clone());
                }
            }
        }
        if message.starts_with("missing field") || removable.as_ref().is_some_and(|r| r.is_empty())
        {
            removable = None;
        }
        let (loc, name) = match locate(&target) {
            Some((l, n)) => (l.to_string(), n),
            None => (fallback.to_string(), show(&target)),
        };
        let text = if let Some((key, valid)) = &unknown {
            let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
            unknown_key(&loc, &name, key, &valid)
        } else if name.is_empty() {
            format!("{loc}: {message}")
        } else {
            format!("{loc}: {name}: {message}")
        };
        (text, removable)
    })
}

fn remove(table: &mut Table, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut t = table;
    for p in parents {
        match t.get_mut(p) {
            Some(Value::Table(inner)) => t = inner,
            _ => return false,
        }
    }
    t.remove(last).is_some()
}

/// Deserialises a table through its TOML text, collecting every problem serde finds:
/// after each one the offending key is set aside and the rest read again, so an unknown
/// key does not hide a wrong type elsewhere in the same file. Returns the value read from
/// what is left (when that much parses, for the range checks that follow) and the
/// problems.
pub fn typed<T: serde::de::DeserializeOwned>(
    table: &Table,
    locate: &Locate,
    fallback: &str,
) -> (Option<T>, Vec<String>) {
    let mut table = table.clone();
    let mut problems = Vec::new();
    let mut removed: Vec<KeyPath> = Vec::new();
    // Each round removes one key, so the bound is only a guard.
    for _ in 0..64 {
        match first_error::<T>(&table, locate, fallback) {
            Ok(value) => return (Some(value), problems),
            Err((text, removable)) => {
                // A required key set aside for its own problem is now missing: that is
                // the same problem again, not a new one.
                let echo = removed.iter().any(|p| {
                    p.last()
                        .is_some_and(|k| text.contains(&format!("missing field `{k}`")))
                });
                if echo {
                    return (None, problems);
                }
                if !problems.contains(&text) {
                    problems.push(text);
                }
                match removable {
                    Some(path) if remove(&mut table, &path) => removed.push(path),
                    _ => return (None, problems),
                }
            }
        }
    }
    (None, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_keys_only() {
        assert_eq!(suggest("hiden", ["hidden", "layers"]), Some("hidden"));
        assert_eq!(suggest("zzzzzzzz", ["seed", "study"]), None);
    }

    #[test]
    fn paths_are_shown_as_written() {
        let p = |v: &[&str]| key_path(v);
        assert_eq!(
            show(&p(&["grid", "model.variant", "[1]", "kind"])),
            "grid.\"model.variant\"[1].kind"
        );
        assert_eq!(show(&p(&["base", "model", "hidden"])), "base.model.hidden");
        assert_eq!(line_col("a\nbc\n", 4), (2, 3));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        count: usize,
        #[serde(default)]
        scale: f64,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        #[serde(default)]
        a: Option<Inner>,
        #[serde(default)]
        b: Option<Inner>,
        c: u32,
    }

    #[test]
    fn typed_reports_every_problem_of_a_table_in_one_pass() {
        let text = "c = 1\n[a]\ncount = \"many\"\nzzzzzzzz = 2\n[b]\nscale = 1.0\nyyyyyyyy = 3\n";
        let table: Table = toml::from_str(text).unwrap();
        let mut locs = Locations::default();
        locs.record("f.toml", text);
        let locate = |p: &[String]| locs.find(p).map(|l| (l, show(p)));
        let (value, problems) = typed::<Outer>(&table, &locate, "f.toml");
        assert_eq!(
            problems,
            vec![
                "f.toml:3:1: a.count: invalid type: string \"many\", expected usize".to_string(),
                "f.toml:4:1: unknown key 'a.zzzzzzzz' (expected one of: count, scale)".to_string(),
                "f.toml:7:1: unknown key 'b.yyyyyyyy' (expected one of: count, scale)".to_string(),
            ]
        );
        // What is left still reads, for the checks that follow.
        let value = value.unwrap();
        assert_eq!(value.b.unwrap().scale, 1.0);
        // A missing required field ends the search (nothing to remove).
        let table: Table = toml::from_str("[a]\ncount = 1\nzzzzzzzz = 0\n").unwrap();
        let (value, problems) = typed::<Outer>(&table, &|_: &[String]| None, "g.toml");
        assert!(value.is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("missing field `c`"), "{problems:?}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Needs {
        #[serde(default)]
        first: u32,
        inner: Option<NeedsInner>,
        required: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct NeedsInner {
        #[serde(default)]
        x: u32,
        kind: String,
    }

    #[test]
    fn a_missing_field_names_the_table_that_lacks_it() {
        let check = |text: &str, want: &str| {
            let table: Table = toml::from_str(text).unwrap();
            let mut locs = Locations::default();
            locs.record("f.toml", text);
            let locate = |p: &[String]| locs.find(p).map(|l| (l, show(p)));
            let (_, problems) = typed::<Needs>(&table, &locate, "f.toml");
            assert_eq!(problems, vec![want.to_string()]);
        };
        // Not `first` (the first key of the document), but the document.
        check("first = 1\n", "f.toml: missing field `required`");
        // Not `inner.x`, but `inner`.
        check(
            "required = 1\n[inner]\nx = 2\n",
            "f.toml:2:2: inner: missing field `kind`",
        );
    }

    #[test]
    fn non_finite_floats_are_located() {
        let text = "[a]\nx = -inf\ny = [1.0, nan]\nz = 2.0\n";
        let table: Table = toml::from_str(text).unwrap();
        let mut locs = Locations::default();
        locs.record("f.toml", text);
        let p: Vec<String> = non_finite(&table, &locs, "f.toml")
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("f.toml:2:1: a.x: -inf is not a finite number"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("f.toml:3:11: a.y[1]: NaN is not a finite number"),
            "{p:?}"
        );
    }
}
