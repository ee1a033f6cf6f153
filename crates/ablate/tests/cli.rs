//! End-to-end tests of the `ablate` binary: real processes, real files in temporary
//! folders, the real reference file.

use hdf5_metno as hdf5;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REFERENCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../physics/tests/data/dspmde_watertap_cases.json"
);

fn ablate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the ablate binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn close(a: f64, e: f64, rel: f64) -> bool {
    (a - e).abs() <= rel * e.abs() + 1e-9
}

#[test]
fn solve_reproduces_the_reference_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("nested/solved.json");
    let out = ablate(&[
        "dspmde",
        "solve",
        "--cases",
        REFERENCE,
        "--out",
        s(&out_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("solved 58, failed 0"),
        "{}",
        stderr(&out)
    );
    assert_no_tmp(&dir.path().join("nested"));

    let reference = read_json(Path::new(REFERENCE));
    let solved = read_json(&out_path);
    // Everything that is not a case is untouched.
    for key in [
        "title",
        "schema_notes",
        "provenance",
        "constants",
        "tolerance_guidance",
    ] {
        assert_eq!(solved[key], reference[key], "{key}");
    }
    let expected_cases = reference["groups"]["point_cases"].as_array().unwrap();
    let solved_cases = solved["groups"]["point_cases"].as_array().unwrap();
    assert_eq!(expected_cases.len(), 49);
    assert_eq!(solved_cases.len(), 49);
    let mut compared = 0;
    for (e, a) in expected_cases.iter().zip(solved_cases) {
        let id = e["id"].as_str().unwrap();
        assert_eq!(a["id"], e["id"]);
        assert!(a.get("error").is_none(), "{id}: {}", a["error"]);
        let (e, a) = (&e["expected"], &a["expected"]);
        assert!(
            close(
                a["Jv_m_s"].as_f64().unwrap(),
                e["Jv_m_s"].as_f64().unwrap(),
                1e-5
            ),
            "{id}"
        );
        for field in [
            "c_permeate_mol_m3",
            "rejection_vs_bulk",
            "c_interface_mol_m3",
        ] {
            let map = e[field].as_object().unwrap();
            for (ion, v) in map {
                let got = a[field][ion].as_f64().unwrap_or(f64::NAN);
                assert!(
                    close(got, v.as_f64().unwrap(), 1e-5),
                    "{id} {field}.{ion}: {got} vs {v}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 300, "{compared}");

    // Module cases: computed oracle blocks and the upstream assertions to their tolerance.
    for (e, a) in reference["groups"]["watertap_unit_tests"]
        .as_array()
        .unwrap()
        .iter()
        .zip(solved["groups"]["watertap_unit_tests"].as_array().unwrap())
    {
        let id = e["id"].as_str().unwrap();
        let rel = e["asserted_tolerance_rel"].as_f64().unwrap();
        for block in ["module", "point_x0", "point_x1"] {
            assert!(
                a["oracle_full_precision"][block].is_object(),
                "{id} {block}"
            );
        }
        for (key, values) in e["asserted_upstream_watertap_1_8_0"].as_object().unwrap() {
            for (ion, v) in values.as_object().unwrap() {
                let got = a["asserted_upstream_watertap_1_8_0"][key][ion]
                    .as_f64()
                    .unwrap();
                assert!(
                    close(got, v.as_f64().unwrap(), rel),
                    "{id} {key}.{ion}: {got} vs {v}"
                );
            }
        }
    }
    // The no-solution cases have no `kind` and are solved as point cases.
    for case in solved["groups"]["no_solution_cases"].as_array().unwrap() {
        assert!(case["expected"]["c_permeate_mol_m3"].is_object(), "{case}");
    }
}

#[test]
fn solve_accepts_a_group_or_one_case_and_reports_failing_cases() {
    let dir = tempfile::tempdir().unwrap();
    let reference = read_json(Path::new(REFERENCE));
    let mut group: Vec<Value> =
        reference["groups"]["point_cases"].as_array().unwrap()[..2].to_vec();
    let mut bad = group[0].clone();
    bad["id"] = "bad".into();
    bad["inputs"]["membrane"]["r_pore_m"] = Value::from(-1.0);
    group.push(bad);
    let group_path = dir.path().join("group.json");
    std::fs::write(&group_path, serde_json::to_string(&group).unwrap()).unwrap();
    let out_path = dir.path().join("group.out.json");
    let out = ablate(&[
        "dspmde",
        "solve",
        "--cases",
        s(&group_path),
        "--out",
        s(&out_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("solved 2, failed 1"),
        "{}",
        stderr(&out)
    );
    let solved = read_json(&out_path);
    assert!(solved[0]["expected"]["c_permeate_mol_m3"].is_object());
    assert!(
        solved[2]["error"]
            .as_str()
            .unwrap()
            .contains("pore_radius_m"),
        "{}",
        solved[2]
    );
    assert!(solved[2].get("expected").is_none());

    // One case object, flux-driven (point_given_Jv).
    let mut case = group[1].clone();
    case["kind"] = "point_given_Jv".into();
    case["inputs"]["Jv_m_s"] = case["expected"]["Jv_m_s"].clone();
    let case_path = dir.path().join("case.json");
    std::fs::write(&case_path, serde_json::to_string(&case).unwrap()).unwrap();
    let out_path = dir.path().join("case.out.json");
    let out = ablate(&[
        "dspmde",
        "solve",
        "--cases",
        s(&case_path),
        "--out",
        s(&out_path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let solved = read_json(&out_path);
    let dp = solved["expected"]["dP_Pa"].as_f64().unwrap();
    assert!(
        close(dp, case["inputs"]["dP_Pa"].as_f64().unwrap(), 1e-6),
        "{dp}"
    );
}

#[test]
fn point_prints_a_table_and_json() {
    let out = ablate(&[
        "dspmde",
        "point",
        "--membrane",
        "nf270",
        "--feed",
        "NaCl=50,MgSO4=10",
        "--flux",
        "30lmh",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("Na+") && table.contains("SO4^2-"), "{table}");
    assert!(
        table.contains("rejection") && table.contains("30.000 LMH"),
        "{table}"
    );
    let so4 = table.lines().find(|l| l.starts_with("SO4^2-")).unwrap();
    let rejection: f64 = so4.split_whitespace().last().unwrap().parse().unwrap();
    assert!(rejection > 90.0 && rejection < 100.0, "{so4}");

    let out = ablate(&[
        "dspmde",
        "point",
        "--membrane",
        "wt_test",
        "--feed",
        "Na+=50,Cl-=50",
        "--pressure",
        "3bar",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    // The reference's first case (NaCl 50 mM, wt_test, 3 bar).
    assert!(
        close(
            v["c_permeate_mol_m3"]["Na+"].as_f64().unwrap(),
            28.9020202646,
            1e-5
        ),
        "{v}"
    );
}

/// Every user mistake: exit code 2, one line on stderr naming the offending value.
#[test]
fn bad_inputs_give_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let malformed_json = dir.path().join("cases.json");
    std::fs::write(
        &malformed_json,
        "{\"groups\": {\"point_cases\": [ {\"id\": 1,,} ]}}",
    )
    .unwrap();
    let bad_toml = dir.path().join("ions.toml");
    std::fs::write(
        &bad_toml,
        "[[ion]]\nname = \"NO3-\"\ncharge = \"minus one\"\ndiffusivity_m2_s = 1.9e-9\n",
    )
    .unwrap();
    let big_ion = dir.path().join("big.toml");
    std::fs::write(
        &big_ion,
        "[[ion]]\nname = \"Big_+\"\ncharge = 1\ndiffusivity_m2_s = 1e-9\n\
         stokes_radius_m = 6e-10\nmolar_mass_kg_mol = 0.1\nsource = \"test\"\n",
    )
    .unwrap();
    let out_json = dir.path().join("out.json");
    fn point<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["dspmde", "point"];
        args.extend_from_slice(extra);
        args
    }
    let sim_out = dir.path().join("x.h5");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (point(&["--feed", "XyCl=5", "--flux", "30lmh"]), "XyCl"),
        (
            point(&["--feed", "Na+=50,Cl-=40", "--flux", "30lmh"]),
            "not electroneutral",
        ),
        (point(&["--feed", "NaCl=-5", "--flux", "30lmh"]), "-5"),
        (
            point(&["--feed", "NaCl=5", "--flux", "30furlongs"]),
            "furlongs",
        ),
        (
            point(&["--feed", "NaCl=5", "--flux", "30lmh", "--membrane", "nf90"]),
            "nf90",
        ),
        (
            point(&["--feed", "NaCl=5", "--flux", "30lmh", "--cp", "turbulent"]),
            "turbulent",
        ),
        (point(&["--feed", "NaCl=5", "--pressure", "7atm0"]), "7atm0"),
        (
            point(&[
                "--feed",
                "NaCl=5",
                "--flux",
                "30lmh",
                "--ions",
                s(&bad_toml),
            ]),
            "line 3",
        ),
        (
            point(&[
                "--feed",
                "Big+=5,Cl-=5",
                "--flux",
                "30lmh",
                "--ions",
                s(&big_ion),
            ]),
            "6e-10",
        ),
        (
            vec![
                "dspmde",
                "solve",
                "--cases",
                s(&malformed_json),
                "--out",
                s(&out_json),
            ],
            "line 1 column",
        ),
        (
            vec![
                "dspmde",
                "solve",
                "--cases",
                "/nonexistent/cases.json",
                "--out",
                s(&out_json),
            ],
            "/nonexistent/cases.json",
        ),
        (
            vec![
                "simulate",
                "--samples",
                "2",
                "--seed",
                "1",
                "--species",
                "Na+,Fe3+,Cl-",
                "--out",
                s(&sim_out),
            ],
            "Fe3+",
        ),
    ];
    for (args, needle) in cases {
        let out = ablate(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
    let toml_err = stderr(&ablate(&point(&[
        "--feed",
        "NaCl=5",
        "--flux",
        "30lmh",
        "--ions",
        s(&bad_toml),
    ])));
    assert!(
        toml_err.contains("ions.toml") && toml_err.contains("charge"),
        "{toml_err}"
    );
    assert!(!out_json.exists());
}

#[test]
fn solver_failure_exits_1() {
    // The linearised film has no solution far beyond its pole.
    let out = ablate(&[
        "dspmde",
        "point",
        "--feed",
        "NaCl=5",
        "--flux",
        "3e-3",
        "--cp",
        "spiral-wound",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("error: no physical solution"),
        "{}",
        stderr(&out)
    );
}

fn read_dataset(path: &Path) -> (hdf5::File, ndarray::Array3<f64>) {
    let file = ionode_study::h5::open(path).unwrap();
    let permeate = file
        .dataset("permeate")
        .unwrap()
        .read::<f64, ndarray::Ix3>()
        .unwrap();
    (file, permeate)
}

#[test]
fn simulate_writes_hdf5_identical_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = ["one", "two"]
        .iter()
        .map(|n| dir.path().join(format!("sim/{n}.h5")))
        .collect();
    for (path, threads) in paths.iter().zip(["1", "2"]) {
        let out = ablate(&[
            "simulate",
            "--membrane",
            "nf270",
            "--samples",
            "6",
            "--seed",
            "11",
            "--flux-count",
            "3",
            "--threads",
            threads,
            "--out",
            s(path),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("6 samples x 3 fluxes"),
            "{}",
            stderr(&out)
        );
        assert_no_tmp(path.parent().unwrap());
    }
    let (file, permeate) = read_dataset(&paths[0]);
    let (_, permeate_2) = read_dataset(&paths[1]);
    assert_eq!(permeate.shape(), &[6, 3, 7]);
    assert_eq!(permeate, permeate_2, "thread count changed the data");
    assert!(permeate.iter().any(|&c| c > 0.0));

    let shape = |name: &str| file.dataset(name).unwrap().shape();
    assert_eq!(shape("feed"), vec![6, 7]);
    assert_eq!(shape("mask"), vec![6, 7]);
    assert_eq!(shape("flux_m_s"), vec![3]);
    assert_eq!(shape("rejection"), vec![6, 3, 7]);
    assert_eq!(shape("pressure_pa"), vec![6, 3]);
    assert_eq!(shape("status"), vec![6, 3]);
    assert_eq!(shape("species"), vec![7]);
    assert_eq!(shape("charge"), vec![7]);
    assert_eq!(
        file.dataset("charge").unwrap().read_raw::<i32>().unwrap(),
        vec![1, 1, 1, 2, 2, -1, -2]
    );
    let species = file
        .dataset("species")
        .unwrap()
        .read_raw::<hdf5::types::VarLenUnicode>()
        .unwrap();
    assert_eq!(species[0].as_str(), "Na+");
    let failures = file.group("failures").unwrap();
    let n_failed = file.attr("n_failed").unwrap().read_scalar::<u64>().unwrap();
    assert_eq!(
        failures.dataset("sample").unwrap().shape(),
        vec![n_failed as usize]
    );

    let attr = |name: &str| {
        file.attr(name)
            .unwrap()
            .read_scalar::<hdf5::types::VarLenUnicode>()
            .unwrap()
            .as_str()
            .to_string()
    };
    let synthetic: bool = file.attr("synthetic").unwrap().read_scalar().unwrap();
    assert!(synthetic);
    assert!(
        attr("created_utc").ends_with('Z'),
        "{}",
        attr("created_utc")
    );
    assert!(attr("command_line").contains("simulate"));
    assert_eq!(attr("generator"), "ionode ablate simulate");
    assert!(!attr("git_commit").is_empty());
    let config: Value = serde_json::from_str(&attr("config_json")).unwrap();
    assert_eq!(config["seed"], 11);
    assert_eq!(config["species"].as_array().unwrap().len(), 7);
    assert_eq!(
        file.attr("membrane_pore_radius_m")
            .unwrap()
            .read_scalar::<f64>()
            .unwrap(),
        5e-10
    );
}

/// No temporary file of an atomic write is left in `dir`.
fn assert_no_tmp(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "left over in {}: {name}",
            dir.display()
        );
    }
}

#[test]
fn version_and_help() {
    let out = ablate(&["--version"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
    for args in [
        &["--help"][..],
        &["dspmde", "point", "--help"],
        &["simulate", "--help"],
        &["dspmde", "solve", "--help"],
    ] {
        let out = ablate(args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout(&out).contains("Examples:"), "{args:?}");
    }
    // Usage errors keep clap's code.
    assert_eq!(
        ablate(&["dspmde", "point", "--feed", "NaCl=5"])
            .status
            .code(),
        Some(2)
    );
}

/// Points that do not solve are listed in `failures/` and flagged in `status`, not dropped.
#[test]
fn simulate_records_failed_points() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fail.h5");
    // The linearised film has no solution at 1e-3 m/s (far beyond its pole).
    let out = ablate(&[
        "simulate",
        "--samples",
        "2",
        "--seed",
        "5",
        "--flux-count",
        "2",
        "--flux-min",
        "2e-6",
        "--flux-max",
        "1e-3",
        "--cp",
        "linearised",
        "--out",
        s(&path),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = ionode_study::h5::open(&path).unwrap();
    let status = file.dataset("status").unwrap().read_2d::<u8>().unwrap();
    assert_eq!(status, ndarray::arr2(&[[0, 1], [0, 1]]));
    let failures = file.group("failures").unwrap();
    assert_eq!(
        failures
            .dataset("sample")
            .unwrap()
            .read_raw::<u64>()
            .unwrap(),
        vec![0, 1]
    );
    assert_eq!(
        failures
            .dataset("flux_index")
            .unwrap()
            .read_raw::<u64>()
            .unwrap(),
        vec![1, 1]
    );
    let messages = failures
        .dataset("message")
        .unwrap()
        .read_raw::<hdf5::types::VarLenUnicode>()
        .unwrap();
    assert!(
        messages[0].as_str().contains("no physical solution"),
        "{}",
        messages[0]
    );
    assert_eq!(
        file.attr("n_failed").unwrap().read_scalar::<u64>().unwrap(),
        2
    );
}

/// An argument that is not UTF-8 is named by its position and flag, in one line.
#[test]
fn a_non_utf8_argument_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"lab\xffx");
    let out = Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(["slurm", "x.toml", "--shards", "2", "--account"])
        .arg(bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("argument 6 ('lab\u{FFFD}x', the value of --account) is not valid UTF-8"),
        "{err}"
    );
}
