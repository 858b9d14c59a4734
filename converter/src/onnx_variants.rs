//! ONNX → device variants: weight-only INT8 in QDQ form (per output channel for TensorRT
//! profiles, symmetric per tensor for Core ML / Neural Engine profiles) and float16 weights.
//!
//! The model is read and written as ONNX protobuf with the `prost` types that tract-onnx ships
//! ([`tract_onnx::pb`]); nothing is written by hand. Only initializers of the main graph change,
//! and each one that changes is replaced by a stored tensor plus one node that gives back a
//! float32 tensor of the same name and shape, so the graph's inputs, outputs, their types, the
//! other nodes and their order stay as they were:
//!
//! - **INT8 (both variants)**: a float32 initializer used as the weight of `Conv`,
//!   `ConvTranspose` (input 1), `MatMul` (input B) or `Gemm` (input B), with at least
//!   [`MIN_INT8_ELEMENTS`] elements and finite values, becomes an `int8` initializer
//!   `W_quantized`, a float32 scale `W_scale` and an `int8` zero point `W_zero_point` (always 0:
//!   symmetric, range -127..=127), and a `DequantizeLinear` node whose output is `W`. Biases,
//!   normalisation parameters, embeddings read by `Gather` and other initializers stay float32.
//!   - [`OnnxVariant::Int8PerChannel`]: one scale per output channel (`axis` 0 for `Conv`, 1
//!     for `ConvTranspose`, the last axis for `MatMul`, 0 or 1 for `Gemm` by `transB`). A
//!     `DequantizeLinear` with `axis` needs opset 13.
//!   - [`OnnxVariant::Int8PerTensorSymmetric`]: one scale per tensor. Needs opset 10.
//! - **FP16**: every float32 initializer with at least [`MIN_FP16_ELEMENTS`] elements whose
//!   values fit float16 is stored as `float16` (`W_fp16`) followed by `Cast(to = FLOAT)` named
//!   `W`. The graph's types stay float32, so it runs unchanged in ONNX Runtime and tract (both
//!   fold the casts of constants when they load the model); storing the weights as FP16 while
//!   computing in FP32 is also what a TensorRT FP16 build wants as its input.
//!
//! The opset stays as it was, with one exception: the per-channel variant needs opset 13, so a
//! model at opset 11 or 12 is raised to 13 when every node provably keeps its meaning (see
//! [`opset`]: `Squeeze`/`Unsqueeze`/`ReduceSum` axes and `Split` sizes move from attributes to
//! inputs, the rest must be on a list of operators whose 12/13 versions only added types); the
//! report says so (`opset_before`, `opset_after`, `opset_changes`). Otherwise a model whose
//! opset is too old for the variant is refused with an error that says which opset is needed.
//! Initializers inside subgraphs (`If`, `Loop`, `Scan` bodies) and sparse initializers are left
//! as they were.
//!
//! Models whose tensors live in external data files are refused (the variant would have to
//! rewrite or copy those files). The input is memory-mapped and decoded once; peak memory is
//! about the decoded model plus the encoded output (roughly twice the input for FP32 models),
//! not a streaming conversion. The output is written to a temporary file next to the
//! destination, decoded again and checked, and only then renamed into place.
//!
//! Fields that tract-onnx's copy of `onnx.proto` does not have are found by a second, cheap
//! prost decode of the same bytes into types that declare only them: `metadata_props` on
//! nodes, values, initializers and graphs are informational and are not carried over (the
//! report lists them under `not_carried_over`); a node `overload`, device configurations,
//! type-valued attributes, and inputs, outputs or `value_info` of non-tensor types would change
//! the model if dropped, so such models are refused.

mod extras;
mod graph;
pub mod opset;
pub mod quant;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use prost::Message;
use tract_onnx::pb::{ModelProto, OperatorSetIdProto};

pub use graph::{MIN_FP16_ELEMENTS, MIN_INT8_ELEMENTS};
/// The ONNX protobuf types models are read and written with (tract-onnx's prost types).
pub use tract_onnx::pb;

/// A device variant of an ONNX model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnnxVariant {
    /// Weight-only INT8 in QDQ form, one scale per output channel (TensorRT profiles).
    #[serde(rename = "int8-qdq-per-channel")]
    Int8PerChannel,
    /// Weight-only INT8 in QDQ form, one symmetric scale per tensor, zero point 0 (Core ML /
    /// Neural Engine profiles).
    #[serde(rename = "int8-qdq-per-tensor")]
    Int8PerTensorSymmetric,
    /// Float initializers stored as float16, cast back to float32 in the graph.
    Fp16,
}

