//! Reading and writing a model tensor by tensor.
//!
//! The source is memory-mapped and walked at the wire level ([`super::wire`]). Everything but
//! the initializers of the main graph is small (the model's fields, nodes, inputs, outputs,
//! `value_info`) and is decoded with prost as a whole; each initializer is decoded on its own,
//! with its `raw_data` left where it lies in the map. A conversion then takes three passes over
//! the initializers, each holding at most one tensor's data:
//!
//! 1. [`read_skeleton`]: every initializer's header (name, shape, type, ...), no element data.
//! 2. [`plan`]: what becomes of each initializer ([`Planner`], which looks at a candidate's
//!    values in place: finiteness, float16 range) and the exact encoded size of each output
//!    initializer, hence of the output graph, without converting anything.
//! 3. [`write`]: the output, front to back: the model's fields before `graph`, the graph's key
//!    and (now known) length, the nodes, each initializer in turn (unchanged ones are copied
//!    from the map, converted ones are quantised or cast and written), the scales and zero
//!    points, the graph's remaining fields, the model's remaining fields.
//!
//! The output is what prost would encode for the model the in-memory path
//! ([`super::convert_model`]) produces: prost writes fields in field-number order, and each
//! part is either prost's own encoding or a field spliced in where prost would have put it.
//! Pages of the map that have been read are handed back to the kernel as the passes go, so
//! the mapped source does not pile up in the resident set either.

use crate::mapped::Mapped;
use std::io::{self, Write};

use prost::Message;
use tract_onnx::pb::{GraphProto, ModelProto, TensorProto};

use super::extras::{Extras, PieceScan};
use super::graph::{Conversion, F32Values, Planner, Rewrite};
use super::wire::{self, fields};
use super::OnnxVariant;

/// `ModelProto.graph`.
const MODEL_GRAPH: u32 = 7;
/// `GraphProto.initializer`.
const GRAPH_INITIALIZER: u32 = 5;
/// `TensorProto.raw_data`.
const TENSOR_RAW_DATA: u32 = 9;

/// A model read without its initializers' element data.
pub(super) struct Skeleton<'a> {
    /// The model. Its graph's initializers have their headers (name, shape, type, doc string,
    /// external-data fields, ...) but no element data (`raw_data` and the typed data fields are
    /// empty).
    pub model: ModelProto,
    /// The encoded initializers of the main graph, in order (one per entry of the graph's
    /// `initializer`).
    pub tensors: Vec<&'a [u8]>,
    /// Fields of the model that the schema in use would drop.
    pub extras: Extras,
}

/// Decodes an encoded `TensorProto` except its `raw_data`, which is returned as a slice of
/// `encoded` (empty when the tensor has none). Typed data fields (`float_data`, ...) are
/// decoded.
pub(super) fn decode_tensor(encoded: &[u8]) -> Result<(TensorProto, &[u8]), String> {
    let mut raw: &[u8] = &[];
    let mut has_raw = false;
    for field in fields(encoded) {
        let field = field?;
        if field.tag == TENSOR_RAW_DATA {
            // prost keeps the last occurrence of a bytes field.
            raw = field.delimited("TensorProto.raw_data")?;
            has_raw = true;
        }
    }
    let tensor = if has_raw {
        let mut rest = Vec::new();
        for field in fields(encoded) {
            let field = field?;
            if field.tag != TENSOR_RAW_DATA {
                rest.extend_from_slice(field.bytes);
            }
        }
        TensorProto::decode(rest.as_slice())
    } else {
        TensorProto::decode(encoded)
    }
    .map_err(|e| format!("initializer: {e}"))?;
    Ok((tensor, raw))
}

