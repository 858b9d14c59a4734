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
    /// Records `tensor` (whose element data is `raw` or its typed fields) as left alone.
    fn keep(&mut self, tensor: &TensorProto, raw: &[u8], reason: &str) {
        let bytes = data_bytes(tensor, raw);
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

/// Bytes of a tensor's element data as stored: `raw` (its `raw_data`, which may be held
/// apart from the tensor) when that is not empty, else its typed data fields.
pub(super) fn data_bytes(t: &TensorProto, raw: &[u8]) -> u64 {
    if !raw.is_empty() {
        return raw.len() as u64;
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

/// The float32 values of an initializer as stored: little-endian `raw_data` (borrowed from
/// wherever it lies, a memory-mapped file included) or `float_data`.
#[derive(Debug, Clone, Copy)]
pub(super) enum F32Values<'a> {
    /// `raw_data`: 4 little-endian bytes per element.
    Raw(&'a [u8]),
    /// `float_data`.
    Typed(&'a [f32]),
}

impl<'a> F32Values<'a> {
    /// The values of `t`, whose `raw_data` is `raw` (`t.raw_data` itself is not looked at):
    /// `raw` when it is not empty, else `float_data`; either must hold exactly `n` elements.
    pub fn of(t: &'a TensorProto, raw: &'a [u8], n: usize) -> Result<F32Values<'a>, String> {
        if !raw.is_empty() {
            if n.checked_mul(4) != Some(raw.len()) {
                return Err(format!(
                    "initializer `{}`: {} bytes of raw data for {n} float32 elements",
                    t.name,
                    raw.len()
                ));
            }
            return Ok(F32Values::Raw(raw));
        }
        if t.float_data.len() != n {
            return Err(format!(
                "initializer `{}`: {} float values for {n} elements",
                t.name,
                t.float_data.len()
            ));
        }
        Ok(F32Values::Typed(&t.float_data))
    }

    /// Whether every value satisfies `f` (reads the values in place, allocates nothing).
    pub fn all(self, f: impl Fn(f32) -> bool) -> bool {
        match self {
            F32Values::Raw(raw) => raw
                .chunks_exact(4)
                .all(|c| f(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
            F32Values::Typed(values) => values.iter().all(|&x| f(x)),
        }
    }

    /// The values, copied.
    pub fn to_vec(self) -> Vec<f32> {
        match self {
            F32Values::Raw(raw) => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            F32Values::Typed(values) => values.to_vec(),
        }
    }
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

/// A tensor without its data (the data is filled in, or written, when it is converted).
fn tensor_head(name: String, dims: Vec<i64>, data_type: DataType) -> TensorProto {
    TensorProto {
        name,
        dims,
        data_type: data_type as i32,
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

/// How one initializer is converted: decided by [`Planner::plan`] from its header and a check
/// of its values, carried out by [`Conversion::apply`] when its data is written.
#[derive(Debug, Clone)]
pub(super) struct Conversion {
    /// The stored tensor (`W_quantized` / `W_fp16`) without its data: name, shape, type and
    /// the source's `doc_string`.
    pub stored: TensorProto,
    /// INT8 only: the scale tensor without its data, and the zero point (complete).
    pub params: Option<(TensorProto, TensorProto)>,
    /// The `DequantizeLinear` or `Cast` node whose output is the source initializer's name.
    pub node: NodeProto,
    /// Elements of the tensor.
    pub elements: usize,
    /// Per-channel INT8: the channel axis.
    axis: Option<usize>,
    variant: OnnxVariant,
}

impl Conversion {
    /// Bytes of the stored tensor's data (1 per element for INT8, 2 for float16).
    pub fn stored_bytes(&self) -> usize {
        match self.variant {
            OnnxVariant::Fp16 => self.elements * 2,
            OnnxVariant::Int8PerChannel | OnnxVariant::Int8PerTensorSymmetric => self.elements,
        }
    }

    /// Bytes of the scale tensor's data (4 per scale; 0 without one).
    pub fn scale_bytes(&self) -> usize {
        self.scales() * 4
    }

    /// Number of scales (and zero points): one per channel, one per tensor, none for FP16.
    fn scales(&self) -> usize {
        match (&self.params, self.axis) {
            (None, _) => 0,
            (Some(_), None) => 1,
            (Some(_), Some(axis)) => self
                .stored
                .dims
                .get(axis)
                .and_then(|&d| usize::try_from(d).ok())
                .unwrap_or(0),
        }
    }

    /// Converts the tensor's `values`: the stored tensor's data and the scale tensor's data
    /// (empty for FP16), of [`Conversion::stored_bytes`] and [`Conversion::scale_bytes`] bytes.
    pub fn apply(&self, values: &[f32]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let name = self.node.output.first().map_or("", String::as_str);
        if values.len() != self.elements {
            return Err(format!(
                "initializer `{name}`: {} values for {} elements",
                values.len(),
                self.elements
            ));
        }
        match self.variant {
            OnnxVariant::Fp16 => Ok((quant::to_f16_le_bytes(values), Vec::new())),
            OnnxVariant::Int8PerChannel | OnnxVariant::Int8PerTensorSymmetric => {
                let (q, scales) = match self.axis {
                    Some(axis) => {
                        let dims: Vec<usize> =
                            self.stored.dims.iter().map(|&d| d as usize).collect();
                        quant::quantize_per_channel(values, &dims, axis).ok_or_else(|| {
                            format!("initializer `{name}`: bad shape for axis {axis}")
                        })?
                    }
                    None => {
                        let (q, scale) = quant::quantize_per_tensor(values);
                        (q, vec![scale])
                    }
                };
                Ok((
                    q.iter().map(|&v| v as u8).collect(),
                    scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                ))
            }
        }
    }
}

/// Decides, initializer by initializer and in order, which are converted and what replaces
/// them; only tensor headers and a read-only look at the values are needed, so the data can
/// stay wherever it lies (in memory, or in a memory-mapped file). Names are picked in the
/// same order however the plans are carried out, so every path gives the same graph.
pub(super) struct Planner {
    variant: OnnxVariant,
    /// Output-channel axis of every initializer used as a weight by a top-level node.
    weight_axes: HashMap<String, usize>,
    graph_inputs: HashSet<String>,
    names: Names,
    out: Rewrite,
}

impl Planner {
    /// A planner for the initializers of `graph` (their data is not looked at).
    pub fn new(graph: &GraphProto, variant: OnnxVariant) -> Planner {
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
        Planner {
            variant,
            weight_axes,
            graph_inputs: graph.input.iter().map(|v| v.name.clone()).collect(),
            names: Names::of(graph),
            out: Rewrite::default(),
        }
    }

    /// The plan for the next initializer, `tensor`, whose `raw_data` is `raw` (`tensor.raw_data`
    /// is not looked at, so the data can be held apart): `None` when it stays as it is.
    pub fn plan(&mut self, tensor: &TensorProto, raw: &[u8]) -> Result<Option<Conversion>, String> {
        let out = &mut self.out;
        if tensor.data_type != DataType::Float as i32 {
            if tensor.data_type == DataType::Double as i32 {
                out.keep(tensor, raw, "float64 (only float32 is converted)");
            }
            return Ok(None);
        }
        let n = numel(&tensor.dims).ok_or_else(|| {
            format!(
                "initializer `{}` has an invalid shape {:?}",
                tensor.name, tensor.dims
            )
        })?;
        if self.graph_inputs.contains(&tensor.name) {
            // A graph input with a default: callers may override it, so it must stay a
            // float32 value under its own name.
            out.keep(tensor, raw, "also a graph input (overridable default)");
            return Ok(None);
        }
        let names = &mut self.names;
        let mut conversion = match self.variant {
            OnnxVariant::Fp16 => {
                if n < MIN_FP16_ELEMENTS {
                    out.keep(tensor, raw, "fewer than 16 elements");
                    return Ok(None);
                }
                if !F32Values::of(tensor, raw, n)?.all(quant::fits_f16_value) {
                    out.keep(tensor, raw, "values outside the float16 range");
                    return Ok(None);
                }
                let stored_name = names.fresh(&format!("{}_fp16", tensor.name));
                let stored =
                    tensor_head(stored_name.clone(), tensor.dims.clone(), DataType::Float16);
                let node = NodeProto {
                    input: vec![stored_name],
                    output: vec![tensor.name.clone()],
                    name: names.fresh(&format!("{}_Cast", tensor.name)),
                    op_type: "Cast".into(),
                    attribute: vec![int_attribute("to", i64::from(DataType::Float as i32))],
                    ..NodeProto::default()
                };
                Conversion {
                    stored,
                    params: None,
                    node,
                    elements: n,
                    axis: None,
                    variant: self.variant,
                }
            }
            OnnxVariant::Int8PerChannel | OnnxVariant::Int8PerTensorSymmetric => {
                let Some(&axis) = self.weight_axes.get(&tensor.name) else {
                    out.keep(tensor, raw, "not a MatMul/Gemm/Conv/ConvTranspose weight");
                    return Ok(None);
                };
                if n < MIN_INT8_ELEMENTS {
                    out.keep(tensor, raw, "weight with fewer than 1024 elements");
                    return Ok(None);
                }
                if !F32Values::of(tensor, raw, n)?.all(f32::is_finite) {
                    out.keep(tensor, raw, "non-finite values");
                    return Ok(None);
                }
                let param_dims = if self.variant == OnnxVariant::Int8PerChannel {
                    let channels = tensor
                        .dims
                        .get(axis)
                        .copied()
                        .filter(|&c| c > 0)
                        .ok_or_else(|| {
                            format!("initializer `{}`: bad shape for axis {axis}", tensor.name)
                        })?;
                    vec![channels]
                } else {
                    Vec::new()
                };
                let scales = usize::try_from(param_dims.first().copied().unwrap_or(1)).unwrap_or(1);
                let stored_name = names.fresh(&format!("{}_quantized", tensor.name));
                let scale_name = names.fresh(&format!("{}_scale", tensor.name));
                let zero_name = names.fresh(&format!("{}_zero_point", tensor.name));
                let stored = tensor_head(stored_name.clone(), tensor.dims.clone(), DataType::Int8);
                let scale = tensor_head(scale_name.clone(), param_dims.clone(), DataType::Float);
                let mut zero = tensor_head(zero_name.clone(), param_dims, DataType::Int8);
                zero.raw_data = vec![0; scales];
                let per_channel = self.variant == OnnxVariant::Int8PerChannel;
                let node = NodeProto {
                    input: vec![stored_name, scale_name, zero_name],
                    output: vec![tensor.name.clone()],
                    name: names.fresh(&format!("{}_DequantizeLinear", tensor.name)),
                    op_type: "DequantizeLinear".into(),
                    attribute: per_channel
                        .then(|| int_attribute("axis", axis as i64))
                        .into_iter()
                        .collect(),
                    ..NodeProto::default()
                };
                Conversion {
                    stored,
                    params: Some((scale, zero)),
                    node,
                    elements: n,
                    axis: per_channel.then_some(axis),
                    variant: self.variant,
                }
            }
        };
        conversion.stored.doc_string = tensor.doc_string.clone();
        out.converted += 1;
        out.nodes_added += 1;
        out.bytes_before += (n * 4) as u64;
        out.bytes_after +=
            (conversion.stored_bytes() + conversion.scale_bytes() + conversion.scales()) as u64;
        Ok(Some(conversion))
    }

    /// What the plans add up to.
    pub fn finish(mut self) -> Rewrite {
        self.out.finish();
        self.out
    }
}

/// Converts the qualifying initializers of `graph` for `variant`, in memory.
pub(super) fn rewrite(graph: &mut GraphProto, variant: OnnxVariant) -> Result<Rewrite, String> {
    let mut planner = Planner::new(graph, variant);
    let mut added_nodes = Vec::new();
    let mut added_initializers = Vec::new();
    for tensor in &mut graph.initializer {
        let Some(conversion) = planner.plan(tensor, &tensor.raw_data)? else {
            continue;
        };
        let values = F32Values::of(tensor, &tensor.raw_data, conversion.elements)?.to_vec();
        let (data, scale_data) = conversion.apply(&values)?;
        drop(values);
        let Conversion {
            mut stored,
            params,
            node,
            ..
        } = conversion;
        stored.raw_data = data;
        *tensor = stored;
        if let Some((mut scale, zero)) = params {
            scale.raw_data = scale_data;
            added_initializers.extend([scale, zero]);
        }
        added_nodes.push(node);
    }
    graph.initializer.extend(added_initializers);
    added_nodes.append(&mut graph.node);
    graph.node = added_nodes;
    Ok(planner.finish())
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
