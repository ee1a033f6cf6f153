//! Running a study's runs: the executor behind `ablate run` and a Slurm array's tasks.
//!
//! A batch of planned runs ([`run_batch`]) is tried on `jobs` threads: each run is claimed
//! in the store (another live process's runs are waited for and taken over when it is
//! gone), executed ([`crate::runner::execute`]), and committed whole (`run.h5`, then
//! `DONE`) or marked `FAILED`; a cause outside the runs (a full disk) stops the batch
//! without marking anything, so rerunning resumes. A search ([`run_search`]) runs its
//! rungs as batches, each followed by its decision ([`crate::halving`]). Runs are
//! independent (each is a pure function of its config and seed), so `--jobs` and
//! `--shard` change where and when a run executes, never its result.
//!
//! Nothing here prints: progress and notes go to a [`Watch`] (the command line's
//! progress bar or log lines).

use crate::errors::{Context, Result, StudyError};
use crate::manifest::{self, Manifest, PlannedRun};
use crate::record::{self, Provenance};
use crate::runner::{execute, DataCache};
use crate::store;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// What watches the runs: `ablate`'s progress bar or log lines.
pub trait Watch: Sync {
    /// A batch of `runs` runs to try starts; its display.
    fn batch(&self, label: &str, runs: usize) -> Box<dyn BatchWatch + '_>;
    /// Something people should know (a damaged run rerun, runs waited for, a rung's
    /// decision, a generated data set).
    fn note(&self, text: &str);
}

/// The display of one batch.
pub trait BatchWatch: Sync {
    /// A run was settled (by this process or another): what became of it, and the
    /// batch's counts so far.
    fn finished(&self, id: &str, attempt: &Attempt, counts: &Counts);
    /// The batch is over.
    fn ended(&self);
}

/// A batch's settled runs so far, by outcome.
#[derive(Debug, Default)]
pub struct Counts {
    done: AtomicUsize,
    failed: AtomicUsize,
    elsewhere: AtomicUsize,
    unfinished: AtomicUsize,
}

impl Counts {
    /// Counts a settled attempt; `false` for one that settles nothing (busy elsewhere, or
    /// skipped).
    fn record(&self, attempt: &Attempt) -> bool {
        let counter = match attempt {
            Attempt::Ran(Ok(_)) => &self.done,
            Attempt::Ran(Err(Unfinished::Failed(_))) => &self.failed,
            Attempt::Ran(Err(Unfinished::Outside(_))) => &self.unfinished,
            Attempt::Ran(Err(Unfinished::Lost(_))) | Attempt::Settled => &self.elsewhere,
            Attempt::Busy(_) | Attempt::Skipped => return false,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// (done, failed, finished by other processes, not finished).
    pub fn get(&self) -> (usize, usize, usize, usize) {
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.elsewhere.load(Ordering::Relaxed),
            self.unfinished.load(Ordering::Relaxed),
        )
    }
}

/// Generates the manifest's pre-training set (as `ablate simulate` would) unless a whole
/// one is there ([`crate::simulator::SimulatorSpec::ensure`]).
fn ensure_pretrain(
    m: &Manifest,
    study_dir: &Path,
    threads: usize,
    watch: &dyn Watch,
) -> Result<()> {
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
        &|text| watch.note(text),
    )
}

