//! `ablate runs`, `ablate compare` and `ablate tag`: tracking across studies
//! (`ionode-track`), with tags and notes kept beside the runs (`ionode_study::annotations`).

use crate::cli::{CompareArgs, IndexArgs, RunsArgs, RunsFormat, TagArgs};
use anyhow::{Context, Result};
use ionode_study::annotations;
use ionode_study::facts::Caching;
use ionode_track::filter::Filter;
use ionode_track::{compare, find, table};
use std::fmt::Write as _;

/// The most runs `--limit` may name (a count a user gives is bounded before use).
const MAX_LIMIT: usize = 100_000_000;

pub fn runs(args: &RunsArgs) -> Result<()> {
    if let Some(n) = args.limit.filter(|n| *n == 0 || *n > MAX_LIMIT) {
        return Err(crate::usage!("--limit {n}: expected 1 to {MAX_LIMIT} runs"));
    }
    if args.format == RunsFormat::Parquet && args.out.is_none() {
        return Err(crate::usage!(
            "--format parquet writes a file: give --out FILE.parquet"
        ));
    }
    let sort: Vec<table::SortKey> = args
        .sort
        .iter()
        .map(|s| table::SortKey::parse(s))
        .collect::<Result<_, _>>()?;
    // The expression's syntax first: a typo is reported before any run is read.
    let parsed = args
        .filter
        .as_deref()
        .map(|e| ionode_track::filter::parse(e).map(|x| (e, x)))
        .transpose()?;
    // Only the facts the query reads are kept of each run.
    let mut wanted: Vec<String> = ["run", "study"].map(String::from).to_vec();
    if let Some((_, expr)) = &parsed {
        ionode_track::filter::fields_of(expr, &mut wanted);
    }
    wanted.extend(sort.iter().map(|k| k.key.clone()));
    match &args.columns {
        Some(c) => wanted.extend(c.iter().map(|c| c.trim().to_string())),
        None => wanted.extend(table::DEFAULT_COLUMNS.map(String::from)),
    }
    let want = if args.fields {
        find::Want::default()
    } else {
        find::Want::of(wanted.iter().map(String::as_str))
    };
    let start = std::time::Instant::now();
    let found = find::find(&args.dirs, &want)?;
    let fields = &found.fields;
    if args.fields {
        let mut text = String::new();
        for (k, n) in fields.counts() {
            writeln!(text, "{k}\t{n}")?;
        }
        return super::print_stdout(&text);
    }
    let filter = parsed
        .map(|(text, expr)| Filter::checked(text, expr, fields))
        .transpose()?;
    table::check_sort(&sort, fields)?;
    let total = found.rows.len();
    let mut rows: Vec<find::Row> = match &filter {
        Some(f) => found
            .rows
            .into_iter()
            .filter(|r| f.matches(&r.facts))
            .collect(),
        None => found.rows,
    };
    table::sort(&mut rows, &sort);
    let matched = rows.len();
    if let Some(n) = args.limit {
        rows.truncate(n);
    }
    let columns = table::columns(args.columns.as_deref(), &found.fields, &rows)?;
    let text = match args.format {
        RunsFormat::Table => table::terminal(&rows, &columns),
        RunsFormat::Csv => table::csv(&rows, &columns)?,
        RunsFormat::Json => table::json(&rows, &columns)?,
        RunsFormat::Parquet => String::new(),
    };
    match (&args.out, args.format) {
        (Some(out), RunsFormat::Parquet) => table::parquet(&rows, &columns, out)?,
        (Some(out), _) => ionode_study::output::write_text(out, &text)
            .with_context(|| format!("cannot write '{}'", out.display()))?,
        (None, _) => super::print_stdout(&text)?,
    }
    // What was found goes to stderr, so stdout stays the table.
    let mut note = format!("{matched} of {total} finished run(s) match");
    if args.limit.is_some_and(|n| n < matched) {
        write!(note, "; {} shown", rows.len())?;
    }
    if found.unfinished > 0 {
        write!(note, "; {} planned run(s) not finished", found.unfinished)?;
    }
    write!(
        note,
        "; facts of {} run(s) cached, {} read from run.h5; {:.2} s",
        found.cached,
        found.rebuilt,
        start.elapsed().as_secs_f64()
    )?;
    eprintln!("{note}");
    for (path, why) in &found.damaged {
        eprintln!("warning: run '{}' left out: {why}", path.display());
    }
    if let Some(out) = &args.out {
        eprintln!("wrote '{}'", out.display());
    }
    Ok(())
}

