//! Grid search of C and gamma by stratified k-fold cross-validation, scored by the log-loss of
//! Platt's sigmoid (Platt 1999; fitted as in Lin, Lin & Weng 2007) on out-of-fold decision
//! values.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kernel::{rbf, KernelRows};
use super::platt::PlattSigmoid;
use super::smo::{solve, SmoSettings};

/// Log-losses closer than this count as a tie, which goes to the smaller C, then the smaller
/// gamma.
const TIE_TOLERANCE: f64 = 1e-9;

/// Cross-validation result of one (C, gamma) grid point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridScore {
    /// Soft-margin penalty.
    pub c: f64,
    /// RBF width on standardised features (already divided by the number of features).
    pub gamma: f64,
    /// Mean log-loss in nats of Platt's sigmoid fitted on all out-of-fold decision values.
    pub log_loss: f64,
    /// Mean of the per-class recalls when a positive out-of-fold decision value means false
    /// alarm.
    pub balanced_accuracy: f64,
    /// Whether every fold's solver met its tolerance within the iteration limit.
    pub converged: bool,
}

/// Settings of the grid search; `gammas` are absolute RBF widths.
pub(crate) struct GridSearchSettings<'a> {
    pub c_grid: &'a [f64],
    pub gammas: &'a [f64],
    pub folds: usize,
    pub solver: SmoSettings,
}

/// Scores of every grid point, in the order C-major, gamma-minor, both ascending, with the
/// chosen point and its out-of-fold decision values, one per sample.
pub(crate) struct GridSearch {
    pub scores: Vec<GridScore>,
    pub best: usize,
    pub best_decisions: Vec<f64>,
}

/// Assigns each sample a fold in `0..folds` so that each class is spread evenly: the samples of
/// a class are shuffled, then dealt to the folds in turn.
pub(crate) fn stratified_folds(labels: &[bool], folds: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut fold_of = vec![0; labels.len()];
    for class in [true, false] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(rng);
        for (position, &sample) in members.iter().enumerate() {
            fold_of[sample] = position % folds;
        }
    }
    fold_of
}

/// Cross-validates every (C, gamma) pair on `points` `(n, dim)` in parallel and picks the pair
/// with the smallest out-of-fold log-loss.
///
/// Log-loss rather than balanced accuracy selects the pair, because the filter acts on
/// probabilities with a high cut, and log-loss rates them continuously where accuracy of the
/// sign is coarse and often tied.
pub(crate) fn search(
    points: &[f64],
    dim: usize,
    labels: &[bool],
    fold_of: &[usize],
    settings: &GridSearchSettings,
) -> GridSearch {
    // One task per (gamma, fold) shares its kernel rows across all C, ascending, and seeds each
    // solve with the previous solution scaled to the new C.
    let tasks: Vec<(f64, usize)> = settings
        .gammas
        .iter()
        .flat_map(|&gamma| (0..settings.folds).map(move |fold| (gamma, fold)))
        .collect();
    let task_results: Vec<Vec<FoldResult>> = tasks
        .par_iter()
        .map(|&(gamma, fold)| validate_fold(points, dim, labels, fold_of, fold, gamma, settings))
        .collect();

    let mut scores = Vec::new();
    let mut decisions_per_pair = Vec::new();
    for (c_index, &c) in settings.c_grid.iter().enumerate() {
        for (gamma_index, &gamma) in settings.gammas.iter().enumerate() {
            let fold_tasks = &task_results[gamma_index * settings.folds..][..settings.folds];
            let mut decisions = vec![0.0; labels.len()];
            for result in fold_tasks.iter().map(|per_c| &per_c[c_index]) {
                for (&sample, &decision) in result.samples.iter().zip(&result.decisions) {
                    decisions[sample] = decision;
                }
            }
            let sigmoid = PlattSigmoid::fit(&decisions, labels);
            scores.push(GridScore {
                c,
                gamma,
                log_loss: sigmoid.log_loss(&decisions, labels),
                balanced_accuracy: balanced_accuracy(&decisions, labels),
                converged: fold_tasks.iter().all(|per_c| per_c[c_index].converged),
            });
            decisions_per_pair.push(decisions);
        }
    }

    let best = best_score(&scores);
    let best_decisions = decisions_per_pair.swap_remove(best);
    GridSearch {
        scores,
        best,
        best_decisions,
    }
}

/// Returns the index of the smallest log-loss in `scores`, which are ordered by C, then gamma,
/// both ascending, so a tie goes to the smaller C, then the smaller gamma.
pub(crate) fn best_score(scores: &[GridScore]) -> usize {
    let mut best = 0;
    for (index, score) in scores.iter().enumerate() {
        if score.log_loss < scores[best].log_loss - TIE_TOLERANCE {
            best = index;
        }
    }
    best
}

/// Out-of-fold decision values of one fold, with the indices of the samples they belong to.
struct FoldResult {
    samples: Vec<usize>,
    decisions: Vec<f64>,
    converged: bool,
}

/// Trains on every fold but `fold` for each C of the grid, ascending, and returns the decision
/// values of the samples in `fold`, one result per C.
fn validate_fold(
    points: &[f64],
    dim: usize,
    labels: &[bool],
    fold_of: &[usize],
    fold: usize,
    gamma: f64,
    settings: &GridSearchSettings,
) -> Vec<FoldResult> {
    let mut train_points = Vec::new();
    let mut train_labels = Vec::new();
    let mut samples = Vec::new();
    for (i, &sample_fold) in fold_of.iter().enumerate() {
        if sample_fold == fold {
            samples.push(i);
        } else {
            train_points.extend_from_slice(&points[i * dim..(i + 1) * dim]);
            train_labels.push(labels[i]);
        }
    }
    let mut kernel = KernelRows::new(&train_points, dim, gamma, settings.solver.cache_bytes);

    let mut results = Vec::with_capacity(settings.c_grid.len());
    let mut previous: Option<(f64, Vec<f64>)> = None;
    for &c in settings.c_grid {
        let initial = previous
            .map(|(previous_c, alpha)| alpha.iter().map(|a| (a * c / previous_c).min(c)).collect());
        let solver = SmoSettings {
            c,
            ..settings.solver
        };
        let solution = solve(&mut kernel, &train_labels, &solver, initial);

        let decisions = samples
            .iter()
            .map(|&i| {
                let x = &points[i * dim..(i + 1) * dim];
                let weighted: f64 = solution
                    .support
                    .iter()
                    .zip(&solution.coefficients)
                    .map(|(&s, &coefficient)| coefficient * rbf(kernel.point(s), x, gamma))
                    .sum();
                weighted - solution.rho
            })
            .collect();
        results.push(FoldResult {
            samples: samples.clone(),
            decisions,
            converged: solution.converged,
        });
        previous = Some((c, solution.alpha));
    }
    results
}

/// Returns the mean of the recalls of both classes when `decision > 0` predicts `true`.
fn balanced_accuracy(decisions: &[f64], labels: &[bool]) -> f64 {
    let mut correct = [0usize; 2];
    let mut total = [0usize; 2];
    for (&decision, &label) in decisions.iter().zip(labels) {
        let class = usize::from(label);
        total[class] += 1;
        if (decision > 0.0) == label {
            correct[class] += 1;
        }
    }
    (0..2)
        .map(|class| correct[class] as f64 / total[class].max(1) as f64)
        .sum::<f64>()
        / 2.0
}
