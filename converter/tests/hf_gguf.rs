//! Hugging Face → GGUF conversion, verified against independent references.
//!
//! - all-MiniLM-L6-v2 (the fetched f32 safetensors): the converted F16 and Q8_0 GGUFs, run
//!   through llama.cpp's embeddings (`embed::embed`), against the numpy f32 BERT in
//!   `tests/python/minilm_reference.py` (sentence-transformers semantics: mean pooling, L2).
//! - Tiny Llama / Qwen2 / Qwen3 decoders built here from random weights in Hugging Face layout
//!   (config.json, model.safetensors, a byte-level BPE tokenizer.json): converted, loaded in
//!   llama.cpp, and their teacher-forced logits (`inspect::sequence_logits`) compared with the
//!   numpy reference `tests/python/llama_reference.py`; tokenisation compared with the Hugging
//!   Face `tokenizers` library.
//! - Bad input: truncated / corrupt safetensors, unsupported architecture, shapes that do not
//!   match config.json, a missing tokenizer: clear errors naming the file, nothing written.
//!
//! The Python side runs in the test virtualenv that scripts/test.sh uses
//! (`${XDG_CACHE_HOME:-~/.cache}/switchyard/venv-<sha256(requirements.txt)[..12]>`). Missing
//! models or virtualenv skip the test locally with a message; with `CI` set the virtualenv is
//! created (as scripts/test.sh would) and a missing model fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use switchyard_converter::hf_gguf::{convert, HfGgufError, HfGgufOptions, OutType, Pooling};
use switchyard_engine_llamacpp::embed::embed;
use switchyard_engine_llamacpp::inspect::{sequence_logits, tokenize};
use switchyard_engine_llamacpp::quantize::QuantType;

// ---------------------------------------------------------------------------------------------
// Environment: models, the Python virtualenv.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn models_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_MODELS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("switchyard").join("models")))
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// Skips (locally) or fails (with `CI` set) when something the test needs is absent.
fn skip(test: &str, message: &str) {
    assert!(std::env::var_os("CI").is_none(), "FAILED {test}: {message}");
    eprintln!("SKIPPED {test}: {message}");
}

fn minilm_dir(test: &str) -> Option<PathBuf> {
    let dir = models_dir().join("all-minilm-l6-v2");
    let present = ["model.safetensors", "config.json", "tokenizer.json"]
        .iter()
        .all(|f| dir.join(f).is_file());
    if present {
        return Some(dir);
    }
    skip(
        test,
        &format!(
            "all-minilm-l6-v2 source weights not found under {} (run `switchyard models fetch`)",
            dir.display()
        ),
    );
    None
}

fn venv_dir() -> PathBuf {
    let reqs = repo_root().join("tests/python/requirements.txt");
    let bytes = std::fs::read(&reqs).expect("tests/python/requirements.txt");
    let hash = hex::encode(Sha256::digest(&bytes));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME");
    cache
        .join("switchyard")
        .join(format!("venv-{}", &hash[..12]))
}

/// The virtualenv's python, or `None` (skipped) when there is none outside CI. In CI it is
/// created exactly as scripts/test.sh creates it (which then finds it ready).
fn python(test: &str) -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = PYTHON.get_or_init(|| {
        let venv = venv_dir();
        if venv.join("bin/pytest").is_file() {
            return Ok(venv.join("bin/python"));
        }
        if std::env::var_os("CI").is_none() {
            return Err(format!(
                "test virtualenv {} not found (./scripts/test.sh creates it)",
                venv.display()
            ));
        }
        eprintln!("creating the test virtualenv {}", venv.display());
        let _ = std::fs::remove_dir_all(&venv);
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
                .arg(repo_root().join("tests/python/requirements.txt"))
                .status()
                .is_ok_and(|s| s.success());
        if ok {
            Ok(venv.join("bin/python"))
        } else {
            Err(format!(
                "could not create the test virtualenv {}",
                venv.display()
            ))
        }
    });
    match result {
        Ok(path) => Some(path.clone()),
        Err(message) => {
            skip(test, message);
            None
        }
    }
}

/// Runs `tests/python/<script> <model_dir>` with `request` as JSON on stdin.
fn run_reference(python: &Path, script: &str, model_dir: &Path, request: &Json) -> Json {
    let mut child = Command::new(python)
        .arg(repo_root().join("tests/python").join(script))
        .arg(model_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reference output is JSON")
}

fn floats(v: &Json) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn ids(v: &Json) -> Vec<i32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap() as i32)
        .collect()
}

/// Index of the largest value (the first one on ties).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Teacher-forced logits `got` against `want`, row by row (same shapes asserted): the largest
/// absolute difference, and at how many positions the argmax is the same.
fn compare_logits(got: &[Vec<f32>], want: &[Vec<f32>]) -> (f32, usize) {
    assert_eq!(got.len(), want.len());
    let mut max_diff = 0f32;
    let mut same = 0usize;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len());
        for (a, b) in g.iter().zip(w) {
            max_diff = max_diff.max((a - b).abs());
        }
        same += usize::from(argmax(g) == argmax(w));
    }
    (max_diff, same)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Files in `dir` other than `keep`: a failed conversion must leave none behind.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// all-MiniLM-L6-v2

