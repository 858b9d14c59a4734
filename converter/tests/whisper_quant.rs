//! whisper.cpp ggml F16 → Q8_0 (`switchyard_converter::whisper_quant`), verified.
//!
//! Without model files: Q8_0 blocks bit for bit equal to ggml's own `ggml_quantize_chunk`
//! (the llama.cpp build the converter links; whisper.cpp's ggml has the same
//! `quantize_row_q8_0_ref`); a small synthetic whisper ggml file quantised tensor by tensor as
//! whisper.cpp's `quantize` tool does it (which tensors, header `ftype` 2007), byte-identical
//! to a re-implementation of that tool over ggml's quantizer; an all-f32 source; clear errors
//! (and nothing left behind) for truncated, foreign, already-quantised and unquantisable
//! files; and `plan`/`build` making the `whisper.cpp.q8_0` artifact for cpu-x86 and no other
//! shipped profile.
//!
//! With the fetched models (`$SWITCHYARD_MODELS_DIR` or `~/.cache/switchyard/models`; a missing
//! model skips a test with a message, and fails it when `CI` is set): whisper tiny.en's Q8_0
//! file is byte-identical to the tool's, at most 60% of the F16 file, and loads in whisper.cpp
//! (the `switchyard-whisper-worker` binary, which must be built:
//! `cargo build --release -p switchyard-whisper-worker`) and transcribes 12 espeak-ng
//! sentences with WER ≤ 10% and at most 5 points above the F16 file's.
//!
//! Run: `cargo test --release -p switchyard-converter --test whisper_quant -- --nocapture`.
//! The real-time-factor comparison (60 s of speech, F16 vs Q8_0, alternating) is `--ignored`:
//! run it alone on an idle machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use half::f16;
use switchyard_converter::whisper_quant::{
    quantize, quantize_q8_0, read_header, WhisperQuantError, WhisperQuantReport, WhisperQuantType,
    BLOCK_Q8_0_BYTES, QK8_0,
};
use switchyard_core::{CopyLedger, Manifest, Tensor};
use switchyard_testkit::noise;
use switchyard_testkit::speech::speak;
use switchyard_testkit::speech::SENTENCES;
use switchyard_testkit::wer::{edit_distance, words};

const Q8_0: WhisperQuantType = WhisperQuantType::Q8_0;

// ---------------------------------------------------------------------------------------------
// ggml's quantizer as the reference
// ---------------------------------------------------------------------------------------------

/// `rows` rows of `row` values quantised to Q8_0 by ggml's `ggml_quantize_chunk`.
fn ggml_q8_0(values: &[f32], row: usize) -> Vec<u8> {
    assert_eq!(values.len() % row, 0);
    let rows = values.len() / row;
    let mut out = vec![0u8; values.len() / QK8_0 * BLOCK_Q8_0_BYTES];
    // SAFETY: `values` holds rows × row floats and `out` has room for their Q8_0 blocks;
    // Q8_0 takes no importance matrix.
    let written = unsafe {
        llama_cpp_sys_2::ggml_quantize_chunk(
            llama_cpp_sys_2::GGML_TYPE_Q8_0,
            values.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            rows as i64,
            row as i64,
            std::ptr::null(),
        )
    };
    assert_eq!(written, out.len());
    out
}

#[test]
fn q8_0_blocks_equal_ggml_quantize_chunk_bit_for_bit() {
    let mut values = noise(64 * 1024, 7);
    // Scales across f16's range (normal and subnormal d), exact halves, zeros, one-hot blocks.
    for (b, block) in values.chunks_mut(QK8_0).enumerate() {
        let scale = match b % 8 {
            0 => 1e-6,
            1 => 1e-3,
            2 => 0.05,
            3 => 3.0,
            4 => 4000.0,
            _ => 1.0,
        };
        for v in block.iter_mut() {
            *v *= scale;
        }
        match b % 11 {
            5 => block.fill(0.0),
            6 => {
                block.fill(0.0);
                block[3] = -2.5;
            }
            7 => {
                for (j, v) in block.iter_mut().enumerate() {
                    *v = (j as f32 - 16.0) * 0.5; // d = 8/127: many values near halves
                }
            }
            _ => {}
        }
    }
    let mut ours = Vec::new();
    quantize_q8_0(&values, &mut ours);
    let theirs = ggml_q8_0(&values, 1024);
    assert_eq!(ours.len(), theirs.len());
    let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
    assert!(first.is_none(), "first differing byte {first:?}");
}

