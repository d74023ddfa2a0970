//! Tests of the SVM false-alarm classifier; reference values from scikit-learn, printed by
//! `scripts/svm_reference.py` (numpy 2.4.6, scikit-learn 1.9.1).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::cv::{best_score, stratified_folds};
use super::smo::{move_biases, select_first, select_second};
use super::*;

// SVC(kernel='rbf', C=10, gamma=0.5, tol=1e-6, shrinking=False) on the standardised ring set.
const RING_SUPPORT_VECTORS: usize = 43;
const RING_INTERCEPT: f64 = -1.1903353196252395;
const RING_DECISIONS: [f64; 5] = [
    1.3435129005377153,
    -1.6293937508399892,
    -1.7645375940966703,
    -1.7419221369209756,
    2.1809286118954,
];
// sklearn.calibration._sigmoid_calibration on the Platt set.
const PLATT_A: f64 = -2.189244900555959;
const PLATT_B: f64 = -0.1206761808714909;

/// Sample `i` of the ring set, the same formula as `ring_sample` in the reference script.
fn ring_sample(i: usize) -> (Vec<f64>, bool) {
    let t = i as f64;
    let x0 = 1.5 * (1.3 * t).sin() + 0.2 * (0.37 * t).cos();
    let x1 = 10.0 * (0.9 * t + 0.5).cos() + 5.0;
    let x2 = 0.01 * t;
    let inside = x0 * x0 + 2.25 * ((x1 - 5.0) / 10.0).powi(2) < 1.2;
    (vec![x0, x1, x2], inside != (i % 9 == 4))
}

fn ring_set(n: usize) -> (Vec<Vec<f64>>, Vec<bool>) {
    (0..n).map(ring_sample).unzip()
}

const RING_QUERIES: [[f64; 3]; 5] = [
    [0.0, 5.0, 0.3],
    [1.2, -3.0, 0.1],
    [-0.5, 12.0, 0.5],
    [2.0, 5.0, 0.0],
    [0.3, 8.0, 0.8],
];

/// Sample `i` of the Platt set, the same formula as `platt_sample` in the reference script.
fn platt_sample(i: usize) -> (f64, bool) {
    let t = i as f64;
    let f = 2.0 * (1.1 * t).sin() + 0.5;
    (f, f + 0.8 * (2.3 * t + 1.0).sin() > 0.0)
}

/// Two separated 2-D clusters: false alarms around (3, 3), defects around (-3, -3).
fn separable_set(n_per_class: usize) -> (Vec<Vec<f64>>, Vec<bool>) {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n_per_class {
        let t = i as f64;
        let offset = [0.8 * (2.1 * t).sin(), 0.8 * (1.7 * t + 0.4).cos()];
        features.push(vec![3.0 + offset[0], 3.0 + offset[1]]);
        labels.push(true);
        features.push(vec![-3.0 - offset[1], -3.0 + offset[0]]);
        labels.push(false);
    }
    (features, labels)
}

fn single_point_params(c: f64, gamma: f64, n_features: usize) -> ValidSvmParams {
    SvmParams {
        c_grid: vec![c],
        gamma_grid: vec![gamma * n_features as f64],
        tolerance: 1e-6,
        ..SvmParams::default()
    }
    .check()
    .unwrap()
}

#[test]
fn decisions_match_scikit_learn_svc() {
    let (features, labels) = ring_set(80);
    let model = single_point_params(10.0, 0.5, 3)
        .fit(&features, &labels)
        .unwrap();

    assert_eq!(model.c(), 10.0);
    assert!((model.gamma() - 0.5).abs() < 1e-15);
    assert_eq!(model.support_vectors().len(), RING_SUPPORT_VECTORS);
    assert!(
        (model.bias() - RING_INTERCEPT).abs() < 1e-3,
        "bias {}",
        model.bias()
    );
    for (query, expected) in RING_QUERIES.iter().zip(RING_DECISIONS) {
        let decision = model.decision(query);
        assert!(
            (decision - expected).abs() < 1e-3,
            "decision at {query:?} is {decision}, scikit-learn gives {expected}"
        );
    }
}

#[test]
fn dual_satisfies_equality_and_box() {
    let (features, labels) = ring_set(80);
    let model = single_point_params(10.0, 0.5, 3)
        .fit(&features, &labels)
        .unwrap();

    let sum: f64 = model.dual_coefficients().iter().sum();
    assert!(sum.abs() < 1e-9, "sum of y_i a_i is {sum}");
    for &coefficient in model.dual_coefficients() {
        assert!(coefficient.abs() > 0.0, "zero coefficient");
        assert!(
            coefficient.abs() <= 10.0,
            "coefficient {coefficient} above C"
        );
    }
    assert!(model.training().converged);
}

