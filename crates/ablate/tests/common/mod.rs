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

/// Debian's headless Chromium (or another Chromium on the path), if installed;
/// `scripts/setup` installs it.
pub fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Chromium's flags for a headless page load: no GPU, sandbox, network or updates, and a
/// virtual-time budget so the page's scripts finish before the DOM is read.
pub const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
];

/// Opens `page` at `#selftest` in headless Chromium (profile in `profile`) and returns the
/// JSON the page's self-test wrote into its `<pre id="selftest">`.
pub fn page_selftest(
    chromium: &str,
    page: &std::path::Path,
    profile: &std::path::Path,
) -> serde_json::Value {
    page_selftest_with(chromium, page, "", profile)
}

/// [`page_selftest`] with a query (`?rows=25`) after the page's address.
pub fn page_selftest_with(
    chromium: &str,
    page: &std::path::Path,
    query: &str,
    profile: &std::path::Path,
) -> serde_json::Value {
    let out = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}{query}#selftest", page.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("chromium runs");
    let dom = text(&out.stdout);
    let result = dom
        .split("<pre id=\"selftest\" hidden=\"\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no self-test result in the page: {}", text(&out.stderr)));
    serde_json::from_str(result).unwrap_or_else(|e| panic!("{e}: {result}"))
}
