//! ONNX → device variants (converter issue, conversion 3), verified.
//!
//! Without model files: quantise/dequantise round-trip bounds, a small synthetic graph
//! (Conv, Gemm both ways, MatMul) converted to each variant with its inputs/outputs unchanged
//! and its outputs compared in tract, opset handling, and clear errors for corrupt, truncated,
//! empty and external-data files.
//!
//! With the fetched models (`$SWITCHYARD_MODELS_DIR` or `~/.cache/switchyard/models`; a missing
//! model skips a test with a message, and fails it when `CI` is set):
//! - the Piper voice's INT8 variants are ≤ 35% of the source and their speech, transcribed by
//!   whisper tiny.en (the `switchyard-whisper-worker` binary), has WER ≤ 15%;
//! - Piper's variants against the source in ONNX Runtime (the Piper engine, noise off): same
//!   length, waveform cosine and energy envelope within the bounds stated below;
//! - the OCR detector's FP16 and INT8 variants read the same text as the source through the
//!   tract OCR engine (the engine that serves OCR), and their probability maps match the
//!   source's in ONNX Runtime on the CPU (raw `ort`, in a child process: a process holds one
//!   ONNX Runtime environment, and the Piper engine owns this one's).
//!
//! Run: `cargo test --release -p switchyard-converter --test onnx_variants -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use prost::Message;
use switchyard_converter::onnx_variants::pb;
use switchyard_converter::onnx_variants::pb::attribute_proto::AttributeType;
use switchyard_converter::onnx_variants::pb::tensor_proto::DataType;
use switchyard_converter::onnx_variants::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use switchyard_converter::onnx_variants::{
    convert, convert_model, quant, read_model, read_model_structure, ModelRewrite, OnnxVariant,
    OnnxVariantError, OnnxVariantReport, MIN_INT8_ELEMENTS,
};
use switchyard_core::{CopyLedger, Tensor};
use switchyard_testkit::noise;
use switchyard_testkit::speech::resample;
use switchyard_testkit::wer::{edit_distance, words};

// ---------------------------------------------------------------------------------------------
// Models, skipping, cached variants
// ---------------------------------------------------------------------------------------------

/// `SWITCHYARD_MODELS_DIR`, else `~/.cache/switchyard/models` (the gateway's default).
fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// `files` under the models directory, or `None` (with the reason printed) when one is
/// missing. With `CI` set, a missing file fails the test instead.
fn model_files(test: &str, files: &[&str]) -> Option<Vec<PathBuf>> {
    let dir = models_dir();
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    if let Some(missing) = paths.iter().find(|p| !p.is_file()) {
        let message = format!(
            "{test}: {} not found (run `switchyard models fetch`)",
            missing.display()
        );
        assert!(std::env::var_os("CI").is_none(), "FAILED {message}");
        eprintln!("SKIPPED {message}");
        return None;
    }
    Some(paths)
}

const PIPER: &str = "piper-joe-medium/en_US-joe-medium.onnx";
const PIPER_CONFIG: &str = "piper-joe-medium/en_US-joe-medium.onnx.json";
const OCR_DET: &str = "pp-ocrv6-tiny/PP-OCRv6_det_tiny.onnx";
const OCR_REC: &str = "pp-ocrv6-tiny/PP-OCRv6_rec_tiny.onnx";
const RUNTIME: &str = "onnxruntime/libonnxruntime.so.1.31.1";
const WHISPER: &str = "whisper-tiny.en/ggml-model.bin";

