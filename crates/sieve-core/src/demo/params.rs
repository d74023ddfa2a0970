//! Parameters of the demo data set, unchecked (`DemoParams`) and validated (`CheckedDemoParams`).

use serde::{Deserialize, Serialize};

use super::error::DemoError;

/// Smallest accepted image side, in pixels, so a defect fits beside a harmless pattern.
pub const MIN_SIDE: u32 = 64;
/// Largest accepted image side, in pixels; a demo set is meant to be small.
pub const MAX_SIDE: u32 = 4096;

/// Appearance of the brushed-metal surface. Amplitudes are in luma units (`0..=1` scale).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceParams {
    /// Mean RGB colour of the surface, each channel in `0..=1`.
    pub base_rgb: [f32; 3],
    /// Brushing direction in degrees from the x axis, before the per-image jitter.
    pub brush_angle_deg: f32,
    /// Maximum per-image deviation of the brushing direction, in degrees.
    pub brush_angle_jitter_deg: f32,
    /// Standard deviation of the fine streaks running along the brushing direction.
    pub streak_amplitude: f32,
    /// Spacing of the streak profile across the brushing direction, in pixels.
    pub streak_spacing: f32,
    /// Number of oriented sinusoids added on top of the streaks.
    pub wave_count: usize,
    /// Amplitude of each sinusoid.
    pub wave_amplitude: f32,
    /// Wavelength range of the sinusoids, in pixels.
    pub wave_length: [f32; 2],
    /// Amplitude of the smooth large-scale noise (mottling).
    pub mottle_amplitude: f32,
    /// Cell size of the smooth noise grid, in pixels.
    pub mottle_cell: f32,
    /// Standard deviation of the per-pixel grain.
    pub grain_sigma: f32,
    /// Maximum relative brightness change of the linear illumination gradient across the image.
    pub gradient_amplitude: f32,
    /// Maximum per-image change of the overall brightness.
    pub brightness_jitter: f32,
}

impl Default for SurfaceParams {
    fn default() -> Self {
        Self {
            base_rgb: [0.50, 0.52, 0.55],
            brush_angle_deg: 0.0,
            brush_angle_jitter_deg: 4.0,
            streak_amplitude: 0.03,
            streak_spacing: 1.5,
            wave_count: 5,
            wave_amplitude: 0.006,
            wave_length: [3.0, 24.0],
            mottle_amplitude: 0.025,
            mottle_cell: 28.0,
            grain_sigma: 0.01,
            gradient_amplitude: 0.10,
            brightness_jitter: 0.03,
        }
    }
}

/// Settings of a synthetic inspection set. Ranges are `[min, max]`, drawn uniformly; sizes are
/// in pixels and contrasts are luma differences to the local surface on the `0..=1` scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoParams {
    /// Seed of every random draw; the same seed gives byte-identical files.
    pub seed: u64,
    /// Number of defect-free training images in `train/good`.
    pub train_count: usize,
    /// Number of defect-free test images in `test/good`.
    pub test_good: usize,
    /// Number of defective test images, split between `test/scratch` (the larger half) and
    /// `test/pit`.
    pub test_defect: usize,
    pub width: u32,
    pub height: u32,
    /// Share of training images that carry a harmless pattern; kept small so the pattern is rare.
    pub train_pattern_share: f64,
    /// Share of test images, good and defective counted apart, that carry a harmless pattern.
    pub test_pattern_share: f64,
    /// End-to-end (chord) length of a scratch. Its bow makes the curve up to about 6 % longer.
    pub scratch_length: [f32; 2],
    /// Thickness of a scratch.
    pub scratch_thickness: [f32; 2],
    /// Diameter of a pit.
    pub pit_diameter: [f32; 2],
    /// Contrast of scratches and pits; negative because they are darker than the surface.
    pub defect_contrast: [f32; 2],
    /// Diameter of a stain: a large, faint, bright, soft-edged round patch.
    pub stain_diameter: [f32; 2],
    /// Contrast of a stain at its centre.
    pub stain_contrast: [f32; 2],
    /// Outer diameter of a stamp: a bright printed ring with a bar across it.
    pub stamp_diameter: [f32; 2],
    /// Line width of a stamp's ring and bar.
    pub stamp_line_width: [f32; 2],
    /// Contrast of a stamp's ink.
    pub stamp_contrast: [f32; 2],
    pub surface: SurfaceParams,
}

