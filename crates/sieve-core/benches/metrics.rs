//! Benchmarks of the exact metrics on the inputs that the Python comparison scripts time.
//!
//! - `auroc_exact/50000000`: AUROC of 50 million seeded pixel scores (2 % positives, standard
//!   normal, positives shifted by 1.5).
//! - `aupro/magnetic_tile_256`: AUPRO up to an FPR of 0.3 over the 630 test masks of
//!   magnetic_tile, resized to 256x256 by nearest neighbour, with empty masks for defect-free
//!   images. Each map is smoothed Gaussian noise (sigma 3) plus its mask blurred with sigma 4.
//!   The benchmark is skipped with a printed reason when the data set is absent.

mod data;

use std::path::Path;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use sieve_core::dataset::Dataset;
use sieve_core::imageio::load_mask;
use sieve_core::metrics::{aupro, auroc};
use sieve_core::{AnomalyMap, Mask};

use data::{pixel_scores, real_data_root};

const AUROC_SCORES: usize = 50_000_000;
const AUPRO_SIZE: usize = 256;
const FPR_LIMIT: f64 = 0.3;

fn auroc_bench(c: &mut Criterion) {
    // The allocator settings of the `sieve` binary, so the benchmark measures what it runs.
    sieve_core::pages::keep_freed_memory();
    let (scores, labels) = pixel_scores(AUROC_SCORES, 2);
    let mut group = c.benchmark_group("auroc_exact");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter(AUROC_SCORES), |b| {
        b.iter(|| auroc(black_box(&scores), &labels).expect("both classes"))
    });
    group.finish();
}

/// Resizes with nearest-neighbour sampling at pixel centres, as Pillow's `Image.NEAREST`.
fn resize_nearest(mask: &Mask, width: usize, height: usize) -> Mask {
    let mut resized = Mask::empty(width, height);
    for y in 0..height {
        let source_y = ((y as f64 + 0.5) * mask.height as f64 / height as f64) as usize;
        for x in 0..width {
            let source_x = ((x as f64 + 0.5) * mask.width as f64 / width as f64) as usize;
            resized.data[y * width + x] = mask.get(source_x, source_y);
        }
    }
    resized
}

/// Returns the test masks of an MVTec-layout folder at `size`x`size`, in split order.
fn test_masks(root: &Path, size: usize) -> Vec<Mask> {
    let samples = Dataset::open_test(root).expect("readable test split");
    samples
        .iter()
        .map(|sample| match &sample.mask {
            Some(path) => resize_nearest(&load_mask(path).expect("readable mask"), size, size),
            None => Mask::empty(size, size),
        })
        .collect()
}

/// Makes one map per mask, `0.3 + 0.08 * noise + 0.4 * blurred mask`, where `noise` is white
/// noise smoothed with sigma 3 and scaled to unit deviation.
fn fake_maps(masks: &[Mask], seed: u64) -> Vec<AnomalyMap> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    masks
        .iter()
        .map(|mask| {
            let (w, h) = (mask.width, mask.height);
            let white = (0..w * h)
                .map(|_| rng.sample::<f32, _>(StandardNormal))
                .collect();
            let noise = AnomalyMap::from_vec(w, h, white).gaussian_blur(3.0);
            let std = {
                let n = noise.data.len() as f64;
                let mean = noise.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let sum_sq: f64 = noise
                    .data
                    .iter()
                    .map(|&v| (f64::from(v) - mean).powi(2))
                    .sum();
                (sum_sq / n).sqrt()
            };
            let defect = mask.data.iter().map(|&d| f32::from(u8::from(d))).collect();
            let blurred = AnomalyMap::from_vec(w, h, defect).gaussian_blur(4.0);
            let data = noise
                .data
                .iter()
                .zip(&blurred.data)
                .map(|(&n, &m)| {
                    (0.3 + 0.08 * f64::from(n) / (std + 1e-12) + 0.4 * f64::from(m)) as f32
                })
                .collect();
            AnomalyMap::from_vec(w, h, data)
        })
        .collect()
}

fn aupro_bench(c: &mut Criterion) {
    // The allocator settings of the `sieve` binary, so the benchmark measures what it runs.
    sieve_core::pages::keep_freed_memory();
    let root = real_data_root().join("magnetic_tile");
    if !root.join("test").is_dir() {
        eprintln!(
            "skipping aupro/magnetic_tile_{AUPRO_SIZE}: {} not found (set SIEVE_TEST_DATA to the folder of the data sets)",
            root.display()
        );
        return;
    }
    let masks = test_masks(&root, AUPRO_SIZE);
    let maps = fake_maps(&masks, 3);
    let defective = masks.iter().filter(|m| m.count() > 0).count();
    let map_refs: Vec<&AnomalyMap> = maps.iter().collect();
    let mask_refs: Vec<&Mask> = masks.iter().collect();
    let value = aupro(&map_refs, &mask_refs, FPR_LIMIT).expect("defect and defect-free pixels");
    eprintln!(
        "aupro: {} test masks of {} ({defective} with defect pixels) at {AUPRO_SIZE}x{AUPRO_SIZE}, AUPRO {value:.4}",
        masks.len(),
        root.display()
    );

    let mut group = c.benchmark_group("aupro");
    group.sample_size(10);
    group.bench_function(format!("magnetic_tile_{AUPRO_SIZE}"), |b| {
        b.iter(|| aupro(black_box(&map_refs), &mask_refs, FPR_LIMIT).expect("valid input"))
    });
    group.finish();
}

criterion_group!(benches, auroc_bench, aupro_bench);
criterion_main!(benches);