/// `source` converted to `variant`, once per process, into cargo's test temp dir (the
/// converter renames a finished file into place, so test processes running side by side never
/// read a partial one).
fn variant_of(source: &Path, variant: OnnxVariant) -> PathBuf {
    static DONE: OnceLock<Mutex<HashMap<(PathBuf, OnnxVariant), PathBuf>>> = OnceLock::new();
    let mut done = DONE.get_or_init(Default::default).lock().unwrap();
    let key = (source.to_path_buf(), variant);
    if let Some(p) = done.get(&key) {
        return p.clone();
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("onnx-variants");
    let stem = source.file_stem().unwrap().to_string_lossy();
    let out = dir.join(format!("{stem}.{}.onnx", variant.name()));
    let report = convert(source, &out, variant).unwrap();
    print_report(&report);
    done.insert(key, out.clone());
    out
}

fn print_report(r: &OnnxVariantReport) {
    eprintln!(
        "{} {}: {} tensors, {} -> {} bytes ({:.1}%), opset {} -> {}, {:.3} s, {:.1} MB/s",
        r.input.file_name().unwrap().to_string_lossy(),
        r.variant,
        r.tensors_converted,
        r.bytes_before,
        r.bytes_after,
        100.0 * r.bytes_after as f64 / r.bytes_before as f64,
        r.opset_before,
        r.opset_after,
        r.seconds,
        r.mb_per_s
    );
}

// ---------------------------------------------------------------------------------------------
// Quantisation round trips
// ---------------------------------------------------------------------------------------------

#[test]
fn per_tensor_round_trip_error_is_at_most_half_a_step() {
    let x: Vec<f32> = noise(4096, 1).iter().map(|v| v * 0.05).collect();
    let (q, scale) = quant::quantize_per_tensor(&x);
    let max_abs = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!((scale - max_abs / 127.0).abs() <= 1e-9, "scale {scale}");
    let back = quant::dequantize_per_tensor(&q, scale);
    let mut worst = 0f32;
    for (a, b) in x.iter().zip(&back) {
        worst = worst.max((a - b).abs());
    }
    // |x - q·s| ≤ s/2 (round to nearest), with a float32 rounding allowance.
    assert!(worst <= scale * 0.5 * (1.0 + 1e-5), "{worst} > {scale}/2");
    assert!(q.iter().all(|&v| v >= -127), "the range is symmetric");
    assert!(
        q.iter().any(|&v| v.abs() == 127),
        "the extreme maps to ±127"
    );
}

#[test]
fn per_channel_round_trip_error_is_at_most_half_a_step_of_each_channel() {
    // Conv weight [out = 6, in = 4, k = 3], channel c scaled by 10^(c-3): one tensor scale
    // would wipe out the small channels.
    let dims = [6usize, 4, 3];
    let x: Vec<f32> = noise(72, 2)
        .iter()
        .enumerate()
        .map(|(i, v)| v * 10f32.powi((i / 12) as i32 - 3))
        .collect();
    let (q, scales) = quant::quantize_per_channel(&x, &dims, 0).unwrap();
    assert_eq!(scales.len(), 6);
    let back = quant::dequantize_per_channel(&q, &scales, &dims, 0).unwrap();
    for (i, (a, b)) in x.iter().zip(&back).enumerate() {
        let s = scales[i / 12];
        assert!((a - b).abs() <= s * 0.5 * (1.0 + 1e-5), "{i}: {a} vs {b}");
    }
    // Per tensor, the smallest channel is lost entirely; per channel it keeps ≤ 0.4% of its
    // own range (half a step of 1/127).
    let (qt, _) = quant::quantize_per_tensor(&x);
    assert!(qt[..12].iter().all(|&v| v == 0));
    let small_max = x[..12].iter().fold(0f32, |m, v| m.max(v.abs()));
    let small_err = x[..12]
        .iter()
        .zip(&back[..12])
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(small_err <= small_max / 127.0 * 0.5 * (1.0 + 1e-5));

    // MatMul B [K = 5, N = 3]: channels are columns (the last axis).
    let dims = [5usize, 3];
    let x: Vec<f32> = (0..15)
        .map(|i| ((i % 3) as f32 + 1.0) * (i as f32 - 7.0))
        .collect();
    let (q, scales) = quant::quantize_per_channel(&x, &dims, 1).unwrap();
    for (c, s) in scales.iter().enumerate() {
        let max_abs = (0..5).map(|k| x[k * 3 + c].abs()).fold(0f32, f32::max);
        assert!((s - max_abs / 127.0).abs() <= 1e-6);
    }
    let back = quant::dequantize_per_channel(&q, &scales, &dims, 1).unwrap();
    for (i, (a, b)) in x.iter().zip(&back).enumerate() {
        assert!((a - b).abs() <= scales[i % 3] * 0.5 * (1.0 + 1e-5));
    }
}

#[test]
fn quantisation_edge_cases() {
    let (q, s) = quant::quantize_per_tensor(&[0.0; 8]);
    assert_eq!(s, 1.0, "all zeros: any positive scale is exact");
    assert!(q.iter().all(|&v| v == 0));
    assert!(quant::quantize_per_channel(&[0.0; 6], &[2, 3], 2).is_none());
    assert!(quant::quantize_per_channel(&[0.0; 5], &[2, 3], 0).is_none());
    assert!(quant::dequantize_per_channel(&[0; 6], &[1.0], &[2, 3], 0).is_none());
    assert_eq!(quant::quantize_value(1e9, 1.0), 127);
    assert_eq!(quant::quantize_value(-1e9, 1.0), -127);
    assert_eq!(
        quant::quantize_value(2.5, 1.0),
        2,
        "ties to even, like QuantizeLinear"
    );
    assert!(quant::fits_f16(&[0.0, -65504.0, 1e-8]));
    assert!(!quant::fits_f16(&[70000.0]));
    assert!(!quant::fits_f16(&[f32::NAN]));
    assert_eq!(
        &quant::to_f16_le_bytes(&[1.0, -2.0])[..],
        &[0x00, 0x3c, 0x00, 0xc0]
    );
}

#[test]
fn variant_names_round_trip() {
    for v in OnnxVariant::ALL {
        assert_eq!(OnnxVariant::parse(v.name()).unwrap(), v);
        assert_eq!(v.name().parse::<OnnxVariant>().unwrap(), v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            format!("\"{}\"", v.name())
        );
    }
    let err = OnnxVariant::parse("int4").unwrap_err();
    assert!(err.to_string().contains("int8-qdq-per-channel"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// A synthetic graph
// ---------------------------------------------------------------------------------------------

fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DataType::Float as i32,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..TensorProto::default()
    }
}

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| pb::tensor_shape_proto::Dimension {
                            value: Some(pb::tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..AttributeProto::default()
    }
}

fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..AttributeProto::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: format!("{op}_{}", outputs[0]),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..NodeProto::default()
    }
}

/// x [1,3,16,16] → Conv(W 64×3×3×3, B) → Relu → GlobalAveragePool → Flatten → f [1,64], then
/// y1 = Gemm(f, W2 [64,32], B2), y2 = MatMul(f, W3 [64,48]) + B3, y3 = Gemm(f, W4 [40,64],
/// transB) and y4 = Mul(f, S [64]) (S is no weight), at default-domain opset `opset`.
fn synthetic_model(opset: i64) -> ModelProto {
    let scaled = |n: usize, seed: u64, s: f32| -> Vec<f32> {
        noise(n, seed).iter().map(|v| v * s).collect()
    };
    let graph = GraphProto {
        name: "synthetic".into(),
        node: vec![
            node(
                "Conv",
                &["x", "W", "B"],
                &["c"],
                vec![ints_attr("pads", &[1, 1, 1, 1])],
            ),
            node("Relu", &["c"], &["r"], vec![]),
            node("GlobalAveragePool", &["r"], &["g"], vec![]),
            node("Flatten", &["g"], &["f"], vec![int_attr("axis", 1)]),
            node("Gemm", &["f", "W2", "B2"], &["y1"], vec![]),
            node("MatMul", &["f", "W3"], &["m"], vec![]),
            node("Add", &["m", "B3"], &["y2"], vec![]),
            node("Gemm", &["f", "W4"], &["y3"], vec![int_attr("transB", 1)]),
            node("Mul", &["f", "S"], &["y4"], vec![]),
        ],
        initializer: vec![
            f32_tensor("W", &[64, 3, 3, 3], &scaled(1728, 3, 0.3)),
            f32_tensor("B", &[64], &scaled(64, 4, 0.1)),
            f32_tensor("W2", &[64, 32], &scaled(2048, 5, 0.2)),
            f32_tensor("B2", &[32], &scaled(32, 6, 0.1)),
            f32_tensor("W3", &[64, 48], &scaled(3072, 7, 0.2)),
            f32_tensor("B3", &[48], &scaled(48, 8, 0.1)),
            f32_tensor("W4", &[40, 64], &scaled(2560, 9, 0.2)),
            f32_tensor("S", &[64], &scaled(64, 10, 1.0)),
        ],
        input: vec![value("x", &[1, 3, 16, 16])],
        output: vec![
            value("y1", &[1, 32]),
            value("y2", &[1, 48]),
            value("y3", &[1, 40]),
            value("y4", &[1, 64]),
        ],
        ..GraphProto::default()
    };
    ModelProto {
        ir_version: 8,
        producer_name: "switchyard-test".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(graph),
        ..ModelProto::default()
    }
}

