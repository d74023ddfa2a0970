//! End-to-end tests of the `sieve` binary: the demo, the main job on real data, and errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn sieve() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sieve"))
}

/// The real data sets beside the repository, or `None` with a printed reason.
fn shared_data(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(name);
    if path.is_dir() {
        Some(path)
    } else {
        eprintln!("skipping: real data set {} not found", path.display());
        None
    }
}

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

fn read_report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json is written");
    serde_json::from_str(&text).expect("report.json is valid JSON")
}

fn metric(report: &Value, side: &str, name: &str) -> f64 {
    report[side][name]
        .as_f64()
        .unwrap_or_else(|| panic!("{side}.{name} missing in report: {}", report[side]))
}

#[test]
fn demo_runs_and_finds_defects() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let output = sieve().args(["--quiet", "demo", "--out"]).arg(&out).output().unwrap();
    assert!(
        output.status.success(),
        "sieve demo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("report.md"), "{stdout}");

    let report = read_report(&out.join("run"));
    // The demo's defects are dark spots on a bright texture; PatchCore on ImageNet features
    // separates them from defect-free images almost perfectly.
    assert!(metric(&report, "baseline", "image_auroc") > 0.9);
    assert!(metric(&report, "baseline", "pixel_auroc") > 0.95);
    for name in ["image_auroc", "pixel_auroc", "pixel_aupro"] {
        let drop = metric(&report, "baseline", name) - metric(&report, "filtered", name);
        assert!(drop <= 0.005, "{name} fell by {drop}");
    }
    assert!(out.join("run/model/filter.json").is_file());
    assert!(out.join("run/model/settings.json").is_file());
}

#[test]
fn run_on_tire_is_safe() {
    let Some(data) = shared_data("mvtec3d_tire") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = sieve()
        .args(["--quiet", "run", "--data"])
        .arg(&data)
        .arg("--prior")
        .arg(repo_file("priors/mvtec3d_tire.toml"))
        .arg("--out")
        .arg(dir.path())
        .args(["--min-cases", "150", "--max-cases", "300"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "sieve run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_report(dir.path());
    // A reference PatchCore on this backbone reached pixel AUROC 0.985 on this set.
    assert!(metric(&report, "baseline", "pixel_auroc") > 0.95);
    for name in ["image_auroc", "pixel_auroc", "pixel_aupro"] {
        let drop = metric(&report, "baseline", name) - metric(&report, "filtered", name);
        assert!(drop <= 0.005, "{name} fell by {drop}");
    }
    let safety = &report["safety"];
    let gt = safety["gt_candidates"].as_u64().unwrap();
    let suppressed = safety["gt_candidates_suppressed"].as_u64().unwrap();
    assert!(gt > 0);
    assert!(suppressed as f64 <= 0.05 * gt as f64, "{suppressed} of {gt} ground-truth candidates suppressed");
    assert!(safety["synthetic_recall_loss"]["candidates"].as_u64().unwrap() > 0);
}

#[test]
fn missing_data_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = sieve()
        .args(["--quiet", "run", "--data"])
        .arg(dir.path().join("nope"))
        .arg("--prior")
        .arg(repo_file("priors/demo.toml"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope") && stderr.contains("train/good"), "{stderr}");
}

#[test]
fn invalid_prior_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let prior = dir.path().join("bad.toml");
    std::fs::write(&prior, "features = [\"area\", \"size\"]\n").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("train/good")).unwrap();
    image::RgbImage::new(64, 64).save(data.join("train/good/000.png")).unwrap();
    let output = sieve()
        .args(["--quiet", "run", "--data"])
        .arg(&data)
        .arg("--prior")
        .arg(&prior)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("size") && stderr.contains("features"), "{stderr}");
}
