//! Times PatchCore coreset selection and memory bank search (Roth et al., "Towards Total
//! Recall in Industrial Anomaly Detection", CVPR 2022) on seeded synthetic embeddings.
//!
//! Run with
//! `cargo run --release -p sieve-detect --example patchcore_speed [ROWS|DATA] [KIND] [RATIO]`.
//! ROWS (default 100000) training patches of 152 values are drawn from a standard normal, which
//! has no cluster structure and so is the slowest case for the coreset's triangle-inequality
//! test. With KIND `clustered`, they are drawn around 1,000 random centres instead (spread 0.25
//! per value), a rough stand-in for the clustered features of one product. When the first
//! argument is a folder in the MVTec AD layout, the patches are the real embeddings of the
//! first 100 images of its `train/good` at 256×256 (102,400 patches), and KIND is ignored.
//! RATIO is the share of patches the coreset keeps (default PatchCore's default).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sieve_detect::backbone::EfficientNetLite0;
use sieve_detect::detector::{InputConfig, PatchCoreDetector};
use sieve_detect::patchcore::{greedy_coreset, PatchCoreBuilder, PatchCoreParams};

const DIM: usize = 152;

fn gaussian(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count * DIM)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

/// Embeds the first `REAL_IMAGES` images of `dir/train/good`, sorted by name, at 256×256.
fn real_embeddings(dir: &Path) -> Result<(usize, Vec<f32>), Box<dyn std::error::Error>> {
    const REAL_IMAGES: usize = 100;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("train/good"))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    paths.truncate(REAL_IMAGES);
    let backbone = EfficientNetLite0::load_default(&Device::Cpu)?;
    let input = InputConfig::default();
    let mut rows = Vec::new();
    for path in &paths {
        let image = image::open(path)?.to_rgb32f();
        let (embedding, _) =
            PatchCoreDetector::embed_image(&backbone, &input, &Device::Cpu, &image, 3)?;
        if embedding.dim(1)? != DIM {
            return Err(format!("embedding width {}, expected {DIM}", embedding.dim(1)?).into());
        }
        rows.extend(embedding.flatten_all()?.to_vec1::<f32>()?);
    }
    println!(
        "{} patches from {} images of {}",
        rows.len() / DIM,
        paths.len(),
        dir.display()
    );
    Ok((rows.len() / DIM, rows))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let first = std::env::args().nth(1);
    let data = first
        .as_deref()
        .map(PathBuf::from)
        .filter(|path| path.is_dir());
    let threads = rayon::current_num_threads();
    println!("{threads} rayon threads");

    let (rows, mut training) = match &data {
        Some(dir) => real_embeddings(dir)?,
        None => {
            let rows: usize = match &first {
                Some(text) => text.parse()?,
                None => 100_000,
            };
            (rows, gaussian(rows, 1))
        }
    };
    if data.is_none() && std::env::args().nth(2).as_deref() == Some("clustered") {
        let centres = gaussian(1_000, 4);
        for (i, row) in training.chunks_exact_mut(DIM).enumerate() {
            let centre = &centres[(i % 1_000) * DIM..(i % 1_000 + 1) * DIM];
            for (value, c) in row.iter_mut().zip(centre) {
                *value = c + 0.25 * *value;
            }
        }
    }
    let ratio: f64 = match std::env::args().nth(3) {
        Some(text) => text.parse()?,
        None => PatchCoreParams::default().coreset_ratio,
    };
    let params = PatchCoreParams {
        coreset_ratio: ratio,
        ..PatchCoreParams::default()
    };
    let size = params.check()?.coreset_size(rows);
    for projection_dim in [params.projection_dim, DIM] {
        let start = Instant::now();
        let selection = greedy_coreset(&training, DIM, size, projection_dim, params.seed)?;
        println!(
            "coreset: {rows} x {DIM} -> {} rows, projection_dim {projection_dim}: {:.2} s",
            selection.indices.len(),
            start.elapsed().as_secs_f64()
        );
    }

    let bank_rows = 7 * 1_024;
    let grid = (32, 32);
    let mut builder = PatchCoreBuilder::new(DIM, grid)?;
    for (image_id, image) in gaussian(bank_rows, 2)
        .chunks(grid.0 * grid.1 * DIM)
        .enumerate()
    {
        if image.len() == grid.0 * grid.1 * DIM {
            builder.push_rows(image_id as u32, image)?;
        }
    }
    let full_bank = PatchCoreParams {
        coreset_ratio: 1.0,
        ..params
    };
    let model = builder.build(&full_bank.check()?)?;
    let queries = Tensor::from_vec(gaussian(1_024, 3), (1_024, DIM), &Device::Cpu)?;
    model.score(&queries, None)?;
    let repeats = 20;
    let start = Instant::now();
    for image_id in 0..repeats {
        model.score(&queries, Some(image_id))?;
    }
    println!(
        "search: 1024 queries against {} x {DIM}: {:.1} ms per image",
        model.bank_image().len(),
        start.elapsed().as_secs_f64() * 1e3 / repeats as f64
    );
    Ok(())
}