impl OnnxVariant {
    /// Every variant, in the order `--variant` lists them.
    pub const ALL: [OnnxVariant; 3] = [
        OnnxVariant::Int8PerChannel,
        OnnxVariant::Int8PerTensorSymmetric,
        OnnxVariant::Fp16,
    ];

    /// The variant's name on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            OnnxVariant::Int8PerChannel => "int8-qdq-per-channel",
            OnnxVariant::Int8PerTensorSymmetric => "int8-qdq-per-tensor",
            OnnxVariant::Fp16 => "fp16",
        }
    }

    /// The variant named `name` (as [`OnnxVariant::name`] spells it).
    pub fn parse(name: &str) -> Result<OnnxVariant, OnnxVariantError> {
        OnnxVariant::ALL
            .into_iter()
            .find(|v| v.name() == name)
            .ok_or_else(|| OnnxVariantError::UnknownVariant(name.to_owned()))
    }

    /// Lowest default-domain opset the variant's nodes need (`DequantizeLinear` with `axis`:
    /// 13; without: 10; `Cast` with an integer `to`: 6).
    pub fn min_opset(self) -> i64 {
        match self {
            OnnxVariant::Int8PerChannel => 13,
            OnnxVariant::Int8PerTensorSymmetric => 10,
            OnnxVariant::Fp16 => 6,
        }
    }
}

impl std::fmt::Display for OnnxVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OnnxVariant {
    type Err = OnnxVariantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OnnxVariant::parse(s)
    }
}

/// Why a conversion failed. Every variant but [`OnnxVariantError::UnknownVariant`] names the
/// file involved.
#[derive(Debug, thiserror::Error)]
pub enum OnnxVariantError {
    /// The variant name is not one of [`OnnxVariant::ALL`].
    #[error(
        "unknown ONNX variant `{0}` (expected int8-qdq-per-channel, int8-qdq-per-tensor or fp16)"
    )]
    UnknownVariant(String),
    /// Reading or writing a file failed.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The file is not a readable ONNX model (truncated, corrupt, not protobuf, no graph).
    #[error("{}: not a valid ONNX model: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A tensor's data lives in an external file.
    #[error(
        "{}: tensor `{tensor}` stores its data in an external file; models with external data \
         are not supported (load and save the model with its data inline first)",
        path.display()
    )]
    ExternalData {
        /// The model file.
        path: PathBuf,
        /// The first external tensor found.
        tensor: String,
    },
    /// The model is valid ONNX but this conversion cannot be applied to it.
    #[error("{}: cannot make the {variant} variant: {reason}", path.display())]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// The variant asked for.
        variant: OnnxVariant,
        /// Why not.
        reason: String,
    },
    /// The written file did not pass the checks made before it is renamed into place.
    #[error("{}: the converted model failed verification: {reason}", path.display())]
    Verification {
        /// The destination.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
}

/// A float initializer that a conversion left as it was.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeptTensor {
    /// Initializer name.
    pub name: String,
    /// Its shape.
    pub dims: Vec<i64>,
    /// Bytes of its data.
    pub bytes: u64,
    /// Why it was not converted.
    pub reason: String,
}

/// What a conversion did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OnnxVariantReport {
    /// Source model.
    pub input: PathBuf,
    /// The written model.
    pub output: PathBuf,
    /// The variant produced.
    pub variant: OnnxVariant,
    /// Initializers converted (each got one `DequantizeLinear` or `Cast` node).
    pub tensors_converted: usize,
    /// Nodes added to the graph.
    pub nodes_added: usize,
    /// Default-domain opset of the source.
    pub opset_before: i64,
    /// Default-domain opset of the output (differs only when the per-channel variant had to
    /// raise an opset 11/12 model to 13).
    pub opset_after: i64,
    /// What raising the opset rewrote (empty when it was not raised).
    pub opset_changes: Vec<String>,
    /// Size of the source file in bytes.
    pub bytes_before: u64,
    /// Size of the written file in bytes.
    pub bytes_after: u64,
    /// Float32 bytes of the converted initializers in the source.
    pub converted_bytes_before: u64,
    /// Bytes that replaced them (stored tensors + scales + zero points).
    pub converted_bytes_after: u64,
    /// Bytes of the float initializers left as they were.
    pub kept_float_bytes: u64,
    /// The largest float initializers left as they were, with the reason (largest first).
    pub largest_kept: Vec<KeptTensor>,
    /// Informational fields of the source that the output does not carry (`metadata_props`
    /// newer than tract-onnx's schema), as `what × count`; empty for most models.
    pub not_carried_over: Vec<String>,
    /// Wall time of the whole conversion (read, convert, write, verify, rename).
    pub seconds: f64,
    /// Source megabytes (10^6 bytes) per second of wall time.
    pub mb_per_s: f64,
}

