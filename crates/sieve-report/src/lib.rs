//! Reports of a sieve run: the baseline and the filtered result side by side, as `report.json`,
//! `report.md` and `report.html` with its figures.

pub mod figures;
mod html;
mod markdown;
mod types;

pub use html::render_html;
pub use markdown::render_markdown;
pub use types::{
    CandidateRow, DetectorSummary, FigureFile, FigureIndex, ImageRow, MetricSet, Report,
    SafetyReport, TestCandidateCounts, Timing,
};

use std::path::Path;

/// Error while writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "failed to write {path}: {source}; check that the output folder exists and is writable"
    )]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to serialise the report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("failed to draw a figure: {0}")]
    Plot(String),
    #[error("failed to encode {path}: {message}")]
    Image { path: String, message: String },
}

/// Writes `report.json`, `report.md` and `report.html` into `dir`, each through a temporary
/// file. The figures that `report.figures` lists must already be in place.
pub fn write_report(report: &Report, dir: &Path) -> Result<(), ReportError> {
    let json = serde_json::to_vec_pretty(report)?;
    let md = render_markdown(report);
    let html = render_html(report);
    for (name, bytes) in [
        ("report.json", json),
        ("report.md", md.into_bytes()),
        ("report.html", html.into_bytes()),
    ] {
        let path = dir.join(name);
        sieve_core::fsutil::write_atomic(&path, &bytes).map_err(|source| ReportError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
