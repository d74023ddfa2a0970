//! Measures the flow detectors on the CPU. It times backbone feature caching, FastFlow's
//! training throughput with a per-scale breakdown of its forward and backward passes, CFlow's
//! training throughput in feature vectors per second, and the inference time per image of both.
//!
//! Run with
//! `cargo run --release -p sieve-detect --example flow_speed DATA [IMAGES] [BATCH] [STEPS]`.
//! DATA is a folder in the MVTec AD layout. The first IMAGES (default 48) images of its
//! `train/good` are used at 256×256, FastFlow in batches of BATCH images (default the FastFlow
//! default) and CFlow for STEPS optimiser steps per epoch (default 16) at its default batch. The thread count follows
//! `RAYON_NUM_THREADS`. As the `sieve` binary does, the example turns candle's separate pool
//! for elementwise operations off (`CANDLE_NUM_THREADS=1`) unless that variable is set.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use sieve_detect::backbone::{image_to_tensor, EfficientNetLite0};
use sieve_detect::cflow::{self, CFlowModel, CFlowParams};
use sieve_detect::detector::InputConfig;
use sieve_detect::fastflow::{
    fit_model, split_held_out, FastFlowModel, FastFlowParams, FeatureCache,
};
use sieve_detect::flow::{TrainEvent, TrainParams};