// ---------------------------------------------------------------------------------------------
// A whisper ggml file, read and written independently of the converter
// ---------------------------------------------------------------------------------------------

const MAGIC: u32 = 0x6767_6d6c;

/// One tensor of a synthetic model: name, ne (innermost first), f32 (else f16), values.
struct SynthTensor {
    name: &'static str,
    ne: Vec<usize>,
    f32: bool,
    values: Vec<f32>,
}

fn synth_tensors(row: usize, all_f32: bool) -> Vec<SynthTensor> {
    let d = row;
    let t = |name, ne: Vec<usize>, f32: bool, seed| {
        let n = ne.iter().product();
        SynthTensor {
            name,
            ne,
            f32: f32 || all_f32,
            values: noise(n, seed).iter().map(|v| v * 0.2).collect(),
        }
    };
    vec![
        t("encoder.positional_embedding", vec![d, 6], true, 1),
        t("encoder.conv1.weight", vec![3, 4, d], false, 2),
        t("encoder.conv1.bias", vec![1, d], true, 3),
        t("encoder.ln_post.weight", vec![d], true, 4),
        t("decoder.positional_embedding", vec![d, 5], true, 5),
        t("decoder.token_embedding.weight", vec![d, 9], false, 6),
        t("encoder.blocks.0.attn.query.weight", vec![d, d], false, 7),
        t("encoder.blocks.0.attn.query.bias", vec![d], true, 8),
        t("encoder.blocks.0.mlp.0.weight", vec![d, 4 * d], false, 9),
    ]
}

