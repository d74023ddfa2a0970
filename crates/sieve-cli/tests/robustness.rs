//! The `sieve` binary on bad input and interruptions: a clear error that names the file and the
//! fix, exit status 2, and no output left half written.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn sieve() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sieve"))
}

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

/// Runs `command` and returns its exit code and standard error.
fn run(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_names(message: &str, words: &[&str]) {
    for word in words {
        assert!(message.contains(word), "{word:?} missing in: {message}");
    }
}

/// Writes a seeded 64x64 texture: a smooth brushed pattern plus hash noise, different per `seed`.
fn texture(seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(64, 64, |x, y| {
        let mut h =
            x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663) ^ seed.wrapping_mul(83_492_791);
        h ^= h >> 13;
        h = h.wrapping_mul(0x5bd1_e995);
        h ^= h >> 15;
        let noise = (h % 9) as u8;
        let stripe = ((x + 2 * y + seed) % 7) as u8 * 3;
        let v = 140 + stripe + noise;
        image::Rgb([v, v, v.saturating_sub(6)])
    })
}

/// Writes a tiny data set: six training images and two defect-free test images, so the test
/// split has one class only.
fn tiny_set(root: &Path) {
    let train = root.join("train/good");
    let test = root.join("test/good");
    std::fs::create_dir_all(&train).unwrap();
    std::fs::create_dir_all(&test).unwrap();
    for i in 0..6 {
        texture(i).save(train.join(format!("{i:03}.png"))).unwrap();
    }
    for i in 0..2 {
        texture(100 + i)
            .save(test.join(format!("{i:03}.png")))
            .unwrap();
    }
}

/// Arguments of a quick `sieve run` on the tiny set.
fn tiny_run(data: &Path, out: &Path, cases: usize) -> Command {
    tiny_run_with_prior(data, out, cases, &repo_file("priors/demo.toml"))
}

fn tiny_run_with_prior(data: &Path, out: &Path, cases: usize, prior: &Path) -> Command {
    let mut command = sieve();
    command
        .arg("run")
        .arg("--data")
        .arg(data)
        .arg("--prior")
        .arg(prior)
        .arg("--out")
        .arg(out)
        .args(["--input-size", "64x64", "--coreset-ratio", "0.5"])
        .args(["--min-cases", &cases.to_string()])
        .args(["--max-cases", &cases.to_string()]);
    command
}

/// A finished run on the tiny set, made once for the tests that need a good previous output.
struct GoodRun {
    _dir: tempfile::TempDir,
    data: PathBuf,
    out: PathBuf,
}

fn good_run() -> &'static GoodRun {
    static RUN: OnceLock<GoodRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        tiny_set(&data);
        let out = dir.path().join("out");
        let (code, stderr) = run(tiny_run(&data, &out, 20).arg("--quiet"));
        assert_eq!(code, Some(0), "tiny run failed: {stderr}");
        GoodRun {
            _dir: dir,
            data,
            out,
        }
    })
}

/// Lists every file under `dir` with its bytes, paths relative to `dir`, sorted; nothing when
/// `dir` does not exist.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    if !dir.exists() {
        stack.clear();
    }
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Starts `command` with standard error piped, waits for a status line that starts with
/// `line_start`, sends `signal`, and returns the exit code and the whole standard error.
fn interrupt_at(command: &mut Command, line_start: &str, signal: i32) -> (Option<i32>, String) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("sieve ended ({status}) before printing {line_start:?}: {seen}");
        }
        seen.push_str(&line);
        if line.starts_with(line_start) {
            break;
        }
    }
    // SAFETY: kill only sends a signal to the child process this test started.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "failed to signal sieve");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    (status.code(), seen)
}

#[test]
fn one_class_test_split_reports_null_with_reason() {
    let run = good_run();
    let text = std::fs::read_to_string(run.out.join("report.json")).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["test_defect_images"], 0);
    for side in ["baseline", "filtered"] {
        for name in ["image_auroc", "pixel_auroc", "pixel_aupro"] {
            assert!(report[side][name].is_null(), "{side}.{name} is not null");
            let reason = report[side]["undefined"][name].as_str().unwrap_or_default();
            assert!(reason.contains("undefined"), "{side}.{name}: {reason:?}");
        }
    }
    let reason = report["baseline"]["undefined"]["image_auroc"]
        .as_str()
        .unwrap();
    assert!(reason.contains("no positive"), "{reason}");

    let markdown = std::fs::read_to_string(run.out.join("report.md")).unwrap();
    assert!(
        markdown.contains("| image AUROC | n/a | n/a |"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("`image_auroc` is undefined: {reason}")),
        "{markdown}"
    );
}