impl Default for DemoParams {
    fn default() -> Self {
        Self {
            seed: 7,
            train_count: 60,
            test_good: 20,
            test_defect: 20,
            width: 192,
            height: 160,
            train_pattern_share: 0.12,
            test_pattern_share: 0.3,
            scratch_length: [15.0, 40.0],
            scratch_thickness: [1.0, 3.0],
            pit_diameter: [4.0, 9.0],
            defect_contrast: [-0.28, -0.14],
            stain_diameter: [40.0, 64.0],
            stain_contrast: [0.08, 0.14],
            stamp_diameter: [34.0, 50.0],
            stamp_line_width: [3.0, 5.0],
            stamp_contrast: [0.18, 0.28],
            surface: SurfaceParams::default(),
        }
    }
}

/// Parameters that passed [`DemoParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDemoParams(DemoParams);

impl CheckedDemoParams {
    pub fn params(&self) -> &DemoParams {
        &self.0
    }
}

impl DemoParams {
    /// Validates every setting, returning the first rule broken.
    pub fn check(self) -> Result<CheckedDemoParams, DemoError> {
        if self.train_count == 0 {
            return Err(DemoError::NoTrainImages);
        }
        let sides = MIN_SIDE..=MAX_SIDE;
        if !sides.contains(&self.width) || !sides.contains(&self.height) {
            return Err(DemoError::ImageSize {
                width: self.width,
                height: self.height,
                min: MIN_SIDE,
                max: MAX_SIDE,
            });
        }
        check_share("train_pattern_share", self.train_pattern_share)?;
        check_share("test_pattern_share", self.test_pattern_share)?;

        for (name, range) in [
            ("scratch_length", self.scratch_length),
            ("scratch_thickness", self.scratch_thickness),
            ("pit_diameter", self.pit_diameter),
            ("stain_diameter", self.stain_diameter),
            ("stamp_diameter", self.stamp_diameter),
            ("stamp_line_width", self.stamp_line_width),
            ("surface.wave_length", self.surface.wave_length),
        ] {
            check_range(name, range)?;
            if range[0] <= 0.0 {
                return Err(DemoError::NonPositiveSize {
                    name,
                    min: range[0],
                    max: range[1],
                });
            }
        }
        check_range("defect_contrast", self.defect_contrast)?;
        if self.defect_contrast[0] < -1.0 || self.defect_contrast[1] >= 0.0 {
            return Err(DemoError::DefectNotDarker {
                name: "defect_contrast",
                min: self.defect_contrast[0],
                max: self.defect_contrast[1],
            });
        }
        for (name, range) in [
            ("stain_contrast", self.stain_contrast),
            ("stamp_contrast", self.stamp_contrast),
        ] {
            check_range(name, range)?;
            if range[0] <= 0.0 || range[1] > 1.0 {
                return Err(DemoError::PatternNotBrighter {
                    name,
                    min: range[0],
                    max: range[1],
                });
            }
        }
        self.check_fit()?;
        self.surface.check()?;
        Ok(CheckedDemoParams(self))
    }

    /// Checks that a harmless pattern takes at most half the shorter side, so a defect fits beside
    /// it. The defect limits keep a placement margin of `length / 2 + width + 3` pixels below half
    /// the shorter side for every side of at least `MIN_SIDE`.
    fn check_fit(&self) -> Result<(), DemoError> {
        let short_side = self.width.min(self.height) as f32;
        let limits = [
            ("stain_diameter", self.stain_diameter[1], short_side / 2.0),
            ("stamp_diameter", self.stamp_diameter[1], short_side / 2.0),
            ("scratch_length", self.scratch_length[1], short_side / 2.0),
            (
                "scratch_thickness",
                self.scratch_thickness[1],
                short_side / 8.0,
            ),
            ("pit_diameter", self.pit_diameter[1], short_side / 4.0),
        ];
        for (name, value, limit) in limits {
            if value > limit {
                return Err(DemoError::ShapeTooLarge {
                    name,
                    value,
                    limit,
                    width: self.width,
                    height: self.height,
                });
            }
        }
        // The ring must leave an open middle for the bar to cross.
        if self.stamp_line_width[1] > self.stamp_diameter[0] / 4.0 {
            return Err(DemoError::ShapeTooLarge {
                name: "stamp_line_width",
                value: self.stamp_line_width[1],
                limit: self.stamp_diameter[0] / 4.0,
                width: self.width,
                height: self.height,
            });
        }
        Ok(())
    }
}

