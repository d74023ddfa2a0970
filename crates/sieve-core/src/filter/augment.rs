//! Class balancing with augmentation: the smaller class gets augmented copies (translation,
//! mirror symmetry where the product allows it, attribute noise) and the larger class is
//! subsampled, to equal counts of at most `max_per_class`.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::regions::{Attribute, Descriptor};

/// Settings of augmented copies. Sizes and positions are in the descriptor's own units.
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    /// Standard deviation of the noise added to each attribute, relative to that attribute's
    /// standard deviation over both classes.
    pub noise: f64,
    /// Largest translation of the centroid, as a fraction of the image side.
    pub shift: f64,
    /// Whether a left-right mirror image is still a plausible product image.
    pub mirror_x: bool,
    /// Whether a top-bottom mirror image is still a plausible product image.
    pub mirror_y: bool,
    /// Largest number of augmented copies per original sample.
    pub copies: usize,
}

/// Training vectors and labels (`true` = false alarm) after balancing.
#[derive(Debug, Clone, Default)]
pub struct Balanced {
    pub vectors: Vec<Vec<f64>>,
    pub is_false_alarm: Vec<bool>,
    /// Augmented copies added to the false-alarm and to the defect class.
    pub augmented: (usize, usize),
    /// Samples dropped from the false-alarm and from the defect class by subsampling.
    pub dropped: (usize, usize),
}

/// Balances the two classes to equal counts: `min(larger count, max_per_class, smaller count *
/// (1 + copies))`. The smaller class is augmented up to it and the larger one subsampled.
pub fn balance(
    false_alarms: &[Descriptor],
    defects: &[Descriptor],
    features: &[Attribute],
    augmentation: &Augmentation,
    max_per_class: usize,
    rng: &mut ChaCha8Rng,
) -> Balanced {
    let smaller = false_alarms.len().min(defects.len());
    let target = false_alarms
        .len()
        .max(defects.len())
        .min(max_per_class)
        .min(smaller * (1 + augmentation.copies));
    let spread = attribute_spread(false_alarms, defects, features);

    let (fa, fa_aug, fa_drop) =
        resize_class(false_alarms, target, features, &spread, augmentation, rng);
    let (df, df_aug, df_drop) = resize_class(defects, target, features, &spread, augmentation, rng);

    let mut out = Balanced {
        augmented: (fa_aug, df_aug),
        dropped: (fa_drop, df_drop),
        ..Default::default()
    };
    out.is_false_alarm
        .extend(std::iter::repeat_n(true, fa.len()));
    out.vectors.extend(fa);
    out.is_false_alarm
        .extend(std::iter::repeat_n(false, df.len()));
    out.vectors.extend(df);
    out
}

