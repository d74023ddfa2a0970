//! Soft-margin C-SVM dual solver: sequential minimal optimisation with the second-order working
//! set selection of Fan, Chen & Lin (2005), "Working set selection using second order
//! information for training support vector machines", JMLR 6. No shrinking.
//!
//! Dual problem, with `Q_ij = y_i y_j K(x_i, x_j)` and `y_i` in {-1, +1}:
//! `min 0.5 a'Qa - sum(a)` subject to `0 <= a_i <= C` and `sum(y_i a_i) = 0`.
//! The decision function is `f(x) = sum(y_i a_i K(x_i, x)) - rho`.

use super::kernel::KernelRows;

// NOTE: without shrinking every iteration passes over all n variables, so overlapping classes
// at large C (about 1e5 iterations for 2,000 samples at C = 1000) dominate the fit time.

/// Curvature used where `K_ii + K_jj - 2 K_ij` is not positive (duplicate points).
const MIN_CURVATURE: f64 = 1e-12;

/// Settings of one solve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SmoSettings {
    pub c: f64,
    pub tolerance: f64,
    pub max_iterations: usize,
    pub cache_bytes: usize,
}

/// The solved dual: every `a_i`, the support vector indices into the training points, their
/// coefficients `y_i a_i`, and the offset `rho`.
#[derive(Debug, Clone)]
pub(crate) struct SmoSolution {
    pub alpha: Vec<f64>,
    pub support: Vec<usize>,
    pub coefficients: Vec<f64>,
    pub rho: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Solves the C-SVM dual on the points behind `kernel` with labels `positive` (`true` maps to
/// `y = +1`), starting from `initial` `a` or from `a = 0`.
///
/// `initial` must be feasible for `settings.c`. The solution at a smaller C, scaled by the ratio
/// of the two Cs, is feasible (alpha seeding) and saves iterations at large C.
pub(crate) fn solve(
    kernel: &mut KernelRows,
    positive: &[bool],
    settings: &SmoSettings,
    initial: Option<Vec<f64>>,
) -> SmoSolution {
    let n = kernel.len();
    let c = settings.c;
    let y: Vec<f64> = positive
        .iter()
        .map(|&p| if p { 1.0 } else { -1.0 })
        .collect();

    // `violation[t] = -y_t * gradient_t`, where the gradient of the dual is `Qa - 1`, so
    // `violation[t] = y_t - sum(y_s a_s K_ts)`. An optimum has no pair with
    // `violation[up] > violation[low]`.
    let mut alpha = initial.unwrap_or_else(|| vec![0.0; n]);
    let mut violation = y.clone();
    for s in 0..n {
        if alpha[s] > 0.0 {
            let weight = y[s] * alpha[s];
            for (v, &k) in violation.iter_mut().zip(kernel.row(s)) {
                *v -= weight * k;
            }
        }
    }
    let can_increase = |t: usize, alpha: &[f64]| {
        if y[t] > 0.0 {
            alpha[t] < c
        } else {
            alpha[t] > 0.0
        }
    };
    let can_decrease = |t: usize, alpha: &[f64]| {
        if y[t] > 0.0 {
            alpha[t] > 0.0
        } else {
            alpha[t] < c
        }
    };

    let mut iterations = 0;
    let mut converged = false;
    while iterations < settings.max_iterations {
        // First variable: the maximal violation among variables that may move up along y.
        let mut i = usize::MAX;
        let mut violation_max = f64::NEG_INFINITY;
        for (t, &v) in violation.iter().enumerate() {
            if can_increase(t, &alpha) && v > violation_max {
                violation_max = v;
                i = t;
            }
        }

        if i == usize::MAX {
            converged = true;
            break;
        }

        // Second variable: the largest second-order decrease of the objective, `b^2 / a`.
        let row_i = kernel.row(i);
        let mut j = usize::MAX;
        let mut violation_min = f64::INFINITY;
        let mut best_decrease = f64::NEG_INFINITY;
        for (t, &v) in violation.iter().enumerate() {
            if !can_decrease(t, &alpha) {
                continue;
            }
            violation_min = violation_min.min(v);
            let gap = violation_max - v;
            if gap > 0.0 {
                let curvature = (2.0 - 2.0 * row_i[t]).max(MIN_CURVATURE);
                let decrease = gap * gap / curvature;
                if decrease > best_decrease {
                    best_decrease = decrease;
                    j = t;
                }
            }
        }
        if j == usize::MAX || violation_max - violation_min < settings.tolerance {
            converged = true;
            break;
        }
        iterations += 1;

        // Step `a_i += y_i s`, `a_j -= y_j s` keeps `sum(y a)` fixed, and `s` is the Newton step
        // clipped to the box. RBF kernels have `K_ii = K_jj = 1`.
        let curvature = (2.0 - 2.0 * row_i[j]).max(MIN_CURVATURE);
        let room_i = if y[i] > 0.0 { c - alpha[i] } else { alpha[i] };
        let room_j = if y[j] > 0.0 { alpha[j] } else { c - alpha[j] };
        let newton_step = (violation[i] - violation[j]) / curvature;
        let step = newton_step.min(room_i).min(room_j);
        alpha[i] = if step == room_i {
            if y[i] > 0.0 {
                c
            } else {
                0.0
            }
        } else {
            alpha[i] + y[i] * step
        };
        alpha[j] = if step == room_j {
            if y[j] > 0.0 {
                0.0
            } else {
                c
            }
        } else {
            alpha[j] - y[j] * step
        };

        // `violation_t -= s (K_ti - K_tj)`, in two passes so one cached row suffices at a time.
        let row_i = kernel.row(i);
        for (v, &k) in violation.iter_mut().zip(row_i) {
            *v -= step * k;
        }
        let row_j = kernel.row(j);
        for (v, &k) in violation.iter_mut().zip(row_j) {
            *v += step * k;
        }
    }

    let rho = offset(&alpha, &y, &violation, c);
    let support: Vec<usize> = (0..n).filter(|&t| alpha[t] > 0.0).collect();
    let coefficients = support.iter().map(|&t| y[t] * alpha[t]).collect();
    SmoSolution {
        alpha,
        support,
        coefficients,
        rho,
        iterations,
        converged,
    }
}

/// Returns `rho`: the mean of `y_t * gradient_t` over free variables (`0 < a_t < C`), or the
/// midpoint of the interval the bounded variables allow when none is free.
fn offset(alpha: &[f64], y: &[f64], violation: &[f64], c: f64) -> f64 {
    let mut free_sum = 0.0;
    let mut free_count = 0usize;
    let mut upper = f64::INFINITY;
    let mut lower = f64::NEG_INFINITY;
    for t in 0..alpha.len() {
        let y_gradient = -violation[t];
        if alpha[t] > 0.0 && alpha[t] < c {
            free_sum += y_gradient;
            free_count += 1;
        } else if (alpha[t] >= c) == (y[t] < 0.0) {
            upper = upper.min(y_gradient);
        } else {
            lower = lower.max(y_gradient);
        }
    }

    if free_count > 0 {
        free_sum / free_count as f64
    } else {
        (upper + lower) / 2.0
    }
}