const SENTENCES: &[&str] = &[
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly tax returns are due at the end of the month.",
    "How do I reset my router to factory settings?",
    "The Eiffel Tower is in Paris.",
    "Photosynthesis turns sunlight into chemical energy.",
    "She plays the violin every evening after dinner.",
    "Rust's borrow checker prevents data races at compile time.",
    "The stock market fell sharply on Tuesday.",
    "Bake the bread at 220 degrees for thirty minutes.",
    "Le chat dort sur le canapé.",
    "¿Dónde está la estación de tren?",
    "Error 404: the page you requested could not be found.",
    "def add(a, b): return a + b",
    "GPUs accelerate matrix multiplications by orders of magnitude.",
    "I can't believe it's already December!",
    "The quick brown fox jumps over the lazy dog.",
    "Meeting moved to 3:30pm — please update your calendars.",
    "Vaccines train the immune system to recognise pathogens.",
    "Hello",
    "UPPER CASE AND lower case should tokenize the same way.",
    "Email me at someone@example.com or call +1 (555) 010-9999.",
    "A very long sentence that keeps going and going and going, with commas, clauses, and \
     asides, so that attention has to work across many more positions than usual before it \
     finally ends.",
];

#[test]
fn minilm_gguf_embeddings_match_the_f32_reference() {
    let test = "minilm_gguf_embeddings_match_the_f32_reference";
    let Some(source) = minilm_dir(test) else {
        return;
    };
    let Some(python) = python(test) else { return };
    let out = tempfile::tempdir().unwrap();

    let f16 = out.path().join("minilm-f16.gguf");
    let report = convert(&source, &f16, &HfGgufOptions::default()).unwrap();
    assert_eq!(report.architecture, "bert");
    assert_eq!(report.tokenizer.model, "bert");
    assert_eq!(report.tokenizer.tokens, 30522);
    assert_eq!(report.pooling, Some(Pooling::Mean));
    assert_eq!(report.tensors, 101, "{report:?}");
    eprintln!(
        "MiniLM F16: {} → {} bytes in {:.2} s ({:.1} MB/s)",
        report.source_bytes, report.output_bytes, report.convert_seconds, report.convert_mb_per_s
    );

    let mut variants = vec![("F16", f16.clone(), 0.99)];
    for (name, target, min) in [
        ("Q8_0", QuantType::Q8_0, 0.98),
        ("Q4_K_M", QuantType::Q4KM, 0.95),
    ] {
        let path = out.path().join(format!("minilm-{name}.gguf"));
        let report = convert(
            &source,
            &path,
            &HfGgufOptions {
                quantize: Some(target),
                ..HfGgufOptions::default()
            },
        )
        .unwrap();
        eprintln!(
            "MiniLM {name}: {} bytes (f16 intermediate {} bytes), quantised in {:.2} s",
            report.output_bytes,
            report.converted_bytes,
            report.quantize_seconds.unwrap()
        );
        variants.push((name, path, min));
    }
    // Only the outputs are left: the intermediates were removed.
    let mut names = leftovers(out.path(), &[]);
    names.sort();
    assert_eq!(
        names,
        ["minilm-Q4_K_M.gguf", "minilm-Q8_0.gguf", "minilm-f16.gguf"]
    );

    let reference = run_reference(&python, "minilm_reference.py", &source, &json!(SENTENCES));
    let ref_vectors: Vec<Vec<f32>> = reference["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();

    // llama.cpp's WordPiece tokenizer, fed by the converted vocabulary, gives the Hugging Face
    // tokenizer's ids.
    for (sentence, expected) in SENTENCES.iter().zip(reference["ids"].as_array().unwrap()) {
        let got = tokenize(&f16, sentence, true).unwrap();
        assert_eq!(got, ids(expected), "tokens of {sentence:?}");
    }

    for (name, path, min) in variants {
        let vectors = embed(&path, SENTENCES, 2).unwrap();
        assert_eq!(vectors.len(), SENTENCES.len());
        let cosines: Vec<f64> = vectors
            .iter()
            .zip(&ref_vectors)
            .map(|(a, b)| {
                assert_eq!(a.len(), 384);
                cosine(a, b)
            })
            .collect();
        let lowest = cosines.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
        eprintln!(
            "MiniLM {name} vs f32 reference over {} sentences: min cosine {lowest:.6}, mean {mean:.6}",
            SENTENCES.len()
        );
        assert!(lowest >= min, "{name}: min cosine {lowest} < {min}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tiny decoders from random weights

/// SplitMix64, for reproducible weights without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

/// GPT-2's byte → printable character map (`bytes_to_unicode`).
fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut next = 256u32;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                let c = char::from_u32(next).unwrap();
                next += 1;
                c
            }
        })
        .collect()
}

const WORDS: &[&str] = &[
    "the",
    " the",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " lazy",
    " dog",
    "Hello",
    " world",
    "ing",
    " is",
    " a",
    " test",
    "er",
    " and",
    " of",
    " to",
    "in",
    " in",
    "12",
    " 1",
    "user",
    "assistant",
    "\n",
    " hi",
    " Hello",
    " model",
    " convert",
    "ed",
];

const SPECIALS: &[&str] = &[
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|im_start|>",
    "<|im_end|>",
];

