//! Which CPU instruction sets this build's ggml kernels use (AVX2, AVX-512, AMX, ...).
//!
//! ggml is compiled for a fixed set of instruction sets (scripts/native-cpu.sh picks them from
//! the build machine's CPU). Operators see the set in `/health` and the start-up log, so a
//! gateway built without AMX on an AMX box, or a slow portable build, is visible.

use std::ffi::CStr;
use std::sync::OnceLock;

/// The CPU features llama.cpp reports as compiled in and enabled, e.g. `["AVX2", "AVX512",
/// "AMX_INT8", "LLAMAFILE", "OPENMP", "REPACK"]`, in llama.cpp's order.
pub fn cpu_features() -> &'static [String] {
    static FEATURES: OnceLock<Vec<String>> = OnceLock::new();
    FEATURES.get_or_init(|| {
        // SAFETY: llama_print_system_info fills a function-static string and returns its
        // NUL-terminated buffer. Nothing else in the process calls it, and the OnceLock makes
        // this the only call, so the buffer is copied before it could change.
        let text = unsafe {
            let ptr = llama_cpp_sys_2::llama_print_system_info();
            if ptr.is_null() {
                return Vec::new();
            }
            CStr::from_ptr(ptr).to_string_lossy().into_owned()
        };
        parse_system_info(&text)
    })
}

/// Parses llama.cpp's `CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | ... |` line: the names set to 1
/// in the CPU section.
fn parse_system_info(text: &str) -> Vec<String> {
    let cpu = text
        .split_once("CPU :")
        .map_or(text, |(_, rest)| rest)
        .split(" : ")
        .next()
        .unwrap_or_default();
    cpu.split('|')
        .filter_map(|item| {
            let (name, value) = item.split_once('=')?;
            (value.trim() == "1").then(|| name.trim().to_owned())
        })
        .filter(|name| !name.is_empty() && !name.contains(' '))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cpu_section_only() {
        let text = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | AMX_INT8 = 1 | REPACK = 1 | \
                    CUDA : ARCHS = 890 | USE_GRAPHS = 1 | ";
        assert_eq!(
            parse_system_info(text),
            ["SSE3", "AVX2", "AMX_INT8", "REPACK"]
        );
    }

    #[test]
    fn empty_or_unexpected_text_gives_nothing() {
        assert!(parse_system_info("").is_empty());
        assert!(parse_system_info("garbage without fields").is_empty());
    }

    #[test]
    fn this_build_reports_its_baseline() {
        // Every x86-64 build of ours has at least AVX2 (ggml's portable baseline).
        let features = cpu_features();
        if cfg!(target_arch = "x86_64") {
            assert!(features.iter().any(|f| f == "AVX2"), "{features:?}");
        }
    }
}