fn write_model(dir: &Path, name: &str, model: &ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

/// Runs an ONNX file through tract with one f32 input; returns every output as f32.
fn run_tract(path: &Path, shape: &[usize], input: &[f32]) -> Vec<Vec<f32>> {
    use tract_onnx::prelude::*;
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x = Tensor::from_shape(shape, input).unwrap();
    let outputs = plan.run(tvec![x.into()]).unwrap();
    outputs
        .iter()
        .map(|o| {
            o.try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        })
        .collect()
}

/// Largest |a - b| and the cosine similarity of two equally long vectors.
fn compare(a: &[f32], b: &[f32]) -> (f32, f64) {
    assert_eq!(a.len(), b.len());
    let mut max_abs = 0f32;
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        max_abs = max_abs.max((x - y).abs());
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    let cosine = if na == 0.0 && nb == 0.0 {
        1.0
    } else {
        dot / (na.sqrt() * nb.sqrt()).max(1e-30)
    };
    (max_abs, cosine)
}

#[test]
fn synthetic_graph_variants_keep_the_interface_and_compute_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let source = write_model(dir.path(), "synthetic.onnx", &synthetic_model(13));
    let x = noise(3 * 16 * 16, 11);
    let reference = run_tract(&source, &[1, 3, 16, 16], &x);
    let src = read_model(&source).unwrap();
    let src_graph = src.graph.as_ref().unwrap();

    for variant in OnnxVariant::ALL {
        let out = dir.path().join(format!("synthetic.{variant}.onnx"));
        let report = convert(&source, &out, variant).unwrap();
        print_report(&report);
        let m = read_model(&out).unwrap();
        let g = m.graph.as_ref().unwrap();
        // The interface, the opset and every original node are unchanged; new nodes come first.
        assert_eq!(g.input, src_graph.input, "{variant}");
        assert_eq!(g.output, src_graph.output, "{variant}");
        assert_eq!(m.opset_import, src.opset_import, "{variant}");
        assert_eq!(report.opset_before, 13);
        assert_eq!(report.opset_after, 13);
        assert!(report.opset_changes.is_empty());
        assert_eq!(g.node.len(), src_graph.node.len() + report.nodes_added);
        assert_eq!(
            &g.node[report.nodes_added..],
            &src_graph.node[..],
            "{variant}"
        );
        let by_name: HashMap<&str, &TensorProto> =
            g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let dq_axes: HashMap<&str, Option<i64>> = g.node[..report.nodes_added]
            .iter()
            .map(|n| {
                (
                    n.output[0].as_str(),
                    n.attribute.iter().find(|a| a.name == "axis").map(|a| a.i),
                )
            })
            .collect();
        let tolerance = match variant {
            OnnxVariant::Fp16 => {
                // Every float initializer of ≥ 16 elements: all eight.
                assert_eq!(report.tensors_converted, 8);
                assert!(g.node[..8]
                    .iter()
                    .all(|n| n.op_type == "Cast" && n.attribute[0].i == DataType::Float as i64));
                assert_eq!(
                    by_name["W_fp16"].data_type,
                    DataType::Float16 as i32,
                    "stored as float16"
                );
                // Float16 keeps 11 significant bits: relative error ≤ 2^-11 per weight.
                (1e-3, 0.99999)
            }
            _ => {
                // The four weights (all ≥ 1024 elements); biases and S stay float32.
                assert_eq!(report.tensors_converted, 4);
                for w in ["W", "W2", "W3", "W4"] {
                    let q = by_name[format!("{w}_quantized").as_str()];
                    assert_eq!(q.data_type, DataType::Int8 as i32);
                    let zp = by_name[format!("{w}_zero_point").as_str()];
                    assert!(zp.raw_data.iter().all(|&b| b == 0), "symmetric");
                }
                for kept in ["B", "B2", "B3", "S"] {
                    assert_eq!(by_name[kept].data_type, DataType::Float as i32);
                }
                assert!(g.node[..4].iter().all(|n| n.op_type == "DequantizeLinear"));
                if variant == OnnxVariant::Int8PerChannel {
                    // Output channels: Conv axis 0, Gemm B axis 1 (or 0 with transB), MatMul
                    // B its last axis.
                    assert_eq!(dq_axes["W"], Some(0));
                    assert_eq!(dq_axes["W2"], Some(1));
                    assert_eq!(dq_axes["W3"], Some(1));
                    assert_eq!(dq_axes["W4"], Some(0));
                    assert_eq!(by_name["W_scale"].dims, vec![64]);
                    assert_eq!(by_name["W4_scale"].dims, vec![40]);
                } else {
                    assert!(dq_axes.values().all(Option::is_none));
                    assert!(by_name["W_scale"].dims.is_empty(), "scalar scale");
                }
                (0.03, 0.999)
            }
        };
        // Same outputs in tract (which folds the DequantizeLinear/Cast of constants).
        let got = run_tract(&out, &[1, 3, 16, 16], &x);
        for (i, (a, b)) in reference.iter().zip(&got).enumerate() {
            let (max_abs, cosine) = compare(a, b);
            eprintln!(
                "  {variant} y{}: max |diff| {max_abs:.2e}, cosine {cosine:.6}",
                i + 1
            );
            assert!(
                max_abs <= tolerance.0 && cosine >= tolerance.1,
                "{variant} y{}: max |diff| {max_abs}, cosine {cosine}",
                i + 1
            );
        }
    }
    const { assert!(MIN_INT8_ELEMENTS <= 1728, "W must qualify as a weight") };
}