/// Reads and decodes the ONNX model at `path` (memory-mapped; errors name the file).
pub fn read_model(path: &Path) -> Result<ModelProto, OnnxVariantError> {
    read_model_and_extras(path).map(|(model, _)| model)
}

/// [`read_model`], plus what the file holds that the schema would drop.
fn read_model_and_extras(path: &Path) -> Result<(ModelProto, extras::Extras), OnnxVariantError> {
    let io_err = |error| OnnxVariantError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    let corrupt = |reason: String| OnnxVariantError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if len == 0 {
        return Err(corrupt("the file is empty".into()));
    }
    // SAFETY: the map is read-only and dropped before this function returns; a file changed
    // underneath it by another process could at worst make the decode fail or see odd bytes,
    // which prost reports as an error.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
    let model = ModelProto::decode(&map[..])
        .map_err(|e| corrupt(format!("truncated or corrupt protobuf: {e}")))?;
    let extras = extras::scan(&map[..])
        .map_err(|e| corrupt(format!("truncated or corrupt protobuf: {e}")))?;
    drop(map);
    match &model.graph {
        None => Err(corrupt("no graph in the model".into())),
        Some(g) if g.node.is_empty() && g.output.is_empty() => {
            Err(corrupt("the graph has no nodes and no outputs".into()))
        }
        Some(_) => Ok((model, extras)),
    }
}

/// Default-domain opset the model imports.
fn default_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .find(|o: &&OperatorSetIdProto| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
}

/// What [`convert_model`] did to a model in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRewrite {
    /// Initializers converted.
    pub tensors_converted: usize,
    /// Nodes added.
    pub nodes_added: usize,
    /// Float32 bytes of the converted initializers before.
    pub converted_bytes_before: u64,
    /// Bytes that replaced them.
    pub converted_bytes_after: u64,
    /// Bytes of the float initializers left as they were.
    pub kept_float_bytes: u64,
    /// The largest float initializers left as they were.
    pub largest_kept: Vec<KeptTensor>,
    /// Default-domain opset before.
    pub opset_before: i64,
    /// Default-domain opset after.
    pub opset_after: i64,
    /// What raising the opset rewrote (empty when it was not raised).
    pub opset_changes: Vec<String>,
}

/// Applies `variant` to a decoded model in place. `path` only names the model in errors.
pub fn convert_model(
    model: &mut ModelProto,
    variant: OnnxVariant,
    path: &Path,
) -> Result<ModelRewrite, OnnxVariantError> {
    let unsupported = |reason: String| OnnxVariantError::Unsupported {
        path: path.to_path_buf(),
        variant,
        reason,
    };
    let opset = default_opset(model)
        .ok_or_else(|| unsupported("the model imports no default-domain (ai.onnx) opset".into()))?;
    let mut opset_after = opset;
    let mut opset_changes = Vec::new();
    if opset < variant.min_opset() {
        if variant.min_opset() != opset::TARGET {
            return Err(unsupported(format!(
                "the model is opset {opset}; this variant's nodes need opset {} or newer",
                variant.min_opset()
            )));
        }
        opset_changes = opset::upgrade_to_13(model, opset).map_err(|why| {
            unsupported(format!(
                "the model is opset {opset}; `DequantizeLinear` with `axis` needs opset {}, and \
                 the opset cannot be raised safely: {why}",
                opset::TARGET
            ))
        })?;
        opset_after = opset::TARGET;
        opset_changes.insert(0, format!("default-domain opset {opset} → {opset_after}"));
    }
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| OnnxVariantError::Corrupt {
            path: path.to_path_buf(),
            reason: "no graph in the model".into(),
        })?;
    if let Some(tensor) = graph::find_external_tensor(graph) {
        return Err(OnnxVariantError::ExternalData {
            path: path.to_path_buf(),
            tensor,
        });
    }
    if let Some(name) = graph::untyped_value(&graph.input)
        .or(graph::untyped_value(&graph.output))
        .or(graph::untyped_value(&graph.value_info))
    {
        return Err(unsupported(format!(
            "graph value `{name}` has a non-tensor type this converter's ONNX schema cannot \
             carry over"
        )));
    }
    let rewrite = graph::rewrite(graph, variant).map_err(|reason| OnnxVariantError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(ModelRewrite {
        tensors_converted: rewrite.converted,
        nodes_added: rewrite.nodes_added,
        converted_bytes_before: rewrite.bytes_before,
        converted_bytes_after: rewrite.bytes_after,
        kept_float_bytes: rewrite.kept_bytes,
        largest_kept: rewrite.kept,
        opset_before: opset,
        opset_after,
        opset_changes,
    })
}

