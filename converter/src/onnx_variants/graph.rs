//! Rewriting an ONNX graph: which initializers are converted, and the nodes that turn them back
//! into the float32 tensors the rest of the graph expects.
//!
//! Only the main graph's initializers are touched. Each converted initializer `W` is replaced
//! by a stored tensor under a new name plus one node whose output is named `W` and is float32
//! of `W`'s shape, so every consumer (and any `value_info` for `W`) stays as it was. The new
//! nodes depend on initializers only and are placed first, which keeps the node list
//! topologically sorted.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::{DataLocation, DataType};
use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};

use super::quant;
use super::{KeptTensor, OnnxVariant};

/// Smallest float initializer (in elements) that is quantised to INT8. Smaller weights (a
/// depthwise 3×3 kernel of a narrow layer, a tiny projection) save almost nothing, pay for a
/// scale vector and an extra node, and are the ones whose accuracy quantisation hurts most.
pub const MIN_INT8_ELEMENTS: usize = 1024;

/// Smallest float initializer (in elements) that is stored as float16. Scalars and short
/// vectors (epsilons, `Resize` scales, `Clip` bounds, padding values) stay float32: they save
/// nothing, and some are exact constants that must not be rounded.
pub const MIN_FP16_ELEMENTS: usize = 16;

/// How many of the largest float initializers that were left alone a report lists.
const KEPT_LISTED: usize = 8;

/// What one rewrite did.
#[derive(Debug, Default)]
pub(super) struct Rewrite {
    /// Initializers converted.
    pub converted: usize,
    /// Bytes of the converted initializers' data in the source (float32).
    pub bytes_before: u64,
    /// Bytes of what replaced them (stored tensors, scales, zero points).
    pub bytes_after: u64,
    /// Nodes inserted (one per converted initializer).
    pub nodes_added: usize,
    /// Float initializers left as they were (all of them, largest first after `finish`).
    pub kept: Vec<KeptTensor>,
    /// Total bytes of the float initializers left as they were.
    pub kept_bytes: u64,
}

impl Rewrite {
    fn keep(&mut self, tensor: &TensorProto, reason: &str) {
        let bytes = tensor_data_bytes(tensor);
        self.kept_bytes += bytes;
        self.kept.push(KeptTensor {
            name: tensor.name.clone(),
            dims: tensor.dims.clone(),
            bytes,
            reason: reason.to_owned(),
        });
    }

    fn finish(&mut self) {
        self.kept
            .sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
        self.kept.truncate(KEPT_LISTED);
    }
}

/// Whether `domain` is the default ONNX operator domain.
fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// The output-channel axis of input `index` of `node` when that input is a weight the INT8
/// variants quantise, for a weight of rank `rank`. `None` for any other input (data inputs,
/// biases, shapes, ...).
///
/// - `Conv` W `[M, C/group, k...]`: axis 0.
/// - `ConvTranspose` W `[C, M/group, k...]`: axis 1.
/// - `MatMul` B `[..., K, N]`: the last axis.
/// - `Gemm` B: `[K, N]` (axis 1), or `[N, K]` with `transB = 1` (axis 0).
fn weight_axis(node: &NodeProto, index: usize, rank: usize) -> Option<usize> {
    if !is_default_domain(&node.domain) || index != 1 || rank < 2 {
        return None;
    }
    match node.op_type.as_str() {
        "Conv" => Some(0),
        "ConvTranspose" => Some(1),
        "MatMul" => Some(rank - 1),
        "Gemm" if rank == 2 => {
            let trans_b = node
                .attribute
                .iter()
                .find(|a| a.name == "transB")
                .map_or(0, |a| a.i);
            Some(if trans_b != 0 { 0 } else { 1 })
        }
        _ => None,
    }
}

/// Element count of `dims`, or `None` for a negative or overflowing shape.
pub(super) fn numel(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| {
        usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
    })
}

/// Bytes of a tensor's element data as stored.
fn tensor_data_bytes(t: &TensorProto) -> u64 {
    if !t.raw_data.is_empty() {
        return t.raw_data.len() as u64;
    }
    let n = t.float_data.len() * 4
        + t.int32_data.len() * 4
        + t.int64_data.len() * 8
        + t.double_data.len() * 8
        + t.uint64_data.len() * 8
        + t.string_data.iter().map(Vec::len).sum::<usize>();
    n as u64
}

/// The name of the first tensor anywhere in `graph` (initializers, `Constant` values and other
/// tensor attributes, subgraphs included) whose data lives in an external file.
pub(super) fn find_external_tensor(graph: &GraphProto) -> Option<String> {
    fn external(t: &TensorProto) -> bool {
        t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty()
    }
    fn in_attribute(a: &AttributeProto) -> Option<String> {
        a.t.iter()
            .chain(&a.tensors)
            .find(|t| external(t))
            .map(|t| t.name.clone())
            .or_else(|| a.g.iter().chain(&a.graphs).find_map(find_external_tensor))
    }
    graph
        .initializer
        .iter()
        .find(|t| external(t))
        .map(|t| t.name.clone())
        .or_else(|| {
            graph
                .node
                .iter()
                .flat_map(|n| &n.attribute)
                .find_map(in_attribute)
        })
}

