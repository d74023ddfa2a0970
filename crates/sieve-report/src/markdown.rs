//! The Markdown report: a table of baseline against filtered metrics, then safety, filter
//! training and timing.

use std::fmt::Write;

use crate::types::{Report, METRIC_ROWS};

fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into())
}

fn delta(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.4}", b - a),
        _ => "".into(),
    }
}

fn share(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1} %", 100.0 * v))
        .unwrap_or_else(|| "n/a".into())
}

/// Renders the report as Markdown.
pub fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# sieve report: {} on {}\n", r.detector.name, r.data);
    let _ = writeln!(
        s,
        "Test images: {} ({} defective). Prior: `{}`. Model: `{}`.\n",
        r.test_images, r.test_defect_images, r.prior, r.model_dir
    );

    let _ = writeln!(s, "## Baseline and filtered\n");
    let _ = writeln!(s, "| metric | baseline | filtered | change |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
    for (name, _, get) in METRIC_ROWS {
        let (a, b) = (get(&r.baseline), get(&r.filtered));
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} |",
            cell(a),
            cell(b),
            delta(a, b)
        );
    }
    for (name, reason) in &r.baseline.undefined {
        let _ = writeln!(s, "\n`{name}` is undefined: {reason}");
    }

    if let Some(t) = &r.thresholds {
        let _ = writeln!(
            s,
            "\nThresholds ({}): pixel t = {:.5} ({:.1} % quantile of defect-free pixels), image t_img = {:.5} ({:.1} % quantile), background b = {:.5}.",
            t.source,
            t.pixel,
            100.0 * t.pixel_quantile,
            t.image,
            100.0 * t.image_quantile,
            t.background
        );
    }

    let safety = &r.safety;
    let _ = writeln!(s, "\n## Safety\n");
    let _ = writeln!(
        s,
        "False-alarm probability cut in use: {:.4} (requested {}).",
        r.filter.p_cut, r.filter.requested_p_cut
    );
    if r.filter.p_cut > r.filter.requested_p_cut {
        let budget = r.filter_settings["recall_loss_budget"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "The recall-loss brake raised it: at the requested cut the filter would suppress more than {:.1} % of the {} held-back synthetic defect candidates.",
            100.0 * budget,
            r.filter.held_back_samples
        );
    }
    let expected = r.filter_settings["min_held_back_candidates"]
        .as_u64()
        .unwrap_or(0) as usize;
    if r.filter.held_back_samples < expected {
        let _ = writeln!(
            s,
            "Only {} held-back candidates were detected ({} expected) within the painting limit, so the estimate is coarse.",
            r.filter.held_back_samples, expected
        );
    }
    let _ = writeln!(s);
    for w in &safety.warnings {
        let _ = writeln!(s, "**Warning:** {w}\n");
    }
    let _ = writeln!(
        s,
        "| measure | candidates | suppressed | share | area share |"
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: |");
    let syn = &safety.synthetic_recall_loss;
    let _ = writeln!(
        s,
        "| synthetic recall loss (held-back painted defects, {}) | {} | {} | {} | {} |",
        safety.estimate_source,
        syn.candidates,
        syn.suppressed,
        share(syn.share),
        share(syn.area_share)
    );
    if let Some(v) = &safety.validation_recall_loss {
        let _ = writeln!(
            s,
            "| validation defects | {} | {} | {} | {} |",
            v.candidates,
            v.suppressed,
            share(v.share),
            share(v.area_share)
        );
    }
    let before = &r.filter.synthetic_recall_loss_at_requested_p_cut;
    if r.filter.p_cut > r.filter.requested_p_cut {
        let _ = writeln!(
            s,
            "| synthetic recall loss at the requested p_cut {} (before the brake) | {} | {} | {} | {} |",
            r.filter.requested_p_cut,
            before.candidates,
            before.suppressed,
            share(before.share),
            share(before.area_share)
        );
    }
    let t = &safety.test;
    let gt_share =
        (t.gt_candidates > 0).then(|| t.gt_candidates_suppressed as f64 / t.gt_candidates as f64);
    let _ = writeln!(
        s,
        "| test candidates touching the ground truth | {} | {} | {} | {} |",
        t.gt_candidates,
        t.gt_candidates_suppressed,
        share(gt_share),
        share(t.gt_area_share_suppressed)
    );
    let good_share = (t.good_candidates > 0)
        .then(|| t.good_candidates_suppressed as f64 / t.good_candidates as f64);
    let _ = writeln!(
        s,
        "| test candidates on defect-free images (false alarms) | {} | {} | {} | |",
        t.good_candidates,
        t.good_candidates_suppressed,
        share(good_share)
    );
    let _ = writeln!(
        s,
        "| other test candidates on defect images | {} | {} | | |",
        t.other_candidates, t.other_candidates_suppressed
    );

    let f = &r.filter;
    let _ = writeln!(s, "\n## Filter training\n");
    if let Some(reason) = &f.inactive_reason {
        let _ = writeln!(s, "**The filter is inactive:** {reason}\n");
    }
    let _ = writeln!(
        s,
        "- false alarms mined on out-of-fold defect-free maps: {}\n- synthetic defect candidates: {} for training, {} held back ({} painted cases, {} detected, miss rate {:.1} %)\n- after balancing: {} false alarms, {} defects ({} and {} augmented copies)",
        f.false_alarms_mined,
        f.defect_samples,
        f.held_back_samples,
        r.synthesis.cases,
        r.synthesis.detected_cases,
        100.0 * r.synthesis.miss_rate,
        f.balanced.0,
        f.balanced.1,
        f.augmented.0,
        f.augmented.1
    );
    if let (Some(c), Some(g)) = (f.c, f.gamma) {
        let _ = writeln!(
            s,
            "- SVM: C = {c}, gamma = {g:.4}, {} support vectors; out-of-fold log-loss {:.4}, balanced accuracy {:.4}",
            f.support_vectors.unwrap_or(0),
            f.cv_log_loss.unwrap_or(f64::NAN),
            f.cv_balanced_accuracy.unwrap_or(f64::NAN)
        );
    }

    let _ = writeln!(s, "\n## Time\n");
    let _ = writeln!(s, "| stage | seconds |");
    let _ = writeln!(s, "| --- | ---: |");
    for (stage, secs) in &r.timing.stages {
        let _ = writeln!(s, "| {stage} | {secs:.1} |");
    }
    let _ = writeln!(s, "| total | {:.1} |", r.timing.total);
    if let (Some(d), Some(f)) = (r.timing.detector_ms_per_image, r.timing.filter_ms_per_image) {
        let _ = writeln!(s, "\nPer test image: detector {d:.1} ms, filter {f:.2} ms.");
    }
    if let Some(m) = r.timing.peak_memory_mib {
        let _ = writeln!(s, "Peak memory: {m:.0} MiB.");
    }

    for note in &r.notes {
        let _ = writeln!(s, "\nNote: {note}");
    }
    if r.figures.is_some() {
        let _ = writeln!(
            s,
            "\nFigures: open `report.html` in a browser for the score distributions, the ROC and PRO curves, a comparison figure per test image and every candidate."
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use sieve_core::metrics::MetricError;

    #[test]
    fn table_shows_values_and_changes() {
        let mut report = Report::default();
        report.baseline.set("pixel_auroc", Ok(0.9));
        report.filtered.set("pixel_auroc", Ok(0.8875));
        let md = render_markdown(&report);
        assert!(
            md.contains("| pixel AUROC | 0.9000 | 0.8875 | -0.0125 |"),
            "{md}"
        );
    }

    #[test]
    fn undefined_metric_shows_reason() {
        let mut report = Report::default();
        let missing = MetricError::OneClass {
            metric: "AUROC",
            missing: sieve_core::metrics::LabelClass::Positive,
        };
        report.baseline.set("image_auroc", Err(missing.clone()));
        let md = render_markdown(&report);
        assert!(md.contains("| image AUROC | n/a | n/a |  |"), "{md}");
        assert!(md.contains(&missing.to_string()), "{md}");
        assert!(report.baseline.image_auroc.is_none());
    }
}
