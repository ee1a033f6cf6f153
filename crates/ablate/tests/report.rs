//! End-to-end tests of `ablate report`: run records written with the program's own record
//! writer (`ionode_study::record`, the schema `ablate run` writes) from constructed
//! outcomes whose numbers are known, summarised into the typed summary, the paper tables
//! and the figures; bad study folders get one clear error.

use hdf5_metno as hdf5;
use ionode_model::SavedParams;
use ionode_study::manifest::{Plan, PlannedRun};
use ionode_study::record::{self, Head, Provenance};
use ionode_train::metrics::{IonMetrics, Metrics, SplitMetrics};
use ionode_train::run::{
    Artefact, Attention, Domain, Predictions, RunConfig, RunMetrics, RunOutcome, Timings,
};
use ionode_train::trainer::{Stage, StageReport};
use ndarray::Array3;
use polars::prelude::{DataType, SerReader};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

/// Runs a child to its end, with no input and its output captured.
fn output_of(cmd: &mut Command) -> std::io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
}

fn ablate(args: &[&str]) -> Output {
    output_of(
        Command::new(env!("CARGO_BIN_EXE_ablate"))
            .args(args)
            .env_remove("RUST_LOG"),
    )
    .expect("the ablate binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `dir/plan.json` naming every run folder of `dir`, as `ablate run` would have
/// planned them (a folder whose record cannot be read gets a placeholder config).
fn write_plan(dir: &Path) {
    let mut ids: Vec<String> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    let runs = ids
        .into_iter()
        .enumerate()
        .map(|(index, id)| {
            let record = record::read(&dir.join("runs").join(&id).join("run.h5"));
            let config = record.map_or_else(
                |_| neural("node", "hard", false, &first_n(5), 1),
                |r| r.head.config,
            );
            PlannedRun {
                index,
                id,
                seed: 0,
                run_seed: config.seed,
                axes: Default::default(),
                config: ionode_train::checked::Check::check(config).unwrap(),
            }
        })
        .collect();
    let plan = Plan {
        study: dir.file_name().unwrap().to_string_lossy().into_owned(),
        manifest: "study.toml".into(),
        manifest_hash: "mh-0123abcd".into(),
        seed: 1,
        metrics: vec![],
        overrides: vec![],
        pretrain_generator: None,
        runs,
        search: None,
    };
    std::fs::write(
        dir.join("plan.json"),
        serde_json::to_string_pretty(&plan).unwrap(),
    )
    .unwrap();
}

fn mark_done(run_dir: &Path) {
    let bytes = std::fs::read(run_dir.join("run.h5")).unwrap();
    let sum = blake3::hash(&bytes).to_hex();
    std::fs::write(
        run_dir.join("DONE"),
        format!("blake3 {sum} run.h5\nseconds 1.000\n"),
    )
    .unwrap();
}

const SPECIES: [&str; 4] = ["Na+", "Mg^2+", "Cl-", "SO4^2-"];
const CHARGE: [f64; 4] = [1.0, 2.0, -1.0, -2.0];

/// One run to write: its config, the axes a study would record, and the numbers.
struct Fake {
    study: &'static str,
    id: String,
    config: RunConfig,
    axes: serde_json::Value,
    mae: f64,
    en: f64,
    synthetic: bool,
}

/// A run config from the keys of `ablate train` (the fixture's configs are real ones).
fn config(toml_text: &str) -> RunConfig {
    let c: RunConfig = toml::from_str(toml_text).unwrap();
    assert_eq!(c.problems(), vec![], "{toml_text}");
    c
}

fn neural(variant: &str, kind: &str, pretrain: bool, split: &str, seed: u64) -> RunConfig {
    let (pretrain_data, pretrain_stage) = if pretrain {
        (
            "pretrain = \"sim.h5\"\n",
            "[pretrain]\nepochs = 2\nbatch_size = 32\n",
        )
    } else {
        ("", "")
    };
    config(&format!(
        "seed = {seed}\nmethod = \"neural\"\n[model]\nvariant = \"{variant}\"\n\
         electroneutrality = {{ kind = \"{kind}\" }}\n\
         [data]\nmeasured = [\"m.csv\"]\n{pretrain_data}\
         {pretrain_stage}[finetune]\nepochs = 5\nlearning_rate = 0.002\n[split]\n{split}\n"
    ))
}

fn first_n(n: usize) -> String {
    format!("kind = \"first_n\"\nn_train = {n}\ntest_fraction = 0.25\nvalidation_fraction = 0.15")
}

fn metrics(mae: f64, en: f64) -> Metrics {
    Metrics {
        n_samples: 12,
        n_values: 40,
        per_ion: SPECIES
            .iter()
            .enumerate()
            .map(|(k, s)| IonMetrics {
                species: s.to_string(),
                n: 10,
                mae: Some(mae * (1.0 + 0.1 * k as f64)),
                rmse: None,
                r2: None,
            })
            .collect(),
        mae: Some(mae),
        rmse: Some(mae * 1.5),
        r2: Some(1.0 - 2.0 * mae),
        electroneutrality_mean: Some(en),
        electroneutrality_max: Some(en * 3.0),
        coverage: None,
        interval_width: None,
    }
}

fn predictions(mae: f64) -> (Predictions, Vec<String>) {
    let mut p = Predictions::default();
    let mut att_family = Vec::new();
    let mut r = 0u64;
    for fam in ["NaCl", "NaCl+MgSO4"] {
        let ions: &[usize] = if fam == "NaCl" {
            &[0, 2]
        } else {
            &[0, 1, 2, 3]
        };
        for level in [5.0, 20.0, 50.0] {
            for flux in 1..=4 {
                let j = flux as f64 * 4e-6;
                for &k in ions {
                    let rej =
                        (CHARGE[k].abs() * 0.3 + 0.1) * (1.0 - (-j / 5e-6).exp()) - level * 1e-3;
                    p.part.push("test".into());
                    p.row.push(r);
                    p.family.push(fam.into());
                    p.ion.push(SPECIES[k].into());
                    p.jv_m_s.push(j);
                    p.temperature_k.push(298.15);
                    p.feed_mol_m3.push(level);
                    p.target_permeate_mol_m3.push(level * (1.0 - rej));
                    p.predicted_permeate_mol_m3.push(level * (1.0 - rej - mae));
                    p.target_rejection.push(rej);
                    p.predicted_rejection
                        .push(rej + mae * if k % 2 == 0 { 1.0 } else { -1.0 });
                }
                att_family.push(fam.to_string());
                r += 1;
            }
        }
    }
    (p, att_family)
}

/// Attention that grows with the charge difference; absent slots are zero.
fn attention(families: &[String]) -> Attention {
    let n = families.len();
    let mut mean = Array3::<f64>::zeros((n, 4, 4));
    for (s, fam) in families.iter().enumerate() {
        let present: Vec<usize> = if fam == "NaCl" {
            vec![0, 2]
        } else {
            vec![0, 1, 2, 3]
        };
        for &i in &present {
            let w: Vec<f64> = present
                .iter()
                .map(|&j| 1.0 + (CHARGE[i] - CHARGE[j]).abs())
                .collect();
            let total: f64 = w.iter().sum();
            for (&j, wj) in present.iter().zip(&w) {
                mean[[s, i, j]] = wj / total;
            }
        }
    }
    Attention {
        end: mean.clone(),
        mean,
        rows: (0..n as u64).collect(),
        species: SPECIES.map(String::from).to_vec(),
        family: families.to_vec(),
    }
}

fn curve(stage: Stage, n: usize) -> StageReport {
    let train: Vec<f64> = (0..n)
        .map(|e| 0.5 * (-0.2 * e as f64).exp() + 0.01)
        .collect();
    StageReport {
        stage,
        epochs_run: n,
        best_epoch: n - 1,
        best_validation_loss: train[n - 1] * 1.2,
        stopped_early: false,
        validation_loss: train.iter().map(|t| t * 1.2 + 0.005).collect(),
        train_loss: train,
        seconds: 1.0,
    }
}

/// Writes `dir/runs/<id>/run.h5` through the record writer (and `DONE` when `done`).
fn write_run(dir: &Path, f: &Fake, done: bool) {
    write_run_with(dir, f, done, |_| {});
}

/// [`write_run`] with the outcome changed by `edit` before it is written; returns what a
/// finishing run would cache of it ([`record::Stored::of`]).
fn write_run_with(
    dir: &Path,
    f: &Fake,
    done: bool,
    edit: impl FnOnce(&mut RunOutcome),
) -> record::Stored {
    let neural = f.config.method == ionode_train::run::Method::Neural;
    let (preds, families) = predictions(f.mae);
    let attention = (neural && f.config.model.variant == ionode_model::Variant::AttentionNode)
        .then(|| attention(&families));
    let mut curves = Vec::new();
    if f.config.pretrain.is_some() {
        curves.push(curve(Stage::Pretrain, 20));
    }
    if neural {
        curves.push(curve(Stage::Finetune, 12));
    }
    let artefact = if neural {
        Artefact::Params(SavedParams {
            names: vec![],
            shapes: vec![],
            values: vec![],
        })
    } else {
        Artefact::Calibration(Box::new(ionode_train::calibrate::DspmdeFit {
            membrane: ionode_physics::Membrane::preset("nf270").unwrap(),
            charge: ionode_physics::ChargeModel::Constant,
            cost: 0.01,
            failed_points: 0,
            failed_solves_during_fit: 0,
            evaluations: 10,
            starts: vec![],
            species: SPECIES.map(String::from).to_vec(),
            ions: vec![],
            temperature_k: None,
        }))
    };
    let outcome = RunOutcome {
        metrics: RunMetrics {
            pretrain: f.config.pretrain.as_ref().map(|_| SplitMetrics {
                train: None,
                validation: None,
                test: Some(metrics(f.mae * 0.3, f.en)),
            }),
            measured: Some(SplitMetrics {
                train: Some(metrics(f.mae * 0.5, f.en)),
                validation: Some(metrics(f.mae * 1.1, f.en)),
                test: Some(metrics(f.mae, f.en)),
            }),
        },
        predictions: preds,
        curves,
        attention,
        artefact,
        synthetic: f.synthetic,
        domain: Some(Domain {
            flux_m_s: [4e-6, 1.6e-5],
            temperature_k: [293.15, 293.15],
            pretrain: None,
            measured: None,
        }),
        timings: Timings {
            total: 12.5,
            pretrain: 8.0,
            finetune: 4.5,
        },
    };
    let mut outcome = outcome;
    edit(&mut outcome);
    let head = Head::new(
        Provenance {
            run_id: f.id.clone(),
            study: f.study.into(),
            manifest: "study.toml".into(),
            manifest_hash: "mh-0123abcd".into(),
            plan_index: Some(7),
            git_commit: "c0ffee1".into(),
            git_dirty: Some(false),
            host: "testhost".into(),
            ionode_version: "0.1.0".into(),
            created_utc: "2026-12-01T12:00:00Z".into(),
            command_line: "ablate run study.toml --set seeds=3".into(),
            overrides: vec!["seeds=3".into()],
        },
        f.config.clone(),
        serde_json::from_value(f.axes.clone()).unwrap(),
        BTreeMap::from([("m.csv".to_string(), "ab".repeat(32))]),
    );
    let run_dir = dir.join("runs").join(&f.id);
    record::write(
        &run_dir.join("run.h5"),
        &head,
        &outcome,
        None,
        ionode_study::output::Commit::Replace,
    )
    .unwrap();
    if done {
        mark_done(&run_dir);
    }
    record::Stored::of(&head, &outcome).unwrap()
}

/// Per-seed noise of a configuration: a fixed pattern, shifted per configuration, of zero
/// mean, so two configurations' paired differences are not constant.
fn noise(config: usize, seed: usize) -> f64 {
    const PATTERN: [f64; 5] = [-0.002, 0.001, 0.0, 0.002, -0.001];
    PATTERN[(seed + 2 * config) % 5]
}

/// Study A: variant x constraint x pretrain x n_train, 5 seeds, synthetic; one more run
/// without DONE. attention_node and mlp differ by 0.03 (far above the noise of ±0.002),
/// hard and none by 0.0005 (within it), pre-training by 0.02, n_train 10 vs 30 by 0.03.
fn study_a(root: &Path) -> PathBuf {
    study_a_shifted(root, 0.0)
}

/// Study A with every MLP run's MAEs `mlp_shift` higher (another study of the same cells).
fn study_a_shifted(root: &Path, mlp_shift: f64) -> PathBuf {
    let dir = root.join("alpha");
    let mut config_index = 0;
    for variant in ["attention_node", "mlp"] {
        for kind in ["hard", "none"] {
            for pretrain in [true, false] {
                for n_train in [10, 30] {
                    config_index += 1;
                    for s in 0..5 {
                        let base = if variant == "mlp" {
                            0.08 + mlp_shift
                        } else {
                            0.05
                        } + if kind == "none" { 0.0005 } else { 0.0 }
                            + if pretrain { 0.0 } else { 0.02 }
                            + if n_train == 10 { 0.03 } else { 0.0 };
                        let f = Fake {
                            study: "alpha",
                            id: format!("{variant}-{kind}-{pretrain}-{n_train}-s{s}"),
                            config: neural(
                                variant,
                                kind,
                                pretrain,
                                &first_n(n_train),
                                100 + s as u64,
                            ),
                            axes: serde_json::json!({"model.variant": variant,
                                "model.electroneutrality": {"kind": kind},
                                "pretrain": pretrain, "split.n_train": n_train, "seed": s + 1}),
                            mae: base + noise(config_index, s),
                            en: if kind == "hard" { 1e-15 } else { 0.02 },
                            synthetic: true,
                        };
                        write_run(&dir, &f, true);
                    }
                }
            }
        }
    }
    let unfinished = Fake {
        study: "alpha",
        id: "zz-unfinished".into(),
        config: neural("attention_node", "hard", true, &first_n(30), 9),
        axes: serde_json::json!({"seed": 9}),
        mae: 0.0001,
        en: 0.0,
        synthetic: true,
    };
    write_run(&dir, &unfinished, false);
    write_plan(&dir);
    dir
}

/// Study B: measured (not synthetic) data, leave one family out (two folds), an extra axis
/// (model.hidden), the DSPM-DE baseline. 3 seeds.
fn study_b(root: &Path) -> PathBuf {
    let dir = root.join("beta");
    for (method, hidden) in [("neural", 16), ("neural", 32), ("dspmde_fit", 0)] {
        for family in ["NaCl", "MgSO4"] {
            for s in 0..3 {
                let split = format!(
                    "kind = \"by_family\"\ntest_family = \"{family}\"\nvalidation_fraction = 0.2"
                );
                let mut config = neural("node", "hard", false, &split, s as u64);
                config.model.hidden = if hidden == 0 { 64 } else { hidden };
                if method == "dspmde_fit" {
                    config.method = ionode_train::run::Method::DspmdeFit;
                    config.normalise();
                }
                // The folds differ by ±0.01; their mean is the configuration's score.
                let base = match hidden {
                    16 => 0.04,
                    32 => 0.03,
                    _ => 0.06,
                } + if family == "NaCl" { 0.01 } else { -0.01 };
                let f = Fake {
                    study: "beta",
                    id: format!("{method}-{hidden}-{family}-s{s}"),
                    config,
                    axes: serde_json::json!({"method": method,
                        "model.hidden": if hidden == 0 { serde_json::Value::Null } else { hidden.into() },
                        "split.test_family": family, "seed": s}),
                    mae: base + 0.004 * s as f64,
                    en: 0.01,
                    synthetic: false,
                };
                write_run(&dir, &f, true);
            }
        }
    }
    write_plan(&dir);
    dir
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

fn parquet(path: &Path) -> polars::prelude::DataFrame {
    let file = std::fs::File::open(path).unwrap();
    polars::prelude::ParquetReader::new(file).finish().unwrap()
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_summary_has_typed_columns_and_csv_and_parquet_agree() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_a(tmp.path());
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let df = parquet(&dir.join("summary.parquet"));
    // A missing row has shown up rarely under load: say which run and why.
    assert_eq!(df.height(), 80, "report stderr: {}", text(&r.stderr));
    let dtype = |c: &str| df.column(c).unwrap().dtype().clone();
    for (col, want) in [
        ("seed", DataType::UInt64),
        ("n_train", DataType::UInt64),
        ("plan_index", DataType::UInt64),
        ("pretrained", DataType::Boolean),
        ("synthetic", DataType::Boolean),
        ("git_dirty", DataType::Boolean),
        ("test_mae", DataType::Float64),
        ("test_mae_Mg^2+", DataType::Float64),
        ("config.seed", DataType::Int64),
        ("config.split.n_train", DataType::Int64),
        ("config.finetune.epochs", DataType::Int64),
        ("config.finetune.learning_rate", DataType::Float64),
        ("config.finetune.augment_noise", DataType::Boolean),
        ("config.model.variant", DataType::String),
        ("model", DataType::String),
        ("setting", DataType::String),
    ] {
        assert_eq!(dtype(col), want, "{col}");
    }
    // Pre-training off is a false, not a null beside a blob; its settings are columns.
    let pretrained = df.column("pretrained").unwrap().bool().unwrap();
    assert_eq!(pretrained.null_count(), 0);
    assert_eq!(pretrained.sum(), Some(40));
    let epochs = df.column("config.pretrain.epochs").unwrap();
    assert_eq!(epochs.null_count(), 40);
    // The CSV holds the same frame: read with the Parquet schema it is equal, and read
    // with inference its numbers are numbers and its flags flags.
    let csv_path = dir.join("summary.csv");
    let schema = std::sync::Arc::new(df.schema().as_ref().clone());
    let csv = polars::prelude::CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(schema))
        .try_into_reader_with_file_path(Some(csv_path.clone()))
        .unwrap()
        .finish()
        .unwrap();
    assert!(csv.equals_missing(&df), "CSV and Parquet differ");
    let inferred = polars::prelude::CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(csv_path))
        .unwrap()
        .finish()
        .unwrap();
    for col in ["seed", "n_train", "config.finetune.epochs"] {
        assert!(inferred.column(col).unwrap().dtype().is_integer(), "{col}");
    }
    assert!(inferred.column("test_mae").unwrap().dtype().is_float());
    assert_eq!(
        inferred.column("pretrained").unwrap().dtype(),
        &DataType::Boolean
    );
    // One spelling of each ion in every column name.
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "test_mae_SO4^2-"), "{names:?}");
    assert!(!names
        .iter()
        .any(|n| n.contains("_2+") || n.contains("Mg2+")));
}

