//! Fitting the detector that `sieve run --detector` names, with progress bars.

use std::path::PathBuf;

use anyhow::bail;
use candle_core::Device;
use sieve_detect::backbone::EfficientNetLite0;
use sieve_detect::cflow::CFlowParams;
use sieve_detect::detector::{
    CFlowDetector, Detector, FastFlowDetector, InputConfig, PatchCoreDetector,
};
use sieve_detect::fastflow::{FastFlowMap, FastFlowParams};
use sieve_detect::flow::{StopReason, TrainEvent, TrainLog, TrainParams};
use sieve_detect::patchcore::PatchCoreParams;

use crate::args::{parse_device, DetectorKind, RunArgs};
use crate::progress::Bars;

/// Checked settings of the detector to fit.
pub enum DetectorSettings {
    PatchCore(PatchCoreParams),
    FastFlow {
        params: FastFlowParams,
        device: Device,
    },
    CFlow {
        params: CFlowParams,
        device: Device,
    },
}

impl DetectorSettings {
    /// Turns the detector options of `sieve run` into checked settings.
    pub fn from_args(args: &RunArgs) -> anyhow::Result<Self> {
        let seed = args.filter.seed;
        match args.detector {
            DetectorKind::Patchcore => {
                if args.flow.device.trim() != "cpu" {
                    bail!(
                        "--device {} applies to --detector fastflow and cflow only; PatchCore runs \
                         on the CPU, so drop --device",
                        args.flow.device
                    );
                }
                if args.flow.fibers_per_epoch.is_some() {
                    bail!("--fibers-per-epoch applies to --detector cflow only; drop it");
                }
                if args.flow.fastflow_map.is_some() {
                    bail!("--fastflow-map applies to --detector fastflow only; drop it");
                }
                let params = PatchCoreParams {
                    coreset_ratio: args.coreset_ratio,
                    seed,
                    ..PatchCoreParams::default()
                };
                params.check()?;
                Ok(Self::PatchCore(params))
            }
            DetectorKind::Fastflow => {
                if args.flow.fibers_per_epoch.is_some() {
                    bail!("--fibers-per-epoch applies to --detector cflow only; drop it");
                }
                let defaults = FastFlowParams::default();
                let params = FastFlowParams {
                    map: args
                        .flow
                        .fastflow_map
                        .map_or(defaults.map, FastFlowMap::from),
                    held_out_share: args.flow.held_out_share,
                    seed,
                    train: train_params(args, &defaults.train),
                    ..defaults
                };
                params.check()?;
                let device = parse_device(&args.flow.device)?;
                Ok(Self::FastFlow { params, device })
            }
            DetectorKind::Cflow => {
                if args.flow.fastflow_map.is_some() {
                    bail!("--fastflow-map applies to --detector fastflow only; drop it");
                }
                let defaults = CFlowParams::default();
                let params = CFlowParams {
                    held_out_share: args.flow.held_out_share,
                    fibers_per_epoch: args
                        .flow
                        .fibers_per_epoch
                        .unwrap_or(defaults.fibers_per_epoch),
                    seed,
                    train: train_params(args, &defaults.train),
                    ..defaults
                };
                params.check()?;
                let device = parse_device(&args.flow.device)?;
                Ok(Self::CFlow { params, device })
            }
        }
    }
}

/// Returns `defaults` with the epochs, batch size and learning rate given on the command line,
/// and the seed of `--seed`.
fn train_params(args: &RunArgs, defaults: &TrainParams) -> TrainParams {
    TrainParams {
        epochs: args.flow.epochs.unwrap_or(defaults.epochs),
        batch_size: args.flow.batch_size.unwrap_or(defaults.batch_size),
        learning_rate: args.flow.learning_rate.unwrap_or(defaults.learning_rate),
        seed: args.filter.seed,
        ..defaults.clone()
    }
}

