//! Command-line arguments (clap derive) and their conversion into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use sieve_detect::fastflow::{FastFlowMap, FastFlowParams};

/// sieve: anomaly detection with an object-level false-alarm filter, on CPU.
#[derive(Debug, Parser)]
#[command(
    name = "sieve",
    version,
    about = "Anomaly detection for visual inspection, with an object-level false-alarm filter trained without labelled defects",
    propagate_version = true
)]
pub struct Cli {
    /// Hide progress bars and status lines.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log more (-v info, -vv debug); the SIEVE_LOG variable overrides it with a tracing
    /// filter such as SIEVE_LOG=sieve_core=debug.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Worker threads (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit a detector on defect-free images, train the false-alarm filter, and evaluate the
    /// baseline and the filtered output on the test split.
    Run(RunArgs),
    /// Filter anomaly maps made by another tool, given maps of defect-free images for mining.
    Filter(FilterArgs),
    /// Generate a small synthetic inspection set and run the main job on it.
    Demo(DemoArgs),
    /// Evaluate a fitted model on the test split of a data folder and write the report.
    Eval(EvalArgs),
    /// Judge images with a fitted model: verdict, scores, candidates, mask and overlay.
    Predict(PredictArgs),
}

/// How many test images get a comparison figure in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureCount {
    Count(usize),
    All,
}

impl std::str::FromStr for FigureCount {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        text.parse().map(Self::Count).map_err(|_| {
            format!("invalid figure count {text:?}; expected a number such as 40, or all")
        })
    }
}

impl std::fmt::Display for FigureCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::All => write!(f, "all"),
        }
    }
}

/// Default number of comparison figures in a report.
pub const DEFAULT_FIGURES: FigureCount = FigureCount::Count(40);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetectorKind {
    /// Memory bank of patch features; no training loop.
    Patchcore,
    /// Normalising flow per feature scale, trained on the CPU (or --device cuda).
    Fastflow,
    /// Conditional normalising flow per feature scale over single feature vectors, trained on
    /// the CPU (or --device cuda).
    Cflow,
}

/// Score that FastFlow's anomaly map gives each position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FastFlowMapKind {
    /// -exp(-0.5 * mean of z squared over channels), as in the FastFlow paper. It leaves out
    /// the log-determinant of the flow's Jacobian.
    Latent,
    /// Negative log-likelihood under the flow divided by the channel count, log-determinant
    /// included.
    Likelihood,
}