/// Standard deviation of each feature over both classes (1 where it is 0).
fn attribute_spread(a: &[Descriptor], b: &[Descriptor], features: &[Attribute]) -> Vec<f64> {
    features
        .iter()
        .map(|&f| {
            let values: Vec<f64> = a.iter().chain(b).map(|d| d.get(f)).collect();
            let n = values.len().max(1) as f64;
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            if var > 0.0 {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect()
}

fn resize_class(
    samples: &[Descriptor],
    target: usize,
    features: &[Attribute],
    spread: &[f64],
    augmentation: &Augmentation,
    rng: &mut ChaCha8Rng,
) -> (Vec<Vec<f64>>, usize, usize) {
    if samples.len() >= target {
        let mut order: Vec<usize> = (0..samples.len()).collect();
        order.shuffle(rng);
        order.truncate(target);
        order.sort_unstable();
        let vectors = order.iter().map(|&i| samples[i].vector(features)).collect();
        return (vectors, 0, samples.len() - target);
    }

    let mut vectors: Vec<Vec<f64>> = samples.iter().map(|d| d.vector(features)).collect();
    let limit = samples.len() * (1 + augmentation.copies);
    let reachable = target.min(limit);
    let mut augmented = 0;
    while vectors.len() < reachable {
        let source = &samples[augmented % samples.len()];
        let copy = augment_one(source, augmentation, rng);
        let mut vector = copy.vector(features);
        for (v, s) in vector.iter_mut().zip(spread) {
            let z: f64 = StandardNormal.sample(rng);
            *v += augmentation.noise * s * z;
        }
        vectors.push(vector);
        augmented += 1;
    }
    (vectors, augmented, 0)
}

/// Moves and mirrors one descriptor; the position attributes are recomputed consistently.
fn augment_one(
    source: &Descriptor,
    augmentation: &Augmentation,
    rng: &mut ChaCha8Rng,
) -> Descriptor {
    let mut d = *source;
    let mut cx = d.get(Attribute::CenterX);
    let mut cy = d.get(Attribute::CenterY);
    let mut orientation = d.get(Attribute::Orientation);

    if augmentation.mirror_x && rng.gen_bool(0.5) {
        cx = 1.0 - cx;
        orientation = -orientation;
    }
    if augmentation.mirror_y && rng.gen_bool(0.5) {
        cy = 1.0 - cy;
        orientation = -orientation;
    }
    if augmentation.shift > 0.0 {
        cx += rng.gen_range(-augmentation.shift..=augmentation.shift);
        cy += rng.gen_range(-augmentation.shift..=augmentation.shift);
    }
    cx = cx.clamp(0.0, 1.0);
    cy = cy.clamp(0.0, 1.0);

    d.values[Attribute::CenterX.index()] = cx;
    d.values[Attribute::CenterY.index()] = cy;
    d.values[Attribute::Orientation.index()] = orientation;
    // The half diagonal in fractions is unknown without the aspect ratio of the image, so the
    // distance to the centre scales by the same factor as the centred offset.
    let old = ((source.get(Attribute::CenterX) - 0.5).powi(2)
        + (source.get(Attribute::CenterY) - 0.5).powi(2))
    .sqrt();
    let new = ((cx - 0.5).powi(2) + (cy - 0.5).powi(2)).sqrt();
    if old > 0.0 {
        d.values[Attribute::DistCenter.index()] = source.get(Attribute::DistCenter) * new / old;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn descriptor(area: f64, cx: f64) -> Descriptor {
        let mut d = Descriptor::default();
        d.values[Attribute::Area.index()] = area;
        d.values[Attribute::CenterX.index()] = cx;
        d.values[Attribute::CenterY.index()] = 0.5;
        d
    }

    fn augmentation() -> Augmentation {
        Augmentation {
            noise: 0.05,
            shift: 0.1,
            mirror_x: true,
            mirror_y: false,
            copies: 10,
        }
    }

    #[test]
    fn classes_end_equal() {
        let fa: Vec<_> = (0..50).map(|i| descriptor(100.0 + i as f64, 0.3)).collect();
        let df: Vec<_> = (0..7).map(|i| descriptor(10.0 + i as f64, 0.6)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = balance(
            &fa,
            &df,
            &[Attribute::Area, Attribute::CenterX],
            &augmentation(),
            1000,
            &mut rng,
        );
        let n_fa = out.is_false_alarm.iter().filter(|&&v| v).count();
        assert_eq!(n_fa, 50);
        assert_eq!(out.vectors.len(), 100);
        assert_eq!(out.augmented, (0, 43));
    }

    #[test]
    fn larger_class_is_capped() {
        let fa: Vec<_> = (0..50).map(|i| descriptor(i as f64, 0.3)).collect();
        let df: Vec<_> = (0..40).map(|i| descriptor(i as f64, 0.3)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = balance(&fa, &df, &[Attribute::Area], &augmentation(), 30, &mut rng);
        assert_eq!(out.vectors.len(), 60);
        assert_eq!(out.dropped, (20, 10));
    }

    #[test]
    fn augmentation_copies_cap_both_classes() {
        let fa: Vec<_> = (0..100).map(|i| descriptor(i as f64, 0.3)).collect();
        let df = vec![descriptor(5.0, 0.3)];
        let aug = Augmentation {
            copies: 3,
            ..augmentation()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = balance(&fa, &df, &[Attribute::Area], &aug, 1000, &mut rng);
        assert_eq!(out.augmented.1, 3);
        assert_eq!(out.dropped.0, 96);
        assert_eq!(out.vectors.len(), 8);
    }

    #[test]
    fn mirror_keeps_centroid_in_image() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            let d = augment_one(&descriptor(1.0, 0.95), &augmentation(), &mut rng);
            let cx = d.get(Attribute::CenterX);
            assert!((0.0..=1.0).contains(&cx));
        }
    }
}
