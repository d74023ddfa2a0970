//! Painting a drawn defect into an image, and the footprint map used in place of a detector.

use image::Rgb32FImage;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::draw::{draw_defect, Defect};
use super::error::SynthError;
use super::raster::{coverage, ramp_width, Window};
use crate::imageio::luma;
use crate::map::{AnomalyMap, Mask};
use crate::prior::Prior;

/// Smallest margin, in pixels, that the local-surface window adds around a defect.
const MIN_SURFACE_MARGIN: f32 = 4.0;

/// An image with one synthetic defect painted in.
#[derive(Debug, Clone)]
pub struct Painted {
    pub image: Rgb32FImage,
    /// Coverage of the defect, `0..=1`.
    pub alpha: AnomalyMap,
    /// Pixels with `alpha >= 0.5`.
    pub mask: Mask,
    /// Name of the defect kind.
    pub kind: String,
}

/// Paints one defect drawn from `prior` into a copy of `image`.
///
/// Errors when the image is empty or a kind's largest shape does not fit in it.
pub fn paint(
    image: &Rgb32FImage,
    prior: &Prior,
    rng: &mut ChaCha8Rng,
) -> Result<Painted, SynthError> {
    let (width, height) = image.dimensions();
    if width == 0 || height == 0 {
        return Err(SynthError::EmptyImage { width, height });
    }
    prior.check_image_size(width, height)?;

    let defect = draw_defect(prior, width, height, rng)?;
    Ok(paint_defect(image, &defect, rng))
}

/// Paints a given defect into a copy of `image`; `rng` draws the texture noise.
///
/// The local surface is the mean colour of a square window around the defect, its half side
/// the defect's reach plus the edge ramp plus a margin of half the reach (at least 4 px),
/// clipped to the image. Each pixel moves by `alpha * delta`, with `delta` a colour of luma
/// `contrast`: `contrast` on every channel without a tint, or the step from the surface
/// colour to the tint scaled to luma `surface + contrast`. Then it is multiplied by
/// `1 + alpha * texture * n`, `n` standard normal per pixel, and clamped to `0..=1`. Away from
/// clamping, the mean luma where `alpha = 1` thus differs from the surface by `contrast`.
pub fn paint_defect(image: &Rgb32FImage, defect: &Defect, rng: &mut ChaCha8Rng) -> Painted {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let alpha = coverage(defect, width, height);
    let mut painted = image.clone();

    let reach = defect.outline.reach() + ramp_width(defect.edge);
    let margin = (0.5 * reach).max(MIN_SURFACE_MARGIN);
    let window = Window::around(defect.center, reach + margin, width, height);
    let delta = if window.is_empty() {
        [0.0; 3]
    } else {
        let surface = mean_colour(image, window);
        colour_step(surface, defect.contrast, defect.tint)
    };

    for (i, &a) in alpha.data.iter().enumerate() {
        if a <= 0.0 {
            continue;
        }
        let (x, y) = ((i % width) as u32, (i / width) as u32);
        let noise: f32 = StandardNormal.sample(rng);
        let gain = 1.0 + a * defect.texture * noise;
        let pixel = painted.get_pixel_mut(x, y);
        for (value, step) in pixel.0.iter_mut().zip(delta) {
            *value = ((*value + a * step) * gain).clamp(0.0, 1.0);
        }
    }

    let mask = Mask {
        width,
        height,
        data: alpha.data.iter().map(|&a| a >= 0.5).collect(),
    };
    Painted {
        image: painted,
        alpha,
        mask,
        kind: defect.kind.clone(),
    }
}

/// Mean colour of the pixels in a non-empty window.
fn mean_colour(image: &Rgb32FImage, window: Window) -> [f32; 3] {
    let mut sum = [0.0f64; 3];
    for y in window.y0..window.y1 {
        for x in window.x0..window.x1 {
            let pixel = image.get_pixel(x as u32, y as u32).0;
            for (s, v) in sum.iter_mut().zip(pixel) {
                *s += f64::from(v);
            }
        }
    }
    let count = ((window.x1 - window.x0) * (window.y1 - window.y0)) as f64;
    sum.map(|s| (s / count) as f32)
}

/// Returns the colour change whose luma is `contrast`: grey without a tint, towards the tint with one.
fn colour_step(surface: [f32; 3], contrast: f32, tint: Option<[f32; 3]>) -> [f32; 3] {
    match tint {
        None => [contrast; 3],
        Some(tint) => {
            // Checking the prior guaranteed a positive tint luma.
            let scale = (luma(surface) + contrast) / luma(tint);
            [0, 1, 2].map(|c| tint[c] * scale - surface[c])
        }
    }
}

/// Builds a stand-in anomaly map for tools that supply no detector:
/// `low + (high - low) * blur(alpha, sigma) / max(blur(alpha, sigma))`, all zeros when
/// `alpha` has no positive value.
pub fn footprint(alpha: &AnomalyMap, sigma: f32, low: f32, high: f32) -> AnomalyMap {
    if !alpha.data.iter().any(|&a| a > 0.0) {
        return AnomalyMap::filled(alpha.width, alpha.height, 0.0);
    }
    let blurred = alpha.gaussian_blur(sigma);
    let peak = blurred.max();
    let data = blurred
        .data
        .iter()
        .map(|&b| low + (high - low) * b / peak)
        .collect();
    AnomalyMap::from_vec(alpha.width, alpha.height, data)
}
