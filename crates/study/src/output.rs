//! Output files: written under a temporary name next to the target, then moved into place.
//! A reader (or a rerun after Ctrl-C) therefore sees either the old complete file or the
//! new complete file, never half of one; the run store relies on that.
//!
//! Rules every output follows (one place, so no command can forget one):
//! - An output only creates a new file or replaces a **regular file that is not one of the
//!   command's inputs** ([`crate::inputs`]). A FIFO, a
//!   device, a folder or a symbolic link at the output path is refused, so is the input.
//! - Every write gets its own temporary name, `NAME.<n>-<pid>@<host>.tmp`: two processes
//!   (or threads) writing one target each fill their own file and the last rename wins,
//!   and a later process can tell a file a dead writer left (same host, pid gone) from one
//!   a live writer is filling ([`remove_orphans`]).
//! - Temporary files and folders are registered while they exist, so an interrupted
//!   process removes them on its way out ([`remove_live_temporaries`], called by the
//!   signal handler).
//! - [`Commit::New`] never replaces anything: the run store's results go in that way, after
//!   the writer proved it still holds its claim, so a process that lost its claim cannot
//!   overwrite the result of the one that took it over.

use crate::errors::{Context, Result, StudyError};
use crate::process;
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Suffix of every temporary file ionode writes (`.gitignore` and clean-ups match it).
pub const TMP_SUFFIX: &str = ".tmp";

/// Temporary files and folders that exist now (removed by the signal handler).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn register(path: &Path) {
    if let Ok(mut live) = LIVE.lock() {
        live.push(path.to_path_buf());
    }
}

fn unregister(path: &Path) {
    if let Ok(mut live) = LIVE.lock() {
        if let Some(i) = live.iter().rposition(|p| p == path) {
            live.swap_remove(i);
        }
    }
}

/// Removes every temporary file and folder this process has open (on SIGINT or SIGTERM,
/// just before it exits).
pub fn remove_live_temporaries() {
    let live = match LIVE.lock() {
        Ok(mut live) => std::mem::take(&mut *live),
        Err(_) => return,
    };
    for p in live {
        if p.is_dir() {
            let _ = fs::remove_dir_all(&p);
        } else {
            let _ = fs::remove_file(&p);
        }
    }
}

/// `OUT.json` -> `OUT.json.<n>-<pid>@<host>.tmp`, unique to this process and call. The
/// temporary name is in the same folder, so the final rename never crosses a file system.
pub fn tmp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(
        ".{n}-{}@{}{TMP_SUFFIX}",
        std::process::id(),
        process::hostname()
    ));
    PathBuf::from(name)
}

/// The writer (pid, host) of a temporary file named by [`tmp_path`].
fn tmp_writer(name: &str) -> Option<(u32, &str)> {
    let stem = name.strip_suffix(TMP_SUFFIX)?;
    let (left, host) = stem.rsplit_once('@')?;
    let (_, n_pid) = left.rsplit_once('.')?;
    let (_, pid) = n_pid.split_once('-')?;
    Some((pid.parse().ok()?, host))
}

/// A temporary folder next to `path` (a report written whole, then swapped in), registered
/// for removal on interruption; [`finish_dir`] moves it into place.
pub fn tmp_dir(path: &Path) -> Result<PathBuf> {
    let tmp = tmp_path(path);
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create '{}'", tmp.display()))?;
    register(&tmp);
    Ok(tmp)
}

/// Replaces the folder `path` by the finished temporary folder `tmp` (from [`tmp_dir`]):
/// the old folder is renamed aside, the new one renamed in, the old one removed. A reader
/// sees the old folder or the new one, never a mix.
pub fn finish_dir(tmp: &Path, path: &Path) -> Result<()> {
    let aside = tmp_path(path);
    let had_old = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            register(&aside);
            fs::rename(path, &aside)
                .with_context(|| format!("cannot move '{}' aside to replace it", path.display()))?;
            true
        }
        Ok(_) => {
            return Err(crate::usage!(
                "'{}' exists and is not a folder; refusing to replace it",
                path.display()
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot inspect '{}'", path.display())),
    };
    fs::rename(tmp, path)
        .with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), path.display()))?;
    unregister(tmp);
    if had_old {
        let _ = fs::remove_dir_all(&aside);
        unregister(&aside);
    }
    Ok(())
}

