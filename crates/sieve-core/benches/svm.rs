//! Benchmarks of the SVM false-alarm classifier at one fixed C and gamma, the work of
//! scikit-learn's `SVC(kernel='rbf', C=1, gamma='scale', probability=True)`:
//!
//! - `svm_fit_proba/<n>`: standardise, fit Platt's sigmoid on 5-fold out-of-fold decision
//!   values, and fit the SVM on all `n` samples. The folds run on the rayon thread pool
//!   (`RAYON_NUM_THREADS` sets its size).
//! - `svm_predict_proba/10000`: false-alarm probabilities of 10,000 samples from a model fitted
//!   on 2,000, one sample at a time on the calling thread.
//!
//! The samples have 4 features and overlapping classes, as in the Python comparison script.

mod data;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sieve_core::svm::{SvmParams, ValidSvmParams};

use data::region_samples;

/// C = 1, and gamma = 1 / n_features, which is scikit-learn's `gamma='scale'` on standardised
/// features. One grid point means no grid search.
fn fixed_params() -> ValidSvmParams {
    SvmParams {
        c_grid: vec![1.0],
        gamma_grid: vec![1.0],
        ..SvmParams::default()
    }
    .check()
    .expect("valid SVM parameters")
}

fn samples(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<bool>) {
    let (rows, labels) = region_samples(n, seed);
    (rows.iter().map(|row| row.to_vec()).collect(), labels)
}

fn svm_benches(c: &mut Criterion) {
    // The allocator settings of the `sieve` binary, so the benchmark measures what it runs.
    sieve_core::pages::keep_freed_memory();
    let params = fixed_params();

    let mut group = c.benchmark_group("svm_fit_proba");
    group.sample_size(10);
    for n in [2000usize, 10_000] {
        let (features, labels) = samples(n, 1);
        let model = params.fit(&features, &labels).expect("both classes");
        eprintln!(
            "svm_fit_proba/{n}: {} support vectors, {} solver iterations, {} rayon threads",
            model.support_vectors().len(),
            model.training().iterations,
            rayon::current_num_threads()
        );
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| params.fit(black_box(&features), &labels))
        });
    }
    group.finish();

    let (features, labels) = samples(2000, 1);
    let model = params.fit(&features, &labels).expect("both classes");
    let (queries, _) = samples(10_000, 2);
    c.benchmark_group("svm_predict_proba").bench_function(
        BenchmarkId::from_parameter(queries.len()),
        |b| {
            b.iter(|| {
                black_box(&queries)
                    .iter()
                    .map(|x| model.probability(x))
                    .collect::<Vec<f64>>()
            })
        },
    );
}

criterion_group!(benches, svm_benches);
criterion_main!(benches);