/// The float32 values of an initializer (from `raw_data`, or `float_data` when that is empty).
fn read_f32(t: &TensorProto, n: usize) -> Result<Vec<f32>, String> {
    if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * 4 {
            return Err(format!(
                "initializer `{}`: {} bytes of raw data for {n} float32 elements",
                t.name,
                t.raw_data.len()
            ));
        }
        return Ok(t
            .raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect());
    }
    if t.float_data.len() != n {
        return Err(format!(
            "initializer `{}`: {} float values for {n} elements",
            t.name,
            t.float_data.len()
        ));
    }
    Ok(t.float_data.clone())
}

/// Picks names not used anywhere in the graph.
struct Names {
    used: HashSet<String>,
}

impl Names {
    fn of(graph: &GraphProto) -> Names {
        let mut used = HashSet::new();
        used.extend(graph.initializer.iter().map(|t| t.name.clone()));
        used.extend(
            graph
                .sparse_initializer
                .iter()
                .filter_map(|s| s.values.as_ref().map(|v| v.name.clone())),
        );
        for v in graph
            .input
            .iter()
            .chain(&graph.output)
            .chain(&graph.value_info)
        {
            used.insert(v.name.clone());
        }
        for n in &graph.node {
            used.insert(n.name.clone());
            used.extend(n.output.iter().cloned());
            used.extend(n.input.iter().cloned());
        }
        Names { used }
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        let mut i = 1;
        while self.used.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        name
    }
}

fn raw_tensor(name: String, dims: Vec<i64>, data_type: DataType, raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name,
        dims,
        data_type: data_type as i32,
        raw_data,
        ..TensorProto::default()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..AttributeProto::default()
    }
}

