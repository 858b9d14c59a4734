//! all-MiniLM-L6-v2 (or any BERT-style encoder exported to ONNX) as a sentence embedder:
//! WordPiece tokenisation, one ONNX Runtime session, mean pooling over the attention mask and
//! L2 normalisation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::session::{Session, SessionInputValue};
use ort::value::{TensorRef, ValueType};
use switchyard_core::text::prefix;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use crate::providers::{ExecutionProvider, Placement, ProviderReport};
use crate::runtime;
use crate::OnnxError;

/// Input name of the token ids.
const INPUT_IDS: &str = "input_ids";
/// Input name of the attention mask.
const ATTENTION_MASK: &str = "attention_mask";
/// Input name of the segment ids (optional in some exports).
const TOKEN_TYPE_IDS: &str = "token_type_ids";
/// Preferred output name; the first output is used when it is absent.
const LAST_HIDDEN_STATE: &str = "last_hidden_state";

/// Texts are cut to `max_tokens × BYTES_PER_TOKEN_BOUND` bytes before tokenising. WordPiece
/// tokens of English text average 4-5 bytes; 64 leaves room for long words, URLs and scripts
/// with multi-byte characters.
const BYTES_PER_TOKEN_BOUND: usize = 64;

/// Default token limit: the length all-MiniLM-L6-v2 was trained with.
pub const DEFAULT_MAX_TOKENS: usize = 128;

/// How to load a [`MiniLmEmbedder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedderOptions {
    /// ONNX Runtime intra-op threads (at least 1).
    pub threads: usize,
    /// Texts are truncated to this many tokens, special tokens included (at least 8).
    pub max_tokens: usize,
    /// Let idle ONNX Runtime worker threads spin for a while before sleeping. Lower latency,
    /// but burns CPU that a llama.cpp worker on the same cores could use.
    pub spin: bool,
    /// Execution providers to try, best first (the device profile's order).
    pub placement: Placement,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            threads: 2,
            max_tokens: DEFAULT_MAX_TOKENS,
            spin: true,
            placement: Placement::default(),
        }
    }
}

/// Session plus reusable input buffers; guarded by one mutex because a session run needs
/// `&mut Session`.
struct Inner {
    session: Session,
    ids: Vec<i64>,
    mask: Vec<i64>,
    types: Vec<i64>,
}

/// A sentence embedder over ONNX Runtime: `text -> unit-length vector`.
///
/// `Send + Sync`; calls are serialised on one session (ONNX Runtime parallelises inside a call
/// with the configured threads). Load one per worker thread for concurrent throughput.
pub struct MiniLmEmbedder {
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    /// Shared by the views [`MiniLmEmbedder::sharing_session`] makes.
    inner: Arc<Mutex<Inner>>,
    has_token_type_ids: bool,
    output_name: String,
    dim: usize,
    max_tokens: usize,
    threads: usize,
    model_path: PathBuf,
    provider: ProviderReport,
}

