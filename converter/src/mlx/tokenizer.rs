//! Rebuilds the Hugging Face tokenizer files mlx-lm loads (`tokenizer.json`,
//! `tokenizer_config.json`, `special_tokens_map.json`) from a GGUF's vocabulary.
//!
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE from `tokenizer.ggml.tokens` and
//!   `tokenizer.ggml.merges`, pre-tokenised with the very regular expressions llama.cpp uses for
//!   the file's `tokenizer.ggml.pre` (so both split text the same way).
//! - `tokenizer.ggml.model = "llama"` (SentencePiece): BPE over `▁`-joined pieces with byte
//!   fallback; the merges are recovered from the piece scores the way SentencePiece ranks them.
//!
//! Special tokens come from `tokenizer.ggml.token_type`: control tokens become special added
//! tokens, user-defined ones plain added tokens. The chat template goes into
//! `tokenizer_config.json`.

use serde_json::{json, Map, Value as Json};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab as BpeVocab, BPE};
use tokenizers::normalizers::replace::Replace;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::gguf::{GgufFile, Value};
use super::MlxError;

/// llama.cpp token types (`tokenizer.ggml.token_type`).
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;
const TYPE_UNUSED: i64 = 5;
const TYPE_BYTE: i64 = 6;

const GPT2_REGEX: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokeniser regular expressions llama.cpp applies for a `tokenizer.ggml.pre` value
/// (from `llm_tokenizer_bpe` in llama-vocab.cpp), whether llama.cpp ignores merges for
/// whole-word vocabulary hits, and its `clean_spaces` setting.
fn pre_tokenizer_regexes(pre: &str) -> Option<(Vec<&'static str>, bool, bool)> {
    Some(match pre {
        "smollm" | "starcoder" | "refact" | "codeshell" => {
            (vec![r"\p{N}", GPT2_REGEX], false, pre != "smollm")
        }
        "command-r" => (vec![r"\p{N}", GPT2_REGEX], false, false),
        "gpt-2" | "gpt2" | "phi-2" | "mpt" | "olmo" | "jais" => (vec![GPT2_REGEX], false, true),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "dbrx" | "smaug-bpe" => {
            (vec![LLAMA3_REGEX], true, true)
        }
        "qwen2" | "deepseek-r1-qwen" | "stablelm2" => (vec![QWEN2_REGEX], false, false),
        "default" => (
            vec![
                r"[\p{P}\$\+<=>\^~\|]+",
                GPT2_REGEX,
                r"\p{N}+",
                "[0-9][0-9][0-9]",
            ],
            false,
            true,
        ),
        _ => return None,
    })
}

/// What the tokenizer rebuild produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenizerSummary {
    /// `tokenizer.ggml.model` (`gpt2` or `llama`).
    pub model: String,
    /// `tokenizer.ggml.pre`, when present.
    pub pre: Option<String>,
    /// Vocabulary size.
    pub vocab: usize,
    /// BPE merges written (taken from the GGUF or recovered from scores).
    pub merges: usize,
    /// Special (control) tokens.
    pub special_tokens: usize,
    /// Whether a chat template was written to tokenizer_config.json.
    pub chat_template: bool,
}

/// The rebuilt tokenizer files, serialised, plus the ids config.json needs.
pub struct TokenizerFiles {
    /// tokenizer.json.
    pub tokenizer_json: String,
    /// tokenizer_config.json.
    pub tokenizer_config: Json,
    /// special_tokens_map.json.
    pub special_tokens_map: Json,
    /// BOS token id.
    pub bos: Option<u32>,
    /// EOS token ids (EOS first, then EOT / EOM when they differ).
    pub eos: Vec<u32>,
    /// Padding token id.
    pub pad: Option<u32>,
    /// What was built.
    pub summary: TokenizerSummary,
}

struct Vocab<'a> {
    gguf: &'a GgufFile,
    tokens: Vec<&'a str>,
    types: Vec<i64>,
    scores: Vec<f64>,
}

impl<'a> Vocab<'a> {
    fn error(&self, reason: impl Into<String>) -> MlxError {
        MlxError::Tokenizer {
            path: self.gguf.path().to_path_buf(),
            reason: reason.into(),
        }
    }

