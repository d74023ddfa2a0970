//! Errors of the SVM false-alarm classifier: invalid parameters and unusable training data.

/// The two classes of the false-alarm classifier, named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Label `true`: a candidate that is a false alarm.
    FalseAlarm,
    /// Label `false`: a candidate on a real (or synthetic) defect.
    Defect,
}

impl Class {
    /// Returns the class of a training label (`true` = false alarm).
    pub fn of_label(label: bool) -> Self {
        if label {
            Class::FalseAlarm
        } else {
            Class::Defect
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Class::FalseAlarm => write!(f, "false-alarm (label true)"),
            Class::Defect => write!(f, "defect (label false)"),
        }
    }
}

/// Errors raised by [`SvmParams::check`](super::SvmParams::check) and by fitting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SvmError {
    #[error(
        "c_grid is empty; give at least one soft-margin C, for example [0.1, 1, 10, 100, 1000]"
    )]
    EmptyCGrid,
    #[error("c_grid contains {value}; every C must be finite and greater than 0")]
    InvalidC { value: f64 },
    #[error("gamma_grid is empty; give at least one multiple of 1/n_features, for example [0.125, 1, 8]")]
    EmptyGammaGrid,
    #[error("gamma_grid contains {value}; every entry is a multiple of 1/n_features and must be finite and greater than 0")]
    InvalidGamma { value: f64 },
    #[error("folds is {folds}; cross-validation needs at least 2 folds (5 is usual)")]
    TooFewFolds { folds: usize },
    #[error("tolerance is {value}; the solver's stopping tolerance must be finite and greater than 0 (1e-3 is usual)")]
    InvalidTolerance { value: f64 },
    #[error(
        "max_iterations is 0; the solver needs at least one iteration (10000000 is the default)"
    )]
    ZeroMaxIterations,
    #[error("kernel_cache_mb is 0; give the kernel row cache at least 1 MB per solver")]
    ZeroKernelCache,
    #[error("max_samples_per_class is {cap} but folds is {folds}; the cap must be at least the number of folds")]
    SampleCapBelowFolds { cap: usize, folds: usize },
    #[error("{samples} feature vectors but {labels} labels; give one label per feature vector")]
    LabelCountMismatch { samples: usize, labels: usize },
    #[error("feature vectors are empty; select at least one attribute as an SVM input")]
    NoFeatures,
    #[error("sample {sample} has {found} features, expected {expected} like sample 0; give every sample the same attributes")]
    InconsistentFeatureLength {
        sample: usize,
        expected: usize,
        found: usize,
    },
    #[error("feature {feature} of sample {sample} is {value}; remove or repair samples with NaN or infinite attributes")]
    NonFiniteFeature {
        sample: usize,
        feature: usize,
        value: f64,
    },
    #[error("no {class} samples; the classifier needs samples of both classes")]
    NoSamplesOfClass { class: Class },
    #[error("{found} {class} samples but {needed} are needed, one per cross-validation fold; add samples or lower folds")]
    TooFewSamplesPerClass {
        class: Class,
        found: usize,
        needed: usize,
    },
}
