//! `ablate simulate`: a DSPM-DE pre-training dataset (random electroneutral feeds x a flux
//! grid) written to HDF5.
//!
//! The physics guarantees the arrays are a pure function of the configuration and the
//! seed, whatever the thread count; this command adds the file: every array, the failures
//! (a failed point is listed, never silently dropped) and enough provenance in the root
//! attributes (the full generator config as JSON, membrane values, git commit) to
//! regenerate or audit the data without the command line that made it.

use crate::cli::SimulateArgs;
use crate::ions;
use crate::limits::MAX_JOBS;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_physics::simulate::simulate;
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
    let config = args.spec.to_config(std::path::Path::new(""), &db)?;
    let cfg_json = args.spec.config_json(&config);
    tracing::info!("config: {cfg_json}");
    let start = Instant::now();
    let bar = progress_bar(config.samples);
    let tick = || bar.inc(1);
    let data = match args.threads {
        Some(n) if !(1..=MAX_JOBS).contains(&n) => {
            return Err(crate::usage!(
                "--threads {n}: expected 1..={MAX_JOBS} threads"
            ))
        }
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start {n} worker threads: {e}"))?
            .install(|| simulate(&config, &tick)),
        None => simulate(&config, &tick),
    }?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    crate::simfile::write(&args.out, &data, &config, &cfg_json)?;
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
