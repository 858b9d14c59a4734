//! ONNX → device variants: weight-only INT8 in QDQ form (per output channel for TensorRT
//! profiles, symmetric per tensor for Core ML / Neural Engine profiles) and float16 weights.
//!
//! The model is read and written as ONNX protobuf with the `prost` types that tract-onnx ships
//! ([`tract_onnx::pb`]) for everything but the weights, which are streamed (below). Only
//! initializers of the main graph change, and each one that changes is replaced by a stored
//! tensor plus one node that gives back a float32 tensor of the same name and shape, so the
//! graph's inputs, outputs, their types, the other nodes and their order stay as they were:
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
//! rewrite or copy those files).
//!
//! **Streaming.** [`convert`] memory-maps the input and never decodes it whole: it walks the
//! protobuf wire format of `ModelProto` and `GraphProto`, decodes the small parts (the model's
//! fields, nodes, inputs, outputs, `value_info`) with prost, and decodes the initializers one at
//! a time with their `raw_data` left in the map. A first pass over the initializers decides what
//! becomes of each (looking at a candidate's values in place) and works out the exact size of
//! every output tensor, so the graph's length prefix is known before anything is written; a
//! second pass writes the output front to back, copying unchanged tensors from the map and
//! converting the others one at a time. Pages of the map already read are handed back every
//! few MiB. Peak memory is about the graph's structure plus the largest tensor (as float32)
//! and its converted copy, whatever the model's size (tensors held by `Constant` nodes, sparse
//! initializers and subgraphs belong to the structure and are decoded with it). The output is
//! byte for byte what prost encodes for the model that the in-memory path ([`read_model`] +
//! [`convert_model`], still offered) produces. It is written to a temporary file next to the
//! destination, read back (structure only, every byte checked to be valid protobuf: see
//! [`read_model_structure`]) and checked, and only then renamed into place.
//!
//! Fields that tract-onnx's copy of `onnx.proto` does not have are found by a second, cheap
//! prost decode of the same pieces into types that declare only them: `metadata_props` on
//! nodes, values, initializers and graphs are informational and are not carried over (the
//! report lists them under `not_carried_over`); a node `overload`, device configurations,
//! type-valued attributes, and inputs, outputs or `value_info` of non-tensor types would change
//! the model if dropped, so such models are refused.

mod extras;
mod graph;
pub mod opset;
pub mod quant;
mod stream;
mod wire;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use prost::Message;
use tract_onnx::pb::{ModelProto, OperatorSetIdProto};

pub use graph::{MIN_FP16_ELEMENTS, MIN_INT8_ELEMENTS};

/// Output buffer of [`convert`] (tensors larger than this go straight to the file).
const WRITE_BUFFER: usize = 1 << 20;
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

/// Reads and decodes the ONNX model at `path` (memory-mapped; errors name the file). The whole
/// model, weights included, is decoded into memory; [`read_model_structure`] reads everything
/// but the weights.
pub fn read_model(path: &Path) -> Result<ModelProto, OnnxVariantError> {
    let (file, _) = open_model(path)?;
    let map = crate::mapped::Mapped::new(&file).map_err(|error| OnnxVariantError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let corrupt = |e: prost::DecodeError| OnnxVariantError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("truncated or corrupt protobuf: {e}"),
    };
    let model = ModelProto::decode(map.bytes()).map_err(corrupt)?;
    extras::scan(map.bytes()).map_err(corrupt)?;
    drop(map);
    check_graph(&model, path)?;
    Ok(model)
}

/// Reads the ONNX model at `path` without its weights: the model as [`read_model`] gives it,
/// except that the main graph's initializers carry no element data (`raw_data` and the typed
/// `*_data` fields are empty; names, shapes, types and the other header fields are there).
/// The file is memory-mapped and walked tensor by tensor, so memory stays near the size of
/// the graph's structure whatever the size of the weights, and every byte is still checked to
/// be valid protobuf.
pub fn read_model_structure(path: &Path) -> Result<ModelProto, OnnxVariantError> {
    let (file, _) = open_model(path)?;
    let map = crate::mapped::Mapped::new(&file).map_err(|error| OnnxVariantError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let skeleton = stream::read_skeleton(map.bytes(), &|part| map.release(part)).map_err(|e| {
        OnnxVariantError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("truncated or corrupt protobuf: {e}"),
        }
    })?;
    check_graph(&skeleton.model, path)?;
    Ok(skeleton.model)
}