#[test]
fn interrupted_run_keeps_previous_outputs() {
    let good = good_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    copy_dir(&good.out, &out);
    let before = snapshot(&out);
    assert!(before.iter().any(|(name, _)| name == "model/filter.json"));
    assert!(before.iter().any(|(name, _)| name == "report.json"));

    // So many cases that painting cannot finish before the signal arrives.
    let (code, stderr) = interrupt_at(
        tiny_run(&good.data, &out, 100_000).args(["--seed", "1"]),
        "thresholds:",
        libc::SIGINT,
    );
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(
        snapshot(&out),
        before,
        "outputs changed after the interruption"
    );
}

#[test]
fn interrupted_first_run_leaves_no_output() {
    let good = good_run();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");

    let (code, stderr) = interrupt_at(
        &mut tiny_run(&good.data, &out, 100_000),
        "sieve run:",
        libc::SIGTERM,
    );
    assert_eq!(code, Some(130), "{stderr}");
    let left: Vec<_> = snapshot(&out).into_iter().map(|(name, _)| name).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn unwritable_out_is_named_before_work() {
    let good = good_run();
    let dir = tempfile::tempdir().unwrap();

    // An output path below a regular file can never be created, also for root.
    let file = dir.path().join("taken");
    std::fs::write(&file, b"").unwrap();
    let (code, stderr) = run(tiny_run(&good.data, &file.join("out"), 20).arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(&stderr, &["taken/out", "choose another --out"]);

    // A read-only folder: root may still write there, and then the case cannot be shown.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let mut permissions = std::fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&locked, permissions).unwrap();
    if std::fs::write(locked.join("probe"), b"").is_ok() {
        let _ = writeln!(
            std::io::stderr(),
            "skipping the read-only folder case: this user may write into read-only folders"
        );
        return;
    }
    let (code, stderr) = run(tiny_run(&good.data, &locked, 20).arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(&stderr, &["locked", "not writable", "choose another --out"]);
}

#[test]
fn empty_train_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("train/good")).unwrap();
    std::fs::write(data.join("train/good/.DS_Store"), b"").unwrap();
    let (code, stderr) = run(tiny_run(&data, &dir.path().join("out"), 20).arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(&stderr, &["train/good", "has no images"]);
    assert!(!dir.path().join("out").exists());
}

#[test]
fn damaged_test_image_is_named_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_set(&data);
    let bytes = std::fs::read(data.join("test/good/001.png")).unwrap();
    std::fs::write(data.join("test/good/001.png"), &bytes[..20]).unwrap();
    let (code, stderr) = run(tiny_run(&data, &dir.path().join("out"), 20).arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(&stderr, &["test/good/001.png", "export it again"]);
    assert!(!dir.path().join("out").exists());
}

#[test]
fn prior_shape_larger_than_image_names_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_set(&data);
    let prior = dir.path().join("big.toml");
    std::fs::write(
        &prior,
        "features = [\"area\"]\n[[defect]]\nname = \"stain\"\nshape = \"circle\"\nsize = [10, 80]\ncontrast = 0.2\n",
    )
    .unwrap();
    let mut command = tiny_run_with_prior(&data, &dir.path().join("out"), 20, &prior);
    let (code, stderr) = run(command.arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(
        &stderr,
        &[
            "defect[0].size",
            "64x64",
            "000.png",
            "lower its upper bound",
        ],
    );
}

/// Writes `count` grey images of `side` x `side` pixels and their `.npy` maps: a smooth low
/// background with one broad bump, the detector's false alarm, in every map.
fn map_set(images: &Path, maps: &Path, count: usize, side: usize, image_side: u32) {
    std::fs::create_dir_all(images).unwrap();
    std::fs::create_dir_all(maps).unwrap();
    for i in 0..count {
        texture(i as u32)
            .save(images.join(format!("{i:03}.png")))
            .unwrap();
        if image_side != 64 {
            image::imageops::resize(
                &texture(i as u32),
                image_side,
                image_side,
                image::imageops::FilterType::Nearest,
            )
            .save(images.join(format!("{i:03}.png")))
            .unwrap();
        }
        let mut data = vec![0.0f32; side * side];
        for (k, v) in data.iter_mut().enumerate() {
            let (x, y) = ((k % side) as f32, (k / side) as f32);
            let d2 = (x - 20.0 - i as f32).powi(2) + (y - 30.0).powi(2);
            *v = 0.1 + 0.01 * (x * 0.3).sin() + 0.5 * (-d2 / 50.0).exp();
        }
        let map = sieve_core::AnomalyMap::from_vec(side, side, data);
        sieve_core::mapio::write_map(
            maps.join(format!("{i:03}.npy")),
            &map,
            sieve_core::mapio::MapFormat::Npy,
        )
        .unwrap();
    }
}

fn filter_command(root: &Path) -> Command {
    let mut command = sieve();
    command
        .arg("filter")
        .arg("--good-maps")
        .arg(root.join("good_maps"))
        .arg("--good-images")
        .arg(root.join("good_images"))
        .arg("--maps")
        .arg(root.join("maps"))
        .arg("--images")
        .arg(root.join("images"))
        .arg("--prior")
        .arg(repo_file("priors/demo.toml"))
        .arg("--out")
        .arg(root.join("out"))
        .args(["--min-cases", "20", "--max-cases", "40"]);
    command
}

#[test]
fn too_few_false_alarms_keep_every_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Three defect-free maps with one bump each give three false alarms, fewer than the five
    // cross-validation folds need.
    map_set(
        &root.join("good_images"),
        &root.join("good_maps"),
        3,
        64,
        64,
    );
    map_set(&root.join("images"), &root.join("maps"), 2, 64, 64);

    let output = filter_command(root).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sieve filter failed: {stderr}");
    assert_names(
        &stderr,
        &["warning: the filter is inactive", "too few samples"],
    );
    assert_names(
        &stdout,
        &["0 of 2 candidates suppressed", "the filter is inactive"],
    );

    let out = root.join("out");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("candidates.json")).unwrap())
            .unwrap();
    assert_eq!(report["training"]["false_alarms_mined"], 3);
    let reason = report["training"]["inactive_reason"].as_str().unwrap();
    assert_names(reason, &["3 false alarms", "every candidate is kept"]);
    for i in 0..2 {
        let name = format!("{i:03}.npy");
        let (before, _) = sieve_core::mapio::read_map(root.join("maps").join(&name)).unwrap();
        let (after, _) = sieve_core::mapio::read_map(out.join("maps").join(&name)).unwrap();
        assert_eq!(
            after, before,
            "{name} changed although the filter is inactive"
        );
    }
}

