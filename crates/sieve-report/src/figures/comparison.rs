//! The comparison figure of one test image: seven panels in a row (image, ground truth, anomaly
//! map, baseline mask, baseline regions, filtered mask, filtered regions), and the overlay of
//! `sieve predict`.

use image::{imageops, Rgb, Rgb32FImage, RgbImage};
use sieve_core::filter::{JudgedCandidate, Thresholds};
use sieve_core::regions::Labels;
use sieve_core::{AnomalyMap, Mask};

use super::font::{draw_captions, Caption};
use super::raster::{
    draw_outline, heat_map, mask_panel, resize_photo, to_rgb8, Line, PanelMask, GROUND_TRUTH, KEPT,
    SUPPRESSED,
};
use crate::ReportError;

/// Height of every panel in pixels.
pub const PANEL_HEIGHT: u32 = 180;
/// Narrowest and widest panel in pixels; the width follows the image's aspect ratio.
const PANEL_WIDTH: (u32, u32) = (100, 360);
const GAP: u32 = 6;
const HEADER: u32 = 22;
const FOOTER: u32 = 38;
/// Largest number of probability labels drawn per panel, largest regions first.
const MAX_LABELS: usize = 8;

/// The titles of the seven panels, left to right.
pub const PANEL_TITLES: [&str; 7] = [
    "image",
    "ground truth",
    "anomaly map",
    "baseline mask",
    "baseline regions",
    "filtered mask",
    "filtered regions",
];

/// Everything the comparison figure of one image shows.
pub struct ComparisonInput<'a> {
    /// The image's name, `<type>/<file name>`.
    pub name: &'a str,
    pub image: &'a Rgb32FImage,
    pub ground_truth: &'a Mask,
    pub baseline: &'a AnomalyMap,
    pub filtered: &'a AnomalyMap,
    /// Components of the baseline map at the pixel threshold; the candidates' labels refer to it.
    pub labels: &'a Labels,
    pub candidates: &'a [JudgedCandidate],
    pub thresholds: &'a Thresholds,
}

/// Returns the score range of the heat maps: from the background level `b` to `b + 3 (t - b)`,
/// so that the pixel threshold `t` sits at one third of the colour scale in every figure.
pub fn heat_range(thresholds: &Thresholds) -> (f32, f32) {
    let low = thresholds.background;
    let span = thresholds.pixel - low;
    if span > 0.0 && span.is_finite() {
        (low, low + 3.0 * span)
    } else {
        (low, low + 1.0)
    }
}

/// Returns the panel size for an image of `width` x `height`.
pub fn panel_size(width: u32, height: u32) -> (u32, u32) {
    let aspect = width as f64 / height.max(1) as f64;
    let w = (PANEL_HEIGHT as f64 * aspect).round() as u32;
    (w.clamp(PANEL_WIDTH.0, PANEL_WIDTH.1), PANEL_HEIGHT)
}

/// Region geometry of one image at one output size.
struct Regions {
    width: u32,
    height: u32,
    /// Component label of each output pixel, sampled by nearest neighbour.
    labels: Vec<u32>,
    /// `suppressed[label]` for every label, 0 included.
    suppressed: Vec<bool>,
}

impl Regions {
    fn new(labels: &Labels, candidates: &[JudgedCandidate], width: u32, height: u32) -> Self {
        let mut suppressed = vec![false; labels.count as usize + 1];
        for c in candidates {
            if let Some(slot) = suppressed.get_mut(c.candidate.label as usize) {
                *slot = c.judgement.suppressed;
            }
        }
        let mut grid = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                grid.push(sample_label(labels, x, y, width, height));
            }
        }
        Self {
            width,
            height,
            labels: grid,
            suppressed,
        }
    }

    fn mask(&self, keep: impl Fn(u32) -> bool) -> PanelMask {
        let (w, h) = (self.width as usize, self.height as usize);
        PanelMask::sample(w, h, self.width, self.height, |x, y| {
            keep(self.labels[y * w + x])
        })
    }

    fn any(&self) -> PanelMask {
        self.mask(|l| l > 0)
    }

    fn suppressed(&self) -> PanelMask {
        self.mask(|l| l > 0 && self.suppressed[l as usize])
    }
}