/// Opens the model file at `path` and returns it with its length; an empty file is corrupt.
fn open_model(path: &Path) -> Result<(fs::File, u64), OnnxVariantError> {
    let io_err = |error| OnnxVariantError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    if len == 0 {
        return Err(OnnxVariantError::Corrupt {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    Ok((file, len))
}

/// A model without a graph, or whose graph has neither nodes nor outputs, is not a model.
fn check_graph(model: &ModelProto, path: &Path) -> Result<(), OnnxVariantError> {
    let corrupt = |reason: &str| OnnxVariantError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    match &model.graph {
        None => Err(corrupt("no graph in the model")),
        Some(g) if g.node.is_empty() && g.output.is_empty() => {
            Err(corrupt("the graph has no nodes and no outputs"))
        }
        Some(_) => Ok(()),
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

/// What [`prepare`] settled about the opset.
struct Opsets {
    before: i64,
    after: i64,
    changes: Vec<String>,
}

/// The checks and opset change every conversion makes before its initializers are planned:
/// the default-domain opset (raised to 13 for the per-channel variant when needed and safe),
/// no external data, no value types the schema cannot carry. Works on a whole model and on a
/// skeleton alike (it does not look at tensor data).
fn prepare(
    model: &mut ModelProto,
    variant: OnnxVariant,
    path: &Path,
) -> Result<Opsets, OnnxVariantError> {
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
        .as_ref()
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
    Ok(Opsets {
        before: opset,
        after: opset_after,
        changes: opset_changes,
    })
}

impl ModelRewrite {
    fn new(opsets: Opsets, rewrite: graph::Rewrite) -> ModelRewrite {
        ModelRewrite {
            tensors_converted: rewrite.converted,
            nodes_added: rewrite.nodes_added,
            converted_bytes_before: rewrite.bytes_before,
            converted_bytes_after: rewrite.bytes_after,
            kept_float_bytes: rewrite.kept_bytes,
            largest_kept: rewrite.kept,
            opset_before: opsets.before,
            opset_after: opsets.after,
            opset_changes: opsets.changes,
        }
    }
}

/// Applies `variant` to a decoded model in place. `path` only names the model in errors.
///
/// This is the in-memory path: the whole model is held, and the converted tensors are added
/// to it. [`convert`] produces the same model from a file without decoding it whole.
pub fn convert_model(
    model: &mut ModelProto,
    variant: OnnxVariant,
    path: &Path,
) -> Result<ModelRewrite, OnnxVariantError> {
    let opsets = prepare(model, variant, path)?;
    let corrupt = |reason: String| OnnxVariantError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| corrupt("no graph in the model".into()))?;
    let rewrite = graph::rewrite(graph, variant).map_err(corrupt)?;
    Ok(ModelRewrite::new(opsets, rewrite))
}

/// Converts the ONNX model at `input` into `variant` at `output`.
///
/// The input is memory-mapped and converted tensor by tensor (see the module documentation):
/// memory stays near the largest tensor plus the graph's structure, whatever the model's size.
/// The result is written to a temporary file in `output`'s directory, read back (again without
/// its weights) and checked (same inputs and outputs, every node input produced, nothing
/// produced twice), and renamed to `output` only then; on any error no file appears under
/// `output`'s name.
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
    let (file, bytes_before) = open_model(input)?;
    let source = crate::mapped::Mapped::new(&file).map_err(|error| OnnxVariantError::Io {
        path: input.to_path_buf(),
        error,
    })?;
    drop(file);
    let corrupt = |reason: String| OnnxVariantError::Corrupt {
        path: input.to_path_buf(),
        reason,
    };
    let skeleton = stream::read_skeleton(source.bytes(), &|part| source.release(part))
        .map_err(|e| corrupt(format!("truncated or corrupt protobuf: {e}")))?;
    check_graph(&skeleton.model, input)?;
    let extras = &skeleton.extras;
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
    let stream::Skeleton {
        mut model,
        tensors,
        extras,
    } = skeleton;
    let (inputs, outputs, nodes_before) = match &model.graph {
        Some(g) => (g.input.clone(), g.output.clone(), g.node.len()),
        None => (Vec::new(), Vec::new(), 0),
    };
    let opsets = prepare(&mut model, variant, input)?;
    let mut graph = model
        .graph
        .take()
        .ok_or_else(|| corrupt("no graph in the model".into()))?;
    let plan = stream::plan(&mut graph, &tensors, variant, &source).map_err(corrupt)?;

    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| OnnxVariantError::Io { path, error }
    };
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let tmp = tempfile::Builder::new()
        .prefix(".switchyard-convert-")
        .suffix(".onnx.partial")
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    let written = stream::write(
        io::BufWriter::with_capacity(WRITE_BUFFER, tmp.as_file()),
        &model,
        &graph,
        &plan,
        &source,
    )
    .map_err(|e| match e {
        stream::WriteError::Io(error) => OnnxVariantError::Io {
            path: output.to_path_buf(),
            error,
        },
        stream::WriteError::Model(reason) => corrupt(reason),
        stream::WriteError::Mismatch(reason) => OnnxVariantError::Verification {
            path: output.to_path_buf(),
            reason,
        },
    })?;
    drop(graph);
    tmp.as_file().sync_all().map_err(io_err(output))?;
    {
        use std::os::unix::fs::PermissionsExt;
        // tempfile creates 0600; a model file is meant to be readable like any other.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
            .map_err(io_err(output))?;
    }
    let rewrite = ModelRewrite::new(opsets, plan.rewrite);

    // Verify what is on disk, not what is in memory (structure only: every byte is checked to
    // be valid protobuf, the weights are not decoded).
    let verification = |reason: String| OnnxVariantError::Verification {
        path: output.to_path_buf(),
        reason,
    };
    let bytes_after = tmp.as_file().metadata().map_err(io_err(output))?.len();
    if bytes_after != written {
        return Err(verification(format!(
            "{bytes_after} bytes on disk, {written} written"
        )));
    }
    let written = read_model_structure(tmp.path()).map_err(|e| verification(e.to_string()))?;
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