/// Reads `bytes`, an encoded `ModelProto`, without its initializers' data (see [`Skeleton`]),
/// and counts the fields the schema would drop ([`extras`](super::extras)). Every byte is
/// checked to be well-formed protobuf that prost would decode. `release` is called with each
/// part of `bytes` once it has been read (each initializer, then all of `bytes`), so that a
/// memory-mapped source can give its pages back.
pub(super) fn read_skeleton<'a>(
    bytes: &'a [u8],
    release: &dyn Fn(&[u8]),
) -> Result<Skeleton<'a>, String> {
    let mut extras = PieceScan::default();
    let mut model_rest = Vec::new();
    let mut graph_parts = Vec::new();
    for field in fields(bytes) {
        let field = field?;
        if field.tag == MODEL_GRAPH {
            graph_parts.push(field.delimited("ModelProto.graph")?);
        } else {
            model_rest.extend_from_slice(field.bytes);
        }
    }
    let mut model =
        ModelProto::decode(model_rest.as_slice()).map_err(|e| format!("ModelProto: {e}"))?;
    extras
        .model(&model_rest)
        .map_err(|e| format!("ModelProto: {e}"))?;
    drop(model_rest);
    // A message field stored twice is merged, as if its parts were one (prost does the same).
    let mut graph_rest = Vec::new();
    let mut tensors = Vec::new();
    let mut heads = Vec::new();
    for &part in &graph_parts {
        for field in fields(part) {
            let field = field?;
            if field.tag == GRAPH_INITIALIZER {
                let encoded = field.delimited("GraphProto.initializer")?;
                let (mut head, _) = decode_tensor(encoded)?;
                extras
                    .initializer(encoded)
                    .map_err(|e| format!("initializer: {e}"))?;
                release(encoded);
                head.float_data = Vec::new();
                head.int32_data = Vec::new();
                head.string_data = Vec::new();
                head.int64_data = Vec::new();
                head.double_data = Vec::new();
                head.uint64_data = Vec::new();
                heads.push(head);
                tensors.push(encoded);
            } else {
                graph_rest.extend_from_slice(field.bytes);
            }
        }
    }
    if !graph_parts.is_empty() {
        let mut graph =
            GraphProto::decode(graph_rest.as_slice()).map_err(|e| format!("GraphProto: {e}"))?;
        extras
            .graph(&graph_rest)
            .map_err(|e| format!("GraphProto: {e}"))?;
        graph.initializer = heads;
        model.graph = Some(graph);
    }
    release(bytes);
    Ok(Skeleton {
        model,
        tensors,
        extras: extras.finish(),
    })
}

/// One initializer of the output graph.
enum Entry<'a> {
    /// A source initializer written as it is.
    Keep(&'a [u8]),
    /// A source initializer converted.
    Convert(&'a [u8], Box<Conversion>),
    /// An initializer the opset upgrade added.
    Added(Box<TensorProto>),
}

/// What [`plan`] decided.
pub(super) struct Plan<'a> {
    entries: Vec<Entry<'a>>,
    /// Encoded size of the graph's `initializer` fields in the output.
    initializers_len: usize,
    /// What the conversion does.
    pub rewrite: Rewrite,
}

/// Encoded size of a `TensorProto` whose fields are `head`'s plus `raw_len` bytes of
/// `raw_data` (`head.raw_data` must be empty).
fn tensor_len(head: &TensorProto, raw_len: usize) -> usize {
    head.encoded_len() + wire::bytes_field_size(TENSOR_RAW_DATA, raw_len)
}