/// Why a run did not finish.
pub enum Unfinished {
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
fn is_run_failure(e: &StudyError) -> bool {
    match e {
        StudyError::Train(_) | StudyError::Model(_) | StudyError::Physics(_) => true,
        StudyError::Within { source, .. } => is_run_failure(source),
        _ => false,
    }
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
        let text = crate::errors::one_line(&e);
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
    let head = record::Head::new(
        process.of_run(&run.id, Some(run.index as u64)),
        run.config.clone().into_inner(),
        run.axes.clone().into_iter().collect(),
        inputs,
    );
    let o = &executed.outcome;
    let source = format!("study {}, run {}", m.plan.study, run.id);
    let membrane = crate::membrane::calibrated(&o.artefact, &source).map(|f| f.to_toml());
    let seconds = o.timings.total;
    let stored = record::Stored::of(&head, o);
    store::finish(claim, &run.id, seconds, |path, commit| {
        record::write(path, &head, o, membrane.as_deref(), commit)
    })
    .map_err(|e| match claim.check() {
        Err(lost) => Unfinished::Lost(lost.to_string()),
        Ok(()) => Unfinished::Outside(crate::errors::one_line(&e)),
    })?;
    // The facts cache, from the values just written: a query and a report read it instead
    // of `run.h5`. A cache that cannot be written now is made by the first reader instead.
    if let (Ok(stored), Some(sum)) = (stored, store::recorded_checksum(claim.dir(), &run.id)) {
        let _ = crate::facts::write_finished(claim.dir(), stored, &sum);
    }
    Ok(seconds)
}

/// What became of one attempt at a run.
pub enum Attempt {
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
        Err(e) => return Attempt::Ran(Err(Unfinished::Outside(crate::errors::one_line(&e)))),
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
        return Attempt::Ran(Err(Unfinished::Lost(crate::errors::one_line(&e))));
    }
    tracing::info!(run = %run.id, index = run.index, axes = %manifest::axes_summary(run), "run starts");
    let started = std::time::Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_one(m, study_dir, process, run, cache, threads, &claim)
    }));
    BUSY_MICROS.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    let result = result.unwrap_or_else(|panic| {
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
                        crate::errors::one_line(&e)
                    ))),
                },
            }
        }
        Err(other) => Err(other),
    };
    if let Err(Unfinished::Lost(text)) = &outcome {
        tracing::warn!(run = %run.id, error = %text, "run left to the process that took it over");
    }
    drop(claim);
    Attempt::Ran(outcome)
}

/// Wall time this process's workers spent running runs (claim to commit), in microseconds.
static BUSY_MICROS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seconds this process's workers have spent running runs so far: with the workers' count
/// and the process's wall time, its utilisation (busy core-seconds over available ones;
/// a worker waiting at a rung barrier or for another process is not busy).
pub fn busy_seconds() -> f64 {
    BUSY_MICROS.load(Ordering::Relaxed) as f64 * 1e-6
}

/// How often the runs other processes hold are looked at again.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What one batch of runs came to.
#[derive(Debug, Default)]
pub struct Tally {
    pub done: usize,
    pub failed: usize,
    pub elsewhere: usize,
    pub already: usize,
    pub failed_before: usize,
    pub damaged: usize,
}

/// Runs a batch of planned runs (skipping DONE ones, and FAILED ones unless
/// `retry_failed`) on `jobs` threads; runs other processes hold are waited for and taken
/// over if their holder dies or stops its heartbeat. Returns when every run of the batch is
/// settled; an error when a run could not finish for a cause outside it (the batch stops
/// there: a full disk fails every run alike), which the next `ablate run` retries.
pub fn run_batch(
    m: &Manifest,
    study_dir: &Path,
    batch: &[&PlannedRun],
    jobs: usize,
    retry_failed: bool,
    label: &str,
    watch: &dyn Watch,
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
                watch.note(&format!(
                    "run {} is damaged ({why}); running it again",
                    r.id
                ));
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
    if todo.iter().any(|(r, _)| r.pretrains_on_study_data()) {
        ensure_pretrain(m, study_dir, jobs, watch)?;
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
    let progress = watch.batch(label, todo.len());
    let counts = Counts::default();
    // The machine divided between the runs: a run's micro-batches (`micro_batch`) get the
    // cores left over by the other jobs; the results do not depend on it.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| crate::failed!("cannot start {jobs} worker threads: {e}"))?;
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
                        if counts.record(&a) {
                            progress.finished(&r.id, &a, &counts);
                        }
                    }
                    _ => {
                        if counts.record(&a) {
                            progress.finished(&r.id, &a, &counts);
                        }
                    }
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
            watch.note(&format!(
                "waiting for {} run(s) that other processes are running ({}); a run is taken \
                 over when its process is gone or its heartbeat has stopped for {} s",
                busy.len(),
                owners.into_iter().collect::<Vec<_>>().join(", "),
                store::STALE_AFTER.as_secs()
            ));
        }
        std::thread::sleep(WAIT_POLL);
        pending = busy.into_iter().map(|(item, _)| item).collect();
    }
    progress.ended();
    (tally.done, tally.failed, tally.elsewhere, _) = counts.get();
    let outside = outside.into_inner().unwrap_or_default();
    if let Some((id, error)) = outside.first() {
        watch.note(&tally.line(label));
        return Err(crate::failed!(
            "run {id} could not finish: {error}; {} run(s) of '{label}' are not finished and \
             not marked FAILED (the cause is outside them): fix it and rerun the same command \
             to resume",
            todo.len() - tally.done - tally.failed - tally.elsewhere
        ));
    }
    Ok(tally)
}

