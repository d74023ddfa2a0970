//! Tests of prior parsing and of every rule that rejects a prior.

use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::regions::Attribute;

const MINIMAL: &str = r#"
features = ["area", "contrast"]

[[defect]]
name = "pit"
shape = "circle"
size = [4, 10]
contrast = -0.2
"#;

/// Parses `text`, expecting an error, and returns its message.
fn rejection(text: &str) -> String {
    match text.parse::<Prior>() {
        Ok(_) => panic!("prior was accepted:\n{text}"),
        Err(err) => err.to_string(),
    }
}

/// Returns the minimal prior with `line` added to its defect table.
fn with_defect_line(line: &str) -> String {
    format!("{MINIMAL}{line}\n")
}

fn assert_names(message: &str, words: &[&str]) {
    for word in words {
        assert!(message.contains(word), "{word:?} missing from: {message}");
    }
}

fn repo_prior(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../priors")
        .join(name)
}

#[test]
fn minimal_prior_gets_defaults() {
    let prior: Prior = MINIMAL.parse().unwrap();
    assert_eq!(prior.features(), &[Attribute::Area, Attribute::Contrast]);
    assert_eq!(prior.envelope(), &Attribute::ALL[..]);
    assert_eq!(prior.augment(), &Augment::default());
    let kind = &prior.kinds()[0];
    assert_eq!(kind.name(), "pit");
    assert_eq!(kind.weight(), 1.0);
    assert_eq!(kind.edge(), &Value::Fixed(1.0));
    assert_eq!(kind.texture(), &Value::Fixed(0.0));
    assert_eq!(kind.center_x(), &Value::Uniform { lo: 0.0, hi: 1.0 });
    assert_eq!(kind.contrast(), &Value::Fixed(-0.2));
}

#[test]
fn value_forms_parse() {
    let prior: Prior = with_defect_line(
        "center_x = [[0.0, 0.1], [0.9, 1.0]]\ncenter_y = { mean = 0.5, std = 0.1, min = 0.3 }",
    )
    .parse()
    .unwrap();
    let kind = &prior.kinds()[0];
    assert_eq!(kind.center_x(), &Value::Union(vec![(0.0, 0.1), (0.9, 1.0)]));
    assert_eq!(
        kind.center_y(),
        &Value::Normal {
            mean: 0.5,
            std: 0.1,
            min: 0.3,
            max: 0.5 + NORMAL_CLIP_STD * 0.1,
        }
    );
}

#[test]
fn samples_stay_in_support() {
    let prior: Prior = with_defect_line(
        "center_x = [[0.0, 0.1], [0.9, 1.0]]\ncenter_y = { mean = 0.5, std = 0.2, min = 0.4, max = 0.7 }",
    )
    .parse()
    .unwrap();
    let kind = &prior.kinds()[0];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut low, mut high) = (0, 0);
    for _ in 0..2_000 {
        let x = kind.center_x().sample(&mut rng);
        assert!((0.0..=0.1).contains(&x) || (0.9..=1.0).contains(&x), "{x}");
        if x <= 0.1 {
            low += 1;
        } else {
            high += 1;
        }
        let y = kind.center_y().sample(&mut rng);
        assert!((0.4..=0.7).contains(&y), "{y}");
    }
    // Both ranges have the same length, so each gets about half the draws.
    assert!(low > 800, "{low} of 2000 draws in [0, 0.1]");
    assert!(high > 800, "{high} of 2000 draws in [0.9, 1]");
}

#[test]
fn example_prior_parses() {
    let text = r#"
features = ["area", "width", "height", "aspect", "center_x", "center_y", "contrast"]
envelope = ["area", "contrast"]

[[defect]]
name = "dent"
shape = "square"
size = [10, 18]
contrast = [-0.30, -0.10]
edge = [1.0, 3.0]
weight = 2.0

[[defect]]
name = "scratch"
shape = "polyline"
length = [40, 200]
thickness = [1, 4]
contrast = [-0.4, -0.1]

[augment]
noise = 0.1
shift = 0.2
mirror_x = true
copies = 5
"#;
    let prior: Prior = text.parse().unwrap();
    assert_eq!(prior.features().len(), 7);
    assert_eq!(prior.envelope(), &[Attribute::Area, Attribute::Contrast]);
    assert_eq!(prior.kinds()[0].weight(), 2.0);
    assert_eq!(prior.augment().noise(), 0.1);
    assert_eq!(prior.augment().shift(), 0.2);
    assert!(prior.augment().mirror_x());
    assert!(!prior.augment().mirror_y());
    assert_eq!(prior.augment().copies(), 5);
}

#[test]
fn unknown_key_is_named() {
    assert_names(&rejection(&with_defect_line("sise = 4")), &["sise"]);
    assert_names(
        &rejection(&format!("{MINIMAL}\n[augment]\nmirror = true\n")),
        &["mirror"],
    );
    assert_names(&rejection(&format!("colour = 1\n{MINIMAL}")), &["colour"]);
}

