//! The study commands: `ablate check`, `plan`, `run`, `status` and `slurm`.
//!
//! A study's results live in `RESULTS/<study>/`: `plan.json` (the resolved runs, written
//! once), `data/` (generated pre-training sets, named by the hash of their generator) and
//! `runs/<run-id>/` with `run.h5` and a `DONE` or `FAILED` marker. A run is DONE only
//! after its `run.h5` has been renamed into place, so a killed sweep leaves at worst a
//! `run.h5.tmp` that the rerun overwrites; rerunning skips DONE runs and loses nothing.
//! Runs are independent (each is a pure function of its config and seed), so `--jobs`
//! and `--shard` change where and when a run executes, never its result.

use crate::cli::{CheckArgs, PlanArgs, RunArgs, SlurmArgs, StatusArgs};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ionode_study::limits::{MAX_JOBS, MAX_SHARDS};
use ionode_study::manifest::{self, Manifest, Plan, PlannedRun, STUDY_PREFIX};
use ionode_study::record::{self, Provenance};
use ionode_study::runner::{execute, DataCache};
use ionode_study::{output, store};
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Loads a manifest; problems are printed one per line, then one summary error.
fn load(file: &Path, set: &[String]) -> Result<Manifest> {
    manifest::load(file, set).map_err(|p| super::problems("manifest", file, p))
}

fn plan_text(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("plans serialise") + "\n"
}

/// Writes `plan.json` unless the same plan is there; a different one needs `force`. The
/// same manifest named by another path (`./x.toml`, an absolute path, a symbolic link) is
/// the same plan: only the runs, the data generator and the search are compared.
fn write_plan(plan: &Plan, study_dir: &Path, force: bool) -> Result<()> {
    let path = study_dir.join("plan.json");
    let text = plan_text(plan);
    if path.exists() {
        let same = match Plan::read(study_dir) {
            Ok(old) => {
                let named_as_now = Plan {
                    manifest: plan.manifest.clone(),
                    ..old
                };
                named_as_now == *plan
            }
            // An empty or unreadable plan says so (and how to write it again).
            Err(e) if !force => return Err(e),
            Err(_) => false,
        };
        if same {
            return Ok(());
        }
        if !force {
            return Err(ionode_study::usage!(
                "'{}' holds a different plan for study '{}' (the manifest or the program changed); \
                 rerun `ablate plan {} --force` to replace it (finished runs whose id is unchanged are kept)",
                path.display(),
                plan.study,
                plan.manifest
            ));
        }
    }
    output::write_text(&path, &text)
}

pub fn check(args: &CheckArgs) -> Result<()> {
    let m = load(&args.file, &args.set)?;
    let methods: std::collections::BTreeSet<&str> = m
        .plan
        .runs
        .iter()
        .map(|r| record::method_name(r.config.method))
        .collect();
    let n = m.plan.runs.len();
    let mut out = format!(
        "{}: study '{}' is valid: {n} run{} ({})\n",
        args.file.display(),
        m.study,
        if n == 1 { "" } else { "s" },
        methods.into_iter().collect::<Vec<_>>().join(", ")
    );
    if let Some(s) = &m.plan.search {
        // The most runs the search can start: at each rung, the promoted candidates with
        // the most runs no earlier rung ran (a method the budget does not change reuses
        // its run at every rung), never more than the plan holds.
        let mut active = s.candidates.len();
        let (mut most, mut spent) = (0, 0.0);
        for (rung, budget) in s.budgets.iter().enumerate() {
            let mut new: Vec<usize> = s
                .candidates
                .iter()
                .map(|c| {
                    let earlier = &c.runs[..rung];
                    c.runs[rung]
                        .iter()
                        .filter(|i| !earlier.iter().any(|r| r.contains(i)))
                        .count()
                })
                .collect();
            new.sort_unstable_by(|a, b| b.cmp(a));
            let added: usize = new.iter().take(active).sum();
            most += added;
            spent += added as f64 * budget.value();
            if rung + 1 < s.budgets.len() {
                active = ionode_study::manifest::search::promoted_count(active, s.spec.eta);
            }
        }
        let most = most.min(n);
        let last = s.budgets.len() - 1;
        let full: std::collections::BTreeSet<usize> = s
            .candidates
            .iter()
            .flat_map(|c| c.runs[last].iter().copied())
            .collect();
        let budgets: Vec<String> = s.budgets.iter().map(|b| b.to_string()).collect();
        out.push_str(&format!(
            "successive halving: {} candidates, {} rungs ({} = {}), eta = {}, by {}: at most {most} runs \
             (total {} {spent}), against {} runs of the full grid at {} = {} (total {})\n",
            s.candidates.len(),
            s.budgets.len(),
            s.spec.budget,
            budgets.join(", "),
            s.spec.eta,
            s.spec.metric,
            s.spec.budget,
            full.len(),
            s.spec.budget,
            s.budgets[last],
            full.len() as f64 * s.budgets[last].value()
        ));
    }
    super::print_stdout(&out)
}

