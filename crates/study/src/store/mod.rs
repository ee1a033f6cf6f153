//! The run store on disk: one folder per run (`STUDY/runs/<run-id>/`) holding `run.h5`
//! and exactly one of the markers below. Every process that touches a study goes through
//! this module, so the rules live in one place:
//!
//! - `DONE` is written only after `run.h5` is in place, and records the file's BLAKE3
//!   checksum and the run's id; a run whose `run.h5` is missing or no longer has that
//!   checksum, or whose files belong to another run (copied), is **damaged**: `run` reruns
//!   it, `status` lists it, `report` skips and names it.
//! - `FAILED` holds the error (first line) of a run that failed by itself (the training
//!   diverged, the physics has no solution), and which attempt wrote it. A cause outside
//!   the run (no space left, an I/O error, a damaged input) leaves no marker: the run is
//!   simply not finished, and the next `ablate run` retries it.
//! - `CLAIM.<g>` says which process runs the run now ([`claim`]). Every write and deletion
//!   in a run folder is made by the process that holds its claim, after checking it still
//!   does ([`Claim::check`]); `run.h5` and `DONE` go in with a link that never replaces
//!   anything, so of two processes that both ran a run (one lost its claim while
//!   suspended) only one result is kept, whole.

mod claim;

pub use claim::{Claim, Claimed, Claims, Lost, Owner, STALE_AFTER};

use crate::errors::Result;
use crate::output::{self, Commit};
use std::fs;
use std::path::{Path, PathBuf};

/// The run file inside a run folder.
pub const RUN_FILE: &str = "run.h5";
/// The cache of a finished run's facts ([`crate::facts`]), derived from `run.h5` alone:
/// it goes with the run's file when the run is run again.
pub const FACTS_FILE: &str = "facts.json";
/// The cache of a finished run's record as `run.h5` stores it ([`crate::facts::record`]),
/// for the report: like the facts, it goes with the run's file.
pub const RECORD_FILE: &str = "record.json";
const DONE: &str = "DONE";
const FAILED: &str = "FAILED";

/// Why `id` cannot be a run's id (the name of its folder under `runs/`), if it cannot: 1 to
/// 128 letters, digits and `_ - . +`, not starting with `.`, so that no plan, however
/// edited, names a folder outside `runs/`.
pub fn bad_run_id(id: &str) -> Option<&'static str> {
    if id.is_empty() || id.len() > 128 {
        return Some("a run id is 1 to 128 characters");
    }
    if id.starts_with('.') {
        return Some("a run id does not start with '.'");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "_-.+".contains(c);
    (!id.chars().all(ok)).then_some("a run id is letters, digits and _ - . + only")
}

/// The folder of a run.
pub fn run_dir(study_dir: &Path, id: &str) -> PathBuf {
    study_dir.join("runs").join(id)
}

/// A FAILED marker: the error, and the attempt that wrote it (two markers with the same
/// error are still told apart, so a failure written after a process looked is not retried
/// again by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The first line of the error.
    pub error: String,
    /// The whole marker.
    marker: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

/// What the store says about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Finished, and `run.h5` has the checksum its `DONE` marker recorded.
    Done,
    /// Marked DONE, but the file does not match: why.
    Damaged(String),
    Failed(Failure),
    Missing,
}

/// The BLAKE3 checksum of a file, as hex.
pub fn checksum(path: &Path) -> Result<String> {
    crate::provenance::file_hash(path)
}

/// `blake3 <hex> run.h5`, then `seconds <s>` and `run <id>`: the checksum first, so a
/// reader needs only the first line.
fn done_text(sum: &str, seconds: f64, id: &str) -> String {
    format!("blake3 {sum} {RUN_FILE}\nseconds {seconds:.3}\nrun {id}\n")
}

/// What a DONE marker records: the checksum, and the run id (absent in markers written
/// before ids were recorded).
fn parse_done(done: &str) -> Option<(&str, Option<&str>)> {
    let mut lines = done.lines();
    let mut words = lines.next()?.split_whitespace();
    let sum = match (words.next(), words.next(), words.next()) {
        (Some("blake3"), Some(sum), Some(RUN_FILE))
            if sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            sum
        }
        _ => return None,
    };
    let id = lines.find_map(|l| l.strip_prefix("run ")).map(str::trim);
    Some((sum, id))
}

