//! Conversion of RGB images into normalised backbone inputs.

use candle_core::{Device, Tensor};
use image::imageops::{resize, FilterType};
use image::Rgb32FImage;

use super::error::BackboneError;

/// Per-channel ImageNet mean of RGB values in 0..1, subtracted before the network.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel ImageNet standard deviation of RGB values in 0..1, divided out after the mean.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Resizes an RGB image with values in 0..1 to `width`×`height` (bilinear, the image crate's
/// `Triangle` filter, aspect ratio not kept) and normalises each channel with [`IMAGENET_MEAN`]
/// and [`IMAGENET_STD`]. Returns `(1, 3, height, width)`.
pub fn image_to_tensor(
    img: &Rgb32FImage,
    width: u32,
    height: u32,
    device: &Device,
) -> Result<Tensor, BackboneError> {
    if width == 0 || height == 0 {
        return Err(BackboneError::ImageSize { width, height });
    }
    let values = normalised_planes(img, width, height);
    Ok(Tensor::from_vec(
        values,
        (1, 3, height as usize, width as usize),
        device,
    )?)
}

/// Converts several images as [`image_to_tensor`] does and stacks them into
/// `(n, 3, height, width)`.
pub fn images_to_tensor(
    images: &[Rgb32FImage],
    width: u32,
    height: u32,
    device: &Device,
) -> Result<Tensor, BackboneError> {
    if images.is_empty() {
        return Err(BackboneError::EmptyBatch);
    }
    if width == 0 || height == 0 {
        return Err(BackboneError::ImageSize { width, height });
    }
    let mut values = Vec::with_capacity(images.len() * 3 * (width * height) as usize);
    for img in images {
        values.extend(normalised_planes(img, width, height));
    }
    Ok(Tensor::from_vec(
        values,
        (images.len(), 3, height as usize, width as usize),
        device,
    )?)
}

/// Returns the resized image as three normalised planes, R then G then B, each row-major.
fn normalised_planes(img: &Rgb32FImage, width: u32, height: u32) -> Vec<f32> {
    let resized = if img.dimensions() == (width, height) {
        img.clone()
    } else {
        resize(img, width, height, FilterType::Triangle)
    };

    let plane = (width * height) as usize;
    let mut values = vec![0f32; 3 * plane];
    for (i, pixel) in resized.pixels().enumerate() {
        for c in 0..3 {
            values[c * plane + i] = (pixel[c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_is_normalised_per_channel() {
        // A 1x1 image of the mean colour plus one standard deviation in green.
        let img = Rgb32FImage::from_pixel(1, 1, image::Rgb([0.485, 0.456 + 0.224, 0.406]));
        let x = image_to_tensor(&img, 1, 1, &Device::Cpu).unwrap();
        assert_eq!(x.dims(), &[1, 3, 1, 1]);
        let values = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(values[0].abs() < 1e-6, "red {}", values[0]);
        assert!((values[1] - 1.0).abs() < 1e-5, "green {}", values[1]);
        assert!(values[2].abs() < 1e-6, "blue {}", values[2]);
    }

    #[test]
    fn planes_follow_channel_order() {
        // A 2x1 image: left pixel pure red, right pixel pure blue.
        let mut img = Rgb32FImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([1.0, 0.0, 0.0]));
        img.put_pixel(1, 0, image::Rgb([0.0, 0.0, 1.0]));
        let x = image_to_tensor(&img, 2, 1, &Device::Cpu).unwrap();
        let v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let red_left = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        let blue_right = (1.0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2];
        // Layout (c, y, x): index c * 2 + x.
        assert!((v[0] - red_left).abs() < 1e-6);
        assert!((v[5] - blue_right).abs() < 1e-6);
        assert!((v[1] + IMAGENET_MEAN[0] / IMAGENET_STD[0]).abs() < 1e-6);
    }

    #[test]
    fn batch_stacks_and_resizes() {
        let images = vec![Rgb32FImage::new(5, 3), Rgb32FImage::new(2, 2)];
        let x = images_to_tensor(&images, 4, 6, &Device::Cpu).unwrap();
        assert_eq!(x.dims(), &[2, 3, 6, 4]);
        assert!(matches!(
            images_to_tensor(&[], 4, 6, &Device::Cpu),
            Err(BackboneError::EmptyBatch)
        ));
        assert!(matches!(
            image_to_tensor(&images[0], 0, 6, &Device::Cpu),
            Err(BackboneError::ImageSize { .. })
        ));
    }
}
