//! Tags and a note on a run or a study, kept in `tags.json` beside the run's `run.h5` (or
//! beside a study's `plan.json`), never inside `run.h5`: annotating a run changes no
//! checksum, no result and no report number, and a run that is run again keeps its tags.
//!
//! A tag is 1 to [`MAX_TAG_CHARS`] characters of letters, digits and `_ . : + -` (so it
//! reads the same in a filter, a CSV cell and a file name); a run or study has at most
//! [`MAX_TAGS`] of them and a note of at most [`MAX_NOTE_BYTES`] bytes. The file is
//! written atomically; two people tagging the same run at the same moment keep the last
//! one's edit.

use crate::errors::{Context, Result, StudyError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The file beside a run's `run.h5` or a study's `plan.json`.
pub const ANNOTATIONS_FILE: &str = "tags.json";
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_NOTE_BYTES: usize = 4096;
/// The largest file `write` can make, read back whole: every tag at its longest in 4-byte
/// characters, the note all control characters (6 bytes each as JSON escapes), and the
/// pretty-printing around them.
const MAX_FILE_BYTES: u64 =
    (MAX_TAGS * (MAX_TAG_CHARS * 4 + 16) + MAX_NOTE_BYTES * 6 + 1024) as u64;

/// The tags and note of a run or a study.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Annotations {
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Annotations {
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.note.is_none()
    }
}

/// Why `tag` is not a tag, if it is not one.
pub fn tag_problem(tag: &str) -> Option<String> {
    let n = tag.chars().count();
    if n == 0 || n > MAX_TAG_CHARS {
        return Some(format!(
            "tag '{tag}' has {n} characters; a tag has 1 to {MAX_TAG_CHARS}"
        ));
    }
    tag.chars()
        .find(|c| !(c.is_alphanumeric() || "_.:+-".contains(*c)))
        .map(|c| {
            format!(
                "tag '{tag}' holds {c:?}; a tag is letters, digits and the characters _ . : + -"
            )
        })
}

/// What is wrong with these annotations, if anything.
fn problem(a: &Annotations) -> Option<String> {
    if a.tags.len() > MAX_TAGS {
        return Some(format!(
            "{} tags; a run or study has at most {MAX_TAGS}",
            a.tags.len()
        ));
    }
    if let Some(p) = a.tags.iter().find_map(|t| tag_problem(t)) {
        return Some(p);
    }
    match &a.note {
        Some(n) if n.len() > MAX_NOTE_BYTES => Some(format!(
            "the note has {} bytes; a note has at most {MAX_NOTE_BYTES}",
            n.len()
        )),
        _ => None,
    }
}

/// The annotations in `folder` (none when it has no file).
pub fn read(folder: &Path) -> Result<Annotations> {
    let path = folder.join(ANNOTATIONS_FILE);
    let text = match crate::limits::read_own_text(&path, MAX_FILE_BYTES) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Annotations::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read '{}'", path.display())),
    };
    let a: Annotations = serde_json::from_str(&text).map_err(|e| {
        StudyError::Usage(format!(
            "'{}' line {} column {}: {e}; it holds {{\"tags\": [...], \"note\": \"...\"}}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    match problem(&a) {
        Some(p) => Err(StudyError::Usage(format!("'{}': {p}", path.display()))),
        None => Ok(a),
    }
}

/// Writes the annotations of `folder` atomically (removes the file when they are empty).
pub fn write(folder: &Path, a: &Annotations) -> Result<()> {
    if let Some(p) = problem(a) {
        return Err(StudyError::Usage(p));
    }
    let path = folder.join(ANNOTATIONS_FILE);
    if a.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove '{}'", path.display()))
            }
            _ => Ok(()),
        };
    }
    crate::output::write_text(&path, &(serde_json::to_string_pretty(a)? + "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_round_trip_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let mut a = Annotations::default();
        a.tags.insert("best".into());
        a.tags.insert("v2:li+mg".into());
        a.note = Some("the run we ship".into());
        write(dir.path(), &a).unwrap();
        assert_eq!(read(dir.path()).unwrap(), a);
        write(dir.path(), &Annotations::default()).unwrap();
        assert!(!dir.path().join(ANNOTATIONS_FILE).exists());

        assert!(tag_problem("has space").unwrap().contains("' '"));
        assert!(tag_problem("").unwrap().contains("1 to 64"));
        assert!(tag_problem(&"x".repeat(65)).is_some());
        assert!(tag_problem("Mg2+_ok").is_none());
        let long = Annotations {
            note: Some("n".repeat(MAX_NOTE_BYTES + 1)),
            ..Default::default()
        };
        assert!(write(dir.path(), &long).is_err());

        std::fs::write(dir.path().join(ANNOTATIONS_FILE), "{\"tags\": [\"a b\"]}").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("tags.json") && e.contains("'a b'"), "{e}");
        std::fs::write(dir.path().join(ANNOTATIONS_FILE), "{\"tag\": []}").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("line 1 column") && e.contains("tag"), "{e}");
    }
}