/// Refuses an output path that is not a new file or a regular file that is no input of
/// this command.
pub fn check_target(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect '{}'", path.display())),
    };
    let kind = meta.file_type();
    let what = if kind.is_dir() {
        "a folder"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if !kind.is_file() {
        "not a regular file (a FIFO, socket or device)"
    } else if crate::inputs::is_input(&meta) {
        "one of this command's inputs"
    } else {
        return Ok(());
    };
    Err(crate::usage!(
        "output '{}' is {what}; an output may only create a file or replace a regular file \
         that is not an input",
        path.display()
    ))
}

/// How a finished temporary file takes its place.
pub enum Commit<'a> {
    /// Renamed over the target (which must pass [`check_target`]).
    Replace,
    /// Linked to the target only if `allowed` still holds and nothing is there; an existing
    /// target is an error. For results that must never replace another writer's.
    New { allowed: &'a dyn Fn() -> Result<()> },
}

/// Creates the parent folder, lets `write` fill the temporary file, then renames it to
/// `path`. On failure the temporary file is removed and `path` is left untouched. `write`
/// may fail with the caller's own error type.
pub fn write_atomically<E: From<StudyError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    write_with(path, Commit::Replace, write)
}

/// [`write_atomically`] with the given [`Commit`].
pub fn write_with<E: From<StudyError>>(
    path: &Path,
    commit: Commit<'_>,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    check_target(path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create output folder '{}'", parent.display()))?;
    }
    let tmp = tmp_path(path);
    register(&tmp);
    let result = write(&tmp).and_then(|()| {
        match commit {
            Commit::Replace => {
                // Checked again: the target may have appeared since (another command's
                // input is not at risk, but a FIFO made meanwhile would be replaced).
                check_target(path)?;
                fs::rename(&tmp, path).with_context(|| {
                    format!("cannot rename '{}' to '{}'", tmp.display(), path.display())
                })?;
            }
            Commit::New { allowed } => {
                allowed()?;
                link_new(&tmp, path)?;
            }
        }
        Ok(())
    });
    let _ = fs::remove_file(&tmp);
    unregister(&tmp);
    result
}

/// `path` made a second name of `tmp`, failing if `path` exists (a hard link is atomic and
/// never replaces, on local and network file systems alike). Where the file system has no
/// hard links, an exclusive create and copy stands in.
fn link_new(tmp: &Path, path: &Path) -> Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(crate::failed!(
            "'{}' was written by another process meanwhile",
            path.display()
        )),
        // No hard links on this file system (FAT, some FUSE mounts).
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM | libc::EOPNOTSUPP | libc::EMLINK)
            ) =>
        {
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("cannot create '{}'", path.display()))?;
            let mut input =
                fs::File::open(tmp).with_context(|| format!("cannot read '{}'", tmp.display()))?;
            std::io::copy(&mut input, &mut out)
                .and_then(|_| out.sync_all())
                .with_context(|| format!("cannot write '{}'", path.display()))
        }
        Err(e) => Err(e)
            .with_context(|| format!("cannot link '{}' to '{}'", tmp.display(), path.display())),
    }
}

/// Writes text atomically unless the same text is there already: a decision or result
/// that several processes make alike is written once, and one that changed replaces the old.
pub fn write_text_unless_same(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    write_text(path, text)
}

/// Writes text atomically as a new file: `false` (and nothing written) when `path` is
/// there already, say written by another process meanwhile.
pub fn write_text_new(path: &Path, text: &str) -> Result<bool> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(false);
    }
    let result = write_with(
        path,
        Commit::New {
            allowed: &|| Ok(()),
        },
        |tmp| fs::write(tmp, text).with_context(|| format!("cannot write '{}'", tmp.display())),
    );
    match result {
        Ok(()) => Ok(true),
        Err(_) if fs::symlink_metadata(path).is_ok() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |tmp| {
        fs::write(tmp, text).with_context(|| format!("cannot write '{}'", tmp.display()))
    })
}

/// Removes the temporary files in `dir` (not recursive) whose writer is known to be dead: a
/// process of this host that is gone. Files of live writers and of other hosts stay.
pub fn remove_orphans(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((pid, host)) = name.to_str().and_then(tmp_writer) else {
            continue;
        };
        if process::is_gone(host, pid, 0) {
            let p = entry.path();
            let gone = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            removed += usize::from(gone.is_ok());
        }
    }
    removed
}

