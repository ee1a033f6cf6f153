//! Helpers shared by the end-to-end tests: run the real `ablate` binary.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `ablate` with `args` (RUST_LOG cleared so logs never reach stderr unasked).
pub fn ablate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the ablate binary runs")
}

/// Bytes of a process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A study's run ids, in plan order.
pub fn plan_ids(study_dir: &std::path::Path) -> Vec<String> {
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study_dir.join("plan.json")).unwrap())
            .unwrap();
    plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The runs of a study whose folder holds `marker` (DONE, FAILED).
pub fn marked(study_dir: &std::path::Path, marker: &str) -> Vec<String> {
    plan_ids(study_dir)
        .into_iter()
        .filter(|id| study_dir.join("runs").join(id).join(marker).exists())
        .collect()
}
