//! Progress bars for long steps, silenced by `--quiet` or when standard error is not a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Creates progress bars that all obey the same quiet setting.
#[derive(Debug, Clone, Copy)]
pub struct Bars {
    pub quiet: bool,
}

impl Bars {
    /// Creates a bar of `len` steps labelled `message`, hidden when quiet.
    pub fn bar(&self, len: u64, message: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.to_string());
        bar
    }

    /// Prints a status line to standard error unless quiet.
    pub fn say(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Prints a warning to standard error, also when quiet.
    pub fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}
