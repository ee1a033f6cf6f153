//! An ensemble run (`[ensemble]`): N members of one config, each a whole run (nested
//! validation included) from its own seeds and, with `bootstrap`, on its own resample of
//! the training rows; then one outcome from their mean, with intervals
//! (`crate::ensemble`).
//!
//! Member 0 is the run without `[ensemble]`: its seed, every training row. Member m > 0
//! derives its seed and its calibration seed from the run's and, with `bootstrap`, trains
//! on its own resample of the training rows. Every member uses the run's split (only the rows its model trains
//! on are resampled; nested validation's inner runs are not), so all of them are scored on
//! the same validation and test rows, and every validation row has every member's value. Members
//! run in parallel on the run's threads (each single-threaded inside); their results are
//! combined in member order, so the bits do not depend on the thread count.

use super::{one_model, Artefact, Domain, Model1, Parts, Predictions, RunConfig, RunOutcome};
use super::{EpochReport, Part, SharedPretraining, Split, TrainError};
use super::{Metrics, RunInputs, SplitMetrics, Timings};
use crate::data::Samples;
use crate::ensemble::{coverage, Bounds, EnsembleConfig, IntervalFit, IntervalMethod, Spread};
use ionode_random::{stream_seed, Rng};
use ndarray::Array2;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

/// Salt of the members' seeds.
const MEMBER_STREAM_SALT: u64 = 0x6d65_6d62_6572_7321;
/// Salt of the bootstrap resamples.
const BOOTSTRAP_STREAM_SALT: u64 = 0x626f_6f74_7374_7270;

/// The seed of member `m` of a run seeded with `seed` (member 0: the run's own).
pub fn member_seed(seed: u64, m: usize) -> u64 {
    if m == 0 {
        seed
    } else {
        stream_seed(seed ^ MEMBER_STREAM_SALT, m as u64)
    }
}

/// Member `m`'s config: no ensemble, and (m > 0) its own calibration starts.
fn member_config(config: &RunConfig, m: usize) -> RunConfig {
    let mut c = config.clone();
    c.ensemble = None;
    c.calibration.seed = member_seed(config.calibration.seed, m);
    c
}

/// The training rows of `split` resampled with replacement (as many as there were,
/// sorted) from member `m`'s bootstrap stream.
fn bootstrap(split: &Split, seed: u64, m: usize) -> Vec<usize> {
    let mut rng = Rng::new(stream_seed(member_seed(seed, m) ^ BOOTSTRAP_STREAM_SALT, 0));
    let n = split.train.len();
    let mut train: Vec<usize> = (0..n)
        .map(|_| split.train[rng.int_inclusive(0, n - 1)])
        .collect();
    train.sort_unstable();
    train
}

/// Trains every member, `threads` at a time; results in member order.
fn train_members(
    config: &RunConfig,
    ensemble: &EnsembleConfig,
    seed: u64,
    inputs: RunInputs,
    parts: &Parts,
    shared: &SharedPretraining,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Vec<Model1>, TrainError> {
    let n = ensemble.members;
    let one = |m: usize, inputs: RunInputs, on_epoch: &mut dyn FnMut(&EpochReport)| {
        let mut p = parts.clone();
        // Member 0 is the run itself, on every training row (its model and membrane are
        // what a single run would ship); the others resample.
        if ensemble.bootstrap && m > 0 {
            p.resampled_train = p.split.as_ref().map(|s| bootstrap(s, seed, m));
        }
        let c = member_config(config, m);
        one_model(&c, member_seed(seed, m), inputs, &p, shared, on_epoch)
    };
    let workers = inputs.threads.clamp(1, n);
    if workers == 1 {
        return (0..n).map(|m| one(m, inputs, on_epoch)).collect();
    }
    // Each member single-threaded, `workers` of them at once; epochs reach `on_epoch` on
    // this thread.
    let single = RunInputs {
        threads: 1,
        ..inputs
    };
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<Model1, TrainError>>>> =
        Mutex::new((0..n).map(|_| None).collect());
    let (tx, rx) = mpsc::channel::<EpochReport>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, done, one) = (&next, &done, &one);
            scope.spawn(move || loop {
                let m = next.fetch_add(1, Ordering::Relaxed);
                if m >= n {
                    break;
                }
                let mut forward = |e: &EpochReport| {
                    // The receiver outlives every worker.
                    let _ = tx.send(e.clone());
                };
                let r = one(m, single, &mut forward);
                done.lock().unwrap_or_else(|e| e.into_inner())[m] = Some(r);
            });
        }
        drop(tx);
        for e in rx {
            on_epoch(&e);
        }
    });
    done.into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every member ran"))
        .collect()
}

