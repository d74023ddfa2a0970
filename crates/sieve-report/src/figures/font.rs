//! The font of the figures: DejaVu Sans, embedded so that figures render the same on a machine
//! without system fonts. Its licence is `assets/DejaVuSans-LICENSE.txt` in this crate.

use std::sync::OnceLock;

use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::ReportError;

/// The family name under which the embedded font is registered with plotters.
pub const FAMILY: &str = "sans-serif";

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Registers the embedded font with plotters once per process.
pub fn ensure_font() -> Result<(), ReportError> {
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Plot(
            "the embedded font DejaVuSans.ttf could not be parsed".into(),
        ))
    }
}

/// A line of text to draw onto an image, `(x, y)` being its top-left corner in pixels.
#[derive(Debug, Clone)]
pub struct Caption {
    pub text: String,
    pub x: i32,
    pub y: i32,
    /// Font size in pixels.
    pub size: f64,
    pub colour: Rgb<u8>,
    /// Colour of a filled box behind the text, for text over photos.
    pub background: Option<Rgb<u8>>,
}

/// Draws every caption onto `canvas`.
pub fn draw_captions(canvas: &mut RgbImage, captions: &[Caption]) -> Result<(), ReportError> {
    ensure_font()?;
    let (width, height) = canvas.dimensions();
    let root = BitMapBackend::with_buffer(canvas, (width, height)).into_drawing_area();
    for caption in captions {
        let Rgb([r, g, b]) = caption.colour;
        let style = (FAMILY, caption.size).into_font().color(&RGBColor(r, g, b));
        if let Some(Rgb([r, g, b])) = caption.background {
            let (w, h) = root
                .estimate_text_size(&caption.text, &style)
                .map_err(plot_error)?;
            let corner = (caption.x - 1, caption.y - 1);
            let far = (caption.x + w as i32 + 1, caption.y + h as i32 + 1);
            root.draw(&Rectangle::new([corner, far], RGBColor(r, g, b).filled()))
                .map_err(plot_error)?;
        }
        root.draw_text(&caption.text, &style, (caption.x, caption.y))
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

/// Converts a plotters error into a report error.
pub fn plot_error<E: std::error::Error + Send + Sync>(
    error: plotters::drawing::DrawingAreaErrorKind<E>,
) -> ReportError {
    ReportError::Plot(error.to_string())
}