impl std::fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("model", &self.model_path)
            .field("dim", &self.dim)
            .field("max_tokens", &self.max_tokens)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl MiniLmEmbedder {
    /// Loads the model and tokenizer with `threads` intra-op threads and the default
    /// 128-token limit. [`crate::init_runtime`] must have succeeded first.
    pub fn load(
        model_onnx: &Path,
        tokenizer_json: &Path,
        threads: usize,
    ) -> Result<MiniLmEmbedder, OnnxError> {
        let options = EmbedderOptions {
            threads,
            ..EmbedderOptions::default()
        };
        MiniLmEmbedder::load_with(model_onnx, tokenizer_json, &options)
    }

    /// Loads the model and tokenizer with explicit options.
    pub fn load_with(
        model_onnx: &Path,
        tokenizer_json: &Path,
        options: &EmbedderOptions,
    ) -> Result<MiniLmEmbedder, OnnxError> {
        if options.threads == 0 {
            return Err(OnnxError::Options("threads must be at least 1".into()));
        }
        if options.max_tokens < 8 {
            return Err(OnnxError::Options(format!(
                "max_tokens must be at least 8, got {}",
                options.max_tokens
            )));
        }
        if !tokenizer_json.is_file() {
            return Err(OnnxError::TokenizerMissing {
                path: tokenizer_json.to_path_buf(),
            });
        }
        if !model_onnx.is_file() {
            return Err(OnnxError::ModelMissing {
                path: model_onnx.to_path_buf(),
            });
        }
        runtime::runtime().ok_or(OnnxError::RuntimeNotInitialized)?;
        let tokenizer = load_tokenizer(tokenizer_json, options.max_tokens)?;

        let (session, provider) = runtime::session(
            model_onnx,
            options.threads,
            options.spin,
            &options.placement,
        )?;

        let signature_error = |message: String| OnnxError::Signature {
            path: model_onnx.to_path_buf(),
            message,
        };
        let input_names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in [INPUT_IDS, ATTENTION_MASK] {
            if !input_names.contains(&required) {
                return Err(signature_error(format!(
                    "no `{required}` input (inputs: {input_names:?})"
                )));
            }
        }
        if let Some(other) = input_names
            .iter()
            .find(|n| ![INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS].contains(n))
        {
            return Err(signature_error(format!("unknown input `{other}`")));
        }
        let has_token_type_ids = input_names.contains(&TOKEN_TYPE_IDS);
        let output = session
            .outputs()
            .iter()
            .find(|o| o.name() == LAST_HIDDEN_STATE)
            .or_else(|| session.outputs().first())
            .ok_or_else(|| signature_error("no outputs".into()))?;
        let output_name = output.name().to_owned();
        let declared_dim = match output.dtype() {
            ValueType::Tensor { shape, .. } if shape.len() == 3 => {
                shape.last().copied().filter(|d| *d > 0)
            }
            other => {
                return Err(signature_error(format!(
                    "output `{output_name}` is {other:?}, expected a [batch, tokens, hidden] tensor"
                )))
            }
        };

        let mut embedder = MiniLmEmbedder {
            tokenizer,
            tokenizer_path: tokenizer_json.to_path_buf(),
            inner: Arc::new(Mutex::new(Inner {
                session,
                ids: Vec::with_capacity(options.max_tokens),
                mask: Vec::with_capacity(options.max_tokens),
                types: Vec::with_capacity(options.max_tokens),
            })),
            has_token_type_ids,
            output_name,
            dim: 0,
            max_tokens: options.max_tokens,
            threads: options.threads,
            model_path: model_onnx.to_path_buf(),
            provider,
        };
        // Warm-up run: allocates ONNX Runtime's buffers now rather than on the first request,
        // and establishes the embedding width.
        let probe = embedder.embed_batch(&["warm-up"])?;
        let dim = probe.first().map_or(0, Vec::len);
        if dim == 0 || declared_dim.is_some_and(|d| usize::try_from(d) != Ok(dim)) {
            return Err(signature_error(format!(
                "output width {dim} differs from the declared {declared_dim:?}"
            )));
        }
        embedder.dim = dim;
        tracing::debug!(model = %model_onnx.display(), dim, threads = options.threads, "embedder loaded");
        Ok(embedder)
    }

    /// Another embedder on this one's ONNX Runtime session that truncates texts to
    /// `max_tokens`: the model is held once (ONNX Runtime keeps ~160 MB resident for the int8
    /// MiniLM), and calls from both are serialised on the one session.
    pub fn sharing_session(&self, max_tokens: usize) -> Result<MiniLmEmbedder, OnnxError> {
        if max_tokens < 8 {
            return Err(OnnxError::Options(format!(
                "max_tokens must be at least 8, got {max_tokens}"
            )));
        }
        Ok(MiniLmEmbedder {
            tokenizer: load_tokenizer(&self.tokenizer_path, max_tokens)?,
            tokenizer_path: self.tokenizer_path.clone(),
            inner: Arc::clone(&self.inner),
            has_token_type_ids: self.has_token_type_ids,
            output_name: self.output_name.clone(),
            dim: self.dim,
            max_tokens,
            threads: self.threads,
            model_path: self.model_path.clone(),
            provider: self.provider.clone(),
        })
    }

    /// The ONNX file the session was loaded from.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// Whether the session was loaded from `path` (the same file, however it is spelled).
    pub fn is_loaded_from(&self, path: &Path) -> bool {
        runtime::same_file(&self.model_path, path)
    }

    /// Width of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Token limit (texts are truncated to it, special tokens included).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Intra-op threads of the session.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The execution provider the session runs on.
    pub fn execution_provider(&self) -> ExecutionProvider {
        self.provider.used
    }

    /// The provider in use and the ones passed over before it, with reasons.
    pub fn provider_report(&self) -> &ProviderReport {
        &self.provider
    }

    /// Number of tokens `text` becomes (special tokens included, after truncation).
    pub fn token_count(&self, text: &str) -> Result<usize, OnnxError> {
        Ok(self.encode(text)?.len())
    }

    /// Embeds one text: a unit-length (L2-normalised) vector of [`MiniLmEmbedder::dim`]
    /// floats, the mean of the last hidden states over the text's tokens.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, OnnxError> {
        let encoding = self.encode(text)?;
        let mut inner = self.lock();
        let Inner {
            session,
            ids,
            mask,
            types,
        } = &mut *inner;
        let n = encoding.len();
        fill(ids, mask, types, std::slice::from_ref(&encoding), n);
        let shape = [1usize, n];
        let inputs = self.inputs(shape, ids, mask, types)?;
        let outputs = session
            .run(inputs)
            .map_err(|e| OnnxError::Inference(e.to_string()))?;
        let (out_shape, hidden) = outputs[self.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| OnnxError::Output(e.to_string()))?;
        let width = check_shape(out_shape, 1, n)?;
        let mut pooled = vec![0.0f32; width];
        mean_pool(&hidden[..n * width], mask, width, &mut pooled);
        l2_normalise(&mut pooled);
        Ok(pooled)
    }

    /// Embeds several texts in one run (padded to the longest one; padding is masked out).
    /// The vectors come back in input order; each equals what [`MiniLmEmbedder::embed`]
    /// gives for the same text, up to float rounding.
    pub fn embed_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, OnnxError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = texts
            .iter()
            .map(|t| self.encode(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let longest = encodings.iter().map(Encoding::len).max().unwrap_or(0);
        let batch = encodings.len();
        let mut inner = self.lock();
        let Inner {
            session,
            ids,
            mask,
            types,
        } = &mut *inner;
        fill(ids, mask, types, &encodings, longest);
        let inputs = self.inputs([batch, longest], ids, mask, types)?;
        let outputs = session
            .run(inputs)
            .map_err(|e| OnnxError::Inference(e.to_string()))?;
        let (out_shape, hidden) = outputs[self.output_name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| OnnxError::Output(e.to_string()))?;
        let width = check_shape(out_shape, batch, longest)?;
        let rows = longest * width;
        let mut result = Vec::with_capacity(batch);
        for b in 0..batch {
            let mut pooled = vec![0.0f32; width];
            mean_pool(
                &hidden[b * rows..(b + 1) * rows],
                &mask[b * longest..(b + 1) * longest],
                width,
                &mut pooled,
            );
            l2_normalise(&mut pooled);
            result.push(pooled);
        }
        Ok(result)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic inside a previous run leaves no broken invariant: buffers are refilled.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn encode(&self, text: &str) -> Result<Encoding, OnnxError> {
        // Only the start of a text can become its first `max_tokens` tokens: cut giant inputs
        // before tokenising so the cost stays bounded.
        let text = prefix(text, self.max_tokens.saturating_mul(BYTES_PER_TOKEN_BOUND));
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| OnnxError::Tokenize(e.to_string()))?;
        if encoding.is_empty() {
            return Err(OnnxError::Tokenize(
                "the tokenizer produced no tokens".into(),
            ));
        }
        Ok(encoding)
    }

    /// Borrowed tensor views over the input buffers (no copies).
    fn inputs<'a>(
        &self,
        shape: [usize; 2],
        ids: &'a [i64],
        mask: &'a [i64],
        types: &'a [i64],
    ) -> Result<Vec<(std::borrow::Cow<'static, str>, SessionInputValue<'a>)>, OnnxError> {
        let view = |data: &'a [i64]| {
            TensorRef::from_array_view((shape, data))
                .map(SessionInputValue::from)
                .map_err(|e| OnnxError::Inference(e.to_string()))
        };
        let mut inputs = vec![
            (INPUT_IDS.into(), view(ids)?),
            (ATTENTION_MASK.into(), view(mask)?),
        ];
        if self.has_token_type_ids {
            inputs.push((TOKEN_TYPE_IDS.into(), view(types)?));
        }
        Ok(inputs)
    }
}

