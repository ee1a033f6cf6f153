//! End-to-end tests of `ablate report`: synthetic `run.h5` files in the run-store layout
//! (written here with hdf5-metno, as the run machinery does) are summarised into the
//! summary table, the paper tables and the figures; bad study folders get one clear error.

use hdf5::types::VarLenUnicode;
use hdf5_metno as hdf5;
use ndarray::Array3;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

/// Held while a test writes HDF5 files and while it starts a child. HDF5 opens files
/// without close-on-exec, so a child started by one test while another test has a file open
/// would inherit that file's lock and make it unreadable for everyone else.
static FILES: Mutex<()> = Mutex::new(());

fn files_lock() -> MutexGuard<'static, ()> {
    FILES.lock().unwrap_or_else(|e| e.into_inner())
}

fn ablate(args: &[&str]) -> Output {
    let child = {
        let _guard = files_lock();
        Command::new(env!("CARGO_BIN_EXE_ablate"))
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ablate binary runs")
    };
    child.wait_with_output().expect("the ablate binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn attr(loc: &hdf5::Location, name: &str, value: &str) {
    let v = VarLenUnicode::from_str(value).unwrap();
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

fn attr_f64(loc: &hdf5::Location, name: &str, value: f64) {
    loc.new_attr::<f64>()
        .create(name)
        .unwrap()
        .write_scalar(&value)
        .unwrap();
}

fn strings(g: &hdf5::Group, name: &str, values: &[String]) {
    let v: Vec<VarLenUnicode> = values
        .iter()
        .map(|s| VarLenUnicode::from_str(s).unwrap())
        .collect();
    g.new_dataset_builder().with_data(&v).create(name).unwrap();
}

fn floats(g: &hdf5::Group, name: &str, values: &[f64]) {
    g.new_dataset_builder()
        .with_data(values)
        .create(name)
        .unwrap();
}

/// Writes the `DONE` marker of a run folder as `ablate run` does: the run file's checksum.
fn mark_done(run_dir: &Path) {
    let bytes = std::fs::read(run_dir.join("run.h5")).unwrap();
    let sum = blake3::hash(&bytes).to_hex();
    std::fs::write(
        run_dir.join("DONE"),
        format!("blake3 {sum} run.h5\nseconds 1.000\n"),
    )
    .unwrap();
}

/// What a fake run looks like.
struct Fake<'a> {
    study: &'a str,
    id: String,
    axes: Value,
    method: &'a str,
    mae: f64,
    en: f64,
    curves: bool,
    attention: bool,
    synthetic: bool,
}

const SPECIES: [&str; 4] = ["Na+", "Mg2+", "Cl-", "SO4^2-"];
const CHARGE: [f64; 4] = [1.0, 2.0, -1.0, -2.0];

/// Writes `dir/runs/<id>/run.h5` (and `DONE` when `done`) following the run-store schema.
fn write_run(dir: &Path, f: &Fake, done: bool) {
    let _guard = files_lock();
    let run_dir = dir.join("runs").join(&f.id);
    std::fs::create_dir_all(&run_dir).unwrap();
    let file = hdf5::File::create(run_dir.join("run.h5")).unwrap();
    let per_ion: Vec<Value> = SPECIES
        .iter()
        .enumerate()
        .map(|(k, s)| json!({"species": s, "n": 10, "mae": f.mae * (1.0 + 0.1 * k as f64), "rmse": null, "r2": null}))
        .collect();
    let part = |scale: f64| {
        json!({"n_samples": 12, "n_values": 40, "mae": f.mae * scale, "rmse": f.mae * 1.5 * scale,
               "r2": 1.0 - 2.0 * f.mae * scale, "electroneutrality_mean": f.en,
               "electroneutrality_max": f.en * 3.0, "per_ion": per_ion})
    };
    let mut metrics =
        json!({"measured": {"train": part(0.5), "validation": part(1.1), "test": part(1.0)}});
    if f.curves {
        metrics["pretrain"] = json!({"train": null, "validation": null, "test": part(0.3)});
    }
    for (k, v) in [
        ("run_id", f.id.as_str()),
        ("study", f.study),
        ("manifest_hash", "mh-0123abcd"),
        ("git_commit", "c0ffee1"),
        ("git_dirty", "false"),
        ("host", "testhost"),
        ("ionode_version", "0.1.0"),
        ("config_json", "{}"),
        ("inputs_json", "{}"),
        ("method", f.method),
        ("synthetic", if f.synthetic { "true" } else { "false" }),
    ] {
        attr(&file, k, v);
    }
    attr(&file, "axes_json", &f.axes.to_string());
    attr(&file, "metrics_json", &metrics.to_string());
    file.new_attr::<u64>()
        .create("plan_index")
        .unwrap()
        .write_scalar(&7u64)
        .unwrap();
    attr_f64(&file, "seconds_total", 12.5);
    attr_f64(&file, "seconds_pretrain", 8.0);
    attr_f64(&file, "seconds_finetune", 4.5);
    if f.curves {
        for (stage, n) in [("pretrain", 20), ("finetune", 12)] {
            let g = file.create_group(&format!("curves/{stage}")).unwrap();
            let train: Vec<f64> = (0..n)
                .map(|e| 0.5 * (-0.2 * e as f64).exp() + 0.01)
                .collect();
            let val: Vec<f64> = train.iter().map(|t| t * 1.2 + 0.005).collect();
            floats(&g, "train_loss", &train);
            floats(&g, "validation_loss", &val);
        }
    }
    // Predictions: family NaCl (Na+, Cl-) and NaCl+MgSO4 (all four), 3 levels x 4 fluxes.
    // Every group handle must be dropped before the file closes, else HDF5 keeps it open
    // (and locked) until the process ends.
    let g = file.create_group("predictions").unwrap();
    let (mut part, mut row, mut family, mut ion) = (vec![], vec![], vec![], vec![]);
    let (mut jv, mut feed, mut tp, mut pp, mut tr, mut pr) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
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
                    part.push(if r.is_multiple_of(3) { "test" } else { "train" }.to_string());
                    row.push(r);
                    family.push(fam.to_string());
                    ion.push(SPECIES[k].to_string());
                    jv.push(j);
                    feed.push(level);
                    tp.push(level * (1.0 - rej));
                    pp.push(level * (1.0 - rej - f.mae));
                    tr.push(rej);
                    pr.push(rej + f.mae * if k % 2 == 0 { 1.0 } else { -1.0 });
                }
                att_family.push(fam.to_string());
                r += 1;
            }
        }
    }
    strings(&g, "part", &part);
    g.new_dataset_builder()
        .with_data(&row)
        .create("row")
        .unwrap();
    strings(&g, "family", &family);
    strings(&g, "ion", &ion);
    for (name, v) in [
        ("jv_m_s", &jv),
        ("feed_mol_m3", &feed),
        ("target_permeate_mol_m3", &tp),
        ("predicted_permeate_mol_m3", &pp),
        ("target_rejection", &tr),
        ("predicted_rejection", &pr),
    ] {
        floats(&g, name, v);
    }
    drop(g);
    if f.attention {
        // Attention grows with the charge difference; absent slots are zero.
        let n = att_family.len();
        let mut mean = Array3::<f64>::zeros((n, 4, 4));
        for (s, fam) in att_family.iter().enumerate() {
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
        let g = file.create_group("attention").unwrap();
        g.new_dataset_builder()
            .with_data(&mean)
            .create("mean")
            .unwrap();
        g.new_dataset_builder()
            .with_data(&mean)
            .create("end")
            .unwrap();
        let rows: Vec<u64> = (0..n as u64).collect();
        g.new_dataset_builder()
            .with_data(&rows)
            .create("rows")
            .unwrap();
        strings(&g, "species", &SPECIES.map(String::from));
        strings(&g, "family", &att_family);
        drop(g);
    }
    file.close().unwrap();
    if done {
        mark_done(&run_dir);
    }
}

