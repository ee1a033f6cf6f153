//! `ablate predict`: finished runs (neural and dspmde_fit, from `ablate train` and from a
//! study) applied to measured-data files with and without outcomes; every bad input is a
//! located error with exit code 2 and no PRED.csv.

mod common;
use common::{ablate, text};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn nf270() -> String {
    root()
        .join("datasets/measured/nf270_fdl2021.csv")
        .display()
        .to_string()
}

/// The six ions of the NF270 file as slots.
const SLOTS: &str = "slots = [{ name = \"Na+\", charge = 1 }, { name = \"NH4+\", charge = 1 }, { name = \"Mg2+\", charge = 2 }, { name = \"Cl-\", charge = -1 }, { name = \"NO3-\", charge = -1 }, { name = \"SO4^2-\", charge = -2 }]";

/// Trains a small run of `method` named `label`; `model` adds lines to its `[model]`.
fn train_as(dir: &Path, label: &str, method: &str, model: &str) -> PathBuf {
    train_with(dir, label, method, model, SLOTS, "")
}

/// [`train_as`] with other slots and more of the config (`extra`, appended).
fn train_with(
    dir: &Path,
    label: &str,
    method: &str,
    model: &str,
    slots: &str,
    extra: &str,
) -> PathBuf {
    let config = dir.join(format!("{label}.toml"));
    std::fs::write(
        &config,
        format!(
            "seed = 2\nmethod = \"{method}\"\n[model]\n{slots}\n{model}embed_dim = 4\nhidden = 8\nlayers = 2\n\
             solver = {{ kind = \"rk4\", steps = 2 }}\nstate = \"transmission\"\n\
             [data]\nmeasured = [\"{}\"]\n[finetune]\nepochs = 2\nbatch_size = 8\n\
             [calibration]\nstarts = 1\nmax_iters = 8\n\
             [split]\nkind = \"by_family\"\ntest_family = \"MgSO4\"\nvalidation_fraction = 0.2\n{extra}",
            nf270()
        ),
    )
    .unwrap();
    let out = dir.join(format!("run_{label}"));
    let r = ablate(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    out
}

fn train(dir: &Path, method: &str) -> PathBuf {
    train_as(dir, method, method, "")
}

fn predict(run: &Path, data: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "predict",
        "--run",
        run.to_str().unwrap(),
        "--data",
        data,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ablate(&args)
}

#[test]
fn trained_runs_predict_every_row_and_score_the_measured_ones() {
    let dir = tempfile::tempdir().unwrap();
    let runs = [
        ("neural", "neural", ""),
        ("dspmde_fit", "dspmde_fit", ""),
        // A physics-anchored model solves its calibrated DSPM-DE for the file's feeds.
        ("anchored", "neural", "prior = \"residual\"\n"),
    ];
    for (method, kind, model) in runs {
        let run = train_as(dir.path(), method, kind, model);
        let out = dir.path().join(format!("pred_{method}.csv"));
        let r = predict(&run, &nf270(), &out, &[]);
        assert!(r.status.success(), "{method}: {}", text(&r.stderr));
        let report = text(&r.stdout);
        assert!(
            report.starts_with("predicted 28 rows (140 ion values)"),
            "{report}"
        );
        assert!(report.contains("\noverall       134 "), "{report}");
        let csv = std::fs::read_to_string(&out).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "row,line,sample_id,family,ion,feed_mol_m3,Jv_m_s,temperature_K,permeate_predicted_mol_m3,rejection_predicted,rejection_measured,rejection_measured_sd,domain"
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 140);
        // Unmeasured entries are predicted, with an empty measured value.
        let unmeasured = rows.iter().filter(|r| r[10].is_empty()).count();
        assert_eq!(unmeasured, 6, "{method}");
        for r in &rows {
            let (feed, p, rej): (f64, f64, f64) = (
                r[5].parse().unwrap(),
                r[8].parse().unwrap(),
                r[9].parse().unwrap(),
            );
            assert!((rej - (1.0 - p / feed)).abs() < 1e-12, "{r:?}");
        }
    }
    // The calibrated membrane (of a dspmde_fit or an anchored run) is a membrane file every
    // --membrane accepts.
    for run in ["run_dspmde_fit", "run_anchored"] {
        let membrane = dir.path().join(run).join("membrane.toml");
        let r = ablate(&[
            "dspmde",
            "point",
            "--membrane",
            membrane.to_str().unwrap(),
            "--feed",
            "NaCl=10",
            "--flux",
            "30lmh",
        ]);
        assert!(r.status.success(), "{run}: {}", text(&r.stderr));
    }
}