#[test]
fn unknown_shape_lists_valid_ones() {
    let message = rejection(&MINIMAL.replace("\"circle\"", "\"star\""));
    assert_names(&message, &["star", "circle", "polyline", "blob"]);
}

#[test]
fn unknown_attribute_lists_valid_ones() {
    let message = rejection(&MINIMAL.replace("\"contrast\"]", "\"size\"]"));
    assert_names(&message, &["features", "\"size\"", "area", "mean_luma"]);
    let message = rejection(&format!("envelope = [\"colour\"]\n{MINIMAL}"));
    assert_names(&message, &["envelope", "\"colour\""]);
}

#[test]
fn duplicate_and_empty_features_rejected() {
    let message = rejection(&MINIMAL.replace("\"contrast\"]", "\"area\"]"));
    assert_names(&message, &["features", "area", "twice"]);
    let message = rejection(&MINIMAL.replace("[\"area\", \"contrast\"]", "[]"));
    assert_names(&message, &["features", "empty"]);
}

#[test]
fn missing_defects_rejected() {
    assert_names(&rejection("features = [\"area\"]\n"), &["[[defect]]"]);
}

#[test]
fn duplicate_name_rejected() {
    let text = format!(
        "{MINIMAL}{}",
        MINIMAL.replace("features = [\"area\", \"contrast\"]", "")
    );
    assert_names(&rejection(&text), &["defect[1].name", "pit"]);
}

#[test]
fn empty_range_rejected() {
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = []"));
    assert_names(&message, &["defect[0].size", "empty"]);
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = [4, 6, 10]"));
    assert_names(&message, &["defect[0].size", "[4.0, 6.0, 10.0]"]);
}

#[test]
fn inverted_range_rejected() {
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = [10, 4]"));
    assert_names(&message, &["defect[0].size", "[10.0, 4.0]", "inverted"]);
    let message = rejection(&with_defect_line(
        "center_x = { mean = 0.5, std = 0.1, min = 0.6, max = 0.4 }",
    ));
    assert_names(&message, &["defect[0].center_x", "min = 0.6"]);
}

#[test]
fn negative_size_rejected() {
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = [-2, 10]"));
    assert_names(&message, &["defect[0].size", "-2", "positive"]);
    // A normal whose 4-std tail reaches below zero needs `min`.
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = { mean = 5, std = 2 }"));
    assert_names(&message, &["defect[0].size", "min"]);
    assert!(MINIMAL
        .replace("size = [4, 10]", "size = { mean = 5, std = 2, min = 1 }")
        .parse::<Prior>()
        .is_ok());
}

#[test]
fn non_positive_std_rejected() {
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = { mean = 5, std = 0 }"));
    assert_names(&message, &["defect[0].size", "std = 0"]);
}

#[test]
fn out_of_domain_rejected() {
    let cases = [
        (
            "contrast = -0.2",
            "contrast = [-1.5, 0.2]",
            "defect[0].contrast",
        ),
        (
            "size = [4, 10]",
            "size = [4, 10]\ncenter_x = [0.5, 1.2]",
            "defect[0].center_x",
        ),
        (
            "size = [4, 10]",
            "size = [4, 10]\nedge = -1",
            "defect[0].edge",
        ),
    ];
    for (from, to, key) in cases {
        assert_names(&rejection(&MINIMAL.replace(from, to)), &[key]);
    }
    let message = rejection(&format!("{MINIMAL}\n[augment]\nshift = 0.8\n"));
    assert_names(&message, &["augment.shift", "0.8"]);
}

#[test]
fn wrong_value_form_rejected() {
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "size = \"big\""));
    assert_names(&message, &["size", "a range [lo, hi]"]);
}

#[test]
fn weights_all_zero_rejected() {
    assert_names(
        &rejection(&with_defect_line("weight = 0")),
        &["weight", "positive"],
    );
    assert_names(
        &rejection(&with_defect_line("weight = -1")),
        &["defect[0].weight", "-1"],
    );
}

#[test]
fn shape_keys_checked() {
    let message = rejection(&with_defect_line("width = 4"));
    assert_names(&message, &["defect[0].width", "circle", "size"]);
    let message = rejection(&MINIMAL.replace("size = [4, 10]", "length = 10"));
    assert_names(&message, &["defect[0].length", "circle"]);
    let message = rejection(
        &MINIMAL
            .replace("\"circle\"", "\"rectangle\"")
            .replace("size = [4, 10]", "width = 4"),
    );
    assert_names(&message, &["defect[0].height", "missing", "rectangle"]);
}

