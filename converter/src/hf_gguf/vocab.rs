//! `tokenizer.json` (+ `tokenizer_config.json`, `chat_template.jinja`) → the `tokenizer.*`
//! GGUF metadata that llama.cpp's `llama_vocab::load` reads.
//!
//! - WordPiece (BERT) → `tokenizer.ggml.model = "bert"`. Tokens are stored the way llama.cpp's
//!   WPM tokenizer matches them: a word-initial piece gets the `▁` prefix, a `##` continuation
//!   loses its `##`, and `[SPECIAL]` tokens stay as they are.
//! - Byte-level BPE (GPT-2, Llama 3, Qwen) → `"gpt2"` with the merges. llama.cpp splits text
//!   with a hard-coded regex per pre-tokenizer name (`tokenizer.ggml.pre`), so the name is read
//!   off the `pre_tokenizer` in `tokenizer.json` (its regex, compared with the ones llama.cpp
//!   knows); an unknown one is an error unless the caller names one.
//! - BPE with byte fallback and `▁` spaces (Llama 2, Mistral, TinyLlama) → `"llama"`
//!   (SentencePiece). llama.cpp's SPM tokenizer merges the adjacent pair whose concatenation
//!   scores highest, so each token's score is minus the rank of the merge that makes it: the
//!   same order Hugging Face's BPE applies its merges in.
//!
//! Token types follow `convert_hf_to_gguf.py`: added special tokens are CONTROL, other added
//! tokens USER_DEFINED, `<0xXX>` BYTE, ids with no token (embedding rows past the tokenizer's
//! vocabulary) are filled with `[PAD{id}]` as UNUSED.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::gguf::Value;
use super::HfGgufError;

// llama.cpp's token types (llama_token_type).
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;
const BYTE: i32 = 6;

/// Pre-tokenizer regexes as they appear in `tokenizer.json`, and llama.cpp's name for each.
const PRE_TOKENIZER_REGEXES: &[(&str, &str)] = &[
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "llama-bpe",
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen2",
    ),
    (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        "qwen35",
    ),
];

/// Which tokenizer family the model needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VocabKind {
    /// Encoders: WordPiece.
    Bert,
    /// Decoders: BPE (byte-level or SentencePiece-style).
    Decoder,
}

/// What was written, for the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenizerSummary {
    /// `tokenizer.ggml.model`: `bert`, `gpt2` or `llama`.
    pub model: String,
    /// `tokenizer.ggml.pre`.
    pub pre: String,
    /// Tokens written (the embedding's row count).
    pub tokens: usize,
    /// BPE merges written (0 for WordPiece and SentencePiece).
    pub merges: usize,
    /// Beginning-of-sequence (BERT: `[CLS]`) id.
    pub bos_id: Option<u32>,
    /// End-of-sequence id.
    pub eos_id: Option<u32>,
    /// Whether `tokenizer.chat_template` was written.
    pub chat_template: bool,
}

/// The `tokenizer.*` metadata and a summary of it.
pub(crate) struct Vocab {
    pub metadata: Vec<(String, Value)>,
    pub summary: TokenizerSummary,
}

/// Inputs besides the folder.
pub(crate) struct VocabInput<'a> {
    pub kind: VocabKind,
    /// Rows of the token embedding: the token list is exactly this long.
    pub n_vocab: usize,
    /// `config.json`, for fallback special-token ids and BERT's token type count.
    pub config: &'a Json,
    /// The caller's `tokenizer.ggml.pre`, overriding detection.
    pub pre_override: Option<&'a str>,
}

