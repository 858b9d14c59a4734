//! Fields of `onnx.proto` that tract-onnx's copy of the schema lacks.
//!
//! prost skips fields its types do not declare, so a model decoded with [`tract_onnx::pb`]
//! loses them silently. This module decodes the same bytes a second time into small prost
//! types that declare only those fields (everything else is skipped by prost, so the weights
//! are not copied again), and counts what is there. Informational ones (`metadata_props`)
//! are reported as not carried over; ones that change what a model computes or where it runs
//! are reasons to refuse the model.

use prost::Message;

/// `StringStringEntryProto`, decoded only to be counted.
#[derive(Clone, PartialEq, Message)]
struct Entry {
    #[prost(string, tag = "1")]
    key: String,
}

/// Any message, contents skipped.
#[derive(Clone, PartialEq, Message)]
struct Opaque {}

#[derive(Clone, PartialEq, Message)]
struct ModelExtras {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphExtras>,
    /// `ModelProto.configuration` (multi-device configurations).
    #[prost(message, repeated, tag = "26")]
    configuration: Vec<Opaque>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphExtras {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeExtras>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorExtras>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueExtras>,
    #[prost(message, repeated, tag = "12")]
    output: Vec<ValueExtras>,
    #[prost(message, repeated, tag = "13")]
    value_info: Vec<ValueExtras>,
    #[prost(message, repeated, tag = "16")]
    metadata_props: Vec<Entry>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeExtras {
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeExtras>,
    #[prost(string, tag = "8")]
    overload: String,
    #[prost(message, repeated, tag = "9")]
    metadata_props: Vec<Entry>,
    #[prost(message, repeated, tag = "10")]
    device_configurations: Vec<Opaque>,
}

#[derive(Clone, PartialEq, Message)]
struct AttributeExtras {
    #[prost(message, optional, tag = "6")]
    g: Option<GraphExtras>,
    #[prost(message, repeated, tag = "11")]
    graphs: Vec<GraphExtras>,
    /// `AttributeProto.tp` (a type, for function attributes).
    #[prost(message, optional, tag = "14")]
    tp: Option<Opaque>,
}

#[derive(Clone, PartialEq, Message)]
struct ValueExtras {
    #[prost(message, repeated, tag = "4")]
    metadata_props: Vec<Entry>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorExtras {
    #[prost(message, repeated, tag = "16")]
    metadata_props: Vec<Entry>,
}

/// What a model carries that the schema in use would drop.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Extras {
    /// Informational fields that are not carried over, as `what × count`.
    pub dropped: Vec<String>,
    /// Fields whose loss would change the model, as `what × count`.
    pub refused: Vec<String>,
}

#[derive(Default)]
struct Counts {
    node_metadata: usize,
    value_metadata: usize,
    tensor_metadata: usize,
    graph_metadata: usize,
    overload: usize,
    device_configurations: usize,
    type_attributes: usize,
}

fn count_graph(g: &GraphExtras, c: &mut Counts) {
    c.graph_metadata += g.metadata_props.len();
    for v in g.input.iter().chain(&g.output).chain(&g.value_info) {
        c.value_metadata += v.metadata_props.len();
    }
    for t in &g.initializer {
        c.tensor_metadata += t.metadata_props.len();
    }
    for n in &g.node {
        c.node_metadata += n.metadata_props.len();
        c.overload += usize::from(!n.overload.is_empty());
        c.device_configurations += n.device_configurations.len();
        for a in &n.attribute {
            c.type_attributes += usize::from(a.tp.is_some());
            for sub in a.g.iter().chain(&a.graphs) {
                count_graph(sub, c);
            }
        }
    }
}

/// Decodes `bytes` (an ONNX model) for the fields listed above.
pub(super) fn scan(bytes: &[u8]) -> Result<Extras, prost::DecodeError> {
    let model = ModelExtras::decode(bytes)?;
    let mut c = Counts::default();
    if let Some(g) = &model.graph {
        count_graph(g, &mut c);
    }
    Ok(c.extras(model.configuration.len()))
}

/// The same count as [`scan`], fed the model piece by piece (as the streaming reader walks it)
/// so that no piece has to be read twice: the model's fields other than `graph`, the main
/// graph's fields other than `initializer`, and each initializer.
#[derive(Default)]
pub(super) struct PieceScan {
    counts: Counts,
    configurations: usize,
}

impl PieceScan {
    /// Counts an encoded `ModelProto` holding no `graph`.
    pub fn model(&mut self, bytes: &[u8]) -> Result<(), prost::DecodeError> {
        let model = ModelExtras::decode(bytes)?;
        self.configurations += model.configuration.len();
        if let Some(g) = &model.graph {
            count_graph(g, &mut self.counts);
        }
        Ok(())
    }

    /// Counts an encoded `GraphProto` (the main graph; its initializers may be left out and
    /// given to [`PieceScan::initializer`]).
    pub fn graph(&mut self, bytes: &[u8]) -> Result<(), prost::DecodeError> {
        count_graph(&GraphExtras::decode(bytes)?, &mut self.counts);
        Ok(())
    }

    /// Counts an encoded `TensorProto` of the main graph's initializers.
    pub fn initializer(&mut self, bytes: &[u8]) -> Result<(), prost::DecodeError> {
        self.counts.tensor_metadata += TensorExtras::decode(bytes)?.metadata_props.len();
        Ok(())
    }

    /// What the pieces add up to.
    pub fn finish(self) -> Extras {
        self.counts.extras(self.configurations)
    }
}

impl Counts {
    fn extras(&self, configurations: usize) -> Extras {
        let c = self;
        let list = |items: &[(&str, usize)]| -> Vec<String> {
            items
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(what, n)| format!("{what} × {n}"))
                .collect()
        };
        Extras {
            dropped: list(&[
                ("node metadata_props", c.node_metadata),
                ("value_info metadata_props", c.value_metadata),
                ("initializer metadata_props", c.tensor_metadata),
                ("graph metadata_props", c.graph_metadata),
            ]),
            refused: list(&[
                ("model configuration", configurations),
                ("node overload", c.overload),
                ("node device_configurations", c.device_configurations),
                ("type-valued attribute", c.type_attributes),
            ]),
        }
    }
}
