//! The 2D sinusoidal positional encoding that conditions CFlow's flows.

use candle_core::{Device, Result, Tensor};

/// Encodes every position of an `height`×`width` grid in `dim` values, `dim` a multiple of 4.
/// Returns `(height * width, dim)` f32, row `y * width + x` for the position `(y, x)`.
///
/// With `half = dim / 2` and `f_i = 10000^(-2i / half)` for `i` in `0..half / 2`, the first
/// half encodes the column and the second half the row:
/// `[2i] = sin(x f_i)`, `[2i + 1] = cos(x f_i)`, `[half + 2i] = sin(y f_i)`,
/// `[half + 2i + 1] = cos(y f_i)`. This is the transformer encoding (Vaswani et al., 2017)
/// applied to each axis, as CFLOW-AD uses it.
///
/// # Panics
/// When `dim` is not a positive multiple of 4.
pub fn positional_encoding(
    dim: usize,
    height: usize,
    width: usize,
    device: &Device,
) -> Result<Tensor> {
    assert!(
        dim > 0 && dim.is_multiple_of(4),
        "dim {dim} is not a positive multiple of 4"
    );
    let half = dim / 2;
    let frequencies: Vec<f64> = (0..half / 2)
        .map(|i| (-((2 * i) as f64) * 10000f64.ln() / half as f64).exp())
        .collect();
    let mut values = Vec::with_capacity(height * width * dim);
    for y in 0..height {
        for x in 0..width {
            for position in [x, y] {
                for &frequency in &frequencies {
                    let angle = position as f64 * frequency;
                    values.push(angle.sin() as f32);
                    values.push(angle.cos() as f32);
                }
            }
        }
    }
    Tensor::from_vec(values, (height * width, dim), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_hand_values() {
        // dim 8: half 4, frequencies 1 and 10000^(-2/4) = 0.01.
        let encoding = positional_encoding(8, 3, 5, &Device::Cpu).unwrap();
        assert_eq!(encoding.dims(), &[15, 8]);
        let rows = encoding.to_vec2::<f32>().unwrap();

        // Position (0, 0): sin 0 = 0 and cos 0 = 1 everywhere.
        assert_eq!(rows[0], vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        // Position (y 2, x 3), row 2 * 5 + 3.
        let expected = [
            3f64.sin(),
            3f64.cos(),
            0.03f64.sin(),
            0.03f64.cos(),
            2f64.sin(),
            2f64.cos(),
            0.02f64.sin(),
            0.02f64.cos(),
        ];
        for (channel, (&got, want)) in rows[13].iter().zip(expected).enumerate() {
            assert!(
                (f64::from(got) - want).abs() < 1e-6,
                "channel {channel}: {got} vs {want}"
            );
        }
        // Position (y 1, x 0) differs from (0, 1): the axes are encoded apart.
        assert_eq!(rows[5][0], 0.0);
        assert!((f64::from(rows[5][4]) - 1f64.sin()).abs() < 1e-6);
        assert!((f64::from(rows[1][0]) - 1f64.sin()).abs() < 1e-6);
        assert_eq!(rows[1][4], 0.0);
    }

    #[test]
    #[should_panic(expected = "multiple of 4")]
    fn encoding_rejects_odd_dimensions() {
        let _ = positional_encoding(6, 2, 2, &Device::Cpu);
    }
}