/// Removes every temporary file in `dir` (not recursive), whoever wrote it. Only call it
/// where no other process may write: a run folder whose claim this process holds.
pub fn remove_leftover_tmp(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_has_its_own_temporary_name_in_the_target_folder() {
        let target = Path::new("/x/y/run.h5");
        let (a, b) = (tmp_path(target), tmp_path(target));
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.parent(), target.parent());
            let name = t.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("run.h5.") && name.ends_with(TMP_SUFFIX),
                "{name}"
            );
            let host = process::hostname();
            assert_eq!(tmp_writer(&name), Some((std::process::id(), host.as_str())));
        }
        assert_eq!(tmp_writer("run.h5"), None);
        assert_eq!(
            tmp_writer("a.b.3-17@node-1.example.org.tmp"),
            Some((17, "node-1.example.org"))
        );
    }

    #[test]
    fn concurrent_writers_of_one_file_never_fail_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("plan.json");
        std::thread::scope(|s| {
            for k in 0..8 {
                let target = &target;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_text(target, &format!("writer {k}\n")).unwrap();
                    }
                });
            }
        });
        let text = fs::read_to_string(&target).unwrap();
        assert!(text.starts_with("writer "), "{text}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("plan.json")]);
        assert!(LIVE
            .lock()
            .unwrap()
            .iter()
            .all(|p| !p.starts_with(dir.path())));
    }

    #[test]
    fn only_new_files_and_regular_non_inputs_are_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_text(&d.join("new.txt"), "a").unwrap();
        write_text(&d.join("new.txt"), "b").unwrap();
        assert_eq!(fs::read_to_string(d.join("new.txt")).unwrap(), "b");
        let fifo = d.join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        std::os::unix::fs::symlink(d.join("new.txt"), d.join("link")).unwrap();
        let input = d.join("input.csv");
        fs::write(&input, "x\n").unwrap();
        crate::limits::read_text(&input, 100).unwrap();
        for (path, what) in [
            (fifo.clone(), "not a regular file"),
            (PathBuf::from("/dev/full"), "not a regular file"),
            (d.to_path_buf(), "a folder"),
            (d.join("link"), "a symbolic link"),
            (input.clone(), "one of this command's inputs"),
        ] {
            let e = format!("{:#}", write_text(&path, "x").unwrap_err());
            assert!(e.contains(what), "{}: {e}", path.display());
        }
        assert_eq!(fs::read_to_string(&input).unwrap(), "x\n");
        assert!(fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo_like());
    }

    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for fs::FileType {
        fn is_fifo_like(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_fifo()
        }
    }

    #[test]
    fn a_new_commit_never_replaces_and_asks_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.h5");
        let fill = |t: &Path| fs::write(t, "1").map_err(StudyError::from);
        let yes = || Ok(());
        write_with(&path, Commit::New { allowed: &yes }, fill).unwrap();
        let e = write_with(&path, Commit::New { allowed: &yes }, fill).unwrap_err();
        assert!(e.to_string().contains("another process"), "{e}");
        let no = || Err(crate::failed!("claim lost"));
        let other = dir.path().join("other.h5");
        let e = write_with(&other, Commit::New { allowed: &no }, fill).unwrap_err();
        assert!(e.to_string().contains("claim lost"), "{e}");
        assert!(!other.exists());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn orphans_of_dead_writers_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let host = process::hostname();
        let me = std::process::id();
        let names = [
            format!("plan.json.0-{dead}@{host}.tmp"),
            format!("plan.json.1-{me}@{host}.tmp"),
            format!("plan.json.2-{dead}@another-host.tmp"),
            "plan.json".to_string(),
        ];
        for n in &names {
            fs::write(dir.path().join(n), "x").unwrap();
        }
        assert_eq!(remove_orphans(dir.path()), 1);
        assert!(!dir.path().join(&names[0]).exists());
        for n in &names[1..] {
            assert!(dir.path().join(n).exists(), "{n}");
        }
    }

    #[test]
    fn a_folder_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report");
        fs::create_dir_all(report.join("old")).unwrap();
        let tmp = tmp_dir(&report).unwrap();
        fs::write(tmp.join("index.html"), "new").unwrap();
        finish_dir(&tmp, &report).unwrap();
        assert!(report.join("index.html").exists() && !report.join("old").exists());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }
}