#[test]
fn platt_matches_scikit_learn() {
    let (decisions, labels): (Vec<f64>, Vec<bool>) = (0..40).map(platt_sample).unzip();

    let sigmoid = PlattSigmoid::fit(&decisions, &labels);

    assert!((sigmoid.a - PLATT_A).abs() < 1e-6, "A = {}", sigmoid.a);
    assert!((sigmoid.b - PLATT_B).abs() < 1e-6, "B = {}", sigmoid.b);
}

#[test]
fn platt_probability_is_stable() {
    let sigmoid = PlattSigmoid { a: -2.0, b: 0.5 };

    assert_eq!(sigmoid.probability(1e6), 1.0);
    assert_eq!(sigmoid.probability(-1e6), 0.0);
    let at_zero = 1.0 / (1.0 + 0.5f64.exp());
    assert!((sigmoid.probability(0.0) - at_zero).abs() < 1e-15);
}

#[test]
fn grid_search_separable_case() {
    let (features, labels) = separable_set(30);
    let model = SvmParams::default()
        .check()
        .unwrap()
        .fit(&features, &labels)
        .unwrap();
    let cv = model.cross_validation();

    assert_eq!(cv.grid.len(), 25);
    assert_eq!(cv.chosen.balanced_accuracy, 1.0);
    assert!(cv.chosen.log_loss < 0.1, "log-loss {}", cv.chosen.log_loss);
    assert!(cv
        .grid
        .iter()
        .all(|s| s.log_loss >= cv.chosen.log_loss - 1e-9));
    assert!(model.probability(&[3.0, 3.0]) > 0.9);
    assert!(model.probability(&[-3.0, -3.0]) < 0.1);
    assert!(model.decision(&[3.0, 3.0]) > 0.0);
    assert!(model.decision(&[-3.0, -3.0]) < 0.0);
    assert!(model.platt().a < 0.0);
}

#[test]
fn grid_search_ties_prefer_small_c() {
    let score = |c: f64, gamma: f64, log_loss: f64| GridScore {
        c,
        gamma,
        log_loss,
        balanced_accuracy: 1.0,
        converged: true,
    };
    let scores = [
        score(1.0, 0.5, 0.30),
        score(1.0, 2.0, 0.20),
        score(10.0, 0.5, 0.20 - 1e-12),
        score(10.0, 2.0, 0.25),
    ];

    assert_eq!(best_score(&scores), 1);
    assert_eq!(best_score(&scores[2..]), 0);
}

#[test]
fn params_check_sorts_and_dedups_grids() {
    let params = SvmParams {
        c_grid: vec![100.0, 1.0, 100.0],
        gamma_grid: vec![2.0, 0.5],
        ..SvmParams::default()
    }
    .check()
    .unwrap();

    assert_eq!(params.params().c_grid, vec![1.0, 100.0]);
    assert_eq!(params.params().gamma_grid, vec![0.5, 2.0]);
}

#[test]
fn fit_is_deterministic_for_seed() {
    let (features, labels) = ring_set(120);
    let params = SvmParams {
        seed: 7,
        ..SvmParams::default()
    }
    .check()
    .unwrap();

    let first = params.fit(&features, &labels).unwrap();
    let second = params.fit(&features, &labels).unwrap();

    assert_eq!(first, second);
    for query in RING_QUERIES {
        assert_eq!(first.probability(&query), second.probability(&query));
    }
}

#[test]
fn sample_cap_keeps_per_class_counts() {
    let (features, labels) = ring_set(200);
    let n_false_alarms = labels.iter().filter(|&&l| l).count();
    let n_defects = labels.len() - n_false_alarms;
    let cap = 40;
    assert!(n_false_alarms > cap, "{n_false_alarms} false alarms");
    assert!(n_defects > cap, "{n_defects} defects");
    let params = SvmParams {
        max_samples_per_class: Some(cap),
        c_grid: vec![1.0],
        gamma_grid: vec![1.0],
        ..SvmParams::default()
    };

    let model = params.check().unwrap().fit(&features, &labels).unwrap();
    let training = model.training();

    assert_eq!(training.false_alarms, cap);
    assert_eq!(training.defects, cap);
    assert_eq!(training.dropped, 200 - 2 * cap);
}

