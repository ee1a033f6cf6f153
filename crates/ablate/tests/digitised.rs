//! `ablate data digitised`: the bundled NF270 measurements are regenerated from the raw
//! digitised points byte for byte, pass `ablate data check`, and a bad spec is located.

mod common;
use common::{ablate, text};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_bundled_nf270_file_is_regenerated_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nf270.csv");
    let spec = root().join("datasets/measured/raw/nf270_fdl2021.toml");
    let r = ablate(&[
        "data",
        "digitised",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains(
            "106 points -> 28 measurements of 4 series (134 of 140 ion outcomes measured"
        ),
        "{}",
        text(&r.stderr)
    );
    let committed = std::fs::read(root().join("datasets/measured/nf270_fdl2021.csv")).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == committed,
        "datasets/measured/nf270_fdl2021.csv differs from its conversion; rerun `ablate data digitised` and commit"
    );
    let r = ablate(&["data", "check", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let summary = text(&r.stdout);
    assert!(
        summary.contains("valid, 28 rows (0 synthetic, 28 measured)"),
        "{summary}"
    );
    assert!(
        summary.contains("134 of 140 measured; not measured (empty, left out of every loss and metric): Na+ (2 rows), NH4+ (4 rows)"),
        "{summary}"
    );
}

#[test]
fn a_bad_spec_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let raw = root().join("datasets/measured/raw/nf270_fdl2021_digitised.csv");
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        format!(
            "points = \"{}\"\nsource = \"s\"\nmembrane = \"NF270\"\ntemperature_K = 20\n\
             quantity = \"transmission\"\n[[series]]\nname = \"NaCl\"\nfeed = \"NaCl=10,NaNO3=0.2\"\n\
             species = {{ NaCl = [\"Na+\", \"Fe3+\"] }}\n",
            raw.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out.csv");
    let r = ablate(&[
        "data",
        "digitised",
        "--spec",
        spec.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    let s = spec.display();
    assert_eq!(
        text(&r.stderr),
        format!("{s}:5:1: quantity: unknown variant `transmission`, expected `reciprocal_transmission` or `rejection`\nerror: spec '{s}': 1 problem\n")
    );
    assert!(!out.exists());
}
