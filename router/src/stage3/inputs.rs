//! What stage 3 knows about the box besides the request: the models the gateway can serve (with
//! their memory needs and current load) and the engines that can run here. The gateway builds
//! these views; the router never looks inside an engine.

use serde::Serialize;

/// A model as the policy sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelView {
    /// Stable model id.
    pub id: String,
    /// Tasks it serves (`chat`, `completion`, `embedding`, `stt`, `tts`, `ocr`, ...).
    pub tasks: Vec<String>,
    /// Engines that can run it on this box, as `family/device` (`llama.cpp/cpu`).
    pub engines: Vec<String>,
    /// Bytes of weights once loaded.
    pub weights_bytes: u64,
    /// KV-cache bytes per context token (0 for models without one).
    pub kv_bytes_per_token: u64,
    /// Context tokens one request may use, when loaded with the current settings.
    pub context_per_request: u32,
    /// Whether it is loaded now (its memory is already spent).
    pub loaded: bool,
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Sequences being decoded.
    pub active: usize,
    /// Parallel slots.
    pub slots: usize,
}

impl ModelView {
    /// Whether the model serves `task` (`chat`, `completion`, `embedding`, ...; `llm` matches
    /// `chat` or `completion`).
    pub fn serves(&self, task: &str) -> bool {
        self.tasks
            .iter()
            .any(|t| t == task || (task == "llm" && (t == "chat" || t == "completion")))
    }

    /// Bytes it needs for `context` tokens of one request: weights plus that request's KV cache.
    pub fn bytes_for_context(&self, context: u32) -> u64 {
        self.weights_bytes
            .saturating_add(self.kv_bytes_per_token.saturating_mul(u64::from(context)))
    }

    /// Load relative to capacity: (queued + active) / slots.
    pub fn load(&self) -> f64 {
        (self.queued + self.active) as f64 / self.slots.max(1) as f64
    }
}

/// The device an engine string runs on (`llama.cpp/cuda` → `cuda`; no slash → `cpu`).
pub fn engine_device(engine: &str) -> &str {
    engine.split_once('/').map(|(_, d)| d).unwrap_or("cpu")
}

/// Whether an engine runs on the CPU of this box.
pub fn is_local_cpu(engine: &str) -> bool {
    engine_device(engine) == "cpu" && !engine.starts_with("remote")
}

/// Whether an engine's memory is GPU memory (VRAM) rather than system RAM.
pub fn uses_vram(engine: &str, unified_memory: bool) -> bool {
    !unified_memory && matches!(engine_device(engine), "cuda" | "tensorrt" | "vulkan")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_strings() {
        assert_eq!(engine_device("llama.cpp/cuda"), "cuda");
        assert_eq!(engine_device("tract"), "cpu");
        assert!(is_local_cpu("onnx/cpu"));
        assert!(!is_local_cpu("remote/cpu"));
        assert!(uses_vram("onnx/tensorrt", false));
        assert!(!uses_vram("onnx/tensorrt", true));
        assert!(!uses_vram("mlx/metal", false));
    }
}
