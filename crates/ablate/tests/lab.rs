//! End-to-end tests of `ablate lab`: the bundled campaigns regenerate byte for byte, the
//! output passes `ablate data check`, and bad designs get one clear error line.

mod common;
use common::{ablate, text};
use std::path::{Path, PathBuf};
use std::process::Output;

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/exp")
}

/// The regeneration commands are the ones in each design's header comment.
#[test]
fn bundled_campaigns_regenerate_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    for (name, seed) in [
        ("nf270_single_salts", "1"),
        ("nf270_mixtures", "2"),
        ("nf270_li_mg_brines", "3"),
    ] {
        let design = datasets().join(format!("{name}.toml"));
        let header = std::fs::read_to_string(&design).unwrap();
        assert!(
            header.contains(&format!("--seed {seed} --out datasets/exp/{name}.csv")),
            "{name}"
        );
        let out = dir.path().join(format!("{name}.csv"));
        let run = ablate(&[
            "lab",
            "--design",
            design.to_str().unwrap(),
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(run.status.success(), "{name}: {}", text(&run.stderr));
        let fresh = std::fs::read(&out).unwrap();
        let bundled = std::fs::read(datasets().join(format!("{name}.csv"))).unwrap();
        assert!(
            fresh == bundled,
            "{name}: regenerated file differs from the bundled one"
        );
        let check = ablate(&["data", "check", out.to_str().unwrap()]);
        assert!(check.status.success(), "{name}: {}", text(&check.stderr));
        let summary = text(&check.stdout);
        let rows = summary.lines().next().unwrap();
        assert!(rows.contains("synthetic, 0 measured"), "{rows}");
    }
}

#[test]
fn a_different_seed_changes_only_the_noise() {
    let dir = tempfile::tempdir().unwrap();
    let design = dir.path().join("d.toml");
    std::fs::write(
        &design,
        "name = \"t\"\nrepeats = 1\n[lab]\npores = { sigma_ln = 0.0 }\nelements = 2\n\
         [[family]]\nname = \"NaCl\"\nfeed = \"NaCl=1\"\nlevels = [20]\nflux_lmh = [10, 20]\n",
    )
    .unwrap();
    let run = |seed: &str| {
        let out = dir.path().join(format!("{seed}.csv"));
        let r = ablate(&[
            "lab",
            "--design",
            design.to_str().unwrap(),
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(r.status.success(), "{}", text(&r.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let (a, b) = (run("1"), run("2"));
    assert_ne!(a, b);
    // Same feeds, fluxes and pressures; different permeates.
    let table = |s: &str| -> Vec<Vec<String>> {
        ionode_train::measured::csv::read(s)
            .into_iter()
            .map(|r| r.unwrap().fields)
            .collect()
    };
    let (ta, tb) = (table(&a), table(&b));
    let column = |t: &[Vec<String>], name: &str| -> Vec<String> {
        let k = t[0].iter().position(|c| c == name).unwrap();
        t[1..].iter().map(|row| row[k].clone()).collect()
    };
    assert_eq!(ta.len(), 3);
    for name in ["feed_Na+_mol_m3", "Jv_m_s", "dP_bar"] {
        assert_eq!(column(&ta, name), column(&tb, name), "{name}");
    }
    assert_ne!(
        column(&ta, "permeate_Na+_mol_m3"),
        column(&tb, "permeate_Na+_mol_m3")
    );
}

#[test]
fn bad_designs_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 5] = [
        ("name = \"t\"\nrepets = 2\n[[family]]\nname = \"a\"\nfeed = \"NaCl=1\"\nlevels = [1]\nflux_lmh = [5]\n", "unknown field `repets`"),
        ("name = \"t\"\n[[family]]\nname = \"a\"\nfeed = \"NaCl=1\"\nlevels = [1]\n", "give exactly one of flux_lmh or pressure_bar"),
        ("name = \"t\"\n[[family]]\nname = \"a\"\nfeed = \"XyCl=1\"\nlevels = [1]\nflux_lmh = [5]\n", "family 'a'"),
        ("name = \"t\"\n[lab]\nnoise_rel = 0.9\n[[family]]\nname = \"a\"\nfeed = \"NaCl=1\"\nlevels = [1]\nflux_lmh = [5]\n", "noise_rel = 0.9"),
        ("name = \"t\"\n[[family]]\nname = \"a\"\nfeed = \"NaCl=1\"\nlevels = [-1]\nflux_lmh = [5]\n", "level -1 must be a number > 0"),
    ];
    for (k, (design, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{k}.toml"));
        std::fs::write(&path, design).unwrap();
        let out = dir.path().join("out.csv");
        let r = ablate(&[
            "lab",
            "--design",
            path.to_str().unwrap(),
            "--seed",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(2), "case {k}: {}", text(&r.stderr));
        let err = text(&r.stderr);
        assert_eq!(err.lines().count(), 1, "case {k}: {err}");
        assert!(
            err.contains(&format!("bad{k}.toml")) && err.contains(expected),
            "case {k}: {err}"
        );
        assert!(!out.exists(), "case {k}: nothing is written");
    }
}

/// The same campaign as Parquet: `data check` reads it and reports exactly what it reports
/// for the CSV (same rows, ranges and uncertainties).
#[test]
fn campaigns_write_and_check_as_parquet_too() {
    let dir = tempfile::tempdir().unwrap();
    let design = datasets().join("nf270_li_mg_brines.toml");
    let csv = datasets().join("nf270_li_mg_brines.csv");
    let parquet = dir.path().join("brines.parquet");
    let run = ablate(&[
        "lab",
        "--design",
        design.to_str().unwrap(),
        "--seed",
        "3",
        "--out",
        parquet.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let from_csv = ablate(&["data", "check", csv.to_str().unwrap()]);
    let from_parquet = ablate(&["data", "check", parquet.to_str().unwrap()]);
    assert!(
        from_parquet.status.success(),
        "{}",
        text(&from_parquet.stderr)
    );
    let body = |o: &Output| {
        text(&o.stdout)
            .lines()
            .skip(1)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&from_csv), body(&from_parquet));
    assert!(text(&from_parquet.stdout)
        .contains("brines.parquet: valid, 54 rows (54 synthetic, 0 measured)"));
    // A file that is not Parquet is one clear error.
    let fake = dir.path().join("fake.parquet");
    std::fs::write(&fake, "source,membrane\n").unwrap();
    let bad = ablate(&["data", "check", fake.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("is not a readable Parquet file"),
        "{}",
        text(&bad.stderr)
    );
}
