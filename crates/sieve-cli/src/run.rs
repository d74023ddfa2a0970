//! `sieve run`: fit the detector, take thresholds from out-of-fold maps of the defect-free
//! training images, mine false alarms, paint synthetic defects with the detector in the loop,
//! train the filter, and evaluate baseline and filtered output on the test split.
//!
//! The detector lists which training images have out-of-fold maps. PatchCore scores every one
//! with its own patches left out, while a flow scores only the share it held out of training. Thresholds, false-alarm mining and the painted defects use those images alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use candle_core::Device;
use rayon::prelude::*;
use sieve_core::dataset::Dataset;
use sieve_core::filter::{
    mine_false_alarms, synthesize, train_filter, FalseAlarmFilter, FilterParams, RecallLoss,
    Thresholds, WARNING_SHARE,
};
use sieve_core::fsutil::Temporary;
use sieve_core::imageio::load_rgb;
use sieve_core::prior::Prior;
use sieve_core::regions::Candidate;
use sieve_core::AnomalyMap;
use sieve_detect::backbone::EfficientNetLite0;
use sieve_detect::detector::{Detector, InputConfig, Resize};
use sieve_report::{write_report, DetectorSummary, Report, SafetyReport, Timing};

use crate::args::{parse_size, FilterOptions, ResizeMode, RunArgs};
use crate::evaluate::{evaluate_images, summarise};
use crate::fit::{fit_detector, DetectorSettings};
use crate::model::{write_manifest, FORMAT_VERSION};
use crate::progress::Bars;
use crate::visual::render_figures;

/// Largest number of defect-free pixel scores used for the threshold quantiles.
const MAX_THRESHOLD_PIXELS: usize = 20_000_000;

/// The report and output folder of a finished run.
pub struct RunOutcome {
    pub report: Report,
    pub out: PathBuf,
}

/// Turns the shared filter options into checked filter settings.
pub fn filter_params(options: &FilterOptions) -> anyhow::Result<FilterParams> {
    let params = FilterParams {
        p_cut: options.p_cut,
        envelope: !options.no_envelope,
        defect_envelope: !options.no_defect_envelope,
        recall_loss_budget: (!options.no_brake).then_some(options.recall_budget),
        min_cases: options.min_cases,
        max_cases: options.max_cases,
        seed: options.seed,
        ..FilterParams::default()
    };
    Ok(params.check()?)
}

/// Sets the deployable thresholds from maps of defect-free images and mines the false alarms
/// at the pixel threshold. `images[i]` is the image of `maps[i]`.
pub fn thresholds_and_false_alarms(
    images: &[PathBuf],
    maps: &[AnomalyMap],
    options: &FilterOptions,
    params: &FilterParams,
) -> anyhow::Result<(Thresholds, Vec<Candidate>)> {
    let thresholds = Thresholds::from_good_maps(
        maps,
        options.pixel_quantile,
        options.image_quantile,
        MAX_THRESHOLD_PIXELS,
    )?;
    let false_alarms = mine_false_alarms(images, maps, thresholds.pixel, &params.describe)?;
    Ok((thresholds, false_alarms))
}

/// Records wall time per stage.
struct Stopwatch {
    start: Instant,
    stage: Instant,
    stages: BTreeMap<String, f64>,
}

impl Stopwatch {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            stage: Instant::now(),
            stages: BTreeMap::new(),
        }
    }

    fn lap(&mut self, name: &str) {
        self.stages
            .insert(name.to_string(), self.stage.elapsed().as_secs_f64());
        self.stage = Instant::now();
    }

    fn finish(self, images: BTreeMap<String, usize>) -> Timing {
        Timing {
            stages: self.stages,
            total: self.start.elapsed().as_secs_f64(),
            images,
            peak_memory_mib: peak_memory_mib(),
            ..Timing::default()
        }
    }
}

/// Creates `out` if needed and checks that it is writable before any long work starts.
pub fn prepare_out_dir(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| {
        format!(
            "failed to create the output folder {}; choose another --out",
            out.display()
        )
    })?;
    let probe = Temporary::beside(&out.join("sieve-write-check"));
    std::fs::write(probe.path(), b"").with_context(|| {
        format!(
            "output folder {} is not writable; choose another --out",
            out.display()
        )
    })?;
    Ok(())
}

