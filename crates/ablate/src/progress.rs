//! Progress on stderr: a bar on a terminal; elsewhere (a log file, Slurm, CI), where a
//! bar would be hidden, plain lines.

use std::io::IsTerminal;

/// Whether progress should be printed as plain lines: stderr is not a terminal and `-v`
/// does not already log the same events.
pub fn plain_lines() -> bool {
    !std::io::stderr().is_terminal() && !tracing::enabled!(tracing::Level::INFO)
}

/// Seconds as `h:mm:ss`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_hours_minutes_seconds() {
        assert_eq!(clock(0.4), "0:00:00");
        assert_eq!(clock(59.6), "0:01:00");
        assert_eq!(clock(3725.0), "1:02:05");
        assert_eq!(clock(-3.0), "0:00:00");
    }
}
