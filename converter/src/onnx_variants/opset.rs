//! Raising a model's default-domain opset from 11 or 12 to 13, which the per-channel INT8
//! variant needs (`DequantizeLinear` has `axis` from opset 13 on).
//!
//! Raising an opset re-binds every node to the operator's newest version at or below the new
//! opset, so it is only done when the meaning of every node is known to stay the same:
//!
//! - Operators whose versions 12 and 13 only widened their types (bfloat16, more integer
//!   types) or added attributes whose defaults keep the old behaviour are kept as they are.
//! - `Squeeze`, `Unsqueeze` and `ReduceSum` take `axes`, and `Split` takes `split`, as an input
//!   from opset 13 on: the attribute becomes an `int64` initializer feeding that input.
//! - `Softmax`, `LogSoftmax` and `Hardmax` no longer flatten their input to 2-D in opset 13.
//!   That only changes the result when `axis` is not the last axis, so they are kept when
//!   `axis` is -1 or the input's rank is known (from the graph's inputs, outputs or
//!   `value_info`) and `axis` is its last axis; the axis is then written out explicitly.
//! - Anything else (an operator not on the list, `Dropout` with a `ratio` attribute, a model
//!   with local functions) refuses the upgrade with an error that names the node.
//!
//! This is the same job as the ONNX version converter's 11→12→13 adapters, restricted to the
//! cases that are provably equivalent.

use std::collections::HashMap;

use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;
use tract_onnx::pb::type_proto;
use tract_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};

/// The opset the upgrade produces.
pub const TARGET: i64 = 13;

/// Lowest opset the upgrade starts from (10 → 11 changed `Clip`, `Pad` and `Resize` inputs,
/// which this upgrade does not rewrite).
pub const LOWEST: i64 = 11;

/// Operators whose meaning is the same at opsets 11, 12 and 13 for any attributes they carry
/// (their 12/13 versions, if any, only added types or attributes with backward-compatible
/// defaults).
const UNCHANGED: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "BitShift",
    "Cast",
    "Ceil",
    "Clip",
    "Compress",
    "Concat",
    "ConcatFromSequence",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DepthToSpace",
    "DequantizeLinear",
    "Det",
    "Div",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "Identity",
    "If",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "Loop",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "MatMulInteger",
    "Max",
    "MaxPool",
    "MaxRoiPool",
    "MaxUnpool",
    "Mean",
    "MeanVarianceNormalization",
    "Min",
    "Mod",
    "Mul",
    "Multinomial",
    "Neg",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RoiAlign",
    "Round",
    "Scan",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceEmpty",
    "SequenceErase",
    "SequenceInsert",
    "SequenceLength",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "SplitToSequence",
    "Sqrt",
    "Sub",
    "Sum",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Unique",
    "Where",
    "Xor",
];

