//! End-to-end tests of tracking across studies: `ablate runs` over a study and an
//! `ablate train` folder (filter, sort, columns, every format, every error), the facts cache
//! beside each run (rebuilt when a run is damaged or rerun), tags and notes (no checksum
//! moves), and `ablate compare`.

mod common;
use common::{ablate, plan_ids, text};
use std::path::{Path, PathBuf};

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/smoke.toml")
        .canonicalize()
        .unwrap()
}

fn exp(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/exp")
        .join(name)
        .display()
        .to_string()
}

fn ok(args: &[&str]) -> (String, String) {
    let r = ablate(args);
    assert!(
        r.status.success(),
        "{args:?}: {}{}",
        text(&r.stdout),
        text(&r.stderr)
    );
    (text(&r.stdout), text(&r.stderr))
}

/// A usage error: exit code 2 and one `error:` line; returns it.
fn usage(args: &[&str]) -> String {
    let r = ablate(args);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    err
}

/// RESULTS/track: a 4-run study (node and mlp, 2 seeds, no pre-training), and
/// RESULTS/one: an `ablate train` run.
fn results(dir: &Path) -> PathBuf {
    let results = dir.join("results");
    let manifest = dir.join("track.toml");
    std::fs::write(
        &manifest,
        format!(
            "include = [\"{}\"]\nstudy = \"track\"\nseeds = 2\n[grid]\n\
             \"method\" = [\"neural\"]\n\"model.variant\" = [\"node\", \"mlp\"]\n\
             \"model.electroneutrality\" = [{{ kind = \"hard\" }}]\n\"pretrain\" = [false]\n\
             \"split.n_train\" = [40]\n",
            smoke().display()
        ),
    )
    .unwrap();
    ok(&[
        "run",
        manifest.to_str().unwrap(),
        "--jobs",
        "2",
        "--results",
        results.to_str().unwrap(),
    ]);
    let config = dir.join("one.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"one\"\nseed = 4\nmethod = \"neural\"\n\
             [model]\nembed_dim = 4\nhidden = 8\nsolver = {{ kind = \"rk4\", steps = 2 }}\n\
             [data]\nmeasured = [\"{}\"]\n\
             [finetune]\nepochs = 2\nbatch_size = 16\n\
             [split]\nkind = \"by_family\"\ntest_family = \"NaCl+MgSO4\"\nvalidation_fraction = 0.2\n",
            exp("nf270_mixtures.csv")
        ),
    )
    .unwrap();
    ok(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        results.join("one").to_str().unwrap(),
    ]);
    results
}

fn json_rows(stdout: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn done_sum(run: &Path) -> String {
    let done = std::fs::read_to_string(run.join("DONE")).unwrap();
    done.split_whitespace().nth(1).unwrap().to_string()
}

fn facts_sum(run: &Path) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("facts.json")).unwrap()).unwrap();
    v["run_file"]["blake3"].as_str().unwrap().to_string()
}

