//! Faults the run store survives, each driven through the real `ablate` binary: stale
//! claims taken over by several processes at once, write failures (a full disk), a damaged
//! generated input, a changed search grid, signals, a suspended process that lost its run,
//! concurrent `--retry-failed`, and the leftovers of killed processes.

mod common;
use common::{ablate, marked, plan_ids, text};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn experiments(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(name)
        .canonicalize()
        .expect("the experiment exists")
}

/// A manifest in `dir` that includes `base` (an experiment) and adds `extra`.
fn manifest(dir: &Path, name: &str, base: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let body = format!(
        "include = [\"{}\"]\nstudy = \"{name}\"\n{extra}",
        experiments(base).display()
    );
    std::fs::write(&path, body).unwrap();
    path
}

/// One neural run of about `epochs / 170` seconds per seed.
fn slow(dir: &Path, name: &str, seeds: usize, epochs: usize) -> PathBuf {
    manifest(
        dir,
        name,
        "smoke.toml",
        &format!(
            "seeds = {seeds}\n[base.finetune]\nepochs = {epochs}\nbatch_size = 16\n\
             early_stopping = {{ patience = 100000, min_delta = 0.0 }}\n[grid]\n\
             \"method\" = [\"neural\"]\n\"model.variant\" = [\"attention_node\"]\n\
             \"model.electroneutrality\" = [{{ kind = \"hard\" }}]\n\"pretrain\" = [false]\n\
             \"split.n_train\" = [120]\n"
        ),
    )
}

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ablate"));
    c.args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().expect("the ablate binary runs")
}

/// A child's stderr, read to the end by a thread so that a test can wait for a line while
/// the child runs.
struct Followed {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

fn follow(stderr: std::process::ChildStderr) -> Followed {
    use std::io::BufRead;
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = text.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    Followed { text, reader }
}

impl Followed {
    fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// Everything the child wrote, once it has closed its stderr.
    fn finish(self) -> String {
        self.reader.join().unwrap();
        let text = self.text.lock().unwrap();
        text.clone()
    }
}

fn run_ok(args: &[&str]) -> String {
    let r = ablate(args);
    assert!(r.status.success(), "{args:?}: {}", text(&r.stderr));
    text(&r.stderr)
}

/// Waits until `cond` holds (panics after a minute).
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

/// Every file under `dir` whose name `pick` selects.
fn files(dir: &Path, pick: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if pick(&e.file_name().to_string_lossy()) {
            out.push(p.clone());
        }
        if p.is_dir() {
            out.extend(files(&p, pick));
        }
    }
    out
}

fn claims(study: &Path) -> Vec<PathBuf> {
    files(study, &|n| n.starts_with("CLAIM"))
}

fn temporaries(study: &Path) -> Vec<PathBuf> {
    files(study, &|n| n.ends_with(".tmp"))
}

/// The metrics of every DONE run, by id (floats print shortest round-trip: equal text,
/// equal bits).
fn metrics(study: &Path) -> std::collections::BTreeMap<String, String> {
    plan_ids(study)
        .into_iter()
        .filter(|id| study.join("runs").join(id).join("DONE").exists())
        .map(|id| {
            let r =
                ionode_study::record::read(&study.join("runs").join(&id).join("run.h5")).unwrap();
            (id, format!("{:?}", r.metrics))
        })
        .collect()
}

/// `N runs done` of a sweep's closing line(s), summed.
fn done_count(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| {
            let i = l.find(" runs done")?;
            l[..i].split_whitespace().last()?.parse::<usize>().ok()
        })
        .sum()
}

fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn hostname() -> String {
    ionode_study::process::hostname()
}

/// Runs `file` to the end in `dir/ref` (the undisturbed reference) and only plans it in
/// `dir/other`; returns the two results roots.
fn reference_and_planned(dir: &Path, file: &str) -> (PathBuf, PathBuf) {
    let (reference, other) = (dir.join("ref"), dir.join("other"));
    run_ok(&[
        "run",
        file,
        "--jobs",
        "2",
        "--results",
        reference.to_str().unwrap(),
    ]);
    run_ok(&["plan", file, "--results", other.to_str().unwrap()]);
    (reference, other)
}

