//! Charts of a labelled split: score distributions of defect-free and defect pixels and images,
//! baseline beside filtered, and ROC and PRO curves with both outputs on one plot.

use image::RgbImage;
use plotters::prelude::*;
use sieve_core::filter::Thresholds;
use sieve_core::metrics::{pro_curve, roc_curve};
use sieve_core::{AnomalyMap, Mask};

use super::font::{ensure_font, plot_error, FAMILY};
use crate::ReportError;

/// Number of histogram bins of the score distributions.
const BINS: usize = 80;
/// Number of histogram bins of the image score distributions.
const IMAGE_BINS: usize = 20;
/// Number of score levels the pixel ROC and PRO curves are sampled at.
const CURVE_LEVELS: usize = 1000;
/// Upper end of the false-positive rate of the PRO plot, the range AUPRO integrates over.
pub const PRO_FPR_LIMIT: f64 = 0.3;

const BASELINE: RGBColor = RGBColor(31, 119, 180);
const FILTERED: RGBColor = RGBColor(214, 39, 40);
const GOOD: RGBColor = RGBColor(31, 119, 180);
const DEFECT: RGBColor = RGBColor(214, 39, 40);

/// One evaluated image as the charts need it.
pub struct ChartImage<'a> {
    pub baseline: &'a AnomalyMap,
    pub filtered: &'a AnomalyMap,
    pub ground_truth: &'a Mask,
    pub defective: bool,
}

/// A rendered chart.
pub struct Chart {
    /// File stem, such as `roc-pixel`.
    pub name: &'static str,
    pub title: String,
    pub image: RgbImage,
}

/// Counts of scores in equal bins over `low..=high`; scores outside land in the end bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub low: f64,
    pub high: f64,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn new(low: f64, high: f64, bins: usize) -> Self {
        Self {
            low,
            high: if high > low { high } else { low + 1.0 },
            counts: vec![0; bins.max(1)],
        }
    }

    pub fn add(&mut self, score: f32) {
        if !score.is_finite() {
            return;
        }
        let bins = self.counts.len();
        let position = (score as f64 - self.low) / (self.high - self.low) * bins as f64;
        let bin = (position.max(0.0) as usize).min(bins - 1);
        self.counts[bin] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Returns `(bin centre, density)` of every bin; the densities integrate to 1.
    pub fn density(&self) -> Vec<(f64, f64)> {
        let total = self.total().max(1) as f64;
        let width = (self.high - self.low) / self.counts.len() as f64;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                (
                    self.low + (i as f64 + 0.5) * width,
                    c as f64 / (total * width),
                )
            })
            .collect()
    }
}

fn histograms(low: f32, high: f32, bins: usize) -> [[Histogram; 2]; 2] {
    std::array::from_fn(|_| std::array::from_fn(|_| Histogram::new(low as f64, high as f64, bins)))
}

/// A line of a chart.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    dashed: bool,
}

/// Axes and marks of one plot.
struct Plot<'a> {
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    x_range: (f64, f64),
    y_range: (f64, f64),
    series: Vec<Series>,
    /// A vertical line at this x with its label, such as a threshold.
    marker: Option<(f64, String)>,
    diagonal: bool,
}