const SEED_OFFSET: [f64; 3] = [-0.01, 0.0, 0.01];

/// Study A: variant x constraint x pretrain x n_train, 3 seeds, synthetic; one more run
/// without DONE. Test MAE = base + seed offset, so every configuration has mean = base
/// and std = 0.01 (n = 3).
fn study_a(root: &Path) -> PathBuf {
    let dir = root.join("alpha");
    for variant in ["attention_node", "mlp"] {
        for kind in ["hard", "none"] {
            for pretrain in [true, false] {
                for n_train in [10, 30] {
                    for (s, off) in SEED_OFFSET.iter().enumerate() {
                        let base = if variant == "mlp" { 0.08 } else { 0.05 }
                            + if kind == "none" { 0.01 } else { 0.0 }
                            + if pretrain { 0.0 } else { 0.02 }
                            + if n_train == 10 { 0.03 } else { 0.0 };
                        let f = Fake {
                            study: "alpha",
                            id: format!("{variant}-{kind}-{pretrain}-{n_train}-s{s}"),
                            axes: json!({"method": "neural", "model.variant": variant,
                                "model.electroneutrality": {"kind": kind},
                                "pretrain": if pretrain { json!({"epochs": 2, "batch_size": 32}) } else { json!(false) },
                                "split.n_train": n_train, "seed": s + 1}),
                            method: "neural",
                            mae: base + off,
                            en: if kind == "hard" {
                                1e-15
                            } else {
                                0.02 + off.abs()
                            },
                            curves: true,
                            attention: variant == "attention_node",
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
        axes: json!({"method": "neural", "model.variant": "attention_node",
            "model.electroneutrality": {"kind": "hard"}, "pretrain": true,
            "split.n_train": 30, "seed": 9}),
        method: "neural",
        mae: 0.0001,
        en: 0.0,
        curves: true,
        attention: true,
        synthetic: true,
    };
    write_run(&dir, &unfinished, false);
    dir
}

/// Study B: other axes (method, model.hidden), measured (not synthetic) data, no
/// attention, the DSPM-DE baseline without curves.
fn study_b(root: &Path) -> PathBuf {
    let dir = root.join("beta");
    for (method, hidden) in [("neural", 16), ("neural", 32), ("dspmde_fit", 0)] {
        for (s, off) in SEED_OFFSET.iter().enumerate() {
            let base = match (method, hidden) {
                ("neural", 16) => 0.04,
                ("neural", _) => 0.03,
                _ => 0.06,
            };
            let f = Fake {
                study: "beta",
                id: format!("{method}-{hidden}-s{s}"),
                axes: json!({"method": method, "model.hidden": hidden, "seed": s}),
                method,
                mae: base + 2.0 * off,
                en: 0.01,
                curves: method == "neural",
                attention: false,
                synthetic: false,
            };
            write_run(&dir, &f, true);
        }
    }
    dir
}

fn files_starting(dir: &Path, prefix: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(prefix) && n.ends_with(ext)
        })
        .collect();
    v.sort();
    v
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

#[test]
fn report_of_a_full_study_writes_summary_tables_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_a(tmp.path());
    let r = ablate(&["report", dir.to_str().unwrap()]);
    let out = text(&r.stdout);
    assert!(r.status.success(), "{}\n{}", out, text(&r.stderr));
    assert!(out.contains("48 finished run(s)"), "{out}");
    assert!(
        out.contains("1 run folder(s) without DONE skipped"),
        "{out}"
    );

    // Summary: one row per finished run, every axis a column.
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(lines.count(), 48);
    for col in [
        "run_id",
        "method",
        "model.variant",
        "model.electroneutrality",
        "pretrain",
        "split.n_train",
        "seed",
        "run_method",
        "test_mae",
        "test_rmse",
        "test_r2",
        "validation_mae",
        "test_en_mean",
        "test_en_max",
        "pretrain_test_mae",
        "test_mae_Na+",
        "test_mae_SO4^2-",
        "seconds_total",
        "synthetic",
        "git_commit",
        "manifest_hash",
    ] {
        assert!(header.contains(&col), "missing column {col}: {header:?}");
    }
    assert!(!csv.contains("zz-unfinished"));
    assert!(
        csv.contains(r#"{""kind"":""hard""}"#),
        "JSON axis values as text"
    );
    let file = std::fs::File::open(dir.join("summary.parquet")).unwrap();
    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(file).finish().unwrap();
    assert_eq!(df.height(), 48);
    assert_eq!(df.width(), header.len());

    // Table 1: variant x constraint at n_train = 30 with pre-training; mean = base, std = 0.01.
    let tables = dir.join("report/tables");
    let t1 = files_starting(&tables, "table1_", ".md");
    assert_eq!(t1.len(), 1, "{t1:?}");
    assert!(t1[0].ends_with("table1_model-variant_x_model-electroneutrality.md"));
    let md = std::fs::read_to_string(&t1[0]).unwrap();
    assert!(md.contains("synthetic data"), "{md}");
    assert!(
        md.contains("| attention_node | hard | 3 | **0.0500 ± 0.0100** | **0.0750 ± 0.0150** | **0.9000 ± 0.0200** | **0.0550 ± 0.0110** |"),
        "{md}"
    );
    assert!(
        md.contains("| mlp | none | 3 | 0.0900 ± 0.0100 | 0.1350 ± 0.0150 | 0.8200 ± 0.0200 | 0.0990 ± 0.0110 |"),
        "{md}"
    );
    assert_eq!(md.matches("| 3 |").count(), 4, "four configurations: {md}");
    assert!(md.contains("split.n_train = 30"), "{md}");
    assert!(
        md.contains("git commit(s): c0ffee1; manifest hash: mh-0123abcd; 12 runs in 4 configurations; 1 unfinished run(s) without DONE skipped"),
        "{md}"
    );
    let tex = std::fs::read_to_string(t1[0].with_extension("tex")).unwrap();
    assert!(tex.contains("\\textbf{0.0500 $\\pm$ 0.0100}"), "{tex}");
    assert!(
        tex.contains("model.variant & model.electroneutrality & $n$"),
        "{tex}"
    );

    // Table 2: n_train x pretrain, all 16 configurations; the best is marked once per column.
    let t2 = files_starting(&tables, "table2_split-n_train_x_pretrain", ".md");
    let md2 = std::fs::read_to_string(&t2[0]).unwrap();
    assert_eq!(md2.matches("| 3 |").count(), 16, "{md2}");
    assert!(
        md2.contains("| 10 | off | hard | attention_node | 3 | 0.1000 ± 0.0100 |"),
        "{md2}"
    );
    assert_eq!(md2.matches("**0.0500 ± 0.0100**").count(), 1, "{md2}");
    assert!(
        md2.contains("| 30 | on | hard | attention_node | 3 | **0.0500 ± 0.0100** |"),
        "resolved pre-training settings read as on: {md2}"
    );

    // Table 3: the constraint with the EN residual (hard ~1e-15 in exponent form).
    let t3 = files_starting(&tables, "table3_model-electroneutrality", ".md");
    let md3 = std::fs::read_to_string(&t3[0]).unwrap();
    assert!(md3.contains("EN residual mean"), "{md3}");
    assert_eq!(md3.matches("| **1.00e-15 ± ").count(), 2, "{md3}");

    // Figures: PNG and SVG of each, captions say synthetic data.
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
    }
    let corr = std::fs::read_to_string(figures.join("attention_correlation.svg")).unwrap();
    assert!(corr.contains("Pearson r = "), "correlation in the title");
    // Attention was made to grow with the charge difference.
    let r_charge = corr
        .split("Pearson r = ")
        .nth(1)
        .and_then(|s| s.get(..5))
        .unwrap();
    assert!(r_charge.parse::<f64>().unwrap() > 0.2, "{r_charge}");
    let heat = std::fs::read_to_string(figures.join("attention_heatmaps.svg")).unwrap();
    assert!(
        heat.contains("SO4^2-") && heat.contains("NaCl+MgSO4"),
        "ion and family labels"
    );
}

#[test]
fn report_skips_tables_and_figures_whose_axes_or_data_are_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = study_b(tmp.path());
    let out_dir = tmp.path().join("elsewhere");
    let r = ablate(&[
        "report",
        dir.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let out = text(&r.stdout);
    assert!(r.status.success(), "{}\n{}", out, text(&r.stderr));
    assert!(out.contains("9 finished run(s)"), "{out}");
    assert!(
        out.contains("note: table 2 (pre-training effect) skipped"),
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

    // With --out, everything goes there and nothing into the study folder.
    assert!(!dir.join("summary.csv").exists());
    let csv = std::fs::read_to_string(out_dir.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10);
    assert!(csv.lines().next().unwrap().contains("model.hidden"));

    // Table 1 by method, then the varying axis model.hidden; mean +- std of 3 seeds.
    let t1 = files_starting(&out_dir.join("tables"), "table1_method", ".md");
    let md = std::fs::read_to_string(&t1[0]).unwrap();
    assert!(
        md.contains("| method | model.hidden | n | test MAE |"),
        "{md}"
    );
    assert!(
        md.contains("| neural | 32 | 3 | **0.0300 ± 0.0200** |"),
        "{md}"
    );
    assert!(
        md.contains("| dspmde_fit | 0 | 3 | 0.0600 ± 0.0200 |"),
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
    assert!(err.contains("no finished runs"), "{err}");
    assert!(
        err.contains("1 run folder(s) without a DONE marker skipped"),
        "{err}"
    );

    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir_all(corrupt.join("runs/r1")).unwrap();
    std::fs::write(corrupt.join("runs/r1/run.h5"), "not hdf5 at all").unwrap();
    mark_done(&corrupt.join("runs/r1"));
    let err = fail(&corrupt);
    assert!(err.contains("runs/r1/run.h5"), "names the file: {err}");
    assert!(err.contains("corrupt or not HDF5"), "{err}");

    let bare = tmp.path().join("bare");
    std::fs::create_dir_all(bare.join("runs/r1")).unwrap();
    let guard = files_lock();
    let file = hdf5::File::create(bare.join("runs/r1/run.h5")).unwrap();
    attr(&file, "run_id", "r1");
    attr(&file, "axes_json", "{\"seed\": 1}");
    file.close().unwrap();
    drop(guard);
    mark_done(&bare.join("runs/r1"));
    let err = fail(&bare);
    assert!(
        err.contains("runs/r1/run.h5': missing attribute 'metrics_json'"),
        "{err}"
    );
}
