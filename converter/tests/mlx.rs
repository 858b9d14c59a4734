//! GGUF → MLX conversion: the real SmolLM2-135M-Instruct GGUF (fetched by `switchyard models
//! fetch`; skipped when absent, a failure when `CI` is set) and hand-made corrupt or
//! unsupported GGUFs. The mlx-lm parity check (MLX vs llama.cpp top-1) is
//! tests/python/test_mlx_parity.py, which needs the Python virtualenv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use serde_json::Value;
use switchyard_converter::mlx::{convert_gguf, Method, MlxError, MlxOptions};

fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The SmolLM2 GGUF, or `None` (printed) when it is not fetched; with `CI` set, a failure.
fn smollm2(test: &str) -> Option<PathBuf> {
    let path = models_dir()
        .join("smollm2-135m-instruct")
        .join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.is_file() {
        return Some(path);
    }
    let message = format!(
        "{test}: {} not found (run `switchyard models fetch`)",
        path.display()
    );
    assert!(std::env::var_os("CI").is_none(), "FAILED {message}");
    eprintln!("SKIPPED {message}");
    None
}

/// Names in `dir` other than `keep`: leftovers of a conversion (temporary folders).
fn leftovers(dir: &Path, keep: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != keep)
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn smollm2_mixed_conversion_copies_every_block_exactly() {
    let Some(gguf) = smollm2("smollm2_mixed_conversion_copies_every_block_exactly") else {
        return;
    };
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("smollm2-mlx");
    let options = MlxOptions {
        mixed: true,
        ..MlxOptions::default()
    };
    let report = convert_gguf(&gguf, &out, &options).unwrap();

    // 210 Q4_1 projections + the Q8_0 embedding; 61 f32 norms.
    assert_eq!(
        (report.exact, report.requantized, report.float),
        (211, 0, 61)
    );
    assert_eq!(report.architecture, "llama");
    assert!(report.tokenizer_check.skipped.is_none(), "{report:?}");
    assert!(report.tokenizer_check.tokens > 50);
    let q = report
        .tensors
        .iter()
        .find(|t| t.name == "model.layers.0.self_attn.q_proj.weight")
        .unwrap();
    assert!(q.unpermuted && q.method == Method::Exact && q.bits == Some(4));
    assert_eq!(
        leftovers(parent.path(), "smollm2-mlx"),
        Vec::<String>::new()
    );

    let config = read_json(&out.join("config.json"));
    assert_eq!(config["model_type"], "llama");
    assert_eq!(config["tie_word_embeddings"], true);
    assert_eq!(config["num_key_value_heads"], 3);
    assert_eq!(config["rms_norm_eps"].as_f64(), Some(1e-5));
    assert_eq!(config["quantization"]["group_size"], 32);
    assert_eq!(config["quantization"]["bits"], 4);
    assert_eq!(
        config["quantization"]["model.embed_tokens"],
        serde_json::json!({"group_size": 32, "bits": 8})
    );
    let tokenizer_config = read_json(&out.join("tokenizer_config.json"));
    assert!(tokenizer_config["chat_template"]
        .as_str()
        .unwrap()
        .contains("<|im_start|>"));
    assert_eq!(tokenizer_config["eos_token"], "<|im_end|>");
    assert_eq!(
        read_json(&out.join("generation_config.json"))["eos_token_id"],
        2
    );

    let bytes = fs::read(out.join("model.safetensors")).unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let shape = |name: &str| {
        let t = tensors.tensor(name).unwrap();
        (format!("{:?}", t.dtype()), t.shape().to_vec())
    };
    let q = "model.layers.0.self_attn.q_proj";
    assert_eq!(shape(&format!("{q}.weight")), ("U32".into(), vec![576, 72]));
    assert_eq!(shape(&format!("{q}.scales")), ("F16".into(), vec![576, 18]));
    assert_eq!(shape(&format!("{q}.biases")), ("F16".into(), vec![576, 18]));
    assert_eq!(
        shape("model.embed_tokens.weight"),
        ("U32".into(), vec![49152, 144])
    );
    assert_eq!(shape("model.norm.weight"), ("F16".into(), vec![576]));
    assert!(tensors.tensor("lm_head.weight").is_err(), "tied head");
    assert_eq!(tensors.len(), 211 * 3 + 61);

    // The rebuilt tokenizer loads and knows the chat tokens as special.
    let tok = tokenizers::Tokenizer::from_file(out.join("tokenizer.json")).unwrap();
    let ids = tok
        .encode("<|im_start|>user\nHello!<|im_end|>", false)
        .unwrap();
    assert_eq!(ids.get_ids()[0], 1);
    assert_eq!(*ids.get_ids().last().unwrap(), 2);
}

