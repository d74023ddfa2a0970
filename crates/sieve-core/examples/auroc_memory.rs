//! Computes the exact AUROC of 50 million seeded pixel scores once (the input of the
//! `auroc_exact/50000000` benchmark) and prints the seconds it took and the peak resident memory
//! of the process, inputs included.
//!
//! Run with `cargo run --release -p sieve-core --example auroc_memory [COUNT]`. Peak memory is
//! `VmHWM` from `/proc/self/status`, so it is printed on Linux only.

#[path = "../benches/data/mod.rs"]
mod data;

use std::time::Instant;

use sieve_core::metrics::auroc;

fn main() {
    let count: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .unwrap_or_else(|_| panic!("COUNT must be a whole number of scores, got {arg:?}")),
        None => 50_000_000,
    };

    let (scores, labels) = data::pixel_scores(count, 2);
    let input_peak = peak_resident_bytes();

    let start = Instant::now();
    let value = auroc(&scores, &labels).expect("both classes are present");
    let seconds = start.elapsed().as_secs_f64();

    println!("scores: {count}");
    println!("auroc: {value:.6}");
    println!("seconds: {seconds:.3}");
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    match (input_peak, peak_resident_bytes()) {
        (Some(input), Some(peak)) => {
            println!("peak RSS after generating the input: {:.1} MiB", mib(input));
            println!("peak RSS: {:.1} MiB", mib(peak));
        }
        _ => println!("peak RSS: unavailable (needs /proc/self/status)"),
    }
}

/// Returns `VmHWM`, the peak resident set size of this process, in bytes.
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
