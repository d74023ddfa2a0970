//! False-alarm mining: every candidate at the pixel threshold on out-of-fold maps of
//! defect-free images.

use std::path::PathBuf;

use rayon::prelude::*;

use crate::imageio::{load_rgb, ImageError};
use crate::map::AnomalyMap;
use crate::regions::{candidates, Candidate, DescribeParams};

/// Collects the candidates of `maps >= t`, described with their images, in image order.
/// `images[i]` is the image of `maps[i]`. Mining happens at the deployment threshold only,
/// because a lower one makes false alarms look larger than those the filter will meet.
pub fn mine_false_alarms(
    images: &[PathBuf],
    maps: &[AnomalyMap],
    t: f32,
    describe: &DescribeParams,
) -> Result<Vec<Candidate>, ImageError> {
    let per_image: Vec<Vec<Candidate>> = images
        .par_iter()
        .zip(maps)
        .map(|(path, map)| {
            let image = load_rgb(path)?;
            Ok(candidates(map, &image, t, describe).1)
        })
        .collect::<Result<_, ImageError>>()?;
    Ok(per_image.into_iter().flatten().collect())
}
