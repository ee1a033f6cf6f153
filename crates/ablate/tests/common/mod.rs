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
