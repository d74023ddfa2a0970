//! End-to-end tests of the report, `sieve eval` and `sieve predict` on one demo run: figures
//! and report.html (opened in headless Chromium when it is installed), eval and predict
//! agreeing image by image, and clear errors for bad images and damaged models.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn sieve() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sieve"))
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The demo, run once for every test of this binary: `<dir>/data` and `<dir>/run`.
fn demo() -> &'static Path {
    static DEMO: OnceLock<tempfile::TempDir> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let output = sieve()
            .args(["--quiet", "demo", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        check(&output, "sieve demo");
        dir
    })
    .path()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Copies the demo's model folder so a test can change it.
fn copy_model(to: &Path) -> PathBuf {
    let from = demo().join("run/model");
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_path_buf()
}

#[test]
fn run_report_lists_existing_figures() {
    let run = demo().join("run");
    let report = read_json(&run.join("report.json"));
    let figures = &report["figures"];
    let test_images = report["test_images"].as_u64().unwrap();
    assert_eq!(figures["test_images"].as_u64(), Some(test_images));
    assert_eq!(
        report["images"].as_array().unwrap().len() as u64,
        test_images
    );

    // The demo has both classes, so all five charts are drawn.
    let charts: Vec<&str> = figures["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        charts,
        [
            "figures/pixel-scores.png",
            "figures/image-scores.png",
            "figures/roc-image.png",
            "figures/roc-pixel.png",
            "figures/pro.png"
        ]
    );
    let comparisons = figures["comparisons"].as_array().unwrap();
    assert_eq!(comparisons.len() as u64, test_images.min(40));
    for path in charts
        .iter()
        .copied()
        .chain(comparisons.iter().map(|c| c["path"].as_str().unwrap()))
    {
        let image = image::open(run.join(path))
            .unwrap_or_else(|e| panic!("figure {path} does not open: {e}"));
        assert!(image.width() >= 200 && image.height() >= 200, "{path}");
    }
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert_eq!(
        html.matches("<img ").count(),
        charts.len() + comparisons.len()
    );
}

/// Returns the first Chromium found on PATH, or `None` with a printed reason.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
        });
        if found.is_some() {
            return found;
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipping: no chromium on PATH (Debian: apt-get install chromium)"
    );
    None
}

fn headless(browser: &Path) -> Command {
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
        "--virtual-time-budget=20000",
    ]);
    command
}

#[test]
fn report_html_loads_in_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let run = demo().join("run");
    let page = run.join("report.html").canonicalize().unwrap();
    let url = format!("file://{}", page.display());

    let output = headless(&browser)
        .arg("--dump-dom")
        .arg(format!("{url}#selfcheck"))
        .output()
        .unwrap();
    check(&output, "chromium --dump-dom");
    let dom = String::from_utf8_lossy(&output.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    let images = html.matches("<img ").count();
    assert!(images > 5, "{images} images in report.html");
    let expected = format!("loaded {images} of {images} images");
    assert!(
        dom.contains(&expected),
        "self-check: {}",
        dom.split("id=\"selfcheck\">")
            .nth(1)
            .unwrap_or("missing")
            .chars()
            .take(400)
            .collect::<String>()
    );

    // The metrics table shows report.json's numbers, rounded to four decimals.
    let report = read_json(&run.join("report.json"));
    for side in ["baseline", "filtered"] {
        for key in [
            "image_auroc",
            "pixel_auroc",
            "pixel_aupro",
            "image_f1",
            "pixel_f1",
        ] {
            let value = report[side][key].as_f64().unwrap();
            let cell = format!("id=\"{side}-{key}\">{value:.4}<");
            assert!(dom.contains(&cell), "{cell} not in the rendered table");
        }
    }

    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-report.png");
    let _ = std::fs::remove_file(&shot);
    let output = headless(&browser)
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,1600")
        .arg(&url)
        .output()
        .unwrap();
    check(&output, "chromium --screenshot");
    let screenshot = image::open(&shot).unwrap();
    assert_eq!((screenshot.width(), screenshot.height()), (1280, 1600));
    let _ = writeln!(std::io::stderr(), "screenshot: {}", shot.display());
}

