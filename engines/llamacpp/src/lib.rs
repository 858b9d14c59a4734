//! Switchyard's llama.cpp engine: GGUF LLMs through `llama-cpp-2`.
//!
//! - Chat formatting uses the model's own Jinja `tokenizer.chat_template` ([`template`]), with
//!   llama.cpp's built-in template matching only as a fallback.
//! - Each loaded model has one worker thread that decodes all its requests together
//!   (continuous batching, [`worker`]); requests wait in a bounded queue for a free slot.
//! - Threads, slots, context and batch sizes come from [`EngineConfig`], never guessed.

pub mod cpu;
pub mod embed;
pub mod encoder;
pub mod inspect;
mod memory;
pub mod quantize;
pub mod sampling;
pub mod template;
pub mod text;
pub mod worker;

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use minijinja::ErrorKind;
use switchyard_core::engine::CancelFlag;
use switchyard_core::{
    Capabilities, ChatMessage, Engine, EngineConfig, EngineError, GenerateRequest, Generation,
    LoadedModel, Manifest, ModelStatus, Prompt, Task,
};
use tracing::{info, warn};

use crate::template::ChatTemplate;
use crate::worker::{Job, LoopSettings, Shared};

pub use memory::{estimate_bytes, file_type_name, inspect_gguf, kv_cache_bytes, GgufInfo};

/// The engine name reported in health, metrics and traces.
pub const ENGINE_NAME: &str = "llama.cpp";

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// llama.cpp's backend may be initialised once per process.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    let result = BACKEND.get_or_init(|| {
        let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
        if std::env::var_os("SWITCHYARD_LLAMA_LOGS").is_none() {
            backend.void_logs();
        }
        Ok(backend)
    });
    result
        .as_ref()
        .map_err(|e| EngineError::Unavailable(e.clone()))
}

/// The llama.cpp engine family.
#[derive(Debug, Default, Clone, Copy)]
pub struct LlamaCppEngine;

impl Engine for LlamaCppEngine {
    fn name(&self) -> &'static str {
        ENGINE_NAME
    }

    fn check(&self) -> Result<(), String> {
        backend().map(|_| ()).map_err(|e| e.to_string())
    }

    fn supports(&self, manifest: &Manifest) -> bool {
        manifest.format == "gguf"
    }

    fn cpu_features(&self) -> Vec<String> {
        cpu::cpu_features().to_vec()
    }

    fn memory_estimate(
        &self,
        manifest: &Manifest,
        config: &EngineConfig,
    ) -> Result<u64, EngineError> {
        let path = manifest
            .primary_path()
            .ok_or_else(|| EngineError::Load(format!("model '{}' has no artifact", manifest.id)))?;
        memory::estimate_from_file(&path, config)
    }

    fn load(
        &self,
        manifest: &Manifest,
        config: &EngineConfig,
    ) -> Result<Arc<dyn LoadedModel>, EngineError> {
        let model = LlamaCppModel::load(manifest, config)?;
        Ok(Arc::new(model))
    }
}

/// A loaded GGUF model and the handle of its decode worker.
pub struct LlamaCppModel {
    id: String,
    model: Arc<LlamaModel>,
    template: Option<ChatTemplate>,
    jobs: SyncSender<Job>,
    shared: Arc<Shared>,
    config: EngineConfig,
    context_per_slot: u32,
    memory_bytes: u64,
}

