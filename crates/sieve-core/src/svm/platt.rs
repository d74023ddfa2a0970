//! Platt's sigmoid `P(label | f) = 1 / (1 + exp(A f + B))` on decision values `f`: Platt (1999),
//! "Probabilistic outputs for support vector machines and comparisons to regularized likelihood
//! methods", fitted with the Newton method and backtracking line search of Lin, Lin & Weng
//! (2007), "A note on Platt's probabilistic outputs for support vector machines".

use serde::{Deserialize, Serialize};

/// Maximum Newton iterations.
const MAX_ITERATIONS: usize = 100;
/// Smallest line-search step before the search gives up.
const MIN_STEP: f64 = 1e-10;
/// Ridge added to the Hessian diagonal so it stays positive definite.
const HESSIAN_RIDGE: f64 = 1e-12;
/// Stopping tolerance on both gradient components. Lin, Lin & Weng use 1e-5, and the tighter
/// value costs about one more Newton step.
const GRADIENT_TOLERANCE: f64 = 1e-9;
/// Sufficient-decrease constant of the Armijo line search.
const ARMIJO: f64 = 1e-4;

/// Fitted sigmoid parameters: `P(positive | f) = 1 / (1 + exp(a f + b))`. A good classifier whose
/// positive decision values mean the positive class has `a < 0`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlattSigmoid {
    /// Slope A.
    pub a: f64,
    /// Offset B.
    pub b: f64,
}

impl PlattSigmoid {
    /// Fits A and B by maximum likelihood on decision values with their labels (`true` =
    /// positive class). Targets are smoothed to `(N+ + 1) / (N+ + 2)` and `1 / (N- + 2)`.
    ///
    /// # Panics
    /// If the slices differ in length.
    pub fn fit(decisions: &[f64], labels: &[bool]) -> Self {
        assert_eq!(
            decisions.len(),
            labels.len(),
            "one label per decision value"
        );
        let n_positive = labels.iter().filter(|&&l| l).count() as f64;
        let n_negative = labels.len() as f64 - n_positive;
        let high = (n_positive + 1.0) / (n_positive + 2.0);
        let low = 1.0 / (n_negative + 2.0);
        let targets: Vec<f64> = labels.iter().map(|&l| if l { high } else { low }).collect();

        let mut a = 0.0;
        let mut b = ((n_negative + 1.0) / (n_positive + 1.0)).ln();
        let mut objective = cross_entropy(decisions, &targets, a, b);
        for _ in 0..MAX_ITERATIONS {
            let (gradient, hessian) = derivatives(decisions, &targets, a, b);
            if gradient[0].abs() < GRADIENT_TOLERANCE && gradient[1].abs() < GRADIENT_TOLERANCE {
                break;
            }

            // Newton direction `-H^-1 g` for the 2x2 Hessian.
            let [h_aa, h_ab, h_bb] = hessian;
            let determinant = h_aa * h_bb - h_ab * h_ab;
            let direction_a = -(h_bb * gradient[0] - h_ab * gradient[1]) / determinant;
            let direction_b = -(-h_ab * gradient[0] + h_aa * gradient[1]) / determinant;
            let slope = gradient[0] * direction_a + gradient[1] * direction_b;

            let mut step = 1.0;
            let mut accepted = false;
            while step >= MIN_STEP {
                let new_a = a + step * direction_a;
                let new_b = b + step * direction_b;
                let new_objective = cross_entropy(decisions, &targets, new_a, new_b);
                if new_objective < objective + ARMIJO * step * slope {
                    a = new_a;
                    b = new_b;
                    objective = new_objective;
                    accepted = true;
                    break;
                }
                step /= 2.0;
            }
            if !accepted {
                break;
            }
        }

        Self { a, b }
    }

    /// Returns `1 / (1 + exp(a f + b))`, computed without overflow.
    pub fn probability(&self, decision: f64) -> f64 {
        let z = self.a * decision + self.b;
        if z >= 0.0 {
            let e = (-z).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + z.exp())
        }
    }

    /// Returns the mean negative log-likelihood of hard labels (`true` = positive) under the
    /// sigmoid, in nats.
    pub fn log_loss(&self, decisions: &[f64], labels: &[bool]) -> f64 {
        let targets: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
        cross_entropy(decisions, &targets, self.a, self.b) / decisions.len() as f64
    }
}

/// Returns `ln(1 + exp(z))` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Returns the summed cross-entropy `-sum(t ln p + (1 - t) ln(1 - p))` with
/// `p = 1 / (1 + exp(a f + b))`.
fn cross_entropy(decisions: &[f64], targets: &[f64], a: f64, b: f64) -> f64 {
    decisions
        .iter()
        .zip(targets)
        .map(|(&f, &t)| {
            let z = a * f + b;
            // `-ln p = softplus(z)` and `-ln(1 - p) = softplus(-z)`.
            t * softplus(z) + (1.0 - t) * softplus(-z)
        })
        .sum()
}

/// Returns the gradient `[d/da, d/db]` and the Hessian `[aa, ab, bb]` of the cross-entropy.
fn derivatives(decisions: &[f64], targets: &[f64], a: f64, b: f64) -> ([f64; 2], [f64; 3]) {
    let sigmoid = PlattSigmoid { a, b };
    let mut gradient = [0.0; 2];
    let mut hessian = [HESSIAN_RIDGE, 0.0, HESSIAN_RIDGE];
    for (&f, &t) in decisions.iter().zip(targets) {
        let p = sigmoid.probability(f);
        let weight = p * (1.0 - p);
        hessian[0] += f * f * weight;
        hessian[1] += f * weight;
        hessian[2] += weight;
        gradient[0] += f * (t - p);
        gradient[1] += t - p;
    }
    (gradient, hessian)
}
