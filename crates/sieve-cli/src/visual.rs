//! The figures of `sieve run` and `sieve eval`: charts of the whole test split and comparison
//! figures of a sample of its images, written under `<out>/figures/` for `report.html`.

use std::path::Path;

use anyhow::Context;
use rayon::prelude::*;
use sieve_core::filter::FalseAlarmFilter;
use sieve_core::imageio::load_rgb;
use sieve_report::figures::{write_charts, write_comparison, ChartImage, ComparisonInput};
use sieve_report::{FigureFile, FigureIndex};

use crate::args::FigureCount;
use crate::evaluate::ImageResult;
use crate::progress::Bars;

/// Chooses the images that get a comparison figure, returned in split order. With a count,
/// images where the filter suppressed a candidate come first, then the others; each group is
/// sampled at even steps through the split, so every defect type is represented.
pub fn choose_images(results: &[ImageResult], count: FigureCount) -> Vec<usize> {
    let limit = match count {
        FigureCount::All => return (0..results.len()).collect(),
        FigureCount::Count(n) => n.min(results.len()),
    };
    let acted = |r: &ImageResult| r.candidates.iter().any(|(c, _)| c.judgement.suppressed);
    let first: Vec<usize> = (0..results.len()).filter(|&i| acted(&results[i])).collect();
    let rest: Vec<usize> = (0..results.len())
        .filter(|&i| !acted(&results[i]))
        .collect();

    let mut chosen = even_steps(&first, limit);
    chosen.extend(even_steps(&rest, limit - chosen.len()));
    chosen.sort_unstable();
    chosen
}

/// Takes `count` items of `items` at even steps, the first one included.
fn even_steps(items: &[usize], count: usize) -> Vec<usize> {
    let count = count.min(items.len());
    (0..count)
        .map(|k| items[k * items.len() / count.max(1)])
        .collect()
}

/// Describes the selection for the report.
fn selection_text(count: FigureCount, shown: usize, total: usize) -> String {
    match count {
        FigureCount::All => "every image".into(),
        FigureCount::Count(_) if shown == total => "every image".into(),
        FigureCount::Count(_) => "images where the filter suppressed a region first, then others at even steps through the split; pass --figures all for every image".into(),
    }
}

/// Writes the charts and the comparison figures of `results` into `<out>/figures/` and returns
/// their index for the report.
pub fn render_figures(
    results: &[ImageResult],
    filter: &FalseAlarmFilter,
    out: &Path,
    count: FigureCount,
    bars: Bars,
) -> anyhow::Result<FigureIndex> {
    let images: Vec<ChartImage> = results
        .iter()
        .map(|r| ChartImage {
            baseline: &r.baseline,
            filtered: &r.filtered,
            ground_truth: &r.mask,
            defective: r.defective,
        })
        .collect();
    let (charts, notes) =
        write_charts(out, &images, &filter.thresholds).context("failed to draw the charts")?;

    let chosen = choose_images(results, count);
    let bar = bars.bar(chosen.len() as u64, "draw figures");
    let comparisons: Vec<FigureFile> = chosen
        .par_iter()
        .map(|&i| {
            let r = &results[i];
            let image = load_rgb(&r.path)?;
            // Filtering is deterministic, so applying it again gives the labels behind the
            // stored result without keeping every label grid in memory.
            let filtered = filter.apply(&r.baseline, &image);
            let figure = write_comparison(
                out,
                &ComparisonInput {
                    name: &r.name,
                    image: &image,
                    ground_truth: &r.mask,
                    baseline: &r.baseline,
                    filtered: &filtered.map,
                    labels: &filtered.labels,
                    candidates: &filtered.candidates,
                    thresholds: &filter.thresholds,
                },
            )
            .with_context(|| format!("failed to draw the figure of {}", r.path.display()))?;
            bar.inc(1);
            Ok(figure)
        })
        .collect::<anyhow::Result<_>>()?;
    bar.finish_and_clear();

    Ok(FigureIndex {
        charts,
        selection: selection_text(count, comparisons.len(), results.len()),
        comparisons,
        test_images: results.len(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_steps_spread_over_items() {
        let items: Vec<usize> = (0..10).collect();
        assert_eq!(even_steps(&items, 4), vec![0, 2, 5, 7]);
        assert_eq!(even_steps(&items, 20), items);
        assert!(even_steps(&items, 0).is_empty());
    }
}