const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const CHAT_TEMPLATE: &str = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// A byte-level BPE tokenizer.json (+ tokenizer_config.json): 256 byte tokens, merges that
/// build `WORDS` left to right, then the special tokens. Returns the token count.
fn write_bpe_tokenizer(dir: &Path, arch: Arch) -> usize {
    let chars = byte_chars();
    let mut vocab: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
    let mut merges: Vec<(String, String)> = Vec::new();
    for word in WORDS {
        let pieces: Vec<String> = word
            .bytes()
            .map(|b| chars[b as usize].to_string())
            .collect();
        let mut current = pieces[0].clone();
        for piece in &pieces[1..] {
            let merged = format!("{current}{piece}");
            if !vocab.contains(&merged) {
                merges.push((current.clone(), piece.clone()));
                vocab.push(merged.clone());
            }
            current = merged;
        }
    }
    let base = vocab.len();
    let vocab_map: serde_json::Map<String, Json> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<Json> = SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": base + i, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let (regex, post, ignore_merges) = match arch {
        Arch::Llama => (
            LLAMA3_REGEX,
            json!({"type": "Sequence", "processors": [
                {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
                {"type": "TemplateProcessing",
                 "single": [{"SpecialToken": {"id": SPECIALS[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                 "pair": [{"SpecialToken": {"id": SPECIALS[0], "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                          {"SpecialToken": {"id": SPECIALS[0], "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                 "special_tokens": {SPECIALS[0]: {"id": SPECIALS[0], "ids": [base], "tokens": [SPECIALS[0]]}}}
            ]}),
            true,
        ),
        _ => (
            QWEN2_REGEX,
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}),
            false,
        ),
    };
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]},
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": ignore_merges, "vocab": vocab_map,
                  "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let config = match arch {
        Arch::Llama => json!({"bos_token": SPECIALS[0], "eos_token": SPECIALS[1],
                              "chat_template": CHAT_TEMPLATE}),
        _ => json!({"bos_token": null, "eos_token": SPECIALS[3], "pad_token": SPECIALS[1],
                    "chat_template": CHAT_TEMPLATE}),
    };
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    base + SPECIALS.len()
}

/// A Llama-2-style tokenizer.json: `<unk> <s> </s>`, the 256 `<0xXX>` byte tokens, single
/// characters, and merges building `▁`-prefixed words; byte fallback for everything else.
/// Returns (token count, bos id, eos id).
fn write_spm_tokenizer(dir: &Path) -> (usize, usize, usize) {
    let mut vocab: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    vocab.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    vocab.push("\u{2581}".into());
    vocab.extend(('!'..='~').map(|c| c.to_string()));
    let mut merges: Vec<(String, String)> = Vec::new();
    for word in WORDS {
        let word = word.replace(' ', "\u{2581}").replace('\n', "");
        let word = if word.starts_with('\u{2581}') {
            word
        } else {
            format!("\u{2581}{word}")
        };
        let chars: Vec<String> = word.chars().map(|c| c.to_string()).collect();
        let mut current = chars[0].clone();
        for piece in &chars[1..] {
            let merged = format!("{current}{piece}");
            if !vocab.contains(&merged) {
                merges.push((current.clone(), piece.clone()));
                vocab.push(merged.clone());
            }
            current = merged;
        }
    }
    let vocab_map: serde_json::Map<String, Json> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let added: Vec<Json> = ["<unk>", "<s>", "</s>"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": i, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u{2581}"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}
        ]},
        "pre_tokenizer": null,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}
        ]},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>",
                  "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true,
                  "byte_fallback": true, "ignore_merges": false, "vocab": vocab_map,
                  "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let config = json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                        "add_bos_token": true, "add_eos_token": false});
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    (vocab.len(), 1, 2)
}

struct Tiny {
    arch: Arch,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ff: usize,
    layers: usize,
    tied: bool,
    /// Store the weights as f16 instead of f32.
    f16_source: bool,
    /// A SentencePiece-style tokenizer (byte fallback, `▁` spaces) instead of byte-level BPE.
    spm: bool,
}

impl Tiny {
    fn of(arch: Arch) -> Self {
        match arch {
            // GQA 4:2, untied head, Llama-3 RoPE scaling (rope_freqs), f32 weights.
            Arch::Llama => Self {
                arch,
                hidden: 64,
                heads: 4,
                kv_heads: 2,
                head_dim: 16,
                ff: 128,
                layers: 2,
                tied: false,
                f16_source: false,
                spm: false,
            },
            // q/k/v biases, tied head, GQA 4:1.
            Arch::Qwen2 => Self {
                arch,
                hidden: 64,
                heads: 4,
                kv_heads: 1,
                head_dim: 16,
                ff: 96,
                layers: 2,
                tied: true,
                f16_source: false,
                spm: false,
            },
            // head_dim 32 ≠ hidden / heads, per-head q/k norms, f16 weights.
            Arch::Qwen3 => Self {
                arch,
                hidden: 64,
                heads: 4,
                kv_heads: 2,
                head_dim: 32,
                ff: 128,
                layers: 2,
                tied: true,
                f16_source: true,
                spm: false,
            },
        }
    }