pub fn plan(args: &PlanArgs) -> Result<()> {
    let m = load(&args.file, &args.set)?;
    let study_dir = args.results.join(&m.study);
    write_plan(&m.plan, &study_dir, args.force)?;
    let mut out = String::from("index\trun_id\tmethod\taxes\n");
    for r in &m.plan.runs {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            r.index,
            r.id,
            record::method_name(r.config.method),
            manifest::axes_summary(r)
        ));
    }
    super::print_stdout(&out)?;
    eprintln!(
        "{} runs; wrote {}",
        m.plan.runs.len(),
        study_dir.join("plan.json").display()
    );
    Ok(())
}

/// `I/N` -> (I, N).
fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| {
        let (i, n) = (
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        );
        ((1..=MAX_SHARDS).contains(&n) && i < n).then_some((i, n))
    });
    parsed.ok_or_else(|| {
        ionode_study::usage!(
            "--shard '{s}': expected I/N with 0 <= I < N <= {MAX_SHARDS}, e.g. 0/4"
        )
    })
}

/// Generates the manifest's pre-training set (as `ablate simulate` would) unless a whole
/// one is there ([`ionode_study::simulator::SimulatorSpec::ensure`]).
fn ensure_pretrain(m: &Manifest, study_dir: &Path, threads: usize) -> Result<()> {
    let Some(spec) = &m.plan.pretrain_generator else {
        return Ok(());
    };
    let db = ionode_physics::IonDb::builtin();
    let config = spec
        .to_config(&m.dir(), &db)
        .context("the generator of [datasets.pretrain]")?;
    let path = study_dir.join("data").join(spec.file_name(&config));
    spec.ensure(
        &m.dir(),
        &db,
        Some(threads),
        &path,
        "[datasets.pretrain]",
        &|m| eprintln!("{m}"),
    )
}

/// Why a run did not finish.
enum Unfinished {
    /// The run failed by itself (the training diverged, the physics has no solution, a
    /// panic): marked FAILED, rerun only with `--retry-failed`.
    Failed(String),
    /// A cause outside the run (no space left, an I/O error, a missing or damaged input):
    /// no marker is written, so the next `ablate run` retries it.
    Outside(String),
    /// This process lost its claim while it ran (suspended past the stale limit, say); the
    /// process that took the run over writes its result.
    Lost(String),
}

/// Whether an error of executing a run is the run's own (a typed failure of the numerical
/// crates) rather than a cause outside it (files, the machine).
fn is_run_failure(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<ionode_train::error::TrainError>()
            || c.is::<ionode_model::ModelError>()
            || c.is::<ionode_physics::PhysicsError>()
    })
}

