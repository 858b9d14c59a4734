//! GGUF quantisation through llama.cpp's own quantizer (`llama_model_quantize`).
//!
//! The output is written to a temporary file next to the destination, checked to parse as
//! GGUF, and only then renamed into place: a failed or interrupted run never leaves a file
//! under the final name.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use switchyard_core::EngineError;

/// Target weight types supported by [`quantize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    /// 16-bit floats.
    F16,
    /// 8-bit blocks of 32 with one scale (llamafile sgemm has a batched AVX2 path).
    Q8_0,
    /// 4-bit blocks of 32 with one scale (llamafile sgemm has a batched AVX2 path).
    Q4_0,
    /// 4-bit blocks of 32 with scale and minimum.
    Q4_1,
    /// k-quant, mostly 4-bit, medium.
    Q4KM,
}

impl QuantType {
    /// Every accepted name, for error messages and `--help`.
    pub const NAMES: &'static [&'static str] = &["f16", "q8_0", "q4_0", "q4_1", "q4_k_m"];

    /// Parses a name such as `q8_0` (case-insensitive).
    pub fn parse(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "f16" => Ok(Self::F16),
            "q8_0" => Ok(Self::Q8_0),
            "q4_0" => Ok(Self::Q4_0),
            "q4_1" => Ok(Self::Q4_1),
            "q4_k_m" => Ok(Self::Q4KM),
            other => Err(format!(
                "unknown quantisation '{other}' (accepted: {})",
                Self::NAMES.join(", ")
            )),
        }
    }

    /// The canonical lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q4KM => "q4_k_m",
        }
    }

    fn ftype(self) -> llama_cpp_sys_2::llama_ftype {
        match self {
            Self::F16 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_F16,
            Self::Q8_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0,
            Self::Q4_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0,
            Self::Q4_1 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_1,
            Self::Q4KM => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_K_M,
        }
    }
}

/// Options for [`quantize`].
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// Target type.
    pub target: QuantType,
    /// Threads for the quantizer (explicit, never "all cores").
    pub threads: u32,
    /// Allow re-quantising already quantised weights (lossy: the source's rounding is kept
    /// and new rounding added).
    pub allow_requantize: bool,
}

/// Quantises the GGUF at `input` into `output` (written atomically).
pub fn quantize(input: &Path, output: &Path, options: &QuantizeOptions) -> Result<(), EngineError> {
    // The quantizer reads the file itself; make sure the backend (and its logging choice) is
    // initialised first.
    crate::backend()?;
    crate::memory::inspect_gguf(input)
        .map_err(|e| EngineError::Load(format!("{}: {e}", input.display())))?;
    let tmp = temp_path(output);
    let c_in = path_cstring(input)?;
    let c_tmp = path_cstring(&tmp)?;
    // SAFETY: plain C struct returned by value.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(options.threads.max(1)).unwrap_or(1);
    params.ftype = options.target.ftype();
    params.allow_requantize = options.allow_requantize;
    // SAFETY: both paths are valid NUL-terminated strings and params lives for the call.
    let rc =
        unsafe { llama_cpp_sys_2::llama_model_quantize(c_in.as_ptr(), c_tmp.as_ptr(), &params) };
    if rc != 0 {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::Load(format!(
            "llama.cpp could not quantise {} to {} (code {rc}); already-quantised sources need \
             allow_requantize",
            input.display(),
            options.target.name()
        )));
    }
    if let Err(e) = crate::memory::inspect_gguf(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::Load(format!(
            "quantised output does not parse: {e}"
        )));
    }
    std::fs::rename(&tmp, output).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        EngineError::Load(format!("cannot rename into {}: {e}", output.display()))
    })
}

fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.gguf".into());
    output.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn path_cstring(path: &Path) -> Result<CString, EngineError> {
    CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| EngineError::Load(format!("path contains NUL: {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_clear() {
        for name in QuantType::NAMES {
            assert_eq!(QuantType::parse(name).unwrap().name(), *name);
        }
        let err = QuantType::parse("q3_xs").unwrap_err();
        assert!(err.contains("q8_0"), "{err}");
    }

    #[test]
    fn a_file_that_is_no_gguf_is_refused_without_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("bad.gguf");
        std::fs::write(&input, b"not a gguf at all").unwrap();
        let output = dir.path().join("out.gguf");
        let err = quantize(
            &input,
            &output,
            &QuantizeOptions {
                target: QuantType::Q8_0,
                threads: 1,
                allow_requantize: true,
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad.gguf"), "{err}");
        assert!(!output.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
