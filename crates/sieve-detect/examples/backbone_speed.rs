//! Measures the EfficientNet-Lite0 feature forward pass (blocks 0 to 10) at 256×256 on the CPU.
//!
//! Run with `RAYON_NUM_THREADS=2 cargo run --release -p sieve-detect --example backbone_speed`;
//! the thread count follows `RAYON_NUM_THREADS`. The input is zeros, since the run time of the
//! network does not depend on pixel values.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use sieve_detect::backbone::EfficientNetLite0;

const SIZE: usize = 256;
const WARMUP_RUNS: usize = 3;
const TIMED_RUNS: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = EfficientNetLite0::load_default(&Device::Cpu)?;

    for batch in [1, 8] {
        let x = Tensor::zeros((batch, 3, SIZE, SIZE), DType::F32, &Device::Cpu)?;
        for _ in 0..WARMUP_RUNS {
            model.features(&x)?;
        }

        let mut per_image_ms = Vec::with_capacity(TIMED_RUNS);
        for _ in 0..TIMED_RUNS {
            let start = Instant::now();
            model.features(&x)?;
            per_image_ms.push(start.elapsed().as_secs_f64() * 1e3 / batch as f64);
        }
        per_image_ms.sort_by(f64::total_cmp);

        println!(
            "batch {batch}: per image median {:.1} ms, min {:.1} ms, max {:.1} ms over {TIMED_RUNS} runs",
            per_image_ms[TIMED_RUNS / 2],
            per_image_ms[0],
            per_image_ms[TIMED_RUNS - 1],
        );
    }
    Ok(())
}