#[test]
fn a_table_cell_is_recomputed_from_the_summary_with_polars() {
    use polars::prelude::{col, lit, IntoLazy};
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_a(tmp.path());
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let df = parquet(&dir.join("summary.parquet"));
    let cell = df
        .lazy()
        .filter(
            col("model")
                .eq(lit("mlp"))
                .and(col("constraint").eq(lit("none")))
                .and(col("pretrained").eq(lit(true)))
                .and(col("setting").eq(lit("n_train = 30"))),
        )
        .group_by([col("seed")])
        .agg([col("test_mae").mean()])
        .select([
            col("test_mae").mean().alias("mean"),
            col("test_mae").std(1).alias("std"),
            col("test_mae").count().alias("n"),
        ])
        .collect()
        .unwrap();
    let mean = cell.column("mean").unwrap().f64().unwrap().get(0).unwrap();
    let std = cell.column("std").unwrap().f64().unwrap().get(0).unwrap();
    assert_eq!(cell.column("n").unwrap().u32().unwrap().get(0), Some(5));
    assert!((mean - 0.0805).abs() < 1e-12, "{mean}");
    let md = std::fs::read_to_string(dir.join("report/tables/table1_models.md")).unwrap();
    let want = format!("{mean:.4} ± {std:.4}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| MLP | none |"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.ends_with(&format!("| {want} |")), "{row} vs {want}");
}

