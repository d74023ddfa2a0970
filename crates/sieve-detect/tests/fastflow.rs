//! FastFlow on the real EfficientNet-Lite0 backbone and real images of the tire data set:
//! fitting with a held-out share, out-of-fold listing, maps at the original image size, and a
//! save and load that keeps the maps.
//!
//! The tire images are read from the folder that `SIEVE_TEST_DATA` names, or else from the
//! shared data folder beside the repository. Without them the test is skipped with a printed
//! reason.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use sieve_detect::backbone::EfficientNetLite0;
use sieve_detect::detector::{Detector, FastFlowDetector, InputConfig};
use sieve_detect::fastflow::FastFlowParams;
use sieve_detect::flow::{TrainEvent, TrainParams};

/// Returns the first `count` defect-free training images of a real data set, or `None` with a
/// printed reason.
fn real_images(name: &str, count: usize) -> Option<Vec<PathBuf>> {
    let root = std::env::var_os("SIEVE_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let folder = root.join(name).join("train/good");
    let Ok(entries) = std::fs::read_dir(&folder) else {
        // Written to the real stderr, which the test harness does not capture.
        let _ = writeln!(
            std::io::stderr(),
            "skipping: real data set {} not found",
            folder.display()
        );
        return None;
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths.truncate(count);
    Some(paths)
}

#[test]
fn fastflow_fits_saves_and_loads_on_tire() {
    let Some(paths) = real_images("mvtec3d_tire", 6) else {
        return;
    };
    let input = InputConfig {
        width: 128,
        height: 128,
        ..InputConfig::default()
    };
    let params = FastFlowParams {
        steps: 2,
        train: TrainParams {
            epochs: 2,
            batch_size: 2,
            ..TrainParams::default()
        },
        ..FastFlowParams::default()
    };
    let backbone = EfficientNetLite0::load_default(&Device::Cpu).unwrap();
    let mut epochs = Vec::new();
    let detector = FastFlowDetector::fit(
        backbone,
        &paths,
        input.clone(),
        &params,
        Device::Cpu,
        &|_| {},
        &mut |event| {
            if let TrainEvent::Epoch(record) = event {
                epochs.push(record.clone());
            }
        },
    )
    .unwrap();

    // round(0.2 * 6) = 1 image held out, scored without exclusion.
    let out_of_fold = detector.out_of_fold();
    assert_eq!(out_of_fold.len(), 1);
    assert_eq!(out_of_fold[0].exclude, None);
    assert_eq!(detector.fit.held_out, vec![out_of_fold[0].index]);
    assert_eq!(detector.fit.images, 6);
    assert_eq!(epochs.len(), detector.fit.log.epochs.len());
    assert!(epochs.iter().all(|e| e.held_out_loss.is_some()));
    // All 6 images are cached, held-out one included: 24x32x32 + 40x16x16 + 112x8x8 = 41,984
    // values each at 128x128, 2 bytes each in f16.
    assert_eq!(
        detector.fit.cache_mib,
        6.0 * 2.0 * 41_984.0 / (1 << 20) as f64
    );

    let image = sieve_core::imageio::load_rgb(&paths[out_of_fold[0].index]).unwrap();
    let map = detector.anomaly_map(&image, None).unwrap();
    assert_eq!(
        (map.width, map.height),
        (image.width() as usize, image.height() as usize)
    );
    // Each scale's map is -exp(-0.5 mean z^2), in [-1, 0); smoothing keeps the range.
    assert!(map.data.iter().all(|&v| (-1.0..0.0).contains(&v)));
    assert!(detector.anomaly_map(&image, Some(0)).is_err());

    let dir = tempfile::tempdir().unwrap();
    detector.save(dir.path()).unwrap();
    let backbone = EfficientNetLite0::load_default(&Device::Cpu).unwrap();
    let loaded = FastFlowDetector::load(backbone, dir.path(), input, &Device::Cpu).unwrap();
    assert_eq!(loaded.fit, detector.fit);
    assert_eq!(loaded.anomaly_map(&image, None).unwrap(), map);
}
