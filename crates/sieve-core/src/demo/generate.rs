//! Generation of the demo set: which image gets which defect and pattern, rendering in
//! parallel with one random stream per image, then writing the MVTec AD layout.

use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::error::DemoError;
use super::layout::{self, Marker, MARKER};
use super::paint::{paint_defect, paint_pattern};
use super::params::{CheckedDemoParams, DemoParams};
use super::summary::{DefectKind, DemoImage, DemoSummary, PatternKind, Split};
use super::surface::render_surface;
use crate::dataset::GOOD;

/// Writes a synthetic inspection set in the MVTec AD layout under `root`:
///
/// ```text
/// train/good/NNN.png                  defect-free, some with a harmless pattern
/// test/good/NNN.png                   defect-free, some with a harmless pattern
/// test/{scratch,pit}/NNN.png          one small dark defect each, some with a harmless pattern
/// ground_truth/{scratch,pit}/NNN_mask.png   8-bit masks, 255 on the defect and 0 elsewhere
/// .sieve-demo.json                    marker: the parameters and one record per image
/// ```
///
/// The same parameters give byte-identical files. `root` may be missing, empty or a previous
/// demo set, whose listed files are replaced; any other non-empty folder is rejected.
pub fn generate(root: &Path, params: &DemoParams) -> Result<DemoSummary, DemoError> {
    let checked = params.clone().check()?;
    let plan = plan(checked.params());

    let rendered = plan
        .par_iter()
        .map(|planned| render(root, planned, &checked))
        .collect::<Result<Vec<_>, _>>()?;
    let images: Vec<DemoImage> = rendered.iter().map(|r| r.record.clone()).collect();

    layout::prepare(root)?;
    // The marker goes first, so a folder left by an interrupted run is still known as a demo.
    let marker = serde_json::to_vec_pretty(&Marker::new(checked.params(), &images))
        .expect("demo records serialise to JSON");
    layout::write_atomic(root, Path::new(MARKER), &marker)?;
    for image in &rendered {
        layout::write_atomic(root, &image.record.path, &image.png)?;
        if let (Some(mask_path), Some(mask_png)) = (&image.record.mask, &image.mask_png) {
            layout::write_atomic(root, mask_path, mask_png)?;
        }
    }

    let summary = DemoSummary {
        root: root.to_owned(),
        width: params.width,
        height: params.height,
        images,
    };
    tracing::info!(
        root = %root.display(),
        images = summary.images.len(),
        seed = params.seed,
        "wrote demo set"
    );
    Ok(summary)
}

/// One image to render: where it goes, what it shows and its random stream.
#[derive(Debug, Clone)]
struct Planned {
    path: PathBuf,
    mask: Option<PathBuf>,
    split: Split,
    defect: Option<DefectKind>,
    pattern: Option<PatternKind>,
    stream: u64,
}

/// Lays out every image in file order. In each folder, `round(share * count)` images drawn at
/// random carry a harmless pattern, stains and stamps alternating.
fn plan(params: &DemoParams) -> Vec<Planned> {
    let scratches = params.test_defect.div_ceil(2);
    let folders = [
        (
            Split::Train,
            None,
            params.train_count,
            params.train_pattern_share,
        ),
        (
            Split::Test,
            None,
            params.test_good,
            params.test_pattern_share,
        ),
        (
            Split::Test,
            Some(DefectKind::Scratch),
            scratches,
            params.test_pattern_share,
        ),
        (
            Split::Test,
            Some(DefectKind::Pit),
            params.test_defect - scratches,
            params.test_pattern_share,
        ),
    ];

    // Stream 0 draws the plan; image `i` in file order renders from stream `i + 1`.
    let mut rng = image_rng(params.seed, 0);
    let mut planned = Vec::new();
    for (split, defect, count, share) in folders {
        let with_pattern = (share * count as f64).round() as usize;
        let mut chosen = rand::seq::index::sample(&mut rng, count, with_pattern).into_vec();
        chosen.sort_unstable();
        let mut patterns = vec![None; count];
        for (order, index) in chosen.into_iter().enumerate() {
            patterns[index] = Some(if order % 2 == 0 {
                PatternKind::Stain
            } else {
                PatternKind::Stamp
            });
        }

        let split_name = match split {
            Split::Train => "train",
            Split::Test => "test",
        };
        let folder = defect.map_or(GOOD, DefectKind::name);
        for (index, pattern) in patterns.into_iter().enumerate() {
            let stem = format!("{index:03}");
            planned.push(Planned {
                path: PathBuf::from(split_name)
                    .join(folder)
                    .join(format!("{stem}.png")),
                mask: defect.map(|kind| {
                    PathBuf::from("ground_truth")
                        .join(kind.name())
                        .join(format!("{stem}_mask.png"))
                }),
                split,
                defect,
                pattern,
                stream: planned.len() as u64 + 1,
            });
        }
    }
    planned
}

struct Rendered {
    record: DemoImage,
    png: Vec<u8>,
    mask_png: Option<Vec<u8>>,
}

fn render(
    root: &Path,
    planned: &Planned,
    checked: &CheckedDemoParams,
) -> Result<Rendered, DemoError> {
    let params = checked.params();
    let (width, height) = (params.width as usize, params.height as usize);
    let mut rng = image_rng(params.seed, planned.stream);

    let mut canvas = render_surface(&params.surface, width, height, &mut rng);
    let pattern = planned
        .pattern
        .map(|kind| paint_pattern(&mut canvas, kind, params, &mut rng));
    let defect = planned
        .defect
        .map(|kind| paint_defect(&mut canvas, kind, params, pattern.as_ref(), &mut rng));

    let png = encode_png(
        &canvas.to_rgb8(),
        params,
        ExtendedColorType::Rgb8,
        &root.join(&planned.path),
    )?;
    let mask_png = match (&defect, &planned.mask) {
        (Some((_, mask)), Some(mask_path)) => {
            let bytes: Vec<u8> = mask
                .data
                .iter()
                .map(|&on| if on { 255 } else { 0 })
                .collect();
            Some(encode_png(
                &bytes,
                params,
                ExtendedColorType::L8,
                &root.join(mask_path),
            )?)
        }
        _ => None,
    };
    let record = DemoImage {
        path: planned.path.clone(),
        mask: planned.mask.clone(),
        split: planned.split,
        defect: defect.map(|(record, _)| record),
        pattern,
    };
    Ok(Rendered {
        record,
        png,
        mask_png,
    })
}

fn encode_png(
    pixels: &[u8],
    params: &DemoParams,
    color: ExtendedColorType,
    path: &Path,
) -> Result<Vec<u8>, DemoError> {
    let mut bytes = Vec::new();
    PngEncoder::new(&mut bytes)
        .write_image(pixels, params.width, params.height, color)
        .map_err(|source| DemoError::Encode {
            path: path.to_owned(),
            source,
        })?;
    Ok(bytes)
}

/// Random stream `stream` of the generator seeded with `seed`; streams are independent, so
/// images render in any order with the same result.
fn image_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
