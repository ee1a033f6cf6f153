//! This process as other processes see it: the host name, the pid and the process's start
//! time, and whether a process named that way still lives. Claims and temporary file names
//! carry these, so a process can tell a file left by a dead writer (safe to remove or take
//! over) from one a live writer is still using.

use std::fs;
use std::path::Path;

/// The host name (for claims, temporary names and provenance).
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            // Kept to the characters host names use, so a name built from it parses back.
            h.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Field 22 of `/proc/PID/stat` (the start time in clock ticks since boot), or `None` if
/// there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` of `host` (started at `started`, 0 when unknown) is known to
/// be gone. Only processes of this host can be asked (through `/proc`); of another host
/// nothing is known, so the answer is `false`.
pub fn is_gone(host: &str, pid: u32, started: u64) -> bool {
    if host != hostname() || !Path::new("/proc/self/stat").exists() {
        return false;
    }
    match start_time(pid) {
        None => true,
        // The pid lives but is another process now (reused).
        Some(now) => started != 0 && now != started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_child_is_gone_and_this_process_is_not() {
        let me = std::process::id();
        let started = start_time(me).unwrap();
        assert!(!is_gone(&hostname(), me, started));
        assert!(!is_gone(&hostname(), me, 0));
        // The same pid with another start time: reused, so gone.
        assert!(is_gone(&hostname(), me, started + 1));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(is_gone(&hostname(), pid, 0));
        // Of another host nothing is known.
        assert!(!is_gone("some-other-node", pid, 0));
    }
}