impl LlamaCppModel {
    /// Loads the model's primary artifact and starts its worker thread.
    pub fn load(manifest: &Manifest, config: &EngineConfig) -> Result<Self, EngineError> {
        let backend = backend()?;
        let path = manifest
            .primary_path()
            .ok_or_else(|| EngineError::Load(format!("model '{}' has no artifact", manifest.id)))?;
        if config.threads == 0 || config.slots == 0 || config.batch_size < config.slots {
            return Err(EngineError::Load(format!(
                "invalid engine settings: threads={} slots={} batch_size={} (need threads ≥ 1, slots ≥ 1, batch_size ≥ slots)",
                config.threads, config.slots, config.batch_size
            )));
        }
        let shared = Arc::new(Shared::default());
        // Room for a full queue plus a request per slot that arrives between two decode steps.
        let (jobs, queue) = sync_channel::<Job>(config.queue_size + config.slots as usize);
        // The worker hands back the model and the context per slot it settled on.
        let (ready_tx, ready_rx) =
            std::sync::mpsc::channel::<Result<(Arc<LlamaModel>, u32), String>>();
        let worker_shared = Arc::clone(&shared);
        let (slots, batch_size, threads) = (config.slots, config.batch_size, config.threads);
        let ctx_per_slot_wanted = config.context_per_slot;
        let span = tracing::info_span!("llama_worker", model = %manifest.id);
        // The weights are loaded on the worker thread that decodes with them. Loading can run
        // OpenMP (llama.cpp repacks weights for AMX in parallel), and an OpenMP thread team
        // left on another thread makes libgomp count more threads than cores: it then parks
        // the decode threads on a futex at every barrier instead of spinning, which halved
        // single-stream speed on the 2-core AMX box (measured, docs/BENCHMARKS.md).
        std::thread::Builder::new()
            .name(format!("llama-{}", manifest.id))
            .spawn(move || {
                let _entered = span.enter();
                let model = match LlamaModel::load_from_file(
                    backend,
                    &path,
                    &LlamaModelParams::default(),
                ) {
                    Ok(model) => Arc::new(model),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("{}: {e}", path.display())));
                        return;
                    }
                };
                let settings = LoopSettings {
                    slots: slots as usize,
                    batch_size: batch_size as usize,
                    context_per_slot: ctx_per_slot_wanted.min(model.n_ctx_train().max(16)),
                };
                let params = LlamaContextParams::default()
                    .with_n_ctx(NonZeroU32::new(settings.context_per_slot * slots))
                    .with_n_batch(batch_size)
                    .with_n_ubatch(batch_size)
                    .with_n_seq_max(slots)
                    // One KV stream per slot: every sequence's cells start at 0 whatever else
                    // runs, so attention sums in the same order and identical greedy prompts in
                    // flight together give identical text (a shared cell pool interleaves
                    // sequences and changes the floating-point summation order). Measured: same
                    // throughput as a unified cache.
                    .with_kv_unified(false)
                    .with_n_threads(i32::try_from(threads).unwrap_or(1))
                    .with_n_threads_batch(i32::try_from(threads).unwrap_or(1));
                match model.new_context(backend, params) {
                    Ok(ctx) => {
                        let _ = ready_tx.send(Ok((Arc::clone(&model), settings.context_per_slot)));
                        worker::run(&model, ctx, settings, queue, worker_shared);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot create context: {e}")));
                    }
                };
            })
            .map_err(|e| EngineError::Load(format!("cannot start worker thread: {e}")))?;
        let (model, context_per_slot) = match ready_rx.recv() {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => return Err(EngineError::Load(e)),
            Err(_) => return Err(EngineError::Load("worker thread died during start".into())),
        };
        let template = load_template(&model, &manifest.id);
        let memory_bytes = model.size() + memory::kv_for_model(&model, context_per_slot, config);
        info!(
            model = %manifest.id,
            slots = config.slots,
            context_per_slot,
            threads = config.threads,
            memory_bytes,
            chat_template = if template.is_some() { "gguf-jinja" } else { "llama.cpp-builtin" },
            "model loaded"
        );
        Ok(LlamaCppModel {
            id: manifest.id.clone(),
            model,
            template,
            jobs,
            shared,
            config: config.clone(),
            context_per_slot,
            memory_bytes,
        })
    }

    /// Renders messages: the GGUF's Jinja template first, llama.cpp's built-in matching second.
    fn render_chat(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        if let Some(template) = &self.template {
            match template.render(messages) {
                Ok(text) => return Ok(text),
                // `raise_exception(...)` in the template: the conversation is not acceptable.
                Err(e) if e.kind() == ErrorKind::InvalidOperation => {
                    return Err(EngineError::invalid(
                        format!(
                            "the model's chat template refused the messages: {}",
                            e.detail().unwrap_or("invalid conversation")
                        ),
                        Some("messages"),
                    ));
                }
                Err(e) => {
                    warn!(model = %self.id, error = %e, "chat template failed; using llama.cpp's built-in matching")
                }
            }
        }
        let builtin = self.model.chat_template(None).map_err(|e| {
            EngineError::invalid(
                format!(
                    "model '{}' has no usable chat template ({e}); use /v1/completions",
                    self.id
                ),
                None,
            )
        })?;
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::invalid(format!("invalid message: {e}"), Some("messages")))?;
        self.model
            .apply_chat_template(&builtin, &chat, true)
            .map_err(|e| EngineError::Inference(format!("chat template failed: {e}")))
    }

    fn tokenize(&self, text: &str, chat: bool) -> Result<Vec<LlamaToken>, EngineError> {
        let vocab = self.model.vocab();
        // A rendered chat template already carries its BOS when the model wants one.
        let bos_text = token_text(&self.model, vocab.bos());
        let add_special = vocab.should_add_bos()
            && !(chat && !bos_text.is_empty() && text.starts_with(&bos_text));
        // Special tokens written by the chat template (`<|im_start|>`) are parsed as such;
        // in raw completions they are plain text.
        Ok(vocab.tokenize(text.as_bytes(), add_special, chat))
    }
}

