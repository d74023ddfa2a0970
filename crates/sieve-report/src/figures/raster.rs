//! Pixel helpers for the figures: images to 8-bit RGB, heat maps, masks, region outlines, and
//! PNG files.

use std::path::Path;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{imageops, ImageEncoder, Rgb, Rgb32FImage, RgbImage};
use plotters::style::colors::colormaps::ViridisRGB;
use sieve_core::{AnomalyMap, Mask};

use crate::ReportError;

/// Colour of ground-truth outlines.
pub const GROUND_TRUTH: Rgb<u8> = Rgb([40, 220, 60]);
/// Colour of regions the filter keeps.
pub const KEPT: Rgb<u8> = Rgb([255, 40, 40]);
/// Colour of regions the filter suppresses.
pub const SUPPRESSED: Rgb<u8> = Rgb([0, 200, 255]);

/// Converts an RGB image with values in `0..=1` to 8-bit RGB.
pub fn to_rgb8(image: &Rgb32FImage) -> RgbImage {
    RgbImage::from_fn(image.width(), image.height(), |x, y| {
        let p = image.get_pixel(x, y).0;
        Rgb(p.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
    })
}

/// Resizes a photo to `width` x `height` with a triangle filter.
pub fn resize_photo(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.dimensions() == (width, height) {
        return image.clone();
    }
    imageops::resize(image, width, height, imageops::FilterType::Triangle)
}

/// A boolean grid at panel size, sampled from a full-size grid by nearest neighbour.
#[derive(Debug, Clone, PartialEq)]
pub struct PanelMask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<bool>,
}

impl PanelMask {
    /// Samples `source(x, y)` on a `source_width` x `source_height` grid at `width` x `height`.
    pub fn sample(
        source_width: usize,
        source_height: usize,
        width: u32,
        height: u32,
        source: impl Fn(usize, usize) -> bool,
    ) -> Self {
        let mut data = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            let sy = nearest(y, height, source_height);
            for x in 0..width {
                let sx = nearest(x, width, source_width);
                data.push(source_width > 0 && source_height > 0 && source(sx, sy));
            }
        }
        Self {
            width,
            height,
            data,
        }
    }

    /// Samples a mask at panel size.
    pub fn from_mask(mask: &Mask, width: u32, height: u32) -> Self {
        Self::sample(mask.width, mask.height, width, height, |x, y| {
            mask.get(x, y)
        })
    }

    pub fn get(&self, x: u32, y: u32) -> bool {
        self.data[(y * self.width + x) as usize]
    }

    /// Returns whether `(x, y)` is set and has an unset 4-neighbour or lies on the border.
    pub fn is_boundary(&self, x: u32, y: u32) -> bool {
        if !self.get(x, y) {
            return false;
        }
        if x == 0 || y == 0 || x + 1 == self.width || y + 1 == self.height {
            return true;
        }
        !(self.get(x - 1, y) && self.get(x + 1, y) && self.get(x, y - 1) && self.get(x, y + 1))
    }
}

/// Maps pixel `i` of a grid of `to` pixels onto a grid of `from` pixels, by pixel centres.
fn nearest(i: u32, to: u32, from: usize) -> usize {
    let position = (i as f64 + 0.5) * from as f64 / to.max(1) as f64;
    (position as usize).min(from.saturating_sub(1))
}

/// Outline style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    Solid,
    /// Runs of four boundary pixels drawn, four left out, along the diagonal index `x + y`.
    Dashed,
}

/// Draws the boundary of `mask` onto `canvas` (both at panel size).
pub fn draw_outline(canvas: &mut RgbImage, mask: &PanelMask, colour: Rgb<u8>, line: Line) {
    for y in 0..mask.height.min(canvas.height()) {
        for x in 0..mask.width.min(canvas.width()) {
            if !mask.is_boundary(x, y) {
                continue;
            }
            if line == Line::Dashed && ((x + y) / 4) % 2 == 1 {
                continue;
            }
            canvas.put_pixel(x, y, colour);
        }
    }
}

/// Renders a mask as white on black, with `tinted` pixels in `tint` instead of white.
pub fn mask_panel(mask: &PanelMask, tinted: Option<(&PanelMask, Rgb<u8>)>) -> RgbImage {
    RgbImage::from_fn(mask.width, mask.height, |x, y| {
        if let Some((tinted, colour)) = tinted {
            if tinted.get(x, y) {
                return colour;
            }
        }
        if mask.get(x, y) {
            Rgb([255, 255, 255])
        } else {
            Rgb([0, 0, 0])
        }
    })
}

/// Renders `map` at `width` x `height` as a viridis heat map of the scores in `low..=high`,
/// clipping scores outside that range.
pub fn heat_map(map: &AnomalyMap, width: u32, height: u32, low: f32, high: f32) -> RgbImage {
    let span = (high - low).max(f32::EPSILON);
    RgbImage::from_fn(width, height, |x, y| {
        if map.width == 0 || map.height == 0 {
            return Rgb([0, 0, 0]);
        }
        let sx = nearest(x, width, map.width);
        let sy = nearest(y, height, map.height);
        let v = ((map.get(sx, sy) - low) / span).clamp(0.0, 1.0);
        let colour = ViridisRGB::get_color(v);
        Rgb([colour.0, colour.1, colour.2])
    })
}

/// Encodes `image` as PNG and writes it atomically to `path`.
pub fn write_png(path: &Path, image: &RgbImage) -> Result<(), ReportError> {
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Best, FilterType::Adaptive)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| ReportError::Image {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    sieve_core::fsutil::write_atomic(path, &bytes).map_err(|source| ReportError::Write {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_of_square_is_its_ring() {
        // A 4x4 square inside a 6x6 grid: 12 of its 16 pixels lie on the boundary.
        let mask = PanelMask::sample(6, 6, 6, 6, |x, y| {
            (1..5).contains(&x) && (1..5).contains(&y)
        });
        let ring = (0..6)
            .flat_map(|y| (0..6).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.is_boundary(x, y))
            .count();
        assert_eq!(ring, 12);
        assert!(!mask.is_boundary(2, 2));
    }

    #[test]
    fn nearest_sampling_halves_a_grid() {
        // Panel pixel centres 0.5, 1.5, 2.5, 3.5 land on source positions 1, 3, 5, 7 of an
        // 8-wide grid, so only the odd source columns are seen.
        let odd = PanelMask::sample(8, 2, 4, 1, |x, _| x % 2 == 1);
        assert_eq!(odd.data, vec![true; 4]);
        let even = PanelMask::sample(8, 2, 4, 1, |x, _| x % 2 == 0);
        assert_eq!(even.data, vec![false; 4]);
    }

    #[test]
    fn heat_map_ends_are_viridis_ends() {
        let map = AnomalyMap::from_vec(2, 1, vec![0.0, 1.0]);
        let heat = heat_map(&map, 2, 1, 0.0, 1.0);
        assert_eq!(heat.get_pixel(0, 0).0, [68, 1, 84]);
        assert_eq!(heat.get_pixel(1, 0).0, [254, 232, 37]);
    }
}