/// Fits the detector on the defect-free `train` images. Returns it with lines for the report
/// that describe its training, if it has a training loop.
pub fn fit_detector(
    backbone: EfficientNetLite0,
    train: &[PathBuf],
    input: &InputConfig,
    settings: &DetectorSettings,
    bars: Bars,
) -> anyhow::Result<(Box<dyn Detector>, Vec<String>)> {
    match settings {
        DetectorSettings::PatchCore(params) => {
            let bar = bars.bar(train.len() as u64, "fit PatchCore");
            let detector = PatchCoreDetector::fit(
                backbone,
                train,
                input.clone(),
                params,
                Device::Cpu,
                &|n| bar.inc(n),
            )?;
            bar.finish_and_clear();
            Ok((Box::new(detector), Vec::new()))
        }
        DetectorSettings::FastFlow { params, device } => {
            let valid = params.check()?;
            let held_out = valid.held_out_count(train.len());
            let training_images = train.len().saturating_sub(held_out);

            let cache_bar = bars.bar(train.len() as u64, "cache backbone features");
            let train_bar = bars.bar(
                (params.train.epochs * training_images) as u64,
                "train FastFlow",
            );
            let mut on_event =
                |event: &TrainEvent| report_event(event, &train_bar, &bars, "images");
            let detector = FastFlowDetector::fit(
                backbone,
                train,
                input.clone(),
                params,
                device.clone(),
                &|n| cache_bar.inc(n),
                &mut on_event,
            )?;
            cache_bar.finish_and_clear();
            train_bar.finish_and_clear();
            let fit = &detector.fit;
            let map = match detector.model.params().map() {
                FastFlowMap::Latent => "latent",
                FastFlowMap::Likelihood => "likelihood",
            };
            let note = training_note(
                &format!(
                    "FastFlow trained on {} images, with {} held out for out-of-fold maps and \
                     early stopping; features cached in {:.0} MiB. Anomaly map: {map} \
                     (--fastflow-map).",
                    fit.images - fit.held_out.len(),
                    fit.held_out.len(),
                    fit.cache_mib,
                ),
                &fit.log,
                "images",
            );
            Ok((Box::new(detector), vec![note]))
        }
        DetectorSettings::CFlow { params, device } => {
            let cache_bar = bars.bar(train.len() as u64, "cache backbone features");
            let train_bar = bars.bar(
                (params.train.epochs * params.fibers_per_epoch) as u64,
                "train CFlow",
            );
            let mut on_event =
                |event: &TrainEvent| report_event(event, &train_bar, &bars, "vectors");
            let detector = CFlowDetector::fit(
                backbone,
                train,
                input.clone(),
                params,
                device.clone(),
                &|n| cache_bar.inc(n),
                &mut on_event,
            )?;
            cache_bar.finish_and_clear();
            train_bar.finish_and_clear();
            let fit = &detector.fit;
            let note = training_note(
                &format!(
                    "CFlow trained on {} feature vectors per scale and epoch, drawn from {} \
                     images, with {} images held out for out-of-fold maps and early stopping; \
                     features cached in {:.0} MiB.",
                    params.fibers_per_epoch,
                    fit.images - fit.held_out.len(),
                    fit.held_out.len(),
                    fit.cache_mib,
                ),
                &fit.log,
                "vectors",
            );
            Ok((Box::new(detector), vec![note]))
        }
    }
}

/// Advances the training bar by one optimiser step, or prints an epoch's losses and speed in
/// `unit` per second.
fn report_event(event: &TrainEvent, train_bar: &indicatif::ProgressBar, bars: &Bars, unit: &str) {
    match event {
        TrainEvent::Step {
            epoch,
            epochs,
            samples,
            loss,
            ..
        } => {
            train_bar.set_message(format!("epoch {epoch}/{epochs} loss {loss:.3}"));
            train_bar.inc(*samples as u64);
        }
        TrainEvent::Epoch(record) => {
            let line = format!(
                "epoch {}: training loss {:.4}, held-out loss {}, {:.2} {unit}/s",
                record.epoch,
                record.train_loss,
                record
                    .held_out_loss
                    .map_or_else(|| "n/a".into(), |l| format!("{l:.4}")),
                record.samples_per_second
            );
            // A hidden bar prints nothing, but the epoch lines belong in logs too.
            if train_bar.is_hidden() {
                bars.say(&line);
            } else {
                train_bar.println(line);
            }
        }
    }
}

