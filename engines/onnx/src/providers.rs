//! Execution providers: which ONNX Runtime provider a session runs on, chosen from the device
//! profile's order (TensorRT → CUDA → CPU on NVIDIA boxes, CoreML → CPU on Macs), and the
//! report of the one actually used.
//!
//! ONNX Runtime falls back to the CPU silently when a registered provider cannot run (an
//! ERROR log line only), and `is_available()` only says a provider was compiled into the
//! library. So each provider is tried in turn on its own session builder with
//! `error_on_failure`: a provider missing from the library, one whose registration fails (no
//! driver, no device) and one whose session cannot be created are each passed over with the
//! reason recorded, and the first session that commits names the provider in use.

use std::fmt;
use std::path::{Path, PathBuf};

use ort::ep::ExecutionProvider as _;
use ort::session::builder::SessionBuilder;
use ort::session::Session;
use serde::Serialize;

use crate::OnnxError;

/// An ONNX Runtime execution provider, as device profiles name it after `onnx/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// ONNX Runtime's default CPU provider; always available, the last fallback.
    Cpu,
    /// NVIDIA CUDA (needs the GPU build of ONNX Runtime, the CUDA and cuDNN libraries, a GPU).
    Cuda,
    /// NVIDIA TensorRT (as CUDA, plus TensorRT; engines are built on first use and cached).
    TensorRt,
    /// Apple Core ML (macOS builds of ONNX Runtime).
    CoreMl,
}

impl ExecutionProvider {
    /// Every provider, in no particular order.
    pub const ALL: [ExecutionProvider; 4] = [
        ExecutionProvider::Cpu,
        ExecutionProvider::Cuda,
        ExecutionProvider::TensorRt,
        ExecutionProvider::CoreMl,
    ];

    /// Short lower-case name, as in profiles (`onnx/<name>`), health, metrics and route traces.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::TensorRt => "tensorrt",
            ExecutionProvider::CoreMl => "coreml",
        }
    }

    /// The provider named `name` (`cpu`, `cuda`, `tensorrt`, `coreml`).
    pub fn parse(name: &str) -> Option<ExecutionProvider> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The engine label `onnx/<name>`.
    pub fn engine_label(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "onnx/cpu",
            ExecutionProvider::Cuda => "onnx/cuda",
            ExecutionProvider::TensorRt => "onnx/tensorrt",
            ExecutionProvider::CoreMl => "onnx/coreml",
        }
    }

    /// ONNX Runtime's own identifier (`CUDAExecutionProvider`, ...).
    pub const fn ort_name(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "CPUExecutionProvider",
            ExecutionProvider::Cuda => "CUDAExecutionProvider",
            ExecutionProvider::TensorRt => "TensorrtExecutionProvider",
            ExecutionProvider::CoreMl => "CoreMLExecutionProvider",
        }
    }

    /// Whether the loaded ONNX Runtime library was built with this provider (not whether it
    /// can run here: that needs a session).
    pub fn compiled_in(self) -> bool {
        let available = match self {
            ExecutionProvider::Cpu => return true,
            ExecutionProvider::Cuda => ort::ep::CUDA::is_available(),
            ExecutionProvider::TensorRt => ort::ep::TensorRT::is_available(),
            ExecutionProvider::CoreMl => ort::ep::CoreML::is_available(),
        };
        available.unwrap_or(false)
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to run a session: providers in preference order, and their settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Providers to try, best first. The CPU is tried last even when not listed, so a model
    /// always loads somewhere; the report says when that was a fallback.
    pub providers: Vec<ExecutionProvider>,
    /// GPU ordinal for CUDA and TensorRT.
    pub device_id: i32,
    /// Folder for TensorRT's engine and timing caches (engines are specific to one GPU and
    /// TensorRT version, so they are built on the device and kept here). `None`: no cache,
    /// engines are rebuilt at every load.
    pub tensorrt_cache: Option<PathBuf>,
    /// Let TensorRT build FP16 kernels.
    pub tensorrt_fp16: bool,
}

impl Default for Placement {
    /// The CPU only.
    fn default() -> Self {
        Placement {
            providers: vec![ExecutionProvider::Cpu],
            device_id: 0,
            tensorrt_cache: None,
            tensorrt_fp16: true,
        }
    }
}

impl Placement {
    /// Providers from a profile's engine list for one task: the `onnx/<provider>` entries, in
    /// order. Other engines (`tract/cpu`, `llama.cpp/cuda`) are not ONNX Runtime's and are
    /// ignored; an unknown provider name is returned as the error.
    pub fn from_engines<'a>(
        engines: impl IntoIterator<Item = &'a str>,
    ) -> Result<Placement, String> {
        let mut providers = Vec::new();
        for engine in engines {
            let Some(name) = engine.strip_prefix("onnx/") else {
                continue;
            };
            let provider = ExecutionProvider::parse(name).ok_or_else(|| {
                format!("unknown ONNX Runtime execution provider '{name}' in '{engine}'")
            })?;
            if !providers.contains(&provider) {
                providers.push(provider);
            }
        }
        Ok(Placement {
            providers,
            ..Placement::default()
        })
    }

    /// The providers tried, in order: as listed, then the CPU if it was not.
    pub fn order(&self) -> Vec<ExecutionProvider> {
        let mut order = self.providers.clone();
        if !order.contains(&ExecutionProvider::Cpu) {
            order.push(ExecutionProvider::Cpu);
        }
        order
    }
}