/// The literal text of a (special) token, e.g. `<|im_start|>`.
fn token_text(model: &LlamaModel, token: LlamaToken) -> String {
    model
        .vocab()
        .text(token)
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn load_template(model: &LlamaModel, id: &str) -> Option<ChatTemplate> {
    let source = model.meta_val_str("tokenizer.chat_template").ok()?;
    let vocab = model.vocab();
    let bos = token_text(model, vocab.bos());
    let eos = token_text(model, vocab.eos());
    match ChatTemplate::new(&source, &bos, &eos) {
        Ok(t) => Some(t),
        Err(e) => {
            warn!(model = %id, error = %e, "GGUF chat template does not compile; using llama.cpp's built-in matching");
            None
        }
    }
}

impl LoadedModel for LlamaCppModel {
    fn status(&self) -> ModelStatus {
        ModelStatus {
            id: self.id.clone(),
            engine: format!("{ENGINE_NAME}/cpu"),
            memory_bytes: self.memory_bytes,
            active: self.shared.active.load(Ordering::Acquire),
            queued: self.shared.queued.load(Ordering::Acquire),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tasks: vec![Task::Chat, Task::Completion],
            streaming: true,
            context_per_request: self.context_per_slot,
            parallel_slots: self.config.slots,
        }
    }

    fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(EngineError::Unavailable(
                "the server is shutting down".into(),
            ));
        }
        let (tokens, param) = match &request.prompt {
            Prompt::Chat(messages) => {
                let text = self.render_chat(messages)?;
                tracing::trace!(prompt = %text, "rendered chat prompt");
                (self.tokenize(&text, true)?, "messages")
            }
            Prompt::Text(text) => (self.tokenize(text, false)?, "prompt"),
        };
        let prompt_len = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        if prompt_len >= self.context_per_slot {
            return Err(EngineError::invalid(
                format!(
                    "this model's context is {} tokens per request, and the prompt has {} tokens; shorten the prompt",
                    self.context_per_slot, prompt_len
                ),
                Some(param),
            ));
        }
        let max_tokens = request
            .sampling
            .max_tokens
            .min(self.context_per_slot - prompt_len);
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancelFlag::default();
        let job = Job {
            tokens,
            sampling: request.sampling,
            max_tokens,
            events,
            cancel: cancel.clone(),
            span: tracing::Span::current(),
        };
        // Admission: up to `queue_size` requests may wait beyond the slots free right now.
        let waiting = self.shared.queued.fetch_add(1, Ordering::AcqRel) + 1;
        let free =
            (self.config.slots as usize).saturating_sub(self.shared.active.load(Ordering::Acquire));
        let full = || {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            EngineError::QueueFull {
                model: self.id.clone(),
                capacity: self.config.queue_size,
            }
        };
        if waiting > self.config.queue_size + free {
            return Err(full());
        }
        match self.jobs.try_send(job) {
            Ok(()) => Ok(Generation {
                prompt_tokens: prompt_len,
                events: receiver,
                cancel,
            }),
            Err(TrySendError::Full(_)) => Err(full()),
            Err(TrySendError::Disconnected(_)) => {
                self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                Err(EngineError::Unavailable(format!(
                    "the worker of model '{}' is gone",
                    self.id
                )))
            }
        }
    }

    fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
    }
}