#[test]
fn map_of_other_size_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    map_set(
        &root.join("good_images"),
        &root.join("good_maps"),
        3,
        64,
        64,
    );
    // Maps made at the detector's input size instead of the image's.
    map_set(&root.join("images"), &root.join("maps"), 2, 64, 80);

    let (code, stderr) = run(filter_command(root).arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(
        &stderr,
        &[
            "maps/000.npy",
            "64x64",
            "images/000.png",
            "80x80",
            "original size",
        ],
    );
    let left: Vec<_> = snapshot(&root.join("out").join("maps"))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(left.is_empty(), "maps written despite the error: {left:?}");
}

#[test]
fn duplicate_map_stems_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    map_set(
        &root.join("good_images"),
        &root.join("good_maps"),
        3,
        64,
        64,
    );
    map_set(&root.join("images"), &root.join("maps"), 2, 64, 64);
    let (map, _) = sieve_core::mapio::read_map(root.join("maps/001.npy")).unwrap();
    sieve_core::mapio::write_map(
        root.join("maps/001.tiff"),
        &map,
        sieve_core::mapio::MapFormat::Tiff,
    )
    .unwrap();

    let (code, stderr) = run(filter_command(root).arg("--quiet"));
    assert_eq!(code, Some(2), "{stderr}");
    assert_names(&stderr, &["001.npy", "001.tiff", "same file stem"]);
}