/// Executes one planned run and puts its `run.h5` and `DONE` in place while `claim` still
/// holds it; the config's paths are made real here (the plan keeps them as the manifest
/// wrote them, so run ids do not depend on where a sweep is started). Returns the run's
/// seconds.
#[allow(clippy::too_many_arguments)]
fn run_one(
    m: &Manifest,
    study_dir: &Path,
    process: &Provenance,
    run: &PlannedRun,
    cache: &DataCache,
    threads: usize,
    claim: &store::Claim,
) -> std::result::Result<f64, Unfinished> {
    let manifest_dir = m.dir();
    let mut names = Vec::new();
    let config = run.config.with_data_files(|p: &PathBuf| {
        let r = manifest::resolve_path(p, &manifest_dir, study_dir);
        names.push((r.display().to_string(), p.display().to_string()));
        r
    });
    let executed = execute(&config, config.seed, threads, cache, &mut |_| {}).map_err(|e| {
        let text = super::one_line(&e);
        if is_run_failure(&e) {
            Unfinished::Failed(text)
        } else {
            Unfinished::Outside(text)
        }
    })?;
    // Inputs are named as in the plan (stable), not by where this process found them.
    let inputs = executed
        .inputs
        .into_iter()
        .map(|(k, v)| {
            let name = names
                .iter()
                .find(|(r, _)| *r == k)
                .map_or(k.clone(), |(_, n)| n.clone());
            (name, v)
        })
        .collect();
    let head = record::Head {
        provenance: process.of_run(&run.id, Some(run.index as u64)),
        config: run.config.clone().into_inner(),
        axes: run.axes.clone().into_iter().collect(),
        inputs,
    };
    let o = &executed.outcome;
    let source = format!("study {}, run {}", m.plan.study, run.id);
    let membrane = ionode_study::membrane::calibrated(&o.artefact, &source).map(|f| f.to_toml());
    let seconds = o.timings.total;
    store::finish(claim, &run.id, seconds, |path, commit| {
        record::write(path, &head, o, membrane.as_deref(), commit)
    })
    .map_err(|e| match claim.check() {
        Err(lost) => Unfinished::Lost(lost.to_string()),
        Ok(()) => Unfinished::Outside(super::one_line(&e)),
    })?;
    Ok(seconds)
}

/// What became of one attempt at a run.
enum Attempt {
    /// This process ran it: its seconds, or why it did not finish.
    Ran(std::result::Result<f64, Unfinished>),
    /// Another live process holds its claim.
    Busy(store::Owner),
    /// Another process finished it (DONE or FAILED) since the study was scanned.
    Settled,
    /// Not tried: an earlier run could not finish for a cause outside it (a full disk
    /// would fail every run the same way).
    Skipped,
}

/// Counts and prints the runs as they finish. On a terminal that is the progress bar;
/// elsewhere (a Slurm log, CI, a file) one line per finished run, since a hidden bar would
/// leave the log silent for hours.
struct Progress {
    bar: ProgressBar,
    plain: bool,
    total: usize,
    started: std::time::Instant,
    done: AtomicUsize,
    failed: AtomicUsize,
    elsewhere: AtomicUsize,
    unfinished: AtomicUsize,
}

impl Progress {
    fn new(study: &str, total: usize) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {prefix} [{elapsed_precise}] [{bar:30}] {pos}/{len} runs ({msg}, eta {eta})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(study.to_string());
        let p = Progress {
            bar,
            plain: !std::io::stderr().is_terminal() && !tracing::enabled!(tracing::Level::INFO),
            total,
            started: std::time::Instant::now(),
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            elsewhere: AtomicUsize::new(0),
            unfinished: AtomicUsize::new(0),
        };
        p.update();
        p
    }

    fn counts(&self) -> (usize, usize, usize) {
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.elsewhere.load(Ordering::Relaxed),
        )
    }

    fn update(&self) -> String {
        let (d, f, e) = self.counts();
        let u = self.unfinished.load(Ordering::Relaxed);
        let remaining = self.total.saturating_sub(d + f + e + u);
        let text = format!(
            "{d} done, {f} failed{}{}, {remaining} remaining",
            if u > 0 {
                format!(", {u} not finished")
            } else {
                String::new()
            },
            if e > 0 {
                format!(", {e} by other processes")
            } else {
                String::new()
            }
        );
        self.bar.set_message(text.clone());
        text
    }

    fn finished(&self, id: &str, attempt: &Attempt) {
        let what = match attempt {
            Attempt::Ran(Ok(seconds)) => {
                self.done.fetch_add(1, Ordering::Relaxed);
                format!("done in {seconds:.1} s")
            }
            Attempt::Ran(Err(Unfinished::Failed(_))) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                "FAILED".to_string()
            }
            Attempt::Ran(Err(Unfinished::Outside(e))) => {
                self.unfinished.fetch_add(1, Ordering::Relaxed);
                format!("not finished ({e}); it is retried by the next `ablate run`")
            }
            Attempt::Ran(Err(Unfinished::Lost(e))) => {
                self.elsewhere.fetch_add(1, Ordering::Relaxed);
                format!("left to the process that took it over ({e})")
            }
            Attempt::Settled => {
                self.elsewhere.fetch_add(1, Ordering::Relaxed);
                "finished by another process".to_string()
            }
            Attempt::Busy(_) | Attempt::Skipped => return,
        };
        self.bar.inc(1);
        let counts = self.update();
        if self.plain {
            let (d, f, e) = self.counts();
            let finished = d + f + e + self.unfinished.load(Ordering::Relaxed);
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = elapsed / finished as f64 * self.total.saturating_sub(finished) as f64;
            eprintln!(
                "[{finished}/{}] run {id} {what}: {counts}, ETA {}",
                self.total,
                crate::progress::clock(eta)
            );
        }
    }
}