/// Converts the qualifying initializers of `graph` for `variant`.
pub(super) fn rewrite(graph: &mut GraphProto, variant: OnnxVariant) -> Result<Rewrite, String> {
    // Output-channel axis of every initializer used as a weight by a top-level node.
    let initializer_rank: HashMap<&str, usize> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t.dims.len()))
        .collect();
    let mut weight_axes: HashMap<String, usize> = HashMap::new();
    for node in &graph.node {
        for (index, input) in node.input.iter().enumerate() {
            if let Some(&rank) = initializer_rank.get(input.as_str()) {
                if let Some(axis) = weight_axis(node, index, rank) {
                    weight_axes.entry(input.clone()).or_insert(axis);
                }
            }
        }
    }
    let graph_inputs: HashSet<String> = graph.input.iter().map(|v| v.name.clone()).collect();
    let mut names = Names::of(graph);
    let mut out = Rewrite::default();
    let mut added_nodes = Vec::new();
    let mut added_initializers = Vec::new();

    for tensor in &mut graph.initializer {
        if tensor.data_type != DataType::Float as i32 {
            if tensor.data_type == DataType::Double as i32 {
                out.keep(tensor, "float64 (only float32 is converted)");
            }
            continue;
        }
        let n = numel(&tensor.dims).ok_or_else(|| {
            format!(
                "initializer `{}` has an invalid shape {:?}",
                tensor.name, tensor.dims
            )
        })?;
        if graph_inputs.contains(&tensor.name) {
            // A graph input with a default: callers may override it, so it must stay a
            // float32 value under its own name.
            out.keep(tensor, "also a graph input (overridable default)");
            continue;
        }
        let converted = match variant {
            OnnxVariant::Fp16 => {
                if n < MIN_FP16_ELEMENTS {
                    out.keep(tensor, "fewer than 16 elements");
                    continue;
                }
                let values = read_f32(tensor, n)?;
                if !quant::fits_f16(&values) {
                    out.keep(tensor, "values outside the float16 range");
                    continue;
                }
                let stored_name = names.fresh(&format!("{}_fp16", tensor.name));
                let stored = raw_tensor(
                    stored_name.clone(),
                    tensor.dims.clone(),
                    DataType::Float16,
                    quant::to_f16_le_bytes(&values),
                );
                let node = NodeProto {
                    input: vec![stored_name],
                    output: vec![tensor.name.clone()],
                    name: names.fresh(&format!("{}_Cast", tensor.name)),
                    op_type: "Cast".into(),
                    attribute: vec![int_attribute("to", i64::from(DataType::Float as i32))],
                    ..NodeProto::default()
                };
                (stored, Vec::new(), node, n * 4)
            }
            OnnxVariant::Int8PerChannel | OnnxVariant::Int8PerTensorSymmetric => {
                let Some(&axis) = weight_axes.get(&tensor.name) else {
                    out.keep(tensor, "not a MatMul/Gemm/Conv/ConvTranspose weight");
                    continue;
                };
                if n < MIN_INT8_ELEMENTS {
                    out.keep(tensor, "weight with fewer than 1024 elements");
                    continue;
                }
                let values = read_f32(tensor, n)?;
                if values.iter().any(|x| !x.is_finite()) {
                    out.keep(tensor, "non-finite values");
                    continue;
                }
                let (q, scales, axis_attr) = if variant == OnnxVariant::Int8PerChannel {
                    let dims: Vec<usize> = tensor.dims.iter().map(|&d| d as usize).collect();
                    let (q, scales) = quant::quantize_per_channel(&values, &dims, axis)
                        .ok_or_else(|| {
                            format!("initializer `{}`: bad shape for axis {axis}", tensor.name)
                        })?;
                    (q, scales, Some(axis as i64))
                } else {
                    let (q, scale) = quant::quantize_per_tensor(&values);
                    (q, vec![scale], None)
                };
                drop(values);
                let param_dims = if axis_attr.is_some() {
                    vec![scales.len() as i64]
                } else {
                    Vec::new()
                };
                let stored_name = names.fresh(&format!("{}_quantized", tensor.name));
                let scale_name = names.fresh(&format!("{}_scale", tensor.name));
                let zero_name = names.fresh(&format!("{}_zero_point", tensor.name));
                let stored = raw_tensor(
                    stored_name.clone(),
                    tensor.dims.clone(),
                    DataType::Int8,
                    q.iter().map(|&v| v as u8).collect(),
                );
                let scale = raw_tensor(
                    scale_name.clone(),
                    param_dims.clone(),
                    DataType::Float,
                    scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                );
                let zero = raw_tensor(
                    zero_name.clone(),
                    param_dims,
                    DataType::Int8,
                    vec![0; scales.len()],
                );
                let node = NodeProto {
                    input: vec![stored_name, scale_name, zero_name],
                    output: vec![tensor.name.clone()],
                    name: names.fresh(&format!("{}_DequantizeLinear", tensor.name)),
                    op_type: "DequantizeLinear".into(),
                    attribute: axis_attr
                        .map(|a| int_attribute("axis", a))
                        .into_iter()
                        .collect(),
                    ..NodeProto::default()
                };
                (stored, vec![scale, zero], node, n * 4)
            }
        };
        let (mut stored, params, node, bytes_before) = converted;
        stored.doc_string = std::mem::take(&mut tensor.doc_string);
        out.converted += 1;
        out.bytes_before += bytes_before as u64;
        out.bytes_after +=
            tensor_data_bytes(&stored) + params.iter().map(tensor_data_bytes).sum::<u64>();
        *tensor = stored;
        added_initializers.extend(params);
        added_nodes.push(node);
    }
    out.nodes_added = added_nodes.len();
    graph.initializer.extend(added_initializers);
    added_nodes.append(&mut graph.node);
    graph.node = added_nodes;
    out.finish();
    Ok(out)
}

/// Structural checks of a graph: every value is produced once (initializers and node outputs),
/// and every node input names a graph input, an initializer or a node output. Names a subgraph
/// takes from an outer scope are not followed.
pub(super) fn check(graph: &GraphProto) -> Result<(), String> {
    let mut produced: HashSet<&str> = HashSet::new();
    for t in &graph.initializer {
        if !produced.insert(&t.name) {
            return Err(format!("initializer `{}` is defined twice", t.name));
        }
    }
    for v in &graph.input {
        produced.insert(&v.name);
    }
    for n in &graph.node {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if !produced.insert(o) {
                return Err(format!("value `{o}` is produced twice (node `{}`)", n.name));
            }
        }
    }
    for n in &graph.node {
        if let Some(missing) = n
            .input
            .iter()
            .find(|i| !i.is_empty() && !produced.contains(i.as_str()))
        {
            return Err(format!(
                "node `{}` ({}) reads `{missing}`, which nothing produces",
                n.name, n.op_type
            ));
        }
    }
    if let Some(missing) = graph
        .output
        .iter()
        .find(|o| !produced.contains(o.name.as_str()))
    {
        return Err(format!("graph output `{}` is not produced", missing.name));
    }
    Ok(())
}

/// Inputs or outputs whose type the schema in use could not represent (sequence, map,
/// optional and sparse types are newer than tract-onnx's copy of `onnx.proto`): their type
/// would be dropped by a rewrite, so such models are refused.
pub(super) fn untyped_value(values: &[ValueInfoProto]) -> Option<&str> {
    values
        .iter()
        .find(|v| v.r#type.as_ref().is_some_and(|t| t.value.is_none()))
        .map(|v| v.name.as_str())
}