fn sample_label(labels: &Labels, x: u32, y: u32, width: u32, height: u32) -> u32 {
    if labels.width == 0 || labels.height == 0 {
        return 0;
    }
    let sx =
        (((x as f64 + 0.5) * labels.width as f64 / width as f64) as usize).min(labels.width - 1);
    let sy =
        (((y as f64 + 0.5) * labels.height as f64 / height as f64) as usize).min(labels.height - 1);
    labels.get(sx, sy)
}

/// Returns the probability labels of the candidates: suppressed ones always, then kept ones,
/// each group largest first, at most [`MAX_LABELS`] in all. Positions are scaled by `scale`.
fn probability_captions(
    candidates: &[JudgedCandidate],
    scale: (f64, f64),
    offset: (i32, i32),
    size: f64,
) -> Vec<Caption> {
    let mut order: Vec<&JudgedCandidate> = candidates.iter().collect();
    order.sort_by(|a, b| {
        let area = |c: &JudgedCandidate| c.candidate.bbox.width * c.candidate.bbox.height;
        b.judgement
            .suppressed
            .cmp(&a.judgement.suppressed)
            .then(area(b).cmp(&area(a)))
    });
    order
        .into_iter()
        .take(MAX_LABELS)
        .map(|c| {
            let bbox = c.candidate.bbox;
            let text = match c.judgement.probability {
                Some(p) => format!("{p:.2}"),
                None => "n/a".into(),
            };
            Caption {
                text,
                x: offset.0 + (bbox.x as f64 * scale.0) as i32,
                y: offset.1 + ((bbox.y + bbox.height) as f64 * scale.1) as i32 + 1,
                size,
                colour: if c.judgement.suppressed {
                    SUPPRESSED
                } else {
                    KEPT
                },
                background: Some(Rgb([0, 0, 0])),
            }
        })
        .collect()
}

/// Draws the filtered regions on a copy of `photo`: kept output regions solid red, suppressed
/// candidates dashed cyan, and the ground truth, when given, green.
fn filtered_regions(
    photo: &RgbImage,
    regions: &Regions,
    filtered: &AnomalyMap,
    t: f32,
    ground_truth: Option<&PanelMask>,
) -> RgbImage {
    let (w, h) = photo.dimensions();
    let mut canvas = photo.clone();
    if let Some(gt) = ground_truth {
        draw_outline(&mut canvas, gt, GROUND_TRUTH, Line::Solid);
    }
    let kept = PanelMask::sample(filtered.width, filtered.height, w, h, |x, y| {
        filtered.get(x, y) >= t
    });
    draw_outline(&mut canvas, &regions.suppressed(), SUPPRESSED, Line::Dashed);
    draw_outline(&mut canvas, &kept, KEPT, Line::Solid);
    canvas
}

