//! Device profiles: what a box has (cores, memory, accelerators, thermal limits) and which
//! engines and artifact precisions to prefer for each task on it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A device profile, `devices/*.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Profile name (lowercase letters, digits, `-`, `_`, `.`), e.g. `jetson-orin-nano-8gb`.
    pub name: String,
    /// One-line human description.
    #[serde(default)]
    pub description: String,
    /// The vendor specification the hardware values come from.
    pub source: String,
    /// Policy profile to route with: a built-in name, or a path (relative to this file).
    #[serde(default = "default_policy")]
    pub policy: String,
    /// What the box has.
    pub hardware: Hardware,
    /// Engine settings used where the gateway's `[engine]` leaves them unset.
    pub engine: EngineDefaults,
    /// Memory the scheduler may fill with model weights and KV cache.
    pub memory: MemoryBudget,
    /// Temperatures at which the router backs off and sheds load.
    pub thermal: ThermalLimits,
    /// Per task: engines and artifact precisions to prefer, best first (`[[prefer]]`).
    #[serde(default)]
    pub prefer: Vec<TaskPreference>,
}

fn default_policy() -> String {
    "default".to_owned()
}

impl DeviceProfile {
    /// The preference entry for `task`, if the profile has one.
    pub fn preference(&self, task: Task) -> Option<&TaskPreference> {
        self.prefer.iter().find(|p| p.task == task)
    }

    /// Whether the hardware lists this accelerator.
    pub fn has(&self, accelerator: Accelerator) -> bool {
        self.hardware.accelerators.contains(&accelerator)
    }
}

/// `[hardware]`: what the box has, per the vendor's specification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// CPU cores (all clusters together).
    pub cpu_cores: u32,
    /// System memory in MiB (on unified-memory devices, all memory CPU and GPU share).
    pub memory_mib: u64,
    /// Whether CPU and GPU share one memory (Jetson, Apple silicon).
    #[serde(default)]
    pub unified_memory: bool,
    /// Compute the box offers; always includes `cpu`.
    pub accelerators: Vec<Accelerator>,
    /// GPU model, when there is one.
    #[serde(default)]
    pub gpu_name: Option<String>,
    /// Dedicated GPU memory in MiB (discrete GPUs only; absent with unified memory).
    #[serde(default)]
    pub vram_mib: Option<u64>,
}

/// A kind of compute an engine can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accelerator {
    /// The CPU.
    Cpu,
    /// An NVIDIA GPU through CUDA.
    Cuda,
    /// NVIDIA TensorRT (needs `cuda`).
    Tensorrt,
    /// An Apple GPU through Metal.
    Metal,
    /// Apple Core ML.
    Coreml,
    /// Apple MLX (needs `metal`).
    Mlx,
    /// The Apple Neural Engine (reached through `coreml`).
    Ane,
    /// A GPU through Vulkan.
    Vulkan,
}

impl Accelerator {
    /// The name as written in TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Accelerator::Cpu => "cpu",
            Accelerator::Cuda => "cuda",
            Accelerator::Tensorrt => "tensorrt",
            Accelerator::Metal => "metal",
            Accelerator::Coreml => "coreml",
            Accelerator::Mlx => "mlx",
            Accelerator::Ane => "ane",
            Accelerator::Vulkan => "vulkan",
        }
    }

    pub(crate) fn is_gpu(self) -> bool {
        matches!(
            self,
            Accelerator::Cuda | Accelerator::Tensorrt | Accelerator::Metal | Accelerator::Vulkan
        )
    }
}