/// Converts the ONNX model at `input` into `variant` at `output`.
///
/// The result is written to a temporary file in `output`'s directory, decoded again and
/// checked (same inputs and outputs, every node input produced, nothing produced twice), and
/// renamed to `output` only then; on any error no file appears under `output`'s name.
pub fn convert(
    input: &Path,
    output: &Path,
    variant: OnnxVariant,
) -> Result<OnnxVariantReport, OnnxVariantError> {
    let span = tracing::info_span!(
        "onnx_variant",
        input = %input.display(),
        output = %output.display(),
        variant = variant.name()
    );
    let _enter = span.enter();
    let started = Instant::now();
    let bytes_before = fs::metadata(input)
        .map_err(|error| OnnxVariantError::Io {
            path: input.to_path_buf(),
            error,
        })?
        .len();
    let (mut model, extras) = read_model_and_extras(input)?;
    if !extras.refused.is_empty() {
        return Err(OnnxVariantError::Unsupported {
            path: input.to_path_buf(),
            variant,
            reason: format!(
                "the model uses ONNX fields this converter's schema (tract-onnx's onnx.proto) \
                 cannot carry over: {}",
                extras.refused.join(", ")
            ),
        });
    }
    if !extras.dropped.is_empty() {
        tracing::warn!(dropped = %extras.dropped.join(", "), "informational ONNX fields are not carried over");
    }
    let (inputs, outputs, nodes_before) = match &model.graph {
        Some(g) => (g.input.clone(), g.output.clone(), g.node.len()),
        None => (Vec::new(), Vec::new(), 0),
    };
    let rewrite = convert_model(&mut model, variant, input)?;
    let encoded = model.encode_to_vec();
    drop(model);

    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| OnnxVariantError::Io { path, error }
    };
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".switchyard-convert-")
        .suffix(".onnx.partial")
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    tmp.write_all(&encoded).map_err(io_err(output))?;
    tmp.as_file().sync_all().map_err(io_err(output))?;
    drop(encoded);
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0600; a model file is meant to be readable like any other.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err(output))?;
    }

    // Verify what is on disk, not what is in memory.
    let verification = |reason: String| OnnxVariantError::Verification {
        path: output.to_path_buf(),
        reason,
    };
    let written = read_model(tmp.path()).map_err(|e| verification(e.to_string()))?;
    let graph = written
        .graph
        .as_ref()
        .ok_or_else(|| verification("no graph".into()))?;
    if graph.input != inputs {
        return Err(verification("the graph inputs changed".into()));
    }
    if graph.output != outputs {
        return Err(verification("the graph outputs changed".into()));
    }
    if graph.node.len() != nodes_before + rewrite.nodes_added {
        return Err(verification(format!(
            "{} nodes, expected {} + {}",
            graph.node.len(),
            nodes_before,
            rewrite.nodes_added
        )));
    }
    graph::check(graph).map_err(verification)?;
    if default_opset(&written) != Some(rewrite.opset_after) {
        return Err(verification(format!(
            "opset {:?}, expected {}",
            default_opset(&written),
            rewrite.opset_after
        )));
    }
    drop(written);

    let bytes_after = tmp.as_file().metadata().map_err(io_err(output))?.len();
    tmp.persist(output).map_err(|e| OnnxVariantError::Io {
        path: output.to_path_buf(),
        error: e.error,
    })?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        tensors = rewrite.tensors_converted,
        bytes_before,
        bytes_after,
        seconds,
        "ONNX variant written"
    );
    Ok(OnnxVariantReport {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        variant,
        tensors_converted: rewrite.tensors_converted,
        nodes_added: rewrite.nodes_added,
        opset_before: rewrite.opset_before,
        opset_after: rewrite.opset_after,
        opset_changes: rewrite.opset_changes,
        bytes_before,
        bytes_after,
        converted_bytes_before: rewrite.converted_bytes_before,
        converted_bytes_after: rewrite.converted_bytes_after,
        kept_float_bytes: rewrite.kept_float_bytes,
        largest_kept: rewrite.largest_kept,
        not_carried_over: extras.dropped,
        seconds,
        mb_per_s: bytes_before as f64 / 1e6 / seconds.max(1e-9),
    })
}