impl SurfaceParams {
    fn check(&self) -> Result<(), DemoError> {
        let amplitudes = [
            (
                "surface.brush_angle_jitter_deg",
                self.brush_angle_jitter_deg,
            ),
            ("surface.streak_amplitude", self.streak_amplitude),
            ("surface.wave_amplitude", self.wave_amplitude),
            ("surface.mottle_amplitude", self.mottle_amplitude),
            ("surface.grain_sigma", self.grain_sigma),
            ("surface.gradient_amplitude", self.gradient_amplitude),
            ("surface.brightness_jitter", self.brightness_jitter),
        ];
        for (name, value) in amplitudes {
            if !value.is_finite() || value < 0.0 {
                return Err(DemoError::NegativeAmplitude { name, value });
            }
        }
        for (name, value) in [
            ("surface.streak_spacing", self.streak_spacing),
            ("surface.mottle_cell", self.mottle_cell),
        ] {
            if !value.is_finite() || value <= 0.0 {
                return Err(DemoError::NonPositiveSize {
                    name,
                    min: value,
                    max: value,
                });
            }
        }
        if !self.base_rgb.iter().all(|c| (0.0..=1.0).contains(c)) {
            return Err(DemoError::InvalidColor {
                value: self.base_rgb,
            });
        }
        if !self.brush_angle_deg.is_finite() {
            return Err(DemoError::NotFinite {
                name: "surface.brush_angle_deg",
                value: self.brush_angle_deg,
            });
        }
        Ok(())
    }
}

fn check_range(name: &'static str, range: [f32; 2]) -> Result<(), DemoError> {
    let [min, max] = range;
    if !min.is_finite() || !max.is_finite() || min > max {
        return Err(DemoError::InvalidRange { name, min, max });
    }
    Ok(())
}

fn check_share(name: &'static str, value: f64) -> Result<(), DemoError> {
    if !(0.0..=1.0).contains(&value) {
        return Err(DemoError::InvalidShare { name, value });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_with(edit: fn(&mut DemoParams)) -> Result<CheckedDemoParams, DemoError> {
        let mut params = DemoParams::default();
        edit(&mut params);
        params.check()
    }

    #[test]
    fn defaults_pass_check() {
        let checked = DemoParams::default().check().unwrap();
        assert_eq!(checked.params(), &DemoParams::default());
    }

    #[test]
    fn check_rejects_each_rule() {
        type Edit = fn(&mut DemoParams);
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("no training", |p| p.train_count = 0, "train_count"),
            ("narrow", |p| p.width = 32, "32x160"),
            ("huge", |p| p.height = 5000, "192x5000"),
            (
                "share above 1",
                |p| p.train_pattern_share = 1.5,
                "train_pattern_share",
            ),
            (
                "NaN share",
                |p| p.test_pattern_share = f64::NAN,
                "test_pattern_share",
            ),
            (
                "reversed range",
                |p| p.pit_diameter = [9.0, 4.0],
                "pit_diameter",
            ),
            (
                "zero thickness",
                |p| p.scratch_thickness = [0.0, 2.0],
                "scratch_thickness",
            ),
            (
                "bright defect",
                |p| p.defect_contrast = [-0.2, 0.1],
                "defect_contrast",
            ),
            (
                "dark stain",
                |p| p.stain_contrast = [-0.1, 0.1],
                "stain_contrast",
            ),
            (
                "stain too big",
                |p| p.stain_diameter = [40.0, 120.0],
                "stain_diameter",
            ),
            (
                "ring too thick",
                |p| p.stamp_line_width = [3.0, 12.0],
                "stamp_line_width",
            ),
            (
                "negative grain",
                |p| p.surface.grain_sigma = -0.1,
                "surface.grain_sigma",
            ),
            (
                "thick scratch",
                |p| p.scratch_thickness = [1.0, 30.0],
                "scratch_thickness",
            ),
            (
                "colour above 1",
                |p| p.surface.base_rgb = [0.5, 1.2, 0.5],
                "surface.base_rgb",
            ),
            (
                "infinite angle",
                |p| p.surface.brush_angle_deg = f32::INFINITY,
                "surface.brush_angle_deg",
            ),
            (
                "zero mottle cell",
                |p| p.surface.mottle_cell = 0.0,
                "surface.mottle_cell",
            ),
        ];
        for (case, edit, expected) in cases {
            let message = match check_with(edit) {
                Ok(_) => panic!("case {case}: check passed"),
                Err(error) => error.to_string(),
            };
            assert!(message.contains(expected), "case {case}: {message}");
        }
    }
}
