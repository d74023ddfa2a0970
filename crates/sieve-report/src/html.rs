//! `report.html`: one self-contained page that opens from disk without a server or network.
//! It shows the metrics table, the safety figures, the charts, the comparison figures (paged
//! by a small inline script, all shown without it) and every candidate of the test split.

use std::fmt::Write;

use sieve_core::regions::Attribute;

use crate::types::{FigureFile, Report, METRIC_ROWS};

/// Comparison figures per page.
const FIGURES_PER_PAGE: usize = 10;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Formats a metric as `report.md` does: four decimals, or `n/a`.
pub fn metric_cell(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.4}"))
        .unwrap_or_else(|| "n/a".into())
}

fn share(value: Option<f64>) -> String {
    value
        .map(|v| format!("{:.1} %", 100.0 * v))
        .unwrap_or_else(|| "n/a".into())
}

/// Formats a descriptor value with about four significant digits.
fn number(value: f64) -> String {
    if value == value.trunc() && value.abs() < 1e6 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.4}")
    }
}

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; position: sticky; top: 0; }
.better { color: #11772a; } .worse { color: #b00020; }
.charts figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; } figcaption { font-size: 0.9em; color: #444; max-width: 1000px; }
.warning { background: #fff3cd; padding: 0.5em; border: 1px solid #e0c060; }
.scroll { max-height: 40em; overflow: auto; border: 1px solid #ccc; }
tr.suppressed td { background: #e6f7fc; } tr.gt td:last-child { font-weight: bold; }
.pager button { margin: 0 0.2em; }
.figure { margin: 0.8em 0; }
"#;

/// Pages the comparison figures and filters the candidate table. With `#only=images` in the
/// address it hides the sections before the test images (for screenshots); with `#selfcheck`
/// it loads every image and writes the count loaded into `<pre id="selfcheck">`.
const SCRIPT: &str = r#"
(function () {
  var figures = Array.prototype.slice.call(document.querySelectorAll('.figure'));
  var perPage = PER_PAGE;
  var pages = Math.ceil(figures.length / perPage);
  var pager = document.getElementById('pager');
  function show(page) {
    figures.forEach(function (f, i) {
      f.hidden = Math.floor(i / perPage) !== page;
    });
    pager.querySelectorAll('button').forEach(function (b, i) {
      b.disabled = i === page;
    });
  }
  if (pager && pages > 1) {
    for (var p = 0; p < pages; p++) {
      var b = document.createElement('button');
      b.textContent = String(p + 1);
      b.onclick = (function (page) { return function () { show(page); }; })(p);
      pager.appendChild(b);
    }
    show(0);
  }

  var select = document.getElementById('candidate-filter');
  if (select) {
    select.onchange = function () {
      var want = select.value;
      document.querySelectorAll('#candidates tbody tr').forEach(function (row) {
        row.hidden = want !== 'all' && row.getAttribute('data-' + want) !== 'true';
      });
    };
  }

  if (location.hash === '#only=images') {
    var before = true;
    Array.prototype.slice.call(document.body.children).forEach(function (element) {
      if (element.id === 'images') { before = false; }
      if (before && element.tagName !== 'SCRIPT') { element.hidden = true; }
    });
  }

  if (location.hash === '#selfcheck') {
    var images = Array.prototype.slice.call(document.images);
    var waits = images.map(function (img) {
      img.loading = 'eager';
      return new Promise(function (resolve) {
        if (img.complete) { resolve(); return; }
        img.addEventListener('load', resolve);
        img.addEventListener('error', resolve);
      });
    });
    Promise.all(waits).then(function () {
      var failed = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
      var out = document.createElement('pre');
      out.id = 'selfcheck';
      out.textContent = 'loaded ' + (images.length - failed.length) + ' of ' + images.length +
        ' images' + failed.map(function (img) { return '\nfailed: ' + img.getAttribute('src'); }).join('');
      document.body.appendChild(out);
    });
  }
})();
"#;

/// Renders the report as one HTML page.
pub fn render_html(r: &Report) -> String {
    let mut s = String::new();
    let title = format!("sieve report: {} on {}", r.detector.name, r.data);
    let _ = writeln!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&title)
    );
    let _ = writeln!(s, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        s,
        "<p>{} test images ({} defective). Prior <code>{}</code>, model <code>{}</code>, sieve {} (<code>sieve {}</code>).</p>",
        r.test_images,
        r.test_defect_images,
        escape(&r.prior),
        escape(&r.model_dir),
        escape(&r.sieve_version),
        escape(&r.command)
    );
    let _ = writeln!(
        s,
        "<p>The <b>baseline</b> is the detector's own output. The <b>filtered</b> output is the same anomaly map after the false-alarm filter lowered the regions it judged false alarms. A region (candidate) is a connected set of pixels at or above the pixel threshold t; an image is flagged defective when its highest score reaches the image threshold t_img.</p>"
    );
    for w in &r.safety.warnings {
        let _ = writeln!(s, "<p class=\"warning\">Warning: {}</p>", escape(w));
    }

    metrics_section(&mut s, r);
    safety_section(&mut s, r);
    if let Some(figures) = &r.figures {
        charts_section(&mut s, &figures.charts, &figures.notes);
        comparisons_section(&mut s, r, figures);
    }
    candidates_section(&mut s, r);

    let _ = writeln!(
        s,
        "<script>{}</script>\n</body>\n</html>",
        SCRIPT.replace("PER_PAGE", &FIGURES_PER_PAGE.to_string())
    );
    s
}

fn metrics_section(s: &mut String, r: &Report) {
    let _ = writeln!(s, "<h2 id=\"metrics-heading\">Metrics</h2>");
    let _ = writeln!(
        s,
        "<table id=\"metrics\">\n<thead><tr><th>metric</th><th>baseline</th><th>filtered</th><th>change</th></tr></thead>\n<tbody>"
    );
    for (name, key, get) in METRIC_ROWS {
        let (a, b) = (get(&r.baseline), get(&r.filtered));
        let (change, class) = match (a, b) {
            (Some(a), Some(b)) => {
                let d = b - a;
                let class = if d > 5e-5 {
                    "better"
                } else if d < -5e-5 {
                    "worse"
                } else {
                    ""
                };
                (format!("{d:+.4}"), class)
            }
            _ => (String::new(), ""),
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"num\" id=\"baseline-{key}\">{}</td><td class=\"num\" id=\"filtered-{key}\">{}</td><td class=\"num {class}\">{change}</td></tr>",
            escape(name),
            metric_cell(a),
            metric_cell(b)
        );
    }
    let _ = writeln!(s, "</tbody>\n</table>");
    for (name, reason) in &r.baseline.undefined {
        let _ = writeln!(
            s,
            "<p><code>{}</code> is undefined: {}</p>",
            escape(name),
            escape(reason)
        );
    }
    let _ = writeln!(
        s,
        "<p>AUROC and AUPRO need no threshold. F1 at t_img and at t use the deployable thresholds set on defect-free training images; F1-max picks the best threshold on the test split itself, so it is an upper bound for comparison only.</p>"
    );
    if let Some(t) = &r.thresholds {
        let _ = writeln!(
            s,
            "<p>Thresholds ({}): pixel t = {:.5} ({:.1} % quantile of defect-free pixel scores), image t_img = {:.5} ({:.1} % quantile of defect-free image scores), background b = {:.5}.</p>",
            escape(&format!("{:?}", t.source).to_lowercase()),
            t.pixel,
            100.0 * t.pixel_quantile,
            t.image,
            100.0 * t.image_quantile,
            t.background
        );
    }
}

fn safety_section(s: &mut String, r: &Report) {
    let safety = &r.safety;
    let t = &safety.test;
    let _ = writeln!(s, "<h2>What the filter removed</h2>");
    let _ = writeln!(
        s,
        "<p>A candidate is suppressed when its false-alarm probability is at least {:.3} (requested {}) and it passes the safety guards.</p>",
        r.filter.p_cut, r.filter.requested_p_cut
    );
    let _ = writeln!(
        s,
        "<table id=\"safety\">\n<thead><tr><th>candidates</th><th>count</th><th>suppressed</th><th>share</th></tr></thead>\n<tbody>"
    );
    let ratio = |part: usize, whole: usize| (whole > 0).then(|| part as f64 / whole as f64);
    let syn = &safety.synthetic_recall_loss;
    let rows = [
        (
            "held-back synthetic defects (estimate before testing)",
            syn.candidates,
            syn.suppressed,
        ),
        (
            "test: touching the ground truth (real defects)",
            t.gt_candidates,
            t.gt_candidates_suppressed,
        ),
        (
            "test: on defect-free images (false alarms)",
            t.good_candidates,
            t.good_candidates_suppressed,
        ),
        (
            "test: on defect images, away from the ground truth",
            t.other_candidates,
            t.other_candidates_suppressed,
        ),
    ];
    for (name, count, suppressed) in rows {
        let _ = writeln!(
            s,
            "<tr><td>{name}</td><td class=\"num\">{count}</td><td class=\"num\">{suppressed}</td><td class=\"num\">{}</td></tr>",
            share(ratio(suppressed, count))
        );
    }
    let _ = writeln!(s, "</tbody>\n</table>");
    let _ = writeln!(
        s,
        "<p>Suppressing real defects is the filter's failure mode: the second row should stay near zero, while the third row is the false alarms it removed.</p>"
    );
}

fn charts_section(s: &mut String, charts: &[FigureFile], notes: &[String]) {
    let _ = writeln!(s, "<h2>Scores and curves</h2>");
    let captions = [
        ("pixel-scores", "Density of pixel scores of defect-free pixels (blue) and defect pixels (red), log scale. Left the detector's map, right after filtering; the dashed line is the pixel threshold t. Filtering moves false-alarm pixels of defect-free images below t and should leave the red curve in place."),
        ("image-scores", "Density of image scores (the highest pixel score of each image) of defect-free and defective images, before and after filtering; the dashed line is the image threshold t_img."),
        ("roc-image", "Image-level ROC: true-positive rate against false-positive rate over all image thresholds. Blue solid is the baseline, red dashed the filtered output."),
        ("roc-pixel", "Pixel-level ROC, baseline (blue) and filtered (red dashed), sampled at 1000 score levels."),
        ("pro", "Per-region overlap against the false-positive rate up to 0.3, the range AUPRO averages over, sampled at 1000 score levels."),
    ];
    let _ = writeln!(s, "<div class=\"charts\">");
    for chart in charts {
        let caption = captions
            .iter()
            .find(|(name, _)| chart.path.ends_with(&format!("/{name}.png")))
            .map(|(_, c)| *c)
            .unwrap_or("");
        let _ = writeln!(
            s,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption><b>{}.</b> {}</figcaption></figure>",
            escape(&chart.path),
            escape(&chart.title),
            escape(&chart.title),
            escape(caption)
        );
    }
    let _ = writeln!(s, "</div>");
    for note in notes {
        let _ = writeln!(s, "<p>{}</p>", escape(note));
    }
}

fn comparisons_section(s: &mut String, r: &Report, figures: &crate::types::FigureIndex) {
    let _ = writeln!(s, "<h2 id=\"images\">Test images</h2>");
    let _ = writeln!(
        s,
        "<p>{} of {} test images, {}. Each row: the image; its ground truth; the anomaly map as a heat map (yellow is high); the baseline mask (pixels at or above t); the baseline regions in red on the image; the filtered mask, with suppressed regions in cyan; and the filtered regions: kept in solid red, suppressed in dashed cyan, each labelled with its false-alarm probability. Green outlines are the ground truth.</p>",
        figures.comparisons.len(),
        figures.test_images,
        escape(&figures.selection)
    );
    let _ = writeln!(s, "<p class=\"pager\" id=\"pager\"></p>");
    for (i, figure) in figures.comparisons.iter().enumerate() {
        let verdict = r
            .images
            .iter()
            .find(|row| row.image == figure.title)
            .map(|row| {
                format!(
                    " (labelled {}; flagged {} by the baseline, {} after filtering)",
                    if row.labelled_defective {
                        "defective"
                    } else {
                        "good"
                    },
                    if row.baseline_defective {
                        "defective"
                    } else {
                        "good"
                    },
                    if row.filtered_defective {
                        "defective"
                    } else {
                        "good"
                    },
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<figure class=\"figure\" id=\"figure-{i}\"><figcaption>{}{}</figcaption><img src=\"{}\" alt=\"comparison figure of {}\" loading=\"lazy\"></figure>",
            escape(&figure.title),
            escape(&verdict),
            escape(&figure.path),
            escape(&figure.title)
        );
    }
}

fn candidates_section(s: &mut String, r: &Report) {
    let _ = writeln!(s, "<h2 id=\"candidates-heading\">Candidates</h2>");
    let _ = writeln!(
        s,
        "<p>Every candidate region of the test split ({} in all): its bounding box (x, y, width, height in pixels), its descriptor, the false-alarm probability, the decision, and whether it overlaps the ground truth. Rows in blue were suppressed.</p>",
        r.candidates.len()
    );
    let _ = writeln!(
        s,
        "<p><label>Show <select id=\"candidate-filter\"><option value=\"all\">all candidates</option><option value=\"suppressed\">suppressed</option><option value=\"gt\">overlapping the ground truth</option><option value=\"gt-suppressed\">suppressed and overlapping the ground truth</option></select></label></p>"
    );
    let _ = write!(
        s,
        "<div class=\"scroll\"><table id=\"candidates\">\n<thead><tr><th>image</th><th>box</th>"
    );
    for attribute in Attribute::ALL {
        let _ = write!(s, "<th>{}</th>", attribute.name());
    }
    let _ = writeln!(
        s,
        "<th>false-alarm probability</th><th>decision</th><th>overlaps ground truth</th></tr></thead>\n<tbody>"
    );
    for c in &r.candidates {
        let mut classes = Vec::new();
        if c.suppressed {
            classes.push("suppressed");
        }
        if c.touches_defect {
            classes.push("gt");
        }
        let decision = if c.suppressed {
            "suppressed".to_string()
        } else {
            let mut reasons = Vec::new();
            if !c.inside_envelope {
                reasons.push("unlike every mined false alarm");
            }
            if c.like_defect {
                reasons.push("within the synthetic defects' range");
            }
            if reasons.is_empty() {
                "kept".to_string()
            } else {
                format!("kept: {}", reasons.join(", "))
            }
        };
        let _ = write!(
            s,
            "<tr class=\"{}\" data-suppressed=\"{}\" data-gt=\"{}\" data-gt-suppressed=\"{}\"><td>{}</td><td>{} {} {} {}</td>",
            classes.join(" "),
            c.suppressed,
            c.touches_defect,
            c.suppressed && c.touches_defect,
            escape(&c.image),
            c.bbox.x,
            c.bbox.y,
            c.bbox.width,
            c.bbox.height
        );
        for attribute in Attribute::ALL {
            let _ = write!(
                s,
                "<td class=\"num\">{}</td>",
                number(c.descriptor.get(attribute))
            );
        }
        let _ = writeln!(
            s,
            "<td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            c.probability
                .map(|p| format!("{p:.4}"))
                .unwrap_or_else(|| "n/a".into()),
            escape(&decision),
            if c.touches_defect { "yes" } else { "no" }
        );
    }
    let _ = writeln!(s, "</tbody>\n</table></div>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_table_has_ids_and_values() {
        let mut report = Report::default();
        report.baseline.set("image_auroc", Ok(0.91234));
        report.filtered.set("image_auroc", Ok(0.92));
        let html = render_html(&report);
        assert!(
            html.contains("id=\"baseline-image_auroc\">0.9123<"),
            "{html}"
        );
        assert!(html.contains("id=\"filtered-image_auroc\">0.9200<"));
        assert!(html.contains("+0.0077"));
        assert!(html.contains("id=\"baseline-pixel_auroc\">n/a<"));
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