    fn load(gguf: &'a GgufFile) -> Result<Self, MlxError> {
        let err = |reason: String| MlxError::Tokenizer {
            path: gguf.path().to_path_buf(),
            reason,
        };
        let tokens = gguf
            .get("tokenizer.ggml.tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| err("no tokenizer.ggml.tokens array".into()))?
            .iter()
            .map(|v| v.as_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| err("tokenizer.ggml.tokens holds non-strings".into()))?;
        let types = match gguf
            .get("tokenizer.ggml.token_type")
            .and_then(Value::as_array)
        {
            Some(a) => a
                .iter()
                .map(|v| match v {
                    Value::I64(i) => Some(*i),
                    Value::U64(u) => i64::try_from(*u).ok(),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| err("tokenizer.ggml.token_type holds non-integers".into()))?,
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(err(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let scores = match gguf.get("tokenizer.ggml.scores").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .map(Value::as_f64)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| err("tokenizer.ggml.scores holds non-numbers".into()))?,
            None => Vec::new(),
        };
        Ok(Vocab {
            gguf,
            tokens,
            types,
            scores,
        })
    }

    fn id(&self, key: &str) -> Result<Option<u32>, MlxError> {
        match self.gguf.get(key) {
            None => Ok(None),
            Some(v) => {
                let id = v
                    .as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .filter(|&i| (i as usize) < self.tokens.len())
                    .ok_or_else(|| self.error(format!("{key} = {v:?} is not a token id")))?;
                Ok(Some(id))
            }
        }
    }

    fn flag(&self, key: &str) -> Option<bool> {
        self.gguf.get(key).and_then(Value::as_bool)
    }

    fn text(&self, id: Option<u32>) -> Option<&'a str> {
        id.and_then(|i| self.tokens.get(i as usize).copied())
    }

    fn added_tokens(&self) -> Vec<(u32, AddedToken)> {
        let mut added = Vec::new();
        for (id, (&text, &kind)) in self.tokens.iter().zip(&self.types).enumerate() {
            let special = match kind {
                TYPE_CONTROL => true,
                TYPE_USER_DEFINED => false,
                _ => continue,
            };
            let mut token = AddedToken::from(text.to_string(), special);
            token.normalized = false;
            added.push((id as u32, token));
        }
        added
    }

    fn vocab_map(&self) -> Result<BpeVocab, MlxError> {
        let mut map = BpeVocab::with_capacity(self.tokens.len());
        for (id, &text) in self.tokens.iter().enumerate() {
            if map.insert(text.to_string(), id as u32).is_some() && self.types[id] != TYPE_UNUSED {
                return Err(self.error(format!("token {text:?} appears twice (id {id})")));
            }
        }
        Ok(map)
    }
}

/// Builds the tokenizer files for `gguf`.
pub fn build(gguf: &GgufFile) -> Result<TokenizerFiles, MlxError> {
    let vocab = Vocab::load(gguf)?;
    let model = gguf
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .ok_or_else(|| vocab.error("no tokenizer.ggml.model"))?
        .to_string();
    let pre = gguf
        .get("tokenizer.ggml.pre")
        .and_then(Value::as_str)
        .map(str::to_string);
    let bos = vocab.id("tokenizer.ggml.bos_token_id")?;
    let eos_id = vocab.id("tokenizer.ggml.eos_token_id")?;
    let unk = vocab.id("tokenizer.ggml.unknown_token_id")?;
    let pad = vocab.id("tokenizer.ggml.padding_token_id")?;
    let mut eos: Vec<u32> = eos_id.into_iter().collect();
    for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
        if let Some(id) = vocab.id(key)? {
            if !eos.contains(&id) {
                eos.push(id);
            }
        }
    }

    let (mut tokenizer, merges, default_add_bos, clean_spaces) = match model.as_str() {
        "gpt2" => byte_level_bpe(&vocab, pre.as_deref())?,
        "llama" => sentencepiece_bpe(&vocab, unk)?,
        other => {
            return Err(MlxError::Unsupported {
                path: gguf.path().to_path_buf(),
                reason: format!(
                    "tokenizer model '{other}' cannot be rebuilt (supported: gpt2 byte-level BPE, \
                     llama SentencePiece)"
                ),
            })
        }
    };
    let add_bos = vocab
        .flag("tokenizer.ggml.add_bos_token")
        .unwrap_or(default_add_bos);
    let add_eos = vocab.flag("tokenizer.ggml.add_eos_token").unwrap_or(false);

    let added = vocab.added_tokens();
    let special_count = added.iter().filter(|(_, t)| t.special).count();
    let (special, plain): (Vec<_>, Vec<_>) = added.iter().cloned().partition(|(_, t)| t.special);
    tokenizer
        .add_special_tokens(special.into_iter().map(|(_, t)| t))
        .map_err(|e| vocab.error(format!("special tokens: {e}")))?;
    tokenizer
        .add_tokens(plain.into_iter().map(|(_, t)| t))
        .map_err(|e| vocab.error(format!("added tokens: {e}")))?;

    let bos_text = vocab.text(bos);
    let eos_text = vocab.text(eos_id);
    if add_bos || add_eos {
        let mut single = Vec::new();
        let mut pair = Vec::new();
        let mut specials = Vec::new();
        if let (true, Some(b), Some(id)) = (add_bos, bos_text, bos) {
            single.push(b.to_string());
            pair.push(b.to_string());
            specials.push((b.to_string(), id));
        }
        single.push("$A".to_string());
        pair.push("$A".to_string());
        if let (true, Some(e), Some(id)) = (add_eos, eos_text, eos_id) {
            single.push(e.to_string());
            pair.push(e.to_string());
            if !specials.iter().any(|(t, _)| t == e) {
                specials.push((e.to_string(), id));
            }
        }
        if let (true, Some(b)) = (add_bos, bos_text) {
            pair.push(format!("{b}:1"));
        }
        pair.push("$B:1".to_string());
        if let (true, Some(e)) = (add_eos, eos_text) {
            pair.push(format!("{e}:1"));
        }
        let template = TemplateProcessing::builder()
            .try_single(single.join(" "))
            .and_then(|b| b.try_pair(pair.join(" ")))
            .map_err(|e| vocab.error(format!("post-processor template: {e}")))?
            .special_tokens(specials)
            .build()
            .map_err(|e| vocab.error(format!("post-processor: {e}")))?;
        tokenizer.with_post_processor(Some(template));
    }

    let tokenizer_json = tokenizer
        .to_string(true)
        .map_err(|e| vocab.error(format!("cannot serialise tokenizer.json: {e}")))?;

    let mut added_decoder = Map::new();
    for (id, token) in &added {
        added_decoder.insert(
            id.to_string(),
            json!({
                "content": token.content,
                "lstrip": false,
                "normalized": false,
                "rstrip": false,
                "single_word": false,
                "special": token.special,
            }),
        );
    }
    let mut special_map = Map::new();
    for (name, id) in [
        ("bos_token", bos),
        ("eos_token", eos_id),
        ("unk_token", unk),
        ("pad_token", pad),
    ] {
        if let Some(text) = vocab.text(id) {
            special_map.insert(name.into(), Json::String(text.to_string()));
        }
    }
    let mut config = Map::new();
    config.insert("add_bos_token".into(), Json::Bool(add_bos));
    config.insert("add_eos_token".into(), Json::Bool(add_eos));
    config.insert("added_tokens_decoder".into(), Json::Object(added_decoder));
    for (k, v) in &special_map {
        config.insert(k.clone(), v.clone());
    }
    let chat_template = gguf.get("tokenizer.chat_template").and_then(Value::as_str);
    if let Some(template) = chat_template {
        config.insert("chat_template".into(), Json::String(template.to_string()));
    }
    config.insert(
        "clean_up_tokenization_spaces".into(),
        Json::Bool(clean_spaces),
    );
    if let Some(ctx) = context_length(gguf) {
        config.insert("model_max_length".into(), json!(ctx));
    }
    config.insert(
        "tokenizer_class".into(),
        Json::String("PreTrainedTokenizerFast".into()),
    );

    Ok(TokenizerFiles {
        tokenizer_json,
        tokenizer_config: Json::Object(config),
        special_tokens_map: Json::Object(special_map),
        bos,
        eos,
        pad,
        summary: TokenizerSummary {
            model,
            pre,
            vocab: vocab.tokens.len(),
            merges,
            special_tokens: special_count,
            chat_template: chat_template.is_some(),
        },
    })
}

fn context_length(gguf: &GgufFile) -> Option<u64> {
    let arch = gguf.get("general.architecture")?.as_str()?;
    gguf.get(&format!("{arch}.context_length"))?.as_u64()
}

type Built = (Tokenizer, usize, bool, bool);

fn byte_level_bpe(vocab: &Vocab<'_>, pre: Option<&str>) -> Result<Built, MlxError> {
    let pre = pre.unwrap_or("default");
    let (regexes, ignore_merges, clean_spaces) =
        pre_tokenizer_regexes(pre).ok_or_else(|| MlxError::Unsupported {
            path: vocab.gguf.path().to_path_buf(),
            reason: format!("BPE pre-tokenizer '{pre}' is not supported"),
        })?;
    let merges_raw = vocab
        .gguf
        .get("tokenizer.ggml.merges")
        .and_then(Value::as_array)
        .ok_or_else(|| vocab.error("no tokenizer.ggml.merges array"))?;
    let mut merges = Vec::with_capacity(merges_raw.len());
    for m in merges_raw {
        let text = m
            .as_str()
            .ok_or_else(|| vocab.error("tokenizer.ggml.merges holds non-strings"))?;
        let (a, b) = text
            .split_once(' ')
            .ok_or_else(|| vocab.error(format!("merge {text:?} has no space")))?;
        merges.push((a.to_string(), b.to_string()));
    }
    let n_merges = merges.len();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab.vocab_map()?, merges)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| vocab.error(format!("BPE model: {e}")))?;
    let mut steps: Vec<PreTokenizerWrapper> = Vec::new();
    for regex in regexes {
        let split = Split::new(
            SplitPattern::Regex(regex.to_string()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| vocab.error(format!("pre-tokenizer regex: {e}")))?;
        steps.push(split.into());
    }
    steps.push(ByteLevel::new(false, false, false).into());
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(steps)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
    Ok((tokenizer, n_merges, false, clean_spaces))
}