#[test]
fn predict_agrees_with_eval() {
    let demo = demo();
    let dir = tempfile::tempdir().unwrap();
    let model = demo.join("run/model");
    let eval_out = dir.path().join("eval");
    let output = sieve()
        .args(["--quiet", "eval", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(demo.join("data"))
        .arg("--out")
        .arg(&eval_out)
        .args(["--figures", "3"])
        .output()
        .unwrap();
    check(&output, "sieve eval");
    let eval = read_json(&eval_out.join("report.json"));
    let run = read_json(&demo.join("run/report.json"));
    // The loaded model scores exactly as the fitted one did.
    for side in ["baseline", "filtered"] {
        for key in ["image_auroc", "pixel_auroc", "pixel_aupro"] {
            assert_eq!(eval[side][key], run[side][key], "{side}.{key}");
        }
    }
    assert_eq!(eval["figures"]["comparisons"].as_array().unwrap().len(), 3);
    assert!(eval_out.join("report.html").is_file());

    let test_dir = demo.join("data/test");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&test_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    let predict_out = dir.path().join("predict");
    let output = sieve()
        .args(["--quiet", "predict", "--json", "--model"])
        .arg(&model)
        .args(&folders)
        .arg("--out")
        .arg(&predict_out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let predictions: BTreeMap<String, Value> = stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("one JSON object per line");
            let path = PathBuf::from(value["path"].as_str().unwrap());
            let name = format!(
                "{}/{}",
                path.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy(),
                path.file_name().unwrap().to_string_lossy()
            );
            (name, value)
        })
        .collect();

    let rows = eval["images"].as_array().unwrap();
    assert_eq!(predictions.len(), rows.len());
    let mut defective = 0;
    for row in rows {
        let name = row["image"].as_str().unwrap();
        let p = &predictions[name];
        assert_eq!(p["defective"], row["filtered_defective"], "{name}");
        assert_eq!(p["filtered_score"], row["filtered_score"], "{name}");
        assert_eq!(p["baseline_score"], row["baseline_score"], "{name}");
        defective += usize::from(p["defective"] == true);

        let mask = image::open(p["mask"].as_str().unwrap()).unwrap();
        let source = image::open(test_dir.join(name)).unwrap();
        assert_eq!(mask.width(), source.width());
        assert_eq!(mask.height(), source.height());
    }
    assert!(defective > 0, "the demo has defects the model finds");
    assert_eq!(output.status.code(), Some(1), "exit code with defects");
}

#[test]
fn predict_reports_unreadable_image_and_goes_on() {
    let demo = demo();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let good = std::fs::read_dir(demo.join("data/test/good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let output = sieve()
        .args(["--quiet", "predict", "--json", "--model"])
        .arg(demo.join("run/model"))
        .arg(&broken)
        .arg(&good)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.png"), "{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["error"].as_str().unwrap().contains("broken.png"));
    assert!(lines[1]["filtered_score"].is_number(), "{}", lines[1]);
}

#[test]
fn damaged_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_model(&dir.path().join("model"));
    let mut filter = std::fs::read(model.join("filter.json")).unwrap();
    filter.push(b'\n');
    std::fs::write(model.join("filter.json"), filter).unwrap();
    let image = std::fs::read_dir(demo().join("data/test/good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let output = sieve()
        .args(["--quiet", "predict", "--model"])
        .arg(&model)
        .arg(&image)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("filter.json") && stderr.contains("damaged"),
        "{stderr}"
    );
}

#[test]
fn older_model_format_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_model(&dir.path().join("model"));
    let mut settings = read_json(&model.join("settings.json"));
    settings["format_version"] = 1.into();
    std::fs::write(model.join("settings.json"), settings.to_string()).unwrap();
    let output = sieve()
        .args(["--quiet", "eval", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(demo().join("data"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("format version 1") && stderr.contains("sieve run"),
        "{stderr}"
    );
}