/// Raises the default-domain opset of `model` from `from` (11 or 12) to [`TARGET`], rewriting
/// the nodes that need it. Returns a line per rewritten node kind, or why it cannot be done.
pub(super) fn upgrade_to_13(model: &mut ModelProto, from: i64) -> Result<Vec<String>, String> {
    if !(LOWEST..TARGET).contains(&from) {
        return Err(format!(
            "the model is opset {from}; raising it to {TARGET} is only done from opset {LOWEST} or 12"
        ));
    }
    if !model.functions.is_empty() {
        return Err(
            "the model has local functions, which an opset upgrade would have to rewrite too"
                .into(),
        );
    }
    let graph = model.graph.as_mut().ok_or("no graph")?;
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    upgrade_graph(graph, &mut counts)?;
    for o in &mut model.opset_import {
        if o.domain.is_empty() || o.domain == "ai.onnx" {
            o.version = TARGET;
        }
    }
    // Opset 13 needs IR version 7.
    model.ir_version = model.ir_version.max(7);
    let mut notes: Vec<String> = counts
        .into_iter()
        .map(|(what, n)| format!("{n} × {what}"))
        .collect();
    notes.sort();
    Ok(notes)
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Ranks of the values whose type the graph declares.
fn known_ranks(graph: &GraphProto) -> HashMap<String, usize> {
    let mut ranks = HashMap::new();
    for v in graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info)
    {
        if let Some(type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
        {
            if let Some(shape) = &t.shape {
                ranks.insert(v.name.clone(), shape.dim.len());
            }
        }
    }
    for t in &graph.initializer {
        ranks.insert(t.name.clone(), t.dims.len());
    }
    ranks
}

fn upgrade_graph(
    graph: &mut GraphProto,
    counts: &mut HashMap<&'static str, usize>,
) -> Result<(), String> {
    let ranks = known_ranks(graph);
    let mut used: std::collections::HashSet<String> = graph
        .initializer
        .iter()
        .map(|t| t.name.clone())
        .chain(
            graph
                .node
                .iter()
                .flat_map(|n| n.output.iter().chain(&n.input).cloned()),
        )
        .chain(
            graph
                .input
                .iter()
                .chain(&graph.output)
                .chain(&graph.value_info)
                .map(|v| v.name.clone()),
        )
        .collect();
    let mut fresh = |base: String| {
        let mut name = base.clone();
        let mut i = 1;
        while used.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        used.insert(name.clone());
        name
    };
    let mut new_initializers = Vec::new();
    for node in &mut graph.node {
        for attr in &mut node.attribute {
            for g in attr.g.iter_mut().chain(attr.graphs.iter_mut()) {
                upgrade_graph(g, counts)?;
            }
        }
        if !is_default_domain(&node.domain) {
            continue;
        }
        let describe = |node: &NodeProto| format!("node `{}` ({})", node.name, node.op_type);
        match node.op_type.as_str() {
            op if UNCHANGED.contains(&op) => {}
            "Dropout" => {
                if node.attribute.iter().any(|a| a.name == "ratio") {
                    return Err(format!(
                        "{}: its `ratio` attribute is an input from opset 12 on (not rewritten)",
                        describe(node)
                    ));
                }
            }
            "Squeeze" | "Unsqueeze" | "ReduceSum" | "Split" => {
                let attr_name = if node.op_type == "Split" {
                    "split"
                } else {
                    "axes"
                };
                let Some(pos) = node.attribute.iter().position(|a| a.name == attr_name) else {
                    continue;
                };
                let attr = node.attribute.remove(pos);
                let values = attr.ints;
                let name = fresh(format!(
                    "{}_{attr_name}",
                    if node.name.is_empty() {
                        &node.op_type
                    } else {
                        &node.name
                    }
                ));
                new_initializers.push(TensorProto {
                    name: name.clone(),
                    dims: vec![values.len() as i64],
                    data_type: DataType::Int64 as i32,
                    raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    ..TensorProto::default()
                });
                // At opset 11/12 these nodes have exactly one input (the data); the attribute
                // becomes the second.
                node.input.truncate(1);
                node.input.push(name);
                let what = match node.op_type.as_str() {
                    "Squeeze" => "Squeeze axes attribute → input",
                    "Unsqueeze" => "Unsqueeze axes attribute → input",
                    "ReduceSum" => "ReduceSum axes attribute → input",
                    _ => "Split split attribute → input",
                };
                *counts.entry(what).or_default() += 1;
            }
            "Softmax" | "LogSoftmax" | "Hardmax" => {
                let axis = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "axis")
                    .map_or(1, |a| a.i);
                let rank = node.input.first().and_then(|i| ranks.get(i)).copied();
                let last = match rank {
                    _ if axis == -1 => true,
                    Some(r) => {
                        usize::try_from(if axis < 0 { axis + r as i64 } else { axis })
                            == Ok(r.saturating_sub(1))
                    }
                    None => false,
                };
                if !last {
                    return Err(format!(
                        "{}: opset 13 no longer flattens to 2-D, and axis {axis} is not known to be \
                         the last axis of its input",
                        describe(node)
                    ));
                }
                node.attribute.retain(|a| a.name != "axis");
                node.attribute.push(AttributeProto {
                    name: "axis".into(),
                    r#type: AttributeType::Int as i32,
                    i: axis,
                    ..AttributeProto::default()
                });
                *counts
                    .entry("Softmax-family axis made explicit")
                    .or_default() += 1;
            }
            other => {
                return Err(format!(
                    "{}: `{other}` is not known to keep its meaning from opset 11/12 to 13",
                    describe(node)
                ));
            }
        }
    }
    graph.initializer.extend(new_initializers);
    Ok(())
}