/// Claims a run and runs it, unless another process holds it or finished it meanwhile.
/// `scanned` is the run's state when the study was scanned: a run whose state changed
/// since (another process finished it, or failed it again) is not run again.
#[allow(clippy::too_many_arguments)]
fn attempt(
    m: &Manifest,
    study_dir: &Path,
    process: &Provenance,
    run: &PlannedRun,
    scanned: &store::State,
    cache: &DataCache,
    claims: &store::Claims,
    threads: usize,
) -> Attempt {
    let dir = store::run_dir(study_dir, &run.id);
    let claim = match claims.claim(&dir) {
        Ok(store::Claimed::Mine(c)) => c,
        Ok(store::Claimed::Busy(owner)) => return Attempt::Busy(owner),
        Err(e) => return Attempt::Ran(Err(Unfinished::Outside(super::one_line(&e)))),
    };
    match (store::state(study_dir, &run.id), scanned) {
        (store::State::Done, _) => return Attempt::Settled,
        (store::State::Failed(now), store::State::Failed(then)) if now != *then => {
            return Attempt::Settled
        }
        (store::State::Failed(_), store::State::Missing | store::State::Damaged(_)) => {
            return Attempt::Settled
        }
        _ => {}
    }
    if let Err(e) = store::clear(&claim) {
        return Attempt::Ran(Err(Unfinished::Lost(super::one_line(&e))));
    }
    tracing::info!(run = %run.id, index = run.index, axes = %manifest::axes_summary(run), "run starts");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_one(m, study_dir, process, run, cache, threads, &claim)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Unfinished::Failed(format!("panicked: {what}")))
    });
    let outcome = match result {
        Ok(seconds) => {
            tracing::info!(run = %run.id, seconds, "run done");
            Ok(seconds)
        }
        Err(Unfinished::Failed(text)) => {
            tracing::warn!(run = %run.id, error = %text, "run failed");
            match store::mark_failed(&claim, &text) {
                Ok(()) => Err(Unfinished::Failed(text)),
                Err(e) => match claim.check() {
                    Err(lost) => Err(Unfinished::Lost(lost.to_string())),
                    Ok(()) => Err(Unfinished::Outside(format!(
                        "{text}; and its FAILED marker cannot be written: {}",
                        super::one_line(&e)
                    ))),
                },
            }
        }
        Err(other) => Err(other),
    };
    drop(claim);
    Attempt::Ran(outcome)
}

/// How often the runs other processes hold are looked at again.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What one batch of runs came to.
#[derive(Default)]
struct Tally {
    done: usize,
    failed: usize,
    elsewhere: usize,
    already: usize,
    failed_before: usize,
    damaged: usize,
}

