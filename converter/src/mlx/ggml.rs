//! ggml tensor types: sizes, names and dequantisation, taken from the ggml that llama.cpp links
//! (its `ggml_get_type_traits` table), so every type llama.cpp reads can be dequantised
//! exactly as llama.cpp itself would.

use std::ffi::CStr;

use half::{bf16, f16};
use llama_cpp_sys_2 as sys;

/// ggml type id of `F32`.
pub const F32: u32 = sys::GGML_TYPE_F32;
/// ggml type id of `F16`.
pub const F16: u32 = sys::GGML_TYPE_F16;
/// ggml type id of `BF16`.
pub const BF16: u32 = sys::GGML_TYPE_BF16;
/// ggml type id of `Q4_0` (blocks of 32: f16 d, 16 bytes of nibbles; x = (q - 8)·d).
pub const Q4_0: u32 = sys::GGML_TYPE_Q4_0;
/// ggml type id of `Q4_1` (blocks of 32: f16 d, f16 m, 16 bytes of nibbles; x = q·d + m).
pub const Q4_1: u32 = sys::GGML_TYPE_Q4_1;
/// ggml type id of `Q8_0` (blocks of 32: f16 d, 32 × i8; x = q·d).
pub const Q8_0: u32 = sys::GGML_TYPE_Q8_0;
/// ggml type id of `Q4_K` (super-blocks of 256: 8 sub-blocks of 32 with 6-bit scale and min).
pub const Q4_K: u32 = sys::GGML_TYPE_Q4_K;

/// A ggml element type, as this build of ggml describes it.
#[derive(Debug, Clone, Copy)]
pub struct GgmlType {
    /// The `ggml_type` id.
    pub id: u32,
    /// ggml's name (`q4_1`, `f16`, …).
    pub name: &'static str,
    /// Elements per block (1 for plain floats).
    pub block_size: u64,
    /// Bytes per block.
    pub type_size: u64,
    to_float: sys::ggml_to_float_t,
}

impl GgmlType {
    /// The type with id `id`, or `None` when this ggml does not know it (or it was removed).
    pub fn from_id(id: u32) -> Option<Self> {
        if id >= sys::GGML_TYPE_COUNT {
            return None;
        }
        // SAFETY: `id` is below GGML_TYPE_COUNT, so ggml returns a pointer into its static
        // type-traits table (never freed); we only read it.
        let traits = unsafe { sys::ggml_get_type_traits(id).as_ref() }?;
        let block_size = u64::try_from(traits.blck_size).ok().filter(|&b| b > 0)?;
        let type_size = u64::try_from(traits.type_size).ok().filter(|&s| s > 0)?;
        if traits.type_name.is_null() {
            return None;
        }
        // SAFETY: non-null, a NUL-terminated string literal in ggml's static table.
        let name = unsafe { CStr::from_ptr(traits.type_name) }.to_str().ok()?;
        Some(GgmlType {
            id,
            name,
            block_size,
            type_size,
            to_float: traits.to_float,
        })
    }

    /// Bytes of `elements` elements (a multiple of the block size).
    pub fn bytes(&self, elements: u64) -> u64 {
        elements / self.block_size * self.type_size
    }

    /// Whether [`GgmlType::dequantize`] can convert this type.
    pub fn can_dequantize(&self) -> bool {
        matches!(self.id, F32 | F16 | BF16) || self.to_float.is_some()
    }

    /// Dequantises `src` (whole blocks) into `out` (one f32 per element). Returns false when
    /// the type has no conversion to float or the lengths disagree.
    pub fn dequantize(&self, src: &[u8], out: &mut [f32]) -> bool {
        let elements = out.len() as u64;
        if !elements.is_multiple_of(self.block_size) || src.len() as u64 != self.bytes(elements) {
            return false;
        }
        match self.id {
            F32 => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(4)) {
                    *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                true
            }
            F16 => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                    *o = f16::from_le_bytes([b[0], b[1]]).to_f32();
                }
                true
            }
            BF16 => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                    *o = bf16::from_le_bytes([b[0], b[1]]).to_f32();
                }
                true
            }
            _ => match (self.to_float, i64::try_from(out.len())) {
                (Some(to_float), Ok(k)) => {
                    // SAFETY: `src` holds exactly `k / block_size` whole blocks of this type
                    // (checked above) and `out` has room for `k` floats; ggml's row
                    // dequantisers read and write exactly that much and keep no pointer.
                    unsafe { to_float(src.as_ptr().cast(), out.as_mut_ptr(), k) };
                    true
                }
                _ => false,
            },
        }
    }
}
