//! Reading images and ground-truth masks of any common layout (grayscale, RGB, RGBA, palette,
//! 8- or 16-bit) into one representation: RGB with `f32` channels in `0..=1`.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use image::{ImageReader, Rgb32FImage};

use crate::map::Mask;

/// Largest accepted image side, in pixels; bigger images are rejected before decoding.
pub const MAX_SIDE: u32 = 16_384;

/// Largest accepted pixel count of an image (2^25, about 33.5 megapixels, for example 8192x4096
/// or 5792x5792); bigger images are rejected before decoding. sieve holds each image it works
/// on as RGB `f32`, 12 bytes per pixel, and its anomaly maps at full size too, one image per
/// worker thread, so this bounds the memory of one image at about 400 MiB plus its maps.
pub const MAX_PIXELS: u64 = 1 << 25;

/// File extensions (compared case-insensitively) that are read as images.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("failed to read image {path}: {source}; the file is damaged, truncated or not an image, so export it again or move it out of the data folder")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("failed to open image {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image {path} is {width}x{height}; sides must be between 1 and {MAX_SIDE} pixels and the pixel count at most {MAX_PIXELS} (for example 8192x4096), so downscale or tile it first")]
    Size {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("mask {mask} is {mask_width}x{mask_height} but its image {image} is {image_width}x{image_height}; masks must match their image's size")]
    MaskSize {
        mask: PathBuf,
        image: PathBuf,
        mask_width: usize,
        mask_height: usize,
        image_width: usize,
        image_height: usize,
    },
}

/// Returns whether `path` has one of the image extensions, in any letter case.
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn reader(path: &Path) -> Result<ImageReader<BufReader<File>>, ImageError> {
    let io_error = |source| ImageError::Io {
        path: path.to_owned(),
        source,
    };
    ImageReader::open(path)
        .map_err(io_error)?
        .with_guessed_format()
        .map_err(io_error)
}

/// Returns whether a `width` x `height` image is within [`MAX_SIDE`] and [`MAX_PIXELS`].
pub fn size_is_accepted(width: u32, height: u32) -> bool {
    let sides = 1..=MAX_SIDE;
    sides.contains(&width)
        && sides.contains(&height)
        && u64::from(width) * u64::from(height) <= MAX_PIXELS
}

/// Reads the size of an image from its header only, and checks it against [`MAX_SIDE`] and
/// [`MAX_PIXELS`].
pub fn image_dimensions(path: &Path) -> Result<(u32, u32), ImageError> {
    let (width, height) = reader(path)?
        .into_dimensions()
        .map_err(|source| ImageError::Decode {
            path: path.to_owned(),
            source,
        })?;
    if !size_is_accepted(width, height) {
        return Err(ImageError::Size {
            path: path.to_owned(),
            width,
            height,
        });
    }
    Ok((width, height))
}

fn open(path: &Path) -> Result<image::DynamicImage, ImageError> {
    image_dimensions(path)?;
    reader(path)?.decode().map_err(|source| ImageError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Reads an image of any supported layout as RGB `f32` in `0..=1`; grayscale is replicated to
/// the three channels and alpha is dropped.
pub fn load_rgb(path: &Path) -> Result<Rgb32FImage, ImageError> {
    Ok(open(path)?.to_rgb32f())
}

/// Reads a ground-truth mask: any non-zero value in any channel marks a defect pixel.
pub fn load_mask(path: &Path) -> Result<Mask, ImageError> {
    let image = open(path)?.to_rgba16();
    let (width, height) = (image.width() as usize, image.height() as usize);
    let data = image
        .pixels()
        .map(|p| p.0[..3].iter().any(|&v| v != 0))
        .collect();
    Ok(Mask {
        width,
        height,
        data,
    })
}

/// Reads the mask of `image_path` and checks that the sizes match.
pub fn load_mask_for(
    mask_path: &Path,
    image_path: &Path,
    image_width: usize,
    image_height: usize,
) -> Result<Mask, ImageError> {
    let mask = load_mask(mask_path)?;
    if mask.width != image_width || mask.height != image_height {
        return Err(ImageError::MaskSize {
            mask: mask_path.to_owned(),
            image: image_path.to_owned(),
            mask_width: mask.width,
            mask_height: mask.height,
            image_width,
            image_height,
        });
    }
    Ok(mask)
}

/// Luma of an RGB pixel in `0..=1` (ITU-R BT.601 weights).
pub fn luma(rgb: [f32; 3]) -> f32 {
    0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, Rgba, RgbaImage};

    #[test]
    fn gray16_and_rgba_read_as_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_fn(3, 2, |x, _| Luma([if x == 1 { 65535 } else { 0 }]));
        let p16 = dir.path().join("a.PNG");
        gray16.save(&p16).unwrap();
        let img = load_rgb(&p16).unwrap();
        assert_eq!((img.width(), img.height()), (3, 2));
        assert_eq!(img.get_pixel(1, 0).0, [1.0, 1.0, 1.0]);
        assert_eq!(img.get_pixel(0, 0).0, [0.0, 0.0, 0.0]);

        let rgba: RgbaImage = ImageBuffer::from_pixel(2, 2, Rgba([255, 0, 0, 10]));
        let prgba = dir.path().join("b.png");
        rgba.save(&prgba).unwrap();
        assert_eq!(load_rgb(&prgba).unwrap().get_pixel(0, 0).0, [1.0, 0.0, 0.0]);
    }

    #[test]
    fn mask_counts_any_nonzero() {
        let dir = tempfile::tempdir().unwrap();
        let mask = GrayImage::from_raw(4, 1, vec![0, 1, 236, 255]).unwrap();
        let path = dir.path().join("m.png");
        mask.save(&path).unwrap();
        let m = load_mask(&path).unwrap();
        assert_eq!(m.data, vec![false, true, true, true]);
    }

    #[test]
    fn mask_of_other_size_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        GrayImage::new(4, 2).save(&path).unwrap();
        let err = load_mask_for(&path, Path::new("img.png"), 5, 2).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("m.png"), "{msg}");
        assert!(msg.contains("img.png"), "{msg}");
    }

    #[test]
    fn extension_check_ignores_case() {
        assert!(is_image_path(Path::new("a/B.JPG")));
        assert!(!is_image_path(Path::new("a/.DS_Store")));
        assert!(!is_image_path(Path::new("notes.txt")));
    }
}
