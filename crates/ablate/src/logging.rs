//! Logging to stderr through `tracing`, so that stdout stays clean for tables and JSON.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Starts the subscriber. An explicit `-v`/`-vv` wins over `RUST_LOG` (the flag is the more
/// deliberate choice); without either only warnings are shown, so a normal run prints
/// nothing but its result and one summary line.
pub fn init(verbose: u8) {
    let filter = match verbose {
        0 => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        // `ablate` is the binary, `ionode_ablate` the library where the commands live, and
        // `ionode_study` and `ionode_report` the libraries they call.
        1 => EnvFilter::new(
            "warn,ablate=info,ionode_ablate=info,ionode_study=info,ionode_report=info,\
             ionode_physics=info",
        ),
        _ => EnvFilter::new(
            "info,ablate=debug,ionode_ablate=debug,ionode_study=debug,ionode_report=debug,\
             ionode_physics=debug",
        ),
    };
    // A second init (never happens in the binary) would fail; ignoring it is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour escapes in redirected logs (CI, Slurm output files).
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