#[test]
fn opset_11_is_raised_for_per_channel_only_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = synthetic_model(11);
    // An Unsqueeze with the opset-11 `axes` attribute on the way to an extra output.
    let g = model.graph.as_mut().unwrap();
    g.node.push(node(
        "Unsqueeze",
        &["y4"],
        &["u"],
        vec![ints_attr("axes", &[0])],
    ));
    g.output.push(value("u", &[1, 1, 64]));
    let source = write_model(dir.path(), "op11.onnx", &model);
    let x = noise(3 * 16 * 16, 12);
    let reference = run_tract(&source, &[1, 3, 16, 16], &x);

    let per_tensor = dir.path().join("op11.pt.onnx");
    let report = convert(&source, &per_tensor, OnnxVariant::Int8PerTensorSymmetric).unwrap();
    assert_eq!((report.opset_before, report.opset_after), (11, 11));

    let per_channel = dir.path().join("op11.pc.onnx");
    let report = convert(&source, &per_channel, OnnxVariant::Int8PerChannel).unwrap();
    assert_eq!((report.opset_before, report.opset_after), (11, 13));
    assert_eq!(
        report.opset_changes,
        [
            "default-domain opset 11 → 13",
            "1 × Unsqueeze axes attribute → input"
        ]
    );
    let m = read_model(&per_channel).unwrap();
    assert_eq!(m.opset_import[0].version, 13);
    let unsqueeze = m
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .find(|n| n.op_type == "Unsqueeze")
        .unwrap();
    assert!(unsqueeze.attribute.is_empty());
    assert_eq!(unsqueeze.input.len(), 2);
    let got = run_tract(&per_channel, &[1, 3, 16, 16], &x);
    assert_eq!(got.len(), 5);
    let (max_abs, _) = compare(&reference[4], &got[4]);
    assert!(max_abs <= 0.03, "{max_abs}");

    // An operator whose meaning changed (Softmax of unknown rank on a non-last axis) refuses.
    let mut model = synthetic_model(11);
    let g = model.graph.as_mut().unwrap();
    g.node
        .push(node("Softmax", &["r"], &["sm"], vec![int_attr("axis", 1)]));
    g.output.push(ValueInfoProto {
        name: "sm".into(),
        ..ValueInfoProto::default()
    });
    let source = write_model(dir.path(), "op11-softmax.onnx", &model);
    let out = dir.path().join("op11-softmax.pc.onnx");
    let err = convert(&source, &out, OnnxVariant::Int8PerChannel).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("op11-softmax.onnx") && text.contains("opset 13") && text.contains("Softmax"),
        "{text}"
    );
    assert!(!out.exists());

    // Opset 9 is too old even for per-tensor DequantizeLinear (opset 10).
    let source = write_model(dir.path(), "op9.onnx", &synthetic_model(9));
    let err = convert(
        &source,
        &dir.path().join("op9.pt.onnx"),
        OnnxVariant::Int8PerTensorSymmetric,
    )
    .unwrap_err();
    assert!(err.to_string().contains("opset 10"), "{err}");
}

#[test]
fn corrupt_truncated_empty_and_external_data_files_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let good = synthetic_model(13).encode_to_vec();
    let out = dir.path().join("out.onnx");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated.onnx", good[..good.len() / 2].to_vec()),
        (
            "garbage.onnx",
            b"this is not an ONNX model at all \xff\xff\xff\xff".to_vec(),
        ),
        ("empty.onnx", Vec::new()),
        ("text.onnx", b"{\"not\": \"protobuf\"}".to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for variant in OnnxVariant::ALL {
            let err = convert(&path, &out, variant).unwrap_err();
            let text = err.to_string();
            eprintln!("{name} {variant}: {text}");
            assert!(
                matches!(err, OnnxVariantError::Corrupt { .. }),
                "{name}: {err:?}"
            );
            assert!(
                text.contains(&path.display().to_string()) && text.contains("not a valid ONNX"),
                "{text}"
            );
        }
    }
    let missing = dir.path().join("missing.onnx");
    let err = convert(&missing, &out, OnnxVariant::Fp16).unwrap_err();
    assert!(err.to_string().contains("missing.onnx"), "{err}");

    // External data: refused, naming the tensor.
    let mut model = synthetic_model(13);
    let w = &mut model.graph.as_mut().unwrap().initializer[0];
    w.raw_data.clear();
    w.data_location = Some(1);
    w.external_data = vec![pb::StringStringEntryProto {
        key: "location".into(),
        value: "weights.bin".into(),
    }];
    let path = write_model(dir.path(), "external.onnx", &model);
    let err = convert(&path, &out, OnnxVariant::Int8PerChannel).unwrap_err();
    assert!(
        matches!(&err, OnnxVariantError::ExternalData { tensor, .. } if tensor == "W"),
        "{err:?}"
    );
    assert!(err.to_string().contains("external.onnx"), "{err}");

    // Nothing was left behind: no output, no temporary file.
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n == "out.onnx")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// ---------------------------------------------------------------------------------------------
// Real models: interface unchanged
// ---------------------------------------------------------------------------------------------

