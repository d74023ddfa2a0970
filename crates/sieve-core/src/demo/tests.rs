//! Tests of the generated files: determinism, layout, masks, patterns and folder safety.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::dataset::Dataset;
use crate::imageio::{load_mask, load_rgb, luma};

fn small_params(seed: u64) -> DemoParams {
    DemoParams {
        seed,
        train_count: 8,
        test_good: 4,
        test_defect: 6,
        ..DemoParams::default()
    }
}

/// Reads every file under `root`, keyed by path relative to it, with its bytes.
fn read_tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(root).unwrap().to_owned(), bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Reads an image as `(width, height, luma of every pixel row-major)`.
fn luma_grid(path: &Path) -> (usize, usize, Vec<f32>) {
    let image = load_rgb(path).unwrap();
    let values = image.pixels().map(|p| luma(p.0)).collect();
    (image.width() as usize, image.height() as usize, values)
}

#[test]
fn same_seed_gives_identical_files() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(first.path(), &small_params(11)).unwrap();
    generate(second.path(), &small_params(11)).unwrap();

    let (a, b) = (read_tree(first.path()), read_tree(second.path()));
    assert_eq!(a.len(), 1 + 8 + 4 + 6 + 6, "marker, images and masks");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{} differs between runs", path.display());
    }
}

#[test]
fn other_seed_gives_other_images() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(first.path(), &small_params(11)).unwrap();
    generate(second.path(), &small_params(12)).unwrap();

    let (a, b) = (read_tree(first.path()), read_tree(second.path()));
    let same = a
        .iter()
        .filter(|(path, bytes)| path.extension().is_some_and(|e| e == "png") && b[*path] == **bytes)
        .count();
    assert_eq!(same, 0, "images shared by seeds 11 and 12");
}

#[test]
fn images_of_one_set_differ() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &small_params(5)).unwrap();
    let (_, _, first) = luma_grid(&dir.path().join("train/good/000.png"));
    let (_, _, second) = luma_grid(&dir.path().join("train/good/001.png"));
    let mean_abs: f32 = first
        .iter()
        .zip(&second)
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / first.len() as f32;
    assert!(mean_abs > 0.01, "mean absolute difference {mean_abs}");
}

#[test]
fn default_set_reads_back_as_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), &DemoParams::default()).unwrap();
    let dataset = Dataset::open(dir.path()).unwrap();

    assert_eq!(dataset.train.len(), 60);
    assert_eq!(dataset.test.len(), 40);
    let count = |name: Option<&str>| {
        dataset
            .test
            .iter()
            .filter(|s| s.defect_type.as_deref() == name)
            .count()
    };
    assert_eq!(count(None), 20);
    assert_eq!(count(Some("scratch")), 10);
    assert_eq!(count(Some("pit")), 10);
    assert!(dataset
        .test
        .iter()
        .all(|s| s.is_defective() == s.mask.is_some()));

    let image = load_rgb(&dataset.train[0]).unwrap();
    assert_eq!((image.width(), image.height()), (192, 160));

    let patterns = |images: Vec<&DemoImage>| images.iter().filter(|i| i.pattern.is_some()).count();
    assert_eq!(patterns(summary.train().collect()), 7);
    assert_eq!(patterns(summary.test_good().collect()), 6);
    assert_eq!(
        patterns(summary.test_defective(DefectKind::Scratch).collect()),
        3
    );
    assert_eq!(
        patterns(summary.test_defective(DefectKind::Pit).collect()),
        3
    );
    let stamps = summary
        .images
        .iter()
        .filter(|i| {
            i.pattern
                .as_ref()
                .is_some_and(|p| p.kind == PatternKind::Stamp)
        })
        .count();
    assert!(
        (7..=12).contains(&stamps),
        "{stamps} stamps among 19 patterns"
    );
}

