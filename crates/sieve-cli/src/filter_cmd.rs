//! `sieve filter`: the false-alarm filter on anomaly maps made by another tool.
//!
//! With no detector to put in the loop, a footprint model turns painted defects into anomaly
//! maps. It blurs the painted coverage by the spread of the tool's own false alarms, scales it
//! to their typical peak, and lays it over the defect-free map of the source image. The safety
//! estimate of this mode is therefore weaker than with a detector in the loop, and the output
//! states this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rayon::prelude::*;
use serde::Serialize;
use sieve_core::dataset::{check_unique_stems, list_images};
use sieve_core::filter::{
    synthesize, train_filter, JudgedCandidate, RecallLoss, SynthesisStats, Thresholds,
    TrainingSummary,
};
use sieve_core::fsutil::Temporary;
use sieve_core::imageio::{image_dimensions, load_rgb};
use sieve_core::mapio::{read_map, write_map, MapFormat};
use sieve_core::prior::Prior;
use sieve_core::regions::{Attribute, Candidate};
use sieve_core::synth::footprint;
use sieve_core::AnomalyMap;

use crate::args::FilterArgs;
use crate::progress::Bars;
use crate::run::{filter_params, prepare_out_dir, thresholds_and_false_alarms};

/// File extensions read as anomaly maps, compared case-insensitively.
const MAP_EXTENSIONS: [&str; 4] = ["npy", "tif", "tiff", "png"];

/// One map file with the image it belongs to.
struct MapPair {
    map: PathBuf,
    image: PathBuf,
}

/// Pairs every map in `maps` with the image of the same file stem in `images`.
fn pair_maps(maps: &Path, images: &Path) -> anyhow::Result<Vec<MapPair>> {
    let image_files = list_images(images)?;
    let by_stem: BTreeMap<String, PathBuf> =
        image_files.into_iter().map(|p| (stem(&p), p)).collect();
    let mut map_files: Vec<PathBuf> = std::fs::read_dir(maps)
        .with_context(|| format!("failed to list the map folder {}", maps.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let hidden = p
                .file_name()
                .map(|n| n.to_string_lossy().starts_with('.'))
                .unwrap_or(true);
            let ext = p
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            !hidden && p.is_file() && MAP_EXTENSIONS.contains(&ext.as_str())
        })
        .collect();
    map_files.sort();
    check_unique_stems(&map_files)?;
    if map_files.is_empty() {
        bail!(
            "no anomaly maps (.npy, .tif, .tiff, .png) found in {}",
            maps.display()
        );
    }
    map_files
        .into_iter()
        .map(|map| {
            let key = stem(&map);
            let image = by_stem.get(&key).cloned().ok_or_else(|| {
                anyhow::anyhow!(
                    "map {} has no image with the stem {key:?} in {}; give each map the file stem of its image",
                    map.display(),
                    images.display()
                )
            })?;
            Ok(MapPair { map, image })
        })
        .collect()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads a map and checks that its size matches its image.
fn read_checked(pair: &MapPair) -> anyhow::Result<(AnomalyMap, MapFormat, image::Rgb32FImage)> {
    let (map, format) = read_map(&pair.map)?;
    let image = load_rgb(&pair.image)?;
    check_same_size(pair, &map, image.width(), image.height())?;
    Ok((map, format, image))
}

fn check_same_size(
    pair: &MapPair,
    map: &AnomalyMap,
    width: u32,
    height: u32,
) -> anyhow::Result<()> {
    if map.width != width as usize || map.height != height as usize {
        bail!(
            "map {} is {}x{} but its image {} is {width}x{height}; maps must be at the image's original size",
            pair.map.display(),
            map.width,
            map.height,
            pair.image.display(),
        );
    }
    Ok(())
}

/// Reads every map and the header of its image, so that a damaged map or a size mismatch is
/// reported before the filter is trained. The error is that of the first failing pair.
fn check_pairs(pairs: &[MapPair]) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = pairs
        .par_iter()
        .map(|pair| {
            let (map, _) = read_map(&pair.map)?;
            let (width, height) = image_dimensions(&pair.image)?;
            check_same_size(pair, &map, width, height)
        })
        .collect();
    results.into_iter().collect()
}

/// The candidates of one filtered map, as written to `candidates.json`.
#[derive(Serialize)]
struct MapCandidates {
    map: String,
    image: String,
    baseline_score: f32,
    filtered_score: f32,
    candidates: Vec<JudgedCandidate>,
}

#[derive(Serialize)]
struct FilterReport {
    thresholds: Thresholds,
    training: TrainingSummary,
    synthesis: SynthesisStats,
    synthetic_recall_loss: RecallLoss,
    footprint_sigma: f32,
    footprint_peak: f32,
    estimate_source: &'static str,
    note: &'static str,
    maps: Vec<MapCandidates>,
}