pub fn run(args: &RunArgs, bars: Bars) -> anyhow::Result<RunOutcome> {
    let mut watch = Stopwatch::new();

    let (width, height) = parse_size(&args.input_size)?;
    let input = InputConfig {
        width,
        height,
        resize: match args.resize {
            ResizeMode::Stretch => Resize::Stretch,
            ResizeMode::KeepAspect => Resize::KeepAspect,
        },
        ..InputConfig::default()
    };
    input.check()?;
    let params = filter_params(&args.filter)?;
    let settings = DetectorSettings::from_args(args)?;
    let prior = Prior::from_path(&args.prior)?;
    let dataset = Dataset::open(&args.data)?;
    if dataset.test.is_empty() {
        bail!(
            "{} has no test images; sieve run evaluates on test/good and test/<type>",
            args.data.display()
        );
    }
    let train_sizes = dataset.check_files()?;
    for (path, &(width, height)) in dataset.train.iter().zip(&train_sizes) {
        prior.check_image_size(width, height).with_context(|| {
            format!(
                "prior {} does not fit the training image {}",
                args.prior.display(),
                path.display()
            )
        })?;
    }
    prepare_out_dir(&args.out)?;
    bars.say(&format!(
        "sieve run: {} training, {} validation, {} test images from {}",
        dataset.train.len(),
        dataset.validation.len(),
        dataset.test.len(),
        args.data.display()
    ));

    let backbone = EfficientNetLite0::load_default(&Device::Cpu)
        .context("failed to load the backbone weights")?;
    watch.lap("load_backbone");

    let (detector, training_notes) =
        fit_detector(backbone, &dataset.train, &input, &settings, bars)?;
    watch.lap("fit_detector");

    let out_of_fold = detector.out_of_fold();
    let good_images: Vec<PathBuf> = out_of_fold
        .iter()
        .map(|image| dataset.train[image.index].clone())
        .collect();
    let bar = bars.bar(out_of_fold.len() as u64, "out-of-fold maps");
    let good_maps: Vec<AnomalyMap> = out_of_fold
        .par_iter()
        .zip(&good_images)
        .map(|(image, path)| {
            let map = detector.anomaly_map(&load_rgb(path)?, image.exclude)?;
            bar.inc(1);
            Ok(map)
        })
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();
    watch.lap("out_of_fold_maps");

    let (thresholds, false_alarms) =
        thresholds_and_false_alarms(&good_images, &good_maps, &args.filter, &params)?;
    drop(good_maps);
    watch.lap("mine_false_alarms");
    bars.say(&format!(
        "thresholds: pixel t = {:.4}, image t_img = {:.4}, background b = {:.4}; {} false-alarm candidates mined",
        thresholds.pixel,
        thresholds.image,
        thresholds.background,
        false_alarms.len()
    ));

    let bar = bars.bar(params.max_cases as u64, "paint synthetic defects");
    let synthetic = synthesize(
        &good_images,
        &prior,
        thresholds.pixel,
        &params,
        |painted, source| {
            detector
                .anomaly_map(&painted.image, out_of_fold[source].exclude)
                .map_err(|e| e.into())
        },
        &|n| bar.inc(n),
    )
    .map_err(|e| anyhow::anyhow!("synthetic defects failed: {e}"))?;
    bar.finish_and_clear();
    watch.lap("synthesize_defects");

    let (filter, summary) = train_filter(
        &false_alarms,
        &synthetic.train,
        &synthetic.held_back,
        &prior,
        thresholds,
        &params,
    );
    watch.lap("train_filter");
    if let Some(reason) = &summary.inactive_reason {
        bars.say(&format!("warning: the filter is inactive: {reason}"));
    }

    let validation_defects: Vec<_> = dataset
        .validation
        .iter()
        .filter(|s| s.is_defective())
        .cloned()
        .collect();
    let validation_recall_loss = if validation_defects.is_empty() {
        None
    } else {
        let results = evaluate_images(
            &validation_defects,
            detector.as_ref(),
            &filter,
            bars,
            "validation defects",
        )?;
        let gt: Vec<Candidate> = results
            .iter()
            .flat_map(|r| r.gt_candidates().map(|c| c.candidate.clone()))
            .collect();
        Some(RecallLoss::measure(&filter, &gt))
    };

    let results = evaluate_images(
        &dataset.test,
        detector.as_ref(),
        &filter,
        bars,
        "evaluate test split",
    )?;
    let evaluation = summarise(&results, &filter);
    let figures = render_figures(&results, &filter, &args.out, args.figures, bars)?;
    let evaluation_timing = (
        evaluation.detector_seconds_per_image,
        evaluation.filter_seconds_per_image,
    );
    drop(results);
    watch.lap("evaluate");

    let model_dir = args.out.join("model");
    save_model(&model_dir, detector.as_ref(), &filter, &input, &params)?;
    watch.lap("save_model");

    let mut warnings = Vec::new();
    if let Some(reason) = &summary.inactive_reason {
        warnings.push(format!("the filter is inactive: {reason}"));
    }
    let syn = &summary.synthetic_recall_loss;
    if syn.warns() {
        warnings.push(format!(
            "the filter suppresses {} of held-back synthetic defect candidates ({} by area), above the {:.0} % warning level; check the prior or raise --p-cut",
            percent(syn.share),
            percent(syn.area_share),
            100.0 * WARNING_SHARE
        ));
    }
    if let Some(v) = validation_recall_loss.as_ref().filter(|v| v.warns()) {
        warnings.push(format!(
            "the filter suppresses {} of the candidates on labelled validation defects",
            percent(v.share)
        ));
    }

    let report = Report {
        sieve_version: env!("CARGO_PKG_VERSION").to_string(),
        command: "run".into(),
        data: args.data.display().to_string(),
        prior: args.prior.display().to_string(),
        detector: DetectorSummary {
            name: detector.name().into(),
            backbone: "efficientnet-lite0 (ImageNet)".into(),
            input: format!("{}x{}, {:?}", input.width, input.height, input.resize),
            settings: detector.settings(),
        },
        test_images: evaluation.images,
        test_defect_images: evaluation.defect_images,
        thresholds: Some(thresholds),
        baseline: evaluation.baseline,
        filtered: evaluation.filtered,
        filter: summary,
        synthesis: synthetic.stats,
        filter_settings: serde_json::to_value(&params)?,
        safety: SafetyReport {
            synthetic_recall_loss: filter_loss(&filter, &synthetic.held_back),
            validation_recall_loss,
            test_recall_loss: Some(evaluation.recall_loss),
            warnings,
            test: evaluation.counts.clone(),
            estimate_source: "detector".into(),
        },
        timing: Timing::default(),
        model_dir: model_dir.display().to_string(),
        notes: training_notes,
        candidates: evaluation.rows,
        images: evaluation.image_rows,
        figures: Some(figures),
    };
    let mut report = report;
    let images = BTreeMap::from([
        ("fit_detector".to_string(), dataset.train.len()),
        ("out_of_fold_maps".to_string(), out_of_fold.len()),
        ("synthesize_defects".to_string(), report.synthesis.cases),
        (
            "evaluate".to_string(),
            dataset.test.len() + validation_defects.len(),
        ),
    ]);
    report.timing = watch.finish(images);
    report.timing.detector_ms_per_image = Some(1000.0 * evaluation_timing.0);
    report.timing.filter_ms_per_image = Some(1000.0 * evaluation_timing.1);
    write_report(&report, &args.out)?;
    for w in &report.safety.warnings {
        bars.warn(w);
    }
    Ok(RunOutcome {
        report,
        out: args.out.clone(),
    })
}

