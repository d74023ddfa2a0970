//! `sieve predict`: judge images with a fitted model. For each image it reports the verdict at
//! the image threshold after filtering, the baseline and filtered image scores and every
//! candidate, and writes the filtered mask and an overlay. An image that fails is reported
//! with its path and the others go on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use image::GrayImage;
use rayon::prelude::*;
use serde::Serialize;
use sieve_core::dataset::list_images;
use sieve_core::filter::JudgedCandidate;
use sieve_core::imageio::load_rgb;
use sieve_report::figures::{overlay, write_png};

use crate::args::PredictArgs;
use crate::model::{load_model, LoadedModel};
use crate::progress::Bars;
use crate::run::prepare_out_dir;

/// Name of the file with every image's result.
pub const PREDICTIONS_FILE: &str = "predictions.json";

/// Counts of a finished `sieve predict`, which set the exit code.
pub struct PredictOutcome {
    pub defective: usize,
    pub failed: usize,
}

/// The result of one image, as printed with `--json` and stored in `predictions.json`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Prediction {
    Judged(Box<Judged>),
    Failed { path: String, error: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    pub path: String,
    /// Whether the filtered image score is at or above `image_threshold`.
    pub defective: bool,
    pub baseline_score: f32,
    pub filtered_score: f32,
    pub image_threshold: f32,
    pub pixel_threshold: f32,
    /// The filtered mask (pixels at or above the pixel threshold), at the image's size.
    pub mask: String,
    /// The image with kept regions in red and suppressed ones in dashed cyan.
    pub overlay: String,
    pub candidates: Vec<CandidateResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateResult {
    #[serde(flatten)]
    pub candidate: JudgedCandidate,
    /// `kept` or `suppressed`.
    pub decision: &'static str,
}

/// Expands folders into their images, keeping the order of the arguments. A path that is
/// neither becomes an error entry.
fn expand(inputs: &[PathBuf]) -> Vec<Result<PathBuf, (PathBuf, String)>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            match list_images(input) {
                Ok(images) if images.is_empty() => out.push(Err((
                    input.clone(),
                    "folder has no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff)".into(),
                ))),
                Ok(images) => out.extend(images.into_iter().map(Ok)),
                Err(e) => out.push(Err((input.clone(), e.to_string()))),
            }
        } else if input.is_file() {
            out.push(Ok(input.clone()));
        } else {
            out.push(Err((input.clone(), "no such file or folder".into())));
        }
    }
    out
}

/// Returns an output stem per image: the file stem, with `-2`, `-3`, ... added to repeats.
fn output_stems(paths: &[&Path]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    paths
        .iter()
        .map(|path| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let count = seen.entry(stem.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                stem
            } else {
                format!("{stem}-{count}")
            }
        })
        .collect()
}

fn judge(model: &LoadedModel, path: &Path, stem: &str, out: &Path) -> anyhow::Result<Judged> {
    let image = load_rgb(path)?;
    let baseline = model
        .detector
        .anomaly_map(&image, None)
        .with_context(|| format!("failed to score {}", path.display()))?;
    let filtered = model.filter.apply(&baseline, &image);
    let thresholds = model.filter.thresholds;

    let (width, height) = (image.width(), image.height());
    let mask = GrayImage::from_fn(width, height, |x, y| {
        let on = filtered.map.get(x as usize, y as usize) >= thresholds.pixel;
        image::Luma([if on { 255 } else { 0 }])
    });
    let mask_path = out.join(format!("{stem}.mask.png"));
    let mut bytes = Vec::new();
    mask.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    sieve_core::fsutil::write_atomic(&mask_path, &bytes)
        .with_context(|| format!("failed to write {}", mask_path.display()))?;
    let overlay_path = out.join(format!("{stem}.overlay.png"));
    let drawn = overlay(
        &image,
        &filtered.labels,
        &filtered.candidates,
        &filtered.map,
        thresholds.pixel,
    )?;
    write_png(&overlay_path, &drawn)?;

    let filtered_score = filtered.image_score();
    Ok(Judged {
        path: path.display().to_string(),
        defective: filtered_score >= thresholds.image,
        baseline_score: baseline.max(),
        filtered_score,
        image_threshold: thresholds.image,
        pixel_threshold: thresholds.pixel,
        mask: mask_path.display().to_string(),
        overlay: overlay_path.display().to_string(),
        candidates: filtered
            .candidates
            .into_iter()
            .map(|candidate| CandidateResult {
                decision: if candidate.judgement.suppressed {
                    "suppressed"
                } else {
                    "kept"
                },
                candidate,
            })
            .collect(),
    })
}

fn describe(judged: &Judged) -> String {
    let suppressed = judged
        .candidates
        .iter()
        .filter(|c| c.candidate.judgement.suppressed)
        .count();
    format!(
        "{:<9} {}  score {:.4} -> {:.4} (t_img {:.4}), {} region(s) kept, {suppressed} suppressed",
        if judged.defective {
            "defective"
        } else {
            "good"
        },
        judged.path,
        judged.baseline_score,
        judged.filtered_score,
        judged.image_threshold,
        judged.candidates.len() - suppressed,
    )
}

pub fn predict(args: &PredictArgs, bars: Bars) -> anyhow::Result<PredictOutcome> {
    prepare_out_dir(&args.out)?;
    let model = load_model(&args.model)?;
    let entries = expand(&args.inputs);
    let paths: Vec<&Path> = entries
        .iter()
        .map(|e| match e {
            Ok(path) => path.as_path(),
            Err((path, _)) => path.as_path(),
        })
        .collect();
    let stems = output_stems(&paths);

    let bar = bars.bar(entries.len() as u64, "judge images");
    let predictions: Vec<Prediction> = entries
        .par_iter()
        .zip(stems.par_iter())
        .map(|(entry, stem)| {
            let result = match entry {
                Ok(path) => match judge(&model, path, stem, &args.out) {
                    Ok(judged) => Prediction::Judged(Box::new(judged)),
                    Err(e) => Prediction::Failed {
                        path: path.display().to_string(),
                        error: crate::error_chain(&e),
                    },
                },
                Err((path, error)) => Prediction::Failed {
                    path: path.display().to_string(),
                    error: error.clone(),
                },
            };
            bar.inc(1);
            result
        })
        .collect();
    bar.finish_and_clear();

    let mut outcome = PredictOutcome {
        defective: 0,
        failed: 0,
    };
    for prediction in &predictions {
        match prediction {
            Prediction::Judged(judged) => {
                outcome.defective += usize::from(judged.defective);
                if !args.json {
                    println!("{}", describe(judged));
                }
            }
            Prediction::Failed { path, error } => {
                outcome.failed += 1;
                eprintln!("error: {path}: {error}");
            }
        }
        if args.json {
            println!("{}", serde_json::to_string(prediction)?);
        }
    }
    let file = args.out.join(PREDICTIONS_FILE);
    sieve_core::fsutil::write_atomic(&file, &serde_json::to_vec_pretty(&predictions)?)
        .with_context(|| format!("failed to write {}", file.display()))?;
    bars.say(&format!(
        "{} image(s): {} defective, {} good, {} failed; results in {}",
        predictions.len(),
        outcome.defective,
        predictions.len() - outcome.defective - outcome.failed,
        outcome.failed,
        file.display()
    ));
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_stems_get_numbers() {
        let paths = [
            Path::new("a/001.png"),
            Path::new("b/001.png"),
            Path::new("b/002.png"),
            Path::new("c/001.jpg"),
        ];
        assert_eq!(output_stems(&paths), vec!["001", "001-2", "002", "001-3"]);
    }
}
