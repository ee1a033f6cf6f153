//! `include = ["base.toml", ...]`: a manifest's includes are read depth first, in order, and
//! merged before the manifest itself (later keys override, tables merge key by key).
//! Dataset paths are rebased so that each stays relative to the file that wrote it.
//! An include cycle is reported as one, naming every file of the cycle and the include
//! line that closes it.

use super::locate::{toml_error, Locations};
use super::{Problems, STUDY_PREFIX};
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Deepest chain of includes (a guard; cycles are found before it is reached).
const MAX_DEPTH: usize = 16;

/// Deep merge: tables key by key, anything else replaced.
pub fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Dataset paths are written relative to the file that names them; the merged manifest
/// holds them relative to the top manifest's folder (`rel_dir` = this file's folder seen
/// from there).
fn rebase_data_paths(table: &mut Table, rel_dir: &Path) {
    if rel_dir.as_os_str().is_empty() {
        return;
    }
    let rebase = |v: &mut Value| {
        if let Value::String(s) = v {
            if !s.starts_with(STUDY_PREFIX) && Path::new(s.as_str()).is_relative() {
                *s = rel_dir.join(s.as_str()).display().to_string();
            }
        }
    };
    let fix = |t: Option<&mut Value>| {
        let Some(Value::Table(t)) = t else { return };
        match t.get_mut("pretrain") {
            // A generator's membrane file is relative to the file that names it too.
            Some(Value::Table(g)) => {
                if let Some(m) = g.get_mut("membrane") {
                    if m.as_str().is_some_and(crate::membrane::is_file) {
                        rebase(m);
                    }
                }
            }
            Some(v) => rebase(v),
            None => {}
        }
        if let Some(Value::Array(items)) = t.get_mut("measured") {
            items.iter_mut().for_each(rebase);
        }
    };
    fix(table.get_mut("datasets"));
    if let Some(Value::Table(base)) = table.get_mut("base") {
        fix(base.get_mut("data"));
    }
}

/// One file on the include chain: its path as shown, its canonical path (to recognise it
/// again) and where it includes the next one.
struct Link {
    shown: String,
    canonical: PathBuf,
    include_at: String,
}

/// Reads a manifest and its includes into one table, recording where every key was
/// written in `locs`.
pub fn load_merged(path: &Path, locs: &mut Locations) -> Result<Table, Problems> {
    load(path, Path::new(""), locs, &mut Vec::new())
}

fn load(
    path: &Path,
    rel_dir: &Path,
    locs: &mut Locations,
    chain: &mut Vec<Link>,
) -> Result<Table, Problems> {
    let name = path.display().to_string();
    let text = crate::limits::read_text(path, crate::limits::MAX_TEXT_FILE_BYTES)
        .map_err(|e| Problems(vec![format!("cannot read manifest '{name}': {e}")]))?;
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if chain.len() >= MAX_DEPTH {
        return Err(Problems(vec![format!(
            "{}: includes nest deeper than {MAX_DEPTH} files",
            chain.last().map_or(name.clone(), |l| l.include_at.clone())
        )]));
    }
    let mut table: Table =
        toml::from_str(&text).map_err(|e| Problems(vec![toml_error(&name, &text, &e)]))?;
    let mut here = Locations::default();
    here.record(&name, &text);
    let at = here.at(&["include"], &name);
    let mut merged = Table::new();
    if let Some(include) = table.remove("include") {
        let Value::Array(items) = include else {
            return Err(Problems(vec![format!(
                "{at}: include: expected an array of file names"
            )]));
        };
        let dir = path.parent().unwrap_or(Path::new(""));
        for (i, item) in items.into_iter().enumerate() {
            let item_at = here.at(&["include", &format!("[{i}]")], &name);
            let Value::String(file) = item else {
                return Err(Problems(vec![format!(
                    "{item_at}: include[{i}]: expected a file name, found {item}"
                )]));
            };
            let inc = dir.join(&file);
            if !inc.exists() {
                return Err(Problems(vec![format!(
                    "{item_at}: included file '{}' not found",
                    inc.display()
                )]));
            }
            let inc_canonical = inc.canonicalize().unwrap_or_else(|_| inc.clone());
            let link = Link {
                shown: name.clone(),
                canonical: canonical.clone(),
                include_at: item_at.clone(),
            };
            chain.push(link);
            if let Some(start) = chain.iter().position(|l| l.canonical == inc_canonical) {
                // The links from the file included again to this one, each naming the
                // next file (the last one's next is the first).
                let links = &chain[start..];
                let text: Vec<String> = links
                    .iter()
                    .enumerate()
                    .map(|(k, l)| {
                        let next = links.get(k + 1).unwrap_or(&links[0]);
                        format!(
                            "'{}' includes '{}' at {}",
                            l.shown, next.shown, l.include_at
                        )
                    })
                    .collect();
                return Err(Problems(vec![format!(
                    "{item_at}: include cycle: {}",
                    text.join(", ")
                )]));
            }
            let t = load(
                &inc,
                rel_dir.join(&file).parent().unwrap_or(Path::new("")),
                locs,
                chain,
            );
            chain.pop();
            merge(&mut merged, t?);
        }
    }
    locs.record(&name, &text);
    rebase_data_paths(&mut table, rel_dir);
    merge(&mut merged, table);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_merge_tables_key_by_key() {
        let mut a: Table = toml::from_str("[base.model]\nhidden = 8\nlayers = 2\n").unwrap();
        let b: Table = toml::from_str("[base.model]\nhidden = 16\n").unwrap();
        merge(&mut a, b);
        assert_eq!(a["base"]["model"]["hidden"], Value::Integer(16));
        assert_eq!(a["base"]["model"]["layers"], Value::Integer(2));
    }

    #[test]
    fn an_include_cycle_names_its_files_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        std::fs::write(&a, "study = \"x\"\ninclude = [\"b.toml\"]\n").unwrap();
        std::fs::write(&b, "\ninclude = [\"a.toml\"]\n").unwrap();
        let err = load_merged(&a, &mut Locations::default()).unwrap_err();
        let (a, b) = (a.display(), dir.path().join("b.toml").display().to_string());
        assert_eq!(
            err.0,
            vec![format!(
                "{b}:2:12: include cycle: '{a}' includes '{b}' at {a}:2:12, '{b}' includes '{a}' at {b}:2:12"
            )]
        );
        // A file that includes itself.
        let c = dir.path().join("c.toml");
        std::fs::write(&c, "include = [\"c.toml\"]\n").unwrap();
        let err = load_merged(&c, &mut Locations::default()).unwrap_err();
        assert!(
            err.0[0].ends_with(&format!(
                "include cycle: '{0}' includes '{0}' at {0}:1:12",
                c.display()
            )),
            "{:?}",
            err.0
        );
        // The same file included twice side by side is not a cycle.
        let d = dir.path().join("d.toml");
        std::fs::write(dir.path().join("e.toml"), "seed = 1\n").unwrap();
        std::fs::write(&d, "include = [\"e.toml\", \"e.toml\"]\n").unwrap();
        assert!(load_merged(&d, &mut Locations::default()).is_ok());
    }
}
