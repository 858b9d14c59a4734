//! The number formats of the ONNX variants: symmetric INT8 (per tensor or per channel, zero
//! point 0, range -127..=127) and IEEE float16.
//!
//! Quantisation follows ONNX `QuantizeLinear`: `q = saturate(round_half_even(x / scale))`, and
//! `DequantizeLinear` gives back `q * scale`. With `scale = max|x| / 127` the round-trip error of
//! every element is at most `scale / 2`.

use half::f16;

/// Largest magnitude of the symmetric INT8 range (-127..=127; -128 is never used, so the range
/// is symmetric, as TensorRT and Core ML expect).
pub const INT8_MAX: f32 = 127.0;

/// Largest finite float16 value.
pub const F16_MAX: f32 = 65504.0;

/// Scale that maps `max_abs` onto [`INT8_MAX`]. A tensor (or channel) of zeros gets scale 1
/// (any positive scale represents it exactly; 0 would be a degenerate scale some runtimes
/// refuse).
pub fn symmetric_scale(max_abs: f32) -> f32 {
    if max_abs > 0.0 && max_abs.is_finite() {
        let scale = max_abs / INT8_MAX;
        // A subnormal scale would lose precision or flush to zero on some runtimes.
        if scale.is_normal() {
            return scale;
        }
        return f32::MIN_POSITIVE;
    }
    1.0
}

/// `x` quantised with `scale` (round half to even, saturated to -127..=127).
pub fn quantize_value(x: f32, scale: f32) -> i8 {
    let q = (x / scale).round_ties_even().clamp(-INT8_MAX, INT8_MAX);
    // In range by the clamp above; `as` cannot wrap here.
    q as i8
}

/// Symmetric per-tensor quantisation: one scale for the whole tensor, zero point 0.
/// Returns the INT8 values and the scale.
pub fn quantize_per_tensor(values: &[f32]) -> (Vec<i8>, f32) {
    let max_abs = values.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = symmetric_scale(max_abs);
    let q = values.iter().map(|&x| quantize_value(x, scale)).collect();
    (q, scale)
}

/// Symmetric per-channel quantisation along `axis` of a row-major tensor shaped `dims`: one
/// scale per index of that axis, zero points 0. Returns the INT8 values and the scales
/// (`dims[axis]` of them). `None` when `axis` is out of range or `dims` does not match the
/// number of values.
pub fn quantize_per_channel(
    values: &[f32],
    dims: &[usize],
    axis: usize,
) -> Option<(Vec<i8>, Vec<f32>)> {
    let layout = ChannelLayout::new(dims, axis, values.len())?;
    let mut max_abs = vec![0f32; layout.channels];
    for (i, x) in values.iter().enumerate() {
        let c = layout.channel(i);
        max_abs[c] = max_abs[c].max(x.abs());
    }
    let scales: Vec<f32> = max_abs.into_iter().map(symmetric_scale).collect();
    let q = values
        .iter()
        .enumerate()
        .map(|(i, &x)| quantize_value(x, scales[layout.channel(i)]))
        .collect();
    Some((q, scales))
}

/// `DequantizeLinear` with one scale and zero point 0.
pub fn dequantize_per_tensor(q: &[i8], scale: f32) -> Vec<f32> {
    q.iter().map(|&v| f32::from(v) * scale).collect()
}

/// `DequantizeLinear` with per-channel scales along `axis` and zero points 0. `None` when the
/// layout does not match.
pub fn dequantize_per_channel(
    q: &[i8],
    scales: &[f32],
    dims: &[usize],
    axis: usize,
) -> Option<Vec<f32>> {
    let layout = ChannelLayout::new(dims, axis, q.len())?;
    if layout.channels != scales.len() {
        return None;
    }
    Some(
        q.iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) * scales[layout.channel(i)])
            .collect(),
    )
}

/// Whether every value survives float16 storage: finite and within ±[`F16_MAX`] (larger
/// values would become infinities).
pub fn fits_f16(values: &[f32]) -> bool {
    values.iter().all(|&x| fits_f16_value(x))
}

/// Whether `x` survives float16 storage (see [`fits_f16`]).
pub fn fits_f16_value(x: f32) -> bool {
    x.is_finite() && x.abs() <= F16_MAX
}

/// Values as little-endian float16 bytes (round to nearest even).
pub fn to_f16_le_bytes(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 2);
    for &x in values {
        out.extend_from_slice(&f16::from_f32(x).to_le_bytes());
    }
    out
}

/// Where the channel index sits in a row-major index: `(i / inner) % channels`.
struct ChannelLayout {
    channels: usize,
    inner: usize,
}

impl ChannelLayout {
    fn new(dims: &[usize], axis: usize, len: usize) -> Option<ChannelLayout> {
        let channels = *dims.get(axis)?;
        let numel = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        if numel != len || channels == 0 {
            return None;
        }
        let inner = dims[axis + 1..].iter().product::<usize>().max(1);
        Some(ChannelLayout { channels, inner })
    }

    fn channel(&self, i: usize) -> usize {
        (i / self.inner) % self.channels
    }
}
