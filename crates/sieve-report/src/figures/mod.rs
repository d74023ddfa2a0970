//! Figures of a report: the comparison figure of each test image, the score distributions, and
//! the ROC and PRO curves, drawn with plotters and written as PNG files.

mod charts;
mod comparison;
mod font;
mod raster;

pub use charts::{render_charts, Chart, ChartImage, Histogram, PRO_FPR_LIMIT};
pub use comparison::{
    comparison_figure, heat_range, overlay, panel_size, ComparisonInput, PANEL_TITLES,
};
pub use raster::write_png;

use std::path::Path;

use crate::types::FigureFile;
use crate::ReportError;

/// Folder of the figures inside a report folder.
pub const FIGURES_DIR: &str = "figures";

/// Returns a file name for an image name such as `crack/012.png`: `crack_012.png.png` with
/// every character other than ASCII letters, digits, `-` and `.` replaced by `_`.
pub fn figure_file_name(image: &str) -> String {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.png")
}

/// Renders the charts of a split and writes them into `<dir>/figures/`; returns the files,
/// relative to `dir`, and the notes on charts left out.
pub fn write_charts(
    dir: &Path,
    images: &[ChartImage],
    thresholds: &sieve_core::filter::Thresholds,
) -> Result<(Vec<FigureFile>, Vec<String>), ReportError> {
    let folder = create_figures_dir(dir)?;
    let (charts, notes) = render_charts(images, thresholds)?;
    let mut files = Vec::new();
    for chart in charts {
        let name = format!("{}.png", chart.name);
        write_png(&folder.join(&name), &chart.image)?;
        files.push(FigureFile {
            title: chart.title,
            path: format!("{FIGURES_DIR}/{name}"),
        });
    }
    Ok((files, notes))
}

/// Renders the comparison figure of one image and writes it into `<dir>/figures/images/`.
pub fn write_comparison(dir: &Path, input: &ComparisonInput) -> Result<FigureFile, ReportError> {
    let folder = create_figures_dir(dir)?.join("images");
    std::fs::create_dir_all(&folder).map_err(|source| ReportError::Write {
        path: folder.display().to_string(),
        source,
    })?;
    let name = figure_file_name(input.name);
    write_png(&folder.join(&name), &comparison_figure(input)?)?;
    Ok(FigureFile {
        title: input.name.to_string(),
        path: format!("{FIGURES_DIR}/images/{name}"),
    })
}

fn create_figures_dir(dir: &Path) -> Result<std::path::PathBuf, ReportError> {
    let folder = dir.join(FIGURES_DIR);
    std::fs::create_dir_all(&folder).map_err(|source| ReportError::Write {
        path: folder.display().to_string(),
        source,
    })?;
    Ok(folder)
}