/// Reads `tokenizer.json`, turns its fixed padding off (we pass the real length or pad a batch
/// to its longest text) and truncates to `max_tokens`.
fn load_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer, OnnxError> {
    let error = |message: String| OnnxError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| error(e.to_string()))?;
    let truncation = TruncationParams {
        max_length: max_tokens,
        ..tokenizer.get_truncation().cloned().unwrap_or_default()
    };
    tokenizer
        .with_padding(None)
        .with_truncation(Some(truncation))
        .map_err(|e| error(e.to_string()))?;
    Ok(tokenizer)
}

/// Fills the row-major `[encodings.len(), width]` input buffers; rows shorter than `width`
/// are padded with id 0 and mask 0.
fn fill(
    ids: &mut Vec<i64>,
    mask: &mut Vec<i64>,
    types: &mut Vec<i64>,
    encodings: &[Encoding],
    width: usize,
) {
    ids.clear();
    mask.clear();
    types.clear();
    for encoding in encodings {
        let n = encoding.len();
        ids.extend(encoding.get_ids().iter().map(|&v| i64::from(v)));
        mask.extend(encoding.get_attention_mask().iter().map(|&v| i64::from(v)));
        types.extend(encoding.get_type_ids().iter().map(|&v| i64::from(v)));
        for buffer in [&mut *ids, &mut *mask, &mut *types] {
            buffer.resize(buffer.len() + (width - n), 0);
        }
    }
}