/// Copies the generated pre-training data of study `from` into study `to`, whole or cut to
/// half its bytes (as a full disk or a kill would leave it).
fn copy_data(from: &Path, to: &Path, truncate: bool) {
    let data = to.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for f in std::fs::read_dir(from.join("data")).unwrap() {
        let f = f.unwrap();
        let bytes = std::fs::read(f.path()).unwrap();
        let keep = if truncate {
            bytes.len() / 2
        } else {
            bytes.len()
        };
        std::fs::write(data.join(f.file_name()), &bytes[..keep]).unwrap();
    }
}

#[test]
fn stale_claims_taken_over_by_three_processes_at_once_run_each_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiments("smoke.toml");
    let file = file.to_str().unwrap();
    let (reference, shared) = reference_and_planned(dir.path(), file);
    let study = shared.join("smoke");
    let (pid, host) = (dead_pid(), hostname());
    for id in plan_ids(&study) {
        let run = study.join("runs").join(&id);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("CLAIM.0"),
            format!("pid {pid}\nhost {host}\nstarted 1\ntoken dead\n"),
        )
        .unwrap();
    }
    let args = [
        "run",
        file,
        "--jobs",
        "1",
        "--results",
        shared.to_str().unwrap(),
    ];
    let children: Vec<Child> = (0..3).map(|_| spawn(&args, &[])).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut done = 0;
    for o in &outputs {
        assert!(o.status.success(), "{}", text(&o.stderr));
        done += done_count(&text(&o.stderr));
    }
    let total = plan_ids(&study).len();
    assert_eq!(done, total, "each run ran in exactly one process");
    assert!(marked(&study, "FAILED").is_empty());
    assert_eq!(marked(&study, "DONE").len(), total);
    assert!(claims(&study).is_empty(), "{:?}", claims(&study));
    assert!(temporaries(&study).is_empty(), "{:?}", temporaries(&study));
    assert_eq!(metrics(&study), metrics(&reference.join("smoke")));
}

/// Runs `ablate` with a file-size limit: any write past `bytes` fails (EFBIG, as a full
/// disk fails a write), as an I/O error the run cannot be blamed for.
fn run_with_file_limit(args: &[&str], bytes: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(env!("CARGO_BIN_EXE_ablate"));
    c.args(args).env_remove("RUST_LOG");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn a_write_failure_leaves_no_failed_run_and_the_search_resumes_as_if_undisturbed() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiments("search_smoke.toml");
    let file = file.to_str().unwrap();
    let (reference, faulty) = reference_and_planned(dir.path(), file);
    // The generated pre-training set is there (as after an earlier, complete run).
    copy_data(
        &reference.join("search_smoke"),
        &faulty.join("search_smoke"),
        false,
    );
    let run = [
        "run",
        file,
        "--jobs",
        "2",
        "--results",
        faulty.to_str().unwrap(),
    ];
    let r = run_with_file_limit(&run, 20_000);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("not marked FAILED"), "{err}");
    assert!(err.contains("rerun the same command to resume"), "{err}");
    let study = faulty.join("search_smoke");
    assert!(
        marked(&study, "FAILED").is_empty(),
        "a write failure is no FAILED run"
    );
    assert!(
        !study.join("search/rung-0.json").exists(),
        "no rung is decided on missing runs"
    );
    assert!(temporaries(&study).is_empty(), "{:?}", temporaries(&study));
    assert!(claims(&study).is_empty());
    // The space is back: the same command resumes, to the undisturbed search's decisions.
    run_ok(&run);
    for rung in 0..3 {
        let name = format!("search/rung-{rung}.json");
        assert_eq!(
            std::fs::read_to_string(study.join(&name)).unwrap(),
            std::fs::read_to_string(reference.join("search_smoke").join(&name)).unwrap(),
            "{name}"
        );
    }
    assert_eq!(metrics(&study), metrics(&reference.join("search_smoke")));
}

#[test]
fn a_damaged_generated_pretraining_set_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "gen",
        "smoke.toml",
        "seeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"mlp\"]\n\
         \"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"split.n_train\" = [40]\n",
    );
    let m = m.to_str().unwrap();
    let (reference, damaged) = reference_and_planned(dir.path(), m);
    copy_data(&reference.join("gen"), &damaged.join("gen"), true);
    let err = run_ok(&["run", m, "--results", damaged.to_str().unwrap()]);
    assert!(
        err.contains("is damaged") && err.contains("generating it again"),
        "{err}"
    );
    assert!(marked(&damaged.join("gen"), "FAILED").is_empty());
    assert_eq!(
        metrics(&damaged.join("gen")),
        metrics(&reference.join("gen"))
    );
}