/// The checksum the `DONE` marker of run `id` (in `folder`) recorded, without hashing
/// `run.h5`: `None` when the run is not marked DONE, or its marker is not one ablate
/// writes or names another run.
pub fn recorded_checksum(folder: &Path, id: &str) -> Option<String> {
    let done = crate::limits::read_own_text(&folder.join(DONE), 4096).ok()?;
    let (sum, recorded) = parse_done(&done)?;
    recorded.is_none_or(|r| r == id).then(|| sum.to_string())
}

/// What a run's markers say, without hashing `run.h5` ([`state`] verifies it): for pages
/// over many runs, such as the results index and a running study's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marked {
    Done,
    /// The first line of its FAILED marker.
    Failed(String),
    /// A process claims it (or a killed one did, until it is taken over).
    Claimed,
    Missing,
}

/// What the markers of run `id` say.
pub fn marked(study_dir: &Path, id: &str) -> Marked {
    let dir = run_dir(study_dir, id);
    if recorded_checksum(&dir, id).is_some() {
        return Marked::Done;
    }
    if let Ok(marker) = crate::limits::read_own_text(&dir.join(FAILED), 65_536) {
        return Marked::Failed(marker.lines().next().unwrap_or("").to_string());
    }
    match claim::generations(&dir) {
        Ok(g) if !g.is_empty() => Marked::Claimed,
        _ => Marked::Missing,
    }
}

/// The state of a run, verifying a finished run's checksum and id.
pub fn state(study_dir: &Path, id: &str) -> State {
    let dir = run_dir(study_dir, id);
    if let Ok(done) = fs::read_to_string(dir.join(DONE)) {
        if done.trim().is_empty() {
            return State::Damaged(
                "its DONE marker is empty (the file system lost its content?)".into(),
            );
        }
        let Some((want, recorded)) = parse_done(&done) else {
            return State::Damaged(
                "its DONE marker is not one ablate writes (no checksum line)".into(),
            );
        };
        if let Some(other) = recorded.filter(|r| *r != id) {
            return State::Damaged(format!(
                "its files are those of run {other} (copied into this folder?)"
            ));
        }
        let file = dir.join(RUN_FILE);
        if !file.exists() {
            return State::Damaged(format!("it is marked DONE but has no {RUN_FILE}"));
        }
        return match checksum(&file) {
            Ok(have) if have == want => State::Done,
            Ok(have) => State::Damaged(format!(
                "{RUN_FILE} has checksum {} but DONE recorded {} (changed or truncated after it finished)",
                &have[..16],
                &want[..16]
            )),
            Err(e) => State::Damaged(format!("{e:#}")),
        };
    }
    match fs::read_to_string(dir.join(FAILED)) {
        Ok(marker) => State::Failed(Failure {
            error: marker.lines().next().unwrap_or("").to_string(),
            marker,
        }),
        Err(_) => State::Missing,
    }
}