#[test]
fn smollm2_default_and_wider_groups_report_what_was_requantised() {
    let Some(gguf) = smollm2("smollm2_default_and_wider_groups_report_what_was_requantised") else {
        return;
    };
    let parent = tempfile::tempdir().unwrap();

    // Not mixed: the Q8_0 embedding is brought down to 4 bits (the only lossy tensor).
    let out = parent.path().join("four-bit");
    let report = convert_gguf(&gguf, &out, &MlxOptions::default()).unwrap();
    assert_eq!(
        report.requantized_names(),
        vec!["model.embed_tokens.weight"]
    );
    assert_eq!(report.exact, 210);
    let config = read_json(&out.join("config.json"));
    assert!(config["quantization"].get("model.embed_tokens").is_none());

    // Groups of 64 span two GGUF blocks: nothing maps exactly, everything is re-quantised.
    let out64 = parent.path().join("g64");
    let options = MlxOptions {
        group_size: 64,
        check_tokenizer: false,
        ..MlxOptions::default()
    };
    let report = convert_gguf(&gguf, &out64, &options).unwrap();
    assert_eq!((report.exact, report.requantized), (0, 211));
    assert!(report.output_bytes < report.source_bytes);

    // An existing folder is kept unless overwriting was asked for.
    let err = convert_gguf(&gguf, &out64, &options).unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    let again = MlxOptions {
        overwrite: true,
        ..options
    };
    convert_gguf(&gguf, &out64, &again).unwrap();
    let mut left = leftovers(parent.path(), "four-bit");
    left.sort();
    assert_eq!(left, vec!["g64".to_string()]);
}

#[test]
fn truncated_smollm2_gguf_is_a_clear_error_and_writes_nothing() {
    let Some(gguf) = smollm2("truncated_smollm2_gguf_is_a_clear_error_and_writes_nothing") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(&gguf).unwrap();
    for (len, expect) in [
        (bytes.len() / 2, "runs past the end of the file"),
        (4096, "truncated"),
    ] {
        let cut = dir.path().join(format!("cut-{len}.gguf"));
        fs::write(&cut, &bytes[..len]).unwrap();
        let out = dir.path().join("out");
        let err = convert_gguf(&cut, &out, &MlxOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, MlxError::Corrupt { .. }), "{text}");
        assert!(text.contains(&cut.display().to_string()), "{text}");
        assert!(text.contains(expect), "{text}");
        assert!(!out.exists());
    }
    let mut left = leftovers(dir.path(), "");
    left.sort();
    assert_eq!(left.len(), 2, "only the inputs: {left:?}");
}

/// A minimal GGUF v3 image: string/u32 metadata and tensors with explicit type and data.
fn gguf_image(meta: &[(&str, &str)], tensors: &[(&str, Vec<u64>, u32, Vec<u8>)]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = b"GGUF".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
        string(&mut out, key);
        out.extend_from_slice(&8u32.to_le_bytes());
        string(&mut out, value);
    }
    let mut offset = 0u64;
    for (name, dims, ty, data) in tensors {
        string(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&ty.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += (data.len() as u64).div_ceil(32) * 32;
    }
    while !out.len().is_multiple_of(32) {
        out.push(0);
    }
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
    }
    out
}

fn convert_image(name: &str, image: &[u8]) -> (MlxError, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, image).unwrap();
    let out = dir.path().join("out");
    let err = convert_gguf(&path, &out, &MlxOptions::default()).unwrap_err();
    assert!(!out.exists(), "no output folder after a failure");
    assert_eq!(leftovers(dir.path(), name), Vec::<String>::new());
    (err, path, dir)
}

#[test]
fn hand_made_bad_ggufs_are_clear_errors_naming_the_file() {
    let f32_rows = |n: usize| vec![0u8; n * 4];

    let (err, path, _) = convert_image("text.gguf", b"this is not a model at all");
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("not a GGUF file"),
        "{text}"
    );

    let arch = [("general.architecture", "gpt2")];
    let image = gguf_image(
        &arch,
        &[("token_embd.weight", vec![64, 4], 0, f32_rows(256))],
    );
    let (err, path, _) = convert_image("gpt2.gguf", &image);
    let text = err.to_string();
    assert!(matches!(err, MlxError::Unsupported { .. }), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        text.contains("architecture 'gpt2' is not supported"),
        "{text}"
    );

    let image = gguf_image(
        &arch,
        &[("token_embd.weight", vec![64, 4], 77, f32_rows(256))],
    );
    let (err, _, _) = convert_image("badtype.gguf", &image);
    assert!(err.to_string().contains("unknown ggml type 77"), "{err}");

    let image = gguf_image(
        &arch,
        &[("token_embd.weight", vec![64, 4], 0, f32_rows(16))],
    );
    let (err, _, _) = convert_image("short.gguf", &image);
    assert!(err.to_string().contains("the file is truncated"), "{err}");

    let image = gguf_image(
        &arch,
        &[("token_embd.weight", vec![30, 4], 2, vec![0u8; 72])],
    );
    let (err, _, _) = convert_image("blocks.gguf", &image);
    assert!(
        err.to_string()
            .contains("not a multiple of the q4_0 block size 32"),
        "{err}"
    );

    let mut image = gguf_image(&arch, &[]);
    image[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let (err, _, _) = convert_image("count.gguf", &image);
    assert!(err.to_string().contains("implausible header"), "{err}");

    let llama = [("general.architecture", "llama")];
    let image = gguf_image(
        &llama,
        &[("token_embd.weight", vec![64, 4], 0, f32_rows(256))],
    );
    let (err, _, _) = convert_image("llama-no-params.gguf", &image);
    assert!(err.to_string().contains("llama.embedding_length"), "{err}");
}