/// Runs a batch of planned runs (skipping DONE ones, and FAILED ones unless
/// `retry_failed`) on `jobs` threads; runs other processes hold are waited for and taken
/// over if their holder dies or stops its heartbeat. Returns when every run of the batch is
/// settled; an error when a run could not finish for a cause outside it (the batch stops
/// there: a full disk fails every run alike), which the next `ablate run` retries.
fn run_batch(
    m: &Manifest,
    study_dir: &Path,
    batch: &[&PlannedRun],
    jobs: usize,
    retry_failed: bool,
    label: &str,
) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut todo: Vec<(&PlannedRun, store::State)> = Vec::new();
    let mut tidied = 0;
    for &r in batch {
        match store::state(study_dir, &r.id) {
            store::State::Done => {
                tally.already += 1;
                tidied += store::tidy_done(study_dir, &r.id);
            }
            store::State::Failed(_) if !retry_failed => tally.failed_before += 1,
            store::State::Damaged(why) => {
                tally.damaged += 1;
                eprintln!("run {} is damaged ({why}); running it again", r.id);
                todo.push((r, store::State::Damaged(why)));
            }
            state => todo.push((r, state)),
        }
    }
    if tidied > 0 {
        tracing::info!(
            files = tidied,
            "removed leftovers of killed processes from finished runs"
        );
    }
    if todo.is_empty() {
        return Ok(tally);
    }
    if todo.iter().any(|(r, _)| {
        r.config
            .data
            .pretrain
            .as_ref()
            .is_some_and(|p| p.to_string_lossy().starts_with(STUDY_PREFIX))
    }) {
        ensure_pretrain(m, study_dir, jobs)?;
    }
    tracing::info!(
        study = %m.study, batch = label, runs = todo.len(), already_done = tally.already,
        failed_before = tally.failed_before, damaged = tally.damaged, jobs, "batch starts"
    );
    let process = Provenance {
        overrides: m.plan.overrides.clone(),
        ..Provenance::of_process(&m.plan.study, &m.plan.manifest, &m.plan.manifest_hash)
    };
    let cache = DataCache::default();
    let claims = store::Claims::start();
    let progress = Progress::new(label, todo.len());
    // The machine divided between the runs: a run's micro-batches (`micro_batch`) get the
    // cores left over by the other jobs; the results do not depend on it.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start {jobs} worker threads: {e}"))?;
    // The first run that could not finish for a cause outside it stops the batch.
    let outside: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Every run this process can claim, then the ones other processes held: those are
    // waited for, and taken over once their holder is gone.
    let mut pending: Vec<&(&PlannedRun, store::State)> = todo.iter().collect();
    let mut waited_since: Option<std::time::Instant> = None;
    loop {
        let busy = std::sync::Mutex::new(Vec::new());
        pool.install(|| {
            pending.par_iter().with_max_len(1).for_each(|item| {
                let (r, scanned) = *item;
                let a = if stop.load(Ordering::Relaxed) {
                    Attempt::Skipped
                } else {
                    attempt(m, study_dir, &process, r, scanned, &cache, &claims, threads)
                };
                match &a {
                    Attempt::Busy(owner) => {
                        if let Ok(mut b) = busy.lock() {
                            b.push((*item, owner.clone()));
                        }
                    }
                    Attempt::Ran(Err(Unfinished::Outside(e))) => {
                        stop.store(true, Ordering::Relaxed);
                        if let Ok(mut o) = outside.lock() {
                            o.push((r.id.clone(), e.clone()));
                        }
                        progress.finished(&r.id, &a);
                    }
                    _ => progress.finished(&r.id, &a),
                }
            })
        });
        let busy = busy.into_inner().unwrap_or_default();
        if busy.is_empty() || stop.load(Ordering::Relaxed) {
            break;
        }
        let now = std::time::Instant::now();
        if waited_since.is_none_or(|t| now.duration_since(t).as_secs() >= 60) {
            waited_since = Some(now);
            let owners: std::collections::BTreeSet<String> =
                busy.iter().map(|(_, o)| o.to_string()).collect();
            eprintln!(
                "waiting for {} run(s) that other processes are running ({}); a run is taken \
                 over when its process is gone or its heartbeat has stopped for {} s",
                busy.len(),
                owners.into_iter().collect::<Vec<_>>().join(", "),
                store::STALE_AFTER.as_secs()
            );
        }
        std::thread::sleep(WAIT_POLL);
        pending = busy.into_iter().map(|(item, _)| item).collect();
    }
    progress.bar.finish_and_clear();
    (tally.done, tally.failed, tally.elsewhere) = progress.counts();
    let outside = outside.into_inner().unwrap_or_default();
    if let Some((id, error)) = outside.first() {
        eprintln!("{}", tally_line(label, &tally));
        bail!(
            "run {id} could not finish: {error}; {} run(s) of '{label}' are not finished and \
             not marked FAILED (the cause is outside them): fix it and rerun the same command \
             to resume",
            todo.len() - tally.done - tally.failed - tally.elsewhere
        );
    }
    Ok(tally)
}

