//! The study commands: `ablate check`, `plan`, `run`, `status` and `slurm`. They turn
//! arguments into calls of `ionode-study` (the manifest, the executor, the store) and
//! show the progress.
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
use ionode_study::executor::{
    run_batch, run_search, Attempt, BatchWatch, Counts, Unfinished, Watch,
};
use ionode_study::limits::{MAX_JOBS, MAX_SHARDS};
use ionode_study::manifest::{self, Manifest, Plan, PlannedRun};
use ionode_study::{output, record, store};
use std::io::IsTerminal;
use std::path::Path;

/// Loads a manifest; problems are printed one per line, then one summary error.
fn load(file: &Path, set: &[String]) -> Result<Manifest> {
    manifest::load(file, set).map_err(|p| super::problems("manifest", file, p))
}

/// Loads a manifest for its study in `results`, with a TPE search's warm-start points: those
/// of the plan already written there (so a resumed search, every shard and every Slurm task
/// tell the same ones), else read now from the named studies (`refresh`: read now anyway).
fn load_in(file: &Path, set: &[String], results: &Path, refresh: bool) -> Result<Manifest> {
    let mut m = load(file, set)?;
    let Some(search) = &m.plan.search else {
        return Ok(m);
    };
    if search.spec.warm_start.is_empty() {
        return Ok(m);
    }
    let study_dir = results.join(&m.study);
    let written = Plan::read(&study_dir).ok().filter(|old| {
        let strip = |p: &Plan| {
            let mut p = p.clone();
            p.manifest.clear();
            if let Some(s) = &mut p.search {
                s.warm.clear();
            }
            p
        };
        !refresh && strip(old) == strip(&m.plan)
    });
    let warm = match written.and_then(|p| p.search) {
        Some(s) => s.warm,
        None => ionode_study::tpe::warm_start(&m.plan, results)?,
    };
    if let Some(s) = &mut m.plan.search {
        s.warm = warm;
    }
    Ok(m)
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
            Err(e) if !force => return Err(e.into()),
            Err(_) => false,
        };
        if same {
            return Ok(());
        }
        if !force {
            return Err(crate::usage!(
                "'{}' holds a different plan for study '{}' (the manifest or the program changed); \
                 rerun `ablate plan {} --force` to replace it (finished runs whose id is unchanged are kept)",
                path.display(),
                plan.study,
                plan.manifest
            ));
        }
        return Ok(output::write_text(&path, &text)?);
    }
    // A new plan is only created, never put over one another process (a shard started at
    // the same time) wrote meanwhile: that one is then compared as above.
    if output::write_text_new(&path, &text)? {
        return Ok(());
    }
    if !path.exists() {
        return Err(crate::usage!(
            "'{}' is there but is no file (a dangling link?): remove it",
            path.display()
        ));
    }
    write_plan(plan, study_dir, force)
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
        out.push_str(&super::search_text::check(s, n));
    }
    super::print_stdout(&out)
}

pub fn plan(args: &PlanArgs) -> Result<()> {
    let m = load_in(&args.file, &args.set, &args.results, args.force)?;
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
        crate::usage!("--shard '{s}': expected I/N with 0 <= I < N <= {MAX_SHARDS}, e.g. 0/4")
    })
}

/// The command line as the executor's [`Watch`]: a progress bar per batch, notes on
/// stderr.
struct Terminal;

impl Watch for Terminal {
    fn batch(&self, label: &str, runs: usize) -> Box<dyn BatchWatch + '_> {
        Box::new(Progress::new(label, runs))
    }

    fn note(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// Prints the runs as they finish. On a terminal that is the progress bar; elsewhere (a
/// Slurm log, CI, a file) one line per finished run, since a hidden bar would leave the
/// log silent for hours.
struct Progress {
    bar: ProgressBar,
    plain: bool,
    total: usize,
    started: std::time::Instant,
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
        };
        p.update(&Counts::default());
        p
    }

    fn update(&self, counts: &Counts) -> String {
        let (d, f, e, u) = counts.get();
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
}

impl BatchWatch for Progress {
    fn finished(&self, id: &str, attempt: &Attempt, counts: &Counts) {
        let what = match attempt {
            Attempt::Ran(Ok(seconds)) => format!("done in {seconds:.1} s"),
            Attempt::Ran(Err(Unfinished::Failed(_))) => "FAILED".to_string(),
            Attempt::Ran(Err(Unfinished::Outside(e))) => {
                format!("not finished ({e}); it is retried by the next `ablate run`")
            }
            Attempt::Ran(Err(Unfinished::Lost(e))) => {
                format!("left to the process that took it over ({e})")
            }
            Attempt::Settled => "finished by another process".to_string(),
            Attempt::Busy(_) | Attempt::Skipped => return,
        };
        self.bar.inc(1);
        let text = self.update(counts);
        if self.plain {
            let (d, f, e, u) = counts.get();
            let finished = d + f + e + u;
            let elapsed = self.started.elapsed().as_secs_f64();
            let eta = elapsed / finished as f64 * self.total.saturating_sub(finished) as f64;
            eprintln!(
                "[{finished}/{}] run {id} {what}: {text}, ETA {}",
                self.total,
                crate::progress::clock(eta)
            );
        }
    }

