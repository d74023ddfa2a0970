//! Times PatchCore coreset selection and memory bank search (Roth et al., "Towards Total
//! Recall in Industrial Anomaly Detection", CVPR 2022) on seeded synthetic embeddings.
//!
//! Run with `cargo run --release -p sieve-detect --example patchcore_speed [ROWS] [clustered]`.
//! ROWS (default 100000) training patches of 152 values are drawn from a standard normal, which
//! has no cluster structure and so is the slowest case for the coreset's triangle-inequality
//! test. With `clustered`, they are drawn around 1,000 random centres instead (spread 0.25 per
//! value), a rough stand-in for the clustered features of one product.

use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sieve_detect::patchcore::{greedy_coreset, PatchCoreBuilder, PatchCoreParams};

const DIM: usize = 152;

fn gaussian(count: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count * DIM)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = match std::env::args().nth(1) {
        Some(text) => text.parse()?,
        None => 100_000,
    };
    let threads = rayon::current_num_threads();
    println!("{threads} rayon threads");

    let mut training = gaussian(rows, 1);
    if std::env::args().nth(2).as_deref() == Some("clustered") {
        let centres = gaussian(1_000, 4);
        for (i, row) in training.chunks_exact_mut(DIM).enumerate() {
            let centre = &centres[(i % 1_000) * DIM..(i % 1_000 + 1) * DIM];
            for (value, c) in row.iter_mut().zip(centre) {
                *value = c + 0.25 * *value;
            }
        }
    }
    let params = PatchCoreParams::default();
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