/// A provider that was asked for but not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedProvider {
    /// The provider passed over.
    pub provider: ExecutionProvider,
    /// Why: not in this ONNX Runtime build, registration failed, session creation failed.
    pub reason: String,
}

/// Which provider a session runs on, and what was tried before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderReport {
    /// The provider the session was created with.
    pub used: ExecutionProvider,
    /// The providers asked for ahead of it that could not be used, in order.
    pub skipped: Vec<SkippedProvider>,
}

impl ProviderReport {
    /// A report for a session on the CPU that was asked for nothing else.
    pub fn cpu() -> ProviderReport {
        ProviderReport {
            used: ExecutionProvider::Cpu,
            skipped: Vec::new(),
        }
    }

    /// Whether the session runs on a provider other than the first one asked for.
    pub fn fell_back(&self) -> bool {
        !self.skipped.is_empty()
    }
}

/// Creates the session for `path` on the first provider of `placement` that works.
/// `builder` makes a fresh, configured session builder for each try.
pub(crate) fn place(
    path: &Path,
    placement: &Placement,
    builder: impl Fn() -> Result<SessionBuilder, OnnxError>,
) -> Result<(Session, ProviderReport), OnnxError> {
    let mut skipped = Vec::new();
    for provider in placement.order() {
        match try_provider(path, placement, provider, builder()?) {
            Ok(session) => {
                let report = ProviderReport {
                    used: provider,
                    skipped,
                };
                if report.fell_back() {
                    tracing::warn!(
                        model = %path.display(),
                        used = %provider,
                        skipped = ?report.skipped,
                        "ONNX Runtime session placed on a fallback execution provider"
                    );
                } else {
                    tracing::info!(model = %path.display(), provider = %provider, "ONNX Runtime session placed");
                }
                return Ok((session, report));
            }
            // The CPU is the last resort: its failure is the model's failure.
            Err(e) if provider == ExecutionProvider::Cpu => return Err(e),
            Err(e) => skipped.push(SkippedProvider {
                provider,
                reason: e.to_string(),
            }),
        }
    }
    // `order()` always ends with the CPU, which returns above.
    Err(OnnxError::Session {
        path: path.to_path_buf(),
        message: "no execution provider to try".into(),
    })
}

fn try_provider(
    path: &Path,
    placement: &Placement,
    provider: ExecutionProvider,
    builder: SessionBuilder,
) -> Result<Session, OnnxError> {
    let error = |message: String| OnnxError::Session {
        path: path.to_path_buf(),
        message,
    };
    if provider != ExecutionProvider::Cpu && !provider.compiled_in() {
        let library = crate::runtime()
            .map(|r| r.library().display().to_string())
            .unwrap_or_default();
        return Err(error(format!(
            "{} is not in this ONNX Runtime build ({library}); it needs ONNX Runtime built \
             with {}",
            provider.ort_name(),
            provider.ort_name()
        )));
    }
    let dispatch = match provider {
        ExecutionProvider::Cpu => None,
        ExecutionProvider::Cuda => Some(
            ort::ep::CUDA::default()
                .with_device_id(placement.device_id)
                .build(),
        ),
        ExecutionProvider::TensorRt => {
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(placement.device_id)
                .with_fp16(placement.tensorrt_fp16);
            if let Some(cache) = &placement.tensorrt_cache {
                std::fs::create_dir_all(cache).map_err(|e| {
                    error(format!(
                        "TensorRT engine cache folder {}: {e}",
                        cache.display()
                    ))
                })?;
                let cache = cache.display().to_string();
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(&cache)
                    .with_timing_cache(true)
                    .with_timing_cache_path(&cache);
            }
            Some(trt.build())
        }
        ExecutionProvider::CoreMl => Some(ort::ep::CoreML::default().build()),
    };
    let mut builder = match dispatch {
        Some(dispatch) => builder
            .with_execution_providers([dispatch.error_on_failure()])
            .map_err(|e| error(format!("registering {}: {e}", provider.ort_name())))?,
        None => builder,
    };
    builder
        .commit_from_file(path)
        .map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_reads_the_onnx_entries_of_a_profile_in_order() {
        let placement = Placement::from_engines([
            "onnx/tensorrt",
            "whisper.cpp/cuda",
            "onnx/cuda",
            "tract/cpu",
        ])
        .unwrap();
        assert_eq!(
            placement.providers,
            vec![ExecutionProvider::TensorRt, ExecutionProvider::Cuda]
        );
        assert_eq!(
            placement.order(),
            vec![
                ExecutionProvider::TensorRt,
                ExecutionProvider::Cuda,
                ExecutionProvider::Cpu
            ]
        );
    }

    #[test]
    fn an_unknown_provider_is_named() {
        let err = Placement::from_engines(["onnx/cudaa"]).unwrap_err();
        assert!(err.contains("'cudaa'"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for p in ExecutionProvider::ALL {
            assert_eq!(ExecutionProvider::parse(p.as_str()), Some(p));
            assert_eq!(p.engine_label(), format!("onnx/{p}"));
        }
    }
}