#[test]
fn report_of_a_full_study_writes_summary_tables_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_a(tmp.path());
    let r = ablate(&["report", dir.to_str().unwrap()]);
    let out = text(&r.stdout);
    assert!(r.status.success(), "{}\n{}", out, text(&r.stderr));
    assert!(out.contains("80 finished run(s)"), "{out}");
    assert!(out.contains("1 started but not finished"), "{out}");
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(!csv.contains("zz-unfinished"));

    // Table 1: model x constraint per setting, pre-trained. attention_node beats mlp by
    // 0.03 (significant: bold); hard vs none differ by 0.0005 within noise (not bold).
    let tables = dir.join("report/tables");
    let md = std::fs::read_to_string(tables.join("table1_models.md")).unwrap();
    assert!(
        md.contains("| model | constraint | n_train = 10 | n_train = 30 |"),
        "{md}"
    );
    assert!(md.contains("| attention NODE | hard |"), "{md}");
    assert_eq!(md.matches("| **").count(), 0, "{md}");
    assert!(md.contains("(not significant)"), "{md}");
    assert!(md.contains("Synthetic data"), "{md}");
    assert!(
        md.contains(
            "80 runs in 16 configurations; git commit(s): c0ffee1; manifest hash: mh-0123abcd"
        ),
        "{md}"
    );
    assert!(md.contains("1 unfinished run(s) skipped"), "{md}");

    // Table 2: pre-training on vs off, the difference of 0.02 is significant in every row.
    let md2 = std::fs::read_to_string(tables.join("table2_pretraining.md")).unwrap();
    assert_eq!(md2.matches("| n_train = ").count(), 8, "{md2}");
    assert_eq!(
        md2.matches("| **").count(),
        8,
        "on is bold in every row: {md2}"
    );
    assert!(md2.contains("| −0.0200 [−0.0"), "{md2}");

    // Table 3: the constraint with the EN residual (hard ~1e-15 in exponent form).
    let md3 = std::fs::read_to_string(tables.join("table3_constraint.md")).unwrap();
    assert!(md3.contains("EN residual, mean"), "{md3}");
    assert_eq!(md3.matches("| 1.00e-15 ± 0.0000 |").count(), 4, "{md3}");

    // Table 4 per setting: every configuration; the best only bold when significant.
    let md4 = std::fs::read_to_string(tables.join("table4b_n_train-30.md")).unwrap();
    assert_eq!(md4.matches("| attention NODE |").count(), 4, "{md4}");
    let tex = std::fs::read_to_string(tables.join("table1_models.tex")).unwrap();
    assert!(
        tex.contains("\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\box0}"),
        "{tex}"
    );
    assert!(tex.contains("$\\pm$"), "{tex}");
    assert!(
        !tex.contains("Table 1:"),
        "LaTeX numbers its own tables: {tex}"
    );

    // Figures: PNG, SVG and PDF of each (the PDF with its font embedded), captions say
    // synthetic data.
    let figures = dir.join("report/figures");
    for name in [
        "parity",
        "attention_heatmaps",
        "learning_curves",
        "ablation_bars",
        "rejection_vs_flux",
        "attention_correlation",
    ] {
        let png = std::fs::read(figures.join(format!("{name}.png"))).unwrap();
        assert_eq!(png[..8], PNG_SIGNATURE, "{name}.png");
        assert!(png.len() > 5000, "{name}.png is nearly empty");
        let svg = std::fs::read_to_string(figures.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{name}.svg");
        assert!(
            svg.contains("synthetic data"),
            "{name}.svg has no synthetic label"
        );
        let pdf = std::fs::read(figures.join(format!("{name}.pdf"))).unwrap();
        assert!(pdf.starts_with(b"%PDF-"), "{name}.pdf");
        assert!(
            pdf.windows(9).any(|w| w == b"/FontFile"),
            "{name}.pdf embeds no font"
        );
    }
    assert!(
        !figures.join("separation_factor.png").exists(),
        "no test family holds Li+ and Mg2+"
    );
    assert!(out.contains("note: separation factor skipped"), "{out}");
    let page = std::fs::read_to_string(dir.join("report/index.html")).unwrap();
    // A sweep of 80 runs is ranked by importance too: the variant and n_train move the
    // validation MAE by 0.033 each, pre-training by 0.022, the constraint by 0.00055.
    let imp = std::fs::read_to_string(tables.join("importance.md")).unwrap();
    let share = |axis: &str| -> f64 {
        let row = imp
            .lines()
            .find(|l| l.starts_with(&format!("| {axis} |")))
            .unwrap_or_else(|| panic!("no row for {axis}: {imp}"));
        row.split('|').nth(2).unwrap().trim().parse().unwrap()
    };
    let (variant, n_train) = (share("model.variant"), share("split.n_train"));
    let (pretrain, kind) = (share("pretrain"), share("model.electroneutrality"));
    assert!(
        variant.min(n_train) > pretrain && pretrain > 5.0 * kind,
        "{imp}"
    );
    assert!(kind < 0.01, "{imp}");
    assert!(imp.contains("finetune.validation.mae"), "{imp}");
    let svg = std::fs::read_to_string(figures.join("importance.svg")).unwrap();
    assert!(
        svg.contains("synthetic data"),
        "importance.svg has no synthetic label"
    );
    assert_eq!(page.matches("<figure class=\"figure\"").count(), 7);
    assert_eq!(page.matches("<figure class=\"table\"").count(), 5);
    assert!(page.contains("<h3>Axis importance</h3>"));
    assert!(page.contains("<table id=\"runs\">"));
    let corr = std::fs::read_to_string(figures.join("attention_correlation.svg")).unwrap();
    // Attention was made to grow with the charge difference.
    let r_charge = corr
        .split("Pearson r = ")
        .nth(1)
        .and_then(|s| s.get(..5))
        .unwrap();
    assert!(r_charge.parse::<f64>().unwrap() > 0.2, "{r_charge}");
    let heat = std::fs::read_to_string(figures.join("attention_heatmaps.svg")).unwrap();
    assert!(
        heat.contains("SO₄²⁻") && heat.contains("NaCl+MgSO₄"),
        "ion and family labels"
    );
}