#[test]
fn a_changed_search_never_reads_the_old_search_state() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let res = results.to_str().unwrap();
    let m = manifest(dir.path(), "hs", "search_smoke.toml", "");
    let m = m.to_str().unwrap();
    run_ok(&["run", m, "--jobs", "2", "--results", res]);
    let study = results.join("hs");
    let out = text(&ablate(&["status", study.to_str().unwrap()]).stdout);
    assert!(out.contains("winner: candidate"), "{out}");
    // Fewer candidates: the old rung files name candidates that are not there any more.
    std::fs::write(
        m,
        format!(
            "include = [\"{}\"]\nstudy = \"hs\"\n[grid]\n\"model.variant\" = [\"node\"]\n",
            experiments("search_smoke.toml").display()
        ),
    )
    .unwrap();
    let r = ablate(&["run", m, "--results", res]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("holds a different plan"));
    run_ok(&["plan", m, "--force", "--results", res]);
    let r = ablate(&["status", study.to_str().unwrap()]);
    let out = text(&r.stdout);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(!out.contains("winner"), "{out}");
    assert!(
        out.contains("rung 1 (finetune.epochs = 3): waits for rung 0"),
        "{out}"
    );
    let r = ablate(&["report", study.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let search = std::fs::read_to_string(study.join("report/tables/search.md")).unwrap();
    assert!(search.contains("no winner yet"), "{search}");
    // Run to the end: the same decisions as the new manifest from scratch.
    run_ok(&["run", m, "--jobs", "2", "--results", res]);
    let fresh = dir.path().join("fresh");
    run_ok(&[
        "run",
        m,
        "--jobs",
        "2",
        "--results",
        fresh.to_str().unwrap(),
    ]);
    for rung in 0..3 {
        let name = format!("search/rung-{rung}.json");
        assert_eq!(
            std::fs::read_to_string(study.join(&name)).unwrap(),
            std::fs::read_to_string(fresh.join("hs").join(&name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn sigterm_releases_claims_and_removes_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = slow(dir.path(), "term", 4, 1200);
    let results = dir.path().join("results");
    let args = [
        "run",
        m.to_str().unwrap(),
        "--jobs",
        "2",
        "--results",
        results.to_str().unwrap(),
    ];
    let study = results.join("term");
    let child = spawn(&args, &[]);
    wait_for("two claims", || claims(&study).len() == 2);
    signal(&child, "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("interrupted (SIGTERM)"));
    assert!(claims(&study).is_empty(), "{:?}", claims(&study));
    assert!(temporaries(&study).is_empty(), "{:?}", temporaries(&study));
    // Another process starts at once (no stale limit to wait out) and finishes the study.
    let start = Instant::now();
    run_ok(&args);
    assert_eq!(marked(&study, "DONE").len(), 4);
    assert!(start.elapsed() < Duration::from_secs(120));

    // A report interrupted while it writes leaves the last complete report whole.
    run_ok(&["report", study.to_str().unwrap()]);
    let report = study.join("report");
    let before = files(&report, &|_| true);
    let child = spawn(&["report", study.to_str().unwrap()], &[]);
    wait_for("the report's temporary folder", || {
        !files(&study, &|n| n.starts_with("report.") && n.ends_with(".tmp")).is_empty()
    });
    signal(&child, "-INT");
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(128 + 2) {
        assert!(temporaries(&study).is_empty(), "{:?}", temporaries(&study));
        assert_eq!(files(&report, &|_| true), before);
    }
}

#[test]
fn a_suspended_process_that_lost_its_run_writes_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let m = slow(dir.path(), "susp", 1, 1200);
    let results = dir.path().join("results");
    let args = [
        "run",
        m.to_str().unwrap(),
        "--jobs",
        "1",
        "--results",
        results.to_str().unwrap(),
    ];
    let study = results.join("susp");
    let stale = [("IONODE_CLAIM_STALE_SECS", "2")];
    // A is suspended once it runs the run: after "run starts", which it logs only when its
    // claim is confirmed. Suspended any earlier (between creating its claim file and
    // confirming it), A would find B's claim on waking and wait for B, a correct outcome
    // but not the one this test is about: a process that loses a run it is running.
    let verbose: Vec<&str> = std::iter::once("-v").chain(args).collect();
    let mut a = spawn(&verbose, &stale);
    let a_log = follow(a.stderr.take().expect("A's stderr is piped"));
    wait_for("A to start the run", || a_log.text().contains("run starts"));
    signal(&a, "-STOP");
    // B watches A's claim for 2 s without a heartbeat, then takes the run over.
    let b = spawn(&args, &stale);
    let taken = || {
        files(&study, &|n| n == "CLAIM.1").len() == 1
            && files(&study, &|n| n == "CLAIM.0").is_empty()
    };
    wait_for("B's takeover", taken);
    signal(&a, "-CONT");
    // A wakes while B runs: it must not delete B's claim.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        files(&study, &|n| n == "CLAIM.1").len() == 1 || marked(&study, "DONE").len() == 1,
        "B's claim survives A"
    );
    let (a, b) = (a.wait().unwrap(), b.wait_with_output().unwrap());
    let (ea, eb) = (a_log.finish(), text(&b.stderr));
    assert!(a.success(), "{ea}");
    assert!(b.status.success(), "{eb}");
    assert!(
        ea.contains("run left to the process that took it over"),
        "{ea}"
    );
    assert_eq!(done_count(&eb), 1, "{eb}");
    assert_eq!(done_count(&ea), 0, "{ea}");
    let st = text(&ablate(&["status", study.to_str().unwrap()]).stdout);
    assert!(
        st.starts_with("study 'susp': 1 runs: 1 done, 0 failed, 0 damaged"),
        "{st}"
    );
    assert!(claims(&study).is_empty() && temporaries(&study).is_empty());
}

#[test]
fn concurrent_retry_failed_processes_retry_each_failure_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "div",
        "smoke.toml",
        "seeds = 3\n[base.finetune]\nlearning_rate = 1e300\n[grid]\n\"method\" = [\"neural\"]\n\
         \"model.variant\" = [\"mlp\"]\n\"model.electroneutrality\" = [{ kind = \"hard\" }]\n\
         \"pretrain\" = [false]\n\"split.n_train\" = [40]\n",
    );
    let results = dir.path().join("results");
    let args = [
        "-v",
        "run",
        m.to_str().unwrap(),
        "--jobs",
        "1",
        "--retry-failed",
        "--results",
        results.to_str().unwrap(),
    ];
    let first = ablate(&args[1..]);
    assert_eq!(first.status.code(), Some(1));
    let study = results.join("div");
    let total = plan_ids(&study).len();
    assert_eq!(marked(&study, "FAILED").len(), total);
    let children: Vec<Child> = (0..2).map(|_| spawn(&args, &[])).collect();
    let starts: usize = children
        .into_iter()
        .map(|c| {
            text(&c.wait_with_output().unwrap().stderr)
                .matches("run starts")
                .count()
        })
        .sum();
    assert_eq!(starts, total, "each failed run was retried once in all");
}

#[test]
fn leftovers_of_killed_processes_go_and_messages_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "left",
        "smoke.toml",
        "seeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"mlp\"]\n\
         \"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [false]\n",
    );
    let results = dir.path().join("results");
    let res = results.to_str().unwrap();
    run_ok(&["run", m.to_str().unwrap(), "--results", res]);
    let study = results.join("left");
    let ids = plan_ids(&study);
    let (pid, host) = (dead_pid(), hostname());
    let run0 = study.join("runs").join(&ids[0]);
    let leftovers = [
        run0.join("CLAIM.0"),
        run0.join(format!("run.h5.3-{pid}@{host}.tmp")),
        study.join(format!("plan.json.0-{pid}@{host}.tmp")),
    ];
    std::fs::write(
        &leftovers[0],
        format!("pid {pid}\nhost {host}\nstarted 1\ntoken x\n"),
    )
    .unwrap();
    for l in &leftovers[1..] {
        std::fs::write(l, "half").unwrap();
    }
    // The same manifest named by another path is the same plan.
    let other_path = dir.path().join("sub/../left.toml");
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    let err = run_ok(&["run", other_path.to_str().unwrap(), "--results", res]);
    assert!(!err.contains("different plan"), "{err}");
    for l in &leftovers {
        assert!(!l.exists(), "{} is left", l.display());
    }
    // An empty DONE marker and an empty plan say so.
    std::fs::write(run0.join("DONE"), "").unwrap();
    let out = text(&ablate(&["status", study.to_str().unwrap()]).stdout);
    assert!(out.contains("DONE marker is empty"), "{out}");
    std::fs::write(study.join("plan.json"), "").unwrap();
    let r = ablate(&["status", study.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("plan.json' is empty"),
        "{}",
        text(&r.stderr)
    );
}
