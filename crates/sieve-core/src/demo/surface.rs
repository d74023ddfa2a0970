//! Brushed-metal surface texture: streaks along a brushing direction, oriented sinusoids,
//! smooth noise, grain and a linear illumination gradient, varied a little per image.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::params::SurfaceParams;

/// An RGB image under construction, `(height, width)` row-major, channels in `0..=1` once
/// clamped by [`Canvas::to_rgb8`].
#[derive(Debug, Clone)]
pub(super) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub data: Vec<[f32; 3]>,
}

impl Canvas {
    /// Adds `amount` times `tint` to the pixel at `(x, y)`.
    pub fn add(&mut self, x: usize, y: usize, amount: f32, tint: [f32; 3]) {
        let pixel = &mut self.data[y * self.width + x];
        for (value, t) in pixel.iter_mut().zip(tint) {
            *value += amount * t;
        }
    }

    /// Quantises to 8-bit RGB, rounding and clamping to `0..=255`.
    pub fn to_rgb8(&self) -> Vec<u8> {
        self.data
            .iter()
            .flat_map(|pixel| pixel.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8))
            .collect()
    }
}

/// Renders one surface image, drawing its per-image variation from `rng`.
pub(super) fn render_surface(
    params: &SurfaceParams,
    width: usize,
    height: usize,
    rng: &mut ChaCha8Rng,
) -> Canvas {
    let jitter = params.brush_angle_jitter_deg;
    let angle = (params.brush_angle_deg + rng.gen_range(-jitter..=jitter)).to_radians();
    let (sin, cos) = angle.sin_cos();
    let brightness = 1.0 + rng.gen_range(-1.0..=1.0) * params.brightness_jitter;
    let light_angle = rng.gen_range(0.0..2.0 * PI);
    let light = [
        light_angle.cos() * params.gradient_amplitude,
        light_angle.sin() * params.gradient_amplitude,
    ];

    let streaks = StreakProfile::new(params, width, height, (sin, cos), rng);
    let waves = draw_waves(params, angle, rng);
    let mottle = ValueNoise::new(width, height, params.mottle_cell, rng);
    let grain = Normal::new(0.0, params.grain_sigma).expect("grain_sigma is checked finite");

    let mut data = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let (xf, yf) = (x as f32 + 0.5, y as f32 + 0.5);
            let across = -xf * sin + yf * cos;
            let along = xf * cos + yf * sin;
            let wave: f32 = waves
                .iter()
                .map(|w| w.amplitude * (w.kx * xf + w.ky * yf + w.phase).sin())
                .sum();
            let detail = streaks.value(across, along)
                + wave
                + params.mottle_amplitude * mottle.value(xf, yf)
                + grain.sample(rng);
            let illumination = brightness
                * (1.0
                    + light[0] * (xf / width as f32 - 0.5)
                    + light[1] * (yf / height as f32 - 0.5));
            data.push(params.base_rgb.map(|c| c * illumination + detail));
        }
    }
    Canvas {
        width,
        height,
        data,
    }
}

/// Fine streaks: a random profile across the brushing direction, at two scales, whose strength
/// varies slowly along the brushing direction.
struct StreakProfile {
    values: Vec<f32>,
    coarse: Vec<f32>,
    origin: f32,
    spacing: f32,
    amplitude: f32,
    modulation_phase: f32,
    modulation_frequency: f32,
}

impl StreakProfile {
    fn new(
        params: &SurfaceParams,
        width: usize,
        height: usize,
        (sin, cos): (f32, f32),
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let corners = [(0.0, 0.0), (width as f32, 0.0), (0.0, height as f32)];
        let corners = corners
            .into_iter()
            .chain([(width as f32, height as f32)])
            .map(|(x, y)| -x * sin + y * cos);
        let (low, high) = corners.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let origin = low - 2.0 * params.streak_spacing;
        let count = ((high - origin) / params.streak_spacing).ceil() as usize + 4;
        let normal = Normal::new(0.0f32, 1.0).expect("unit normal");
        let values = (0..count).map(|_| normal.sample(rng)).collect();
        let coarse = (0..count / 4 + 2).map(|_| normal.sample(rng)).collect();
        Self {
            values,
            coarse,
            origin,
            spacing: params.streak_spacing,
            amplitude: params.streak_amplitude,
            modulation_phase: rng.gen_range(0.0..2.0 * PI),
            modulation_frequency: rng.gen_range(0.01..0.04),
        }
    }

    fn value(&self, across: f32, along: f32) -> f32 {
        let position = (across - self.origin) / self.spacing;
        let fine = interpolate(&self.values, position);
        let coarse = interpolate(&self.coarse, position / 4.0);
        let modulation =
            1.0 + 0.3 * (along * self.modulation_frequency + self.modulation_phase).sin();
        self.amplitude * modulation * (0.8 * fine + 0.6 * coarse)
    }
}

/// Linear interpolation in `values` at a fractional index, clamped at both ends.
fn interpolate(values: &[f32], position: f32) -> f32 {
    let last = values.len() - 1;
    let position = position.clamp(0.0, last as f32);
    let i = (position.floor() as usize).min(last);
    let j = (i + 1).min(last);
    let t = position - i as f32;
    values[i] * (1.0 - t) + values[j] * t
}

struct Wave {
    kx: f32,
    ky: f32,
    phase: f32,
    amplitude: f32,
}

/// Draws sinusoids whose crests run roughly along the brushing direction.
fn draw_waves(params: &SurfaceParams, brush_angle: f32, rng: &mut ChaCha8Rng) -> Vec<Wave> {
    let [short, long] = params.wave_length;
    (0..params.wave_count)
        .map(|_| {
            let wavelength = rng.gen_range(short..=long);
            let direction = brush_angle + PI / 2.0 + rng.gen_range(-0.2..=0.2);
            let k = 2.0 * PI / wavelength;
            Wave {
                kx: k * direction.cos(),
                ky: k * direction.sin(),
                phase: rng.gen_range(0.0..2.0 * PI),
                amplitude: params.wave_amplitude,
            }
        })
        .collect()
}

/// Smooth 2D noise: uniform values in `-1..=1` on a square grid, interpolated with smoothstep.
struct ValueNoise {
    columns: usize,
    values: Vec<f32>,
    cell: f32,
}

impl ValueNoise {
    fn new(width: usize, height: usize, cell: f32, rng: &mut ChaCha8Rng) -> Self {
        let columns = (width as f32 / cell).ceil() as usize + 2;
        let rows = (height as f32 / cell).ceil() as usize + 2;
        let values = (0..columns * rows)
            .map(|_| rng.gen_range(-1.0..=1.0))
            .collect();
        Self {
            columns,
            values,
            cell,
        }
    }

    fn value(&self, x: f32, y: f32) -> f32 {
        let (gx, gy) = (x / self.cell, y / self.cell);
        let (i, j) = (gx.floor() as usize, gy.floor() as usize);
        let (tx, ty) = (smoothstep(gx.fract()), smoothstep(gy.fract()));
        let at = |i: usize, j: usize| self.values[j * self.columns + i];
        let top = at(i, j) * (1.0 - tx) + at(i + 1, j) * tx;
        let bottom = at(i, j + 1) * (1.0 - tx) + at(i + 1, j + 1) * tx;
        top * (1.0 - ty) + bottom * ty
    }
}

fn smoothstep(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}