fn draw_plot<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    plot: &Plot,
) -> Result<(), ReportError> {
    let mut chart = ChartBuilder::on(area)
        .caption(&plot.title, (FAMILY, 15))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(
            plot.x_range.0..plot.x_range.1,
            plot.y_range.0..plot.y_range.1,
        )
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label)
        .y_desc(plot.y_label)
        .label_style((FAMILY, 11))
        .axis_desc_style((FAMILY, 12))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(plot_error)?;
    if plot.diagonal {
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                RGBColor(180, 180, 180),
            ))
            .map_err(plot_error)?;
    }
    if let Some((x, label)) = &plot.marker {
        let points = [(*x, plot.y_range.0), (*x, plot.y_range.1)];
        chart
            .draw_series(DashedLineSeries::new(
                points,
                6,
                4,
                ShapeStyle::from(&BLACK).stroke_width(1),
            ))
            .map_err(plot_error)?
            .label(label.clone())
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK));
    }
    for s in &plot.series {
        let style = ShapeStyle::from(&s.colour).stroke_width(2);
        let colour = s.colour;
        let drawn = if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(s.points.clone(), 7, 4, style))
                .map_err(plot_error)?
        } else {
            chart
                .draw_series(LineSeries::new(s.points.clone(), style))
                .map_err(plot_error)?
        };
        drawn
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 11))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// Renders plots side by side into one image of `width` x `height` per plot.
fn render(plots: &[Plot], width: u32, height: u32) -> Result<RgbImage, ReportError> {
    ensure_font()?;
    let total = width * plots.len() as u32;
    let mut canvas = RgbImage::new(total, height);
    {
        let root = BitMapBackend::with_buffer(&mut canvas, (total, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((1, plots.len()));
        for (area, plot) in areas.iter().zip(plots) {
            draw_plot(area, plot)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(canvas)
}

/// Keeps at most about `limit` points of a curve, always the first and the last.
fn thin(points: Vec<(f64, f64)>, limit: usize) -> Vec<(f64, f64)> {
    if points.len() <= limit {
        return points;
    }
    let step = points.len().div_ceil(limit);
    let last = points[points.len() - 1];
    let mut kept: Vec<(f64, f64)> = points.into_iter().step_by(step).collect();
    if kept.last() != Some(&last) {
        kept.push(last);
    }
    kept
}

/// Density plots of defect-free and defect samples, one plot per output.
fn distribution_plots(
    what: &str,
    sides: [(&str, &Histogram, &Histogram); 2],
    threshold: (f64, &str),
    log: bool,
) -> Vec<Plot<'static>> {
    let transform = |d: f64| if log { d.log10() } else { d };
    let mut y_max = f64::NEG_INFINITY;
    let mut y_min = f64::INFINITY;
    let mut series_of = |h: &Histogram, label: &str, colour| {
        let points: Vec<(f64, f64)> = h
            .density()
            .into_iter()
            .filter(|&(_, d)| !log || d > 0.0)
            .map(|(x, d)| (x, transform(d)))
            .collect();
        for &(_, y) in &points {
            y_max = y_max.max(y);
            y_min = y_min.min(y);
        }
        Series {
            label: format!("{label} ({})", h.total()),
            points,
            colour,
            dashed: false,
        }
    };
    let mut built = Vec::new();
    for (side, good, defect) in sides {
        let series = vec![
            series_of(good, "defect-free", GOOD),
            series_of(defect, "defect", DEFECT),
        ];
        built.push((side, good.low, good.high, series));
    }
    if !y_max.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let y_range = if log {
        (y_min.floor(), y_max.ceil() + 0.5)
    } else {
        (0.0, y_max * 1.15)
    };
    built
        .into_iter()
        .map(|(side, low, high, series)| Plot {
            title: format!("{what} scores, {side}"),
            x_label: "score",
            y_label: if log { "density (log10)" } else { "density" },
            x_range: (low, high),
            y_range,
            series,
            marker: Some((threshold.0, threshold.1.to_string())),
            diagonal: false,
        })
        .collect()
}

/// Returns the score range of a set of maps, widened to include `extra`.
fn score_range<'a>(maps: impl Iterator<Item = &'a AnomalyMap>, extra: f32) -> (f32, f32) {
    let mut low = extra;
    let mut high = extra;
    for map in maps {
        for &v in map.data.iter().filter(|v| v.is_finite()) {
            low = low.min(v);
            high = high.max(v);
        }
    }
    (low, high)
}

/// Rounds every score down to one of `levels` equal steps of `low..=high`, so that curves
/// computed on the copy have at most `levels + 1` points and are exact at those score levels.
fn quantised(map: &AnomalyMap, low: f32, high: f32, levels: usize) -> AnomalyMap {
    let step = (high - low).max(f32::EPSILON) / levels as f32;
    let data = map
        .data
        .iter()
        .map(|&v| low + ((v - low) / step).floor().clamp(0.0, levels as f32) * step)
        .collect();
    AnomalyMap::from_vec(map.width, map.height, data)
}

/// Renders the score distributions and the ROC and PRO curves. A chart that is undefined on
/// this split (one class only) is left out, with the reason in the returned notes.
pub fn render_charts(
    images: &[ChartImage],
    thresholds: &Thresholds,
) -> Result<(Vec<Chart>, Vec<String>), ReportError> {
    let mut charts = Vec::new();
    let mut notes = Vec::new();

    let (low, high) = score_range(images.iter().map(|i| i.baseline), thresholds.background);
    // Indexed [baseline or filtered][defect-free or defect].
    let mut pixel = histograms(low, high, BINS);
    for image in images {
        for (side, map) in [image.baseline, image.filtered].into_iter().enumerate() {
            for (&v, &defect) in map.data.iter().zip(&image.ground_truth.data) {
                pixel[side][usize::from(defect)].add(v);
            }
        }
    }
    let plots = distribution_plots(
        "pixel",
        [
            ("baseline", &pixel[0][0], &pixel[0][1]),
            ("filtered", &pixel[1][0], &pixel[1][1]),
        ],
        (thresholds.pixel as f64, "pixel threshold t"),
        true,
    );
    charts.push(Chart {
        name: "pixel-scores",
        title: "Pixel score distributions".into(),
        image: render(&plots, 520, 340)?,
    });

    let image_scores: Vec<[f32; 2]> = images
        .iter()
        .map(|i| [i.baseline.max(), i.filtered.max()])
        .collect();
    let (ilow, ihigh) = image_scores
        .iter()
        .flatten()
        .fold((thresholds.image, thresholds.image), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    let mut per_image = histograms(ilow, ihigh, IMAGE_BINS);
    for (scores, image) in image_scores.iter().zip(images) {
        for side in 0..2 {
            per_image[side][usize::from(image.defective)].add(scores[side]);
        }
    }
    let plots = distribution_plots(
        "image",
        [
            ("baseline", &per_image[0][0], &per_image[0][1]),
            ("filtered", &per_image[1][0], &per_image[1][1]),
        ],
        (thresholds.image as f64, "image threshold t_img"),
        false,
    );
    charts.push(Chart {
        name: "image-scores",
        title: "Image score distributions".into(),
        image: render(&plots, 520, 340)?,
    });

    let labels: Vec<bool> = images.iter().map(|i| i.defective).collect();
    let mut roc = Vec::new();
    for (side, colour, dashed) in [("baseline", BASELINE, false), ("filtered", FILTERED, true)] {
        let index = usize::from(side == "filtered");
        let scores: Vec<f32> = image_scores.iter().map(|s| s[index]).collect();
        match roc_curve(&scores, &labels) {
            Ok(curve) => roc.push(Series {
                label: side.to_string(),
                points: thin(curve.fpr.into_iter().zip(curve.tpr).collect(), 4000),
                colour,
                dashed,
            }),
            Err(e) => notes.push(format!("image ROC curve ({side}) left out: {e}")),
        }
    }
    if !roc.is_empty() {
        charts.push(Chart {
            name: "roc-image",
            title: "Image ROC curve".into(),
            image: render(
                &[curve_plot("Image ROC", "true-positive rate", 1.0, roc)],
                460,
                400,
            )?,
        });
    }

    let masks: Vec<&Mask> = images.iter().map(|i| i.ground_truth).collect();
    let mut pixel_roc = Vec::new();
    let mut pro = Vec::new();
    for (side, colour, dashed) in [("baseline", BASELINE, false), ("filtered", FILTERED, true)] {
        let maps: Vec<AnomalyMap> = images
            .iter()
            .map(|i| {
                let map = if side == "filtered" {
                    i.filtered
                } else {
                    i.baseline
                };
                quantised(map, low, high, CURVE_LEVELS)
            })
            .collect();
        let refs: Vec<&AnomalyMap> = maps.iter().collect();
        let scores: Vec<f32> = maps.iter().flat_map(|m| m.data.iter().copied()).collect();
        let pixel_labels: Vec<bool> = masks.iter().flat_map(|m| m.data.iter().copied()).collect();
        match roc_curve(&scores, &pixel_labels) {
            Ok(curve) => pixel_roc.push(Series {
                label: side.to_string(),
                points: curve.fpr.into_iter().zip(curve.tpr).collect(),
                colour,
                dashed,
            }),
            Err(e) => notes.push(format!("pixel ROC curve ({side}) left out: {e}")),
        }
        drop(scores);
        drop(pixel_labels);
        match pro_curve(&refs, &masks) {
            Ok(curve) => pro.push(Series {
                label: side.to_string(),
                points: curve
                    .fpr
                    .into_iter()
                    .zip(curve.pro)
                    .take_while(|&(fpr, _)| fpr <= PRO_FPR_LIMIT * 1.02)
                    .collect(),
                colour,
                dashed,
            }),
            Err(e) => notes.push(format!("PRO curve ({side}) left out: {e}")),
        }
    }
    if !pixel_roc.is_empty() {
        charts.push(Chart {
            name: "roc-pixel",
            title: "Pixel ROC curve".into(),
            image: render(
                &[curve_plot(
                    "Pixel ROC",
                    "true-positive rate",
                    1.0,
                    pixel_roc,
                )],
                460,
                400,
            )?,
        });
    }
    if !pro.is_empty() {
        let mut plot = curve_plot("PRO", "per-region overlap", PRO_FPR_LIMIT, pro);
        plot.diagonal = false;
        charts.push(Chart {
            name: "pro",
            title: "PRO curve".into(),
            image: render(&[plot], 460, 400)?,
        });
    }
    Ok((charts, notes))
}

fn curve_plot(
    title: &str,
    y_label: &'static str,
    x_max: f64,
    series: Vec<Series>,
) -> Plot<'static> {
    Plot {
        title: title.to_string(),
        x_label: "false-positive rate",
        y_label,
        x_range: (0.0, x_max),
        y_range: (0.0, 1.0),
        series,
        marker: None,
        diagonal: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_density_integrates_to_one() {
        let mut h = Histogram::new(0.0, 1.0, 4);
        for v in [0.1, 0.2, 0.3, 0.6, 0.9, 1.5, -3.0] {
            h.add(v);
        }
        // 1.5 lands in the last bin and -3 in the first one.
        assert_eq!(h.counts, vec![3, 1, 1, 2]);
        let integral: f64 = h.density().iter().map(|&(_, d)| d * 0.25).sum();
        assert!((integral - 1.0).abs() < 1e-12);
    }

    #[test]
    fn quantised_scores_round_down_to_levels() {
        let map = AnomalyMap::from_vec(3, 1, vec![0.0, 0.26, 1.0]);
        let q = quantised(&map, 0.0, 1.0, 4);
        assert_eq!(q.data, vec![0.0, 0.25, 1.0]);
    }

    #[test]
    fn thin_keeps_ends() {
        let points: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 0.0)).collect();
        let kept = thin(points, 4);
        assert_eq!(kept.first(), Some(&(0.0, 0.0)));
        assert_eq!(kept.last(), Some(&(9.0, 0.0)));
        assert!(kept.len() <= 5);
    }
}