impl Tally {
    /// The closing line of a batch.
    pub fn line(&self, what: &str) -> String {
        let t = self;
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
}

/// A search: successive halving ([`run_halving`]), Hyperband ([`run_hyperband`]) or TPE
/// ([`run_tpe`]). Returns the number of runs that failed now.
pub fn run_search(
    m: &Manifest,
    search: &manifest::SearchPlan,
    study_dir: &Path,
    jobs: usize,
    shard: (usize, usize),
    retry_failed: bool,
    watch: &dyn Watch,
) -> Result<usize> {
    use crate::manifest::search_spec::Scheduler;
    let r = SearchRun {
        m,
        search,
        study_dir,
        jobs,
        shard,
        retry_failed,
        watch,
    };
    if search.spec.tpe().is_some() {
        run_tpe(r)
    } else if search.spec.scheduler == Scheduler::Hyperband {
        run_hyperband(r)
    } else {
        run_halving(r)
    }
}

/// One `ablate run` of a search: what every kind of search runs with.
#[derive(Clone, Copy)]
struct SearchRun<'a> {
    m: &'a Manifest,
    search: &'a manifest::SearchPlan,
    study_dir: &'a Path,
    jobs: usize,
    /// (this shard, shards).
    shard: (usize, usize),
    retry_failed: bool,
    watch: &'a dyn Watch,
}