/// Puts a finished `run.h5` in place (written by `write` into a temporary file) and marks
/// the run DONE with its checksum, then clears a FAILED marker of an earlier attempt; each
/// step only while `claim` still holds the run, and neither file replaces an existing one.
pub fn finish(
    claim: &Claim,
    id: &str,
    seconds: f64,
    write: impl FnOnce(&Path, Commit<'_>) -> Result<()>,
) -> Result<()> {
    let dir = claim.dir();
    let allowed = || claim.check().map_err(crate::errors::StudyError::from);
    write(&dir.join(RUN_FILE), Commit::New { allowed: &allowed })?;
    let sum = checksum(&dir.join(RUN_FILE))?;
    output::write_with(&dir.join(DONE), Commit::New { allowed: &allowed }, |tmp| {
        use crate::errors::Context;
        fs::write(tmp, done_text(&sum, seconds, id))
            .with_context(|| format!("cannot write '{}'", tmp.display()))
    })?;
    let _ = fs::remove_file(dir.join(FAILED));
    Ok(())
}

/// Marks a run FAILED with its error (one line), if `claim` still holds it.
pub fn mark_failed(claim: &Claim, error: &str) -> Result<()> {
    static ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    claim.check()?;
    let me = Owner::this_process();
    let n = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    output::write_text(
        &claim.dir().join(FAILED),
        &format!("{error}\nattempt {}-{n} {when} by {me}\n", me.token),
    )
}

/// Before a damaged or failed run is rerun: its old markers, file and temporary files go,
/// so that nothing of the earlier attempt can be taken for the new one.
pub fn clear(claim: &Claim) -> Result<()> {
    claim.check()?;
    let dir = claim.dir();
    for name in [DONE, RUN_FILE, FACTS_FILE, RECORD_FILE] {
        let _ = fs::remove_file(dir.join(name));
    }
    output::remove_leftover_tmp(dir);
    Ok(())
}

/// Clears what killed processes left in a finished run's folder: claims (nothing can run
/// a DONE run again, so none is in use) and the temporary files of dead writers. Returns how many
/// files went.
pub fn tidy_done(study_dir: &Path, id: &str) -> usize {
    let dir = run_dir(study_dir, id);
    let Ok(entries) = fs::read_dir(&dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let claim = name
            .strip_prefix("CLAIM.")
            .is_some_and(|g| g.parse::<u64>().is_ok());
        if claim && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    // Temporary files only of dead writers: a query or `ablate tag` may be writing the
    // run's facts cache or tags right now, with no claim (they need none).
    removed + output::remove_orphans(&dir)
}

/// The owners of the claims on a run now (for `status`).
pub fn claimants(study_dir: &Path, id: &str) -> Vec<Owner> {
    claim::generations(&run_dir(study_dir, id))
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, p)| claim::owner_of(p))
        .collect()
}