#[test]
fn real_models_keep_inputs_outputs_and_every_other_node() {
    let Some(paths) = model_files("real_models_keep_inputs_outputs", &[PIPER, OCR_DET]) else {
        return;
    };
    for source in &paths {
        let src = read_model(source).unwrap();
        let sg = src.graph.as_ref().unwrap();
        for variant in OnnxVariant::ALL {
            let out = variant_of(source, variant);
            let m = read_model(&out).unwrap();
            let g = m.graph.as_ref().unwrap();
            let added = g.node.len() - sg.node.len();
            assert_eq!(g.input, sg.input, "{variant}");
            assert_eq!(g.output, sg.output, "{variant}");
            assert_eq!(g.value_info, sg.value_info, "{variant}");
            // Piper and the detector use no operator the opset upgrade rewrites, so even the
            // detector's per-channel variant (opset 11 → 13) keeps every node as it was.
            assert_eq!(&g.node[added..], &sg.node[..], "{variant}");
            let expected_opset = if variant == OnnxVariant::Int8PerChannel {
                src.opset_import[0].version.max(13)
            } else {
                src.opset_import[0].version
            };
            assert_eq!(m.opset_import[0].version, expected_opset);
            // Initializers that were not converted are byte-for-byte the same.
            let converted: std::collections::HashSet<&str> = g.node[..added]
                .iter()
                .map(|n| n.output[0].as_str())
                .collect();
            let out_inits: HashMap<&str, &TensorProto> =
                g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
            for t in &sg.initializer {
                if !converted.contains(t.name.as_str()) {
                    assert_eq!(out_inits[t.name.as_str()], t, "{variant}: {}", t.name);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming: the same model as the whole-model (in-memory) path
// ---------------------------------------------------------------------------------------------

/// What the whole-model path makes of `source`: `read_model` (everything decoded),
/// `convert_model`, prost's encoding.
fn whole_model_variant(source: &Path, variant: OnnxVariant) -> (ModelProto, ModelRewrite) {
    let mut model = read_model(source).unwrap();
    let rewrite = convert_model(&mut model, variant, source).unwrap();
    (model, rewrite)
}

/// `streamed` (a file `convert` wrote) against the whole-model path's `expected`: the same
/// nodes, the same initializers (names, types, shapes, values) and everything else, and the
/// same bytes.
fn assert_same_model(streamed: &Path, expected: &ModelProto, what: &str) {
    let bytes = std::fs::read(streamed).unwrap();
    let got = ModelProto::decode(bytes.as_slice()).unwrap();
    let (g, e) = (
        got.graph.as_ref().unwrap(),
        expected.graph.as_ref().unwrap(),
    );
    assert_eq!(g.node, e.node, "{what}: nodes");
    let names = |g: &GraphProto| -> Vec<(String, i32, Vec<i64>)> {
        g.initializer
            .iter()
            .map(|t| (t.name.clone(), t.data_type, t.dims.clone()))
            .collect()
    };
    assert_eq!(
        names(g),
        names(e),
        "{what}: initializer names, types, shapes"
    );
    for (a, b) in g.initializer.iter().zip(&e.initializer) {
        assert!(a == b, "{what}: initializer `{}` differs", a.name);
    }
    assert_eq!(got, *expected, "{what}: the rest of the model");
    assert!(
        bytes == expected.encode_to_vec(),
        "{what}: same model, but not the bytes prost writes"
    );
}

/// A model whose initializers exercise every way the streaming reader and writer can meet a
/// tensor: `raw_data` and `float_data` weights, a doc string, an `int64_data` tensor, float64,
/// names that collide with the ones the converter picks, model metadata.
fn assorted_model(opset: i64) -> ModelProto {
    let mut model = synthetic_model(opset);
    let g = model.graph.as_mut().unwrap();
    // W2 in float_data instead of raw_data, with a doc string.
    let w2 = g.initializer.iter_mut().find(|t| t.name == "W2").unwrap();
    w2.float_data = w2
        .raw_data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    w2.raw_data.clear();
    w2.doc_string = "Gemm weight stored as float_data".into();
    // W3 carries a doc string; a name the converter would pick is taken already.
    g.initializer
        .iter_mut()
        .find(|t| t.name == "W3")
        .unwrap()
        .doc_string = "MatMul weight".into();
    g.value_info.push(value("W3_quantized", &[64, 48]));
    g.value_info.push(value("W3_fp16", &[64, 48]));
    // Unused extras of other types.
    g.initializer.push(TensorProto {
        name: "shape".into(),
        dims: vec![2],
        data_type: DataType::Int64 as i32,
        int64_data: vec![1, -1],
        ..TensorProto::default()
    });
    g.initializer.push(TensorProto {
        name: "D".into(),
        dims: vec![20],
        data_type: DataType::Double as i32,
        double_data: (0..20).map(f64::from).collect(),
        ..TensorProto::default()
    });
    model.doc_string = "assorted".into();
    model.metadata_props.push(pb::StringStringEntryProto {
        key: "k".into(),
        value: "v".into(),
    });
    model
}

#[test]
fn streamed_output_equals_the_whole_model_path_on_synthetic_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut op11 = assorted_model(11);
    op11.graph.as_mut().unwrap().node.push(node(
        "Unsqueeze",
        &["y4"],
        &["u"],
        vec![ints_attr("axes", &[0])],
    ));
    op11.graph
        .as_mut()
        .unwrap()
        .output
        .push(value("u", &[1, 1, 64]));
    let cases = [
        ("synthetic", synthetic_model(13)),
        ("assorted", assorted_model(13)),
        ("assorted-op11", op11),
    ];
    for (name, model) in cases {
        let source = write_model(dir.path(), &format!("{name}.onnx"), &model);
        for variant in OnnxVariant::ALL {
            let out = dir.path().join(format!("{name}.{variant}.onnx"));
            let report = convert(&source, &out, variant).unwrap();
            let (expected, rewrite) = whole_model_variant(&source, variant);
            assert_same_model(&out, &expected, &format!("{name} {variant}"));
            assert_eq!(report.tensors_converted, rewrite.tensors_converted);
            assert_eq!(report.nodes_added, rewrite.nodes_added);
            assert_eq!(
                report.converted_bytes_before,
                rewrite.converted_bytes_before
            );
            assert_eq!(report.converted_bytes_after, rewrite.converted_bytes_after);
            assert_eq!(report.kept_float_bytes, rewrite.kept_float_bytes);
            assert_eq!(report.largest_kept, rewrite.largest_kept);
            assert_eq!(report.opset_changes, rewrite.opset_changes);
            assert_eq!(report.bytes_after, std::fs::metadata(&out).unwrap().len());
            // The structure-only read is the whole read without tensor data.
            let mut whole = read_model(&out).unwrap();
            for t in &mut whole.graph.as_mut().unwrap().initializer {
                t.raw_data.clear();
                t.float_data.clear();
                t.int64_data.clear();
                t.double_data.clear();
            }
            assert_eq!(read_model_structure(&out).unwrap(), whole);
        }
    }
}

#[test]
fn streamed_output_equals_the_whole_model_path_on_piper_and_the_ocr_detector() {
    let Some(paths) = model_files(
        "streamed_output_equals_the_whole_model_path",
        &[PIPER, OCR_DET],
    ) else {
        return;
    };
    for source in &paths {
        for variant in OnnxVariant::ALL {
            let out = variant_of(source, variant);
            let (expected, _) = whole_model_variant(source, variant);
            let what = format!("{} {variant}", source.display());
            assert_same_model(&out, &expected, &what);
            eprintln!("{what}: streamed output is byte-identical to the whole-model path");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Piper: size and intelligibility (ONNX Runtime through the Piper engine, whisper to listen)
// ---------------------------------------------------------------------------------------------

const SENTENCES: &[&str] = &[
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is sunny with a light breeze from the west.",
    "I would like to book a table for dinner tonight.",
    "Our train leaves the station early in the morning.",
    "The children played football in the park after school.",
];

/// Loads ONNX Runtime (once per process) for the Piper engine.
fn runtime(test: &str) -> bool {
    let Some(paths) = model_files(test, &[RUNTIME]) else {
        return false;
    };
    switchyard_engine_onnx::init_runtime(&paths[0]).unwrap();
    true
}

#[test]
fn piper_int8_is_at_most_35_percent_and_transcribes_with_wer_at_most_15_percent() {
    use switchyard_engine_onnx::piper::{PiperVoice, SynthesisOptions};
    use switchyard_engine_whisper::{locate_worker, TranscribeOptions, WhisperConfig, WhisperHost};
    let test = "piper_int8_size_and_wer";
    let Some(paths) = model_files(test, &[PIPER, PIPER_CONFIG, WHISPER]) else {
        return;
    };
    if !runtime(test) {
        return;
    }
    let worker = match locate_worker(None) {
        Ok(w) => w,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "FAILED {test}: {e}");
            eprintln!("SKIPPED {test}: {e} (cargo build --release -p switchyard-whisper-worker)");
            return;
        }
    };
    let (source, config, ggml) = (&paths[0], &paths[1], &paths[2]);
    let mut whisper = WhisperConfig::new(ggml);
    whisper.worker_exe = Some(worker);
    whisper.threads = 2;
    let host = WhisperHost::start(whisper).unwrap();

    let source_bytes = std::fs::metadata(source).unwrap().len();
    let mut failures = Vec::new();
    for model in [
        source.clone(),
        variant_of(source, OnnxVariant::Int8PerChannel),
        variant_of(source, OnnxVariant::Int8PerTensorSymmetric),
    ] {
        let label = model.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::metadata(&model).unwrap().len();
        let ratio = bytes as f64 / source_bytes as f64;
        let voice = PiperVoice::load(&model, config, 2).unwrap();
        let (mut errors, mut total) = (0, 0);
        for sentence in SENTENCES {
            let audio = voice
                .synthesize(sentence, &SynthesisOptions::default())
                .unwrap();
            let samples = resample(
                audio.as_slice::<f32>().unwrap(),
                voice.sample_rate(),
                16_000,
            );
            let n = samples.len();
            let tensor = Tensor::from_vec(samples, &[n]).unwrap();
            let t = host
                .transcribe(&tensor, &TranscribeOptions::default(), &CopyLedger::new())
                .unwrap();
            let (r, h) = (words(sentence), words(&t.text));
            let e = edit_distance(&r, &h);
            eprintln!("  [{e}/{}] {sentence:?} -> {:?}", r.len(), t.text.trim());
            errors += e;
            total += r.len();
        }
        let wer = errors as f64 / total as f64;
        eprintln!(
            "{label}: {bytes} bytes ({:.1}% of the source), WER {:.1}% ({errors}/{total} words, \
             {} sentences)",
            ratio * 100.0,
            wer * 100.0,
            SENTENCES.len()
        );
        if &model != source {
            if ratio > 0.35 {
                failures.push(format!(
                    "{label}: {:.1}% of the source > 35%",
                    ratio * 100.0
                ));
            }
            if wer > 0.15 {
                failures.push(format!("{label}: WER {:.1}% > 15%", wer * 100.0));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The voice's `.onnx.json` with noise off (noise_scale = noise_w = 0), so a synthesis is
/// deterministic and variants can be compared sample by sample.
fn noiseless_config(config: &Path, dir: &Path) -> PathBuf {
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    json["inference"]["noise_scale"] = 0.0.into();
    json["inference"]["noise_w"] = 0.0.into();
    let path = dir.join("noiseless.onnx.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    path
}

/// Loudness of 256-sample frames (Piper's hop) in dB, floored at -80 dB.
fn loudness_db(x: &[f32]) -> Vec<f64> {
    x.chunks(256)
        .map(|c| {
            let ms = c.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / c.len() as f64;
            10.0 * ms.max(1e-8).log10()
        })
        .collect()
}

/// Dynamic time warping of two loudness tracks (cost |a - b|, steps right, down, diagonal);
/// returns the aligned frame pairs. A variant may give a phoneme one frame more or less than
/// the source (the duration predictor rounds up), which shifts everything after it; aligning
/// first compares what was said rather than when.
fn dtw_pairs(a: &[f64], b: &[f64]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut cost = vec![f64::INFINITY; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    cost[at(0, 0)] = 0.0;
    for i in 1..=n {
        for j in 1..=m {
            let best = cost[at(i - 1, j - 1)]
                .min(cost[at(i - 1, j)])
                .min(cost[at(i, j - 1)]);
            cost[at(i, j)] = (a[i - 1] - b[j - 1]).abs() + best;
        }
    }
    let (mut i, mut j) = (n, m);
    let mut pairs = Vec::with_capacity(n + m);
    while i > 0 && j > 0 {
        pairs.push((i - 1, j - 1));
        let diag = cost[at(i - 1, j - 1)];
        let up = cost[at(i - 1, j)];
        let left = cost[at(i, j - 1)];
        if diag <= up && diag <= left {
            i -= 1;
            j -= 1;
        } else if up <= left {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa.sqrt() * sbb.sqrt()).max(1e-30)
}

/// Correlation and mean absolute difference (dB) of two loudness tracks after alignment.
fn aligned_loudness(a: &[f32], b: &[f32]) -> (f64, f64) {
    let (la, lb) = (loudness_db(a), loudness_db(b));
    let pairs = dtw_pairs(&la, &lb);
    let xa: Vec<f64> = pairs.iter().map(|&(i, _)| la[i]).collect();
    let xb: Vec<f64> = pairs.iter().map(|&(_, j)| lb[j]).collect();
    let mean_db = xa.iter().zip(&xb).map(|(x, y)| (x - y).abs()).sum::<f64>() / xa.len() as f64;
    (pearson(&xa, &xb), mean_db)
}

#[test]
fn piper_variants_match_the_source_in_onnx_runtime() {
    use switchyard_engine_onnx::piper::{PiperVoice, SynthesisOptions};
    let test = "piper_variants_match_the_source";
    let Some(paths) = model_files(test, &[PIPER, PIPER_CONFIG]) else {
        return;
    };
    if !runtime(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = noiseless_config(&paths[1], dir.path());
    let synth = |voice: &PiperVoice| -> Vec<Vec<f32>> {
        SENTENCES[..3]
            .iter()
            .map(|s| {
                voice
                    .synthesize(s, &SynthesisOptions::default())
                    .unwrap()
                    .as_slice::<f32>()
                    .unwrap()
                    .to_vec()
            })
            .collect()
    };
    let reference = synth(&PiperVoice::load(&paths[0], &config, 2).unwrap());
    // Same noiseless source twice: bit-for-bit (the comparison below is meaningful).
    assert_eq!(
        reference[0],
        synth(&PiperVoice::load(&paths[0], &config, 2).unwrap())[0]
    );
    // Tolerances, per sentence: lengths within 2% (FP16) / 5% (INT8); frame loudness (dB),
    // aligned by dynamic time warping, correlated ≥ 0.995 (FP16) / ≥ 0.98 (INT8) with a mean
    // difference ≤ 0.5 dB (FP16) / ≤ 1.5 dB (INT8). Where a variant's audio has exactly the
    // source's length (no phoneme duration rounded differently), the waveform itself is
    // compared too: cosine ≥ 0.99 for FP16 (reported for INT8); FP16 must match that way on at
    // least one sentence.
    let mut failures = Vec::new();
    for variant in OnnxVariant::ALL {
        let model = variant_of(&paths[0], variant);
        let got = synth(&PiperVoice::load(&model, &config, 2).unwrap());
        let mut same_length = 0;
        for (i, (a, b)) in reference.iter().zip(&got).enumerate() {
            let len_ratio = b.len() as f64 / a.len() as f64;
            let (r, mean_db) = aligned_loudness(a, b);
            let cosine = (a.len() == b.len()).then(|| compare(a, b).1);
            eprintln!(
                "{variant} sentence {i}: {} vs {} samples (ratio {len_ratio:.4}), aligned \
                 loudness r {r:.4}, mean |diff| {mean_db:.2} dB, waveform cosine {}",
                a.len(),
                b.len(),
                cosine.map_or("(lengths differ)".into(), |c| format!("{c:.5}"))
            );
            let (max_len, min_r, max_db) = match variant {
                OnnxVariant::Fp16 => (0.02, 0.995, 0.5),
                _ => (0.05, 0.98, 1.5),
            };
            let mut ok = (len_ratio - 1.0).abs() <= max_len && r >= min_r && mean_db <= max_db;
            if let (OnnxVariant::Fp16, Some(c)) = (variant, cosine) {
                same_length += 1;
                ok &= c >= 0.99;
            }
            if !ok {
                failures.push(format!(
                    "{variant} sentence {i}: length ratio {len_ratio:.4}, loudness r {r:.4}, \
                     {mean_db:.2} dB, cosine {cosine:?}"
                ));
            }
        }
        if variant == OnnxVariant::Fp16 && same_length == 0 {
            failures.push("fp16: no sentence came out with the source's length".into());
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// OCR detector: same text through tract, same probability maps in ONNX Runtime
// ---------------------------------------------------------------------------------------------

fn font(name: &str) -> ab_glyph::FontVec {
    let path = format!("/usr/share/fonts/truetype/dejavu/{name}.ttf");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("font {path}: {e}"));
    ab_glyph::FontVec::try_from_vec(bytes).unwrap()
}

/// Black `lines` on white, `px` pixels high, `margin` pixels around (as the tract OCR tests).
fn render(lines: &[&str], font_name: &str, px: f32, margin: u32) -> image::RgbImage {
    use imageproc::drawing::{draw_text_mut, text_size};
    let font = font(font_name);
    let line_height = (px * 1.6).ceil() as u32;
    let width = lines
        .iter()
        .map(|l| text_size(px, &font, l).0)
        .max()
        .unwrap_or(0);
    let mut image = image::RgbImage::from_pixel(
        width + 2 * margin,
        line_height * lines.len() as u32 + 2 * margin,
        image::Rgb([255, 255, 255]),
    );
    for (i, line) in lines.iter().enumerate() {
        let y = margin + i as u32 * line_height + (line_height - px as u32) / 2;
        draw_text_mut(
            &mut image,
            image::Rgb([0, 0, 0]),
            margin as i32,
            y as i32,
            px,
            &font,
            line,
        );
    }
    image
}

/// The OCR test images: five single lines in three fonts, a block of three lines, a
/// two-column table.
fn ocr_images() -> Vec<(String, image::RgbImage)> {
    let mut images: Vec<(String, image::RgbImage)> = [
        ("DejaVuSans", 32.0, "Invoice 2024-07 total: 129.50 EUR"),
        (
            "DejaVuSerif",
            28.0,
            "The quick brown fox jumps over 13 lazy dogs.",
        ),
        ("DejaVuSansMono", 24.0, "Shipped order #4521 on May 3rd!"),
        ("DejaVuSans", 20.0, "Call us at 555-0199 today"),
        ("DejaVuSerif", 48.0, "Hello, World 42"),
    ]
    .into_iter()
    .map(|(f, px, text)| (format!("{f} {px}px"), render(&[text], f, px, 24)))
    .collect();
    images.push((
        "three lines".into(),
        render(
            &[
                "Shipping address:",
                "42 Baker Street, London",
                "Phone 020 7946 0018",
            ],
            "DejaVuSans",
            30.0,
            40,
        ),
    ));
    let left = render(&["Name", "Price"], "DejaVuSans", 30.0, 20);
    let right = render(&["Coffee", "3.20"], "DejaVuSans", 30.0, 20);
    let mut table = image::RgbImage::from_pixel(
        left.width() + right.width() + 120,
        left.height().max(right.height()),
        image::Rgb([255, 255, 255]),
    );
    image::imageops::replace(&mut table, &left, 0, 0);
    image::imageops::replace(&mut table, &right, i64::from(left.width()) + 120, 0);
    images.push(("two columns".into(), table));
    images
}

#[test]
fn ocr_detector_variants_read_the_same_text_in_tract() {
    use switchyard_engine_tract::ocr::{join_text, OcrModel};
    let Some(paths) = model_files("ocr_detector_variants_same_text", &[OCR_DET, OCR_REC]) else {
        return;
    };
    let read_all = |det: &Path| -> Vec<String> {
        let model = OcrModel::load(det, &paths[1]).unwrap();
        ocr_images()
            .into_iter()
            .map(|(_, image)| {
                let (w, h) = (image.width() as usize, image.height() as usize);
                let tensor = Tensor::from_vec(image.into_raw(), &[h, w, 3]).unwrap();
                join_text(&model.recognize(&tensor, &CopyLedger::new()).unwrap())
            })
            .collect()
    };
    let reference = read_all(&paths[0]);
    let names: Vec<String> = ocr_images().into_iter().map(|(n, _)| n).collect();
    let mut failures = Vec::new();
    for variant in OnnxVariant::ALL {
        let det = variant_of(&paths[0], variant);
        let got = read_all(&det);
        for ((name, want), have) in names.iter().zip(&reference).zip(&got) {
            eprintln!("{variant} {name}: {have:?}");
            if want != have {
                failures.push(format!(
                    "{variant} {name}: source {want:?}, variant {have:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Environment variable that turns [`ort_child_detector_parity`] on in the child process.
const ORT_CHILD: &str = "SWITCHYARD_TEST_ORT_CHILD";

#[test]
fn ocr_detector_variants_match_the_source_in_onnx_runtime() {
    let Some(_) = model_files("ocr_detector_variants_in_onnx_runtime", &[OCR_DET, RUNTIME]) else {
        return;
    };
    // A process holds one ONNX Runtime environment, and this test binary's belongs to the
    // Piper engine: the raw `ort` sessions run in a child process (this binary, filtered to
    // the ignored test below).
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ort_child_detector_parity",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ORT_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// Runs in the child process started by `ocr_detector_variants_match_the_source_in_onnx_runtime`.
#[test]
#[ignore = "run by ocr_detector_variants_match_the_source_in_onnx_runtime in a child process"]
fn ort_child_detector_parity() {
    if std::env::var_os(ORT_CHILD).is_none() {
        eprintln!("not in the child process: nothing to do");
        return;
    }
    use ort::session::Session;
    use ort::value::TensorRef;
    let paths = model_files("ort_child_detector_parity", &[OCR_DET, RUNTIME]).unwrap();
    let env = ort::init_from(&paths[1])
        .unwrap()
        .with_name("switchyard-test")
        .with_telemetry(false)
        .build()
        .unwrap();
    let session = |path: &Path| -> Session {
        Session::builder(&env)
            .unwrap()
            .with_intra_threads(2)
            .unwrap()
            .commit_from_file(path)
            .unwrap()
    };
    // Inputs: the OCR test images padded to multiples of 32 with white, normalised like the
    // detector (ImageNet mean/std, planar; the images are grey, so BGR vs RGB is moot).
    let mean = [0.485f32, 0.456, 0.406];
    let std = [0.229f32, 0.224, 0.225];
    let inputs: Vec<(String, [usize; 4], Vec<f32>)> = ocr_images()
        .into_iter()
        .map(|(name, image)| {
            let (w, h) = (image.width() as usize, image.height() as usize);
            let (pw, ph) = (w.div_ceil(32) * 32, h.div_ceil(32) * 32);
            let mut data = vec![0f32; 3 * pw * ph];
            for c in 0..3 {
                for y in 0..ph {
                    for x in 0..pw {
                        let v = if x < w && y < h {
                            f32::from(image.get_pixel(x as u32, y as u32)[c])
                        } else {
                            255.0
                        };
                        data[(c * ph + y) * pw + x] = (v / 255.0 - mean[c]) / std[c];
                    }
                }
            }
            (name, [1, 3, ph, pw], data)
        })
        .collect();
    let run = |s: &mut Session, shape: [usize; 4], data: &[f32]| -> Vec<f32> {
        let name = s.inputs()[0].name().to_owned();
        let input = TensorRef::from_array_view((shape, data)).unwrap();
        let outputs = s.run(ort::inputs![name => input]).unwrap();
        let (_, out) = outputs[0].try_extract_tensor::<f32>().unwrap();
        out.to_vec()
    };
    let mut source = session(&paths[0]);
    let reference: Vec<Vec<f32>> = inputs
        .iter()
        .map(|(_, shape, data)| run(&mut source, *shape, data))
        .collect();
    // Tolerances on the probability map (values 0..1), per image. "mask" is the share of the
    // source's text pixels (p > 0.3, the DB threshold) whose side of the threshold changes.
    // The largest single-pixel difference sits on a text edge; it is reported, and bounded
    // for FP16 only.
    // - FP16:             max |diff| ≤ 0.05, mean |diff| ≤ 0.0005, cosine ≥ 0.9999, mask ≤ 0.5%
    // - INT8 per channel: mean |diff| ≤ 0.003, cosine ≥ 0.998, mask ≤ 2%
    // - INT8 per tensor:  mean |diff| ≤ 0.01, cosine ≥ 0.975, mask ≤ 10% (one scale for a whole
    //   depthwise kernel is coarse; the text read is still the same, see the tract test)
    let mut failures = Vec::new();
    for variant in OnnxVariant::ALL {
        let mut s = session(&variant_of(&paths[0], variant));
        for ((name, shape, data), want) in inputs.iter().zip(&reference) {
            let got = run(&mut s, *shape, data);
            let (max_abs, cosine) = compare(want, &got);
            let mean_abs = want
                .iter()
                .zip(&got)
                .map(|(a, b)| f64::from((a - b).abs()))
                .sum::<f64>()
                / want.len() as f64;
            let text_pixels = want.iter().filter(|&&p| p > 0.3).count().max(1);
            let mask_diff = want
                .iter()
                .zip(&got)
                .filter(|(a, b)| (**a > 0.3) != (**b > 0.3))
                .count();
            let mask_frac = mask_diff as f64 / text_pixels as f64;
            eprintln!(
                "{variant} {name}: max |diff| {max_abs:.4}, mean |diff| {mean_abs:.5}, cosine \
                 {cosine:.5}, mask {mask_diff}/{text_pixels} ({:.2}%)",
                mask_frac * 100.0
            );
            let ok = match variant {
                OnnxVariant::Fp16 => {
                    max_abs <= 0.05 && mean_abs <= 0.0005 && cosine >= 0.9999 && mask_frac <= 0.005
                }
                OnnxVariant::Int8PerChannel => {
                    mean_abs <= 0.003 && cosine >= 0.998 && mask_frac <= 0.02
                }
                OnnxVariant::Int8PerTensorSymmetric => {
                    mean_abs <= 0.01 && cosine >= 0.975 && mask_frac <= 0.10
                }
            };
            if !ok {
                failures.push(format!(
                    "{variant} {name}: max {max_abs}, mean {mean_abs}, cosine {cosine}, mask {mask_frac}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