/// A Hyperband search ([`crate::hyperband`]): its brackets' runs as they become ready, on
/// `jobs` workers that never wait at a rung while another bracket has a run to start.
fn run_hyperband(r: SearchRun<'_>) -> Result<usize> {
    let SearchRun {
        m,
        search,
        study_dir,
        jobs,
        shard,
        retry_failed,
        watch,
    } = r;
    let brackets = crate::hyperband::brackets(search);
    watch.note(&format!(
        "study '{}': Hyperband over {} candidates in {} brackets (first rungs {})",
        m.study,
        search.candidates.len(),
        brackets.len(),
        brackets
            .iter()
            .map(|b| format!("{} ({} candidates)", b.start, b.candidates.len()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let failed = run_dynamic(
        m,
        study_dir,
        jobs,
        shard,
        retry_failed,
        &format!("{} hyperband", m.study),
        crate::hyperband::most_runs(search),
        &|| crate::hyperband::ready_runs(&m.plan, study_dir),
        &|pending| crate::hyperband::settle(&m.plan, study_dir, pending, retry_failed),
        watch,
    )?;
    let outcome = crate::hyperband::outcome(&m.plan, study_dir)?
        .with_context(|| format!("the brackets of study '{}' are not all decided", m.study))?;
    let mut text = format!("study '{}': Hyperband finished", m.study);
    for (j, start, w, score) in &outcome.brackets {
        text.push_str(&format!(
            "; bracket {j} (from rung {start}): {}",
            match (w, score) {
                (Some(w), Some(s)) =>
                    format!("candidate {w}, {} = {s:.4}", search.spec.metric_label()),
                _ => "no score".to_string(),
            }
        ));
    }
    if let Some(w) = outcome.winner {
        text.push_str(&format!(
            "; winner: candidate {w} ({})",
            search.candidates[w].describe()
        ));
    }
    watch.note(&text);
    Ok(failed)
}

/// What the workers of [`run_dynamic`] share.
#[derive(Default)]
struct Pool {
    /// Plan indices this process is running now.
    running: std::collections::HashSet<usize>,
    /// Runs this process settled in this call (not tried again, even with
    /// `--retry-failed`).
    tried: std::collections::HashSet<usize>,
    /// Runs seen DONE (never looked at again: checking a marker hashes its run file).
    done: std::collections::HashSet<usize>,
    /// Runs another process holds (or took over from this one), and when to look again.
    busy: std::collections::HashMap<usize, std::time::Instant>,
    /// When the last note on runs held elsewhere was given.
    noted: Option<std::time::Instant>,
    /// Rounds in a row in which nothing ran here, nothing was held elsewhere and the search
    /// was not complete.
    stuck: usize,
    /// Why the workers stop early: a run that could not finish for a cause outside it, or
    /// an error reading the search's state.
    stop: Option<String>,
    finished: bool,
}

/// Makes the decisions due, told which runs are still to be run again (by plan index);
/// whether the search is complete.
pub type Settle<'a> = dyn Fn(&dyn Fn(usize) -> bool) -> Result<bool> + Sync + 'a;

/// Runs a set of runs that grows while it runs: `ready` lists the plan indices that may
/// start now, and `settle` makes every decision that is due (told which runs are still to
/// be run again, for `--retry-failed`), returning whether the search is complete. `jobs`
/// workers each take the next ready run (this shard's first, then any other's not held, in
/// plan order) as soon as they are free, so a worker waits only when nothing anywhere can
/// start. Returns the runs that failed now.
#[allow(clippy::too_many_arguments)]
pub fn run_dynamic(
    m: &Manifest,
    study_dir: &Path,
    jobs: usize,
    (shard, shards): (usize, usize),
    retry_failed: bool,
    label: &str,
    most: usize,
    ready: &(dyn Fn() -> Result<Vec<usize>> + Sync),
    settle: &Settle<'_>,
    watch: &dyn Watch,
) -> Result<usize> {
    if m.plan.runs.iter().any(PlannedRun::pretrains_on_study_data) {
        ensure_pretrain(m, study_dir, jobs, watch)?;
    }
    // A FAILED run is to be run again (with --retry-failed) until this call has tried it.
    let failed_untried = |tried: &std::collections::HashSet<usize>, i: usize| {
        retry_failed
            && !tried.contains(&i)
            && matches!(
                store::state(study_dir, &m.plan.runs[i].id),
                store::State::Failed(_)
            )
    };
    let empty = std::collections::HashSet::new();
    // Decisions whose runs an earlier process finished.
    if settle(&|i| failed_untried(&empty, i))? {
        return Ok(0);
    }
    let process = Provenance {
        overrides: m.plan.overrides.clone(),
        ..Provenance::of_process(&m.plan.study, &m.plan.manifest, &m.plan.manifest_hash)
    };
    let cache = DataCache::default();
    let claims = store::Claims::start();
    let progress = watch.batch(label, most);
    let counts = Counts::default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / jobs).max(1);
    let pool = std::sync::Mutex::new(Pool::default());
    let wake = std::sync::Condvar::new();
    // One worker decides at a time (two would make the same decisions).
    let deciding = std::sync::Mutex::new(());
    let lock = || pool.lock().unwrap_or_else(|e| e.into_inner());
    let decide = || -> Result<bool> {
        let tried = lock().tried.clone();
        let _d = deciding.lock().unwrap_or_else(|e| e.into_inner());
        settle(&|i| failed_untried(&tried, i))
    };
    // The next run to start, taken into `running`; `None` when nothing can start now.
    let next = |p: &mut Pool| -> Result<Option<(usize, store::State)>> {
        let now = std::time::Instant::now();
        let mut ready = ready()?;
        ready.sort_by_key(|&i| (i % shards != shard, i));
        for i in ready {
            if p.running.contains(&i)
                || p.tried.contains(&i)
                || p.done.contains(&i)
                || p.busy.get(&i).is_some_and(|t| *t > now)
            {
                continue;
            }
            match store::state(study_dir, &m.plan.runs[i].id) {
                store::State::Done => {
                    p.done.insert(i);
                }
                store::State::Failed(_) if !retry_failed => {}
                state => {
                    p.running.insert(i);
                    return Ok(Some((i, state)));
                }
            }
        }
        Ok(None)
    };
    let worker = || loop {
        let mut p = lock();
        if p.stop.is_some() || p.finished {
            return;
        }
        let picked = match next(&mut p) {
            Ok(picked) => picked,
            Err(e) => {
                p.stop = Some(crate::errors::one_line(&e));
                wake.notify_all();
                return;
            }
        };
        let Some((i, scanned)) = picked else {
            // Nothing to start. While runs go on here, wait for one to end; else make the
            // decisions due and look again (they may have made runs ready), and stop once
            // the search is complete.
            if !p.running.is_empty() {
                drop(
                    wake.wait_timeout(p, WAIT_POLL)
                        .unwrap_or_else(|e| e.into_inner()),
                );
                continue;
            }
            drop(p);
            let complete = decide();
            let mut p = lock();
            match complete {
                Ok(true) => {
                    p.finished = true;
                    wake.notify_all();
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    p.stop = Some(crate::errors::one_line(&e));
                    wake.notify_all();
                    return;
                }
            }
            if let Ok(Some((ready, _))) = next(&mut p) {
                // The decisions made runs ready: put the pick back and take it next round.
                p.running.remove(&ready);
                continue;
            }
            let now = std::time::Instant::now();
            if p.busy.is_empty() && p.running.is_empty() {
                // Nothing runs here, nothing is held elsewhere, and the search is not
                // complete: a run is neither finished nor runnable (an unreadable record).
                p.stuck += 1;
                if p.stuck > 2 {
                    p.stop = Some(format!(
                        "the search of study '{}' cannot go on: a rung has runs that are neither \
                         finished nor runnable (`ablate status` shows which; a damaged run is \
                         rerun by `ablate run`)",
                        m.study
                    ));
                    wake.notify_all();
                    return;
                }
            } else {
                p.stuck = 0;
                if p.noted
                    .is_none_or(|t| now.duration_since(t).as_secs() >= 60)
                {
                    p.noted = Some(now);
                    watch.note(&format!(
                        "waiting for {} run(s) other processes hold; a run is taken over when its \
                         process is gone or its heartbeat has stopped for {} s",
                        p.busy.len(),
                        store::STALE_AFTER.as_secs()
                    ));
                }
            }
            p.busy.retain(|_, t| *t > now);
            drop(
                wake.wait_timeout(p, WAIT_POLL)
                    .unwrap_or_else(|e| e.into_inner()),
            );
            continue;
        };
        drop(p);
        let run = &m.plan.runs[i];
        let a = attempt(
            m, study_dir, &process, run, &scanned, &cache, &claims, threads,
        );
        let mut p = lock();
        p.running.remove(&i);
        p.stuck = 0;
        match &a {
            // Held elsewhere, or taken over from this process: looked at again later (if
            // that process dies too, the run is taken back).
            Attempt::Busy(_) | Attempt::Ran(Err(Unfinished::Lost(_))) => {
                p.busy.insert(i, std::time::Instant::now() + WAIT_POLL);
            }
            Attempt::Ran(Err(Unfinished::Outside(e))) => {
                p.stop = Some(format!("run {} could not finish: {e}", run.id));
            }
            _ => {
                p.tried.insert(i);
            }
        }
        if counts.record(&a) {
            progress.finished(&run.id, &a, &counts);
        }
        drop(p);
        // Its rung may be complete now: decide it, so the next rung's runs are ready.
        if let Err(e) = decide() {
            lock().stop = Some(crate::errors::one_line(&e));
        }
        wake.notify_all();
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(worker);
        }
    });
    progress.ended();
    let p = pool.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = p.stop {
        return Err(crate::failed!(
            "{why}; the search of study '{}' stops here: fix the cause and rerun the same \
             command to resume",
            m.study
        ));
    }
    Ok(counts.get().1)
}

/// A TPE search, generation by generation: each generation's runs (this shard's first,
/// then the others', so a generation completes even if some shards never start), then the
/// next generation proposed from them ([`crate::tpe`]), until the last; then the result.
fn run_tpe(r: SearchRun<'_>) -> Result<usize> {
    let SearchRun {
        m,
        study_dir,
        jobs,
        shard: (shard, shards),
        retry_failed,
        watch,
        ..
    } = r;
    let read = || -> Result<crate::tpe::State> {
        crate::tpe::State::read(&m.plan, study_dir)?
            .ok_or_else(|| crate::failed!("study '{}' is not a TPE search", m.study))
    };
    let mut state = read()?;
    let mut failed = 0;
    let mut g = 0;
    loop {
        if !crate::tpe::generation(m, study_dir, &state, g)? {
            break;
        }
        if g >= state.generations.len() {
            state = read()?;
        }
        if g >= state.generations.len() {
            return Err(crate::failed!(
                "generation {g} of study '{}' was written but does not fit the search (another \
                 process wrote a different one?); `ablate status` shows the search",
                m.study
            ));
        }
        let mut batch = state.generation_runs(g);
        batch.sort_by_key(|r| (r.index % shards != shard, r.index));
        let label = format!("{} generation {g}", m.study);
        let t = run_batch(m, study_dir, &batch, jobs, retry_failed, &label, watch)?;
        failed += t.failed;
        let c = &state.generations[g];
        watch.note(&format!(
            "{}; candidates {}..{}",
            t.line(&format!("study '{}' generation {g}", m.study)),
            c.start,
            c.end
        ));
        g += 1;
    }
    let outcome = crate::tpe::outcome(&m.plan, study_dir, &state)?
        .with_context(|| format!("the last generation of study '{}' is not complete", m.study))?;
    crate::tpe::write_outcome(study_dir, &outcome)?;
    let search = m.plan.search.as_ref().expect("a TPE study has a search");
    watch.note(&match outcome.winner {
        Some(w) => format!(
            "study '{}': TPE over {} candidates, winner: candidate {w} ({}), {} = {:.4}",
            m.study,
            state.candidates.len(),
            state.candidates[w].describe(),
            search.spec.metric_label(),
            outcome.ranked[0].score.unwrap_or(f64::NAN)
        ),
        None if !outcome.front.is_empty() => format!(
            "study '{}': TPE over {} candidates, Pareto front of {}: candidates {}",
            m.study,
            state.candidates.len(),
            search.spec.metric_label(),
            outcome
                .front
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!(
            "study '{}': TPE over {} candidates, no candidate has a score",
            m.study,
            state.candidates.len()
        ),
    });
    Ok(failed)
}

/// A successive halving search, rung by rung: each rung's runs (this shard's first, then
/// any other shard's not yet taken, so a rung completes even if some shards never start),
/// then the rung's decision, written once every run of it is settled.
fn run_halving(r: SearchRun<'_>) -> Result<usize> {
    let SearchRun {
        m,
        search,
        study_dir,
        jobs,
        shard: (shard, shards),
        retry_failed,
        watch,
    } = r;
    let mut failed = 0;
    for (rung, budget) in search.budgets.iter().enumerate() {
        let Some(candidates) = crate::halving::active(search, study_dir, rung)? else {
            return Err(crate::failed!(
                "rung {rung} of study '{}' has no decision for rung {}",
                m.study,
                rung - 1
            ));
        };
        let mut batch: Vec<&PlannedRun> = crate::halving::rung_runs(search, rung, &candidates)
            .into_iter()
            .map(|i| &m.plan.runs[i])
            .collect();
        batch.sort_by_key(|r| (r.index % shards != shard, r.index));
        let label = format!("{} rung {rung}", m.study);
        let t = run_batch(m, study_dir, &batch, jobs, retry_failed, &label, watch)?;
        failed += t.failed;
        let decision = crate::halving::decide(&m.plan, study_dir, rung, &candidates)
            .with_context(|| format!("rung {rung} of study '{}' is not complete", m.study))?;
        crate::halving::write_decision(study_dir, &decision)?;
        let best = decision.ranked.first().and_then(|s| s.score);
        watch.note(&format!(
            "{}; {} candidates at {} = {budget}, best {} = {}{}",
            t.line(&format!("study '{}' rung {rung}", m.study)),
            candidates.len(),
            search.spec.budget.as_deref().unwrap_or_default(),
            search.spec.metric_label(),
            best.map_or("undefined".to_string(), |b| format!("{b:.4}")),
            match decision.winner {
                Some(w) => format!(
                    "; winner: candidate {w} ({})",
                    search.candidates[w].describe()
                ),
                None => format!("; {} promoted", decision.promoted.len()),
            }
        ));
    }
    Ok(failed)
}