#[test]
fn folds_are_pooled_per_seed_and_report_out_leaves_the_study_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_b(tmp.path());
    let before = tree(&dir);
    let out_dir = tmp.path().join("elsewhere");
    let r = ablate(&[
        "report",
        dir.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let out = text(&r.stdout);
    assert!(r.status.success(), "{}\n{}", out, text(&r.stderr));
    assert!(out.contains("18 finished run(s)"), "{out}");
    assert!(
        out.contains("note: table 2 (pre-training) skipped"),
        "{out}"
    );
    assert!(
        out.contains("note: table 3 (electroneutrality constraint) skipped"),
        "{out}"
    );
    assert!(
        out.contains("note: attention heat maps and correlation skipped"),
        "{out}"
    );

    // With --out, everything goes there and nothing into the study folder (which may be
    // read-only).
    assert_eq!(tree(&dir), before);
    let df = parquet(&out_dir.join("summary.parquet"));
    assert_eq!(df.height(), 18);
    assert_eq!(
        df.column("test_family").unwrap().str().unwrap().get(0),
        Some("MgSO4")
    );

    // Table 1: one column for the leave-one-family-out setting, the extra axis as a
    // column; a seed's folds are averaged first (NaCl +0.01, MgSO4 -0.01 cancel), so the
    // mean is the base and the std over seeds is 0.004.
    let md = std::fs::read_to_string(out_dir.join("tables/table1_models.md")).unwrap();
    assert!(
        md.contains("| model | constraint | model.hidden | leave one family out |"),
        "{md}"
    );
    assert!(
        md.contains("| NODE | hard | 32 | **0.0340 ± 0.0040** |"),
        "{md}"
    );
    assert!(
        md.contains("| DSPM-DE (calibrated) | – | - | 0.0640 ± 0.0040 |"),
        "{md}"
    );
    assert!(
        !md.contains("ynthetic"),
        "measured data is not labelled synthetic: {md}"
    );
    for name in [
        "parity",
        "learning_curves",
        "ablation_bars",
        "rejection_vs_flux",
    ] {
        let png = std::fs::read(out_dir.join("figures").join(format!("{name}.png"))).unwrap();
        assert_eq!(png[..8], PNG_SIGNATURE, "{name}.png");
        assert!(out_dir.join("figures").join(format!("{name}.svg")).exists());
        assert!(out_dir.join("figures").join(format!("{name}.pdf")).exists());
    }
    assert!(!out_dir.join("figures/attention_heatmaps.png").exists());
}

#[test]
fn bad_study_folders_get_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let fail = |dir: &Path| {
        let r = ablate(&["report", dir.to_str().unwrap()]);
        assert!(!r.status.success());
        let err = text(&r.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        err
    };

    let err = fail(&tmp.path().join("missing"));
    assert!(err.contains("does not exist"), "{err}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("runs/r1")).unwrap();
    let err = fail(&empty);
    assert!(err.contains("has no plan.json"), "{err}");
    std::fs::write(empty.join("plan.json"), "").unwrap();
    let err = fail(&empty);
    assert!(err.contains("plan.json' is empty"), "{err}");
    write_plan(&empty);
    let err = fail(&empty);
    assert!(err.contains("no finished runs"), "{err}");
    assert!(
        err.contains("1 of its 1 planned runs started but not finished"),
        "{err}"
    );

    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir_all(corrupt.join("runs/r1")).unwrap();
    std::fs::write(corrupt.join("runs/r1/run.h5"), "not hdf5 at all").unwrap();
    mark_done(&corrupt.join("runs/r1"));
    write_plan(&corrupt);
    let err = fail(&corrupt);
    assert!(err.contains("runs/r1/run.h5"), "names the file: {err}");
    assert!(err.contains("corrupt or not HDF5"), "{err}");

    let bare = tmp.path().join("bare");
    std::fs::create_dir_all(bare.join("runs/r1")).unwrap();
    let file = ionode_study::h5::create(&bare.join("runs/r1/run.h5")).unwrap();
    file.new_attr::<hdf5::types::VarLenUnicode>()
        .create("run_id")
        .unwrap()
        .write_scalar(&"r1".parse::<hdf5::types::VarLenUnicode>().unwrap())
        .unwrap();
    file.close().unwrap();
    mark_done(&bare.join("runs/r1"));
    write_plan(&bare);
    let err = fail(&bare);
    assert!(
        err.contains("runs/r1/run.h5': missing attribute 'study'"),
        "{err}"
    );
}

/// The study's runs are its plan's: a folder of an older plan is left out, and a run's
/// files copied into another planned run's folder are not a second finished run.
#[test]
fn runs_outside_the_plan_and_copied_runs_are_not_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_b(tmp.path());
    let whole = ablate(&["report", dir.to_str().unwrap()]);
    assert!(whole.status.success(), "{}", text(&whole.stderr));
    assert!(
        text(&whole.stdout).starts_with("18 finished run(s)"),
        "{}",
        text(&whole.stdout)
    );
    // A folder no plan names (the runs of a replaced plan), and a copy of a finished run
    // into the folder of a planned run that never ran.
    let runs = dir.join("runs");
    let copy_of = |from: &str, to: &str| {
        std::fs::create_dir_all(runs.join(to)).unwrap();
        for f in ["run.h5", "DONE"] {
            std::fs::copy(runs.join(from).join(f), runs.join(to).join(f)).unwrap();
        }
    };
    copy_of("neural-16-NaCl-s0", "old-plan-run");
    let mut plan: Plan =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let mut extra = plan.runs[0].clone();
    extra.id = "never-ran".into();
    extra.index = plan.runs.len();
    plan.runs.push(extra);
    std::fs::write(dir.join("plan.json"), serde_json::to_string(&plan).unwrap()).unwrap();
    copy_of("neural-16-NaCl-s0", "never-ran");
    // The copied DONE names no run (as markers of older versions): the record's id decides.
    let done = std::fs::read_to_string(runs.join("never-ran/DONE")).unwrap();
    assert!(!done.contains("\nrun "), "{done}");
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    assert!(out.starts_with("18 finished run(s)"), "{out}");
    assert!(
        out.contains("1 folder(s) that are no run of the plan left out"),
        "{out}"
    );
    assert!(
        out.contains("skipped damaged run never-ran: its run.h5 is run neural-16-NaCl-s0's"),
        "{out}"
    );
    let summary = parquet(&dir.join("summary.parquet"));
    assert_eq!(summary.height(), 18);
}

/// Every LaTeX table compiles in a plain `article` (6.5 in text width, as most journals'
/// single column) with booktabs and graphicx, and no box is overfull by more than 1 pt.
#[test]
fn latex_tables_compile_and_fit_the_text_width() {
    let pdflatex = output_of(Command::new("pdflatex").arg("--version"));
    if !pdflatex.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: pdflatex is not installed (scripts/setup installs texlive-latex-base and texlive-latex-recommended)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for dir in [study_a(tmp.path()), study_b(tmp.path())] {
        let r = ablate(&["report", dir.to_str().unwrap()]);
        assert!(r.status.success(), "{}", text(&r.stderr));
        let tables = dir.join("report/tables");
        let mut n = 0;
        for e in std::fs::read_dir(&tables).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "tex") {
                continue;
            }
            n += 1;
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            let doc = format!(
                "\\documentclass{{article}}\n\\usepackage[T1]{{fontenc}}\n\\usepackage[textwidth=6.5in]{{geometry}}\n\\usepackage{{booktabs,graphicx}}\n\\begin{{document}}\n\\input{{{}}}\n\\end{{document}}\n",
                p.display()
            );
            let work = tmp.path().join(format!("tex-{stem}"));
            std::fs::create_dir_all(&work).unwrap();
            std::fs::write(work.join("doc.tex"), doc).unwrap();
            let out = output_of(
                Command::new("pdflatex")
                    .args(["-interaction=nonstopmode", "-halt-on-error", "doc.tex"])
                    .current_dir(&work),
            )
            .unwrap();
            let log = std::fs::read_to_string(work.join("doc.log")).unwrap_or_default();
            assert!(out.status.success(), "{stem} does not compile:\n{log}");
            for line in log.lines().filter(|l| l.starts_with("Overfull")) {
                let pt: f64 = line
                    .split('(')
                    .nth(1)
                    .and_then(|s| s.split("pt").next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(f64::INFINITY);
                assert!(pt <= 1.0, "{stem}: {line}");
            }
        }
        assert!(n >= 2, "{}", tables.display());
    }
}