/// Plans the conversion of `graph` (a skeleton's, after the opset upgrade if any), whose
/// first initializers are the source's `tensors` and the rest were added by the upgrade.
/// Moves the new nodes to the front of the graph's nodes and takes its initializers out (the
/// plan holds them).
pub(super) fn plan<'a>(
    graph: &mut GraphProto,
    tensors: &[&'a [u8]],
    variant: OnnxVariant,
    source: &Mapped,
) -> Result<Plan<'a>, String> {
    let mut planner = Planner::new(graph, variant);
    let mut entries = Vec::with_capacity(graph.initializer.len());
    let mut initializers_len = 0;
    let mut nodes = Vec::new();
    let mut params_len = 0;
    for &encoded in tensors {
        let (tensor, raw) = decode_tensor(encoded)?;
        let planned = planner.plan(&tensor, raw);
        source.release(encoded);
        let len = match planned? {
            None => {
                entries.push(Entry::Keep(encoded));
                tensor_len(&tensor, raw.len())
            }
            Some(conversion) => {
                let len = tensor_len(&conversion.stored, conversion.stored_bytes());
                if let Some((scale, zero)) = &conversion.params {
                    params_len += wire::delimited_size(
                        GRAPH_INITIALIZER,
                        tensor_len(scale, conversion.scale_bytes()),
                    ) + wire::delimited_size(GRAPH_INITIALIZER, zero.encoded_len());
                }
                nodes.push(conversion.node.clone());
                entries.push(Entry::Convert(encoded, Box::new(conversion)));
                len
            }
        };
        initializers_len += wire::delimited_size(GRAPH_INITIALIZER, len);
    }
    // Added by the opset upgrade (after the source's, as in the in-memory path); not converted
    // (int64), but planned so that names stay in step.
    let added: Vec<TensorProto> = graph.initializer.drain(..).skip(tensors.len()).collect();
    for tensor in added {
        if planner.plan(&tensor, &tensor.raw_data)?.is_some() {
            return Err(format!(
                "initializer `{}` added by the opset upgrade would be converted",
                tensor.name
            ));
        }
        initializers_len += wire::delimited_size(GRAPH_INITIALIZER, tensor.encoded_len());
        entries.push(Entry::Added(Box::new(tensor)));
    }
    source.release_all();
    nodes.append(&mut graph.node);
    graph.node = nodes;
    Ok(Plan {
        entries,
        initializers_len: initializers_len + params_len,
        rewrite: planner.finish(),
    })
}

/// Why [`write`] failed.
pub(super) enum WriteError {
    /// Writing the output failed.
    Io(io::Error),
    /// The model could not be converted after all (a tensor that no longer decodes).
    Model(String),
    /// What was written does not match the plan (a bug, or a source changed underneath).
    Mismatch(String),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

impl From<String> for WriteError {
    fn from(e: String) -> Self {
        WriteError::Model(e)
    }
}

/// A writer that counts what passes through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes one `GraphProto.initializer` field: `head`'s fields with `raw` as its
    /// `raw_data` (`head.raw_data` must be empty), as prost would encode them.
    fn tensor(&mut self, head: &TensorProto, raw: &[u8]) -> Result<(), WriteError> {
        let encoded = head.encode_to_vec();
        let (before, after) = wire::split_after_tag(&encoded, TENSOR_RAW_DATA)?;
        let len = encoded.len() + wire::bytes_field_size(TENSOR_RAW_DATA, raw.len());
        self.put(&wire::delimited_header(GRAPH_INITIALIZER, len))?;
        self.put(before)?;
        if !raw.is_empty() {
            self.put(&wire::delimited_header(TENSOR_RAW_DATA, raw.len()))?;
            self.put(raw)?;
        }
        self.put(after)?;
        Ok(())
    }
}

