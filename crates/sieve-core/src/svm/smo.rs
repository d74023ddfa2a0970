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
    // `up_bias[t]` is 0 where `a_t` may move up along `y_t` and -inf elsewhere, and
    // `low_bias[t]` is 0 where it may move down and +inf elsewhere. Adding them to the
    // violations masks the variables that cannot move. A branch per variable would do the
    // same, but the processor mispredicts it often.
    let mut up_bias = vec![0.0; n];
    let mut low_bias = vec![0.0; n];
    for t in 0..n {
        (up_bias[t], low_bias[t]) = move_biases(alpha[t], y[t], c);
    }

    let mut iterations = 0;
    let mut converged = false;
    while iterations < settings.max_iterations {
        let Some((i, violation_max)) = select_first(&violation, &up_bias) else {
            converged = true;
            break;
        };
        let row_i = kernel.row(i);
        let (second, violation_min) = select_second(&violation, &low_bias, row_i, violation_max);
        let Some(j) = second else {
            converged = true;
            break;
        };
        if violation_max - violation_min < settings.tolerance {
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
        for t in [i, j] {
            (up_bias[t], low_bias[t]) = move_biases(alpha[t], y[t], c);
        }

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

/// Independent maxima kept by the working set selection loops. Separate lanes break the chain
/// of dependent comparisons, so the processor overlaps consecutive variables.
const LANES: usize = 4;

/// The first index of the largest value over several lanes, each of which saw its own share
/// of the indices and kept its first index of its largest value.
#[derive(Debug, Clone, Copy)]
struct ArgMax {
    value: [f64; LANES],
    index: [usize; LANES],
}

impl ArgMax {
    fn new() -> Self {
        Self {
            value: [f64::NEG_INFINITY; LANES],
            index: [usize::MAX; LANES],
        }
    }

    fn offer(&mut self, lane: usize, value: f64, index: usize) {
        if value > self.value[lane] {
            self.value[lane] = value;
            self.index[lane] = index;
        }
    }

    /// Returns the index and value of the largest value, the smallest index among ties, or
    /// `None` when no lane kept a value above -inf.
    fn best(&self) -> Option<(usize, f64)> {
        let mut best: Option<(usize, f64)> = None;
        for (&index, &value) in self.index.iter().zip(&self.value) {
            if index == usize::MAX {
                continue;
            }
            let better = match best {
                None => true,
                Some((best_index, best_value)) => {
                    value > best_value || (value == best_value && index < best_index)
                }
            };
            if better {
                best = Some((index, value));
            }
        }
        best
    }
}

/// Returns the first variable of the working set and its violation: the first maximal
/// violation among variables that may move up along y, or `None` when none may.
pub(crate) fn select_first(violation: &[f64], up_bias: &[f64]) -> Option<(usize, f64)> {
    let mut lanes = ArgMax::new();
    let whole = violation.len() / LANES * LANES;
    let chunks = violation[..whole]
        .chunks_exact(LANES)
        .zip(up_bias[..whole].chunks_exact(LANES));
    for (chunk, (v, bias)) in chunks.enumerate() {
        for lane in 0..LANES {
            lanes.offer(lane, v[lane] + bias[lane], chunk * LANES + lane);
        }
    }

    // The remaining variables come after every lane's, so only a larger violation wins.
    let mut best = lanes.best();
    for t in whole..violation.len() {
        let masked = violation[t] + up_bias[t];
        if masked > best.map_or(f64::NEG_INFINITY, |(_, v)| v) {
            best = Some((t, masked));
        }
    }
    best
}

/// Returns the second variable of the working set and the minimal violation among variables
/// that may move down. The second variable is the first with the largest second-order
/// decrease of the objective, `b^2 / a`, where `b = violation_max - violation_t > 0` and
/// `a = K_ii + K_tt - 2 K_it`, or `None` when no variable gives a decrease.
pub(crate) fn select_second(
    violation: &[f64],
    low_bias: &[f64],
    row_i: &[f64],
    violation_max: f64,
) -> (Option<usize>, f64) {
    let decrease = |t: usize| {
        let masked = violation[t] + low_bias[t];
        let gap = violation_max - masked;
        let curvature = (2.0 - 2.0 * row_i[t]).max(MIN_CURVATURE);
        let decrease = if gap > 0.0 {
            gap * gap / curvature
        } else {
            f64::NEG_INFINITY
        };
        (masked, decrease)
    };

    let mut lanes = ArgMax::new();
    let mut minima = [f64::INFINITY; LANES];
    let whole = violation.len() / LANES * LANES;
    for start in (0..whole).step_by(LANES) {
        for (lane, minimum) in minima.iter_mut().enumerate() {
            let (masked, value) = decrease(start + lane);
            *minimum = minimum.min(masked);
            lanes.offer(lane, value, start + lane);
        }
    }

    // The remaining variables come after every lane's, so only a larger decrease wins.
    let mut best = lanes.best();
    let mut violation_min = minima.iter().copied().fold(f64::INFINITY, f64::min);
    for t in whole..violation.len() {
        let (masked, value) = decrease(t);
        violation_min = violation_min.min(masked);
        if value > best.map_or(f64::NEG_INFINITY, |(_, v)| v) {
            best = Some((t, value));
        }
    }
    (best.map(|(j, _)| j), violation_min)
}

/// Returns the biases `(up, low)` that mask variable `a` with label `y` in the working set
/// selection: `up` is 0 when `a` may move up along `y` and -inf otherwise, and `low` is 0 when
/// it may move down and +inf otherwise.
pub(crate) fn move_biases(a: f64, y: f64, c: f64) -> (f64, f64) {
    let (may_increase, may_decrease) = if y > 0.0 {
        (a < c, a > 0.0)
    } else {
        (a > 0.0, a < c)
    };
    (
        if may_increase { 0.0 } else { f64::NEG_INFINITY },
        if may_decrease { 0.0 } else { f64::INFINITY },
    )
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