#[test]
fn a_study_run_predicts_feeds_without_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("s.toml");
    std::fs::write(
        &manifest,
        format!(
            "study = \"p\"\nseeds = 1\n[datasets]\nmeasured = [\"{}\"]\n[base]\nmethod = \"neural\"\n\
             [base.model]\n{SLOTS}\nembed_dim = 4\nhidden = 8\nlayers = 2\nsolver = {{ kind = \"rk4\", steps = 2 }}\n\
             [base.finetune]\nepochs = 1\nbatch_size = 8\n\
             [base.split]\nkind = \"by_family\"\ntest_family = \"NaCl\"\nvalidation_fraction = 0.2\n",
            nf270()
        ),
    )
    .unwrap();
    let results = dir.path().join("results");
    let r = ablate(&[
        "run",
        manifest.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("p/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1);
    let feeds = dir.path().join("feeds.csv");
    std::fs::write(
        &feeds,
        "source,membrane,temperature_K,synthetic,Jv_LMH,feed_Na+_mol_m3,feed_Cl-_mol_m3,feed_Mg^2+_mol_m3\n\
         my lab,NF270,293.15,false,60,10,30,10\n\
         my lab,NF270,293.15,false,120,10,30,10\n",
    )
    .unwrap();
    let out = dir.path().join("pred.csv");
    let r = predict(&runs[0], feeds.to_str().unwrap(), &out, &[]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(!text(&r.stdout).contains("MAE"), "no outcomes, no metrics");
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with("permeate_predicted_mol_m3,rejection_predicted,domain"));
    assert!(csv.contains(",Mg^2+,10.0,"), "{csv}");
}

#[test]
fn bad_inputs_are_located_errors_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path(), "neural");
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let head = "source,membrane,temperature_K,synthetic,Jv_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3";
    let cases = [
        (
            write("li.csv", &format!("{head},feed_Li+_mol_m3\ns,NF270,293.15,false,2e-5,10,20,10\n")),
            vec!["li.csv, line 2, column 'feed_Li+_mol_m3', value '10': the model has no slot for Li+; its slots are Na+, NH4+, Mg^2+, Cl-, NO3-, SO4^2-"],
        ),
        (
            write("flux.csv", &format!("{head}\ns,NF270,293.15,false,2e-4,10,10\ns,NF270,293.15,false,1e-7,10,10\n")),
            vec![
                "flux.csv, line 2, column 'Jv_m_s', value '0.0002': outside the fluxes the model was trained on",
                "flux.csv, line 3, column 'Jv_m_s', value '0.0000001': outside the fluxes the model was trained on",
            ],
        ),
        (
            write("warm.csv", &format!("{head}\ns,NF270,313.15,false,2e-5,10,10\n")),
            vec!["warm.csv, line 2, column 'temperature_K', value '313.15': outside the temperatures the model was trained on, 293.15 to 293.15 K"],
        ),
        (
            write("bad.csv", &format!("{head}\ns,NF270,293.15,maybe,2e-5,10,10\n")),
            vec!["bad.csv, line 2, column 'synthetic', value 'maybe': not true or false"],
        ),
    ];
    for (file, expected) in &cases {
        let out = dir.path().join("pred.csv");
        let r = predict(&run, file, &out, &[]);
        assert_eq!(r.status.code(), Some(2), "{file}: {}", text(&r.stderr));
        let err = text(&r.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), expected.len() + 1, "{err}");
        for (line, want) in lines.iter().zip(expected) {
            let want = format!("{}/{want}", dir.path().display());
            assert!(line.starts_with(&want), "{line}\n  expected {want}");
        }
        assert!(lines.last().unwrap().starts_with("error: data '"), "{err}");
        assert!(!out.exists(), "{file}: no partial output");
    }
    // --extrapolate predicts outside the training fluxes anyway.
    let out = dir.path().join("pred.csv");
    let r = predict(&run, &cases[1].0, &out, &["--extrapolate"]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(out.exists());
    // A folder that is not a run.
    let r = predict(dir.path(), &nf270(), &dir.path().join("x.csv"), &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("is not a finished run"),
        "{}",
        text(&r.stderr)
    );
}

