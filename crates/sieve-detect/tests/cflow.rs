//! CFlow on the real EfficientNet-Lite0 backbone and real images of the tire data set:
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
use sieve_detect::cflow::CFlowParams;
use sieve_detect::detector::{CFlowDetector, Detector, InputConfig};
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
fn cflow_fits_saves_and_loads_on_tire() {
    let Some(paths) = real_images("mvtec3d_tire", 6) else {
        return;
    };
    let input = InputConfig {
        width: 128,
        height: 128,
        ..InputConfig::default()
    };
    let params = CFlowParams {
        steps: 2,
        condition_dim: 16,
        fibers_per_epoch: 256,
        held_out_fibers: 128,
        train: TrainParams {
            epochs: 3,
            batch_size: 64,
            learning_rate: 1e-3,
            ..TrainParams::default()
        },
        ..CFlowParams::default()
    };
    let backbone = EfficientNetLite0::load_default(&Device::Cpu).unwrap();
    let mut epochs = Vec::new();
    let detector = CFlowDetector::fit(
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
    // The features of real images are far from N(0, I), so training must lower the loss.
    let first = epochs[0].train_loss;
    let last = epochs[epochs.len() - 1].train_loss;
    assert!(last < first, "training loss {first} -> {last}");
    assert_eq!(detector.fit.references.len(), 3);

    let image = sieve_core::imageio::load_rgb(&paths[out_of_fold[0].index]).unwrap();
    let map = detector.anomaly_map(&image, None).unwrap();
    assert_eq!(
        (map.width, map.height),
        (image.width() as usize, image.height() as usize)
    );
    // Each scale's map is -exp(l - r) < 0, and the sum of 3 scales stays negative.
    assert!(map.data.iter().all(|v| v.is_finite()));
    assert!(map.data.iter().all(|&v| v < 0.0));
    assert!(detector.anomaly_map(&image, Some(0)).is_err());

    let dir = tempfile::tempdir().unwrap();
    detector.save(dir.path()).unwrap();
    let backbone = EfficientNetLite0::load_default(&Device::Cpu).unwrap();
    let loaded = CFlowDetector::load(backbone, dir.path(), input, &Device::Cpu).unwrap();
    assert_eq!(loaded.fit, detector.fit);
    assert_eq!(loaded.anomaly_map(&image, None).unwrap(), map);
}