impl From<FastFlowMapKind> for FastFlowMap {
    fn from(kind: FastFlowMapKind) -> Self {
        match kind {
            FastFlowMapKind::Likelihood => FastFlowMap::Likelihood,
            FastFlowMapKind::Latent => FastFlowMap::Latent,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResizeMode {
    /// Stretch every image to the input size.
    Stretch,
    /// Keep each image's aspect ratio at about the input size's pixel count.
    KeepAspect,
}

/// Settings shared by the commands that train the filter.
#[derive(Debug, Clone, Args)]
pub struct FilterOptions {
    /// Smallest false-alarm probability (0 to 1) at which a candidate is suppressed.
    #[arg(long, default_value_t = 0.9)]
    pub p_cut: f64,
    /// Largest share (0 to 1, so 0.01 is 1 %) of held-back synthetic defect candidates the
    /// filter may suppress. When the share at --p-cut is larger, the cut is raised until it
    /// fits, and it is never lowered.
    #[arg(long, default_value_t = 0.01)]
    pub recall_budget: f64,
    /// Switch off the --recall-budget brake and use --p-cut as given.
    #[arg(long)]
    pub no_brake: bool,
    /// Switch off the false-alarm envelope guard (not recommended: it keeps real defects that
    /// look unlike every mined false alarm).
    #[arg(long)]
    pub no_envelope: bool,
    /// Switch off the defect-range guard (not recommended: candidates that look like a
    /// synthetic defect in every feature become suppressible).
    #[arg(long)]
    pub no_defect_envelope: bool,
    /// Quantile (0 to 1) of defect-free pixel scores that sets the pixel threshold t.
    #[arg(long, default_value_t = 0.995)]
    pub pixel_quantile: f64,
    /// Quantile (0 to 1) of defect-free image scores that sets the image threshold t_img.
    #[arg(long, default_value_t = 0.99)]
    pub image_quantile: f64,
    /// Smallest number of synthetic defects painted to train the filter.
    #[arg(long, default_value_t = 300)]
    pub min_cases: usize,
    /// Largest number of synthetic defects painted to train the filter.
    #[arg(long, default_value_t = 1500)]
    pub max_cases: usize,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Data folder in the MVTec AD layout (train/good, test/<type>, ground_truth/<type>).
    #[arg(long)]
    pub data: PathBuf,
    /// Detector to fit.
    #[arg(long, value_enum, default_value_t = DetectorKind::Patchcore)]
    pub detector: DetectorKind,
    /// Prior file (TOML) describing what real defects look like.
    #[arg(long)]
    pub prior: PathBuf,
    /// Output folder for report.json, report.md and the fitted model.
    #[arg(long)]
    pub out: PathBuf,
    /// Detector input size in pixels, WIDTHxHEIGHT.
    #[arg(long, default_value = "256x256")]
    pub input_size: String,
    /// Resizing of images to the input size.
    #[arg(long, value_enum, default_value_t = ResizeMode::Stretch)]
    pub resize: ResizeMode,
    /// Share of all training patches kept in PatchCore's memory bank, from 0 to 1. Smaller
    /// shares fit and score faster; 0.01 is about ten times faster than the default.
    #[arg(long, default_value_t = 0.1)]
    pub coreset_ratio: f64,
    /// Test images that get a comparison figure in report.html: a number, or all.
    #[arg(long, default_value_t = DEFAULT_FIGURES)]
    pub figures: FigureCount,
    #[command(flatten)]
    pub flow: FlowOptions,
    #[command(flatten)]
    pub filter: FilterOptions,
}

/// Training settings of --detector fastflow and --detector cflow. A setting left out takes the
/// chosen detector's default.
#[derive(Debug, Clone, Args)]
pub struct FlowOptions {
    /// Flows: largest number of training epochs; training stops earlier when the loss of the
    /// held-out images stops falling [default: 8 for fastflow, 20 for cflow].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Flows: samples per optimiser step, images for fastflow and feature vectors per scale
    /// for cflow [default: 8 for fastflow, 256 for cflow].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Flows: AdamW learning rate [default: 0.001 for fastflow, 0.0002 for cflow].
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// CFlow: feature vectors per scale drawn in one epoch [default: 65536].
    #[arg(long)]
    pub fibers_per_epoch: Option<usize>,
    /// FastFlow: how the anomaly map scores a position [default: latent].
    #[arg(long, value_enum)]
    pub fastflow_map: Option<FastFlowMapKind>,
    /// Flows: share (0 to 1, exclusive) of the defect-free training images held out of
    /// training. Their maps set the thresholds, supply the false alarms and carry the painted
    /// defects, and their loss decides early stopping.
    #[arg(long, default_value_t = FastFlowParams::default().held_out_share)]
    pub held_out_share: f64,
    /// Flows: device the flows train and run on: cpu, or cuda / cuda:N in a build with
    /// --features cuda. The backbone always runs on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            epochs: None,
            batch_size: None,
            learning_rate: None,
            fibers_per_epoch: None,
            fastflow_map: None,
            held_out_share: FastFlowParams::default().held_out_share,
            device: "cpu".into(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// Fitted model folder, as `sieve run` writes it to <out>/model.
    #[arg(long)]
    pub model: PathBuf,
    /// Data folder in the MVTec AD layout; only test/<type> and ground_truth/<type> are read.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for report.json, report.md, report.html and the figures.
    #[arg(long)]
    pub out: PathBuf,
    /// Test images that get a comparison figure in report.html: a number, or all.
    #[arg(long, default_value_t = DEFAULT_FIGURES)]
    pub figures: FigureCount,
}

#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// Fitted model folder, as `sieve run` writes it to <out>/model.
    #[arg(long)]
    pub model: PathBuf,
    /// Images, or folders whose images are all judged (not recursive).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder for each image's filtered mask and overlay, and predictions.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Print one JSON object per image on standard output instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FilterArgs {
    /// Folder of anomaly maps of defect-free images (.npy, 32-bit float .tif/.tiff, 8- or 16-bit
    /// .png), used to set thresholds and mine false alarms.
    #[arg(long)]
    pub good_maps: PathBuf,
    /// Folder of the defect-free images those maps belong to (same file stems).
    #[arg(long)]
    pub good_images: PathBuf,
    /// Folder of anomaly maps to filter.
    #[arg(long)]
    pub maps: PathBuf,
    /// Folder of the images those maps belong to (same file stems).
    #[arg(long)]
    pub images: PathBuf,
    /// Prior file (TOML) describing what real defects look like.
    #[arg(long)]
    pub prior: PathBuf,
    /// Output folder for filtered maps and candidates.json.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub filter: FilterOptions,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output folder for the generated data set and the report.
    #[arg(long, default_value = "sieve-demo")]
    pub out: PathBuf,
    /// Seed of the generated data set and of the run.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let parse = || -> Option<(u32, u32)> {
        let (w, h) = text.split_once(['x', 'X'])?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    };
    parse().ok_or_else(|| {
        anyhow::anyhow!("invalid size {text:?}; expected WIDTHxHEIGHT such as 256x256")
    })
}

/// Parses `cpu`, `cuda` or `cuda:N` into a candle device.
pub fn parse_device(text: &str) -> anyhow::Result<candle_core::Device> {
    let ordinal = match text.trim() {
        "cpu" => return Ok(candle_core::Device::Cpu),
        "cuda" => 0,
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "invalid device {text:?}; expected cpu, cuda or cuda:N such as cuda:0"
                )
            })?,
    };
    candle_core::Device::new_cuda(ordinal).map_err(|e| {
        anyhow::anyhow!(
            "device {text} is not available ({e}); use --device cpu, or build sieve with \
             --features cuda on a machine with CUDA"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_parses_and_rejects() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        let error = parse_device("gpu").unwrap_err().to_string();
        assert!(error.contains("cuda:N"), "{error}");
    }

    #[test]
    fn size_parses_and_rejects() {
        assert_eq!(parse_size("320x256").unwrap(), (320, 256));
        assert!(parse_size("256")
            .unwrap_err()
            .to_string()
            .contains("WIDTHxHEIGHT"));
    }

    #[test]
    fn flow_help_defaults_match_params() {
        // The help text of FlowOptions states these defaults.
        let fastflow = FastFlowParams::default();
        assert_eq!(fastflow.train.epochs, 8);
        assert_eq!(fastflow.train.batch_size, 8);
        assert_eq!(fastflow.train.learning_rate, 0.001);
        assert_eq!(fastflow.map, FastFlowMapKind::Latent.into());
        let cflow = sieve_detect::cflow::CFlowParams::default();
        assert_eq!(cflow.train.epochs, 20);
        assert_eq!(cflow.train.batch_size, 256);
        assert_eq!(cflow.train.learning_rate, 0.0002);
        assert_eq!(cflow.fibers_per_epoch, 65536);
        assert_eq!(cflow.held_out_share, fastflow.held_out_share);
    }
}
