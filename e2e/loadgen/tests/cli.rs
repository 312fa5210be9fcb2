//! The `loadgen` binary itself: what `just bench` runs. Building it here also means
//! `cargo test` (the one package selection `just test` and `just bench` share) leaves the
//! binary in `target/release`, so the benchmark never rebuilds the backend with other features.

use std::path::Path;
use std::process::Command;

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
}

#[test]
fn the_report_is_rendered_again_from_the_committed_results() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench/results.json");
    let out = tempfile_dir();
    let status = loadgen().arg("report").arg("--results").arg(&results).arg("--out").arg(&out).status().expect("run loadgen");
    assert!(status.success(), "loadgen report failed on {}", results.display());
    let markdown = std::fs::read_to_string(out.join("results.md")).expect("results.md written");
    assert!(markdown.contains("| scenario |"), "results.md has no targets table:\n{markdown}");
    let chart = std::fs::read_to_string(out.join("chart.svg")).expect("chart.svg written");
    assert!(chart.starts_with("<svg") || chart.contains("<svg"), "chart.svg is not an SVG");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_missing_results_file_is_a_clear_error() {
    let output = loadgen().args(["report", "--results", "/nonexistent/results.json"]).output().expect("run loadgen");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/results.json"), "the error does not name the file: {stderr}");
}

#[test]
fn a_soak_without_a_server_binary_is_a_clear_error() {
    // Its own folder: the report test removes the shared one when it ends.
    let work = std::env::temp_dir().join(format!("loadgen-soak-{}", std::process::id()));
    let output = loadgen().args(["soak", "--profile", "quick", "--confab-bin", "/nonexistent/confab", "--work-dir"]).arg(&work).output().expect("run loadgen");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/confab"), "the error does not name the binary: {stderr}");
    let _ = std::fs::remove_dir_all(&work);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgen-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
