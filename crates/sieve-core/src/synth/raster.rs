//! Soft coverage of a defect outline: a signed distance per pixel centre turned into a
//! `0..=1` alpha by a linear ramp across the edge.

use super::draw::{Defect, Outline};
use crate::map::AnomalyMap;

/// Pixel rectangle `x0..x1`, `y0..y1`, clipped to the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

impl Window {
    /// Returns the pixels whose centres lie within `half` pixels of `center` along both axes.
    pub fn around(center: [f32; 2], half: f32, width: usize, height: usize) -> Self {
        let clip = |v: f32, len: usize| v.clamp(0.0, len as f32) as usize;
        Self {
            x0: clip((center[0] - half).floor(), width),
            x1: clip((center[0] + half).ceil(), width),
            y0: clip((center[1] - half).floor(), height),
            y1: clip((center[1] + half).ceil(), height),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.x0 >= self.x1 || self.y0 >= self.y1
    }
}

/// Width of the ramp from full to no coverage: the soft edge, but at least one pixel so that
/// a hard edge is still anti-aliased.
pub(crate) fn ramp_width(edge: f32) -> f32 {
    edge.max(1.0)
}

/// Rasterises the defect's coverage on a `width x height` grid. A pixel's alpha is
/// `clamp(0.5 - d / ramp, 0, 1)`, `d` the signed distance of its centre to the outline
/// (negative inside), so that the alpha sums to the outline's area for straight edges. Parts
/// outside the image are dropped.
pub fn coverage(defect: &Defect, width: usize, height: usize) -> AnomalyMap {
    let mut alpha = AnomalyMap::filled(width, height, 0.0);
    let ramp = ramp_width(defect.edge);
    let window = Window::around(defect.center, defect.outline.reach() + ramp, width, height);
    if window.is_empty() {
        return alpha;
    }

    let (sin, cos) = defect.angle.to_radians().sin_cos();
    for y in window.y0..window.y1 {
        for x in window.x0..window.x1 {
            let dx = x as f32 + 0.5 - defect.center[0];
            let dy = y as f32 + 0.5 - defect.center[1];
            // Undo a counter-clockwise on-screen rotation; screen y points down.
            let local = [dx * cos - dy * sin, dx * sin + dy * cos];
            let distance = signed_distance(&defect.outline, local);
            alpha.data[y * width + x] = (0.5 - distance / ramp).clamp(0.0, 1.0);
        }
    }
    alpha
}

/// Returns the signed distance from `p` to the outline in its own frame, negative inside. It is
/// exact for boxes, circles and polylines. For ellipses and blobs it is a first-order estimate,
/// exact on the outline and close within a few pixels of it.
pub(crate) fn signed_distance(outline: &Outline, p: [f32; 2]) -> f32 {
    match outline {
        Outline::Box { width, height } => {
            let qx = p[0].abs() - 0.5 * width;
            let qy = p[1].abs() - 0.5 * height;
            let outside = qx.max(0.0).hypot(qy.max(0.0));
            outside + qx.max(qy).min(0.0)
        }
        Outline::Ellipse { width, height } => {
            let (a, b) = (0.5 * width, 0.5 * height);
            if a == b {
                return p[0].hypot(p[1]) - a;
            }
            // Gradient-normalised implicit function: (k0 - 1) * k0 / k1 with
            // k0 = |p / r| and k1 = |p / r^2|, r the semi-axes.
            let k0 = (p[0] / a).hypot(p[1] / b);
            let k1 = (p[0] / (a * a)).hypot(p[1] / (b * b));
            if k1 == 0.0 {
                return -a.min(b);
            }
            k0 * (k0 - 1.0) / k1
        }
        Outline::Polyline { points, thickness } => {
            let nearest = points
                .windows(2)
                .map(|s| segment_distance(p, s[0], s[1]))
                .fold(f32::INFINITY, f32::min);
            nearest - 0.5 * thickness
        }
        Outline::Blob { radius, harmonics } => {
            let phi = p[1].atan2(p[0]);
            let wobble: f32 = harmonics
                .iter()
                .enumerate()
                .map(|(i, h)| h[0] * ((i + 2) as f32 * phi + h[1]).cos())
                .sum();
            p[0].hypot(p[1]) - radius * (1.0 + wobble)
        }
    }
}

fn segment_distance(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (abx, aby) = (b[0] - a[0], b[1] - a[1]);
    let (apx, apy) = (p[0] - a[0], p[1] - a[1]);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 {
        ((apx * abx + apy * aby) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (apx - t * abx).hypot(apy - t * aby)
}
