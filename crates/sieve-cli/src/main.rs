//! The `sieve` command line: raw arguments become validated settings before any work starts.

mod args;
mod demo;
mod evaluate;
mod filter_cmd;
mod progress;
mod run;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
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
fn error_chain(error: &anyhow::Error) -> String {
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