#[test]
fn model_json_round_trip() {
    let (features, labels) = separable_set(15);
    let params = SvmParams {
        c_grid: vec![1.0, 10.0],
        gamma_grid: vec![1.0],
        ..SvmParams::default()
    };
    let model = params.check().unwrap().fit(&features, &labels).unwrap();

    let json = serde_json::to_string(&model).unwrap();
    let loaded: FalseAlarmSvm = serde_json::from_str(&json).unwrap();

    assert_eq!(loaded, model);
    assert_eq!(
        loaded.probability(&[1.0, 2.0]),
        model.probability(&[1.0, 2.0])
    );
}

#[test]
fn display_names_c_gamma_and_support_vectors() {
    let (features, labels) = separable_set(15);
    let model = single_point_params(10.0, 0.5, 2)
        .fit(&features, &labels)
        .unwrap();

    let text = model.to_string();

    assert!(text.contains("C = 10,"), "{text}");
    assert!(text.contains("gamma = 0.500000"), "{text}");
    let count = format!("{} support vectors", model.support_vectors().len());
    assert!(text.contains(&count), "{text}");
    assert!(text.contains("log-loss"), "{text}");
}

#[test]
fn standardizer_uses_population_std() {
    let samples = vec![vec![1.0, 5.0], vec![3.0, 5.0], vec![5.0, 5.0]];

    let standardizer = Standardizer::fit(&samples).unwrap();

    assert_eq!(standardizer.mean(), &[3.0, 5.0]);
    assert!((standardizer.scale()[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-15);
    assert_eq!(standardizer.scale()[1], 1.0);
    assert_eq!(standardizer.transform(&[3.0, 7.0]), vec![0.0, 2.0]);
}

#[test]
fn stratified_folds_balance_classes() {
    let labels: Vec<bool> = (0..53).map(|i| i % 3 == 0).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(3);

    let fold_of = stratified_folds(&labels, 5, &mut rng);

    for class in [true, false] {
        let mut counts = [0usize; 5];
        for (&fold, _) in fold_of.iter().zip(&labels).filter(|(_, &l)| l == class) {
            counts[fold] += 1;
        }
        let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
        assert!(spread <= 1, "class {class}: fold sizes {counts:?}");
    }
}

#[test]
fn params_check_rejects_each_rule() {
    let cases = [
        (
            SvmParams {
                c_grid: vec![],
                ..SvmParams::default()
            },
            SvmError::EmptyCGrid,
        ),
        (
            SvmParams {
                c_grid: vec![1.0, -2.0],
                ..SvmParams::default()
            },
            SvmError::InvalidC { value: -2.0 },
        ),
        (
            SvmParams {
                gamma_grid: vec![],
                ..SvmParams::default()
            },
            SvmError::EmptyGammaGrid,
        ),
        (
            SvmParams {
                gamma_grid: vec![0.0],
                ..SvmParams::default()
            },
            SvmError::InvalidGamma { value: 0.0 },
        ),
        (
            SvmParams {
                folds: 1,
                ..SvmParams::default()
            },
            SvmError::TooFewFolds { folds: 1 },
        ),
        (
            SvmParams {
                tolerance: 0.0,
                ..SvmParams::default()
            },
            SvmError::InvalidTolerance { value: 0.0 },
        ),
        (
            SvmParams {
                max_iterations: 0,
                ..SvmParams::default()
            },
            SvmError::ZeroMaxIterations,
        ),
        (
            SvmParams {
                kernel_cache_mb: 0,
                ..SvmParams::default()
            },
            SvmError::ZeroKernelCache,
        ),
        (
            SvmParams {
                max_samples_per_class: Some(3),
                ..SvmParams::default()
            },
            SvmError::SampleCapBelowFolds { cap: 3, folds: 5 },
        ),
    ];
    for (params, expected) in cases {
        assert_eq!(params.check().unwrap_err(), expected);
    }
    assert!(SvmParams::default().check().is_ok());
}

#[test]
fn params_reject_nan_grid_values() {
    let params = SvmParams {
        c_grid: vec![f64::NAN],
        ..SvmParams::default()
    };

    assert!(matches!(params.check(), Err(SvmError::InvalidC { value }) if value.is_nan()));
}

#[test]
fn params_toml_fills_defaults() {
    let params: SvmParams = toml::from_str("folds = 3\nseed = 11").unwrap();

    assert_eq!(params.folds, 3);
    assert_eq!(params.seed, 11);
    assert_eq!(params.c_grid, SvmParams::default().c_grid);
}

#[test]
fn fit_rejects_unusable_data() {
    let params = SvmParams::default().check().unwrap();
    let (features, labels) = separable_set(10);

    assert_eq!(
        params.fit(&features, &labels[..5]).unwrap_err(),
        SvmError::LabelCountMismatch {
            samples: 20,
            labels: 5
        }
    );
    assert_eq!(
        params.fit(&features, &[true; 20]).unwrap_err(),
        SvmError::NoSamplesOfClass {
            class: Class::Defect
        }
    );
    let mut few_defects = vec![true; 20];
    few_defects[..3].iter_mut().for_each(|l| *l = false);
    assert_eq!(
        params.fit(&features, &few_defects).unwrap_err(),
        SvmError::TooFewSamplesPerClass {
            class: Class::Defect,
            found: 3,
            needed: 5
        }
    );

    let mut ragged = features.clone();
    ragged[4].push(1.0);
    assert_eq!(
        params.fit(&ragged, &labels).unwrap_err(),
        SvmError::InconsistentFeatureLength {
            sample: 4,
            expected: 2,
            found: 3
        }
    );
    let mut infinite = features.clone();
    infinite[6][1] = f64::INFINITY;
    assert_eq!(
        params.fit(&infinite, &labels).unwrap_err(),
        SvmError::NonFiniteFeature {
            sample: 6,
            feature: 1,
            value: f64::INFINITY
        }
    );
    let empty = vec![Vec::new(); 20];
    assert_eq!(
        params.fit(&empty, &labels).unwrap_err(),
        SvmError::NoFeatures
    );
}

#[test]
fn error_messages_name_value_and_fix() {
    let message = SvmError::TooFewSamplesPerClass {
        class: Class::FalseAlarm,
        found: 3,
        needed: 5,
    }
    .to_string();

    assert!(message.contains("3 false-alarm"), "{message}");
    assert!(message.contains("5 are needed"), "{message}");
    assert!(message.contains("lower folds"), "{message}");
}

/// Picks the working set with a branch per variable, as the solver did before it masked the
/// variables with biases: returns `(i, j, violation_min)`.
fn select_with_branches(
    violation: &[f64],
    alpha: &[f64],
    y: &[f64],
    c: f64,
    row_of: impl Fn(usize) -> Vec<f64>,
) -> Option<(usize, Option<usize>, f64)> {
    let can_increase = |t: usize| {
        if y[t] > 0.0 {
            alpha[t] < c
        } else {
            alpha[t] > 0.0
        }
    };
    let can_decrease = |t: usize| {
        if y[t] > 0.0 {
            alpha[t] > 0.0
        } else {
            alpha[t] < c
        }
    };

    let mut i = usize::MAX;
    let mut violation_max = f64::NEG_INFINITY;
    for (t, &v) in violation.iter().enumerate() {
        if can_increase(t) && v > violation_max {
            violation_max = v;
            i = t;
        }
    }
    if i == usize::MAX {
        return None;
    }

    let row_i = row_of(i);
    let mut j = None;
    let mut violation_min = f64::INFINITY;
    let mut best_decrease = f64::NEG_INFINITY;
    for (t, &v) in violation.iter().enumerate() {
        if !can_decrease(t) {
            continue;
        }
        violation_min = violation_min.min(v);
        let gap = violation_max - v;
        if gap > 0.0 {
            let decrease = gap * gap / (2.0 - 2.0 * row_i[t]).max(1e-12);
            if decrease > best_decrease {
                best_decrease = decrease;
                j = Some(t);
            }
        }
    }
    Some((i, j, violation_min))
}

proptest::proptest! {
    #[test]
    fn working_set_matches_branching_selection(
        cases in proptest::collection::vec((0u8..3, proptest::bool::ANY, -4i8..4, 0u8..5), 1..60),
    ) {
        // Alphas at 0, at C or free, violations and kernel values on coarse grids for ties.
        let c = 2.0;
        let alpha: Vec<f64> = cases.iter().map(|&(kind, ..)| [0.0, c, 0.7][kind as usize]).collect();
        let y: Vec<f64> = cases.iter().map(|&(_, positive, ..)| if positive { 1.0 } else { -1.0 }).collect();
        let violation: Vec<f64> = cases.iter().map(|&(_, _, v, _)| f64::from(v) * 0.5).collect();
        let row_of = |i: usize| -> Vec<f64> {
            cases
                .iter()
                .enumerate()
                .map(|(t, &(.., k))| if t == i { 1.0 } else { f64::from(k) * 0.25 })
                .collect()
        };
        let (up, low): (Vec<f64>, Vec<f64>) =
            alpha.iter().zip(&y).map(|(&a, &label)| move_biases(a, label, c)).unzip();

        let expected = select_with_branches(&violation, &alpha, &y, c, row_of);
        let found = select_first(&violation, &up).map(|(i, violation_max)| {
            let (j, violation_min) = select_second(&violation, &low, &row_of(i), violation_max);
            (i, j, violation_min)
        });
        proptest::prop_assert_eq!(found, expected);
    }
}