    fn ended(&self) {
        self.bar.finish_and_clear();
    }
}

pub fn run(args: &RunArgs) -> Result<()> {
    let jobs = match args.jobs {
        Some(0) => return Err(crate::usage!("--jobs 0: expected at least 1")),
        Some(n) if n > MAX_JOBS => {
            return Err(crate::usage!("--jobs {n}: expected at most {MAX_JOBS}"))
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let (shard, shards) = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => (0, 1),
    };
    let m = load_in(&args.file, &args.set, &args.results, false)?;
    if !args.only.is_empty() {
        if m.plan.search.is_some() {
            return Err(crate::usage!(
                "--only: study '{}' is a [search], whose rungs decide which runs run",
                m.study
            ));
        }
        if let Some(id) = args
            .only
            .iter()
            .find(|id| !m.plan.runs.iter().any(|r| r.id == **id))
        {
            return Err(crate::usage!(
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
    let started = std::time::Instant::now();
    // Watchable from a browser on the shared folder while it runs.
    let pages = super::runs::LivePages::start(&study_dir);
    let failed = match &m.plan.search {
        None => {
            let batch: Vec<&PlannedRun> = m
                .plan
                .runs
                .iter()
                .filter(|r| r.index % shards == shard)
                .filter(|r| args.only.is_empty() || args.only.contains(&r.id))
                .collect();
            let t = run_batch(
                &m,
                &study_dir,
                &batch,
                jobs,
                args.retry_failed,
                &m.study,
                &Terminal,
            )?;
            eprintln!(
                "{}; results in {}",
                t.line(&format!("study '{}'{shard_text}", m.study)),
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
            &Terminal,
        )?,
    };
    drop(pages);
    let (busy, available) = (
        ionode_study::executor::busy_seconds(),
        started.elapsed().as_secs_f64() * jobs as f64,
    );
    if available > 0.0 {
        eprintln!(
            "workers busy {:.0} % of the time ({busy:.1} of {available:.1} core-seconds on {jobs} \
             worker(s){shard_text})",
            100.0 * busy / available
        );
    }
    if failed > 0 {
        bail!(
            "{failed} runs failed; `ablate status {}` lists them",
            study_dir.display()
        );
    }
    Ok(())
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
    let runs = ionode_study::tpe::study_runs(&plan, &study_dir)?;
    for r in runs.iter() {
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
        runs.len(),
        failed.len(),
        damaged.len()
    );
    if let Some(search) = &plan.search {
        out.push_str(&super::search_text::status(&plan, search, &study_dir)?);
    }
    for (id, first) in &failed {
        out.push_str(&format!("failed {id}: {first}\n"));
    }
    for (id, why) in &damaged {
        out.push_str(&format!("damaged {id}: {why} (`ablate run` reruns it)\n"));
    }
    super::print_stdout(&out)
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
        crate::usage!("{}", problems[0])
    })?;
    let m = load_in(&args.file, &args.set, &args.results, false)?;
    let study_dir = args.results.join(&m.study);
    // The jobs run in this folder whatever folder they are submitted from, with this
    // binary, and log to absolute paths.
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let exe = std::env::current_exe().context("cannot tell where this ablate binary is")?;
    let logs = cwd.join(&study_dir).join("slurm");
    let cwd_text = ionode_study::slurm::directive_path("the working folder", &cwd)
        .map_err(|e| crate::usage!("{e}"))?;
    let logs_text = ionode_study::slurm::directive_path("the log folder", &logs)
        .map_err(|e| crate::usage!("{e}"))?;
    let text = |p: &Path, what: &str| {
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| crate::usage!("{what} '{}' is not valid UTF-8", p.display()))
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
    let scripts = ionode_study::slurm::write_scripts(&options, &study, &study_dir)?;
    let n = args.shards;
    if !args.submit {
        eprintln!(
            "wrote {} ({n} array tasks) and {}; submit with `sbatch {}` (or rerun with --submit, \
             which also submits the report after the array)",
            scripts.array.display(),
            scripts.report.display(),
            scripts.array.display()
        );
        return Ok(());
    }
    let jobs = ionode_study::slurm::submit(&scripts)?;
    super::print_stdout(&format!(
        "submitted array job {} ({n} tasks, study '{}', {} runs); report job {} runs \
         `ablate report` after it\nlogs: {}\n",
        jobs.array,
        m.study,
        m.plan.runs.len(),
        jobs.report,
        logs.display()
    ))
}