/// Attaches coverage and mean width to the metrics of some rows.
fn with_coverage(m: &mut Option<Metrics>, samples: &Samples, rows: &[usize], bounds: &Bounds) {
    if let (Some(m), Some((c, w, _))) = (m.as_mut(), coverage(samples, rows, bounds)) {
        m.coverage = Some(c);
        m.interval_width = Some(w);
    }
}

/// Runs an ensemble and combines its members into one outcome: metrics of the members'
/// mean on the measured data (with coverage and width of the intervals per part; the
/// pre-training metrics are member 0's), the test predictions of the mean with intervals,
/// member 0's curves and attention, every member's artefact, the union of their domains,
/// and the members' summed stage times.
pub(super) fn run(
    config: &RunConfig,
    ensemble: &EnsembleConfig,
    seed: u64,
    inputs: RunInputs,
    parts: &Parts,
    shared: &SharedPretraining,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<RunOutcome, TrainError> {
    let (Some(samples), Some(split)) = (parts.measured, parts.split.as_ref()) else {
        return Err(TrainError::invalid(
            "ensemble",
            "no measured data",
            "measured data and a [split] to score the intervals on",
        ));
    };
    let members = train_members(config, ensemble, seed, inputs, parts, shared, on_epoch)?;
    let predicted: Vec<Array2<f64>> = members
        .iter()
        .map(|m| {
            m.predicted
                .clone()
                .expect("a run with measured data predicts it")
        })
        .collect();
    let spread = Spread::of(&predicted, samples)?;
    let mean = spread.mean_permeate(samples);

    // Validation: each member's predictions of the validation rows (out-of-family ones for
    // nested validation), on the rows every member has a value for.
    let validation: Vec<&(Vec<usize>, Array2<f64>)> = members
        .iter()
        .filter_map(|m| m.validation.as_ref())
        .collect();
    let nested = members[0].nested;
    let (v_spread, v_rows) = match validation.first() {
        Some((rows, _)) if validation.len() == members.len() => {
            let vs: Vec<Array2<f64>> = validation.iter().map(|v| v.1.clone()).collect();
            let s = Spread::of(&vs, samples)?;
            let rows: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|&r| s.mean.row(r).iter().all(|x| x.is_finite()))
                .collect();
            (s, rows)
        }
        _ => (spread.clone(), Vec::new()),
    };
    let fit = match ensemble.interval {
        IntervalMethod::Conformal => {
            IntervalFit::conformal(ensemble.level, &v_spread, samples, &v_rows)
        }
        IntervalMethod::Spread => None,
    }
    .unwrap_or_else(|| IntervalFit::spread(ensemble.level, members.len()));
    let bounds = fit.bounds(&spread, samples);

    let mut measured = SplitMetrics::compute(samples, split, mean.view())?;
    let v_bounds = fit.bounds(&v_spread, samples);
    if nested && !v_rows.is_empty() {
        let v_mean = v_spread.mean_permeate(samples);
        measured.validation = Some(Metrics::of(
            &samples.subset(&v_rows),
            v_mean.select(ndarray::Axis(0), &v_rows).view(),
        )?);
    }
    with_coverage(&mut measured.train, samples, &split.train, &bounds);
    with_coverage(&mut measured.validation, samples, &v_rows, &v_bounds);
    with_coverage(&mut measured.test, samples, &split.test, &bounds);

    let first = &members[0].outcome;
    let mut metrics = first.metrics.clone();
    metrics.measured = Some(measured);
    let predictions =
        Predictions::of(samples, &split.test, &mean, Part::Test).with_bounds(samples, &bounds);
    let sum = |f: fn(&Timings) -> f64| members.iter().map(|m| f(&m.outcome.timings)).sum();
    let timings = Timings {
        total: 0.0,
        pretrain: sum(|t| t.pretrain),
        finetune: sum(|t| t.finetune),
    };
    let domain = members
        .iter()
        .fold(None, |d, m| Domain::join(d, m.outcome.domain.clone()));
    let synthetic = first.synthetic;
    let (curves, attention) = (first.curves.clone(), first.attention.clone());
    let artefacts = members.into_iter().map(|m| m.outcome.artefact).collect();
    Ok(RunOutcome {
        metrics,
        predictions,
        curves,
        attention,
        artefact: Artefact::Ensemble {
            members: artefacts,
            interval: fit,
        },
        synthetic,
        domain,
        timings,
    })
}