/// Renders the seven-panel comparison figure.
pub fn comparison_figure(input: &ComparisonInput) -> Result<RgbImage, ReportError> {
    let t = input.thresholds.pixel;
    let (pw, ph) = panel_size(input.image.width(), input.image.height());
    let photo = resize_photo(&to_rgb8(input.image), pw, ph);
    let gt = PanelMask::from_mask(input.ground_truth, pw, ph);
    let regions = Regions::new(input.labels, input.candidates, pw, ph);
    let baseline_mask = regions.any();
    let filtered_mask = PanelMask::sample(
        input.filtered.width,
        input.filtered.height,
        pw,
        ph,
        |x, y| input.filtered.get(x, y) >= t,
    );
    let (low, high) = heat_range(input.thresholds);

    let mut baseline_regions = photo.clone();
    draw_outline(&mut baseline_regions, &gt, GROUND_TRUTH, Line::Solid);
    draw_outline(&mut baseline_regions, &baseline_mask, KEPT, Line::Solid);
    let panels = [
        photo.clone(),
        mask_panel(&gt, None),
        heat_map(input.baseline, pw, ph, low, high),
        mask_panel(&baseline_mask, None),
        baseline_regions,
        mask_panel(&filtered_mask, Some((&regions.suppressed(), SUPPRESSED))),
        filtered_regions(&photo, &regions, input.filtered, t, Some(&gt)),
    ];

    let width = GAP + panels.len() as u32 * (pw + GAP);
    let height = HEADER + ph + FOOTER;
    let mut canvas = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut captions = Vec::new();
    for (i, (panel, title)) in panels.iter().zip(PANEL_TITLES).enumerate() {
        let x = GAP + i as u32 * (pw + GAP);
        imageops::replace(&mut canvas, panel, x as i64, HEADER as i64);
        captions.push(Caption {
            text: title.to_string(),
            x: x as i32,
            y: 4,
            size: 13.0,
            colour: Rgb([0, 0, 0]),
            background: None,
        });
    }
    let scale = (
        pw as f64 / input.image.width().max(1) as f64,
        ph as f64 / input.image.height().max(1) as f64,
    );
    let last = GAP + 6 * (pw + GAP);
    captions.extend(probability_captions(
        input.candidates,
        scale,
        (last as i32, HEADER as i32),
        10.0,
    ));

    let kept = input
        .candidates
        .iter()
        .filter(|c| !c.judgement.suppressed)
        .count();
    let suppressed = input.candidates.len() - kept;
    let (before, after) = (input.baseline.max(), input.filtered.max());
    let verdict = |score: f32| {
        if score >= input.thresholds.image {
            "defective"
        } else {
            "good"
        }
    };
    captions.push(Caption {
        text: format!(
            "{}: image score {before:.3} ({}) -> {after:.3} ({}), t_img {:.3}; {kept} region(s) kept, {suppressed} suppressed",
            input.name,
            verdict(before),
            verdict(after),
            input.thresholds.image,
        ),
        x: GAP as i32,
        y: (HEADER + ph + 4) as i32,
        size: 12.0,
        colour: Rgb([0, 0, 0]),
        background: None,
    });
    captions.push(Caption {
        text: format!(
            "green: ground truth; red: region kept; cyan dashed: suppressed; numbers: false-alarm probability; heat map {low:.3} to {high:.3}, t = {t:.3}"
        ),
        x: GAP as i32,
        y: (HEADER + ph + 20) as i32,
        size: 11.0,
        colour: Rgb([70, 70, 70]),
        background: None,
    });
    draw_captions(&mut canvas, &captions)?;
    Ok(canvas)
}

