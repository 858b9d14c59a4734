//! MLX affine quantisation: packing, the exact mapping of GGUF blocks onto MLX groups, and
//! MLX's own quantisation rule for everything else.
//!
//! MLX stores an affine-quantised matrix `[out, in]` as
//! - `weight`: `uint32 [out, in·bits/32]`, the `bits`-wide codes as a little-endian bit stream
//!   (code `k` of a row at bit `k·bits`), so for 4 bits byte `j` holds codes `2j` (low nibble)
//!   and `2j+1` (high nibble);
//! - `scales`, `biases`: `[out, in/group_size]` floats; `w = scale·q + bias`.
//!
//! GGUF blocks of 32 map onto groups of 32 without any rounding:
//! - `Q4_1` (`x = q·d + m`): scale `d`, bias `m`;
//! - `Q4_0` (`x = (q − 8)·d`): scale `d`, bias `−8d` (a power-of-two multiple: exact in f16);
//! - `Q8_0` (`x = q·d`, `q` signed): 8-bit code `q + 128`, scale `d`, bias `−128d`;
//! - `Q4_K` sub-blocks of 32 (`x = d·sc·q − dmin·m`): scale `d·sc`, bias `−dmin·m`, exact in f32
//!   scales and rounded once to f16 otherwise.
//!
//! The codes and the products `scale·q` are exact in f32 in every case above, so MLX's
//! dequantised values are bit-identical to ggml's (checked by the tests against ggml itself).

use half::f16;

use super::ggml;

/// One quantised row (or several rows) in MLX's layout, scales and biases kept as f32.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Packed {
    /// Packed codes, little-endian bytes of the `uint32` words.
    pub weight: Vec<u8>,
    /// One scale per group.
    pub scales: Vec<f32>,
    /// One bias per group.
    pub biases: Vec<f32>,
}