/// The closing line of a batch.
fn tally_line(what: &str, t: &Tally) -> String {
    let mut s = format!(
        "{what}: {} runs done, {} failed now; {} were done before",
        t.done, t.failed, t.already
    );
    if t.elsewhere > 0 {
        s.push_str(&format!(", {} finished by other processes", t.elsewhere));
    }
    if t.damaged > 0 {
        s.push_str(&format!(", {} damaged were rerun", t.damaged));
    }
    if t.failed_before > 0 {
        s.push_str(&format!(
            ", {} failed before (--retry-failed reruns them)",
            t.failed_before
        ));
    }
    s
}

pub fn run(args: &RunArgs) -> Result<()> {
    let jobs = match args.jobs {
        Some(0) => return Err(ionode_study::usage!("--jobs 0: expected at least 1")),
        Some(n) if n > MAX_JOBS => {
            return Err(ionode_study::usage!(
                "--jobs {n}: expected at most {MAX_JOBS}"
            ))
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let (shard, shards) = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => (0, 1),
    };
    let m = load(&args.file, &args.set)?;
    if !args.only.is_empty() {
        if m.plan.search.is_some() {
            return Err(ionode_study::usage!(
                "--only: study '{}' is a [search], whose rungs decide which runs run",
                m.study
            ));
        }
        if let Some(id) = args
            .only
            .iter()
            .find(|id| !m.plan.runs.iter().any(|r| r.id == **id))
        {
            return Err(ionode_study::usage!(
                "--only {id}: no run of study '{}' has this id (`ablate plan {}` lists them)",
                m.study,
                args.file.display()
            ));
        }
    }
    let study_dir = args.results.join(&m.study);
    write_plan(&m.plan, &study_dir, false)?;
    // Temporary files of this host's killed processes (run folders are tidied as scanned).
    for dir in [
        study_dir.clone(),
        study_dir.join("data"),
        study_dir.join("search"),
    ] {
        output::remove_orphans(&dir);
    }
    let shard_text = if shards > 1 {
        format!(" shard {shard}/{shards}")
    } else {
        String::new()
    };
    let failed = match &m.plan.search {
        None => {
            let batch: Vec<&PlannedRun> = m
                .plan
                .runs
                .iter()
                .filter(|r| r.index % shards == shard)
                .filter(|r| args.only.is_empty() || args.only.contains(&r.id))
                .collect();
            let t = run_batch(&m, &study_dir, &batch, jobs, args.retry_failed, &m.study)?;
            eprintln!(
                "{}; results in {}",
                tally_line(&format!("study '{}'{shard_text}", m.study), &t),
                study_dir.display()
            );
            t.failed
        }
        Some(search) => run_search(
            &m,
            search,
            &study_dir,
            jobs,
            (shard, shards),
            args.retry_failed,
        )?,
    };
    if failed > 0 {
        bail!(
            "{failed} runs failed; `ablate status {}` lists them",
            study_dir.display()
        );
    }
    Ok(())
}

/// A successive halving search, rung by rung: each rung's runs (this shard's first, then
/// any other shard's not yet taken, so a rung completes even if some shards never start),
/// then the rung's decision, written once every run of it is settled.
fn run_search(
    m: &Manifest,
    search: &manifest::SearchPlan,
    study_dir: &Path,
    jobs: usize,
    (shard, shards): (usize, usize),
    retry_failed: bool,
) -> Result<usize> {
    let mut failed = 0;
    for (rung, budget) in search.budgets.iter().enumerate() {
        let Some(candidates) = ionode_study::search::active(search, study_dir, rung)? else {
            bail!(
                "rung {rung} of study '{}' has no decision for rung {}",
                m.study,
                rung - 1
            );
        };
        let mut batch: Vec<&PlannedRun> =
            ionode_study::search::rung_runs(search, rung, &candidates)
                .into_iter()
                .map(|i| &m.plan.runs[i])
                .collect();
        batch.sort_by_key(|r| (r.index % shards != shard, r.index));
        let label = format!("{} rung {rung}", m.study);
        let t = run_batch(m, study_dir, &batch, jobs, retry_failed, &label)?;
        failed += t.failed;
        let decision = ionode_study::search::decide(&m.plan, study_dir, rung, &candidates)
            .with_context(|| format!("rung {rung} of study '{}' is not complete", m.study))?;
        ionode_study::search::write_decision(study_dir, &decision)?;
        let best = decision.ranked.first().and_then(|s| s.score);
        eprintln!(
            "{}; {} candidates at {} = {budget}, best {} = {}{}",
            tally_line(&format!("study '{}' rung {rung}", m.study), &t),
            candidates.len(),
            search.spec.budget,
            search.spec.metric,
            best.map_or("undefined".to_string(), |b| format!("{b:.4}")),
            match decision.winner {
                Some(w) => format!(
                    "; winner: candidate {w} ({})",
                    search.candidates[w].describe()
                ),
                None => format!("; {} promoted", decision.promoted.len()),
            }
        );
    }
    Ok(failed)
}

/// One line per rung of a search: its budget, candidates, runs and decision.
fn search_status(plan: &Plan, search: &manifest::SearchPlan, study_dir: &Path) -> Result<String> {
    let mut out = format!(
        "successive halving over {} candidates by {} ({}), eta = {}; a study's runs are its \
         possible runs at every rung, most never run\n",
        search.candidates.len(),
        search.spec.metric,
        search.spec.direction,
        search.spec.eta
    );
    for (rung, budget) in search.budgets.iter().enumerate() {
        let head = format!("rung {rung} ({} = {budget})", search.spec.budget);
        let Some(candidates) = ionode_study::search::active(search, study_dir, rung)? else {
            out.push_str(&format!("{head}: waits for rung {}\n", rung - 1));
            continue;
        };
        let (mut done, mut failed, mut remaining) = (0, 0, 0);
        for i in ionode_study::search::rung_runs(search, rung, &candidates) {
            match store::state(study_dir, &plan.runs[i].id) {
                store::State::Done => done += 1,
                store::State::Failed(_) => failed += 1,
                _ => remaining += 1,
            }
        }
        let decided = match ionode_study::search::read_decision(study_dir, search, rung)? {
            Some(d) => match d.winner {
                Some(w) => format!(
                    "; winner: candidate {w} ({}), {} = {}",
                    search.candidates[w].describe(),
                    search.spec.metric,
                    d.ranked[0]
                        .score
                        .map_or("undefined".into(), |v| format!("{v:.4}"))
                ),
                None => format!("; {} promoted", d.promoted.len()),
            },
            None => String::new(),
        };
        out.push_str(&format!(
            "{head}: {} candidates, {done} runs done, {failed} failed, {remaining} remaining{decided}\n",
            candidates.len()
        ));
    }
    Ok(out)
}

pub fn status(args: &StatusArgs) -> Result<()> {
    let (plan, study_dir) = if args.target.is_dir() {
        (Plan::read(&args.target)?, args.target.clone())
    } else {
        let m = load(&args.target, &args.set)?;
        let dir = args.results.join(&m.study);
        (m.plan, dir)
    };
    let mut failed = Vec::new();
    let mut damaged = Vec::new();
    let (mut done, mut missing) = (0, 0);
    for r in &plan.runs {
        match store::state(&study_dir, &r.id) {
            store::State::Done => done += 1,
            store::State::Failed(first) => failed.push((r.id.clone(), first)),
            store::State::Damaged(why) => damaged.push((r.id.clone(), why)),
            store::State::Missing => missing += 1,
        }
    }
    let mut out = format!(
        "study '{}': {} runs: {done} done, {} failed, {} damaged, {missing} missing\n",
        plan.study,
        plan.runs.len(),
        failed.len(),
        damaged.len()
    );
    if let Some(search) = &plan.search {
        out.push_str(&search_status(&plan, search, &study_dir)?);
    }
    for (id, first) in &failed {
        out.push_str(&format!("failed {id}: {first}\n"));
    }
    for (id, why) in &damaged {
        out.push_str(&format!("damaged {id}: {why} (`ablate run` reruns it)\n"));
    }
    super::print_stdout(&out)
}

/// `sbatch --parsable ARGS SCRIPT` -> the job id.
fn sbatch(extra: &[String], script: &Path) -> Result<String> {
    let out = std::process::Command::new("sbatch")
        .arg("--parsable")
        .args(extra)
        .arg(script)
        .output()
        .context("cannot run `sbatch` (is Slurm installed here and on PATH?)")?;
    if !out.status.success() {
        bail!(
            "`sbatch {}` failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!(
            "`sbatch --parsable` printed '{}', not a job id",
            text.trim()
        );
    }
    Ok(id)
}

pub fn slurm(args: &SlurmArgs) -> Result<()> {
    let given = ionode_study::slurm::Given {
        shards: args.shards,
        cpus: args.cpus,
        throttle: args.throttle,
        partition: args.partition.as_deref(),
        time: args.time.as_deref(),
        mem: args.mem.as_deref(),
        account: args.account.as_deref(),
        qos: args.qos.as_deref(),
        extra: &args.sbatch_args,
    };
    let options = given.check().map_err(|problems| {
        for p in &problems[1..] {
            eprintln!("{p}");
        }
        ionode_study::usage!("{}", problems[0])
    })?;
    let m = load(&args.file, &args.set)?;
    let study_dir = args.results.join(&m.study);
    // The jobs run in this folder whatever folder they are submitted from, with this
    // binary, and log to absolute paths.
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let exe = std::env::current_exe().context("cannot tell where this ablate binary is")?;
    let logs = cwd.join(&study_dir).join("slurm");
    let cwd_text = ionode_study::slurm::directive_path("the working folder", &cwd)
        .map_err(|e| ionode_study::usage!("{e}"))?;
    let logs_text = ionode_study::slurm::directive_path("the log folder", &logs)
        .map_err(|e| ionode_study::usage!("{e}"))?;
    let text = |p: &Path, what: &str| {
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| ionode_study::usage!("{what} '{}' is not valid UTF-8", p.display()))
    };
    let mut run_args = vec!["run".to_string(), text(&args.file, "the manifest")?];
    for o in &m.plan.overrides {
        run_args.push("--set".into());
        run_args.push(o.clone());
    }
    run_args.push("--results".into());
    run_args.push(text(&args.results, "--results")?);
    let study = ionode_study::slurm::Study {
        name: &m.study,
        runs: m.plan.runs.len(),
        run_args,
        study_dir: text(&study_dir, "the study folder")?,
        cwd: cwd_text,
        logs: logs_text,
        exe: text(&exe, "the ablate binary's path")?,
    };
    // The plan is written here, once, so the array tasks only read it.
    write_plan(&m.plan, &study_dir, false)?;
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("cannot create '{}'", logs.display()))?;
    let path = study_dir.join("slurm.sbatch");
    output::write_text(&path, &ionode_study::slurm::array_script(&options, &study))?;
    let report = study_dir.join("report.sbatch");
    output::write_text(
        &report,
        &ionode_study::slurm::report_script(&options, &study),
    )?;
    let n = args.shards;
    if !args.submit {
        eprintln!(
            "wrote {} ({n} array tasks) and {}; submit with `sbatch {}` (or rerun with --submit, \
             which also submits the report after the array)",
            path.display(),
            report.display(),
            path.display()
        );
        return Ok(());
    }
    let array = sbatch(&[], &path)?;
    let after = sbatch(&[format!("--dependency=afterany:{array}")], &report)?;
    super::print_stdout(&format!(
        "submitted array job {array} ({n} tasks, study '{}', {} runs); report job {after} runs \
         `ablate report` after it\nlogs: {}\n",
        m.study,
        m.plan.runs.len(),
        logs.display()
    ))
}