#[test]
fn masks_cover_dark_defects() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), &DemoParams::default()).unwrap();

    for image in summary.images.iter().filter(|i| i.defect.is_some()) {
        let defect = image.defect.as_ref().unwrap();
        let name = image.path.display();
        let mask = load_mask(&dir.path().join(image.mask.as_ref().unwrap())).unwrap();
        assert_eq!(mask.count(), defect.area, "{name}: mask area");
        assert!(defect.area >= 8, "{name}: mask of {} pixels", defect.area);
        // A 40-pixel chord plus two round caps of 1.5 px and one pixel of rounding give 44.
        let longest_side = defect.bbox.width.max(defect.bbox.height);
        assert!(longest_side <= 44, "{name}: mask spans {longest_side} px");

        // Mean luma inside the mask against a 4-pixel band around its bounding box.
        let (width, height, values) = luma_grid(&dir.path().join(&image.path));
        let (mut inside, mut around) = ((0.0, 0), (0.0, 0));
        let b = defect.bbox;
        for y in b.y.saturating_sub(4)..(b.y + b.height + 4).min(height) {
            for x in b.x.saturating_sub(4)..(b.x + b.width + 4).min(width) {
                let in_box =
                    (b.x..b.x + b.width).contains(&x) && (b.y..b.y + b.height).contains(&y);
                if mask.get(x, y) {
                    inside = (inside.0 + values[y * width + x], inside.1 + 1);
                } else if !in_box {
                    around = (around.0 + values[y * width + x], around.1 + 1);
                }
            }
        }
        let inside_mean = inside.0 / inside.1 as f32;
        let around_mean = around.0 / around.1 as f32;
        assert!(
            inside_mean < around_mean - 0.08,
            "{name}: luma {inside_mean} inside the mask, {around_mean} around it"
        );
    }
}

#[test]
fn patterns_are_bright_and_large() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(dir.path(), &DemoParams::default()).unwrap();

    for image in summary.images.iter().filter(|i| i.pattern.is_some()) {
        let pattern = image.pattern.as_ref().unwrap();
        let name = image.path.display();
        assert!(
            pattern.diameter >= 34.0,
            "{name}: diameter {}",
            pattern.diameter
        );

        // Stains are brightest in the middle, and a stamp's ring fills its outer 3 pixels. Both
        // are compared with an 8-pixel ring of surface around the pattern.
        let radius = pattern.diameter / 2.0;
        let band = match pattern.kind {
            PatternKind::Stain => 0.0..radius / 2.0,
            PatternKind::Stamp => radius - 2.5..radius - 0.5,
        };
        let (width, height, values) = luma_grid(&dir.path().join(&image.path));
        let (mut inside, mut outside) = ((0.0, 0), (0.0, 0));
        for y in 0..height {
            for x in 0..width {
                let distance =
                    (x as f32 + 0.5 - pattern.center_x).hypot(y as f32 + 0.5 - pattern.center_y);
                if band.contains(&distance) {
                    inside = (inside.0 + values[y * width + x], inside.1 + 1);
                } else if (radius + 4.0..radius + 12.0).contains(&distance) {
                    outside = (outside.0 + values[y * width + x], outside.1 + 1);
                }
            }
        }
        let lift = inside.0 / inside.1 as f32 - outside.0 / outside.1 as f32;
        assert!(
            lift > 0.5 * pattern.contrast,
            "{name}: {:?} lifts luma by {lift}, contrast {}",
            pattern.kind,
            pattern.contrast
        );
    }
}

#[test]
fn foreign_folder_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"keep me").unwrap();

    let error = generate(dir.path(), &small_params(1)).unwrap_err();
    assert!(matches!(error, DemoError::ForeignFolder { .. }), "{error}");
    assert!(error.to_string().contains(MARKER), "{error}");
    assert_eq!(std::fs::read(&notes).unwrap(), b"keep me");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn previous_demo_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &small_params(1)).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"keep me").unwrap();

    let smaller = DemoParams {
        train_count: 3,
        test_defect: 0,
        ..small_params(2)
    };
    generate(dir.path(), &smaller).unwrap();
    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.train.len(), 3);
    assert_eq!(dataset.test.len(), 4);
    assert!(!dir.path().join("ground_truth").exists());
    assert_eq!(std::fs::read(&notes).unwrap(), b"keep me");

    let fresh = tempfile::tempdir().unwrap();
    generate(fresh.path(), &smaller).unwrap();
    let mut replaced = read_tree(dir.path());
    replaced.remove(Path::new("notes.txt"));
    assert!(
        replaced == read_tree(fresh.path()),
        "replaced set differs from a fresh one"
    );
}

#[test]
fn missing_folder_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b");
    let summary = generate(&root, &small_params(1)).unwrap();
    assert_eq!(summary.root, root);
    assert_eq!(Dataset::open(&root).unwrap().train.len(), 8);
}

#[test]
fn invalid_params_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    let params = DemoParams {
        width: 10,
        ..DemoParams::default()
    };
    assert!(matches!(
        generate(&root, &params).unwrap_err(),
        DemoError::ImageSize { .. }
    ));
    assert!(!root.exists());
}

#[test]
fn summary_display_counts_folders() {
    let dir = tempfile::tempdir().unwrap();
    let text = generate(dir.path(), &small_params(3)).unwrap().to_string();
    assert!(
        text.contains("train/good: 8 images, 1 with a harmless pattern"),
        "{text}"
    );
    assert!(text.contains("test/scratch: 3 images"), "{text}");
    assert!(text.contains("test/pit: 3 images"), "{text}");
}
