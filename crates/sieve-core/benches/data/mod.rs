//! Seeded data for the sieve-core benchmarks and the AUROC memory example: anomaly maps, region
//! samples and pixel scores. They follow the recipes of the Python comparison scripts
//! (scikit-image, scikit-learn, torchmetrics, anomalib), so that both sides time the same kind
//! of input. The draws come from ChaCha8 instead of NumPy's PCG64, so the values differ from
//! the scripts' while their distributions are the same.

// Each benchmark target compiles this module and uses only part of it.
#![allow(dead_code)]

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Normal, StandardNormal};
use sieve_core::mapio::read_map;
use sieve_core::AnomalyMap;

/// Seed of every generated map, the seed of the Python scripts' maps too.
pub const MAP_SEED: u64 = 0;

/// Number of maps per size, as many as the Python scripts write.
pub fn map_count(size: usize) -> usize {
    if size >= 1024 {
        100
    } else {
        1000
    }
}

/// Anomaly maps of `size`x`size` pixels, with a line naming where they came from.
pub struct BenchMaps {
    pub maps: Vec<AnomalyMap>,
    pub source: String,
}

/// Reads the seeded `.npy` maps of the Python scripts from `$PEERS_ROOT/data/maps<size>` with
/// sieve's map reader, or generates [`map_count`] maps with the same recipe when that folder is
/// absent.
pub fn bench_maps(size: usize) -> BenchMaps {
    if let Some(folder) = script_map_folder(size) {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("failed to list {}: {e}", folder.display()))
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "npy"))
            .collect();
        paths.sort();
        let maps: Vec<AnomalyMap> = paths
            .iter()
            .map(|path| {
                read_map(path)
                    .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
                    .0
            })
            .collect();
        assert!(!maps.is_empty(), "{} has no .npy maps", folder.display());
        let source = format!("{} maps read from {}", maps.len(), folder.display());
        return BenchMaps { maps, source };
    }

    let count = map_count(size);
    let maps = (0..count)
        .map(|index| generate_map(size, MAP_SEED, index as u64))
        .collect();
    let source = format!(
        "{count} maps generated from seed {MAP_SEED} \
         (set PEERS_ROOT to read the Python scripts' own .npy maps)"
    );
    BenchMaps { maps, source }
}

fn script_map_folder(size: usize) -> Option<PathBuf> {
    let root = std::env::var_os("PEERS_ROOT")?;
    let folder = Path::new(&root).join("data").join(format!("maps{size}"));
    folder.is_dir().then_some(folder)
}

/// Makes one map: white noise smoothed with sigma `3 * size / 256` and scaled to a deviation of
/// 0.085 around 0.25, plus up to four anisotropic Gaussian blobs of amplitude 0.3-0.75, clipped
/// to `0..=1`.
pub fn generate_map(size: usize, seed: u64, index: u64) -> AnomalyMap {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((size as u64) << 32) | index);
    let scale = size as f64 / 256.0;

    let white: Vec<f32> = (0..size * size)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let mut map = AnomalyMap::from_vec(size, size, white).gaussian_blur((3.0 * scale) as f32);
    let std = population_std(&map.data);
    for v in map.data.iter_mut() {
        *v = (0.25 + 0.085 * f64::from(*v) / (std + 1e-12)) as f32;
    }

    let blobs = rng.gen_range(0..=4);
    for _ in 0..blobs {
        let cy = rng.gen_range(0.05..0.95) * size as f64;
        let cx = rng.gen_range(0.05..0.95) * size as f64;
        let r1 = rng.gen_range(3.0..22.0) * scale;
        let r2 = r1 * rng.gen_range(0.25..1.0);
        let theta: f64 = rng.gen_range(0.0..PI);
        let amplitude = rng.gen_range(0.3..0.75);
        let (cos, sin) = (theta.cos(), theta.sin());
        for (i, v) in map.data.iter_mut().enumerate() {
            let (dy, dx) = ((i / size) as f64 - cy, (i % size) as f64 - cx);
            let u = (cos * dx + sin * dy) / r1;
            let w = (-sin * dx + cos * dy) / r2;
            *v += (amplitude * (-0.5 * (u * u + w * w)).exp()) as f32;
        }
    }
    for v in map.data.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    map
}

fn population_std(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    variance.sqrt()
}

/// Makes region samples: rows of `[ln(area), mean score, fill, distance from the centre]`, and
/// labels with `true` for a false alarm (60 % of the rows). The classes overlap, so an SVM keeps
/// a realistic number of support vectors.
pub fn region_samples(n: usize, seed: u64) -> (Vec<[f64; 4]>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = |mean: f64, std: f64| Normal::new(mean, std).expect("finite, positive std");
    let beta = |a: f64, b: f64| Beta::new(a, b).expect("positive shape parameters");

    let mut rows = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let false_alarm = rng.gen::<f64>() < 0.6;
        let row = if false_alarm {
            [
                normal(2.3, 1.0).sample(&mut rng),
                normal(0.54, 0.04).sample(&mut rng),
                beta(4.0, 3.0).sample(&mut rng),
                rng.gen::<f64>(),
            ]
        } else {
            [
                normal(4.8, 1.3).sample(&mut rng),
                normal(0.66, 0.08).sample(&mut rng),
                beta(5.0, 3.0).sample(&mut rng),
                rng.gen::<f64>().powf(1.3),
            ]
        };
        rows.push(row);
        labels.push(false_alarm);
    }
    (rows, labels)
}

/// Makes pixel scores: standard normal `f32` scores, 2 % positives, positives shifted up by 1.5.
pub fn pixel_scores(n: usize, seed: u64) -> (Vec<f32>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scores = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let positive = rng.gen::<f32>() < 0.02;
        let score: f32 = rng.sample(StandardNormal);
        scores.push(if positive { score + 1.5 } else { score });
        labels.push(positive);
    }
    (scores, labels)
}

/// Root of the real data sets: `$SIEVE_TEST_DATA`, or `../shared/data` beside the repository.
pub fn real_data_root() -> PathBuf {
    std::env::var_os("SIEVE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}