/// Releases every claim this process holds and removes its temporary files: what an
/// interrupted `ablate` does on its way out.
pub fn on_interrupt() {
    claim::release_all_held();
    output::remove_live_temporaries();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(claims: &Claims, dir: &Path) -> Claim {
        match claims.claim(dir).unwrap() {
            Claimed::Mine(c) => c,
            Claimed::Busy(o) => panic!("held by {o}"),
        }
    }

    fn write_bytes(bytes: &'static [u8]) -> impl FnOnce(&Path, Commit<'_>) -> Result<()> {
        move |path, commit| {
            output::write_with(path, commit, |tmp| {
                fs::write(tmp, bytes).map_err(Into::into)
            })
        }
    }

    #[test]
    fn a_hand_edited_done_marker_is_not_done_and_panics_nothing() {
        let study = tempfile::tempdir().unwrap();
        let dir = run_dir(study.path(), "abc");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(RUN_FILE), b"x").unwrap();
        // 64 bytes, a multi-byte character across byte 16: not a checksum.
        let sum = format!("{}é{}", "a".repeat(15), "b".repeat(47));
        assert_eq!(sum.len(), 64);
        fs::write(
            dir.join(DONE),
            format!("blake3 {sum} {RUN_FILE}\nrun abc\n"),
        )
        .unwrap();
        assert_eq!(recorded_checksum(&dir, "abc"), None);
        assert!(matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("not one")));
        assert_eq!(marked(study.path(), "abc"), Marked::Missing);
    }

    #[test]
    fn tidying_a_done_run_keeps_the_temporary_files_of_live_writers() {
        let study = tempfile::tempdir().unwrap();
        let dir = run_dir(study.path(), "abc");
        fs::create_dir_all(&dir).unwrap();
        // This process writing the run's tags now, and a claim a killed process left.
        let live = output::tmp_path(&dir.join("tags.json"));
        fs::write(&live, b"{}").unwrap();
        fs::write(dir.join("CLAIM.3"), b"").unwrap();
        assert_eq!(tidy_done(study.path(), "abc"), 1);
        assert!(live.exists());
        assert!(!dir.join("CLAIM.3").exists());
    }

    #[test]
    fn done_records_a_checksum_and_the_run_that_state_verifies() {
        let study = tempfile::tempdir().unwrap();
        let dir = run_dir(study.path(), "abc");
        assert_eq!(state(study.path(), "abc"), State::Missing);
        let claims = Claims::start();
        let c = held(&claims, &dir);
        finish(&c, "abc", 1.5, write_bytes(b"some bytes of a run")).unwrap();
        assert_eq!(state(study.path(), "abc"), State::Done);
        // Copied into another run's folder: not a second finished run.
        let copy = run_dir(study.path(), "def");
        fs::create_dir_all(&copy).unwrap();
        for f in [RUN_FILE, DONE] {
            fs::copy(dir.join(f), copy.join(f)).unwrap();
        }
        assert!(matches!(state(study.path(), "def"), State::Damaged(w) if w.contains("run abc")),);
        // One byte changed, then the file truncated, then gone: damaged each time.
        fs::write(dir.join(RUN_FILE), b"some bytes of a run!").unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("checksum")));
        fs::write(dir.join(RUN_FILE), b"some").unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(_)));
        fs::remove_file(dir.join(RUN_FILE)).unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("no run.h5")));
        // An empty marker, and one of another format, say what they are.
        fs::write(dir.join(DONE), "").unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("empty")));
        fs::write(dir.join(RUN_FILE), b"x").unwrap();
        fs::write(dir.join(DONE), "1.234 s\n").unwrap();
        assert!(
            matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("no checksum"))
        );
        mark_failed(&c, "it broke").unwrap();
        clear(&c).unwrap();
        let State::Failed(f) = state(study.path(), "abc") else {
            panic!("failed")
        };
        assert_eq!(f.error, "it broke");
        // The same error again is another attempt.
        mark_failed(&c, "it broke").unwrap();
        let State::Failed(g) = state(study.path(), "abc") else {
            panic!("failed")
        };
        assert_eq!(g.error, f.error);
        assert_ne!(g, f);
    }

    #[test]
    fn a_process_that_lost_its_claim_writes_and_deletes_nothing() {
        let study = tempfile::tempdir().unwrap();
        let dir = run_dir(study.path(), "abc");
        let claims = Claims::start();
        let c = held(&claims, &dir);
        fs::write(dir.join(RUN_FILE), b"the taker's file").unwrap();
        // Taken over: a higher claim generation of another process.
        fs::write(
            dir.join("CLAIM.1"),
            "pid 1\nhost elsewhere\nstarted 1\ntoken t\n",
        )
        .unwrap();
        assert!(clear(&c).is_err());
        assert!(dir.join(RUN_FILE).exists());
        assert!(finish(&c, "abc", 1.0, write_bytes(b"mine")).is_err());
        assert!(mark_failed(&c, "x").is_err());
        assert_eq!(fs::read(dir.join(RUN_FILE)).unwrap(), b"the taker's file");
        assert!(!dir.join(DONE).exists() && !dir.join(FAILED).exists());
        let left: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(
            left.len(),
            3,
            "run.h5 and the two claims, no temporary file"
        );
    }

    #[test]
    fn a_finished_run_folder_is_tidied_of_leftovers() {
        let study = tempfile::tempdir().unwrap();
        let dir = run_dir(study.path(), "abc");
        fs::create_dir_all(&dir).unwrap();
        // Temporary files of dead writers of this host go; another host's may be live.
        let host = crate::process::hostname();
        let dead = [
            format!("DONE.0-4194999@{host}.tmp"),
            format!("run.h5.2-4194998@{host}.tmp"),
        ];
        for f in ["CLAIM.0", "CLAIM.3", "facts.json.1-9@elsewhere.tmp"]
            .into_iter()
            .chain(dead.iter().map(String::as_str))
        {
            fs::write(dir.join(f), "x").unwrap();
        }
        fs::write(dir.join(RUN_FILE), "x").unwrap();
        assert_eq!(tidy_done(study.path(), "abc"), 4);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["facts.json.1-9@elsewhere.tmp", RUN_FILE]);
    }
}