pub fn compare(args: &CompareArgs) -> Result<()> {
    let is_study = |p: &std::path::Path| p.join("plan.json").is_file();
    if is_study(&args.a) || is_study(&args.b) {
        if !(is_study(&args.a) && is_study(&args.b)) {
            return Err(crate::usage!(
                "compare '{}' and '{}': give two runs or two study folders (with plan.json), not one of each",
                args.a.display(),
                args.b.display()
            ));
        }
        return compare_studies(args);
    }
    let a = find::one(&args.a)?;
    let b = find::one(&args.b)?;
    let c = compare::runs(&a, &b);
    let text = if args.json {
        let line = |l: &compare::Line| serde_json::json!({"key": l.key, "a": l.a, "b": l.b, "difference": l.difference()});
        let v = serde_json::json!({
            "a": a.path.display().to_string(),
            "b": b.path.display().to_string(),
            "differs": c.differs.iter().map(line).collect::<Vec<_>>(),
            "same": c.same,
            "results": c.results.iter().map(line).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&v)? + "\n"
    } else {
        compare::text(&a, &b, &c)
    };
    super::print_stdout(&text)
}

pub fn tag(args: &TagArgs) -> Result<()> {
    let t = &args.target;
    let is_study = t.join("plan.json").is_file();
    let is_run = t.join(ionode_study::store::RUN_FILE).is_file();
    if !is_study && !is_run {
        return Err(crate::usage!(
            "'{}' is neither a study folder (with plan.json) nor a run folder (with run.h5)",
            t.display()
        ));
    }
    if args.add.is_empty() && args.remove.is_empty() && args.note.is_none() && !args.clear_note {
        let a = annotations::read(t)?;
        let tags: Vec<&str> = a.tags.iter().map(String::as_str).collect();
        let mut text = format!("tags: {}\n", tags.join(" "));
        if let Some(n) = &a.note {
            writeln!(text, "note: {n}")?;
        }
        return super::print_stdout(&text);
    }
    for tag in args.add.iter().chain(&args.remove) {
        if let Some(p) = annotations::tag_problem(tag) {
            return Err(crate::usage!("--add/--remove: {p}"));
        }
    }
    let mut a = annotations::read(t)?;
    for tag in &args.remove {
        a.tags.remove(tag);
    }
    a.tags.extend(args.add.iter().cloned());
    if args.clear_note {
        a.note = None;
    }
    if let Some(n) = &args.note {
        a.note = Some(n.clone());
    }
    annotations::write(t, &a)?;
    let tags: Vec<&str> = a.tags.iter().map(String::as_str).collect();
    eprintln!(
        "{} '{}': tags {}{}",
        if is_study { "study" } else { "run" },
        t.display(),
        if tags.is_empty() {
            "(none)".to_string()
        } else {
            tags.join(" ")
        },
        if a.note.is_some() { "; a note" } else { "" }
    );
    Ok(())
}

pub fn index(args: &IndexArgs) -> Result<()> {
    let path = ionode_track::pages::write_index(&args.results)?;
    eprintln!("wrote '{}'", path.display());
    Ok(())
}

/// Rewrites `results/index.html` after a command changed a study, if `results` holds an
/// index ionode wrote or none; a failure is a note, never the command's error.
pub fn refresh_index(results: &std::path::Path) {
    if let Err(e) = ionode_track::pages::write_index(results) {
        eprintln!("note: results index not written: {e}");
    }
}

/// While `ablate run` works: the study's progress page rewritten every
/// `pages::REFRESH_SECONDS` (or ten times as long as writing it took, for a study so big
/// that reading its markers is slow), then once more and the results index when dropped.
pub struct LivePages {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    study_dir: std::path::PathBuf,
}

impl LivePages {
    pub fn start(study_dir: &std::path::Path) -> LivePages {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, dir) = (stop.clone(), study_dir.to_path_buf());
        let handle = std::thread::Builder::new()
            .name("progress-page".into())
            .spawn(move || {
                // Off the runs' path: the index reads every study's caches.
                if let Some(results) = dir.parent() {
                    refresh_index(results);
                }
                // A sweep's run ids, read once; a search's grow as it goes.
                let sweep = ionode_study::manifest::Plan::read_ids(&dir).ok().flatten();
                let progress = || match &sweep {
                    Some((study, ids)) => {
                        Ok(ionode_track::pages::progress_of(&dir, study.clone(), ids))
                    }
                    None => ionode_track::pages::progress(&dir),
                };
                let mut warned = false;
                while !flag.load(Ordering::Relaxed) {
                    let t = std::time::Instant::now();
                    let written =
                        progress().and_then(|p| ionode_track::pages::write_progress_page(&dir, &p));
                    if let Err(e) = written {
                        if !warned {
                            tracing::warn!("progress page not written: {e}");
                            warned = true;
                        }
                    }
                    let every = std::time::Duration::from_secs(u64::from(
                        ionode_track::pages::REFRESH_SECONDS,
                    ))
                    .max(t.elapsed() * 10);
                    let until = std::time::Instant::now() + every;
                    while std::time::Instant::now() < until && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            })
            .ok();
        LivePages {
            stop,
            handle,
            study_dir: study_dir.to_path_buf(),
        }
    }
}

impl Drop for LivePages {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Err(e) = ionode_track::pages::write_progress(&self.study_dir) {
            eprintln!("note: progress page not written: {e}");
        }
        if let Some(results) = self.study_dir.parent() {
            refresh_index(results);
        }
    }
}

fn compare_studies(args: &CompareArgs) -> Result<()> {
    use ionode_report::compare;
    let a = ionode_report::collect::collect(&args.a, Caching::Write)?;
    let b = ionode_report::collect::collect(&args.b, Caching::Write)?;
    let c = compare::compare(&a, &b);
    let text = if args.json {
        let cells: Vec<serde_json::Value> = c
            .shared
            .iter()
            .map(|x| {
                serde_json::json!({
                    "cell": x.cell, "configuration": x.label, "seeds_a": x.seeds_a,
                    "seeds_b": x.seeds_b, "mean_a": x.mean_a, "mean_b": x.mean_b,
                    "pairs": x.paired.n, "difference": x.paired.mean_diff,
                    "ci95": [x.paired.ci95.0, x.paired.ci95.1], "p_t": x.paired.p_t,
                    "p_wilcoxon": x.paired.p_wilcoxon, "significant": x.paired.significant(),
                })
            })
            .collect();
        let v = serde_json::json!({
            "a": args.a.display().to_string(), "b": args.b.display().to_string(),
            "metric": "measured test MAE, mean over each seed's folds",
            "shared": cells, "only_a": c.only_a, "only_b": c.only_b,
        });
        serde_json::to_string_pretty(&v)? + "\n"
    } else {
        compare::text(&a, &b, &c)
    };
    super::print_stdout(&text)
}
