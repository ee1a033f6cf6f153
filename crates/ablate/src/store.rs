//! The run store on disk: one folder per run (`STUDY/runs/<run-id>/`) holding `run.h5`
//! and exactly one of the markers below. Every process that touches a study goes through
//! this module, so the rules live in one place:
//!
//! - `DONE` is written (atomically) only after `run.h5` has been renamed into place, and
//!   records the file's BLAKE3 checksum; a run whose `run.h5` is missing or no longer has
//!   that checksum is **damaged** (truncated, edited by hand, a disk fault): `run` reruns
//!   it, `status` lists it, `report` skips and names it.
//! - `FAILED` holds the error (first line) of a run that failed.
//! - `CLAIM` says which process is running the run now (pid, host, the process's start
//!   time, and its heartbeat as the file's mtime). It is created with `create_new`, so of
//!   two processes of the same study exactly one gets a run; the other skips it and, at the
//!   end, waits for it. A claim whose owner is gone (same host: the pid is dead or is
//!   another process now; any host: no heartbeat for [`STALE_AFTER`]) is taken over.

use crate::output;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

/// The run file inside a run folder.
pub const RUN_FILE: &str = "run.h5";
const DONE: &str = "DONE";
const FAILED: &str = "FAILED";
const CLAIM: &str = "CLAIM";

/// How often a live process refreshes the mtime of the claims it holds.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A claim not refreshed for this long is stale whatever host holds it (a node that died,
/// a task Slurm killed); ten heartbeats leave room for NFS attribute caching.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// The folder of a run.
pub fn run_dir(study_dir: &Path, id: &str) -> PathBuf {
    study_dir.join("runs").join(id)
}

/// What the store says about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Finished, and `run.h5` has the checksum its `DONE` marker recorded.
    Done,
    /// Marked DONE, but the file does not match: why.
    Damaged(String),
    /// The first line of the error.
    Failed(String),
    Missing,
}

/// The BLAKE3 checksum of a file, as hex.
pub fn checksum(path: &Path) -> Result<String> {
    crate::provenance::file_hash(path)
}

/// `blake3 <hex> run.h5` then `seconds <s>`: the checksum first, so a reader needs only
/// the first line.
fn done_text(sum: &str, seconds: f64) -> String {
    format!("blake3 {sum} {RUN_FILE}\nseconds {seconds:.3}\n")
}

fn recorded_checksum(done: &str) -> Option<&str> {
    let first = done.lines().next()?;
    let mut words = first.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("blake3"), Some(sum), Some(RUN_FILE)) if sum.len() == 64 => Some(sum),
        _ => None,
    }
}

/// The state of a run, verifying a finished run's checksum.
pub fn state(study_dir: &Path, id: &str) -> State {
    let dir = run_dir(study_dir, id);
    if let Ok(done) = fs::read_to_string(dir.join(DONE)) {
        let Some(want) = recorded_checksum(&done) else {
            return State::Damaged(
                "its DONE marker records no checksum (written by an older ablate?)".into(),
            );
        };
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
    if let Ok(text) = fs::read_to_string(dir.join(FAILED)) {
        State::Failed(text.lines().next().unwrap_or("").to_string())
    } else {
        State::Missing
    }
}

/// Marks a run DONE with the checksum of its (already renamed) `run.h5`, then clears a
/// FAILED marker of an earlier attempt.
pub fn mark_done(dir: &Path, seconds: f64) -> Result<()> {
    let sum = checksum(&dir.join(RUN_FILE))?;
    output::write_text(&dir.join(DONE), &done_text(&sum, seconds))?;
    let _ = fs::remove_file(dir.join(FAILED));
    Ok(())
}

/// Marks a run FAILED with its error (one line).
pub fn mark_failed(dir: &Path, error: &str) -> Result<()> {
    output::write_text(&dir.join(FAILED), &format!("{error}\n"))
}

/// Before a damaged or failed run is rerun: its old markers and file go, so that nothing
/// of the earlier attempt can be taken for the new one.
pub fn clear(dir: &Path) {
    for name in [DONE, RUN_FILE] {
        let _ = fs::remove_file(dir.join(name));
    }
    output::remove_leftover_tmp(dir);
}

/// This process, as a claim names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22), so
    /// a pid reused by another process is not taken for the owner; 0 where unknown.
    pub started: u64,
}