/// A report reads each run's record from the run's record cache (`record.json`), which
/// keeps it as `run.h5` does: for every run the cached record is the one read from `run.h5`, exactly, and what
/// a finishing run caches without reading `run.h5` back ([`record::Stored::of`]) is what
/// `run.h5` holds. A record with values JSON cannot keep (NaN, infinity) is left out of the
/// cache and read from `run.h5`; a cache of another `run.h5` is not trusted.
#[test]
fn the_report_reads_records_from_the_facts_cache_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_b(tmp.path());
    let fake = |id: &str| Fake {
        study: "beta",
        id: id.into(),
        config: {
            let split = "kind = \"by_family\"\ntest_family = \"NaCl\"\nvalidation_fraction = 0.2";
            let mut c = neural("node", "hard", false, split, 7);
            c.model.hidden = 16;
            c
        },
        axes: serde_json::json!({"method": "neural", "model.hidden": 16,
            "split.test_family": "NaCl", "seed": 7}),
        mae: 0.05,
        en: 0.01,
        synthetic: false,
    };
    // A run as written, and one with values JSON cannot keep (and an ion's NaN metric,
    // which run.h5 reads back as undefined).
    let plain = write_run_with(&dir, &fake("neural-16-NaCl-s7"), true, |_| {});
    let odd = write_run_with(&dir, &fake("neural-16-NaCl-s8"), true, |o| {
        let test = o.metrics.measured.as_mut().unwrap().test.as_mut().unwrap();
        test.r2 = Some(f64::NAN);
        test.per_ion[1].rmse = Some(f64::NAN);
        o.curves[0].validation_loss[3] = f64::INFINITY;
    });
    write_plan(&dir);
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let first = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.join("runs")).unwrap() {
        let folder = entry.unwrap().path();
        let id = folder.file_name().unwrap().to_str().unwrap().to_string();
        let sum = ionode_study::store::recorded_checksum(&folder, &id).unwrap();
        let cache: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("record.json")).unwrap())
                .unwrap();
        assert_eq!(cache["record"].is_null(), id.ends_with("s8"), "{id}");
        // A record the cache leaves out is read from run.h5.
        let (cached, source) = ionode_study::facts::record(
            &folder,
            Some(&sum),
            ionode_study::facts::Caching::ReadOnly,
        )
        .unwrap();
        assert_eq!(source, ionode_study::facts::Source::Cache, "{id}");
        let stored = record::Stored::read_file(&folder.join("run.h5")).unwrap();
        let read = record::read(&folder.join("run.h5")).unwrap();
        assert_eq!(format!("{cached:?}"), format!("{read:?}"), "{id}");
        for (name, expected) in [("neural-16-NaCl-s7", &plain), ("neural-16-NaCl-s8", &odd)] {
            if id == name {
                assert_eq!(format!("{stored:?}"), format!("{expected:?}"), "{id}");
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 20);

    // A cache whose stamp names another run.h5 is rebuilt from run.h5, not believed.
    let folder = dir.join("runs").join("neural-32-MgSO4-s1");
    let cache = std::fs::read_to_string(folder.join("record.json")).unwrap();
    let sum = ionode_study::store::recorded_checksum(&folder, "neural-32-MgSO4-s1").unwrap();
    let forged = cache
        .replace(&sum, &"0".repeat(64))
        .replace("\"mae\":0.", "\"mae\":9.");
    assert_ne!(forged, cache);
    std::fs::write(folder.join("record.json"), &forged).unwrap();
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("summary.csv")).unwrap(),
        first
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("record.json")).unwrap(),
        cache
    );
}

