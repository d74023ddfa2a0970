//! `sieve demo`: generate a small synthetic inspection set from a seed and run the main job on it.

use anyhow::Context;
use sieve_core::demo::{generate, DemoParams};

use crate::args::{DemoArgs, DetectorKind, FilterOptions, FlowOptions, ResizeMode, RunArgs};
use crate::progress::Bars;
use crate::run::run;

/// The prior that describes the demo set's defects.
const DEMO_PRIOR: &str = include_str!("../../../priors/demo.toml");

pub fn demo(args: &DemoArgs, bars: Bars) -> anyhow::Result<()> {
    let data = args.out.join("data");
    let params = DemoParams {
        seed: args.seed,
        ..DemoParams::default()
    };
    let summary = generate(&data, &params)
        .with_context(|| format!("failed to generate the demo set in {}", data.display()))?;
    bars.say(&summary.to_string());
    let prior = args.out.join("demo-prior.toml");
    sieve_core::fsutil::write_atomic(&prior, DEMO_PRIOR.as_bytes())?;

    let run_args = RunArgs {
        data,
        detector: DetectorKind::Patchcore,
        prior,
        out: args.out.join("run"),
        input_size: "256x224".into(),
        resize: ResizeMode::Stretch,
        coreset_ratio: 0.05,
        figures: crate::args::DEFAULT_FIGURES,
        flow: FlowOptions::default(),
        filter: FilterOptions {
            p_cut: 0.9,
            no_envelope: false,
            no_defect_envelope: false,
            recall_budget: 0.01,
            no_brake: false,
            pixel_quantile: 0.995,
            image_quantile: 0.99,
            min_cases: 150,
            max_cases: 400,
            seed: args.seed,
        },
    };
    let outcome = run(&run_args, bars)?;
    println!("report: {}", outcome.out.join("report.md").display());
    println!("{}", sieve_report::render_markdown(&outcome.report));
    Ok(())
}