impl Owner {
    pub fn this_process() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            host: hostname(),
            started: process_start(pid).unwrap_or(0),
        }
    }

    fn to_text(&self) -> String {
        format!(
            "pid {}\nhost {}\nstarted {}\n",
            self.pid, self.host, self.started
        )
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut pid = None;
        let mut host = None;
        let mut started = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("host", v)) => host = Some(v.trim().to_string()),
                Some(("started", v)) => started = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Owner {
            pid: pid?,
            host: host?,
            started: started?,
        })
    }

    /// Whether this owner is known to be gone. Only a process of this host can be asked;
    /// elsewhere the heartbeat decides.
    fn is_gone(&self) -> bool {
        if self.host != hostname() || !Path::new("/proc/self/stat").exists() {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(started) => self.started != 0 && started != self.started,
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// The host name (for claims and provenance).
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Field 22 of `/proc/PID/stat` (after the parenthesised command name, which may hold
/// spaces), or `None` if there is no such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// A run this process holds; the claim file is removed when it is dropped (after the run's
/// DONE or FAILED marker was written).
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    held: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&self.path);
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// The outcome of trying to claim a run.
#[derive(Debug)]
pub enum Claimed {
    Mine(Claim),
    /// Another live process holds it.
    Busy(Owner),
}

/// This process's claims on runs, with a background thread that refreshes the heartbeat of
/// every claim held (stopped when this is dropped).
pub struct Claims {
    me: Owner,
    held: Arc<Mutex<HashSet<PathBuf>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Claims {
    pub fn start() -> Claims {
        Claims::with_heartbeat(HEARTBEAT)
    }

    /// [`Claims::start`] with another heartbeat interval (tests).
    pub fn with_heartbeat(interval: Duration) -> Claims {
        let held: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
        let stop: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let thread = {
            let (held, stop) = (held.clone(), stop.clone());
            std::thread::Builder::new()
                .name("claim-heartbeat".into())
                .spawn(move || {
                    let (flag, wake) = &*stop;
                    let Ok(mut stopped) = flag.lock() else { return };
                    while !*stopped {
                        let paths: Vec<PathBuf> = held
                            .lock()
                            .map(|h| h.iter().cloned().collect())
                            .unwrap_or_default();
                        for p in paths {
                            if let Ok(f) = OpenOptions::new().write(true).open(&p) {
                                let _ = f.set_modified(SystemTime::now());
                            }
                        }
                        match wake.wait_timeout(stopped, interval) {
                            Ok((guard, _)) => stopped = guard,
                            Err(_) => return,
                        }
                    }
                })
                .ok()
        };
        Claims {
            me: Owner::this_process(),
            held,
            stop,
            thread,
        }
    }

    #[cfg(test)]
    pub fn owner(&self) -> &Owner {
        &self.me
    }

    /// Claims the run in `dir`: creates `CLAIM` exclusively, or takes over a stale one. A
    /// stale claim is first renamed to a name of this process (only one rename of the same
    /// file succeeds), then the claim is created exclusively again, so two processes that
    /// both see a stale claim never both hold the run.
    pub fn claim(&self, dir: &Path) -> Result<Claimed> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
        let path = dir.join(CLAIM);
        let mut owner = None;
        for _ in 0..4 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(self.me.to_text().as_bytes())
                        .and_then(|()| f.sync_all())
                        .with_context(|| format!("cannot write '{}'", path.display()))?;
                    if let Ok(mut held) = self.held.lock() {
                        held.insert(path.clone());
                    }
                    let held = self.held.clone();
                    return Ok(Claimed::Mine(Claim { path, held }));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create '{}'", path.display()))
                }
            }
            // Someone holds it: theirs, or stale?
            owner = fs::read_to_string(&path)
                .ok()
                .and_then(|t| Owner::parse(&t));
            let age = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let stale = match &owner {
                Some(o) => o.is_gone() || age > STALE_AFTER,
                // Half-written by a process killed between create and write.
                None => age > Duration::from_secs(5),
            };
            if !stale {
                break;
            }
            let aside = dir.join(format!(
                "{CLAIM}.stale.{}{}",
                self.me.pid,
                output::TMP_SUFFIX
            ));
            if fs::rename(&path, &aside).is_ok() {
                tracing::info!(claim = %path.display(), owner = ?owner, "took over a stale claim");
                let _ = fs::remove_file(&aside);
            }
        }
        Ok(Claimed::Busy(owner.unwrap_or(Owner {
            pid: 0,
            host: "unknown".into(),
            started: 0,
        })))
    }
}