fn bad(path: &Path, reason: impl Into<String>) -> HfGgufError {
    HfGgufError::Tokenizer {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_json(path: &Path) -> Result<Json, HfGgufError> {
    let text = std::fs::read_to_string(path).map_err(|error| HfGgufError::Io {
        path: path.to_owned(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|e| bad(path, format!("not valid JSON: {e}")))
}

/// A special token given as `"<s>"` or as `{"content": "<s>", ...}`.
fn token_text(value: &Json) -> Option<&str> {
    value
        .as_str()
        .or_else(|| value.get("content").and_then(Json::as_str))
}

struct Entry {
    text: String,
    added: bool,
    special: bool,
}

/// Reads the tokenizer files of `dir` into GGUF metadata.
pub(crate) fn build(dir: &Path, input: &VocabInput<'_>) -> Result<Vocab, HfGgufError> {
    let path = dir.join("tokenizer.json");
    if !path.is_file() {
        return Err(HfGgufError::MissingTokenizer {
            path,
            reason: "tokenizer.json not found (the converter reads the Hugging Face fast \
                     tokenizer file; a folder with only tokenizer.model or vocab.txt is not \
                     supported)"
                .into(),
        });
    }
    let tj = read_json(&path)?;
    let config_path = dir.join("tokenizer_config.json");
    let tconfig = if config_path.is_file() {
        read_json(&config_path)?
    } else {
        Json::Null
    };

    let model = tj
        .get("model")
        .ok_or_else(|| bad(&path, "has no \"model\" section"))?;
    let model_type = model.get("type").and_then(Json::as_str).unwrap_or("");
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| {
            bad(
                &path,
                format!("model type {model_type:?} has no vocab map (WordPiece or BPE expected)"),
            )
        })?;

    let n = input.n_vocab;
    let mut entries: Vec<Option<Entry>> = (0..n).map(|_| None).collect();
    let mut ids: HashMap<String, u32> = HashMap::with_capacity(vocab.len());
    let place =
        |entries: &mut Vec<Option<Entry>>, text: &str, id: u64, added: bool, special: bool| {
            let slot = usize::try_from(id).ok().filter(|&i| i < n).ok_or_else(|| {
                bad(
                    &path,
                    format!(
                        "token {text:?} has id {id}, but the token embedding has only {n} rows \
                         (config.json vocab_size)"
                    ),
                )
            })?;
            entries[slot] = Some(Entry {
                text: text.to_owned(),
                added,
                special,
            });
            Ok::<u32, HfGgufError>(slot as u32)
        };
    for (text, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| bad(&path, format!("token {text:?} has a non-integer id")))?;
        let id = place(&mut entries, text, id, false, false)?;
        ids.insert(text.clone(), id);
    }
    for added in tj
        .get("added_tokens")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(text), Some(id)) = (
            added.get("content").and_then(Json::as_str),
            added.get("id").and_then(Json::as_u64),
        ) else {
            return Err(bad(&path, "an added_tokens entry lacks content or id"));
        };
        let special = added
            .get("special")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let id = place(&mut entries, text, id, true, special)?;
        ids.insert(text.to_owned(), id);
    }

    let tokenizer_model = match (input.kind, model_type) {
        (VocabKind::Bert, "WordPiece") => "bert",
        (VocabKind::Decoder, "BPE") => {
            if contains_type(tj.get("pre_tokenizer"), "ByteLevel")
                || contains_type(tj.get("decoder"), "ByteLevel")
            {
                "gpt2"
            } else if model.get("byte_fallback").and_then(Json::as_bool) == Some(true)
                || contains_type(tj.get("decoder"), "ByteFallback")
            {
                "llama"
            } else {
                return Err(bad(
                    &path,
                    "BPE tokenizer that is neither byte-level nor SentencePiece-style (byte \
                     fallback): llama.cpp has no matching tokenizer",
                ));
            }
        }
        (VocabKind::Bert, other) => {
            return Err(bad(
                &path,
                format!("a BERT model needs a WordPiece tokenizer, found {other:?}"),
            ))
        }
        (VocabKind::Decoder, other) => {
            return Err(bad(
                &path,
                format!("a decoder needs a BPE tokenizer, found {other:?} (not supported)"),
            ))
        }
    };

    let merges = read_merges(&path, model)?;
    let lookup = |name: &str| -> Option<u32> {
        tconfig
            .get(format!("{name}_token"))
            .and_then(token_text)
            .and_then(|t| ids.get(t).copied())
            .or_else(|| config_id(input.config, &format!("{name}_token_id")))
            .filter(|&id| (id as usize) < n)
    };

    let mut metadata: Vec<(String, Value)> = Vec::new();
    let mut push = |key: &str, value: Value| metadata.push((format!("tokenizer.{key}"), value));
    push("ggml.model", Value::String(tokenizer_model.into()));

    let mut texts = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let unk_text = model.get("unk_token").and_then(Json::as_str);
    for (i, entry) in entries.iter().enumerate() {
        let Some(entry) = entry else {
            texts.push(format!("[PAD{i}]"));
            types.push(UNUSED);
            continue;
        };
        let (text, kind) = match tokenizer_model {
            "bert" => (
                phantom_space(&entry.text),
                if entry.added && entry.special {
                    CONTROL
                } else {
                    NORMAL
                },
            ),
            "gpt2" => (
                entry.text.clone(),
                if entry.added && (entry.special || looks_special(&entry.text)) {
                    CONTROL
                } else if entry.added {
                    USER_DEFINED
                } else {
                    NORMAL
                },
            ),
            _ => (
                entry.text.clone(),
                if entry.added && entry.special {
                    CONTROL
                } else if entry.added {
                    USER_DEFINED
                } else if Some(entry.text.as_str()) == unk_text {
                    UNKNOWN
                } else if is_byte_token(&entry.text) {
                    BYTE
                } else {
                    NORMAL
                },
            ),
        };
        texts.push(text);
        types.push(kind);
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(n);
    for (i, text) in texts.iter().enumerate() {
        if let Some(first) = seen.insert(text.as_str(), i) {
            return Err(bad(
                &path,
                format!(
                    "tokens {first} and {i} both become {text:?} in llama.cpp's vocabulary \
                     (llama.cpp needs every token text to be unique)"
                ),
            ));
        }
    }

    let pre = match tokenizer_model {
        "gpt2" => match input.pre_override {
            Some(name) => name.to_owned(),
            None => detect_pre_tokenizer(tj.get("pre_tokenizer"))
                .map_err(|reason| bad(&path, reason))?
                .to_owned(),
        },
        _ => input.pre_override.unwrap_or("default").to_owned(),
    };
    push("ggml.pre", Value::String(pre.clone()));
    if tokenizer_model == "llama" {
        push(
            "ggml.scores",
            Value::F32s(spm_scores(&entries, &merges, &ids)),
        );
    }
    push("ggml.tokens", Value::Strings(texts));
    push("ggml.token_type", Value::I32s(types));
    let n_merges = if tokenizer_model == "gpt2" {
        let count = merges.len();
        push("ggml.merges", Value::Strings(merges));
        count
    } else {
        0
    };

    let template = post_processor_template(tj.get("post_processor"));
    let mut bos_id = lookup("bos");
    let eos_id = lookup("eos");
    let unk_id = lookup("unk").or_else(|| unk_text.and_then(|t| ids.get(t).copied()));
    let mut pad_id = lookup("pad");
    let mut bert_ids = Vec::new();
    if tokenizer_model == "bert" {
        // llama.cpp's WPM tokenizer adds BOS as [CLS] and SEP at the end.
        let cls = lookup("cls")
            .or(template.first)
            .or_else(|| ids.get("[CLS]").copied());
        let sep = lookup("sep")
            .or(template.last)
            .or_else(|| ids.get("[SEP]").copied());
        let mask = lookup("mask").or_else(|| ids.get("[MASK]").copied());
        bos_id = bos_id.or(cls);
        pad_id = pad_id.or_else(|| {
            tj.get("padding")
                .and_then(|p| p.get("pad_id"))
                .and_then(Json::as_u64)
                .map(|id| id as u32)
                .or_else(|| ids.get("[PAD]").copied())
        });
        bert_ids = vec![
            ("cls_token_id", cls),
            ("seperator_token_id", sep),
            ("mask_token_id", mask),
        ];
        let type_count = input
            .config
            .get("type_vocab_size")
            .and_then(Json::as_u64)
            .unwrap_or(1);
        push("ggml.token_type_count", Value::U32(type_count as u32));
        let normalizer = tj.get("normalizer");
        let lowercase = normalizer
            .and_then(|n| n.get("lowercase"))
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let strip_accents = normalizer
            .and_then(|n| n.get("strip_accents"))
            .and_then(Json::as_bool)
            .unwrap_or(lowercase);
        push("ggml.normalizer.lowercase", Value::Bool(lowercase));
        push("ggml.normalizer.strip_accents", Value::Bool(strip_accents));
    }
    let special = [
        ("bos_token_id", bos_id),
        ("eos_token_id", eos_id),
        ("unknown_token_id", unk_id),
        ("padding_token_id", pad_id),
    ];
    for (key, id) in special.into_iter().chain(bert_ids) {
        if let Some(id) = id {
            push(&format!("ggml.{key}"), Value::U32(id));
        }
    }

    // Whether BOS / EOS are added: tokenizer_config.json says so explicitly, else the
    // post-processor's template shows it, else the family's default.
    let flag = |key: &str| tconfig.get(key).and_then(Json::as_bool);
    let add_bos = flag("add_bos_token").unwrap_or(match tokenizer_model {
        "bert" => true,
        "llama" => template.first.is_some() || template.ids.is_empty(),
        _ => template.first.is_some() && template.first == bos_id,
    });
    let add_eos = flag("add_eos_token")
        .unwrap_or(tokenizer_model != "bert" && template.last.is_some() && template.last == eos_id);
    push("ggml.add_bos_token", Value::Bool(add_bos));
    push("ggml.add_eos_token", Value::Bool(add_eos));
    if tokenizer_model == "bert" {
        push("ggml.add_sep_token", Value::Bool(true));
    }
    if tokenizer_model == "llama" {
        push(
            "ggml.add_space_prefix",
            Value::Bool(spm_adds_space_prefix(&tj)),
        );
    }

    let chat_template = read_chat_template(dir, &tconfig, &config_path)?;
    let has_template = chat_template.is_some();
    if let Some(template) = chat_template {
        push("chat_template", Value::String(template));
    }

    Ok(Vocab {
        metadata,
        summary: TokenizerSummary {
            model: tokenizer_model.into(),
            pre,
            tokens: n,
            merges: n_merges,
            bos_id,
            eos_id,
            chat_template: has_template,
        },
    })
}

fn config_id(config: &Json, key: &str) -> Option<u32> {
    let value = config.get(key)?;
    value
        .as_u64()
        .or_else(|| {
            value
                .as_array()
                .and_then(|a| a.first())
                .and_then(Json::as_u64)
        })
        .and_then(|v| u32::try_from(v).ok())
}

fn contains_type(node: Option<&Json>, wanted: &str) -> bool {
    let Some(node) = node else { return false };
    if node.get("type").and_then(Json::as_str) == Some(wanted) {
        return true;
    }
    ["pretokenizers", "decoders", "normalizers", "processors"]
        .iter()
        .filter_map(|k| node.get(*k).and_then(Json::as_array))
        .flatten()
        .any(|child| contains_type(Some(child), wanted))
}

fn read_merges(path: &Path, model: &Json) -> Result<Vec<String>, HfGgufError> {
    let Some(merges) = model.get("merges").and_then(Json::as_array) else {
        return Ok(Vec::new());
    };
    merges
        .iter()
        .map(|m| match m {
            Json::String(s) => Ok(s.clone()),
            Json::Array(pair) => match pair.as_slice() {
                [Json::String(a), Json::String(b)] => Ok(format!("{a} {b}")),
                _ => Err(bad(path, format!("merge {m} is not a pair of strings"))),
            },
            _ => Err(bad(
                path,
                format!("merge {m} is neither \"a b\" nor [a, b]"),
            )),
        })
        .collect()
}

fn phantom_space(token: &str) -> String {
    if token.starts_with('[') && token.ends_with(']') {
        token.to_owned()
    } else if let Some(rest) = token.strip_prefix("##") {
        rest.to_owned()
    } else {
        format!("\u{2581}{token}")
    }
}

/// convert_hf_to_gguf.py's `does_token_look_special`.
fn looks_special(token: &str) -> bool {
    (token.starts_with("<|") && token.ends_with("|>") && token.len() > 4)
        || (token.starts_with("<｜") && token.ends_with("｜>"))
        || matches!(token, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
}

fn is_byte_token(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 6
        && token.starts_with("<0x")
        && token.ends_with('>')
        && b[3..5].iter().all(u8::is_ascii_hexdigit)
}

/// SentencePiece-style scores: minus the rank of the first merge producing the token; tokens
/// no merge produces (single characters, bytes, specials) rank below every merge.
fn spm_scores(
    entries: &[Option<Entry>],
    merges: &[String],
    ids: &HashMap<String, u32>,
) -> Vec<f32> {
    let mut scores: Vec<Option<f32>> = vec![None; entries.len()];
    for (rank, merge) in merges.iter().enumerate() {
        if let Some((a, b)) = merge.split_once(' ') {
            if let Some(&id) = ids.get(&format!("{a}{b}")) {
                let slot = &mut scores[id as usize];
                if slot.is_none() {
                    *slot = Some(-(rank as f32));
                }
            }
        }
    }
    let floor = -(merges.len() as f32) - 1.0;
    scores.into_iter().map(|s| s.unwrap_or(floor)).collect()
}

fn spm_adds_space_prefix(tj: &Json) -> bool {
    let prepends = |node: &Json| {
        node.get("type").and_then(Json::as_str) == Some("Prepend")
            && node.get("prepend").and_then(Json::as_str) == Some("\u{2581}")
    };
    let normalizer = tj.get("normalizer");
    let in_normalizer = normalizer.is_some_and(|n| {
        prepends(n)
            || n.get("normalizers")
                .and_then(Json::as_array)
                .is_some_and(|items| items.iter().any(prepends))
    });
    let metaspace = |node: &Json| {
        node.get("type").and_then(Json::as_str) == Some("Metaspace")
            && node
                .get("prepend_scheme")
                .and_then(Json::as_str)
                .map_or_else(
                    || {
                        node.get("add_prefix_space")
                            .and_then(Json::as_bool)
                            .unwrap_or(true)
                    },
                    |s| s != "never",
                )
    };
    let pre = tj.get("pre_tokenizer");
    let in_pre = pre.is_some_and(|p| {
        metaspace(p)
            || p.get("pretokenizers")
                .and_then(Json::as_array)
                .is_some_and(|items| items.iter().any(metaspace))
    });
    in_normalizer || in_pre
}

/// llama.cpp's pre-tokenizer name for a byte-level BPE `pre_tokenizer`.
fn detect_pre_tokenizer(pre: Option<&Json>) -> Result<&'static str, String> {
    let pre = pre.ok_or("byte-level BPE without a pre_tokenizer: cannot tell which regex llama.cpp should split with")?;
    let kind = pre.get("type").and_then(Json::as_str).unwrap_or("");
    let use_regex = |node: &Json| {
        node.get("use_regex")
            .and_then(Json::as_bool)
            .unwrap_or(true)
    };
    if kind == "ByteLevel" && use_regex(pre) {
        return Ok("gpt-2");
    }
    let items = pre
        .get("pretokenizers")
        .and_then(Json::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let types: Vec<&str> = items
        .iter()
        .map(|i| i.get("type").and_then(Json::as_str).unwrap_or(""))
        .collect();
    match types.as_slice() {
        ["Split", "ByteLevel"] if !use_regex(&items[1]) => {
            let pattern = items[0]
                .get("pattern")
                .and_then(|p| p.get("Regex"))
                .and_then(Json::as_str)
                .unwrap_or("");
            PRE_TOKENIZER_REGEXES
                .iter()
                .find(|(regex, _)| *regex == pattern)
                .map(|(_, name)| *name)
                .ok_or_else(|| {
                    format!(
                        "pre-tokenizer regex {pattern:?} is not one llama.cpp is known to \
                         implement here; name it explicitly (pre_tokenizer option / --pre)"
                    )
                })
        }
        ["Digits", "ByteLevel"]
            if items[0].get("individual_digits").and_then(Json::as_bool) == Some(true)
                && use_regex(&items[1]) =>
        {
            Ok("smollm")
        }
        _ => Err(format!(
            "pre-tokenizer {} is not one llama.cpp is known to implement here; name it \
             explicitly (pre_tokenizer option / --pre)",
            serde_json::to_string(pre).unwrap_or_default()
        )),
    }
}

/// The special tokens a `TemplateProcessing` post-processor puts around a single sequence.
#[derive(Default)]
struct Template {
    first: Option<u32>,
    last: Option<u32>,
    ids: Vec<u32>,
}

fn post_processor_template(node: Option<&Json>) -> Template {
    let Some(node) = node else {
        return Template::default();
    };
    match node.get("type").and_then(Json::as_str) {
        Some("Sequence") => node
            .get("processors")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|p| post_processor_template(Some(p)))
            .find(|t| !t.ids.is_empty())
            .unwrap_or_default(),
        Some("BertProcessing") | Some("RobertaProcessing") => {
            let id = |k: &str| {
                node.get(k)
                    .and_then(|v| v.get(1))
                    .and_then(Json::as_u64)
                    .map(|v| v as u32)
            };
            let (cls, sep) = (id("cls"), id("sep"));
            Template {
                first: cls,
                last: sep,
                ids: cls.into_iter().chain(sep).collect(),
            }
        }
        Some("TemplateProcessing") => {
            let special_id = |piece: &Json| -> Option<u32> {
                let name = piece.get("SpecialToken")?.get("id")?.as_str()?;
                node.get("special_tokens")?
                    .get(name)?
                    .get("ids")?
                    .get(0)?
                    .as_u64()
                    .map(|v| v as u32)
            };
            let single = node
                .get("single")
                .and_then(Json::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            Template {
                first: single.first().and_then(special_id),
                last: if single.len() > 1 {
                    single.last().and_then(special_id)
                } else {
                    None
                },
                ids: single.iter().filter_map(special_id).collect(),
            }
        }
        _ => Template::default(),
    }
}

fn read_chat_template(
    dir: &Path,
    tconfig: &Json,
    config_path: &Path,
) -> Result<Option<String>, HfGgufError> {
    match tconfig.get("chat_template") {
        Some(Json::String(s)) => return Ok(Some(s.clone())),
        Some(Json::Array(named)) => {
            let pick = named
                .iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                .or_else(|| named.first())
                .and_then(|t| t.get("template"))
                .and_then(Json::as_str);
            return pick
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| bad(config_path, "chat_template list has no template"));
        }
        Some(Json::Null) | None => {}
        Some(other) => {
            return Err(bad(
                config_path,
                format!("chat_template is neither a string nor a list: {other}"),
            ))
        }
    }
    let jinja: PathBuf = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja)
            .map(Some)
            .map_err(|error| HfGgufError::Io { path: jinja, error });
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordpiece_tokens_get_phantom_spaces() {
        assert_eq!(phantom_space("[CLS]"), "[CLS]");
        assert_eq!(phantom_space("##ing"), "ing");
        assert_eq!(phantom_space("walk"), "\u{2581}walk");
    }

    #[test]
    fn known_pre_tokenizers_are_recognised() {
        let llama3 = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PRE_TOKENIZER_REGEXES[0].0}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
        ]});
        assert_eq!(detect_pre_tokenizer(Some(&llama3)), Ok("llama-bpe"));
        let gpt2 = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false});
        assert_eq!(detect_pre_tokenizer(Some(&gpt2)), Ok("gpt-2"));
        let odd = serde_json::json!({"type": "Whitespace"});
        assert!(detect_pre_tokenizer(Some(&odd))
            .unwrap_err()
            .contains("Whitespace"));
    }

    #[test]
    fn spm_scores_follow_merge_rank() {
        let entries: Vec<Option<Entry>> = ["a", "b", "ab", "abb"]
            .iter()
            .map(|t| {
                Some(Entry {
                    text: (*t).into(),
                    added: false,
                    special: false,
                })
            })
            .collect();
        let ids: HashMap<String, u32> = [("a", 0), ("b", 1), ("ab", 2), ("abb", 3)]
            .iter()
            .map(|(t, i)| ((*t).to_owned(), *i))
            .collect();
        let scores = spm_scores(&entries, &["a b".into(), "ab b".into()], &ids);
        assert_eq!(scores, vec![-3.0, -3.0, 0.0, -1.0]);
    }
}