#[test]
fn runs_lists_filters_sorts_and_exports_every_finished_run() {
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path());
    let r = results.to_str().unwrap();
    let study = results.join("track");

    // Every run, study and train alike; facts were cached when each run finished.
    let (out, err) = ok(&["runs", r]);
    assert!(err.contains("5 of 5 finished run(s) match"), "{err}");
    assert!(
        err.contains("facts of 5 run(s) cached, 0 read from run.h5"),
        "{err}"
    );
    let header = out.lines().next().unwrap();
    for c in ["study", "run", "method", "axes.model.variant", "axes.seed"] {
        assert!(header.contains(c), "{header}");
    }
    assert!(
        header.contains("metrics.measured.validation.mae"),
        "{header}"
    );
    assert_eq!(out.lines().count(), 1 + 5, "{out}");

    // JSON, sorted by validation MAE descending, with values equal to the records'.
    let (out, _) = ok(&[
        "runs",
        r,
        "--sort",
        "metrics.measured.validation.mae:desc",
        "--format",
        "json",
        "--columns",
        "run,path,kind,metrics.measured.validation.mae,metrics.measured.test.mae.Mg^2+",
    ]);
    let rows = json_rows(&out);
    assert_eq!(rows.len(), 5);
    let maes: Vec<f64> = rows
        .iter()
        .map(|r| r["metrics.measured.validation.mae"].as_f64().unwrap())
        .collect();
    assert!(maes.windows(2).all(|w| w[0] >= w[1]), "{maes:?}");
    for row in &rows {
        let path = Path::new(row["path"].as_str().unwrap());
        let record = ionode_study::record::read(&path.join("run.h5")).unwrap();
        let m = record.metrics.measured.as_ref().unwrap();
        assert_eq!(
            row["metrics.measured.validation.mae"].as_f64(),
            m.validation.as_ref().unwrap().mae,
            "facts equal the record"
        );
        let mg = m
            .test
            .as_ref()
            .unwrap()
            .per_ion
            .iter()
            .find(|i| i.species == "Mg^2+");
        assert_eq!(
            row.get("metrics.measured.test.mae.Mg^2+")
                .and_then(|v| v.as_f64()),
            mg.and_then(|i| i.mae)
        );
        assert_eq!(row["run"].as_str().unwrap(), record.head.provenance.run_id);
    }
    assert_eq!(rows.iter().filter(|r| r["kind"] == "train").count(), 1);

    // Filters.
    let count = |expr: &str| {
        let (out, _) = ok(&["runs", r, "--where", expr, "--format", "json"]);
        json_rows(&out).len()
    };
    assert_eq!(count("config.model.variant = 'node'"), 2);
    assert_eq!(
        count("config.model.variant in ('node', 'mlp') and kind = 'study'"),
        4
    );
    assert_eq!(count("kind = 'train' or axes.seed = 1"), 3);
    assert_eq!(count("not study ~ '^tra'"), 1);
    assert_eq!(count("axes.seed = null"), 1);
    let threshold = maes[2];
    assert_eq!(
        count(&format!("metrics.measured.validation.mae < {threshold:e}")),
        2
    );

    // CSV and Parquet of the same columns agree with the JSON.
    let cols = "run,config.model.hidden,metrics.measured.validation.mae,synthetic,tags";
    let (csv, _) = ok(&[
        "runs",
        r,
        "--columns",
        cols,
        "--format",
        "csv",
        "--sort",
        "run",
    ]);
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), cols);
    assert_eq!(lines.count(), 5);
    let pq = tmp.path().join("runs.parquet");
    let (_, err) = ok(&[
        "runs",
        r,
        "--columns",
        cols,
        "--format",
        "parquet",
        "--out",
        pq.to_str().unwrap(),
        "--sort",
        "run",
    ]);
    assert!(err.contains("wrote"), "{err}");
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(&pq).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 5);
    use polars::prelude::DataType;
    assert_eq!(
        df.column("config.model.hidden").unwrap().dtype(),
        &DataType::Int64
    );
    assert_eq!(
        df.column("metrics.measured.validation.mae")
            .unwrap()
            .dtype(),
        &DataType::Float64
    );
    assert_eq!(df.column("synthetic").unwrap().dtype(), &DataType::Boolean);

    // Prefix columns, limit, the field list.
    let (out, err) = ok(&[
        "runs",
        study.to_str().unwrap(),
        "--columns",
        "config.model.*",
        "--limit",
        "2",
    ]);
    assert!(
        out.lines().next().unwrap().contains("config.model.hidden"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 3);
    assert!(
        err.contains("4 of 4 finished run(s) match; 2 shown"),
        "{err}"
    );
    let (out, _) = ok(&["runs", r, "--fields"]);
    assert!(out.contains("metrics.measured.test.mae\t5\n"), "{out}");
    assert!(out.contains("axes.seed\t4\n"), "{out}");

    // Every error is a usage error naming the argument.
    let e = usage(&["runs", r, "--where", "metrics.measured.validation.mae <"]);
    assert!(
        e.contains("column 34") && e.contains("expected a value"),
        "{e}"
    );
    let e = usage(&["runs", r, "--where", "config.model.hiden = 8"]);
    assert!(e.contains("did you mean 'config.model.hidden'"), "{e}");
    let e = usage(&["runs", r, "--columns", "run,config.model.hiden"]);
    assert!(
        e.contains("--columns 'config.model.hiden'") && e.contains("did you mean"),
        "{e}"
    );
    let e = usage(&["runs", r, "--columns", "nothing.*"]);
    assert!(
        e.contains("no run has a field starting with 'nothing.'"),
        "{e}"
    );
    let e = usage(&["runs", r, "--sort", "run:up"]);
    assert!(e.contains("KEY:desc"), "{e}");
    let e = usage(&["runs", r, "--sort", "zzz"]);
    assert!(e.contains("--sort 'zzz'"), "{e}");
    let e = usage(&["runs", r, "--format", "parquet"]);
    assert!(e.contains("--out"), "{e}");
    let e = usage(&["runs", r, "--limit", "0"]);
    assert!(e.contains("--limit 0"), "{e}");
    let e = usage(&["runs", tmp.path().join("nope").to_str().unwrap()]);
    assert!(e.contains("is not a folder"), "{e}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = usage(&["runs", empty.to_str().unwrap()]);
    assert!(e.contains("no study"), "{e}");
    // An output never replaces an input or a folder.
    let e = usage(&[
        "runs",
        r,
        "--format",
        "csv",
        "--out",
        study.to_str().unwrap(),
    ]);
    assert!(e.contains("is a folder"), "{e}");
}

#[test]
fn the_facts_cache_is_rebuilt_when_a_run_is_damaged_or_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path());
    let study = results.join("track");
    let s = study.to_str().unwrap();
    let ids = plan_ids(&study);
    let run = |i: usize| study.join("runs").join(&ids[i]);
    for i in 0..4 {
        assert_eq!(facts_sum(&run(i)), done_sum(&run(i)), "cached at finish");
    }
    let before = std::fs::read_to_string(run(0).join("facts.json")).unwrap();

    // A lost cache is rebuilt, the same.
    std::fs::remove_file(run(0).join("facts.json")).unwrap();
    let (_, err) = ok(&["runs", s]);
    assert!(
        err.contains("facts of 3 run(s) cached, 1 read from run.h5"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(run(0).join("facts.json")).unwrap(),
        before
    );

    // A cache made from another run.h5 (as before a rerun) is not trusted.
    let stale = before.replace(&done_sum(&run(0)), &"0".repeat(64));
    std::fs::write(run(0).join("facts.json"), &stale).unwrap();
    let (_, err) = ok(&["runs", s]);
    assert!(err.contains("1 read from run.h5"), "{err}");
    assert_eq!(
        std::fs::read_to_string(run(0).join("facts.json")).unwrap(),
        before
    );

    // A damaged run.h5 (its size changed) is found by its checksum and left out.
    let mut bytes = std::fs::read(run(1).join("run.h5")).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(run(1).join("run.h5"), &bytes).unwrap();
    let (out, err) = ok(&["runs", s, "--format", "json"]);
    assert_eq!(json_rows(&out).len(), 3);
    assert!(
        err.contains(&format!("warning: run '{}' left out", run(1).display())),
        "{err}"
    );
    assert!(err.contains("DONE marker recorded"), "{err}");

    // `ablate run` reruns the damaged run; its cache is made anew from the new file.
    let manifest = tmp.path().join("track.toml");
    let (_, err) = ok(&[
        "run",
        manifest.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(err.contains("1 runs done"), "{err}");
    assert_eq!(facts_sum(&run(1)), done_sum(&run(1)));
    let (_, err) = ok(&["runs", s]);
    assert!(err.contains("4 of 4 finished run(s) match"), "{err}");
    assert!(err.contains("facts of 4 run(s) cached, 0 read"), "{err}");
}

#[test]
fn tags_and_notes_change_no_checksum_and_are_filterable() {
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path());
    let r = results.to_str().unwrap();
    let study = results.join("track");
    let ids = plan_ids(&study);
    let run = study.join("runs").join(&ids[0]);
    let sums: Vec<String> = ids
        .iter()
        .map(|id| done_sum(&study.join("runs").join(id)))
        .collect();
    ok(&["report", study.to_str().unwrap()]);
    let summary = std::fs::read(study.join("summary.csv")).unwrap();

    ok(&[
        "tag",
        run.to_str().unwrap(),
        "--add",
        "best",
        "--add",
        "v2",
        "--note",
        "the one",
    ]);
    ok(&["tag", study.to_str().unwrap(), "--add", "paper-v1"]);
    ok(&[
        "tag",
        results.join("one").to_str().unwrap(),
        "--add",
        "shipped",
    ]);
    let (out, _) = ok(&["tag", run.to_str().unwrap()]);
    assert_eq!(out, "tags: best v2\nnote: the one\n");

    // Nothing a checksum covers moved, and the report says the same.
    for (id, sum) in ids.iter().zip(&sums) {
        let dir = study.join("runs").join(id);
        assert_eq!(&done_sum(&dir), sum);
        assert_eq!(
            &ionode_study::store::checksum(&dir.join("run.h5")).unwrap(),
            sum
        );
    }
    ok(&["report", study.to_str().unwrap()]);
    assert_eq!(std::fs::read(study.join("summary.csv")).unwrap(), summary);

    let count = |expr: &str| {
        let (out, _) = ok(&["runs", r, "--where", expr, "--format", "json"]);
        json_rows(&out).len()
    };
    assert_eq!(count("tags = 'best'"), 1);
    assert_eq!(
        count("tags = 'paper-v1'"),
        4,
        "a study's tags are its runs'"
    );
    assert_eq!(count("tags = 'shipped'"), 1);
    assert_eq!(count("tags ~ '^v' and note ~ 'one'"), 1);
    assert_eq!(count("tags = null"), 0);
    let (out, _) = ok(&[
        "runs",
        r,
        "--where",
        "tags = 'best'",
        "--columns",
        "run,tags,note",
    ]);
    assert!(
        out.contains("best;paper-v1;v2") && out.contains("the one"),
        "{out}"
    );

    // Removing, clearing, and bad tags.
    ok(&[
        "tag",
        run.to_str().unwrap(),
        "--remove",
        "best",
        "--clear-note",
    ]);
    assert_eq!(count("tags = 'best'"), 0);
    assert_eq!(count("note = null"), 5);
    let e = usage(&["tag", run.to_str().unwrap(), "--add", "two words"]);
    assert!(e.contains("tag 'two words' holds ' '"), "{e}");
    let e = usage(&["tag", tmp.path().to_str().unwrap(), "--add", "x"]);
    assert!(e.contains("neither a study folder"), "{e}");
    std::fs::write(run.join("tags.json"), "{\"tags\": 3}").unwrap();
    let e = usage(&["runs", r]);
    assert!(
        e.contains("tags.json") && e.contains("line 1 column"),
        "{e}"
    );
}

#[test]
fn compare_gives_the_settings_that_differ_and_every_result() {
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path());
    let (out, _) = ok(&[
        "runs",
        results.join("track").to_str().unwrap(),
        "--where",
        "axes.seed = 1",
        "--sort",
        "axes.model.variant",
        "--format",
        "json",
        "--columns",
        "path,axes.model.variant,metrics.measured.test.mae",
    ]);
    let rows = json_rows(&out);
    let (mlp, node) = (&rows[0], &rows[1]);
    assert_eq!(mlp["axes.model.variant"], "mlp");
    let (a, b) = (
        mlp["path"].as_str().unwrap(),
        node["path"].as_str().unwrap(),
    );
    let (out, _) = ok(&["compare", a, b, "--json"]);
    let c: serde_json::Value = serde_json::from_str(&out).unwrap();
    let differs: Vec<&str> = c["differs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert!(differs.contains(&"config.model.variant"), "{differs:?}");
    assert!(differs.contains(&"axes.model.variant"), "{differs:?}");
    assert!(!differs.contains(&"config.split.n_train"), "{differs:?}");
    assert!(!differs.contains(&"run"), "ids always differ: {differs:?}");
    let mae = c["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "metrics.measured.test.mae")
        .unwrap();
    let (x, y) = (
        mlp["metrics.measured.test.mae"].as_f64().unwrap(),
        node["metrics.measured.test.mae"].as_f64().unwrap(),
    );
    assert_eq!(mae["a"].as_f64(), Some(x));
    assert_eq!(mae["difference"].as_f64(), Some(y - x));
    let (out, _) = ok(&["compare", a, results.join("one").to_str().unwrap()]);
    assert!(out.contains("kind") && out.contains("train"), "{out}");
    assert!(out.contains("B − A"), "{out}");
    let e = usage(&["compare", a, tmp.path().to_str().unwrap()]);
    assert!(e.contains("is not a run folder"), "{e}");
}

#[test]
fn the_index_and_progress_pages_show_every_study_and_work_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path());
    let study = results.join("track");
    let ids = plan_ids(&study);

    // `ablate run` left both pages; the study is complete, so its page does not reload.
    let index = results.join("index.html");
    let progress = study.join("progress.html");
    let page = std::fs::read_to_string(&progress).unwrap();
    assert!(
        page.contains("<span class=\"complete\">complete</span>"),
        "{page}"
    );
    assert!(!page.contains("location.reload"), "{page}");

    // A failure and a run in progress, as their markers say: the page says so and reloads.
    let failed = study.join("runs").join(&ids[0]);
    std::fs::remove_file(failed.join("DONE")).unwrap();
    std::fs::write(
        failed.join("FAILED"),
        "training diverged at epoch 3 <loss inf>\nattempt x\n",
    )
    .unwrap();
    let claimed = study.join("runs").join(&ids[1]);
    std::fs::remove_file(claimed.join("DONE")).unwrap();
    std::fs::write(claimed.join("CLAIM.0"), "").unwrap();
    ok(&["report", study.to_str().unwrap()]);
    ok(&["index", results.to_str().unwrap()]);
    let pages = ionode_track::pages::write_progress(&study).unwrap();
    let page = std::fs::read_to_string(&pages).unwrap();
    assert!(
        page.contains("<span class=\"running\">running</span>"),
        "{page}"
    );
    assert!(
        page.contains("setTimeout(() => location.reload(), 15 * 1000)")
            && page.contains("<p id=\"stale\" class=\"failures\" hidden>"),
        "{page}"
    );
    assert!(
        page.contains("training diverged at epoch 3 &lt;loss inf&gt;"),
        "the message, escaped: {page}"
    );
    let html = std::fs::read_to_string(&index).unwrap();
    assert!(
        html.contains("href=\"./track/report/index.html\""),
        "{html}"
    );
    assert!(html.contains("href=\"./track/progress.html\""), "{html}");
    assert!(html.contains(">one<"), "the train run: {html}");

    // An index.html ionode did not write is left alone.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("s")).unwrap();
    std::fs::write(other.join("index.html"), "<html>mine</html>").unwrap();
    let e = usage(&["index", other.to_str().unwrap()]);
    assert!(e.contains("was not written by ionode"), "{e}");
    assert_eq!(
        std::fs::read_to_string(other.join("index.html")).unwrap(),
        "<html>mine</html>"
    );

    let Some(chromium) = common::chromium() else {
        eprintln!("skipped the browser part: no Chromium (scripts/setup installs it)");
        return;
    };
    let v = common::page_selftest(chromium, &index, &tmp.path().join("profile"));
    assert_eq!(v["studies"]["rows"], 1, "{v}");
    assert_eq!(v["trains"]["rows"], 1, "{v}");
    for t in ["studies", "trains"] {
        assert_eq!(v[t]["sorted_ascending"], true, "{v}");
        assert_eq!(v[t]["sorted_descending"], true, "{v}");
        assert_eq!(v[t]["filtered_none"], true, "{v}");
        assert_eq!(v[t]["filtered_all"], true, "{v}");
    }
    let v = common::page_selftest(chromium, &progress, &tmp.path().join("profile2"));
    assert_eq!(v["failures"]["rows"], 1, "{v}");
    assert_eq!(v["running"]["rows"], 1, "{v}");
    assert_eq!(v["reloading"], true, "{v}");
    assert_eq!(v["stale"], false, "{v}");

    // A page its `ablate run` stopped rewriting (killed) stops reloading and says so.
    let written = page
        .split("const WRITTEN = Date.parse('")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap()
        .to_string();
    let old = page.replace(
        &format!("Date.parse('{written}')"),
        "Date.parse('2026-01-01T00:00:00Z')",
    );
    std::fs::write(&progress, old).unwrap();
    let v = common::page_selftest(chromium, &progress, &tmp.path().join("profile3"));
    assert_eq!(v["reloading"], false, "{v}");
    assert_eq!(v["stale"], true, "{v}");
    assert_eq!(v["running"]["rows"], 1, "{v}");
}