/// Peak resident memory of this process in MiB, from `/proc/self/status` (Linux only).
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn filter_loss(filter: &FalseAlarmFilter, held_back: &[Candidate]) -> RecallLoss {
    RecallLoss::measure(filter, held_back)
}

fn percent(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1} %", 100.0 * v))
        .unwrap_or_else(|| "n/a".into())
}

/// Writes the fitted model into `dir` through a temporary folder renamed into place, so an
/// interrupted run never leaves a partial model where a good one was. A temporary folder left
/// by an error or an interruption is removed.
fn save_model(
    dir: &Path,
    detector: &dyn Detector,
    filter: &FalseAlarmFilter,
    input: &InputConfig,
    params: &FilterParams,
) -> anyhow::Result<()> {
    let tmp = Temporary::beside(dir);
    if tmp.path().exists() {
        std::fs::remove_dir_all(tmp.path())?;
    }
    std::fs::create_dir_all(tmp.path())
        .with_context(|| format!("failed to create {}", tmp.path().display()))?;
    detector.save(tmp.path())?;
    let settings = serde_json::json!({
        "format_version": FORMAT_VERSION,
        "detector": detector.name(),
        "backbone": "efficientnet-lite0",
        "input": input,
        detector.name(): detector.settings(),
        "filter_params": params,
    });
    std::fs::write(
        tmp.path().join("settings.json"),
        serde_json::to_vec_pretty(&settings)?,
    )?;
    std::fs::write(
        tmp.path().join("filter.json"),
        serde_json::to_vec_pretty(filter)?,
    )?;
    write_manifest(tmp.path())?;
    tmp.publish(dir)
        .with_context(|| format!("failed to move the new model into {}", dir.display()))?;
    Ok(())
}
