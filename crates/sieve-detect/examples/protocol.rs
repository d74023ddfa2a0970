// Scratch: compares evaluation protocols for a saved PatchCore model.
use std::path::PathBuf;

use candle_core::Device;
use rayon::prelude::*;
use sieve_core::dataset::Dataset;
use sieve_core::imageio::{load_mask_for, load_rgb};
use sieve_core::metrics::{aupro, auroc};
use sieve_core::{AnomalyMap, Mask};
use sieve_detect::backbone::EfficientNetLite0;
use sieve_detect::detector::{InputConfig, PatchCoreDetector};
use sieve_detect::patchcore::PatchCore;

fn resize_mask(m: &Mask, w: usize, h: usize) -> Mask {
    let mut data = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let sx = ((x as f64 + 0.5) * m.width as f64 / w as f64) as usize;
            let sy = ((y as f64 + 0.5) * m.height as f64 / h as f64) as usize;
            data[y * w + x] = m.get(sx.min(m.width - 1), sy.min(m.height - 1));
        }
    }
    Mask {
        width: w,
        height: h,
        data,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model_dir = PathBuf::from(&args[1]);
    let data = PathBuf::from(&args[2]);
    let device = Device::Cpu;
    let backbone = EfficientNetLite0::load_default(&device)?;
    let model = PatchCore::load(&model_dir)?;
    let input = InputConfig::default();
    let det = PatchCoreDetector {
        backbone,
        model,
        input: input.clone(),
        device,
    };
    let ds = Dataset::open(&data)?;
    let nb = det.model.params().neighbourhood();
    // variants: (maps, masks)
    let res: Vec<_> = ds
        .test
        .par_iter()
        .map(|s| {
            let img = load_rgb(&s.path).unwrap();
            let (w, h) = (img.width() as usize, img.height() as usize);
            let mask = match &s.mask {
                Some(mp) => load_mask_for(mp, &s.path, w, h).unwrap(),
                None => Mask::empty(w, h),
            };
            let (rows, (gw, gh)) =
                PatchCoreDetector::embed_image(&det.backbone, &input, &det.device, &img, nb)
                    .unwrap();
            let scores = det.model.score(&rows, None).unwrap();
            let grid = AnomalyMap::from_vec(gw, gh, scores);
            let a = grid.resize_bilinear(w, h).gaussian_blur(4.0);
            let b256 = grid.resize_bilinear(256, 256).gaussian_blur(4.0);
            let c = b256.resize_bilinear(w, h);
            let m256 = resize_mask(&mask, 256, 256);
            (a, b256, c, mask, m256, s.is_defective())
        })
        .collect();
    let eval = |name: &str, maps: Vec<&AnomalyMap>, masks: Vec<&Mask>| {
        let mut sc = Vec::new();
        let mut lb = Vec::new();
        for (m, k) in maps.iter().zip(&masks) {
            sc.extend_from_slice(&m.data);
            lb.extend_from_slice(&k.data);
        }
        let pa = auroc(&sc, &lb).unwrap();
        let dm: Vec<_> = maps.iter().zip(&masks).map(|(a, b)| (*a, *b)).collect();
        let pro = aupro(
            &dm.iter().map(|x| x.0).collect::<Vec<_>>(),
            &dm.iter().map(|x| x.1).collect::<Vec<_>>(),
            0.3,
        )
        .unwrap();
        let isc: Vec<f32> = maps.iter().map(|m| m.max()).collect();
        let il: Vec<bool> = res.iter().map(|r| r.5).collect();
        println!(
            "{name}: pixel AUROC {pa:.4} AUPRO {pro:.4} image AUROC {:.4}",
            auroc(&isc, &il).unwrap()
        );
    };
    eval(
        "A original size, blur orig px",
        res.iter().map(|r| &r.0).collect(),
        res.iter().map(|r| &r.3).collect(),
    );
    eval(
        "B 256x256, blur 256 px",
        res.iter().map(|r| &r.1).collect(),
        res.iter().map(|r| &r.4).collect(),
    );
    eval(
        "C blur at 256 then orig size",
        res.iter().map(|r| &r.2).collect(),
        res.iter().map(|r| &r.3).collect(),
    );
    Ok(())
}
