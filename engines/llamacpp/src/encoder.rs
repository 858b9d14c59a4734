//! A loaded sentence encoder: a GGUF embedding model (e.g. all-MiniLM-L6-v2 converted by
//! `switchyard-convert hf-gguf`) kept in memory and served one text at a time, for callers
//! that embed short texts often (the router's intent tier B).
//!
//! llama.cpp maps the weights from the file, so the Q8_0 MiniLM costs its 25 MB of file pages
//! plus a small compute buffer sized for `max_tokens`, where ONNX Runtime keeps ~160 MB for
//! the int8 ONNX form of the same model. A llama context may not change threads, so one
//! worker thread owns it and callers wait for their answer on a channel.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use switchyard_core::text::prefix;
use switchyard_core::EngineError;

use crate::backend;
use crate::embed::{load, normalized, pooling, tokenize_truncated};

/// How a [`SentenceEncoder`] runs.
#[derive(Debug, Clone, Copy)]
pub struct EncoderOptions {
    /// llama.cpp threads (at least 1).
    pub threads: i32,
    /// [`SentenceEncoder::embed`] truncates texts to this many tokens, special tokens included
    /// (at least 2).
    pub max_tokens: usize,
    /// Longest input any call may embed ([`SentenceEncoder::embed_up_to`]); it sizes the
    /// compute buffer. Raised to `max_tokens` when smaller; capped by the model's training
    /// context.
    pub context: usize,
}

/// What the encoder thread hands back once the model and its context are ready.
struct Loaded {
    llama: Arc<LlamaModel>,
    /// Context (and batch) size in tokens.
    context: u32,
    /// Token limit for [`SentenceEncoder::embed`], capped by the training context.
    max_tokens: u32,
}

/// One text's tokens, and where its vector goes.
type Request = (Vec<LlamaToken>, SyncSender<Result<Vec<f32>, EngineError>>);

/// A GGUF sentence encoder served on its own thread. See the module docs.
pub struct SentenceEncoder {
    requests: Mutex<Option<Sender<Request>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Shared with the worker: callers tokenise on their own thread (the vocabulary is
    /// read-only), the worker decodes.
    llama: Arc<LlamaModel>,
    dim: usize,
    max_tokens: usize,
    context: usize,
    path: PathBuf,
}

impl SentenceEncoder {
    /// Loads `model` and starts its thread. Refuses a model whose pooling does not give
    /// sentence embeddings (a reranker) and options out of range, naming the file.
    pub fn load(model: &Path, options: &EncoderOptions) -> Result<Self, EngineError> {
        if options.threads < 1 {
            return Err(EngineError::invalid(
                format!("threads must be at least 1, got {}", options.threads),
                Some("threads"),
            ));
        }
        let max_tokens = u32::try_from(options.max_tokens)
            .ok()
            .filter(|n| *n >= 2)
            .ok_or_else(|| {
                EngineError::invalid(
                    format!("max_tokens must be 2 to 2^32, got {}", options.max_tokens),
                    Some("max_tokens"),
                )
            })?;
        let (requests, inbox) = channel::<Request>();
        let (ready_tx, ready) = sync_channel::<Result<Loaded, EngineError>>(1);
        let threads = options.threads;
        let wanted_context = options.context;
        let path = model.to_path_buf();
        // The weights load on the thread that decodes with them: llama.cpp can repack them with
        // OpenMP at load (AMX), and a second OpenMP team on the caller's thread would make
        // libgomp park the decode threads at every barrier (see the LLM worker).
        let worker = std::thread::Builder::new()
            .name("sentence-encoder".into())
            .spawn(move || {
                let loaded = load(&path, &LlamaModelParams::default()).and_then(|llama| {
                    let pooling = pooling(&llama, &path)?;
                    let trained = llama.n_ctx_train().max(2);
                    let context = u32::try_from(wanted_context)
                        .unwrap_or(u32::MAX)
                        .max(max_tokens)
                        .min(trained);
                    Ok((Arc::new(llama), pooling, context, max_tokens.min(trained)))
                });
                let (llama, pooling, context, max_tokens) = match loaded {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let params = LlamaContextParams::default()
                    .with_n_ctx(NonZeroU32::new(context))
                    .with_n_batch(context)
                    .with_n_ubatch(context)
                    .with_embeddings(true)
                    .with_pooling_type(pooling)
                    .with_n_threads(threads)
                    .with_n_threads_batch(threads);
                let created = backend().and_then(|b| {
                    llama.new_context(b, params).map_err(|e| {
                        EngineError::Load(format!(
                            "{}: cannot create a context: {e}",
                            path.display()
                        ))
                    })
                });
                match created {
                    Ok(mut ctx) => {
                        let loaded = Loaded {
                            llama: Arc::clone(&llama),
                            context,
                            max_tokens,
                        };
                        if ready_tx.send(Ok(loaded)).is_ok() {
                            serve(&mut ctx, context as usize, &inbox);
                        }
                    }
                    Err(e) => {
                        // The loader gave up waiting only if it is gone: nothing to tell.
                        let _ = ready_tx.send(Err(e));
                    }
                };
            })
            .map_err(|e| EngineError::Load(format!("cannot start the encoder thread: {e}")))?;
        let started = ready.recv().unwrap_or_else(|_| {
            Err(EngineError::Load(format!(
                "{}: the encoder thread stopped while loading",
                model.display()
            )))
        });
        let Loaded {
            llama,
            context,
            max_tokens,
        } = match started {
            Ok(loaded) => loaded,
            Err(e) => {
                let _ = worker.join();
                return Err(e);
            }
        };
        let dim = usize::try_from(llama.n_embd()).unwrap_or(0);
        Ok(Self {
            requests: Mutex::new(Some(requests)),
            worker: Mutex::new(Some(worker)),
            llama,
            dim,
            max_tokens: max_tokens as usize,
            context: context as usize,
            path: model.to_path_buf(),
        })
    }

    /// Embeds one text: a unit-length vector of [`SentenceEncoder::dim`] floats, pooled as the
    /// GGUF says (mean when it says nothing) over its first [`SentenceEncoder::max_tokens`]
    /// tokens. An empty text is embedded as its special tokens alone.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, EngineError> {
        self.embed_up_to(text, self.max_tokens).map(|(v, _)| v)
    }