pub fn filter(args: &FilterArgs, bars: Bars) -> anyhow::Result<()> {
    let params = filter_params(&args.filter)?;
    let prior = Prior::from_path(&args.prior)?;
    let folders = [
        ("--good-maps", &args.good_maps),
        ("--good-images", &args.good_images),
        ("--maps", &args.maps),
        ("--images", &args.images),
    ];
    for (option, folder) in folders {
        if !folder.is_dir() {
            bail!(
                "{option} folder {} not found; pass an existing folder",
                folder.display()
            );
        }
    }
    let good = pair_maps(&args.good_maps, &args.good_images)?;
    let targets = pair_maps(&args.maps, &args.images)?;
    prepare_out_dir(&args.out)?;

    let bar = bars.bar(good.len() as u64, "read defect-free maps");
    let good_maps: Vec<anyhow::Result<AnomalyMap>> = good
        .par_iter()
        .map(|pair| {
            let (map, _, _) = read_checked(pair)?;
            bar.inc(1);
            Ok(map)
        })
        .collect();
    // Collected in order, so the error reported is that of the first failing map.
    let good_maps: Vec<AnomalyMap> = good_maps.into_iter().collect::<anyhow::Result<_>>()?;
    check_pairs(&targets)?;
    bar.finish_and_clear();

    let good_images: Vec<PathBuf> = good.iter().map(|p| p.image.clone()).collect();
    let (thresholds, false_alarms) =
        thresholds_and_false_alarms(&good_images, &good_maps, &args.filter, &params)?;

    // Footprint model: spread and peak of the tool's own false alarms.
    let (sigma, peak) = footprint_shape(&false_alarms, &thresholds);
    let bar = bars.bar(params.max_cases as u64, "paint synthetic defects");
    let synthetic = synthesize(
        &good_images,
        &prior,
        thresholds.pixel,
        &params,
        |painted, source| {
            let print = footprint(&painted.alpha, sigma, thresholds.background, peak);
            let base = &good_maps[source];
            let data = base
                .data
                .iter()
                .zip(&print.data)
                .map(|(&a, &b)| a.max(b))
                .collect();
            Ok(AnomalyMap::from_vec(base.width, base.height, data))
        },
        &|n| bar.inc(n),
    )
    .map_err(|e| anyhow::anyhow!("synthetic defects failed: {e}"))?;
    bar.finish_and_clear();

    let (filter, training) = train_filter(
        &false_alarms,
        &synthetic.train,
        &synthetic.held_back,
        &prior,
        thresholds,
        &params,
    );
    if let Some(reason) = &training.inactive_reason {
        bars.warn(&format!("the filter is inactive: {reason}"));
    }

    // The filtered maps go to a temporary folder that replaces `maps/` only once every map is
    // written, so an error or an interruption never leaves old and new maps mixed.
    let maps_dir = args.out.join("maps");
    let new_maps = Temporary::beside(&maps_dir);
    std::fs::create_dir_all(new_maps.path())
        .with_context(|| format!("failed to create {}", new_maps.path().display()))?;
    let bar = bars.bar(targets.len() as u64, "filter maps");
    let results: Vec<MapCandidates> = targets
        .par_iter()
        .map(|pair| {
            let (map, format, image) = read_checked(pair)?;
            let filtered = filter.apply(&map, &image);
            let name = pair
                .map
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            write_map(new_maps.path().join(&name), &filtered.map, format)?;
            bar.inc(1);
            Ok(MapCandidates {
                map: pair.map.display().to_string(),
                image: pair.image.display().to_string(),
                baseline_score: map.max(),
                filtered_score: filtered.image_score(),
                candidates: filtered.candidates,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();

    let report = FilterReport {
        thresholds,
        synthetic_recall_loss: training.synthetic_recall_loss.clone(),
        training,
        synthesis: synthetic.stats,
        footprint_sigma: sigma,
        footprint_peak: peak,
        estimate_source: "footprint",
        note: "defect samples come from a footprint model of painted defects, not from a detector in the loop, so the synthetic recall loss is a weaker safety estimate than in sieve run",
        maps: results,
    };
    new_maps.publish(&maps_dir).with_context(|| {
        format!(
            "failed to move the filtered maps into {}",
            maps_dir.display()
        )
    })?;
    let path = args.out.join("candidates.json");
    sieve_core::fsutil::write_atomic(&path, &serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("failed to write {}", path.display()))?;
    let suppressed: usize = report
        .maps
        .iter()
        .map(|m| {
            m.candidates
                .iter()
                .filter(|c| c.judgement.suppressed)
                .count()
        })
        .sum();
    let total: usize = report.maps.iter().map(|m| m.candidates.len()).sum();
    let inactive = if report.training.inactive_reason.is_some() {
        " (the filter is inactive, see the warning above)"
    } else {
        ""
    };
    println!(
        "filtered {} maps: {suppressed} of {total} candidates suppressed{inactive}; maps in {}, candidates in {}",
        report.maps.len(),
        maps_dir.display(),
        path.display()
    );
    println!(
        "synthetic recall loss (footprint model, a weaker estimate): {}",
        report
            .synthetic_recall_loss
            .share
            .map(|s| format!("{:.1} %", 100.0 * s))
            .unwrap_or_else(|| "n/a".into())
    );
    Ok(())
}

/// Estimates the blur and peak of the footprint model from the mined false alarms. Sigma is a
/// quarter of their median minor axis, at least 1 px, because a blurred point source cut near
/// its half height is about four sigma across. The peak is their median peak score, at least
/// halfway above `t`.
fn footprint_shape(false_alarms: &[Candidate], t: &Thresholds) -> (f32, f32) {
    let median = |attribute: Attribute| -> Option<f64> {
        let mut v: Vec<f64> = false_alarms
            .iter()
            .map(|c| c.descriptor.get(attribute))
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    };
    let sigma = median(Attribute::MinorAxis)
        .map(|m| (m / 4.0) as f32)
        .unwrap_or(4.0)
        .clamp(1.0, 32.0);
    let floor = t.pixel + 0.5 * (t.pixel - t.background);
    let peak = median(Attribute::PeakScore)
        .map(|p| p as f32)
        .unwrap_or(floor)
        .max(floor);
    (sigma, peak)
}