    /// Writes config.json, model.safetensors and the tokenizer into `dir`.
    fn write(&self, dir: &Path, seed: u64) {
        std::fs::create_dir_all(dir).unwrap();
        let (tokens, bos, eos) = if self.spm {
            write_spm_tokenizer(dir)
        } else {
            let n = write_bpe_tokenizer(dir, self.arch);
            (n, n - 4, n - 3)
        };
        // Embedding rows past the tokenizer's tokens, as real checkpoints pad them.
        let vocab = tokens + 12;
        let (arch_name, model_type) = match self.arch {
            Arch::Llama => ("LlamaForCausalLM", "llama"),
            Arch::Qwen2 => ("Qwen2ForCausalLM", "qwen2"),
            Arch::Qwen3 => ("Qwen3ForCausalLM", "qwen3"),
        };
        let mut config = json!({
            "_name_or_path": format!("switchyard-tests/tiny-{model_type}"),
            "architectures": [arch_name],
            "model_type": model_type,
            "hidden_size": self.hidden,
            "intermediate_size": self.ff,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": 256,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "vocab_size": vocab,
            "tie_word_embeddings": self.tied,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "torch_dtype": if self.f16_source { "float16" } else { "float32" },
        });
        if self.arch == Arch::Llama {
            config["rope_scaling"] = json!({"rope_type": "llama3", "factor": 8.0,
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64});
        }
        std::fs::write(
            dir.join("config.json"),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();

        let mut rng = Rng(seed);
        let mut tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();
        let mut add = |name: String, shape: Vec<usize>, f: &mut dyn FnMut() -> f32| {
            let n = shape.iter().product();
            tensors.insert(name, (shape, (0..n).map(|_| f()).collect()));
        };
        let (h, q, kv, ff) = (
            self.hidden,
            self.heads * self.head_dim,
            self.kv_heads * self.head_dim,
            self.ff,
        );
        add(
            "model.embed_tokens.weight".into(),
            vec![vocab, h],
            &mut || rng.normal(),
        );
        for i in 0..self.layers {
            let p = format!("model.layers.{i}");
            add(format!("{p}.input_layernorm.weight"), vec![h], &mut || {
                1.0 + 0.1 * rng.normal()
            });
            add(
                format!("{p}.post_attention_layernorm.weight"),
                vec![h],
                &mut || 1.0 + 0.1 * rng.normal(),
            );
            add(
                format!("{p}.self_attn.q_proj.weight"),
                vec![q, h],
                &mut || 1.5 * rng.normal() / (h as f32).sqrt(),
            );
            add(
                format!("{p}.self_attn.k_proj.weight"),
                vec![kv, h],
                &mut || 1.5 * rng.normal() / (h as f32).sqrt(),
            );
            add(
                format!("{p}.self_attn.v_proj.weight"),
                vec![kv, h],
                &mut || rng.normal() / (h as f32).sqrt(),
            );
            add(
                format!("{p}.self_attn.o_proj.weight"),
                vec![h, q],
                &mut || rng.normal() / (q as f32).sqrt(),
            );
            if self.arch == Arch::Qwen2 {
                add(format!("{p}.self_attn.q_proj.bias"), vec![q], &mut || {
                    0.2 * rng.normal()
                });
                add(format!("{p}.self_attn.k_proj.bias"), vec![kv], &mut || {
                    0.2 * rng.normal()
                });
                add(format!("{p}.self_attn.v_proj.bias"), vec![kv], &mut || {
                    0.2 * rng.normal()
                });
            }
            if self.arch == Arch::Qwen3 {
                add(
                    format!("{p}.self_attn.q_norm.weight"),
                    vec![self.head_dim],
                    &mut || 1.0 + 0.1 * rng.normal(),
                );
                add(
                    format!("{p}.self_attn.k_norm.weight"),
                    vec![self.head_dim],
                    &mut || 1.0 + 0.1 * rng.normal(),
                );
            }
            add(
                format!("{p}.mlp.gate_proj.weight"),
                vec![ff, h],
                &mut || rng.normal() / (h as f32).sqrt(),
            );
            add(format!("{p}.mlp.up_proj.weight"), vec![ff, h], &mut || {
                rng.normal() / (h as f32).sqrt()
            });
            add(
                format!("{p}.mlp.down_proj.weight"),
                vec![h, ff],
                &mut || rng.normal() / (ff as f32).sqrt(),
            );
        }
        add("model.norm.weight".into(), vec![h], &mut || {
            1.0 + 0.1 * rng.normal()
        });
        if !self.tied {
            add("lm_head.weight".into(), vec![vocab, h], &mut || {
                2.0 * rng.normal() / (h as f32).sqrt()
            });
        }
        write_safetensors(&dir.join("model.safetensors"), &tensors, self.f16_source);
    }
}

fn write_safetensors(path: &Path, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>, f16: bool) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, (shape, values))| {
            let data = if f16 {
                values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect()
            } else {
                values.iter().flat_map(|v| v.to_le_bytes()).collect()
            };
            (name.clone(), shape.clone(), data)
        })
        .collect();
    let dtype = if f16 {
        safetensors::Dtype::F16
    } else {
        safetensors::Dtype::F32
    };
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                safetensors::tensor::TensorView::new(dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

const TEXTS: &[&str] = &[
    "Hello world",
    "the quick brown fox jumps over the lazy dog",
    "  leading spaces, trailing spaces  and\nnew lines\n\n",
    "numbers 1234567 and ünïcödé ✓ and emoji 🦀",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "It's what they'll do; they've said I'd won't",
];

/// Converts a tiny `arch` model, checks tokenisation against Hugging Face's and logits against
/// the numpy reference, for F32 and F16 conversions.
fn check_decoder(arch: Arch) {
    let test = format!("{arch:?}_decoder_matches_the_numpy_reference");
    let Some(python) = python(&test) else { return };
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("hf");
    Tiny::of(arch).write(&model_dir, 0x5EED + arch as u64);

    let f32_path = work.path().join("tiny-f32.gguf");
    let report = convert(
        &model_dir,
        &f32_path,
        &HfGgufOptions {
            out_type: OutType::F32,
            ..HfGgufOptions::default()
        },
    )
    .unwrap();
    let expected_pre = if arch == Arch::Llama {
        "llama-bpe"
    } else {
        "qwen2"
    };
    assert_eq!(report.tokenizer.model, "gpt2");
    assert_eq!(report.tokenizer.pre, expected_pre);
    assert!(report.tokenizer.chat_template);
    let info = switchyard_engine_llamacpp::inspect_gguf(&f32_path).unwrap();
    assert!(info.tasks.contains(&"chat".to_owned()), "{info:?}");
    let f16_path = work.path().join("tiny-f16.gguf");
    convert(&model_dir, &f16_path, &HfGgufOptions::default()).unwrap();

    // A token sequence: the tokenisation of a sentence, then ids across the whole vocabulary
    // (the padded rows included).
    let mut tokens = tokenize(
        &f32_path,
        "Hello world, the quick brown fox jumps over the lazy dog 12345!",
        true,
    )
    .unwrap();
    let vocab = report.tokenizer.tokens as u64;
    let mut rng = Rng(7);
    tokens.extend((0..24).map(|_| (rng.next() % vocab) as i32));

    let reference = run_reference(
        &python,
        "llama_reference.py",
        &model_dir,
        &json!({"tokens": [tokens], "texts": TEXTS}),
    );
    for (text, expected) in TEXTS.iter().zip(reference["encodings"].as_array().unwrap()) {
        assert_eq!(
            tokenize(&f32_path, text, true).unwrap(),
            ids(expected),
            "{arch:?}: tokens of {text:?}"
        );
    }
    let ref_rows: Vec<Vec<f32>> = reference["logits"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let scale = ref_rows.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    for (name, path, relative) in [
        ("F32", &f32_path, F32_TOLERANCE),
        ("F16", &f16_path, F16_TOLERANCE),
    ] {
        let tolerance = relative * scale;
        let rows = sequence_logits(path, &tokens, 2).unwrap();
        let (max_diff, argmax_same) = compare_logits(&rows, &ref_rows);
        eprintln!(
            "{arch:?} {name}: {} positions, logits up to |{scale:.2}|: max abs diff {max_diff:.5} \
             (tolerance {tolerance:.5} = {relative} × max |logit|), argmax identical at {argmax_same}/{}",
            rows.len(),
            rows.len()
        );
        assert!(
            max_diff <= tolerance,
            "{arch:?} {name}: max abs diff {max_diff} > {tolerance}"
        );
        assert_eq!(argmax_same, rows.len(), "{arch:?} {name}: argmax differs");
    }
}

/// Logit tolerance for f32 weights, as a fraction of the largest reference |logit|: the max
/// abs diff must stay below it. llama.cpp keeps its KV cache in f16, so K and V are rounded
/// (measured: 0.03%–0.09%).
const F32_TOLERANCE: f32 = 0.002;
/// With f16 weights as well (measured: 0.03%–0.14%).
const F16_TOLERANCE: f32 = 0.004;

#[test]
fn llama_decoder_matches_the_numpy_reference() {
    check_decoder(Arch::Llama);
}

#[test]
fn qwen2_decoder_matches_the_numpy_reference() {
    check_decoder(Arch::Qwen2);
}

#[test]
fn qwen3_decoder_matches_the_numpy_reference() {
    check_decoder(Arch::Qwen3);
}

const SPM_TEXTS: &[&str] = &[
    "Hello world",
    "the quick brown fox jumps over the lazy dog",
    "naïve café ✓",
    "  double  spaces and\nnew lines",
    "Hello",
];

#[test]
fn sentencepiece_style_tokenizer_matches_hugging_face() {
    let test = "sentencepiece_style_tokenizer_matches_hugging_face";
    let Some(python) = python(test) else { return };
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("hf");
    Tiny {
        spm: true,
        ..Tiny::of(Arch::Llama)
    }
    .write(&model_dir, 5);
    let path = work.path().join("tiny-spm.gguf");
    let report = convert(&model_dir, &path, &HfGgufOptions::default()).unwrap();
    assert_eq!(report.tokenizer.model, "llama");
    assert_eq!(report.tokenizer.bos_id, Some(1));
    let reference = run_reference(
        &python,
        "llama_reference.py",
        &model_dir,
        &json!({"texts": SPM_TEXTS}),
    );
    for (text, expected) in SPM_TEXTS
        .iter()
        .zip(reference["encodings"].as_array().unwrap())
    {
        assert_eq!(
            tokenize(&path, text, true).unwrap(),
            ids(expected),
            "tokens of {text:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sharded input, the CLI

#[test]
fn sharded_weights_convert_to_the_same_gguf() {
    let work = tempfile::tempdir().unwrap();
    let single = work.path().join("single");
    Tiny::of(Arch::Qwen2).write(&single, 11);
    let sharded = work.path().join("sharded");
    std::fs::create_dir_all(&sharded).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(single.join(f), sharded.join(f)).unwrap();
    }
    // Split the tensors over two shards + index.
    let bytes = std::fs::read(single.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (k, part) in names.chunks(names.len() / 2 + 1).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", k + 1);
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part
            .iter()
            .map(|n| ((*n).to_owned(), st.tensor(n).unwrap()))
            .collect();
        for n in part {
            weight_map.insert((*n).to_owned(), json!(file));
        }
        safetensors::serialize_to_file(views, None, &sharded.join(&file)).unwrap();
    }
    std::fs::write(
        sharded.join("model.safetensors.index.json"),
        json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    )
    .unwrap();
    let a = work.path().join("a.gguf");
    let b = work.path().join("b.gguf");
    convert(&single, &a, &HfGgufOptions::default()).unwrap();
    convert(&sharded, &b, &HfGgufOptions::default()).unwrap();
    assert!(
        std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
        "sharded output differs"
    );

    // A shard the index names but that is missing.
    std::fs::remove_file(sharded.join("model-00002-of-00002.safetensors")).unwrap();
    let err = convert(
        &sharded,
        &work.path().join("c.gguf"),
        &HfGgufOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("model-00002-of-00002.safetensors"),
        "{err}"
    );
}

/// The JSON report of a `switchyard-convert … --json` run that must succeed (its stderr shown
/// when it does not).
fn json_report(out: &std::process::Output) -> Json {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn cli_converts_quantises_and_reports_json() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("hf");
    Tiny::of(Arch::Llama).write(&model_dir, 3);
    let output = work.path().join("tiny-q8_0.gguf");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-convert"))
        .args(["hf-gguf", "--input"])
        .arg(&model_dir)
        .arg("--output")
        .arg(&output)
        .args([
            "--type",
            "f16",
            "--quantize",
            "q8_0",
            "--threads",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    let report = json_report(&out);
    assert_eq!(report["quantized"], "q8_0");
    assert_eq!(report["architecture"], "llama");
    assert_eq!(report["tokenizer"]["pre"], "llama-bpe");
    assert_eq!(
        report["output_bytes"].as_u64(),
        Some(std::fs::metadata(&output).unwrap().len())
    );
    assert_eq!(
        leftovers(work.path(), &["hf", "tiny-q8_0.gguf"]),
        Vec::<String>::new()
    );
    let rows = sequence_logits(&output, &[1, 2, 3], 1).unwrap();
    assert_eq!(rows.len(), 3);

    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-convert"))
        .args(["hf-gguf", "--input"])
        .arg(&model_dir)
        .arg("--output")
        .arg(work.path().join("x.gguf"))
        .args(["--type", "bf16"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("f32, f16"));
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// Converts `dir` expecting failure; checks that nothing was written.
fn convert_fails(dir: &Path) -> HfGgufError {
    let out = tempfile::tempdir().unwrap();
    let output = out.path().join("out.gguf");
    let err = convert(dir, &output, &HfGgufOptions::default()).unwrap_err();
    assert!(!output.exists());
    assert_eq!(
        leftovers(out.path(), &[]),
        Vec::<String>::new(),
        "temp files left behind"
    );
    err
}

fn tiny_llama() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Tiny::of(Arch::Llama).write(dir.path(), 1);
    dir
}

#[test]
fn truncated_safetensors_is_refused() {
    let dir = tiny_llama();
    let path = dir.path().join("model.safetensors");
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 100).unwrap();
    let err = convert_fails(dir.path()).to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("truncated"),
        "{err}"
    );

    file.set_len(5).unwrap();
    let err = convert_fails(dir.path()).to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("5 bytes"),
        "{err}"
    );
}

#[test]
fn corrupt_safetensors_header_is_refused() {
    let dir = tiny_llama();
    let path = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..16].copy_from_slice(b"#garbage");
    std::fs::write(&path, bytes).unwrap();
    let err = convert_fails(dir.path()).to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("corrupt header"),
        "{err}"
    );
}

#[test]
fn unsupported_architecture_is_refused() {
    let dir = tiny_llama();
    let path = dir.path().join("config.json");
    let mut config: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["architectures"] = json!(["MambaForCausalLM"]);
    std::fs::write(&path, config.to_string()).unwrap();
    let err = convert_fails(dir.path()).to_string();
    assert!(
        err.contains("config.json")
            && err.contains("unsupported architecture \"MambaForCausalLM\"")
            && err.contains("Qwen3ForCausalLM"),
        "{err}"
    );
}

#[test]
fn shapes_that_disagree_with_config_are_refused() {
    let dir = tiny_llama();
    let path = dir.path().join("config.json");
    let mut config: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["intermediate_size"] = json!(96);
    std::fs::write(&path, config.to_string()).unwrap();
    let err = convert_fails(dir.path()).to_string();
    assert!(
        err.contains("model.safetensors")
            && err.contains("model.layers.0.mlp.gate_proj.weight has shape [128, 64]")
            && err.contains("config.json implies [96, 64]"),
        "{err}"
    );
}

#[test]
fn missing_tokenizer_is_refused() {
    let dir = tiny_llama();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = convert_fails(dir.path());
    assert!(
        matches!(err, HfGgufError::MissingTokenizer { .. }),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("missing tokenizer"),
        "{err}"
    );
}

#[test]
fn missing_and_unexpected_tensors_are_refused() {
    let dir = tiny_llama();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let all = st.tensors();
    let keep: Vec<(String, safetensors::tensor::TensorView<'_>)> = all
        .iter()
        .filter(|(n, _)| n != "model.norm.weight")
        .cloned()
        .collect();
    let extra = vec![0u8; 4 * 64];
    let mut with_extra = all.clone();
    with_extra.push((
        "model.layers.0.self_attn.mystery.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![64], &extra).unwrap(),
    ));
    let dir2 = tiny_llama();
    safetensors::serialize_to_file(keep, None, &path).unwrap();
    let err = convert_fails(dir.path()).to_string();
    assert!(err.contains("missing tensor model.norm.weight"), "{err}");

    safetensors::serialize_to_file(with_extra, None, &dir2.path().join("model.safetensors"))
        .unwrap();
    let err = convert_fails(dir2.path()).to_string();
    assert!(
        err.contains("unexpected tensor model.layers.0.self_attn.mystery.weight"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// Hugging Face → MLX (`mlx::convert_hf`): the tiny decoders above, quantised from their float
// weights, loaded by the official mlx-lm (tests/python/mlx_logits.py) and compared with the
// numpy reference of the unquantised source.

/// Converts a tiny `arch` model to MLX with `options` and compares mlx-lm's logits with the
/// numpy reference's. Returns (max abs diff ÷ max |reference logit|, argmax agreement, the
/// modules mlx-lm loaded quantised, the written config.json).
fn hf_mlx_parity(
    arch: Arch,
    options: &switchyard_converter::mlx::MlxOptions,
    python: &Path,
) -> (f32, f32, Vec<String>, Json) {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("hf");
    Tiny::of(arch).write(&model_dir, 0xA11CE + arch as u64);
    let out = work.path().join("mlx");
    let report = switchyard_converter::mlx::convert_hf(&model_dir, &out, options).unwrap();
    assert_eq!(leftovers(work.path(), &["hf", "mlx"]), Vec::<String>::new());
    assert!(report.tokenizer.is_none());
    assert_eq!(report.exact + report.requantized + report.scales_rounded, 0);
    assert!(report.quantized > 0, "{report:?}");
    // The tokenizer files are the source's, byte for byte.
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        assert_eq!(
            std::fs::read(out.join(file)).unwrap(),
            std::fs::read(model_dir.join(file)).unwrap(),
            "{file}"
        );
    }

    let reference = run_reference(
        python,
        "llama_reference.py",
        &model_dir,
        &json!({"texts": TEXTS}),
    );
    let mut tokens = ids(&reference["encodings"][1]);
    let vocab = read_json(&model_dir.join("config.json"))["vocab_size"]
        .as_u64()
        .unwrap();
    let mut rng = Rng(11);
    tokens.extend((0..24).map(|_| (rng.next() % vocab) as i32));
    let reference = run_reference(
        python,
        "llama_reference.py",
        &model_dir,
        &json!({"tokens": [tokens], "texts": TEXTS}),
    );
    let mlx = run_reference(
        python,
        "mlx_logits.py",
        &out,
        &json!({"tokens": [tokens], "texts": TEXTS}),
    );
    assert_eq!(
        mlx["encodings"], reference["encodings"],
        "{arch:?}: mlx-lm's tokenizer differs from the source's"
    );
    let rows =
        |v: &Json| -> Vec<Vec<f32>> { v[0].as_array().unwrap().iter().map(floats).collect() };
    let (want, got) = (rows(&reference["logits"]), rows(&mlx["logits"]));
    let scale = want.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    let (max_diff, same) = compare_logits(&got, &want);
    let quantized = mlx["quantized"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (
        max_diff / scale,
        same as f32 / want.len() as f32,
        quantized,
        read_json(&out.join("config.json")),
    )
}

fn read_json(path: &Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// 8-bit groups of 32: logits within this fraction of the largest |logit| of the f64
/// reference, and the same argmax at every position.
const MLX_8BIT_TOLERANCE: f32 = 0.03;
/// 4-bit groups of 32 with 8-bit embeddings and head ("mixed"). A 4-bit step is 17× an 8-bit
/// one, and these random 64-wide models have no redundancy to absorb it: measured 0.10–0.27 ×
/// max |logit| and 71–100% argmax agreement, which is the 8-bit error (0.008–0.019) × 17. A
/// layout mistake gives errors near 1 and chance agreement (1 in ~300), so these bounds still
/// separate right from wrong; the exact layout is pinned by the 8-bit bound above.
const MLX_4BIT_TOLERANCE: f32 = 0.4;
const MLX_4BIT_MIN_ARGMAX: f32 = 0.6;

fn check_hf_mlx(arch: Arch) {
    use switchyard_converter::mlx::MlxOptions;
    let test = format!("{arch:?}_hf_to_mlx_matches_the_numpy_reference");
    let Some(python) = python(&test) else { return };
    let eight = MlxOptions {
        bits: 8,
        ..MlxOptions::default()
    };
    let (diff, argmax_same, quantized, config) = hf_mlx_parity(arch, &eight, &python);
    eprintln!(
        "{arch:?} 8-bit: max abs diff {diff:.4} × max |logit|, argmax agreement {argmax_same:.3}"
    );
    assert!(diff <= MLX_8BIT_TOLERANCE, "{arch:?} 8-bit: {diff}");
    assert_eq!(argmax_same, 1.0, "{arch:?} 8-bit argmax");
    assert_eq!(config["quantization"]["bits"], 8);
    assert!(
        quantized.contains(&"model.layers.0.self_attn.q_proj:8".to_owned()),
        "{quantized:?}"
    );

    let mixed = MlxOptions {
        mixed: true,
        ..MlxOptions::default()
    };
    let (diff, argmax_same, quantized, config) = hf_mlx_parity(arch, &mixed, &python);
    eprintln!("{arch:?} 4-bit mixed: max abs diff {diff:.4} × max |logit|, argmax agreement {argmax_same:.3}");
    assert!(diff <= MLX_4BIT_TOLERANCE, "{arch:?} 4-bit: {diff}");
    assert!(
        argmax_same >= MLX_4BIT_MIN_ARGMAX,
        "{arch:?} 4-bit argmax {argmax_same}"
    );
    assert_eq!(config["quantization"]["bits"], 4);
    assert_eq!(config["quantization"]["model.embed_tokens"]["bits"], 8);
    assert!(
        quantized.contains(&"model.embed_tokens:8".to_owned()),
        "{quantized:?}"
    );
    assert!(
        quantized.contains(&"model.layers.1.mlp.down_proj:4".to_owned()),
        "{quantized:?}"
    );
    if arch == Arch::Llama {
        // Untied: the head is its own 8-bit layer.
        assert!(quantized.contains(&"lm_head:8".to_owned()), "{quantized:?}");
    }
}

#[test]
fn llama_hf_to_mlx_matches_the_numpy_reference() {
    check_hf_mlx(Arch::Llama);
}

#[test]
fn qwen2_hf_to_mlx_matches_the_numpy_reference() {
    check_hf_mlx(Arch::Qwen2);
}

#[test]
fn qwen3_hf_to_mlx_matches_the_numpy_reference() {
    check_hf_mlx(Arch::Qwen3);
}

/// Rows that do not divide into groups stay floats (and mlx-lm still loads the folder, which
/// the parity tests show for the quantised case); the report says which.
#[test]
fn hf_to_mlx_keeps_ungroupable_rows_as_floats() {
    use switchyard_converter::mlx::{convert_hf, Method, MlxOptions};
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("hf");
    // Qwen2's ff is 96: down_proj rows (96 long) do not divide into groups of 64.
    Tiny::of(Arch::Qwen2).write(&model_dir, 3);
    let out = work.path().join("mlx");
    let options = MlxOptions {
        group_size: 64,
        ..MlxOptions::default()
    };
    let report = convert_hf(&model_dir, &out, &options).unwrap();
    let down = report
        .tensors
        .iter()
        .find(|t| t.name == "model.layers.0.mlp.down_proj.weight")
        .unwrap();
    assert_eq!((down.method, down.bits), (Method::Float, None));
    let up = report
        .tensors
        .iter()
        .find(|t| t.name == "model.layers.0.mlp.up_proj.weight")
        .unwrap();
    assert_eq!((up.method, up.bits), (Method::Quantized, Some(4)));
    // Tied: no lm_head is written.
    assert!(report.tensors.iter().all(|t| t.name != "lm_head.weight"));
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensor("model.layers.0.mlp.down_proj.weight").is_ok());
    assert!(st.tensor("model.layers.0.mlp.up_proj.scales").is_ok());
    assert!(st.tensor("model.layers.0.mlp.down_proj.scales").is_err());
}

#[test]
fn cli_converts_a_hugging_face_folder_to_mlx() {
    let work = tempfile::tempdir().unwrap();
    let model_dir = work.path().join("hf");
    Tiny::of(Arch::Qwen3).write(&model_dir, 21);
    let output = work.path().join("mlx");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-convert"))
        .args(["mlx", "--input"])
        .arg(&model_dir)
        .arg("--output")
        .arg(&output)
        .args(["--mixed", "--json"])
        .output()
        .unwrap();
    let report = json_report(&out);
    assert_eq!(report["architecture"], "qwen3");
    assert!(report["quantized"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["tokenizer"].is_null(),
        "copied, not rebuilt: {report}"
    );
    let config = read_json(&output.join("config.json"));
    assert_eq!(config["model_type"], "qwen3");
    assert_eq!(config["quantization"]["model.embed_tokens"]["bits"], 8);
    assert_eq!(leftovers(work.path(), &["hf", "mlx"]), Vec::<String>::new());

    // Without --json: the human summary says where the tokenizer came from.
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-convert"))
        .args(["mlx", "--force", "--input"])
        .arg(&model_dir)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("quantised from floats"), "{text}");
    assert!(text.contains("copied from the source folder"), "{text}");
}

#[test]
fn hf_to_mlx_bad_inputs_are_clear_errors_and_write_nothing() {
    use switchyard_converter::mlx::{convert_hf, MlxError, MlxOptions};
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good");
    Tiny::of(Arch::Llama).write(&good, 9);
    let options = MlxOptions::default();
    let out_parent = work.path().join("out");
    std::fs::create_dir_all(&out_parent).unwrap();
    let out = out_parent.join("mlx");
    let copy_of_good = |name: &str| {
        let dir = work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&good).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        dir
    };

    // No tokenizer.
    let no_tokenizer = copy_of_good("no-tokenizer");
    std::fs::remove_file(no_tokenizer.join("tokenizer.json")).unwrap();
    let err = convert_hf(&no_tokenizer, &out, &options).unwrap_err();
    assert!(matches!(err, MlxError::Tokenizer { .. }), "{err}");
    assert!(err.to_string().contains("no-tokenizer"), "{err}");

    // Truncated weights.
    let truncated = copy_of_good("truncated");
    let weights = truncated.join("model.safetensors");
    let len = std::fs::metadata(&weights).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let err = convert_hf(&truncated, &out, &options).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    // A shape that config.json does not imply.
    let mismatched = copy_of_good("mismatched");
    let mut config = read_json(&mismatched.join("config.json"));
    config["intermediate_size"] = json!(256);
    std::fs::write(mismatched.join("config.json"), config.to_string()).unwrap();
    let err = convert_hf(&mismatched, &out, &options).unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");

    // An encoder.
    let bert = copy_of_good("bert");
    let mut config = read_json(&bert.join("config.json"));
    config["architectures"] = json!(["BertModel"]);
    std::fs::write(bert.join("config.json"), config.to_string()).unwrap();
    let err = convert_hf(&bert, &out, &options).unwrap_err();
    assert!(err.to_string().contains("encoder"), "{err}");

    // Bad options.
    let err = convert_hf(
        &good,
        &out,
        &MlxOptions {
            bits: 7,
            ..MlxOptions::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, MlxError::Options(_)), "{err}");

    assert_eq!(leftovers(&out_parent, &[]), Vec::<String>::new());

    // An existing output is kept unless overwrite is asked for.
    convert_hf(&good, &out, &options).unwrap();
    let err = convert_hf(&good, &out, &options).unwrap_err();
    assert!(err.to_string().contains("exists"), "{err}");
    convert_hf(
        &good,
        &out,
        &MlxOptions {
            overwrite: true,
            ..MlxOptions::default()
        },
    )
    .unwrap();
    assert_eq!(leftovers(&out_parent, &["mlx"]), Vec::<String>::new());
}
