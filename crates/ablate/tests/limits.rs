//! Every count a user gives is bounded before anything is allocated for it: a huge number
//! is one `error:` line naming the flag or key, the value and the bound, exit code 2, and
//! nothing is written (no allocation failure, no abort).

mod common;
use common::{ablate, text};
use std::path::Path;

fn smoke() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/smoke.toml")
        .display()
        .to_string()
}

#[test]
fn huge_counts_are_refused_with_their_bound() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.h5");
    let out = out.to_str().unwrap();
    let results = dir.path().join("results");
    let results = results.to_str().unwrap();
    let design = dir.path().join("design.toml");
    std::fs::write(
        &design,
        "name = \"d\"\nmembrane = \"nf270\"\nrepeats = 4000000000\n\
         [[family]]\nname = \"NaCl\"\nfeed = \"NaCl=1\"\nlevels = [5]\nflux_lmh = [5]\n",
    )
    .unwrap();
    let lab_out = dir.path().join("lab.csv");
    let smoke = smoke();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "simulate",
                "--samples",
                "1000000000000",
                "--seed",
                "1",
                "--out",
                out,
            ],
            "invalid samples = 1000000000000: a count in 1..=10000000",
        ),
        (
            vec![
                "simulate",
                "--samples",
                "5000000",
                "--seed",
                "1",
                "--out",
                out,
            ],
            "invalid samples x fluxes = 5000000 x 16: at most 20000000 points",
        ),
        (
            vec![
                "simulate",
                "--samples",
                "10",
                "--flux-count",
                "100000000",
                "--seed",
                "1",
                "--out",
                out,
            ],
            "invalid flux count = 100000000: a count in 1..=10000",
        ),
        (
            vec![
                "simulate",
                "--samples",
                "10",
                "--seed",
                "1",
                "--threads",
                "100000000",
                "--out",
                out,
            ],
            "--threads 100000000: expected 1..=1024 threads",
        ),
        (
            vec!["run", &smoke, "--jobs", "100000000", "--results", results],
            "--jobs 100000000: expected at most 1024",
        ),
        (
            vec![
                "run",
                &smoke,
                "--shard",
                "0/1000000000",
                "--results",
                results,
            ],
            "--shard '0/1000000000': expected I/N with 0 <= I < N <= 100000",
        ),
        (
            vec![
                "slurm",
                &smoke,
                "--shards",
                "1000000000",
                "--results",
                results,
            ],
            "--shards 1000000000: expected 1..=100000",
        ),
        (
            vec![
                "slurm",
                &smoke,
                "--shards",
                "2",
                "--cpus",
                "100000",
                "--results",
                results,
            ],
            "--cpus 100000: expected 1..=1024",
        ),
        (
            vec![
                "lab",
                "--design",
                design.to_str().unwrap(),
                "--seed",
                "1",
                "--out",
                lab_out.to_str().unwrap(),
            ],
            "repeats = 4000000000: expected 1..=1000",
        ),
    ];
    for (args, expected) in cases {
        let r = ablate(&args);
        let err = text(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(!Path::new(out).exists());
    assert!(!lab_out.exists());
    assert!(!Path::new(results).exists(), "nothing is planned");
}
