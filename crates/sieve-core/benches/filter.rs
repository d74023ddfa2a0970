//! Benchmarks of the false-alarm filter on one anomaly map at a time, as `sieve predict` runs it.
//! `filter_map/<size>` times [`FalseAlarmFilter::apply`]: threshold, 8-connected labelling,
//! descriptors, SVM probabilities and suppression. `label`, `describe`, `svm_proba` and
//! `suppress` time its phases. Everything runs on the calling thread.
//!
//! Each iteration takes the next map of a fixed set, so a reported time is the mean over the
//! set. The maps are those of the Python comparison scripts when `$PEERS_ROOT/data/maps<size>`
//! exists, and maps generated with their recipe otherwise. The first lines printed name the
//! source.
//! The filter classifies on four features (area, mean score, fill, distance from the centre)
//! and is trained on 2,000 seeded samples at C = 1 and gamma = 1/4, which is scikit-learn's
//! `gamma='scale'` on standardised features. It suppresses at a false-alarm probability of 0.5,
//! inside an envelope of the false-alarm samples, without the defect envelope.

mod data;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use image::{Rgb, Rgb32FImage};
use sieve_core::filter::{
    suppress, Envelope, FalseAlarmFilter, Suppression, ThresholdSource, Thresholds,
};
use sieve_core::regions::{
    candidates, describe_components, label_components, Attribute, Candidate, Components,
    DescribeParams, Descriptor,
};
use sieve_core::svm::SvmParams;
use sieve_core::AnomalyMap;

use data::{bench_maps, region_samples};

/// Pixel threshold of the Python comparison script.
const PIXEL_THRESHOLD: f32 = 0.5;
/// Level of the maps' noise background.
const BACKGROUND: f32 = 0.25;
/// The Python comparison script suppresses a region at a false-alarm probability of 0.5 or more.
const P_CUT: f64 = 0.5;
const FEATURES: [Attribute; 4] = [
    Attribute::Area,
    Attribute::MeanScore,
    Attribute::Fill,
    Attribute::DistCenter,
];

/// Trains the filter on 2,000 seeded region samples.
fn trained_filter() -> FalseAlarmFilter {
    let (rows, labels) = region_samples(2000, 1);
    let descriptors: Vec<Descriptor> = rows
        .iter()
        .map(|row| {
            let mut descriptor = Descriptor::default();
            let values = [row[0].exp(), row[1], row[2], row[3]];
            for (attribute, value) in FEATURES.iter().zip(values) {
                descriptor.set(*attribute, value);
            }
            descriptor
        })
        .collect();
    let vectors: Vec<Vec<f64>> = descriptors.iter().map(|d| d.vector(&FEATURES)).collect();
    let svm = SvmParams {
        c_grid: vec![1.0],
        gamma_grid: vec![1.0],
        ..SvmParams::default()
    }
    .check()
    .expect("valid SVM parameters")
    .fit(&vectors, &labels)
    .expect("both classes have samples");

    let false_alarms: Vec<Descriptor> = descriptors
        .iter()
        .zip(&labels)
        .filter(|(_, &false_alarm)| false_alarm)
        .map(|(d, _)| *d)
        .collect();
    FalseAlarmFilter {
        features: FEATURES.to_vec(),
        svm: Some(svm),
        envelope: Envelope::fit(&false_alarms, &FEATURES, 0.5, 99.5),
        defect_envelope: None,
        thresholds: Thresholds {
            pixel: PIXEL_THRESHOLD,
            image: PIXEL_THRESHOLD,
            background: BACKGROUND,
            pixel_quantile: 0.995,
            image_quantile: 0.99,
            source: ThresholdSource::Manual,
        },
        p_cut: P_CUT,
        grow: 3,
        describe: DescribeParams::default(),
        inactive_reason: None,
    }
}

/// Returns the suppressions `apply` would make for `found`.
fn suppressions(filter: &FalseAlarmFilter, found: &[Candidate]) -> Vec<Suppression> {
    found
        .iter()
        .filter_map(|candidate| {
            let judgement = filter.judge(candidate);
            judgement.suppressed.then(|| Suppression {
                label: candidate.label,
                bbox: candidate.bbox,
                peak: candidate.descriptor.get(Attribute::PeakScore) as f32,
                probability: judgement.probability.unwrap_or(0.0),
            })
        })
        .collect()
}