/// Appends `codes` (each below `2^bits`) to `out` as MLX's little-endian bit stream.
/// `codes.len() · bits` must be a multiple of 32.
pub fn pack_codes(codes: &[u8], bits: u32, out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut filled = 0u32;
    for &q in codes {
        acc |= u64::from(q) << filled;
        filled += bits;
        while filled >= 8 {
            out.push((acc & 0xff) as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push((acc & 0xff) as u8);
    }
}

/// Reads code `index` back from a packed stream (tests and verification).
pub fn unpack_code(packed: &[u8], bits: u32, index: usize) -> u8 {
    let bit = index * bits as usize;
    let byte = bit / 8;
    let shift = bit % 8;
    let mut word = u16::from(packed[byte]);
    if byte + 1 < packed.len() {
        word |= u16::from(packed[byte + 1]) << 8;
    }
    ((word >> shift) & ((1u16 << bits) - 1)) as u8
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Whether `value` survives a round trip through f16 unchanged (so it can be an f16 scale).
fn is_f16_exact(value: f32) -> bool {
    f16::from_f32(value).to_f32() == value
}

/// Maps one row of GGUF blocks onto MLX groups of 32, appending to `out`. Returns the MLX bit
/// width and whether the mapping is exact with the output's scale type (`f16_scales`: scales
/// and biases stored as f16, else f32), or `None` when the type (or a value in it) has no
/// direct mapping. Only Q4_K can be inexact: its `d·sc` products may need rounding to f16.
pub fn map_exact(
    type_id: u32,
    row: &[u8],
    f16_scales: bool,
    out: &mut Packed,
) -> Option<(u32, bool)> {
    let mut codes = [0u8; 32];
    let check = |scale: f32, bias: f32| {
        scale.is_finite()
            && bias.is_finite()
            && (!f16_scales || (is_f16_exact(scale) && is_f16_exact(bias)))
    };
    match type_id {
        ggml::Q4_0 | ggml::Q4_1 => {
            let with_min = type_id == ggml::Q4_1;
            let block = if with_min { 20 } else { 18 };
            if row.len() % block != 0 {
                return None;
            }
            for b in row.chunks_exact(block) {
                let d = f16_at(b, 0);
                let (bias, qs) = if with_min {
                    (f16_at(b, 2), &b[4..20])
                } else {
                    (-8.0 * d, &b[2..18])
                };
                if !check(d, bias) {
                    return None;
                }
                for (j, &byte) in qs.iter().enumerate() {
                    codes[j] = byte & 0x0f;
                    codes[j + 16] = byte >> 4;
                }
                pack_codes(&codes, 4, &mut out.weight);
                out.scales.push(d);
                out.biases.push(bias);
            }
            Some((4, true))
        }
        ggml::Q8_0 => {
            if row.len() % 34 != 0 {
                return None;
            }
            for b in row.chunks_exact(34) {
                let d = f16_at(b, 0);
                let bias = -128.0 * d;
                if !check(d, bias) {
                    return None;
                }
                for (c, &q) in codes.iter_mut().zip(&b[2..34]) {
                    *c = (q as i8 as i16 + 128) as u8;
                }
                pack_codes(&codes, 8, &mut out.weight);
                out.scales.push(d);
                out.biases.push(bias);
            }
            Some((8, true))
        }
        ggml::Q4_K => {
            if row.len() % 144 != 0 {
                return None;
            }
            let mut exact = true;
            for b in row.chunks_exact(144) {
                let d = f16_at(b, 0);
                let dmin = f16_at(b, 2);
                let scales = &b[4..16];
                let qs = &b[16..144];
                for pair in 0..4 {
                    let q = &qs[pair * 32..pair * 32 + 32];
                    for (sub, shift) in [(2 * pair, 0u8), (2 * pair + 1, 4u8)] {
                        let (sc, m) = scale_min_k4(sub, scales);
                        let scale = d * f32::from(sc);
                        let bias = -(dmin * f32::from(m));
                        if !scale.is_finite() || !bias.is_finite() {
                            return None;
                        }
                        exact &= !f16_scales || (is_f16_exact(scale) && is_f16_exact(bias));
                        for (c, &byte) in codes.iter_mut().zip(q) {
                            *c = (byte >> shift) & 0x0f;
                        }
                        pack_codes(&codes, 4, &mut out.weight);
                        // Rounded to f16 by the writer when the output is f16 (reported).
                        out.scales.push(scale);
                        out.biases.push(bias);
                    }
                }
            }
            Some((4, exact))
        }
        _ => None,
    }
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Whether a GGUF type maps exactly onto MLX groups of 32, and at how many bits.
pub fn exact_bits(type_id: u32) -> Option<u32> {
    match type_id {
        ggml::Q4_0 | ggml::Q4_1 | ggml::Q4_K => Some(4),
        ggml::Q8_0 => Some(8),
        _ => None,
    }
}

/// MLX's affine quantisation of `values` (a whole number of groups), as `mx.quantize` does it
/// on the CPU (`mlx/backend/cpu/quantized.cpp`): per group, the edge with the larger magnitude
/// is represented exactly and zero stays on the grid when possible.
pub fn quantize_affine(values: &[f32], group_size: usize, bits: u32, out: &mut Packed) {
    let n_bins = ((1u32 << bits) - 1) as f32;
    let eps = 1e-7f32;
    let mut codes = vec![0u8; group_size];
    for group in values.chunks_exact(group_size) {
        let mut w_min = f32::INFINITY;
        let mut w_max = f32::NEG_INFINITY;
        for &w in group {
            w_max = w_max.max(w);
            w_min = w_min.min(w);
        }
        let mask = w_min.abs() > w_max.abs();
        let mut scale = ((w_max - w_min) / n_bins).max(eps);
        scale = if mask { scale } else { -scale };
        let edge = if mask { w_min } else { w_max };
        let q0 = (edge / scale).round_ties_even();
        let mut bias = 0.0f32;
        if q0 != 0.0 {
            scale = edge / q0;
            bias = edge;
        }
        for (c, &w) in codes.iter_mut().zip(group) {
            let q = ((w - bias) / scale).round_ties_even().clamp(0.0, n_bins);
            *c = q as u8;
        }
        pack_codes(&codes, bits, &mut out.weight);
        out.scales.push(scale);
        out.biases.push(bias);
    }
}

/// Dequantises group `g` of a packed row (tests and verification): `scale·q + bias` in f32,
/// as MLX computes it.
pub fn dequantize_group(packed: &Packed, bits: u32, group_size: usize, g: usize, out: &mut [f32]) {
    let scale = packed.scales[g];
    let bias = packed.biases[g];
    for (k, o) in out.iter_mut().enumerate().take(group_size) {
        let q = unpack_code(&packed.weight, bits, g * group_size + k);
        *o = scale * f32::from(q) + bias;
    }
}

/// Row index in the GGUF tensor that holds row `row` of the Hugging Face layout, undoing
/// llama.cpp's rotary permutation of Q/K projections (`head_dim` rows per head: GGUF row
/// `h·hd + 2i + half` holds Hugging Face row `h·hd + half·hd/2 + i`).
pub fn unpermuted_source_row(row: usize, head_dim: usize) -> usize {
    let half_dim = head_dim / 2;
    let head = row / head_dim;
    let within = row % head_dim;
    let half = within / half_dim;
    let i = within % half_dim;
    head * head_dim + 2 * i + half
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_bit_codes_pack_low_nibble_first() {
        let codes: Vec<u8> = (0..8).collect();
        let mut out = Vec::new();
        pack_codes(&codes, 4, &mut out);
        assert_eq!(
            u32::from_le_bytes([out[0], out[1], out[2], out[3]]),
            0x7654_3210
        );
        for bits in [2u32, 3, 4, 5, 6, 8] {
            let codes: Vec<u8> = (0..64u32)
                .map(|i| ((i * 7 + 3) % (1 << bits)) as u8)
                .collect();
            let mut out = Vec::new();
            pack_codes(&codes, bits, &mut out);
            assert_eq!(out.len(), 64 * bits as usize / 8);
            for (i, &c) in codes.iter().enumerate() {
                assert_eq!(unpack_code(&out, bits, i), c, "bits {bits} index {i}");
            }
        }
    }

    /// convert_hf_to_gguf.py's `permute`, literally: rows viewed as
    /// `[n_head, 2, head_dim/2]`, axes 1 and 2 swapped, flattened again.
    fn llama_cpp_permute<T: Clone>(rows: &[T], n_head: usize) -> Vec<T> {
        let head_dim = rows.len() / n_head;
        let half = head_dim / 2;
        let mut out = Vec::with_capacity(rows.len());
        for h in 0..n_head {
            for i in 0..half {
                for s in 0..2 {
                    out.push(rows[h * head_dim + s * half + i].clone());
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        for (n_head, head_dim) in [(9usize, 64usize), (3, 64), (4, 8), (1, 4)] {
            // Each "row" is a distinct byte string, like a row of quantised blocks.
            let hf: Vec<Vec<u8>> = (0..n_head * head_dim)
                .map(|r| vec![(r % 251) as u8, (r / 251) as u8, 7])
                .collect();
            let gguf = llama_cpp_permute(&hf, n_head);
            assert_ne!(gguf, hf, "the permutation moves rows");
            let back: Vec<Vec<u8>> = (0..hf.len())
                .map(|r| gguf[unpermuted_source_row(r, head_dim)].clone())
                .collect();
            assert_eq!(back, hf, "n_head {n_head}, head_dim {head_dim}");
        }
    }

    #[test]
    fn affine_quantisation_keeps_edges_and_bounds_error() {
        let values: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 0.05).collect();
        for bits in [2u32, 4, 8] {
            let mut p = Packed::default();
            quantize_affine(&values, 32, bits, &mut p);
            let mut back = vec![0f32; 32];
            for g in 0..2 {
                dequantize_group(&p, bits, 32, g, &mut back);
                let group = &values[g * 32..g * 32 + 32];
                let step = p.scales[g].abs();
                for (a, b) in group.iter().zip(&back) {
                    assert!(
                        (a - b).abs() <= step * 0.5 + 1e-6,
                        "bits {bits}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