/// A whisper.cpp ggml file with `tensors` (header ftype 1, or 0 when every tensor is f32).
fn ggml_file(tensors: &[SynthTensor]) -> Vec<u8> {
    let mut b = Vec::new();
    let put = |b: &mut Vec<u8>, v: u32| b.extend_from_slice(&v.to_le_bytes());
    let ftype = u32::from(!tensors.iter().all(|t| t.f32));
    for v in [MAGIC, 12, 6, 64, 1, 1, 5, 64, 1, 1, 4, ftype] {
        put(&mut b, v);
    }
    put(&mut b, 2); // n_mel
    put(&mut b, 3); // n_fft
    for i in 0..6 {
        b.extend_from_slice(&(i as f32 * 0.25).to_le_bytes());
    }
    let vocab: [&[u8]; 3] = [b"a", b" the", b"<|endoftext|>"];
    put(&mut b, vocab.len() as u32);
    for token in vocab {
        put(&mut b, token.len() as u32);
        b.extend_from_slice(token);
    }
    for t in tensors {
        put(&mut b, t.ne.len() as u32);
        put(&mut b, t.name.len() as u32);
        put(&mut b, if t.f32 { 0 } else { 1 });
        for d in &t.ne {
            put(&mut b, *d as u32);
        }
        b.extend_from_slice(t.name.as_bytes());
        for v in &t.values {
            if t.f32 {
                b.extend_from_slice(&v.to_le_bytes());
            } else {
                b.extend_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
    }
    b
}

/// A parsed tensor record: name, ne, ggml type, data.
struct Record {
    name: String,
    ne: Vec<usize>,
    ttype: u32,
    data: Vec<u8>,
}

fn word(b: &[u8], at: &mut usize) -> u32 {
    let v = u32::from_le_bytes(b[*at..*at + 4].try_into().unwrap());
    *at += 4;
    v
}

/// The header words (12), the mel + vocabulary bytes, and the tensor records of a ggml file.
fn read_ggml(b: &[u8]) -> (Vec<u32>, Vec<u8>, Vec<Record>) {
    let mut at = 0;
    let header: Vec<u32> = (0..12).map(|_| word(b, &mut at)).collect();
    assert_eq!(header[0], MAGIC);
    let body_start = at;
    let (n_mel, n_fft) = (word(b, &mut at), word(b, &mut at));
    at += (n_mel * n_fft * 4) as usize;
    let n_vocab = word(b, &mut at);
    for _ in 0..n_vocab {
        at += word(b, &mut at) as usize;
    }
    let body = b[body_start..at].to_vec();
    let mut records = Vec::new();
    while at < b.len() {
        let n_dims = word(b, &mut at) as usize;
        let len = word(b, &mut at) as usize;
        let ttype = word(b, &mut at);
        let ne: Vec<usize> = (0..n_dims).map(|_| word(b, &mut at) as usize).collect();
        let name = String::from_utf8(b[at..at + len].to_vec()).unwrap();
        at += len;
        let n: usize = ne.iter().product();
        let size = match ttype {
            0 => n * 4,
            1 => n * 2,
            8 => n / 32 * 34,
            other => panic!("type {other}"),
        };
        records.push(Record {
            name,
            ne,
            ttype,
            data: b[at..at + size].to_vec(),
        });
        at += size;
    }
    (header, body, records)
}

/// What whisper.cpp's `quantize` tool writes for `input` and Q8_0
/// (`examples/quantize/quantize.cpp` + `ggml_common_quantize_0`), with ggml's quantizer.
fn whisper_cpp_quantize_tool(input: &[u8]) -> Vec<u8> {
    const TO_SKIP: [&str; 4] = [
        "encoder.conv1.bias",
        "encoder.conv2.bias",
        "encoder.positional_embedding",
        "decoder.positional_embedding",
    ];
    let (header, body, records) = read_ggml(input);
    let mut out = Vec::new();
    for (i, h) in header.iter().enumerate() {
        // ftype_dst = GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + GGML_FTYPE_MOSTLY_Q8_0
        let v = if i == 11 { 2 * 1000 + 7 } else { *h };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&body);
    for r in records {
        let quantize = r.ne.len() == 2 && !TO_SKIP.contains(&r.name.as_str());
        let ttype = if quantize { 8 } else { r.ttype };
        for v in [r.ne.len() as u32, r.name.len() as u32, ttype] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for d in &r.ne {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.extend_from_slice(r.name.as_bytes());
        if quantize {
            let values: Vec<f32> = match r.ttype {
                1 => r
                    .data
                    .chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                _ => r
                    .data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            };
            out.extend_from_slice(&ggml_q8_0(&values, r.ne[0]));
        } else {
            out.extend_from_slice(&r.data);
        }
    }
    out
}

fn partials_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("partial"))
        .collect()
}

fn print_report(r: &WhisperQuantReport) {
    eprintln!(
        "{} -> {} ({}): {} tensors, {} quantised, {} to f16, {} kept; {} -> {} bytes ({:.1}%), \
         {:.3} s, {:.1} MB/s, max error {:.4} of the block max, RMS {:.3}%",
        r.input.display(),
        r.output.display(),
        r.target,
        r.tensors,
        r.tensors_quantized,
        r.tensors_to_f16,
        r.tensors_kept,
        r.bytes_before,
        r.bytes_after,
        100.0 * r.bytes_after as f64 / r.bytes_before as f64,
        r.seconds,
        r.mb_per_s,
        r.max_block_error,
        r.rms_relative_error * 100.0
    );
}

#[test]
fn synthetic_model_is_quantised_as_whisper_cpp_quantize_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ggml-model.bin");
    let source = ggml_file(&synth_tensors(64, false));
    std::fs::write(&input, &source).unwrap();
    let output = dir.path().join("out/ggml-model.q8_0.bin");
    let report = quantize(&input, &output, Q8_0).unwrap();
    print_report(&report);
    let written = std::fs::read(&output).unwrap();
    assert_eq!(written, whisper_cpp_quantize_tool(&source));

    let (header, _, records) = read_ggml(&written);
    assert_eq!(
        header[11], 2007,
        "GGML_QNT_VERSION 2 × 1000 + MOSTLY_Q8_0 7"
    );
    let types: Vec<(&str, u32)> = records.iter().map(|r| (r.name.as_str(), r.ttype)).collect();
    assert_eq!(
        types,
        [
            ("encoder.positional_embedding", 0),
            ("encoder.conv1.weight", 1),
            ("encoder.conv1.bias", 0),
            ("encoder.ln_post.weight", 0),
            ("decoder.positional_embedding", 0),
            ("decoder.token_embedding.weight", 8),
            ("encoder.blocks.0.attn.query.weight", 8),
            ("encoder.blocks.0.attn.query.bias", 0),
            ("encoder.blocks.0.mlp.0.weight", 8),
        ]
    );
    assert_eq!(
        (
            report.tensors,
            report.tensors_quantized,
            report.tensors_kept,
            report.tensors_to_f16
        ),
        (9, 3, 6, 0)
    );
    assert_eq!(report.ftype_before, 1);
    assert_eq!(report.ftype_after, 2007);
    assert_eq!(report.bytes_after, written.len() as u64);
    assert!(report.max_block_error <= 0.5 / 127.0 + 1.0 / 2048.0);
    assert_eq!(
        read_header(&output).unwrap().precision(),
        Some("q8_0"),
        "the header names the precision"
    );
    assert_eq!(read_header(&input).unwrap().precision(), Some("fp16"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&output).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    assert!(partials_in(&dir.path().join("out")).is_empty());
}

#[test]
fn all_f32_source_gets_f16_conv_weights() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("f32.bin");
    let tensors = synth_tensors(32, true);
    std::fs::write(&input, ggml_file(&tensors)).unwrap();
    let output = dir.path().join("q8.bin");
    let report = quantize(&input, &output, Q8_0).unwrap();
    assert_eq!(report.ftype_before, 0);
    assert_eq!(report.tensors_to_f16, 1);
    let (_, _, records) = read_ggml(&std::fs::read(&output).unwrap());
    let conv = records
        .iter()
        .find(|r| r.name == "encoder.conv1.weight")
        .unwrap();
    assert_eq!(conv.ttype, 1, "whisper.cpp reads conv weights as f16");
    let source = &tensors[1].values;
    let got: Vec<f32> = conv
        .data
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    let expected: Vec<f32> = source.iter().map(|v| f16::from_f32(*v).to_f32()).collect();
    assert_eq!(got, expected);
    let query = records
        .iter()
        .find(|r| r.name == "encoder.blocks.0.attn.query.weight")
        .unwrap();
    assert_eq!(query.ttype, 8);
    assert_eq!(query.data, ggml_q8_0(&tensors[6].values, 32));
}