/// Describes a flow's training run in one line: `summary`, the loss per epoch with the speed
/// in `unit` per second, and which epoch's weights the model keeps.
fn training_note(summary: &str, log: &TrainLog, unit: &str) -> String {
    let epochs: Vec<String> = log
        .epochs
        .iter()
        .map(|e| {
            let held_out = e
                .held_out_loss
                .map_or_else(|| "n/a".into(), |l| format!("{l:.4}"));
            format!(
                "{}: {:.4} / {held_out} ({:.2} {unit}/s)",
                e.epoch, e.train_loss, e.samples_per_second
            )
        })
        .collect();
    let stop = match log.stop {
        StopReason::EpochLimit => "the epoch limit was reached",
        StopReason::EarlyStop => "the held-out loss stopped falling",
    };
    format!(
        "{summary} Loss per epoch (training / held-out): {}. Training ended because {stop}; \
         the model keeps the weights of epoch {}.",
        epochs.join(", "),
        log.best_epoch
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::args::{Cli, Command};

    fn settings(extra: &[&str]) -> anyhow::Result<DetectorSettings> {
        let mut argv = vec!["sieve", "run", "--data", "d", "--prior", "p", "--out", "o"];
        argv.extend_from_slice(extra);
        let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not a run command");
        };
        DetectorSettings::from_args(&args)
    }

    #[test]
    fn cflow_takes_its_own_defaults() {
        let Ok(DetectorSettings::CFlow { params, .. }) = settings(&["--detector", "cflow"]) else {
            panic!("cflow settings expected");
        };
        assert_eq!(params, CFlowParams::default());
    }

    #[test]
    fn cflow_takes_given_options() {
        let options = [
            "--detector",
            "cflow",
            "--epochs",
            "3",
            "--fibers-per-epoch",
            "512",
            "--seed",
            "5",
        ];
        let Ok(DetectorSettings::CFlow { params, .. }) = settings(&options) else {
            panic!("cflow settings expected");
        };
        assert_eq!(params.train.epochs, 3);
        assert_eq!(params.fibers_per_epoch, 512);
        assert_eq!(params.seed, 5);
        assert_eq!(params.train.seed, 5);
        assert_eq!(params.train.batch_size, 256);
    }

    #[test]
    fn fastflow_keeps_its_defaults() {
        let Ok(DetectorSettings::FastFlow { params, .. }) = settings(&["--detector", "fastflow"])
        else {
            panic!("fastflow settings expected");
        };
        assert_eq!(params, FastFlowParams::default());
    }

    #[test]
    fn fastflow_map_option() {
        let Ok(DetectorSettings::FastFlow { params, .. }) =
            settings(&["--detector", "fastflow", "--fastflow-map", "likelihood"])
        else {
            panic!("fastflow settings expected");
        };
        assert_eq!(params.map, FastFlowMap::Likelihood);
        for detector in ["cflow", "patchcore"] {
            let error = settings(&["--detector", detector, "--fastflow-map", "latent"])
                .err()
                .expect("--fastflow-map is for fastflow only");
            assert!(error.to_string().contains("fastflow only"), "{error}");
        }
    }

    #[test]
    fn fibers_option_rejected_elsewhere() {
        for detector in ["fastflow", "patchcore"] {
            let error = settings(&["--detector", detector, "--fibers-per-epoch", "512"])
                .err()
                .expect("--fibers-per-epoch is for cflow only");
            assert!(error.to_string().contains("cflow only"), "{error}");
        }
    }
}