const TIMED_RUNS: usize = 3;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let args: Vec<String> = std::env::args().collect();
    let Some(data) = args.get(1).map(PathBuf::from) else {
        return Err(
            "usage: flow_speed DATA [IMAGES] [BATCH] [STEPS], DATA in the MVTec AD layout".into(),
        );
    };
    let images: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(48);
    let defaults = FastFlowParams::default();
    let batch: usize = args
        .get(3)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(defaults.train.batch_size);
    let cflow_steps: usize = args.get(4).map(|a| a.parse()).transpose()?.unwrap_or(16);
    println!("{} rayon threads", rayon::current_num_threads());

    let mut paths: Vec<PathBuf> = std::fs::read_dir(data.join("train/good"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    paths.truncate(images);
    let input = InputConfig::default();
    let backbone = EfficientNetLite0::load_default(&Device::Cpu)?;

    // Feature caching: image loading, then the backbone, one image at a time.
    let mut cache = FeatureCache::new();
    let (mut load_s, mut backbone_s) = (0.0, 0.0);
    let mut loaded = Vec::new();
    for path in &paths {
        let start = Instant::now();
        let image = sieve_core::imageio::load_rgb(path)?;
        load_s += start.elapsed().as_secs_f64();
        let start = Instant::now();
        let x = image_to_tensor(&image, input.width, input.height, &Device::Cpu)?;
        let features = backbone.features(&x)?;
        backbone_s += start.elapsed().as_secs_f64();
        cache.push(&features)?;
        loaded.push(image);
    }
    let n = paths.len() as f64;
    println!(
        "caching {} images: load {:.1} ms/image, backbone {:.1} ms/image, cache {:.1} MiB ({:.0} KiB/image, f16)",
        paths.len(),
        1e3 * load_s / n,
        1e3 * backbone_s / n,
        cache.bytes() as f64 / (1 << 20) as f64,
        cache.bytes() as f64 / n / 1024.0,
    );

    // Training throughput with the default settings, two epochs.
    let params = FastFlowParams {
        train: TrainParams {
            epochs: 2,
            batch_size: batch,
            ..defaults.train.clone()
        },
        ..defaults.clone()
    }
    .check()?;
    let (train_ids, held_out) = split_held_out(cache.len(), &params)?;
    let (model, log) = fit_model(
        &cache,
        &train_ids,
        &held_out,
        params.clone(),
        &Device::Cpu,
        &mut |event| {
            if let TrainEvent::Epoch(record) = event {
                println!(
                    "FastFlow epoch {}: train loss {:.4}, held-out loss {:?}, {:.2} images/s, {:.1} s",
                    record.epoch,
                    record.train_loss,
                    record.held_out_loss,
                    record.samples_per_second,
                    record.seconds
                );
            }
        },
    )?;
    println!(
        "training: batch {batch}, {} training and {} held-out images, best epoch {}",
        train_ids.len(),
        held_out.len(),
        log.best_epoch
    );

    // Per-scale breakdown on one batch as training runs it: the loss alone (forward pass), the
    // loss with its gradient (forward and backward pass), and the optimiser step.
    let ids: Vec<usize> = train_ids.iter().copied().take(batch).collect();
    let features = cache.batch(&ids, &Device::Cpu)?;
    for (scale, map) in features.iter().enumerate() {
        let (_, c, h, w) = map.dims4()?;
        let single = FastFlowModel::new(params.clone(), &[c], &Device::Cpu)?;
        let mut optimiser = AdamW::new(single.varmap().all_vars(), ParamsAdamW::default())?;
        let (mut forward, mut both, mut step) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..TIMED_RUNS {
            let start = Instant::now();
            single.loss_value(std::slice::from_ref(map))?;
            forward.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            let (_, grads) = single.loss_gradients(std::slice::from_ref(map))?;
            both.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            optimiser.step(&grads)?;
            step.push(start.elapsed().as_secs_f64());
        }
        let per_image = |v: Vec<f64>| 1e3 * median(v) / ids.len() as f64;
        println!(
            "scale {scale} ({c}x{h}x{w}): forward {:.1} ms/image, forward and backward {:.1} ms/image, optimiser {:.1} ms/batch",
            per_image(forward),
            per_image(both),
            1e3 * median(step)
        );
    }

    // Inference on one image at a time: backbone, flows and map, upsampling and smoothing.
    let (mut backbone_ms, mut flow_ms, mut map_ms) = (Vec::new(), Vec::new(), Vec::new());
    for image in loaded.iter().take(8) {
        let start = Instant::now();
        let x = image_to_tensor(image, input.width, input.height, &Device::Cpu)?;
        let features: Vec<Tensor> = backbone.features(&x)?;
        backbone_ms.push(1e3 * start.elapsed().as_secs_f64());
        let start = Instant::now();
        let grid = model
            .anomaly_maps(&features, input.width as usize, input.height as usize)?
            .swap_remove(0);
        flow_ms.push(1e3 * start.elapsed().as_secs_f64());
        let start = Instant::now();
        let _map = input.to_image_map(&grid, image.width(), image.height());
        map_ms.push(1e3 * start.elapsed().as_secs_f64());
    }
    println!(
        "FastFlow inference per image (median of {}): backbone {:.1} ms, flows and map {:.1} ms, upsampling and smoothing {:.1} ms",
        backbone_ms.len(),
        median(backbone_ms),
        median(flow_ms),
        median(map_ms)
    );

    let model = time_cflow(&cache, cflow_steps)?;
    let mut flow_ms = Vec::new();
    for image in loaded.iter().take(8) {
        let x = image_to_tensor(image, input.width, input.height, &Device::Cpu)?;
        let features: Vec<Tensor> = backbone.features(&x)?;
        let start = Instant::now();
        let _grid = model.anomaly_maps(&features, input.width as usize, input.height as usize)?;
        flow_ms.push(1e3 * start.elapsed().as_secs_f64());
    }
    println!(
        "CFlow inference per image (median of {}): flows and map {:.1} ms, backbone and smoothing as FastFlow",
        flow_ms.len(),
        median(flow_ms)
    );
    Ok(())
}

/// Trains CFlow with its default settings for two epochs of `steps` optimiser steps each and
/// prints the throughput per epoch.
fn time_cflow(
    cache: &FeatureCache,
    steps: usize,
) -> Result<CFlowModel, Box<dyn std::error::Error>> {
    let defaults = CFlowParams::default();
    let params = CFlowParams {
        fibers_per_epoch: steps * defaults.train.batch_size,
        train: TrainParams {
            epochs: 2,
            ..defaults.train.clone()
        },
        ..defaults.clone()
    }
    .check()?;
    let (train_ids, held_out) = cflow::split_held_out(cache.len(), &params)?;
    let (model, _) = cflow::fit_model(
        cache,
        &train_ids,
        &held_out,
        params,
        &Device::Cpu,
        &mut |event| {
            if let TrainEvent::Epoch(record) = event {
                println!(
                "CFlow epoch {}: train loss {:.4}, held-out loss {:?}, {:.0} vectors/s per scale, {:.1} s",
                record.epoch,
                record.train_loss,
                record.held_out_loss,
                record.samples_per_second,
                record.seconds
            );
            }
        },
    )?;
    println!(
        "CFlow training: {steps} steps of {} vectors per scale and epoch, {} held-out vectors per scale",
        defaults.train.batch_size, defaults.held_out_fibers
    );
    Ok(model)
}