/// Checks `[batch, tokens, hidden]` and returns `hidden`.
fn check_shape(shape: &[i64], batch: usize, tokens: usize) -> Result<usize, OnnxError> {
    match shape {
        [b, t, h]
            if usize::try_from(*b) == Ok(batch) && usize::try_from(*t) == Ok(tokens) && *h > 0 =>
        {
            usize::try_from(*h).map_err(|e| OnnxError::Output(e.to_string()))
        }
        _ => Err(OnnxError::Output(format!(
            "expected shape [{batch}, {tokens}, hidden], got {shape:?}"
        ))),
    }
}

/// Mean of the `hidden` rows (`[tokens, width]`, row-major) whose mask is non-zero.
fn mean_pool(hidden: &[f32], mask: &[i64], width: usize, out: &mut [f32]) {
    out.fill(0.0);
    let mut count = 0usize;
    for (row, &m) in hidden.chunks_exact(width).zip(mask) {
        if m != 0 {
            count += 1;
            for (o, h) in out.iter_mut().zip(row) {
                *o += h;
            }
        }
    }
    if count > 0 {
        let scale = 1.0 / count as f32;
        for o in out.iter_mut() {
            *o *= scale;
        }
    }
}

/// Scales `v` to unit length (leaves an all-zero vector alone).
fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_ignores_masked_rows() {
        let hidden = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        let mut out = [0.0; 2];
        mean_pool(&hidden, &[1, 1, 0], 2, &mut out);
        assert_eq!(out, [2.0, 3.0]);
    }

    #[test]
    fn l2_normalise_gives_unit_length_and_keeps_zero() {
        let mut v = [3.0, 4.0];
        l2_normalise(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = [0.0, 0.0];
        l2_normalise(&mut z);
        assert_eq!(z, [0.0, 0.0]);
    }

    #[test]
    fn check_shape_validates_batch_and_tokens() {
        assert_eq!(check_shape(&[2, 5, 384], 2, 5).unwrap(), 384);
        assert!(check_shape(&[1, 5, 384], 2, 5).is_err());
        assert!(check_shape(&[2, 5], 2, 5).is_err());
    }
}
