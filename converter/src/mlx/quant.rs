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

impl Packed {
    /// An empty buffer with room for `rows` rows of `row_len` codes of `bits` bits in groups
    /// of `group_size` (so filling it never reallocates).
    pub fn with_capacity(rows: usize, row_len: usize, bits: u32, group_size: usize) -> Self {
        let groups = rows * (row_len / group_size.max(1));
        Packed {
            weight: Vec::with_capacity(rows * row_len * bits as usize / 8),
            scales: Vec::with_capacity(groups),
            biases: Vec::with_capacity(groups),
        }
    }
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
            if !row.len().is_multiple_of(block) {
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
            if !row.len().is_multiple_of(34) {
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
            if !row.len().is_multiple_of(144) {
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
    fn affine_quantisation_error_is_at_most_one_step() {
        let values: Vec<f32> = (0..64).map(|i| ((i as f32) * 0.37).sin() * 0.05).collect();
        for bits in [2u32, 4, 8] {
            let mut p = Packed::default();
            quantize_affine(&values, 32, bits, &mut p);
            let mut back = vec![0f32; 32];
            for g in 0..2 {
                dequantize_group(&p, bits, 32, g, &mut back);
                let group = &values[g * 32..g * 32 + 32];
                let step = p.scales[g].abs();
                // Half a step, or up to one step at a clamped far edge (zero stays on the grid).
                for (a, b) in group.iter().zip(&back) {
                    assert!((a - b).abs() <= step + 1e-6, "bits {bits}: {a} vs {b}");
                }
            }
        }
    }

    /// Values exactly representable in f32, computed the same way in Rust and numpy.
    fn probe_values() -> Vec<f32> {
        (0..64)
            .map(|i| {
                let v = (((i * 37) % 101) as f32 - 50.0) / 1024.0;
                if i >= 32 {
                    v.abs() + 0.01
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn requantisation_matches_mlx_quantize_bit_for_bit() {
        // Expected values from `mx.quantize(v, group_size=32, bits)` with mlx 0.32.4 (CPU).
        // (bits, codes, scales, biases); f64 literals hold the f32 values exactly.
        type Case<'a> = (u32, &'a [u32], [f64; 2], [f64; 2]);
        let cases: [Case<'_>; 2] = [
            (
                4,
                &[
                    2100880559, 2387277233, 2673542850, 2691442899, 2464570936, 1962179595,
                    1188145693, 699451455,
                ],
                [-0.006103515625, -0.0030448189936578274],
                [0.048828125, 0.05785156041383743],
            ),
            (
                8,
                &[
                    3863192063, 1858939272, 4166300431, 2162113434, 140952865, 2465287596,
                    444127027, 2751487933, 1441737610, 2501961056, 2060060079, 1883635514,
                    2695172309, 1248516629, 3313513978, 630240512,
                ],
                [-0.0003814697265625, -0.0001836557494243607],
                [0.048828125, 0.05785156041383743],
            ),
        ];
        for (bits, words, scales, biases) in cases {
            let mut p = Packed::default();
            quantize_affine(&probe_values(), 32, bits, &mut p);
            let got: Vec<u32> = p
                .weight
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            assert_eq!(got, words, "{bits}-bit codes");
            assert_eq!(p.scales, scales.map(|v| v as f32), "{bits}-bit scales");
            assert_eq!(p.biases, biases.map(|v| v as f32), "{bits}-bit biases");
        }
    }

    /// Random-ish floats with a few outliers, quantised by ggml itself into `type_id` blocks.
    fn ggml_blocks(type_id: u32, rows: usize, row_len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let values: Vec<f32> = (0..rows * row_len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                if i % 97 == 0 {
                    u * 0.9
                } else {
                    u * 0.08
                }
            })
            .collect();
        let ty = ggml::GgmlType::from_id(type_id).unwrap();
        let mut out = vec![0u8; ty.bytes((rows * row_len) as u64) as usize];
        // SAFETY: `values` holds rows × row_len floats and `out` exactly the bytes ggml writes.
        let written = unsafe {
            llama_cpp_sys_2::ggml_quantize_chunk(
                type_id,
                values.as_ptr(),
                out.as_mut_ptr().cast(),
                0,
                rows as i64,
                row_len as i64,
                std::ptr::null(),
            )
        };
        assert_eq!(written, out.len());
        out
    }

    #[test]
    fn gguf_blocks_map_onto_mlx_groups_exactly() {
        let (rows, row_len) = (4usize, 512usize);
        for (type_id, bits) in [
            (ggml::Q4_0, 4),
            (ggml::Q4_1, 4),
            (ggml::Q8_0, 8),
            (ggml::Q4_K, 4),
        ] {
            let ty = ggml::GgmlType::from_id(type_id).unwrap();
            let data = ggml_blocks(type_id, rows, row_len);
            let row_bytes = data.len() / rows;
            for r in 0..rows {
                let src = &data[r * row_bytes..(r + 1) * row_bytes];
                let mut want = vec![0f32; row_len];
                assert!(ty.dequantize(src, &mut want), "{}", ty.name);
                // f32 scales: every type maps exactly; f16: all but Q4_K by construction.
                for f16_scales in [false, true] {
                    let mut p = Packed::default();
                    let (b, exact) = map_exact(type_id, src, f16_scales, &mut p).unwrap();
                    assert_eq!(b, bits, "{}", ty.name);
                    assert_eq!(p.scales.len(), row_len / 32);
                    if type_id != ggml::Q4_K || !f16_scales {
                        assert!(exact, "{} f16 {f16_scales}", ty.name);
                    }
                    let mut got = vec![0f32; 32];
                    for g in 0..row_len / 32 {
                        let (mut s, mut o) = (p.scales[g], p.biases[g]);
                        if f16_scales {
                            s = f16::from_f32(s).to_f32();
                            o = f16::from_f32(o).to_f32();
                        }
                        let rounded = Packed {
                            weight: p.weight.clone(),
                            scales: vec![s; row_len / 32],
                            biases: vec![o; row_len / 32],
                        };
                        dequantize_group(&rounded, bits, 32, g, &mut got);
                        for k in 0..32 {
                            let (m, w) = (got[k], want[g * 32 + k]);
                            if exact {
                                assert_eq!(m, w, "{} row {r} group {g} element {k}", ty.name);
                            } else {
                                assert!((m - w).abs() <= 2e-3 * (s.abs() * 15.0 + o.abs()));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn types_without_a_direct_image_are_refused() {
        let data = ggml_blocks(ggml::GgmlType::from_id(14).map(|t| t.id).unwrap(), 1, 256);
        assert!(
            map_exact(14, &data, true, &mut Packed::default()).is_none(),
            "Q6_K"
        );
        assert_eq!(exact_bits(ggml::F16), None);
    }
}