#[test]
fn bad_inputs_are_clear_errors_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let good = ggml_file(&synth_tensors(64, false));
    let output = dir.path().join("out.bin");
    let input = dir.path().join("in.bin");
    let run = |bytes: &[u8]| {
        std::fs::write(&input, bytes).unwrap();
        let err = quantize(&input, &output, Q8_0).unwrap_err();
        assert!(!output.exists());
        assert!(partials_in(dir.path()).is_empty());
        err
    };

    let err = run(&good[..good.len() - 10]);
    let msg = err.to_string();
    assert!(matches!(err, WhisperQuantError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("in.bin") && msg.contains("truncated") && msg.contains("mlp.0.weight"),
        "{msg}"
    );

    let err = run(b"GGUF\x03\0\0\0 this is a gguf, not a whisper.cpp file");
    assert!(err.to_string().contains("bad magic"), "{err}");

    let err = run(&[]);
    assert!(err.to_string().contains("empty"), "{err}");

    // An already quantised file is refused: no second rounding.
    std::fs::write(&input, &good).unwrap();
    let q8 = dir.path().join("q8.bin");
    quantize(&input, &q8, Q8_0).unwrap();
    let err = quantize(&q8, &output, Q8_0).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, WhisperQuantError::Unsupported { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("already quantised") && msg.contains("2007"),
        "{msg}"
    );
    assert!(!output.exists());

    // Rows that are not a multiple of 32 cannot be Q8_0, and cannot stay f16 in a Q8_0 file.
    let err = run(&ggml_file(&synth_tensors(48, false)));
    let msg = err.to_string();
    assert!(
        matches!(err, WhisperQuantError::Unsupported { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("decoder.token_embedding.weight") && msg.contains("multiple of 32"),
        "{msg}"
    );

    let err = quantize(&dir.path().join("missing.bin"), &output, Q8_0).unwrap_err();
    assert!(matches!(err, WhisperQuantError::Io { .. }));
    assert!(err.to_string().contains("missing.bin"), "{err}");

    let err = WhisperQuantType::parse("q5_0").unwrap_err();
    assert!(err.to_string().contains("q5_0"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// plan / build
// ---------------------------------------------------------------------------------------------

/// A models directory holding one speech model whose whisper.cpp file is `ggml`.
fn speech_models_dir(ggml: &[u8]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("whisper-synth");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ggml-model.bin"), ggml).unwrap();
    let manifest = Manifest {
        schema: 1,
        id: "whisper-synth".into(),
        tasks: vec!["stt".into()],
        format: "ctranslate2".into(),
        artifacts: vec![switchyard_core::Artifact {
            role: "whisper.cpp".into(),
            path: "ggml-model.bin".into(),
            size: ggml.len() as u64,
            sha256: switchyard_core::manifest::sha256_file(&dir.join("ggml-model.bin")).unwrap(),
            format: None,
            precision: None,
            engines: Vec::new(),
            source_sha256: None,
            converter: None,
            settings: None,
        }],
        source: switchyard_core::manifest::Source {
            kind: "local".into(),
            packages: Vec::new(),
            original_path: None,
        },
        license: None,
        dir: dir.clone(),
    };
    manifest.save(&dir).unwrap();
    root
}

#[test]
fn plan_and_build_make_q8_0_for_the_profiles_that_ask() {
    use switchyard_converter::plan::{plan, Conversion};
    let root = speech_models_dir(&ggml_file(&synth_tensors(64, false)));
    let models = root.path();
    let cpu = switchyard_profiles::resolve("cpu-x86").unwrap().device;
    let before = plan(&cpu, models, None).unwrap();
    let model = &before.models[0];
    assert!(model.notes.is_empty(), "{:?}", model.notes);
    let a = &model.artifacts[0];
    assert_eq!(
        (a.role.as_str(), a.precision.as_str(), a.format.as_str()),
        ("whisper.cpp.q8_0", "q8_0", "ggml")
    );
    assert_eq!(a.path, PathBuf::from("ggml-model.q8_0.bin"));
    assert_eq!(a.engines, ["whisper.cpp/cpu"]);
    assert!(!a.exists);
    assert_eq!(
        a.conversion,
        Some(Conversion::WhisperQuantize {
            from: "whisper.cpp".into(),
            target: "q8_0".into()
        })
    );

    let built = switchyard_converter::build::build(&before, models, 2, &mut |_, _| {}).unwrap();
    assert_eq!(built.len(), 1);
    eprintln!("built: {}", built[0].verified);
    let manifest = Manifest::load(&models.join("whisper-synth")).unwrap();
    manifest.verify(true).unwrap();
    let recorded = manifest.artifact("whisper.cpp.q8_0").unwrap();
    assert_eq!(recorded.precision.as_deref(), Some("q8_0"));
    assert_eq!(recorded.format.as_deref(), Some("ggml"));
    assert_eq!(recorded.engines, ["whisper.cpp/cpu"]);
    assert_eq!(
        recorded.source_sha256.as_deref(),
        Some(manifest.artifact("whisper.cpp").unwrap().sha256.as_str())
    );
    assert!(recorded
        .converter
        .as_deref()
        .unwrap()
        .starts_with("switchyard-convert "));
    assert_eq!(
        recorded.settings.as_ref().unwrap()["conversion"],
        "whisper-quantize"
    );

    // Recognised afterwards: nothing left to build.
    let after = plan(&cpu, models, None).unwrap();
    assert!(after.models[0].artifacts[0].exists);
    assert_eq!(after.missing().count(), 0);
    let again = switchyard_converter::build::build(&after, models, 2, &mut |_, _| {}).unwrap();
    assert!(again.is_empty());

    // The gateway's choice under cpu-x86 is now the Q8_0 file.
    let served = switchyard_converter::serving::choose(&cpu, &manifest, "whisper.cpp");
    assert_eq!(served[0].chosen, "whisper.cpp.q8_0");

    // Profiles that ask fp16 first keep the F16 file (read from the header: fp16).
    for name in [
        "jetson-agx-orin-64gb",
        "rtx-desktop-24gb",
        "mac-m-series-16gb",
    ] {
        let device = switchyard_profiles::resolve(name).unwrap().device;
        let p = plan(&device, models, None).unwrap();
        let a = &p.models[0].artifacts[0];
        assert_eq!(
            (a.role.as_str(), a.precision.as_str(), a.exists),
            ("whisper.cpp", "fp16", true),
            "{name}"
        );
    }

    // A box that ships only the Q8_0 file still serves it.
    std::fs::remove_file(models.join("whisper-synth/ggml-model.bin")).unwrap();
    let only = plan(&cpu, models, None).unwrap();
    let a = &only.models[0].artifacts[0];
    assert_eq!((a.role.as_str(), a.exists), ("whisper.cpp.q8_0", true));
}

#[test]
fn an_already_quantised_whisper_file_is_not_quantised_again() {
    use switchyard_converter::plan::plan;
    let dir = tempfile::tempdir().unwrap();
    let f16_file = dir.path().join("f16.bin");
    std::fs::write(&f16_file, ggml_file(&synth_tensors(64, false))).unwrap();
    let q8_file = dir.path().join("q8.bin");
    quantize(&f16_file, &q8_file, Q8_0).unwrap();
    let root = speech_models_dir(&std::fs::read(&q8_file).unwrap());
    // cpu-x86 asks q8_0 first, and the file is Q8_0 (its header says so): it serves as is.
    let cpu = switchyard_profiles::resolve("cpu-x86").unwrap().device;
    let p = plan(&cpu, root.path(), None).unwrap();
    let a = &p.models[0].artifacts[0];
    assert_eq!(
        (a.role.as_str(), a.precision.as_str(), a.exists),
        ("whisper.cpp", "q8_0", true)
    );
    // A profile asking fp16 gets the Q8_0 file with a note, not a conversion.
    let rtx = switchyard_profiles::resolve("rtx-desktop-24gb")
        .unwrap()
        .device;
    let p = plan(&rtx, root.path(), None).unwrap();
    assert_eq!(p.missing().count(), 0);
    assert_eq!(p.models[0].artifacts[0].precision, "q8_0");
    assert!(!p.models[0].notes.is_empty());
}

// ---------------------------------------------------------------------------------------------
// whisper tiny.en: size, byte identity, and transcription in whisper.cpp
// ---------------------------------------------------------------------------------------------

/// `SWITCHYARD_MODELS_DIR`, else `~/.cache/switchyard/models` (the gateway's default).
fn models_dir() -> PathBuf {
    switchyard_converter::profile_cli::default_models_dir()
}

fn skip(test: &str, why: &str) {
    assert!(std::env::var_os("CI").is_none(), "FAILED {test}: {why}");
    eprintln!("SKIPPED {test}: {why}");
}

/// whisper tiny.en's F16 ggml file (the manifest's `whisper.cpp` artifact, else converted
/// from the CTranslate2 model) and its Q8_0 quantisation, made once per process.
fn tiny_en(test: &str) -> Option<&'static (PathBuf, PathBuf)> {
    static FILES: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let dir = models_dir().join("whisper-tiny.en");
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("whisper-quant");
        let f16_file = match Manifest::load(&dir) {
            Ok(m)
                if m.artifact("whisper.cpp")
                    .is_some_and(|a| m.resolve(a).is_file()) =>
            {
                m.resolve(m.artifact("whisper.cpp")?)
            }
            _ if dir.join("model.bin").is_file() => {
                let out = tmp.join("ggml-tiny.en.bin");
                switchyard_converter::ct2_whisper::convert(&dir, &out).unwrap();
                out
            }
            _ => return None,
        };
        let q8_file = tmp.join("ggml-tiny.en.q8_0.bin");
        let report = quantize(&f16_file, &q8_file, Q8_0).unwrap();
        print_report(&report);
        Some((f16_file, q8_file))
    });
    if files.is_none() {
        skip(
            test,
            &format!(
                "whisper-tiny.en not found in {} (run `switchyard models fetch`)",
                models_dir().display()
            ),
        );
    }
    files.as_ref()
}

#[test]
fn tiny_en_q8_0_is_byte_identical_to_whisper_cpp_quantize_and_at_most_60_percent() {
    let Some((f16_file, q8_file)) = tiny_en("tiny_en_q8_0_size") else {
        return;
    };
    let source = std::fs::read(f16_file).unwrap();
    let written = std::fs::read(q8_file).unwrap();
    let ratio = written.len() as f64 / source.len() as f64;
    eprintln!(
        "F16 {} bytes, Q8_0 {} bytes ({:.1}%)",
        source.len(),
        written.len(),
        ratio * 100.0
    );
    assert!(
        ratio <= 0.60,
        "Q8_0 is {:.1}% of the F16 file",
        ratio * 100.0
    );
    assert!(written == whisper_cpp_quantize_tool(&source));
    let (header, _, records) = read_ggml(&written);
    assert_eq!(header[11], 2007);
    // 4 + 4 layers: 6 matrices per encoder block, 10 per decoder block, and the token embedding.
    assert_eq!(records.iter().filter(|r| r.ttype == 8).count(), 65);
}

/// A whisper.cpp host (worker process, 2 threads) for `model`, or `None` (skip) when the
/// worker binary is not built.
fn host(test: &str, model: &Path) -> Option<switchyard_engine_whisper::WhisperHost> {
    use switchyard_engine_whisper::{locate_worker, WhisperConfig, WhisperHost};
    let worker = match locate_worker(None) {
        Ok(w) => w,
        Err(e) => {
            skip(
                test,
                &format!("{e} (cargo build --release -p switchyard-whisper-worker)"),
            );
            return None;
        }
    };
    let mut config = WhisperConfig::new(model);
    config.worker_exe = Some(worker);
    config.threads = 2;
    Some(WhisperHost::start(config).unwrap())
}

fn mono(samples: Vec<f32>) -> Tensor {
    let n = samples.len();
    Tensor::from_vec(samples, &[n]).unwrap()
}

#[test]
fn tiny_en_q8_0_loads_in_whisper_cpp_and_transcribes_like_f16() {
    use switchyard_engine_whisper::TranscribeOptions;
    let test = "tiny_en_q8_0_wer";
    let Some((f16_file, q8_file)) = tiny_en(test) else {
        return;
    };
    if speak("test").is_none() {
        return skip(test, "espeak-ng not found");
    }
    let mut wer = Vec::new();
    for (label, model) in [("f16", f16_file), ("q8_0", q8_file)] {
        let Some(host) = host(test, model) else {
            return;
        };
        let (mut errors, mut total) = (0, 0);
        for sentence in SENTENCES {
            let audio = mono(speak(sentence).unwrap());
            let t = host
                .transcribe(&audio, &TranscribeOptions::default(), &CopyLedger::new())
                .unwrap();
            let (r, h) = (words(sentence), words(&t.text));
            let e = edit_distance(&r, &h);
            eprintln!(
                "  {label} [{e}/{}] {sentence:?} -> {:?}",
                r.len(),
                t.text.trim()
            );
            errors += e;
            total += r.len();
        }
        let rate = errors as f64 / total as f64;
        eprintln!(
            "{label}: WER {:.2}% ({errors} errors / {total} words, {} sentences), {}",
            rate * 100.0,
            SENTENCES.len(),
            model.display()
        );
        wer.push(rate);
    }
    let (f16_wer, q8_wer) = (wer[0], wer[1]);
    assert!(q8_wer <= 0.10, "Q8_0 WER {:.1}% > 10%", q8_wer * 100.0);
    assert!(
        q8_wer <= f16_wer + 0.05,
        "Q8_0 WER {:.1}% is more than 5 points above F16's {:.1}%",
        q8_wer * 100.0,
        f16_wer * 100.0
    );
}

/// ~60 s of speech: the sentences with 0.7 s pauses, repeated until a minute is reached (as the
/// whisper engine's real-time-factor test).
fn minute_of_speech() -> (Vec<f32>, Vec<String>) {
    let mut audio = Vec::new();
    let mut reference = Vec::new();
    'outer: loop {
        for s in SENTENCES {
            if audio.len() >= 16000 * 60 {
                break 'outer;
            }
            audio.extend(speak(s).expect("espeak-ng"));
            audio.extend(std::iter::repeat_n(0.0, 16000 * 7 / 10));
            reference.extend(words(s));
        }
    }
    (audio, reference)
}

/// Real-time factor of the F16 and Q8_0 files on 2 threads for ~60 s of speech, in one run:
/// both workers warmed up, then `SWITCHYARD_RTF_ROUNDS` (3) alternating rounds; medians.
/// Run alone on an idle machine:
/// `cargo test --release -p switchyard-converter --test whisper_quant -- --ignored --nocapture`.
#[test]
#[ignore = "timing measurement; run alone on an idle machine"]
fn real_time_factor_60s_f16_vs_q8_0() {
    use switchyard_engine_whisper::TranscribeOptions;
    let test = "real_time_factor_60s_f16_vs_q8_0";
    let Some((f16_file, q8_file)) = tiny_en(test) else {
        return;
    };
    let rounds: usize = std::env::var("SWITCHYARD_RTF_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (audio, reference) = minute_of_speech();
    let seconds = audio.len() as f64 / 16000.0;
    let audio = mono(audio);
    let opts = TranscribeOptions {
        threads: Some(2),
        ..TranscribeOptions::default()
    };
    let mut hosts = Vec::new();
    for (label, model) in [("f16", f16_file), ("q8_0", q8_file)] {
        let Some(host) = host(test, model) else {
            return;
        };
        // Warm-up (page cache, allocator, worker start), then measure.
        host.transcribe(
            &audio.narrow(0, 16000 * 5).unwrap(),
            &opts,
            &CopyLedger::new(),
        )
        .unwrap();
        hosts.push((label, host, Vec::new(), String::new()));
    }
    for _ in 0..rounds {
        for (_, host, times, text) in hosts.iter_mut() {
            let started = Instant::now();
            let t = host.transcribe(&audio, &opts, &CopyLedger::new()).unwrap();
            times.push(started.elapsed().as_secs_f64());
            *text = t.text;
        }
    }
    for (label, _, times, text) in &hosts {
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let wer = edit_distance(&reference, &words(text)) as f64 / reference.len() as f64;
        println!(
            "{label}: RTF {:.3} (median of {rounds}; wall s in order: {}; {seconds:.1} s audio, \
             2 threads); WER {:.1}%",
            median / seconds,
            times
                .iter()
                .map(|t| format!("{t:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            wer * 100.0
        );
    }
}