/// SentencePiece BPE (Llama 2, Gemma): pieces use `▁` for spaces, unknown bytes fall back to
/// `<0xNN>` tokens. A merge `a b` exists when `a`, `b` and `ab` are all pieces; SentencePiece
/// applies the one whose result has the highest score first, so merges are ranked that way.
fn sentencepiece_bpe(vocab: &Vocab<'_>, unk: Option<u32>) -> Result<Built, MlxError> {
    if vocab.scores.len() != vocab.tokens.len() {
        return Err(vocab.error(format!(
            "{} scores for {} tokens (SentencePiece needs tokenizer.ggml.scores)",
            vocab.scores.len(),
            vocab.tokens.len()
        )));
    }
    let add_space_prefix = vocab
        .flag("tokenizer.ggml.add_space_prefix")
        .unwrap_or(true);
    let map = vocab.vocab_map()?;
    // Only normal (and user-defined) pieces take part in merges, as in SentencePiece.
    let mergeable = |id: usize| {
        !matches!(
            vocab.types[id],
            TYPE_CONTROL | TYPE_UNUSED | TYPE_BYTE | 2 /* unknown */
        )
    };
    let mut ranked: Vec<(f64, u32, u32, u32)> = Vec::new();
    for (id, &piece) in vocab.tokens.iter().enumerate() {
        if !mergeable(id) || piece.chars().count() < 2 {
            continue;
        }
        for (split, _) in piece.char_indices().skip(1) {
            let (a, b) = piece.split_at(split);
            if let (Some(&ia), Some(&ib)) = (map.get(a), map.get(b)) {
                if mergeable(ia as usize) && mergeable(ib as usize) {
                    ranked.push((vocab.scores[id], id as u32, ia, ib));
                }
            }
        }
    }
    // Highest score first; ties by the merged piece's id, then the left piece's (stable).
    ranked.sort_by(|x, y| {
        y.0.partial_cmp(&x.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(x.1.cmp(&y.1))
            .then(x.2.cmp(&y.2))
    });
    let merges: Vec<(String, String)> = ranked
        .iter()
        .map(|&(_, _, a, b)| {
            (
                vocab.tokens[a as usize].to_string(),
                vocab.tokens[b as usize].to_string(),
            )
        })
        .collect();
    let n_merges = merges.len();
    let mut builder = BPE::builder()
        .vocab_and_merges(map, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(text) = vocab.text(unk) {
        builder = builder.unk_token(text.to_string());
    }
    let bpe = builder
        .build()
        .map_err(|e| vocab.error(format!("BPE model: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let replace = Replace::new(" ", "▁").map_err(|e| vocab.error(format!("normalizer: {e}")))?;
    if add_space_prefix {
        let prepend = tokenizers::normalizers::prepend::Prepend::new("▁".to_string());
        tokenizer
            .with_normalizer(Some(tokenizers::normalizers::Sequence::new(vec![
                prepend.into(),
                replace.into(),
            ])))
            .map_err(|e| vocab.error(format!("normalizer: {e}")))?;
    } else {
        tokenizer
            .with_normalizer(Some(replace))
            .map_err(|e| vocab.error(format!("normalizer: {e}")))?;
    }
    let space = tokenizers::decoders::DecoderWrapper::Replace(
        tokenizers::normalizers::replace::Replace::new("▁", " ")
            .map_err(|e| vocab.error(format!("decoder: {e}")))?,
    );
    let mut decoders: Vec<DecoderWrapper> =
        vec![space, ByteFallback::new().into(), Fuse::new().into()];
    if add_space_prefix {
        decoders.push(tokenizers::decoders::strip::Strip::new(' ', 1, 0).into());
    }
    tokenizer.with_decoder(Some(DecoderSequence::new(decoders)));
    Ok((tokenizer, n_merges, true, false))
}
