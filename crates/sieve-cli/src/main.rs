//! The `sieve` command line: raw arguments become validated settings before any work starts.

mod args;
mod demo;
mod eval_cmd;
mod evaluate;
mod filter_cmd;
mod fit;
mod model;
mod predict;
mod progress;
mod run;
mod visual;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// Environment variable that sets the size of candle's own thread pool for elementwise
/// operations (candle 0.11).
const CANDLE_THREADS_VARIABLE: &str = "CANDLE_NUM_THREADS";

fn main() -> ExitCode {
    // Before any other thread starts: freed maps and buffers stay in the process for reuse.
    sieve_core::pages::keep_freed_memory();
    // candle 0.11 runs large elementwise operations on a second thread pool beside rayon's,
    // whose idle threads spin while waiting. On 2 shared cores that spinning took most of the
    // CPU: FastFlow trained 4 times faster with the pool off (one thread), and matrix
    // products, which use rayon's threads, stay parallel. Set before any candle call, so
    // before the pool starts; a value the user set is kept.
    if std::env::var_os(CANDLE_THREADS_VARIABLE).is_none() {
        std::env::set_var(CANDLE_THREADS_VARIABLE, "1");
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    if let Some(threads) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
        {
            eprintln!("error: failed to start {threads} threads: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = ctrlc::set_handler(on_interrupt) {
        eprintln!("warning: failed to install the Ctrl-C handler ({e}); an interrupted run may leave temporary files behind");
    }
    let bars = progress::Bars { quiet: cli.quiet };
    let result = match cli.command {
        Command::Run(args) => run::run(&args, bars).map(|_| ()),
        Command::Filter(args) => filter_cmd::filter(&args, bars),
        Command::Demo(args) => demo::demo(&args, bars),
        Command::Eval(args) => eval_cmd::eval(&args, bars).map(|report| {
            println!("{}", sieve_report::render_markdown(&report));
        }),
        Command::Predict(args) => match predict::predict(&args, bars) {
            // Exit codes: 2 when any image failed, else 1 when any image is defective.
            Ok(outcome) if outcome.failed > 0 => return ExitCode::from(2),
            Ok(outcome) if outcome.defective > 0 => return ExitCode::from(1),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// Exit status after an interruption by Ctrl-C (SIGINT) or SIGTERM: 128 plus the SIGINT number,
/// as shells report it.
const INTERRUPTED: i32 = 130;

/// Removes unfinished temporary files and exits. A rename into place in progress finishes
/// first, so every output is either its previous version or the complete new one.
fn on_interrupt() {
    let _no_more_renames = sieve_core::fsutil::remove_temporaries();
    eprintln!(
        "interrupted: unfinished files were removed; outputs that were not yet replaced keep their previous version"
    );
    std::process::exit(INTERRUPTED);
}

/// Joins an error and its causes with ": ", leaving out a cause whose text the message before
/// it already contains (library errors often include their source in their own message).
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIEVE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
