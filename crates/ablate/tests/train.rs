//! End-to-end tests of `ablate train`: a tiny pre-train + fine-tune run writes every output
//! and is reproducible; the DSPM-DE baseline runs from the same kind of config; bad configs
//! get one clear error line.

mod common;
use common::{ablate, text};
use std::path::{Path, PathBuf};

fn exp(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/exp")
        .join(name)
        .display()
        .to_string()
}

/// A small simulated set on the default seven slots.
fn simulated(dir: &Path) -> PathBuf {
    let out = dir.join("sim.h5");
    let r = ablate(&[
        "simulate",
        "--membrane",
        "nf270",
        "--samples",
        "40",
        "--seed",
        "3",
        "--flux-count",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    out
}

fn config(dir: &Path, sim: &Path, method: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{method}.toml"));
    let toml = format!(
        "seed = 4\nmethod = \"{method}\"\n\
         [model]\nembed_dim = 8\nhidden = 16\nsolver = {{ kind = \"rk4\", steps = 4 }}\n\
         [data]\npretrain = \"{sim}\"\nmeasured = [\"{measured}\"]\n\
         [pretrain]\nepochs = 3\nbatch_size = 32\n\
         [finetune]\nepochs = 3\nbatch_size = 16\naugment_noise = true\n\
         [calibration]\nstarts = 1\nmax_iters = 20\n\
         [split]\nkind = \"by_family\"\ntest_family = \"NaCl+MgSO4\"\nvalidation_fraction = 0.2\n{extra}",
        sim = sim.display(),
        measured = exp("nf270_mixtures.csv"),
    );
    std::fs::write(&path, toml).unwrap();
    path
}

#[test]
fn a_small_run_writes_every_output_and_repeats_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulated(dir.path());
    let cfg = config(dir.path(), &sim, "neural", "");
    let run = |out: &str| {
        let out = dir.path().join(out);
        let r = ablate(&[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(r.status.success(), "{}", text(&r.stderr));
        assert!(
            text(&r.stderr).contains("measured: rejection MAE train"),
            "{}",
            text(&r.stderr)
        );
        // Not a terminal: one progress line per epoch instead of the (hidden) bar.
        for stage in ["pretrain", "finetune"] {
            let lines = text(&r.stderr)
                .lines()
                .filter(|l| l.starts_with(&format!("{stage} epoch ")) && l.contains("stage ETA"))
                .count();
            assert!((1..=3).contains(&lines), "{stage}: {}", text(&r.stderr));
        }
        out
    };
    let (a, b) = (run("a"), run("b"));
    for name in ["run.h5", "metrics.json", "predictions.csv"] {
        assert!(a.join(name).exists(), "{name}");
    }
    for name in ["metrics.json", "predictions.csv"] {
        let same = std::fs::read(a.join(name)).unwrap() == std::fs::read(b.join(name)).unwrap();
        assert!(same, "{name} differs between identical runs");
    }
    // The record: the same schema as a study's runs, the same parameters twice.
    use ionode_study::record;
    let (ra, rb) = (
        record::read(&a.join("run.h5")).unwrap(),
        record::read(&b.join("run.h5")).unwrap(),
    );
    assert_eq!(ra.metrics, rb.metrics);
    assert_eq!(ra.head.config, rb.head.config);
    let params = |d: &Path| match record::read_artefact(&d.join("run.h5"), &ra.head.config).unwrap()
    {
        ionode_train::run::Artefact::Params(p) => serde_json::to_string(&p).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(params(&a), params(&b));
    let p = &ra.head.provenance;
    assert!(!p.git_commit.is_empty() && p.created_utc.ends_with('Z'));
    assert!(
        p.command_line.contains("train --config"),
        "{}",
        p.command_line
    );
    assert!(ra
        .head
        .inputs
        .keys()
        .any(|k| k.contains("nf270_mixtures.csv")));
    assert_eq!(ra.curves.len(), 2);
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("metrics.json")).unwrap()).unwrap();
    let test = &metrics["measured"]["test"];
    assert!(test["mae"].as_f64().unwrap() >= 0.0);
    // The hard constraint: predictions electroneutral to rounding.
    assert!(
        test["electroneutrality_max"].as_f64().unwrap() < 1e-9,
        "{test}"
    );
    assert!(metrics["pretrain"]["test"]["mae"].is_number());
    let predictions = std::fs::read_to_string(a.join("predictions.csv")).unwrap();
    assert!(predictions.starts_with("part,row,family,ion,jv_m_s,feed_mol_m3"));
    assert!(predictions
        .lines()
        .skip(1)
        .all(|l| l.starts_with("test,") && l.contains("NaCl+MgSO4")));
}

#[test]
fn the_dspmde_baseline_trains_from_the_same_config() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulated(dir.path());
    let cfg = config(dir.path(), &sim, "dspmde_fit", "");
    let out = dir.path().join("fit");
    let r = ablate(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(out.join("run.h5").exists() && out.join("metrics.json").exists());
    // The fitted membrane, in the format every --membrane accepts.
    let membrane = std::fs::read_to_string(out.join("membrane.toml")).unwrap();
    assert!(membrane.contains("pore_radius"), "{membrane}");
    let r = ionode_study::record::read(&out.join("run.h5")).unwrap();
    assert_eq!(r.method(), ionode_train::run::Method::DspmdeFit);
}

/// Every mistake of a run config is reported at its line and column, all of them in one
/// pass, with exit code 2 and nothing written.
#[test]
fn bad_configs_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let sim = simulated(dir.path());
    let base = std::fs::read_to_string(config(dir.path(), &sim, "neural", "")).unwrap();
    let measured = format!("measured = [\"{}\"]", exp("nf270_mixtures.csv"));
    // (replace, by, expected lines with FILE for the config's path)
    let cases: Vec<(&str, String, Vec<String>)> = vec![
        (
            "embed_dim = 8",
            "variant = \"transformer\"\nembed_dim = 8".into(),
            vec!["FILE:4:1: model.variant: unknown variant `transformer`, expected one of `attention_node`, `node`, `mlp`".into()],
        ),
        (
            "epochs = 3\nbatch_size = 32",
            "epochz = 3\nbatch_size = 32".into(),
            vec!["FILE:11:1: unknown key 'pretrain.epochz' (did you mean 'pretrain.epochs'?)".into()],
        ),
        (
            "epochs = 3\nbatch_size = 32",
            "epochs = 0\nbatch_size = 32\nlearning_rate = -0.1".into(),
            vec![
                "FILE:11:1: pretrain.epochs = 0: expected a count in 1..=1000000".into(),
                "FILE:13:1: pretrain.learning_rate = -0.1: expected a finite number > 0".into(),
            ],
        ),
        (
            "epochs = 3\nbatch_size = 32",
            "epochs = 3\nbatch_size = 0".into(),
            vec!["FILE:12:1: pretrain.batch_size = 0: expected a count in 1..=8192".into()],
        ),
        (
            "epochs = 3\nbatch_size = 32",
            "epochs = 3\nbatch_size = 32\nlearning_rate = -0.1".into(),
            vec!["FILE:13:1: pretrain.learning_rate = -0.1: expected a finite number > 0".into()],
        ),
        (
            "epochs = 3\nbatch_size = 32",
            "epochs = 3\nbatch_size = 32\nlearning_rate = nan".into(),
            vec!["FILE:13:1: pretrain.learning_rate = NaN: expected a finite number > 0".into()],
        ),
        (
            "epochs = 3\nbatch_size = 16",
            "epochs = 3\nbatch_size = 16\nclip_norm = -inf".into(),
            vec!["FILE:16:1: finetune.clip_norm = -inf: expected a finite number > 0".into()],
        ),
        (
            "test_family = \"NaCl+MgSO4\"",
            "test_family = \"seawater\"".into(),
            vec!["FILE:22:1: split.test_family = \"seawater\": not a family of the data; the families are NaCl+Na2SO4, NaCl+MgCl2, NaCl+MgSO4, NaCl+MgSO4+CaCl2, KCl+Na2SO4+MgCl2".into()],
        ),
        (
            &measured,
            "measured = [\"nope.csv\"]".into(),
            vec!["FILE:9:13: data.measured[0]: data file 'nope.csv' not found".into()],
        ),
        // Several problems of one file come in one pass: an unknown key does not hide the
        // range problems elsewhere.
        (
            "epochs = 3\nbatch_size = 32",
            "epochz = 3\nbatch_size = 0".into(),
            vec![
                "FILE:11:1: unknown key 'pretrain.epochz' (did you mean 'pretrain.epochs'?)".into(),
                "FILE:12:1: pretrain.batch_size = 0: expected a count in 1..=8192".into(),
            ],
        ),
    ];
    for (k, (from, to, expected)) in cases.iter().enumerate() {
        assert!(base.contains(from), "case {k}");
        let path = dir.path().join(format!("bad{k}.toml"));
        std::fs::write(&path, base.replacen(from, to, 1)).unwrap();
        let out = dir.path().join(format!("o{k}"));
        let r = ablate(&[
            "train",
            "--config",
            path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(2), "case {k}: {}", text(&r.stderr));
        let file = path.display().to_string();
        let mut want: Vec<String> = expected.iter().map(|l| l.replace("FILE", &file)).collect();
        let n = want.len();
        want.push(format!(
            "error: config '{file}': {n} problem{}",
            if n == 1 { "" } else { "s" }
        ));
        let err = text(&r.stderr);
        assert_eq!(err.lines().collect::<Vec<_>>(), want, "case {k}");
        assert!(!out.exists(), "case {k}: nothing is written");
    }
}

/// `[data] pretrain` as `ablate simulate` settings: the first `ablate train` generates the
/// set into `datasets/sim/` under the working directory, the next one reuses it, the data
/// are those `ablate simulate` makes with the same flags, and a bad setting is a located
/// error like any other key.
#[test]
fn a_pretraining_set_named_by_its_settings_is_generated_once() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let settings = "{ membrane = \"nf270\", samples = 12, seed = 3, flux_count = 2 }";
    let cfg = config(work, Path::new("PLACEHOLDER"), "neural", "")
        .to_str()
        .unwrap()
        .to_string();
    let text_of = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text_of.replace(
            "pretrain = \"PLACEHOLDER\"",
            &format!("pretrain = {settings}"),
        ),
    )
    .unwrap();
    let train = |out: &str| {
        let r = std::process::Command::new(env!("CARGO_BIN_EXE_ablate"))
            .args(["train", "--config", &cfg, "--out", out])
            .current_dir(work)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", text(&r.stderr));
        text(&r.stderr)
    };
    let first = train("a");
    assert!(
        first.contains("generating the pre-training set 'datasets/sim/pretrain-"),
        "{first}"
    );
    let generated: Vec<PathBuf> = std::fs::read_dir(work.join("datasets/sim"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(generated.len(), 1, "{generated:?}");
    let second = train("b");
    assert!(!second.contains("generating"), "{second}");
    // The same bits as the run on a file `ablate simulate` wrote with the same flags.
    let sim = work.join("sim.h5");
    let r = ablate(&[
        "simulate",
        "--membrane",
        "nf270",
        "--samples",
        "12",
        "--seed",
        "3",
        "--flux-count",
        "2",
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let from_file = config(work, &sim, "neural", "");
    let r = ablate(&[
        "train",
        "--config",
        from_file.to_str().unwrap(),
        "--out",
        work.join("c").to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    for f in ["metrics.json", "predictions.csv"] {
        let a = std::fs::read(work.join("a").join(f)).unwrap();
        assert_eq!(a, std::fs::read(work.join("b").join(f)).unwrap(), "{f}");
        assert_eq!(a, std::fs::read(work.join("c").join(f)).unwrap(), "{f}");
    }
    // A bad setting is located in the config; nothing is generated or written.
    std::fs::write(
        &cfg,
        text_of.replace(
            "pretrain = \"PLACEHOLDER\"",
            "pretrain = { membrane = \"nf270\", samples = 12, seed = 3, flux_kount = 2 }",
        ),
    )
    .unwrap();
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(["train", "--config", &cfg, "--out", "d"])
        .current_dir(work)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    let err = text(&r.stderr);
    assert_eq!(
        err.lines().next(),
        Some(
            format!(
                "{cfg}:8:58: unknown key 'data.pretrain.flux_kount' (did you mean 'data.pretrain.flux_count'?)"
            )
            .as_str()
        ),
        "{err}"
    );
    assert!(!work.join("d").exists());
}