fn filter_benches(c: &mut Criterion) {
    // The allocator settings of the `sieve` binary, so the benchmark measures what it runs.
    sieve_core::pages::keep_freed_memory();
    let filter = trained_filter();
    let svm = filter.svm.as_ref().expect("trained");
    eprintln!(
        "filter: SVM with {} support vectors, C = {}, gamma = {}",
        svm.support_vectors().len(),
        svm.c(),
        svm.gamma()
    );

    for size in [256usize, 1024] {
        let loaded = bench_maps(size);
        let maps: Vec<AnomalyMap> = loaded.maps;
        // The image only feeds the colour attributes and `contrast`, whose cost does not
        // depend on the pixel values.
        let image = Rgb32FImage::from_pixel(size as u32, size as u32, Rgb([0.5; 3]));

        let components: Vec<Components> = maps
            .iter()
            .map(|map| label_components(map, PIXEL_THRESHOLD))
            .collect();
        let found: Vec<Vec<Candidate>> = maps
            .iter()
            .zip(&components)
            .map(|(map, components)| describe_components(components, map, &image, &filter.describe))
            .collect();
        let suppressed: Vec<Vec<Suppression>> = found
            .iter()
            .map(|found| suppressions(&filter, found))
            .collect();
        let candidate_count: usize = found.iter().map(Vec::len).sum();
        let suppressed_count: usize = suppressed.iter().map(Vec::len).sum();
        eprintln!(
            "filter {size}x{size}: {}; {:.2} candidates and {:.2} suppressed per map",
            loaded.source,
            candidate_count as f64 / maps.len() as f64,
            suppressed_count as f64 / maps.len() as f64
        );
        let id = BenchmarkId::from_parameter(size);

        let mut next = (0..maps.len()).cycle();
        c.benchmark_group("filter_map")
            .bench_function(id.clone(), |b| {
                b.iter(|| {
                    let i = next.next().expect("cycle never ends");
                    filter.apply(black_box(&maps[i]), &image)
                })
            });

        let mut next = (0..maps.len()).cycle();
        c.benchmark_group("label").bench_function(id.clone(), |b| {
            b.iter(|| {
                let i = next.next().expect("cycle never ends");
                label_components(black_box(&maps[i]), PIXEL_THRESHOLD)
            })
        });

        let mut next = (0..maps.len()).cycle();
        c.benchmark_group("describe")
            .bench_function(id.clone(), |b| {
                b.iter(|| {
                    let i = next.next().expect("cycle never ends");
                    describe_components(
                        black_box(&components[i]),
                        &maps[i],
                        &image,
                        &filter.describe,
                    )
                })
            });

        let mut next = (0..maps.len()).cycle();
        c.benchmark_group("svm_proba")
            .bench_function(id.clone(), |b| {
                b.iter(|| {
                    let i = next.next().expect("cycle never ends");
                    black_box(&found[i])
                        .iter()
                        .map(|candidate| filter.judge(candidate))
                        .collect::<Vec<_>>()
                })
            });

        let mut next = (0..maps.len()).cycle();
        c.benchmark_group("suppress").bench_function(id, |b| {
            b.iter(|| {
                let i = next.next().expect("cycle never ends");
                let mut filtered = black_box(&maps[i]).clone();
                suppress(
                    &mut filtered,
                    &components[i].labels,
                    &suppressed[i],
                    PIXEL_THRESHOLD,
                    BACKGROUND,
                    filter.grow,
                );
                filtered
            })
        });

        // `candidates` is what `apply` calls; check once that the phases above match it.
        let (first_labels, first_found) =
            candidates(&maps[0], &image, PIXEL_THRESHOLD, &filter.describe);
        assert_eq!(first_labels, components[0].labels);
        assert_eq!(first_found, found[0]);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = filter_benches
}
criterion_main!(benches);