    /// [`SentenceEncoder::embed`] over the first `limit` tokens (at most the context); also
    /// returns how many tokens were embedded.
    pub fn embed_up_to(&self, text: &str, limit: usize) -> Result<(Vec<f32>, usize), EngineError> {
        let limit = limit.clamp(2, self.context);
        // Only a text's start can become its first `limit` tokens: cut giant inputs before
        // tokenising so the cost stays bounded (no vocabulary token is longer than this).
        let tokens = tokenize_truncated(&self.llama, prefix(text, limit.saturating_mul(64)), limit);
        if tokens.is_empty() {
            return Err(EngineError::invalid(
                "the text gives no tokens",
                Some("input"),
            ));
        }
        let count = tokens.len();
        let (reply, answer) = sync_channel(1);
        {
            let guard = self
                .requests
                .lock()
                .map_err(|_| EngineError::Inference("encoder lock poisoned".into()))?;
            let sender = guard
                .as_ref()
                .ok_or_else(|| EngineError::Unavailable("the encoder is shut down".into()))?;
            sender
                .send((tokens, reply))
                .map_err(|_| EngineError::Unavailable("the encoder thread has stopped".into()))?;
        }
        let vector = answer
            .recv()
            .map_err(|_| EngineError::Unavailable("the encoder thread has stopped".into()))??;
        Ok((vector, count))
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Token limit of [`SentenceEncoder::embed`] (special tokens included).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Longest input [`SentenceEncoder::embed_up_to`] embeds.
    pub fn context(&self) -> usize {
        self.context
    }

    /// The GGUF file this encoder was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SentenceEncoder {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; join so the model is freed here.
        if let Ok(mut requests) = self.requests.lock() {
            requests.take();
        }
        if let Some(worker) = self.worker.lock().ok().and_then(|mut w| w.take()) {
            let _ = worker.join();
        }
    }
}

/// The worker's loop: one text per decode until every sender is gone.
fn serve(ctx: &mut LlamaContext, context: usize, inbox: &Receiver<Request>) {
    let mut batch = LlamaBatch::new(context, 1);
    for (tokens, reply) in inbox {
        let result = embed_tokens(ctx, &mut batch, &tokens);
        // A caller that gave up no longer wants the vector.
        let _ = reply.send(result);
    }
}

fn embed_tokens(
    ctx: &mut LlamaContext,
    batch: &mut LlamaBatch,
    tokens: &[LlamaToken],
) -> Result<Vec<f32>, EngineError> {
    batch.clear();
    for (pos, &token) in tokens.iter().enumerate() {
        let pos = i32::try_from(pos).map_err(|_| EngineError::invalid("text too long", None))?;
        batch
            .add(token, pos, &[0], true)
            .map_err(|e| EngineError::Inference(format!("batch: {e}")))?;
    }
    ctx.clear_kv_cache();
    ctx.decode(batch)
        .map_err(|e| EngineError::Inference(format!("decode failed: {e}")))?;
    let vector = ctx
        .embeddings_seq_ith(0)
        .map_err(|e| EngineError::Inference(format!("no pooled embedding: {e}")))?;
    Ok(normalized(vector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused_before_loading() {
        let missing = Path::new("/nonexistent.gguf");
        let err = SentenceEncoder::load(
            missing,
            &EncoderOptions {
                threads: 0,
                max_tokens: 32,
                context: 32,
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("threads"), "{err}");
        let err = SentenceEncoder::load(
            missing,
            &EncoderOptions {
                threads: 1,
                max_tokens: 1,
                context: 32,
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("max_tokens"), "{err}");
        let err = SentenceEncoder::load(
            missing,
            &EncoderOptions {
                threads: 1,
                max_tokens: 32,
                context: 32,
            },
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("/nonexistent.gguf"), "{err}");
    }
}
