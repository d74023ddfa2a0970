//! Fitting of the false-alarm classifier: standardise, choose C and gamma of the RBF kernel
//! `K(a, b) = exp(-gamma * |a - b|^2)` by stratified cross-validation, fit Platt's sigmoid
//! (Platt 1999; Newton method of Lin, Lin & Weng 2007) on the out-of-fold decision values of
//! the chosen pair, and refit the SVM on all samples.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::cv::{search, stratified_folds, GridSearchSettings};
use super::error::{Class, SvmError};
use super::kernel::KernelRows;
use super::model::{CrossValidation, FalseAlarmSvm, TrainingSummary};
use super::params::ValidSvmParams;
use super::platt::PlattSigmoid;
use super::scaler::{check_features, Standardizer};
use super::smo::{solve, SmoSettings};

const BYTES_PER_MB: usize = 1 << 20;

impl ValidSvmParams {
    /// Fits the classifier on `features` `(n, n_features)` with `labels` `(n,)`, `true` = false
    /// alarm and `false` = defect.
    ///
    /// Errors if the lengths disagree, a value is not finite, or a class has fewer samples than
    /// folds.
    pub fn fit(&self, features: &[Vec<f64>], labels: &[bool]) -> Result<FalseAlarmSvm, SvmError> {
        let params = self.params();
        if features.len() != labels.len() {
            return Err(SvmError::LabelCountMismatch {
                samples: features.len(),
                labels: labels.len(),
            });
        }
        for class in [true, false] {
            let found = labels.iter().filter(|&&l| l == class).count();
            if found == 0 {
                return Err(SvmError::NoSamplesOfClass {
                    class: Class::of_label(class),
                });
            }
            if found < params.folds {
                return Err(SvmError::TooFewSamplesPerClass {
                    class: Class::of_label(class),
                    found,
                    needed: params.folds,
                });
            }
        }
        let n_features = check_features(features)?;

        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let kept = keep_per_class(labels, params.max_samples_per_class, &mut rng);
        let kept_features: Vec<Vec<f64>> = kept.iter().map(|&i| features[i].clone()).collect();
        let kept_labels: Vec<bool> = kept.iter().map(|&i| labels[i]).collect();
        let standardizer = Standardizer::fit(&kept_features)?;
        let mut points = vec![0.0; kept.len() * n_features];
        for (sample, out) in kept_features
            .iter()
            .zip(points.chunks_exact_mut(n_features))
        {
            standardizer.transform_into(sample, out);
        }

        let gammas: Vec<f64> = params
            .gamma_grid
            .iter()
            .map(|scale| scale / n_features as f64)
            .collect();
        let solver = SmoSettings {
            c: params.c_grid[0],
            tolerance: params.tolerance,
            max_iterations: params.max_iterations,
            cache_bytes: params.kernel_cache_mb.saturating_mul(BYTES_PER_MB),
        };
        let fold_of = stratified_folds(&kept_labels, params.folds, &mut rng);
        let grid = search(
            &points,
            n_features,
            &kept_labels,
            &fold_of,
            &GridSearchSettings {
                c_grid: &params.c_grid,
                gammas: &gammas,
                folds: params.folds,
                solver,
            },
        );
        let chosen = grid.scores[grid.best];
        let platt = PlattSigmoid::fit(&grid.best_decisions, &kept_labels);
        tracing::debug!(
            c = chosen.c,
            gamma = chosen.gamma,
            log_loss = chosen.log_loss,
            "chose SVM hyperparameters"
        );

        let mut kernel = KernelRows::new(&points, n_features, chosen.gamma, solver.cache_bytes);
        let solution = solve(
            &mut kernel,
            &kept_labels,
            &SmoSettings {
                c: chosen.c,
                ..solver
            },
            None,
        );
        if !solution.converged {
            tracing::warn!(
                iterations = solution.iterations,
                "SVM solver stopped at max_iterations before meeting its tolerance"
            );
        }

        let false_alarms = kept_labels.iter().filter(|&&l| l).count();
        let support_vectors = solution
            .support
            .iter()
            .map(|&i| points[i * n_features..(i + 1) * n_features].to_vec())
            .collect();
        Ok(FalseAlarmSvm {
            standardizer,
            support_vectors,
            dual_coefficients: solution.coefficients,
            bias: -solution.rho,
            c: chosen.c,
            gamma: chosen.gamma,
            platt,
            cross_validation: CrossValidation {
                folds: params.folds,
                seed: params.seed,
                chosen,
                grid: grid.scores,
            },
            training: TrainingSummary {
                false_alarms,
                defects: kept.len() - false_alarms,
                dropped: labels.len() - kept.len(),
                iterations: solution.iterations,
                converged: solution.converged,
            },
        })
    }
}

/// Returns the indices of the samples kept, ascending: every sample, or with a cap a seeded
/// random choice of at most `cap` samples per class.
fn keep_per_class(labels: &[bool], cap: Option<usize>, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let Some(cap) = cap else {
        return (0..labels.len()).collect();
    };

    let mut kept = Vec::with_capacity(labels.len());
    for class in [true, false] {
        let members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if members.len() <= cap {
            kept.extend(members);
        } else {
            let chosen = rand::seq::index::sample(rng, members.len(), cap);
            kept.extend(chosen.iter().map(|position| members[position]));
        }
    }
    kept.sort_unstable();
    kept
}