/// Writes the converted model to `out`: `model` (without its graph) with `graph` (the planned
/// skeleton graph: final nodes, no initializers) and the initializers of `plan`, converted from
/// `source` one at a time. Returns the bytes written.
pub(super) fn write<W: Write>(
    out: W,
    model: &ModelProto,
    graph: &GraphProto,
    plan: &Plan<'_>,
    source: &Mapped,
) -> Result<u64, WriteError> {
    let mut out = Counting {
        inner: out,
        written: 0,
    };
    let model_fields = model.encode_to_vec();
    let (model_before, model_after) = wire::split_after_tag(&model_fields, MODEL_GRAPH)?;
    let graph_fields = graph.encode_to_vec();
    let (graph_before, graph_after) = wire::split_after_tag(&graph_fields, GRAPH_INITIALIZER)?;
    let graph_len = graph_before.len() + plan.initializers_len + graph_after.len();

    out.put(model_before)?;
    out.put(&wire::delimited_header(MODEL_GRAPH, graph_len))?;
    let graph_start = out.written;
    out.put(graph_before)?;
    let mut params = Vec::new();
    for entry in &plan.entries {
        match entry {
            Entry::Keep(encoded) => {
                let (tensor, raw) = decode_tensor(encoded)?;
                out.tensor(&tensor, raw)?;
                source.release(encoded);
            }
            Entry::Convert(encoded, conversion) => {
                let (tensor, raw) = decode_tensor(encoded)?;
                let values = F32Values::of(&tensor, raw, conversion.elements)?.to_vec();
                drop(tensor);
                source.release(encoded);
                let (data, scale_data) = conversion.apply(&values)?;
                drop(values);
                out.tensor(&conversion.stored, &data)?;
                if let Some((scale, zero)) = &conversion.params {
                    params.push((scale, scale_data, zero));
                }
            }
            Entry::Added(tensor) => {
                out.put(&wire::delimited_header(
                    GRAPH_INITIALIZER,
                    tensor.encoded_len(),
                ))?;
                out.put(&tensor.encode_to_vec())?;
            }
        }
    }
    for (scale, scale_data, zero) in params {
        out.tensor(scale, &scale_data)?;
        out.put(&wire::delimited_header(
            GRAPH_INITIALIZER,
            zero.encoded_len(),
        ))?;
        out.put(&zero.encode_to_vec())?;
    }
    source.release_all();
    out.put(graph_after)?;
    let graph_written = out.written - graph_start;
    if graph_written != graph_len as u64 {
        return Err(WriteError::Mismatch(format!(
            "the graph was planned as {graph_len} bytes but {graph_written} were written"
        )));
    }
    out.put(model_after)?;
    out.inner.flush()?;
    Ok(out.written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::onnx_variants::extras;
    use prost::encoding::{encode_key, encode_varint, WireType};
    use tract_onnx::pb::{NodeProto, OperatorSetIdProto};

    fn model() -> ModelProto {
        let tensor = |name: &str, raw: Vec<u8>| TensorProto {
            name: name.into(),
            dims: vec![raw.len() as i64 / 4],
            data_type: 1,
            raw_data: raw,
            doc_string: format!("{name} doc"),
            ..TensorProto::default()
        };
        ModelProto {
            ir_version: 8,
            producer_name: "test".into(),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(GraphProto {
                name: "g".into(),
                node: vec![NodeProto {
                    op_type: "Add".into(),
                    input: vec!["a".into(), "b".into()],
                    output: vec!["c".into()],
                    ..NodeProto::default()
                }],
                initializer: vec![
                    tensor("a", vec![1; 64]),
                    TensorProto {
                        name: "b".into(),
                        dims: vec![3],
                        data_type: 1,
                        float_data: vec![1.0, 2.0, 3.0],
                        ..TensorProto::default()
                    },
                    tensor("e", Vec::new()),
                ],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
    }

    fn strip(mut m: ModelProto) -> ModelProto {
        for t in m.graph.iter_mut().flat_map(|g| &mut g.initializer) {
            t.raw_data.clear();
            t.float_data.clear();
        }
        m
    }

    fn append_delimited(out: &mut Vec<u8>, tag: u32, payload: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, out);
        encode_varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    #[test]
    fn skeleton_is_the_model_without_tensor_data() {
        let m = model();
        let bytes = m.encode_to_vec();
        let released = std::cell::Cell::new(0);
        let s = read_skeleton(&bytes, &|_| released.set(released.get() + 1)).unwrap();
        assert_eq!(s.model, strip(m.clone()));
        assert_eq!(s.tensors.len(), 3);
        // Each initializer, then the whole input.
        assert_eq!(released.get(), 4);
        for (encoded, t) in s.tensors.iter().zip(&m.graph.as_ref().unwrap().initializer) {
            let (mut head, raw) = decode_tensor(encoded).unwrap();
            head.raw_data = raw.to_vec();
            assert_eq!(&head, t);
        }
        assert_eq!(s.extras, extras::scan(&bytes).unwrap());
        // Truncated anywhere: an error exactly where prost's whole decode fails, and the same
        // (shorter) model where it does not.
        for cut in 0..bytes.len() {
            let part = &bytes[..cut];
            match (read_skeleton(part, &|_| {}), ModelProto::decode(part)) {
                (Ok(s), Ok(whole)) => assert_eq!(s.model, strip(whole), "cut {cut}"),
                (Err(_), Err(_)) => {}
                (s, whole) => panic!("cut {cut}: {:?} vs {:?}", s.err(), whole.err()),
            }
        }
    }

    #[test]
    fn a_graph_stored_in_two_parts_is_merged_as_prost_does() {
        let m = model();
        let g = m.graph.as_ref().unwrap();
        let first = GraphProto {
            node: g.node.clone(),
            initializer: g.initializer[..1].to_vec(),
            ..GraphProto::default()
        };
        let second = GraphProto {
            name: g.name.clone(),
            initializer: g.initializer[1..].to_vec(),
            ..GraphProto::default()
        };
        let mut bytes = ModelProto {
            graph: None,
            ..m.clone()
        }
        .encode_to_vec();
        append_delimited(&mut bytes, MODEL_GRAPH, &first.encode_to_vec());
        append_delimited(&mut bytes, MODEL_GRAPH, &second.encode_to_vec());
        let whole = ModelProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(whole, m);
        let s = read_skeleton(&bytes, &|_| {}).unwrap();
        assert_eq!(s.model, strip(m));
        assert_eq!(s.tensors.len(), 3);
    }

    #[test]
    fn fields_the_schema_drops_are_counted_piece_by_piece_as_in_one_scan() {
        let m = model();
        let mut g = m.graph.clone().unwrap();
        // metadata_props (16) on the first initializer, graph metadata_props (16), node
        // metadata_props (9), and a model configuration (26).
        let entry = tract_onnx::pb::StringStringEntryProto {
            key: "k".into(),
            value: "v".into(),
        }
        .encode_to_vec();
        let mut t0 = g.initializer[0].encode_to_vec();
        append_delimited(&mut t0, 16, &entry);
        let mut n0 = g.node[0].encode_to_vec();
        append_delimited(&mut n0, 9, &entry);
        let rest = GraphProto {
            node: Vec::new(),
            initializer: g.initializer.split_off(1),
            ..g.clone()
        };
        let mut graph = Vec::new();
        append_delimited(&mut graph, 1, &n0);
        append_delimited(&mut graph, GRAPH_INITIALIZER, &t0);
        graph.extend(rest.encode_to_vec());
        append_delimited(&mut graph, 16, &entry);
        let mut bytes = ModelProto {
            graph: None,
            ..m.clone()
        }
        .encode_to_vec();
        append_delimited(&mut bytes, MODEL_GRAPH, &graph);
        append_delimited(&mut bytes, 26, &[]);
        let whole = extras::scan(&bytes).unwrap();
        assert_eq!(
            whole.dropped,
            [
                "node metadata_props × 1",
                "initializer metadata_props × 1",
                "graph metadata_props × 1"
            ]
        );
        assert_eq!(whole.refused, ["model configuration × 1"]);
        let s = read_skeleton(&bytes, &|_| {}).unwrap();
        assert_eq!(s.extras, whole);
        // The fields the schema lacks are gone, as after prost's whole decode.
        assert_eq!(
            s.model,
            strip(ModelProto::decode(bytes.as_slice()).unwrap())
        );
    }

    #[test]
    fn a_misencoded_initializer_or_raw_data_is_an_error() {
        let m = model();
        let mut bytes = ModelProto {
            graph: None,
            ..m.clone()
        }
        .encode_to_vec();
        // GraphProto.initializer as a varint, then TensorProto.raw_data as a varint.
        let mut graph = Vec::new();
        encode_key(GRAPH_INITIALIZER, WireType::Varint, &mut graph);
        encode_varint(1, &mut graph);
        let mut bad = bytes.clone();
        append_delimited(&mut bad, MODEL_GRAPH, &graph);
        assert!(ModelProto::decode(bad.as_slice()).is_err());
        assert!(read_skeleton(&bad, &|_| {}).is_err());
        let mut tensor = Vec::new();
        encode_key(TENSOR_RAW_DATA, WireType::Varint, &mut tensor);
        encode_varint(1, &mut tensor);
        let mut graph = Vec::new();
        append_delimited(&mut graph, GRAPH_INITIALIZER, &tensor);
        append_delimited(&mut bytes, MODEL_GRAPH, &graph);
        assert!(ModelProto::decode(bytes.as_slice()).is_err());
        assert!(read_skeleton(&bytes, &|_| {}).is_err());
    }
}
