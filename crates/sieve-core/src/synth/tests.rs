//! Tests of drawing, rasterising and painting synthetic defects.

use image::{Rgb, Rgb32FImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::imageio::luma;
use crate::map::AnomalyMap;
use crate::prior::Prior;

fn gray(width: u32, height: u32, value: f32) -> Rgb32FImage {
    Rgb32FImage::from_pixel(width, height, Rgb([value; 3]))
}

fn prior_of(defect: &str) -> Prior {
    format!("features = [\"area\", \"contrast\"]\n[[defect]]\nname = \"test\"\n{defect}\n")
        .parse()
        .unwrap()
}

fn defect(outline: Outline, center: [f32; 2], angle: f32, edge: f32) -> Defect {
    Defect {
        kind: "test".to_string(),
        outline,
        center,
        angle,
        contrast: -0.2,
        edge,
        texture: 0.0,
        tint: None,
    }
}

fn alpha_sum(alpha: &AnomalyMap) -> f32 {
    alpha.data.iter().sum()
}

const MIXED: &str = r#"shape = "blob"
size = [10, 30]
irregularity = [0.1, 0.5]
contrast = [-0.3, 0.3]
edge = [0, 3]
texture = 0.1

[[defect]]
name = "scratch"
shape = "polyline"
length = [20, 60]
thickness = [1, 3]
segments = [1, 5]
contrast = [-0.3, -0.1]
tint = [0.9, 0.5, 0.2]
"#;

#[test]
fn paint_is_deterministic_per_seed() {
    let prior = prior_of(MIXED);
    let image = gray(64, 64, 0.5);
    let first = paint(&image, &prior, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    let again = paint(&image, &prior, &mut ChaCha8Rng::seed_from_u64(7)).unwrap();
    assert_eq!(first.image, again.image);
    assert_eq!(first.alpha, again.alpha);
    assert_eq!(first.kind, again.kind);

    let other = paint(&image, &prior, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    assert_ne!(first.alpha, other.alpha);
    assert_ne!(first.image, other.image);
}

#[test]
fn painted_contrast_matches_drawn() {
    let prior =
        prior_of("shape = \"square\"\nsize = [12, 20]\ncontrast = [-0.3, 0.3]\nedge = [0, 2]");
    let image = gray(80, 80, 0.5);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..20 {
        let defect = draw_defect(&prior, 80, 80, &mut rng).unwrap();
        let painted = paint_defect(&image, &defect, &mut rng);
        let inside: Vec<f32> = painted
            .alpha
            .data
            .iter()
            .enumerate()
            .filter(|(_, &a)| a >= 1.0)
            .map(|(i, _)| luma(painted.image.get_pixel((i % 80) as u32, (i / 80) as u32).0))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let mean = inside.iter().sum::<f32>() / inside.len() as f32;
        assert!(
            (mean - 0.5 - defect.contrast).abs() < 1e-4,
            "luma {mean}, contrast {}",
            defect.contrast
        );
    }
}

#[test]
fn textured_contrast_matches_on_average() {
    let prior = prior_of("shape = \"circle\"\nsize = 30\ncenter_x = 0.5\ncenter_y = 0.5\ncontrast = -0.2\ntexture = 0.1");
    let image = gray(64, 64, 0.6);
    let painted = paint(&image, &prior, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
    let inside: Vec<f32> = (0..64 * 64)
        .filter(|&i| painted.alpha.data[i] >= 1.0)
        .map(|i| luma(painted.image.get_pixel((i % 64) as u32, (i / 64) as u32).0))
        .collect();
    let mean = inside.iter().sum::<f32>() / inside.len() as f32;
    assert!((mean - 0.4).abs() < 0.01, "mean luma {mean}");
    let spread = inside.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / inside.len() as f32;
    // Multiplicative noise of std 0.1 on a luma of 0.4 has std 0.04.
    assert!((spread.sqrt() - 0.04).abs() < 0.01, "std {}", spread.sqrt());
}

#[test]
fn tinted_defect_keeps_contrast_and_takes_colour() {
    let prior = prior_of(
        "shape = \"circle\"\nsize = 20\ncenter_x = 0.5\ncenter_y = 0.5\ncontrast = 0.2\ntint = [0.6, 0.2, 0.2]",
    );
    let image = gray(48, 48, 0.3);
    let painted = paint(&image, &prior, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let centre = painted.image.get_pixel(24, 24).0;
    assert!((luma(centre) - 0.5).abs() < 1e-4, "{centre:?}");
    assert!(centre[0] > centre[1], "{centre:?}");
    assert!(centre[0] > centre[2], "{centre:?}");
}

#[test]
fn local_surface_sets_the_reference() {
    // Left half dark, right half bright: a defect on the right is measured against the
    // bright surface around it, not the image mean.
    let mut image = gray(120, 40, 0.2);
    for y in 0..40 {
        for x in 60..120 {
            image.put_pixel(x, y, Rgb([0.8; 3]));
        }
    }
    let shape = defect(
        Outline::Box {
            width: 8.0,
            height: 8.0,
        },
        [100.0, 20.0],
        0.0,
        0.0,
    );
    let painted = paint_defect(&image, &shape, &mut ChaCha8Rng::seed_from_u64(0));
    assert!((luma(painted.image.get_pixel(100, 20).0) - 0.6).abs() < 1e-4);
}

#[test]
fn square_coverage_matches_area() {
    for (angle, edge) in [(0.0, 0.0), (30.0, 0.0), (45.0, 2.0), (10.0, 4.0)] {
        let square = defect(
            Outline::Box {
                width: 15.0,
                height: 15.0,
            },
            [40.3, 39.7],
            angle,
            edge,
        );
        let alpha = coverage(&square, 80, 80);
        let area = alpha_sum(&alpha);
        // Only the rounding of corners by the ramp changes the area, by a few px^2.
        assert!(
            (area - 225.0).abs() < 225.0 * 0.03,
            "angle {angle} edge {edge}: {area}"
        );
    }
}

#[test]
fn circle_coverage_matches_area() {
    for (diameter, edge) in [(6.0f32, 0.0f32), (20.0, 0.0), (20.0, 3.0), (40.0, 1.0)] {
        let circle = defect(
            Outline::Ellipse {
                width: diameter,
                height: diameter,
            },
            [50.5, 49.2],
            0.0,
            edge,
        );
        let area = alpha_sum(&coverage(&circle, 100, 100));
        let expected = std::f32::consts::PI * diameter * diameter / 4.0;
        assert!(
            (area - expected).abs() < expected * 0.03,
            "diameter {diameter} edge {edge}: {area} vs {expected}"
        );
    }
}

#[test]
fn ellipse_and_line_coverage_match_area() {
    let ellipse = defect(
        Outline::Ellipse {
            width: 40.0,
            height: 16.0,
        },
        [50.0, 50.0],
        25.0,
        1.0,
    );
    let expected = std::f32::consts::PI * 40.0 * 16.0 / 4.0;
    let area = alpha_sum(&coverage(&ellipse, 100, 100));
    assert!(
        (area - expected).abs() < expected * 0.03,
        "{area} vs {expected}"
    );

    let line = defect(
        Outline::Polyline {
            points: vec![[-30.0, 0.0], [30.0, 0.0]],
            thickness: 2.0,
        },
        [50.0, 50.0],
        60.0,
        0.0,
    );
    // A 60 px band, 2 px thick, with round caps of 1 px radius.
    let expected = 120.0 + std::f32::consts::PI;
    let area = alpha_sum(&coverage(&line, 100, 100));
    assert!(
        (area - expected).abs() < expected * 0.03,
        "{area} vs {expected}"
    );
}

#[test]
fn rotation_is_counter_clockwise_on_screen() {
    let bar = defect(
        Outline::Box {
            width: 20.0,
            height: 2.0,
        },
        [20.0, 20.0],
        45.0,
        0.0,
    );
    let alpha = coverage(&bar, 40, 40);
    // Rotated counter-clockwise on screen, the bar's right end rises towards the top right.
    assert!(alpha.get(26, 13) > 0.9);
    assert!(alpha.get(26, 26) < 0.1);
}

#[test]
fn shapes_at_borders_are_clipped() {
    let image = gray(30, 20, 0.5);
    let centres = [
        [0.0, 0.0],
        [30.0, 20.0],
        [-5.0, 10.0],
        [15.0, 24.0],
        [-100.0, -100.0],
    ];
    for center in centres {
        let blob = defect(
            Outline::Blob {
                radius: 8.0,
                harmonics: vec![[0.3, 0.0], [0.2, 1.0]],
            },
            center,
            0.0,
            2.0,
        );
        let painted = paint_defect(&image, &blob, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(painted.alpha.data.len(), 30 * 20);
        assert_eq!((painted.image.width(), painted.image.height()), (30, 20));
        assert!(painted.alpha.data.iter().all(|a| (0.0..=1.0).contains(a)));
    }

    // A defect centred on the corner keeps about a quarter of its area.
    let corner = defect(
        Outline::Ellipse {
            width: 16.0,
            height: 16.0,
        },
        [0.0, 0.0],
        0.0,
        0.0,
    );
    let area = alpha_sum(&coverage(&corner, 30, 20));
    let quarter = std::f32::consts::PI * 64.0 / 4.0;
    assert!(
        (area - quarter).abs() < quarter * 0.05,
        "{area} vs {quarter}"
    );
}

#[test]
fn painted_values_stay_in_unit_range() {
    let prior = prior_of(
        "shape = \"blob\"\nsize = [10, 30]\ncontrast = [-1.0, 1.0]\ntexture = 1.0\nweight = 1",
    );
    let image = gray(50, 50, 0.9);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for _ in 0..10 {
        let painted = paint(&image, &prior, &mut rng).unwrap();
        assert!(painted
            .image
            .pixels()
            .all(|p| p.0.iter().all(|v| (0.0..=1.0).contains(v))));
    }
}

#[test]
fn mask_is_alpha_at_half() {
    let prior = prior_of(MIXED);
    let painted = paint(
        &gray(64, 64, 0.5),
        &prior,
        &mut ChaCha8Rng::seed_from_u64(1),
    )
    .unwrap();
    for (a, m) in painted.alpha.data.iter().zip(&painted.mask.data) {
        assert_eq!(*m, *a >= 0.5);
    }
    assert!(painted.mask.count() > 0);
}

#[test]
fn kinds_follow_weights() {
    let prior = prior_of(&format!("{MIXED}weight = 3\n"));
    let image = gray(64, 64, 0.5);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let scratches = (0..400)
        .filter(|_| paint(&image, &prior, &mut rng).unwrap().kind == "scratch")
        .count();
    // Expected share 3 / 4 of 400 draws, about 300 with a standard deviation of 8.7.
    assert!((265..=335).contains(&scratches), "{scratches}");
}

#[test]
fn drawn_centres_follow_prior() {
    let prior = prior_of(
        "shape = \"circle\"\nsize = 4\ncenter_x = [0.1, 0.2]\ncenter_y = 0.9\ncontrast = 0.1",
    );
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for _ in 0..100 {
        let defect = draw_defect(&prior, 200, 100, &mut rng).unwrap();
        assert!(
            (20.0..=40.0).contains(&defect.center[0]),
            "{:?}",
            defect.center
        );
        assert!(
            (defect.center[1] - 90.0).abs() < 1e-4,
            "{:?}",
            defect.center
        );
    }
}

#[test]
fn paint_rejects_small_and_empty_images() {
    let prior = prior_of("shape = \"circle\"\nsize = 40\ncontrast = 0.1");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let err = paint(&gray(30, 60, 0.5), &prior, &mut rng).unwrap_err();
    assert!(err.to_string().contains("defect[0].size"), "{err}");
    let err = paint(&gray(0, 0, 0.5), &prior, &mut rng).unwrap_err();
    assert!(matches!(err, SynthError::EmptyImage { .. }), "{err}");
}

#[test]
fn footprint_scales_blurred_alpha() {
    let mut alpha = AnomalyMap::filled(21, 21, 0.0);
    alpha.data[10 * 21 + 10] = 1.0;
    let map = footprint(&alpha, 2.0, 0.1, 0.9);
    assert!((map.max() - 0.9).abs() < 1e-6);
    assert!((map.get(10, 10) - 0.9).abs() < 1e-6);
    assert!(map.get(0, 0) >= 0.1, "{}", map.get(0, 0));
    assert!(map.get(0, 0) < 0.11, "{}", map.get(0, 0));
    assert!(map.get(12, 10) < map.get(11, 10));

    let empty = footprint(&AnomalyMap::filled(5, 4, 0.0), 2.0, 0.1, 0.9);
    assert_eq!(empty, AnomalyMap::filled(5, 4, 0.0));
}
