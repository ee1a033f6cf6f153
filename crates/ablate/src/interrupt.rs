//! What `ablate` does when it is asked to stop (SIGINT from Ctrl-C, SIGTERM from Slurm's
//! `scancel` or a requeue, SIGHUP from a closed terminal): it releases the claims it holds
//! (so another process can take those runs at once, instead of waiting out the stale
//! limit), removes its temporary files and folders (a half-written report is never left
//! beside the last complete one), and exits with 128 + the signal's number, as a shell
//! reports a process killed by it. Finished runs are untouched: they were committed whole.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Starts the thread that waits for the signals. Call it once, first thing in `main`.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        tracing::warn!("cannot install signal handlers; an interrupted run may leave claims");
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                ionode_study::store::on_interrupt();
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                eprintln!(
                    "\ninterrupted ({name}): claims released, temporary files removed; \
                     finished runs are kept and rerunning resumes"
                );
                // `_exit`: no atexit handlers, which could run while a worker thread is
                // inside the HDF5 library.
                // SAFETY: `_exit` only ends the process; nothing is read or written after.
                unsafe { libc::_exit(128 + signal) }
            }
        });
    if spawned.is_err() {
        tracing::warn!("cannot start the signal thread; an interrupted run may leave claims");
    }
}