/// The report page in a real browser (Debian's headless Chromium): every figure is laid
/// out, sorting the run table by a header click orders it both ways, and the filter
/// works. A screenshot is kept in the test's target folder.
#[test]
fn the_report_page_renders_and_sorts_in_a_browser() {
    /// The run table's self-test: sorted both ways, a filter matching nothing and one
    /// matching every row.
    fn assert_sorts_and_filters(v: &serde_json::Value) {
        for check in [
            "sorted_ascending",
            "sorted_descending",
            "filtered_none",
            "filtered_all",
        ] {
            assert_eq!(v[check], true, "{check}: {v}");
        }
    }

    let Some(chromium) = common::chromium() else {
        eprintln!("skipped: no Chromium (scripts/setup installs Debian's chromium)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_a(tmp.path());
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let page = dir.join("report/index.html");
    let profile = tmp.path().join("profile");
    let v = common::page_selftest(chromium, &page, &profile);
    assert_eq!(v["figures"], 7, "{v}");
    assert_eq!(v["rendered"], 7, "every figure laid out: {v}");
    assert_eq!(v["rows"], 80, "{v}");
    assert_sorts_and_filters(&v);
    assert!(!dir.join("report/runs.js").exists());
    let inline_size = std::fs::metadata(&page).unwrap().len();

    // Above --inline-runs the table is loaded from runs.js and drawn a page at a time:
    // sorting orders every run, not only the page drawn, and the pages step through.
    let r = ablate(&["report", dir.to_str().unwrap(), "--inline-runs", "50"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(dir.join("report/runs.js").is_file());
    let v = common::page_selftest_with(chromium, &page, "?rows=30", &tmp.path().join("lazy"));
    assert_eq!(v["figures"], 7, "{v}");
    assert_eq!(v["rows"], 80, "{v}");
    assert_eq!(v["drawn"], 30, "{v}");
    assert_eq!(v["next_page"], true, "{v}");
    assert_sorts_and_filters(&v);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<table id=\"runs\">"), "no row inlined");
    assert!(html.contains("<tbody></tbody>"), "no row inlined");
    assert!(html.len() < inline_size as usize, "smaller than inline");
    let r = ablate(&["report", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        !dir.join("report/runs.js").exists(),
        "an inline report has no runs.js"
    );

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-page.png");
    let out = output_of(
        Command::new(chromium)
            .args(common::CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1400,2400")
            .arg(format!("file://{}", page.display())),
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(png[..8], PNG_SIGNATURE);
    eprintln!("screenshot: {}", shot.display());
}

/// `ablate compare` of two studies: every configuration both ran, paired over the seeds,
/// with the report's tests: the shifted MLP cells by exactly their shift (significant), the
/// others by nothing.
#[test]
fn two_studies_compare_cell_by_cell_paired_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let a = study_a(tmp.path());
    let b = study_a_shifted(&tmp.path().join("b"), 0.01);
    let r = ablate(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--json",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let shared = v["shared"].as_array().unwrap();
    assert_eq!(shared.len(), 16, "{v}");
    assert_eq!(
        (v["only_a"].as_u64(), v["only_b"].as_u64()),
        (Some(0), Some(0))
    );
    for cell in shared {
        let name = cell["configuration"].as_str().unwrap();
        let d = cell["difference"].as_f64().unwrap();
        assert_eq!(cell["pairs"], 5, "{cell}");
        if name.starts_with("MLP") {
            // Measured test MAE is 1.0 x the run's MAE in these records.
            assert!((d - 0.01).abs() < 1e-12, "{cell}");
            assert_eq!(cell["significant"], true, "{cell}");
        } else {
            assert_eq!(d, 0.0, "{cell}");
            assert_eq!(cell["p_t"].as_f64(), Some(1.0), "{cell}");
        }
    }
    let r = ablate(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let out = text(&r.stdout);
    assert!(
        out.contains("16 configuration(s) in both; 0 only in A, 0 only in B"),
        "{out}"
    );
    assert_eq!(out.matches("+0.01000*").count(), 8, "{out}");
    let run = std::fs::read_dir(a.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let r = ablate(&["compare", a.to_str().unwrap(), run.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("not one of each"));
}