/// An ensemble's predictions carry intervals (and the Li/Mg separation factor one), and
/// every row says how it lies outside the training domain.
#[test]
fn ensembles_give_intervals_and_rows_outside_the_domain_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let slots = "slots = [{ name = \"Na+\", charge = 1 }, { name = \"Li+\", charge = 1 }, { name = \"NH4+\", charge = 1 }, { name = \"Mg2+\", charge = 2 }, { name = \"Cl-\", charge = -1 }, { name = \"NO3-\", charge = -1 }, { name = \"SO4^2-\", charge = -2 }]";
    let run = train_with(
        dir.path(),
        "ensemble",
        "neural",
        "",
        slots,
        "[ensemble]\nmembers = 3\nlevel = 0.8\n",
    );
    // A Li/Mg brine far above the measured feeds (10 mol/m3 of Mg^2+), and one bundled row.
    let feeds = dir.path().join("brine.csv");
    std::fs::write(
        &feeds,
        "source,membrane,temperature_K,synthetic,Jv_m_s,feed_Li+_mol_m3,feed_Mg^2+_mol_m3,feed_Cl-_mol_m3,rejection_Li+,rejection_Mg^2+,feed_Na+_mol_m3\n\
         my lab,NF270,293.15,false,2e-5,20,84,188,0.2,0.9,0\n\
         my lab,NF270,293.15,false,2e-5,0,0,15,,,15\n",
    )
    .unwrap();
    let out = dir.path().join("pred.csv");
    let r = predict(&run, feeds.to_str().unwrap(), &out, &[]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let report = text(&r.stdout);
    assert!(
        report.contains("domain: 1 of 2 rows outside what the model was trained on (Li+ never measured: 1 row; Mg^2+ above the largest measured: 1 row; Cl- above the largest measured: 1 row; ionic strength above: 1 row)"),
        "{report}"
    );
    assert!(report.contains("80 % intervals: "), "{report}");
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[9..],
        [
            "rejection_predicted",
            "rejection_predicted_lower",
            "rejection_predicted_upper",
            "rejection_measured",
            "rejection_measured_sd",
            "separation_Li_Mg_predicted",
            "separation_Li_Mg_lower",
            "separation_Li_Mg_upper",
            "separation_Li_Mg_measured",
            "domain",
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let f = |r: &[&str], name: &str| r[col(name)].parse::<f64>().unwrap();
    for r in &rows {
        let (lo, mid, hi) = (
            f(r, "rejection_predicted_lower"),
            f(r, "rejection_predicted"),
            f(r, "rejection_predicted_upper"),
        );
        assert!(lo <= hi && lo >= -2.0 && hi <= 1.0, "{r:?}");
        assert!(mid.is_finite());
    }
    // The brine's three ions share the row's flags and separation factor.
    let brine: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "2").collect();
    assert_eq!(brine.len(), 3);
    // Trained on NaCl, MgCl2 and Na2SO4 (10 mol/m3 of salt, 0.2 of NaNO3 and NH4Cl): at
    // most 10 Mg^2+ and 20.2 Cl- (MgCl2), ionic strength ½(4·10 + 20.2 + 3·0.2) = 30.4;
    // the brine's is ½(20 + 4·84 + 188) = 272.
    let flags = brine[0][col("domain")];
    assert_eq!(
        flags,
        "Li+ never measured; Mg^2+ 8.40x above the largest measured; Cl- 9.31x above the largest measured; ionic strength 8.95x above the largest measured"
    );
    // S = (1 - R_Li) / (1 - R_Mg), measured 0.8 / 0.1.
    assert!((f(brine[0], "separation_Li_Mg_measured") - 8.0).abs() < 1e-9);
    let (slo, s, shi) = (
        f(brine[0], "separation_Li_Mg_lower"),
        f(brine[0], "separation_Li_Mg_predicted"),
        f(brine[0], "separation_Li_Mg_upper"),
    );
    assert!(slo <= s && s <= shi, "{slo} {s} {shi}");
    // The bundled-like row is inside, with empty flags and no separation factor.
    let inside: Vec<&Vec<&str>> = rows.iter().filter(|r| r[1] == "3").collect();
    assert!(inside.iter().all(|r| r[col("domain")].is_empty()));
    assert!(inside
        .iter()
        .all(|r| r[col("separation_Li_Mg_predicted")].is_empty()));
}

/// Observed rejections: the prediction is intrinsic, and rows with a film coefficient also
/// get the observed one the film model makes of it; rows without one are noted once.
#[test]
fn observed_rows_get_the_film_models_prediction_too() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path(), "dspmde_fit");
    let feeds = dir.path().join("observed.csv");
    std::fs::write(
        &feeds,
        "source,membrane,temperature_K,synthetic,Jv_m_s,rejection_basis,k_film_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3,rejection_Na+,rejection_Cl-\n\
         cell,NF270,293.15,false,2e-5,observed,2e-5,10,10,0.3,0.3\n\
         cell,NF270,293.15,false,2e-5,observed,,10,10,0.31,0.31\n\
         disk,NF270,293.15,false,2e-5,intrinsic,,10,10,0.5,0.5\n",
    )
    .unwrap();
    let out = dir.path().join("pred.csv");
    let r = predict(&run, feeds.to_str().unwrap(), &out, &[]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let err = text(&r.stderr);
    assert_eq!(err.matches("note: ").count(), 1, "one note per file: {err}");
    assert!(
        err.contains(
            "1 row of observed rejections without k_film_m_s (line 3) is used as if intrinsic"
        ),
        "{err}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let intrinsic: f64 = r[col("rejection_predicted")].parse().unwrap();
        let observed = r[col("rejection_predicted_observed")];
        match r[1] {
            // J_v / k = 1: T_obs = T e / (1 + T (e - 1)).
            "2" => {
                let t = 1.0 - intrinsic;
                let e = std::f64::consts::E;
                let want = 1.0 - t * e / (1.0 + t * (e - 1.0));
                let got: f64 = observed.parse().unwrap();
                assert!((got - want).abs() < 1e-12, "{got} {want}");
                assert!(
                    got < intrinsic,
                    "polarisation lowers the observed rejection"
                );
                assert_eq!(r[col("rejection_basis")], "observed");
            }
            "3" => {
                assert!(observed.is_empty());
                assert_eq!(
                    r[col("rejection_basis")],
                    "observed; compared as intrinsic (no k_film_m_s)"
                );
            }
            _ => {
                assert!(observed.is_empty());
                assert_eq!(r[col("rejection_basis")], "intrinsic");
            }
        }
    }
}
