//! Claims: which process runs a run now, and whether it still does.
//!
//! A claim is a file `CLAIM.<g>` in the run's folder, `g` a generation number, holding the
//! owner (pid, host, the process's start time and a token unique to the process); its
//! mtime is the owner's heartbeat. The rules:
//!
//! - A process **holds** a run while its claim file exists with its token and no claim of a
//!   higher generation exists. Claims are created with `create_new` (O_EXCL, atomic on
//!   local and network file systems), so of the processes that try a generation exactly
//!   one gets it; after creating, a process looks again and backs off if a higher
//!   generation appeared meanwhile.
//! - The first claim is generation 0. A claim is taken over by creating the next
//!   generation, never by moving or deleting the live file; the taker then removes the
//!   generations below its own. So several processes that find the same stale claim at
//!   once race for one file name, and one wins.
//! - A claim is **stale** when its owner is a process of this host that is gone (at once),
//!   or when this process has watched it for [`STALE_AFTER`] of its own monotonic clock and
//!   its heartbeat never moved. No wall clock of another host is compared with this one's,
//!   so a host whose clock runs ahead takes over nothing.
//! - **Fencing**: a process that lost its run (suspended past the limit, say, and taken
//!   over) must not write or delete anything of it. [`Claim::check`] says whether it still
//!   holds the run; the run store calls it before every write and deletion, and results
//!   are committed with a link that never replaces an existing file.
//! - A claim is released by its owner alone, after checking the file is still its own.

use crate::errors::{Context, Result};
use crate::process;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// How often a live process refreshes the heartbeat of the claims it holds (a tenth of
/// the stale limit).
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A claim whose heartbeat has not moved for this long, as the observer's own clock
/// measures it, is stale whatever host holds it (a node that died, a task Slurm killed, a
/// suspended process); ten heartbeats leave room for NFS attribute caching.
pub const STALE_AFTER: Duration = Duration::from_secs(300);
/// A claim file whose owner cannot be read (its writer died between creating and filling
/// it) is stale after this long unchanged.
const HALF_WRITTEN_AFTER: Duration = Duration::from_secs(5);
/// Overrides [`STALE_AFTER`] (seconds) for tests of suspended processes; not for users.
const STALE_ENV: &str = "IONODE_CLAIM_STALE_SECS";

const PREFIX: &str = "CLAIM.";

/// A process as a claim names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub host: String,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22), so
    /// a pid reused by another process is not taken for the owner; 0 where unknown.
    pub started: u64,
    /// Unique to one process of one host: what [`Claim::check`] compares.
    pub token: String,
}

impl Owner {
    /// This process (the same value on every call).
    pub fn this_process() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            let host = process::hostname();
            let started = process::start_time(pid).unwrap_or(0);
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let token = crate::provenance::text_hash(&format!("{pid} {host} {started} {nanos}"));
            Owner {
                pid,
                host,
                started,
                token,
            }
        })
        .clone()
    }

    fn to_text(&self) -> String {
        format!(
            "pid {}\nhost {}\nstarted {}\ntoken {}\n",
            self.pid, self.host, self.started, self.token
        )
    }

    fn parse(text: &str) -> Option<Owner> {
        let (mut pid, mut host, mut started, mut token) = (None, None, None, None);
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("pid", v)) => pid = v.trim().parse().ok(),
                Some(("host", v)) => host = Some(v.trim().to_string()),
                Some(("started", v)) => started = v.trim().parse().ok(),
                Some(("token", v)) => token = Some(v.trim().to_string()),
                _ => {}
            }
        }
        Some(Owner {
            pid: pid?,
            host: host?,
            started: started?,
            token: token?,
        })
    }

    /// Whether this owner is known to be gone (only a process of this host can be asked).
    pub fn is_gone(&self) -> bool {
        process::is_gone(&self.host, self.pid, self.started)
    }

    fn unknown() -> Owner {
        Owner {
            pid: 0,
            host: "unknown".into(),
            started: 0,
            token: String::new(),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)
    }
}