impl Drop for Claims {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        if let Ok(mut stopped) = flag.lock() {
            *stopped = true;
        }
        wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `claims` gets the run in `dir`.
    fn mine(claims: &Claims, dir: &Path) -> bool {
        matches!(claims.claim(dir).unwrap(), Claimed::Mine(_))
    }

    #[test]
    fn done_records_a_checksum_that_state_verifies() {
        let study = tempfile::tempdir().unwrap();
        let dir = run_dir(study.path(), "abc");
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(state(study.path(), "abc"), State::Missing);
        fs::write(dir.join(RUN_FILE), b"some bytes of a run").unwrap();
        mark_done(&dir, 1.5).unwrap();
        assert_eq!(state(study.path(), "abc"), State::Done);
        // One byte changed, then the file truncated, then gone: damaged each time.
        fs::write(dir.join(RUN_FILE), b"some bytes of a run!").unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("checksum")));
        fs::write(dir.join(RUN_FILE), b"some").unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(_)));
        fs::remove_file(dir.join(RUN_FILE)).unwrap();
        assert!(matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("no run.h5")));
        // A DONE marker of the old format (no checksum) is not trusted either.
        fs::write(dir.join(RUN_FILE), b"x").unwrap();
        fs::write(dir.join(DONE), "1.234 s\n").unwrap();
        assert!(
            matches!(state(study.path(), "abc"), State::Damaged(w) if w.contains("no checksum"))
        );
        mark_failed(&dir, "it broke").unwrap();
        clear(&dir);
        assert_eq!(state(study.path(), "abc"), State::Failed("it broke".into()));
    }

    #[test]
    fn a_claim_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::start();
        let me = claims.owner().clone();
        let Claimed::Mine(c) = claims.claim(dir.path()).unwrap() else {
            panic!("first claim")
        };
        // The same live process asking again (another worker thread) is refused, and so
        // is another process.
        assert!(matches!(claims.claim(dir.path()).unwrap(), Claimed::Busy(o) if o == me));
        let text = fs::read_to_string(dir.path().join(CLAIM)).unwrap();
        assert_eq!(Owner::parse(&text), Some(me));
        drop(c);
        assert!(!dir.path().join(CLAIM).exists());
        assert!(mine(&claims, dir.path()));
    }

    #[test]
    fn a_claim_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid,
            host: hostname(),
            started: 1,
        };
        fs::write(dir.path().join(CLAIM), dead.to_text()).unwrap();
        let claims = Claims::start();
        let me = claims.owner().clone();
        assert!(mine(&claims, dir.path()));
        // A pid that lives but is another process (its start time differs) is gone too.
        let reused = Owner {
            started: me.started + 1,
            ..me.clone()
        };
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(CLAIM), reused.to_text()).unwrap();
        assert!(mine(&claims, dir.path()));
    }

    #[test]
    fn a_claim_of_another_host_is_stale_only_without_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let other = Owner {
            pid: 1,
            host: "some-other-node".into(),
            started: 7,
        };
        let path = dir.path().join(CLAIM);
        fs::write(&path, other.to_text()).unwrap();
        let claims = Claims::start();
        assert!(matches!(claims.claim(dir.path()).unwrap(), Claimed::Busy(o) if o == other));
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(mine(&claims, dir.path()));
    }

    #[test]
    fn held_claims_get_a_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::with_heartbeat(Duration::from_millis(20));
        let Claimed::Mine(_held) = claims.claim(dir.path()).unwrap() else {
            panic!("claim")
        };
        let path = dir.path().join(CLAIM);
        let old = SystemTime::now() - Duration::from_secs(3600);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let age = SystemTime::now()
            .duration_since(fs::metadata(&path).unwrap().modified().unwrap())
            .unwrap();
        assert!(age < Duration::from_secs(60), "heartbeat age {age:?}");
    }

    #[test]
    fn owners_round_trip_through_their_text() {
        let me = Owner::this_process();
        assert_eq!(Owner::parse(&me.to_text()), Some(me.clone()));
        assert!(me.started > 0, "this is Linux: /proc gives a start time");
        assert_eq!(Owner::parse("pid x\n"), None);
    }
}
