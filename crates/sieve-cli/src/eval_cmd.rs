//! `sieve eval`: apply a fitted model to the test split of a data folder and write the same
//! report as `sieve run`, without fitting anything.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::bail;
use sieve_core::dataset::Dataset;
use sieve_core::filter::TrainingSummary;
use sieve_report::{write_report, DetectorSummary, Report, SafetyReport, Timing};

use crate::args::EvalArgs;
use crate::evaluate::{evaluate_images, summarise};
use crate::model::load_model;
use crate::progress::Bars;
use crate::run::{peak_memory_mib, prepare_out_dir};
use crate::visual::render_figures;

pub fn eval(args: &EvalArgs, bars: Bars) -> anyhow::Result<Report> {
    let start = Instant::now();
    let test = Dataset::open_test(&args.data)?;
    if test.is_empty() {
        bail!(
            "{} has no test images; sieve eval reads test/good and test/<type>",
            args.data.display()
        );
    }
    prepare_out_dir(&args.out)?;
    let model = load_model(&args.model)?;
    bars.say(&format!(
        "sieve eval: {} model from {}, {} test images from {}",
        model.settings.detector,
        args.model.display(),
        test.len(),
        args.data.display()
    ));

    let filter = &model.filter;
    let results = evaluate_images(
        &test,
        model.detector.as_ref(),
        filter,
        bars,
        "evaluate test split",
    )?;
    let evaluation = summarise(&results, filter);
    let figures = render_figures(&results, filter, &args.out, args.figures, bars)?;
    drop(results);

    let input = &model.settings.input;
    let requested_p_cut = model.raw_settings["filter_params"]["p_cut"]
        .as_f64()
        .unwrap_or(filter.p_cut);
    let report = Report {
        sieve_version: env!("CARGO_PKG_VERSION").to_string(),
        command: "eval".into(),
        data: args.data.display().to_string(),
        prior: "(as when the model was fitted)".into(),
        detector: DetectorSummary {
            name: model.settings.detector.clone(),
            backbone: model.settings.backbone.clone(),
            input: format!("{}x{}, {:?}", input.width, input.height, input.resize),
            settings: model.raw_settings.clone(),
        },
        test_images: evaluation.images,
        test_defect_images: evaluation.defect_images,
        thresholds: Some(filter.thresholds),
        baseline: evaluation.baseline,
        filtered: evaluation.filtered,
        filter: TrainingSummary {
            p_cut: filter.p_cut,
            requested_p_cut,
            inactive_reason: filter.inactive_reason.clone(),
            ..TrainingSummary::default()
        },
        synthesis: Default::default(),
        filter_settings: model.raw_settings["filter_params"].clone(),
        safety: SafetyReport {
            test_recall_loss: Some(evaluation.recall_loss),
            test: evaluation.counts,
            estimate_source: "detector".into(),
            ..SafetyReport::default()
        },
        timing: Timing {
            total: start.elapsed().as_secs_f64(),
            images: BTreeMap::from([("evaluate".to_string(), evaluation.images)]),
            peak_memory_mib: peak_memory_mib(),
            detector_ms_per_image: Some(1000.0 * evaluation.detector_seconds_per_image),
            filter_ms_per_image: Some(1000.0 * evaluation.filter_seconds_per_image),
            ..Timing::default()
        },
        model_dir: args.model.display().to_string(),
        notes: vec![
            "sieve eval applies a fitted model without training: the filter's training counts and the synthetic recall-loss estimate are in the report of the sieve run that fitted it, and show as zero here.".into(),
        ],
        candidates: evaluation.rows,
        images: evaluation.image_rows,
        figures: Some(figures),
    };
    write_report(&report, &args.out)?;
    Ok(report)
}