#[test]
fn invalid_tint_rejected() {
    let message = rejection(&with_defect_line("tint = [1.0, 0.5]"));
    assert_names(&message, &["defect[0].tint", "[1.0, 0.5]"]);
    let message = rejection(&with_defect_line("tint = [0.0, 0.0, 0.0]"));
    assert_names(&message, &["defect[0].tint", "luma"]);
}

#[test]
fn unsatisfiable_area_rejected() {
    // A circle of diameter 4..10 covers at most 78.5 px^2.
    let message = rejection(&with_defect_line("area = [100, 200]"));
    assert_names(&message, &["defect[0].area", "[100, 200]", "2000"]);
    assert!(with_defect_line("area = [20, 60]").parse::<Prior>().is_ok());
}

#[test]
fn unsatisfiable_aspect_rejected() {
    let text = MINIMAL.replace("\"circle\"", "\"rectangle\"").replace(
        "size = [4, 10]",
        "width = [4, 8]\nheight = [10, 20]\naspect = [1.5, 3.0]",
    );
    assert_names(&rejection(&text), &["defect[0].aspect", "[1.5, 3]"]);
}

#[test]
fn constraints_hold_in_every_draw() {
    let text = MINIMAL.replace("\"circle\"", "\"rectangle\"").replace(
        "size = [4, 10]",
        "width = [4, 40]\nheight = [4, 40]\naspect = [0.5, 2.0]\narea = [100, 400]",
    );
    let prior: Prior = text.parse().unwrap();
    let kind = &prior.kinds()[0];
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let draws: Vec<ShapeDraw> = (0..5_000)
        .filter_map(|_| kind.try_draw_shape(&mut rng))
        .collect();
    assert!(
        draws.len() > 100,
        "{} draws met the constraints",
        draws.len()
    );
    for draw in draws {
        assert!((0.5..=2.0).contains(&draw.aspect()), "{draw:?}");
        assert!((100.0..=400.0).contains(&draw.area()), "{draw:?}");
    }
}

#[test]
fn size_aspect_keeps_area() {
    let text = MINIMAL
        .replace("\"circle\"", "\"rectangle\"")
        .replace("size = [4, 10]", "size = 20\naspect = [0.25, 4.0]");
    let prior: Prior = text.parse().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..100 {
        let draw = prior.kinds()[0].try_draw_shape(&mut rng).unwrap();
        assert!((draw.area() - 400.0).abs() < 1e-6, "{draw:?}");
    }
}

#[test]
fn image_size_check_uses_angle() {
    let line = |angle: &str| {
        format!(
            "features = [\"area\"]\n[[defect]]\nname = \"cut\"\nshape = \"line\"\nlength = 80\nthickness = 2\ncontrast = -0.1\nangle = {angle}\n"
        )
    };
    let horizontal: Prior = line("0").parse().unwrap();
    horizontal.check_image_size(100, 20).unwrap();
    let message = horizontal
        .check_image_size(60, 200)
        .unwrap_err()
        .to_string();
    assert_names(&message, &["defect[0].length", "60x200", "80x2"]);

    let any_angle: Prior = line("[0, 180]").parse().unwrap();
    let message = any_angle.check_image_size(100, 20).unwrap_err().to_string();
    assert_names(&message, &["defect[0].length", "100x20"]);
    any_angle.check_image_size(100, 100).unwrap();
}

#[test]
fn square_extent_grows_with_rotation() {
    let text = MINIMAL
        .replace("\"circle\"", "\"square\"")
        .replace("size = [4, 10]", "size = 50\nangle = 45");
    let prior: Prior = text.parse().unwrap();
    // The diagonal of a 50 px square is 70.7 px.
    assert!(prior.check_image_size(70, 70).is_err());
    prior.check_image_size(71, 71).unwrap();
}

#[test]
fn from_path_reads_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, with_defect_line("sise = 4")).unwrap();
    let message = Prior::from_path(&path).unwrap_err().to_string();
    assert_names(&message, &["bad.toml", "sise"]);

    let missing = dir.path().join("missing.toml");
    let message = Prior::from_path(&missing).unwrap_err().to_string();
    assert_names(&message, &["missing.toml"]);
}

#[test]
fn repository_priors_fit_their_sets() {
    // Magnetic tiles vary from about 103x222 to 617x388 px; these are the smallest, typical
    // and large sizes of the training images. Tire images are all 300x400.
    let tile = Prior::from_path(&repo_prior("magnetic_tile.toml")).unwrap();
    for (width, height) in [(103, 222), (135, 264), (292, 330), (617, 388)] {
        tile.check_image_size(width, height)
            .unwrap_or_else(|err| panic!("magnetic tile at {width}x{height}: {err}"));
    }
    let tire = Prior::from_path(&repo_prior("mvtec3d_tire.toml")).unwrap();
    tire.check_image_size(300, 400).unwrap();
}
