//! `ablate simulate`: a DSPM-DE pre-training dataset (random electroneutral feeds x a flux
//! grid) written to HDF5.
//!
//! The physics guarantees the arrays are a pure function of the configuration and the
//! seed, whatever the thread count; this command adds the file: every array, the failures
//! (a failed point is listed, never silently dropped) and enough provenance in the root
//! attributes (the full generator config as JSON, membrane values, git commit) to
//! regenerate or audit the data without the command line that made it.

use crate::cli::SimulateArgs;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_study::ions;
use std::path::Path;
use std::time::Instant;

fn progress_bar(samples: usize) -> ProgressBar {
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(samples as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} simulate [{elapsed_precise}] [{bar:40}] {pos}/{len} samples ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub fn run(args: &SimulateArgs) -> Result<()> {
    let db = ions::load(args.ions.as_deref())?;
    let start = Instant::now();
    let bar = progress_bar(args.spec.samples);
    let tick = || bar.inc(1);
    let (config, data) = args
        .spec
        .generate(Path::new(""), &db, args.threads, &args.out, &tick)?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let points = data.status.len();
    let failed = data.failures.len();
    tracing::info!(
        samples = config.samples,
        points,
        failed,
        seconds,
        points_per_s = points as f64 / seconds,
        "simulation finished"
    );
    eprintln!(
        "simulated {} samples x {} fluxes = {points} points, {failed} failed, in {seconds:.2} s ({:.0} points/s); wrote {}",
        config.samples,
        data.fluxes_m_s.len(),
        points as f64 / seconds.max(1e-9),
        args.out.display()
    );
    Ok(())
}
