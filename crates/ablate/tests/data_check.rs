//! End-to-end tests of `ablate data check`: the real binary on files in a temporary folder.

mod common;
use common::{ablate, text};
use std::path::Path;

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

const GOOD: &str = "\
source,membrane,family,temperature_K,synthetic,Jv_LMH,dP_bar,feed_Na+_mol_m3,feed_Cl-_mol_m3,feed_Mg^2+_mol_m3,feed_SO4^2-_mol_m3,permeate_Na+_mol_m3,rejection_Cl-,permeate_Mg^2+_mol_m3,rejection_SO4^2-,rejection_SO4^2-_sd
\"doi:10.1016/x, Table 2\",NF270,NaCl,298.15,false,36,5,50,50,0,0,20,0.6,,,
ionode-lab surrogate v1,NF270,NaCl+MgSO4,303.15,true,72,,50,50,10,10,25,0.5,1,0.95,0.01
ionode-lab surrogate v1,NF270,NaCl+MgSO4,303.15,true,108,,50,48,10,10,30,0.4,2,0.9,0.01
";

#[test]
fn a_good_file_is_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.csv", GOOD);
    let out = ablate(&["data", "check", &path]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    for expected in [
        "good.csv: valid, 3 rows (2 synthetic, 1 measured)",
        "sources           2: doi:10.1016/x, Table 2 (1 row), ionode-lab surrogate v1 (2 rows)",
        "membranes         NF270 (3 rows)",
        "families          NaCl (1 row), NaCl+MgSO4 (2 rows)",
        "temperature       298.15 to 303.15 K",
        "flux              1e-5 to 3e-5 m/s (36 to 108 LMH)",
        "pressure          5 bar in 1 row",
        "    Na+             50                      3 rows",
        "    Mg^2+           10                      2 rows",
        "    Cl-             48 to 50                3 rows",
        "uncertainties     rejection_SO4^2-_sd; permeate sd for SO4^2- (2 rows)",
        "electroneutrality largest imbalance |sum z*c| / sum |z|*c = 1.449 % (line 4)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }

    // Balancing: the summary says what changed.
    let out = ablate(&["data", "check", &path, "--balance-with", "Cl-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("electroneutrality Cl- feed balanced: changed in 1 of 3 rows, largest change +2 mol/m3 (line 4: 48 -> 50)"),
        "{stdout}"
    );
}

#[test]
fn a_bad_file_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace("dP_bar", "dP_bars")
        .replace("303.15,true,72", "25,true,72")
        .replace(",108,", ",-108,");
    let path = write(dir.path(), "bad.csv", &bad);
    let out = ablate(&["data", "check", &path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{path}, line 1, column 'dP_bars': unknown column; did you mean 'dP_bar'?"),
            format!("{path}, line 3, column 'temperature_K', value '25': temperature out of range; expected a temperature between 273.15 and 373.15 K (kelvin, not Celsius)"),
            format!("{path}, line 4, column 'Jv_LMH', value '-108': negative flux; expected a water flux > 0 and <= 3600 L/m2/h"),
            format!("error: {path}: 3 problems; nothing was loaded"),
        ]
    );

    // The electroneutrality tolerance comes from the command line.
    let out = ablate(&[
        "data",
        "check",
        &write(dir.path(), "good.csv", GOOD),
        "--en-tolerance",
        "0.01",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 4: feed not electroneutral: sum z*c = +2 eq/m3 is 1.449 % of sum |z|*c = 138 eq/m3; expected at most 1 %"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unreadable_files_are_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let out = ablate(&["data", "check", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: cannot read data file"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let latin1 = dir.path().join("latin1.csv");
    std::fs::write(&latin1, b"source,membrane\ns,25 \xb0C\n").unwrap();
    let out = ablate(&["data", "check", latin1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("latin1.csv', line 2: not UTF-8 text; expected a UTF-8 CSV file"),
        "{stderr}"
    );

    let empty = write(dir.path(), "empty.csv", "");
    let out = ablate(&["data", "check", &empty]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("empty.csv: empty file;"));
}

#[test]
fn the_rejection_basis_is_summarised_and_unconverted_rows_noted() {
    let dir = tempfile::tempdir().unwrap();
    let intrinsic = write(dir.path(), "good.csv", GOOD);
    let out = ablate(&["data", "check", &intrinsic]);
    assert!(text(&out.stdout).contains("rejection basis   intrinsic (every row)"));
    let observed = write(
        dir.path(),
        "observed.csv",
        "source,membrane,temperature_K,synthetic,Jv_m_s,rejection_basis,k_film_m_s,feed_Na+_mol_m3,feed_Cl-_mol_m3,rejection_Na+,rejection_Cl-\n\
         cell,NF270,293.15,false,2e-5,observed,2e-5,10,10,0.3,0.3\n\
         cell,NF270,293.15,false,3e-5,observed,,10,10,0.3,0.3\n\
         cell,NF270,293.15,false,4e-5,,,10,10,0.3,0.3\n",
    );
    let out = ablate(&["data", "check", &observed]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("rejection basis   1 intrinsic, 2 observed (1 with a film coefficient, converted by the film model)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "1 row of observed rejections without k_film_m_s (line 3) is used as if intrinsic"
        ),
        "{stdout}"
    );
}