/// The claim files of a run folder, lowest generation first.
pub fn generations(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(g) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|g| g.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((g, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// The owner named in a claim file, if it can be read.
pub fn owner_of(path: &Path) -> Option<Owner> {
    fs::read_to_string(path).ok().and_then(|t| Owner::parse(&t))
}

/// Why a process no longer holds a run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this process lost its claim on '{dir}': {why}")]
pub struct Lost {
    pub dir: String,
    pub why: String,
}

impl From<Lost> for crate::errors::StudyError {
    fn from(lost: Lost) -> Self {
        crate::errors::StudyError::Lost(lost.to_string())
    }
}

/// A claim this process made, as the heartbeat and the signal handler see it.
#[derive(Debug)]
struct Held {
    path: PathBuf,
    lost: AtomicBool,
}

/// Every claim this process holds now (the heartbeat refreshes them; the signal handler
/// releases them).
static HELD: Mutex<Vec<Arc<Held>>> = Mutex::new(Vec::new());

/// Set (under [`HELD`]'s lock) when the signal handler released every claim: no claim is
/// made after that, so none is left behind by the exit that follows.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether `path` holds this process's claim and no higher generation exists.
fn verify(path: &Path, me: &Owner) -> std::result::Result<(), String> {
    match owner_of(path) {
        Some(o) if o.token == me.token => {}
        Some(o) => return Err(format!("its claim file now belongs to {o}")),
        None => return Err("its claim file was removed (taken over as stale)".into()),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mine = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(PREFIX))
        .and_then(|g| g.parse::<u64>().ok());
    let gens = generations(dir).map_err(|e| format!("cannot list its folder: {e}"))?;
    match gens.last() {
        Some((g, p)) if Some(*g) != mine => {
            let by = owner_of(p).map_or("another process".to_string(), |o| o.to_string());
            Err(format!("{by} took it over (claim generation {g})"))
        }
        _ => Ok(()),
    }
}

/// Removes a claim file if it is still this process's own.
fn release(path: &Path, me: &Owner) {
    if owner_of(path).is_some_and(|o| o.token == me.token) {
        let _ = fs::remove_file(path);
    }
}

/// Releases every claim this process holds (SIGINT or SIGTERM: the runs are not finished,
/// and another process may take them at once instead of waiting for a stale limit).
pub fn release_all_held() {
    let me = Owner::this_process();
    let held = {
        let mut h = HELD.lock().unwrap_or_else(|e| e.into_inner());
        STOPPING.store(true, Ordering::SeqCst);
        std::mem::take(&mut *h)
    };
    for h in held {
        release(&h.path, &me);
    }
}

/// A run this process holds. Dropping it releases the claim (after the run's DONE or
/// FAILED marker was written, or when the run was found settled).
#[derive(Debug)]
pub struct Claim {
    held: Arc<Held>,
    me: Owner,
}

impl Claim {
    /// The run's folder.
    pub fn dir(&self) -> &Path {
        self.held.path.parent().unwrap_or(Path::new("."))
    }

    /// `Ok` while this process still holds the run; what may be written or deleted of the
    /// run is decided here.
    pub fn check(&self) -> std::result::Result<(), Lost> {
        let lost = |why: String| Lost {
            dir: self.dir().display().to_string(),
            why,
        };
        if self.held.lost.load(Ordering::Relaxed) {
            return Err(lost("its heartbeat found it taken over".into()));
        }
        verify(&self.held.path, &self.me).map_err(|why| {
            self.held.lost.store(true, Ordering::Relaxed);
            lost(why)
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock() {
            held.retain(|h| !Arc::ptr_eq(h, &self.held));
        }
        release(&self.held.path, &self.me);
    }
}

/// The outcome of trying to claim a run.
#[derive(Debug)]
pub enum Claimed {
    Mine(Claim),
    /// Another live process holds it.
    Busy(Owner),
}

/// What this process saw of a claim file, and since when (its own monotonic clock).
struct Seen {
    fingerprint: (Option<SystemTime>, u64),
    since: Instant,
}

/// This process's claims on runs, with a background thread that refreshes the heartbeat of
/// every claim held (stopped when this is dropped).
pub struct Claims {
    me: Owner,
    stale_after: Duration,
    seen: Mutex<HashMap<PathBuf, Seen>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Claims {
    /// Claims with the standard limits ([`STALE_AFTER`], or `IONODE_CLAIM_STALE_SECS`).
    pub fn start() -> Claims {
        let stale_after = std::env::var(STALE_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .map_or(STALE_AFTER, Duration::from_secs);
        Claims::with_stale_after(stale_after)
    }

    /// Claims that judge a claim stale after `stale_after` without a heartbeat, and beat
    /// ten times as often.
    pub fn with_stale_after(stale_after: Duration) -> Claims {
        let interval = (stale_after / 10).min(HEARTBEAT);
        let stop: Arc<(Mutex<bool>, Condvar)> = Arc::default();
        let me = Owner::this_process();
        let thread = {
            let (stop, me) = (stop.clone(), me.clone());
            std::thread::Builder::new()
                .name("claim-heartbeat".into())
                .spawn(move || heartbeat(&stop, &me, interval))
                .ok()
        };
        Claims {
            me,
            stale_after,
            seen: Mutex::default(),
            stop,
            thread,
        }
    }

    /// Whether a claim file is stale, as far as this process has watched it.
    fn is_stale(&self, path: &Path, owner: Option<&Owner>) -> bool {
        if let Some(o) = owner {
            if o.token == self.me.token {
                return false;
            }
            if o.is_gone() {
                return true;
            }
        }
        let meta = fs::metadata(path).ok();
        let fingerprint = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map_or(0, |m| m.len()),
        );
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let entry = seen.entry(path.to_path_buf()).or_insert(Seen {
            fingerprint,
            since: now,
        });
        if entry.fingerprint != fingerprint {
            *entry = Seen {
                fingerprint,
                since: now,
            };
            return false;
        }
        let limit = if owner.is_some() {
            self.stale_after
        } else {
            HALF_WRITTEN_AFTER.min(self.stale_after)
        };
        now.duration_since(entry.since) >= limit
    }

    /// Claims the run in `dir` (see the module's rules).
    pub fn claim(&self, dir: &Path) -> Result<Claimed> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
        let mut busy = None;
        for _ in 0..8 {
            let gens =
                generations(dir).with_context(|| format!("cannot list '{}'", dir.display()))?;
            let next = match gens.last() {
                None => 0,
                Some((g, path)) => {
                    let owner = owner_of(path);
                    if !path.exists() {
                        continue;
                    }
                    if !self.is_stale(path, owner.as_ref()) {
                        return Ok(Claimed::Busy(owner.unwrap_or_else(Owner::unknown)));
                    }
                    busy = owner;
                    g + 1
                }
            };
            let path = dir.join(format!("{PREFIX}{next}"));
            // The file is created, written and registered under the registry's lock, so
            // the signal handler (which takes that lock) never sees a claim file that it
            // does not know of: an interrupt leaves no claim behind.
            let mut registry = HELD.lock().unwrap_or_else(|e| e.into_inner());
            if STOPPING.load(Ordering::SeqCst) {
                return Err(crate::failed!("interrupted: no new claim is made"));
            }
            let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create '{}'", path.display()))
                }
            };
            file.write_all(self.me.to_text().as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write '{}'", path.display()))?;
            let held = Arc::new(Held {
                path: path.clone(),
                lost: AtomicBool::new(false),
            });
            registry.push(held.clone());
            drop(registry);
            let claim = Claim {
                held,
                me: self.me.clone(),
            };
            if claim.check().is_err() {
                // A higher generation appeared meanwhile: that process holds the run.
                drop(claim);
                continue;
            }
            for (g, stale) in &gens {
                if *g < next {
                    tracing::info!(claim = %stale.display(), "took over a stale claim");
                    let _ = fs::remove_file(stale);
                }
            }
            return Ok(Claimed::Mine(claim));
        }
        Ok(Claimed::Busy(busy.unwrap_or_else(Owner::unknown)))
    }
}

/// Refreshes the mtime of every claim this process still holds; marks the ones it lost.
fn heartbeat(stop: &(Mutex<bool>, Condvar), me: &Owner, interval: Duration) {
    let (flag, wake) = stop;
    let Ok(mut stopped) = flag.lock() else { return };
    while !*stopped {
        let held: Vec<Arc<Held>> = HELD.lock().map(|h| h.clone()).unwrap_or_default();
        for h in held {
            if h.lost.load(Ordering::Relaxed) {
                continue;
            }
            if verify(&h.path, me).is_err() {
                h.lost.store(true, Ordering::Relaxed);
                continue;
            }
            if let Ok(f) = OpenOptions::new().write(true).open(&h.path) {
                let _ = f.set_modified(SystemTime::now());
            }
        }
        match wake.wait_timeout(stopped, interval) {
            Ok((guard, _)) => stopped = guard,
            Err(_) => return,
        }
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

    fn mine(claims: &Claims, dir: &Path) -> Option<Claim> {
        match claims.claim(dir).unwrap() {
            Claimed::Mine(c) => Some(c),
            Claimed::Busy(_) => None,
        }
    }

    /// The pid of a process of this host that has ended.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn other(host: &str, pid: u32) -> Owner {
        Owner {
            pid,
            host: host.into(),
            started: 7,
            token: format!("other-{host}-{pid}"),
        }
    }

    #[test]
    fn a_claim_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::start();
        let me = Owner::this_process();
        let c = mine(&claims, dir.path()).expect("first claim");
        assert!(c.check().is_ok());
        // The same live process asking again (another worker thread) is refused.
        assert!(matches!(claims.claim(dir.path()).unwrap(), Claimed::Busy(o) if o == me));
        let path = dir.path().join("CLAIM.0");
        assert_eq!(owner_of(&path), Some(me));
        drop(c);
        assert!(!path.exists());
        assert!(mine(&claims, dir.path()).is_some());
    }

    #[test]
    fn a_claim_of_a_dead_process_is_taken_over_with_the_next_generation() {
        let dir = tempfile::tempdir().unwrap();
        let dead = other(&process::hostname(), dead_pid());
        fs::write(dir.path().join("CLAIM.0"), dead.to_text()).unwrap();
        let claims = Claims::start();
        let c = mine(&claims, dir.path()).expect("taken over");
        assert!(c.dir().join("CLAIM.1").exists());
        assert!(
            !c.dir().join("CLAIM.0").exists(),
            "the stale claim is removed"
        );
        assert!(c.check().is_ok());
    }

    #[test]
    fn a_claim_of_another_host_is_stale_only_after_its_heartbeat_stops_for_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("CLAIM.0");
        fs::write(&path, other("some-other-node", 1).to_text()).unwrap();
        // Its mtime is an hour in the future (a clock ahead): nothing is compared to it.
        let ahead = SystemTime::now() + Duration::from_secs(3600);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(ahead)
            .unwrap();
        let claims = Claims::with_stale_after(Duration::from_millis(300));
        assert!(mine(&claims, dir.path()).is_none());
        // A heartbeat (the mtime moves) restarts the watch.
        std::thread::sleep(Duration::from_millis(200));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        assert!(mine(&claims, dir.path()).is_none());
        std::thread::sleep(Duration::from_millis(200));
        assert!(mine(&claims, dir.path()).is_none(), "0.2 s since the beat");
        std::thread::sleep(Duration::from_millis(200));
        assert!(mine(&claims, dir.path()).is_some(), "0.4 s without a beat");
    }

    #[test]
    fn a_process_that_lost_its_claim_knows_it_and_releases_nothing_of_the_taker() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::start();
        let c = mine(&claims, dir.path()).unwrap();
        // Another process takes it over (as after a long suspend): a higher generation.
        let taker = other("some-other-node", 9);
        let taken = dir.path().join("CLAIM.1");
        fs::write(&taken, taker.to_text()).unwrap();
        let e = c.check().unwrap_err();
        assert!(e.why.contains("pid 9 on some-other-node"), "{e}");
        assert!(c.check().is_err(), "lost stays lost");
        // The taker removed the old generation and another process reused its number.
        fs::remove_file(dir.path().join("CLAIM.0")).unwrap();
        fs::write(dir.path().join("CLAIM.0"), other("third", 3).to_text()).unwrap();
        drop(c);
        assert!(taken.exists() && dir.path().join("CLAIM.0").exists());
    }

    #[test]
    fn many_takers_of_one_stale_claim_give_exactly_one_holder() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let dead = other(&process::hostname(), dead_pid());
            fs::write(dir.path().join("CLAIM.0"), dead.to_text()).unwrap();
            let claims: Vec<Claims> = (0..6).map(|_| Claims::start()).collect();
            // Six observers in one process share a token, so each sees the others' claim
            // as its own process's: busy, never a second holder.
            let holders: Vec<Claim> = std::thread::scope(|s| {
                let handles: Vec<_> = claims
                    .iter()
                    .map(|c| s.spawn(|| mine(c, dir.path())))
                    .collect();
                handles
                    .into_iter()
                    .filter_map(|h| h.join().unwrap())
                    .collect()
            });
            assert_eq!(holders.len(), 1);
            assert!(holders[0].check().is_ok());
        }
    }

    #[test]
    fn held_claims_get_a_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let claims = Claims::with_stale_after(Duration::from_millis(200));
        let held = mine(&claims, dir.path()).unwrap();
        let path = dir.path().join("CLAIM.0");
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
            .unwrap_or_default();
        assert!(age < Duration::from_secs(60), "heartbeat age {age:?}");
        assert!(held.check().is_ok());
    }

    #[test]
    fn owners_round_trip_through_their_text() {
        let me = Owner::this_process();
        assert_eq!(Owner::parse(&me.to_text()), Some(me.clone()));
        assert!(me.started > 0, "this is Linux: /proc gives a start time");
        assert_eq!(Owner::parse("pid x\n"), None);
    }
}
