//! From the merged manifest to run configs: the base with one point's axis values set,
//! where each key of the result was written (for located errors), and the parts a method
//! ignores reset (so runs that differ only there are one run).

use super::locate::{show, KeyPath, Loc, Locations};
use toml::{Table, Value};

/// Sets a dotted path in a table; `false` on a path whose value is not a boolean in the
/// base removes the key (`"pretrain" = [{...}, false]` switches a stage off).
pub fn set_path(table: &mut Table, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("paths are non-empty");
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        t = entry.as_table_mut().expect("made a table above");
    }
    let off = value == Value::Boolean(false) && !matches!(t.get(*last), Some(Value::Boolean(_)));
    if off {
        t.remove(*last);
    } else {
        t.insert(last.to_string(), value);
    }
}

/// Where a resolved config's key came from, for located errors.
pub struct ConfigOrigin<'a> {
    pub locs: &'a Locations,
    /// (run-config path, manifest path of the value that set it)
    pub overrides: Vec<(KeyPath, KeyPath)>,
}

impl ConfigOrigin<'_> {
    /// The location and the manifest name of a run-config path.
    pub fn locate(&self, path: &[String]) -> Option<(Loc, String)> {
        // The longest override that is a prefix of the path decides.
        let mut best: Option<&(KeyPath, KeyPath)> = None;
        for o in &self.overrides {
            if path.starts_with(&o.0) && best.is_none_or(|b| o.0.len() > b.0.len()) {
                best = Some(o);
            }
        }
        let mut manifest_path = match best {
            Some((prefix, at)) => {
                let mut p = at.clone();
                p.extend_from_slice(&path[prefix.len()..]);
                p
            }
            None => match self
                .overrides
                .iter()
                .find(|o| o.0.starts_with(path) && o.0.len() > path.len())
            {
                // A key an axis created (a misspelt axis path): the axis itself.
                Some((_, at)) => at.iter().take(2).cloned().collect(),
                None => {
                    let mut p = vec!["base".to_string()];
                    p.extend_from_slice(path);
                    p
                }
            },
        };
        let loc = self.locs.find(&manifest_path)?;
        // Axis values are shown down to the element; deeper keys are inside it.
        if manifest_path.first().is_some_and(|f| f == "random") {
            manifest_path.truncate(2);
        }
        Some((loc, show(&manifest_path)))
    }
}