/// Renders the filtered regions of one image at its original size, with the false-alarm
/// probability of each labelled candidate, for `sieve predict`.
pub fn overlay(
    image: &Rgb32FImage,
    labels: &Labels,
    candidates: &[JudgedCandidate],
    filtered: &AnomalyMap,
    t: f32,
) -> Result<RgbImage, ReportError> {
    let (w, h) = image.dimensions();
    let photo = to_rgb8(image);
    let regions = Regions::new(labels, candidates, w, h);
    let mut canvas = filtered_regions(&photo, &regions, filtered, t, None);
    let size = (h as f64 / 30.0).clamp(10.0, 24.0);
    let captions = probability_captions(candidates, (1.0, 1.0), (0, 0), size);
    draw_captions(&mut canvas, &captions)?;
    Ok(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb32FImage;
    use sieve_core::filter::{Judgement, ThresholdSource};
    use sieve_core::regions::{candidates, DescribeParams};

    fn thresholds() -> Thresholds {
        Thresholds {
            pixel: 0.5,
            image: 0.6,
            background: 0.1,
            pixel_quantile: 0.995,
            image_quantile: 0.99,
            source: ThresholdSource::Manual,
        }
    }

    /// A 90x60 grey image whose map has two square regions above t = 0.5: the left one, inside
    /// the ground truth, is kept; the right one is suppressed with probability 0.95.
    fn scene() -> (
        Rgb32FImage,
        Mask,
        AnomalyMap,
        AnomalyMap,
        Labels,
        Vec<JudgedCandidate>,
    ) {
        let (w, h) = (90usize, 60usize);
        let image = Rgb32FImage::from_pixel(w as u32, h as u32, image::Rgb([0.5, 0.5, 0.5]));
        let inside =
            |x: usize, y: usize, x0: usize| (x0..x0 + 16).contains(&x) && (20..36).contains(&y);
        let mut baseline = AnomalyMap::filled(w, h, 0.1);
        let mut ground_truth = Mask::empty(w, h);
        for y in 0..h {
            for x in 0..w {
                if inside(x, y, 10) || inside(x, y, 60) {
                    baseline.data[y * w + x] = 0.9;
                }
                // The ground truth reaches two pixels beyond the left square on every side.
                ground_truth.data[y * w + x] = (8..28).contains(&x) && (18..38).contains(&y);
            }
        }
        let (labels, found) = candidates(&baseline, &image, 0.5, &DescribeParams::default());
        let judged: Vec<JudgedCandidate> = found
            .into_iter()
            .map(|candidate| {
                let suppressed = candidate.bbox.x >= 60;
                JudgedCandidate {
                    candidate,
                    judgement: Judgement {
                        probability: Some(if suppressed { 0.95 } else { 0.2 }),
                        inside_envelope: true,
                        like_defect: false,
                        suppressed,
                    },
                }
            })
            .collect();
        let mut filtered = baseline.clone();
        for y in 0..h {
            for x in 0..w {
                if inside(x, y, 60) {
                    filtered.data[y * w + x] = 0.1;
                }
            }
        }
        (image, ground_truth, baseline, filtered, labels, judged)
    }

    fn count(image: &RgbImage, x_range: std::ops::Range<u32>, colour: Rgb<u8>) -> usize {
        image
            .enumerate_pixels()
            .filter(|(x, _, p)| x_range.contains(x) && **p == colour)
            .count()
    }

    #[test]
    fn comparison_marks_kept_and_suppressed() {
        let (image, ground_truth, baseline, filtered, labels, judged) = scene();
        assert_eq!(judged.len(), 2);
        let t = thresholds();
        let figure = comparison_figure(&ComparisonInput {
            name: "crack/000.png",
            image: &image,
            ground_truth: &ground_truth,
            baseline: &baseline,
            filtered: &filtered,
            labels: &labels,
            candidates: &judged,
            thresholds: &t,
        })
        .unwrap();

        // 90x60 scales to 270x180 panels.
        let (pw, ph) = panel_size(90, 60);
        assert_eq!((pw, ph), (270, 180));
        assert_eq!(figure.width(), GAP + 7 * (pw + GAP));
        assert_eq!(figure.height(), HEADER + ph + FOOTER);

        let panel = |i: u32| {
            let x = GAP + i * (pw + GAP);
            x..x + pw
        };
        // Baseline regions: both squares outlined in red, no cyan.
        assert!(count(&figure, panel(4), KEPT) > 100);
        assert_eq!(count(&figure, panel(4), SUPPRESSED), 0);
        // Filtered mask: the suppressed square filled cyan (48x48 panel pixels).
        assert!(count(&figure, panel(5), SUPPRESSED) >= 40 * 40);
        // Filtered regions: the suppressed square dashed cyan, about half of its 188-pixel ring.
        let dashed = count(&figure, panel(6), SUPPRESSED);
        assert!((60..150).contains(&dashed), "{dashed} cyan outline pixels");
        assert!(count(&figure, panel(6), GROUND_TRUTH) > 0);
    }

    #[test]
    fn overlay_keeps_image_size() {
        let (image, _, _, filtered, labels, judged) = scene();
        let out = overlay(&image, &labels, &judged, &filtered, 0.5).unwrap();
        assert_eq!(out.dimensions(), (90, 60));
        assert!(count(&out, 0..90, SUPPRESSED) > 0);
        assert!(count(&out, 0..90, KEPT) > 0);
    }
}