impl fmt::Display for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[engine]`: engine settings the gateway uses where its own `[engine]` leaves them unset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EngineDefaults {
    /// CPU threads per model for decoding (at most `hardware.cpu_cores`).
    pub threads: u32,
    /// Requests decoded together per model (continuous-batching slots).
    pub slots: u32,
    /// Context tokens per request (slot).
    pub context_per_slot: u32,
}

/// `[memory]`: what the scheduler may fill.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryBudget {
    /// MiB of system (or unified) memory for model weights + KV cache.
    pub budget_mib: u64,
    /// MiB of dedicated GPU memory for weights + KV cache (required with `hardware.vram_mib`).
    #[serde(default)]
    pub vram_budget_mib: Option<u64>,
    /// MiB kept free for the OS, the gateway itself and other processes.
    pub reserve_mib: u64,
}

/// `[thermal]`: the gateway's own limits, below the hardware's throttling and shutdown points.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalLimits {
    /// °C from which the router prefers cooler routes (the policy's `fallback_tier`).
    pub throttle_c: f32,
    /// °C from which the router sheds heavy work; must be above `throttle_c`.
    pub critical_c: f32,
    /// Which reading the limits apply to.
    #[serde(default)]
    pub sensor: ThermalSensor,
}

/// The temperature reading thermal limits are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThermalSensor {
    /// The hottest sensor the box reports (SoC junction on Jetson and Apple silicon).
    #[default]
    Hottest,
    /// The CPU package.
    Cpu,
    /// The (discrete) GPU.
    Gpu,
}

/// One `[[prefer]]` entry: how to run one task on this device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPreference {
    /// The task.
    pub task: Task,
    /// Engines to try, best first, as `family/backend` (see [`ENGINES`]).
    pub engines: Vec<String>,
    /// Artifact precisions to prefer, best first.
    pub precisions: Vec<Precision>,
}

/// A kind of model work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Text generation.
    Llm,
    /// Sentence embeddings.
    Embedding,
    /// Speech to text.
    Stt,
    /// Text to speech.
    Tts,
    /// Text recognition in images.
    Ocr,
    /// Voice activity detection.
    Vad,
    /// The router's own classifiers.
    Classifier,
}

/// Numeric format of a model artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Precision {
    /// 8-bit integer (ONNX/TensorRT quantized).
    #[serde(rename = "int8")]
    Int8,
    /// 4-bit integer weights (ONNX/TensorRT).
    #[serde(rename = "int4")]
    Int4,
    /// 16-bit float.
    #[serde(rename = "fp16")]
    Fp16,
    /// bfloat16.
    #[serde(rename = "bf16")]
    Bf16,
    /// 32-bit float.
    #[serde(rename = "fp32")]
    Fp32,
    /// GGUF Q4_0.
    #[serde(rename = "q4_0")]
    Q4_0,
    /// GGUF Q4_1.
    #[serde(rename = "q4_1")]
    Q4_1,
    /// GGUF Q4_K_M.
    #[serde(rename = "q4_k_m")]
    Q4KM,
    /// GGUF Q5_0.
    #[serde(rename = "q5_0")]
    Q5_0,
    /// GGUF Q5_1.
    #[serde(rename = "q5_1")]
    Q5_1,
    /// GGUF Q5_K_M.
    #[serde(rename = "q5_k_m")]
    Q5KM,
    /// GGUF Q6_K.
    #[serde(rename = "q6_k")]
    Q6K,
    /// GGUF Q8_0.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// MLX 4-bit group quantization.
    #[serde(rename = "mlx-4bit")]
    Mlx4Bit,
    /// MLX 8-bit group quantization.
    #[serde(rename = "mlx-8bit")]
    Mlx8Bit,
}

impl Precision {
    /// The name as profiles write it (`q4_k_m`, `fp16`, `mlx-4bit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Fp32 => "fp32",
            Precision::Q4_0 => "q4_0",
            Precision::Q4_1 => "q4_1",
            Precision::Q4KM => "q4_k_m",
            Precision::Q5_0 => "q5_0",
            Precision::Q5_1 => "q5_1",
            Precision::Q5KM => "q5_k_m",
            Precision::Q6K => "q6_k",
            Precision::Q8_0 => "q8_0",
            Precision::Mlx4Bit => "mlx-4bit",
            Precision::Mlx8Bit => "mlx-8bit",
        }
    }
}

/// Engines a profile may name, and the accelerator each needs.
pub const ENGINES: [(&str, Accelerator); 14] = [
    ("llama.cpp/cpu", Accelerator::Cpu),
    ("llama.cpp/cuda", Accelerator::Cuda),
    ("llama.cpp/metal", Accelerator::Metal),
    ("llama.cpp/vulkan", Accelerator::Vulkan),
    ("whisper.cpp/cpu", Accelerator::Cpu),
    ("whisper.cpp/cuda", Accelerator::Cuda),
    ("whisper.cpp/metal", Accelerator::Metal),
    ("onnx/cpu", Accelerator::Cpu),
    ("onnx/cuda", Accelerator::Cuda),
    ("onnx/tensorrt", Accelerator::Tensorrt),
    ("onnx/coreml", Accelerator::Coreml),
    ("tract/cpu", Accelerator::Cpu),
    ("mlx/metal", Accelerator::Mlx),
    ("mock/cpu", Accelerator::Cpu),
];

/// The accelerator an engine name needs, or `None` for an unknown engine.
pub fn engine_accelerator(engine: &str) -> Option<Accelerator> {
    ENGINES.iter().find(|(n, _)| *n == engine).map(|(_, a)| *a)
}
