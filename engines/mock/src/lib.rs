//! A deterministic mock engine for tests of everything above the engines (gateway, router).
//!
//! Behaviour, chosen so tests can assert exact output:
//! - a "token" is a whitespace-separated word; the prompt's token count is its word count;
//! - the answer echoes the words of the last message (or the raw prompt) in order, cycling,
//!   each word followed by a space, until `max_tokens`, then finishes with `length`; a prompt
//!   containing `[[short]]` finishes with `stop` after one pass over its words;
//! - stop sequences are honoured (the text before the stop is returned);
//! - a prompt containing `[[fail]]` emits one token, then fails (an engine error mid-stream);
//! - `slots` generations run at once, `queue_size` more may wait; beyond that: `QueueFull`;
//! - each token takes `token_delay`; cancellation is seen within one token.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use switchyard_core::engine::CancelFlag;
use switchyard_core::{
    Capabilities, EngineError, FinishReason, GenerateRequest, Generation, GenerationEvent,
    LoadedModel, ModelStatus, Prompt, Task, Usage,
};

/// Settings of a mock model.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Model id.
    pub id: String,
    /// Time per generated token.
    pub token_delay: Duration,
    /// Generations running at once.
    pub slots: usize,
    /// Generations allowed to wait.
    pub queue_size: usize,
    /// Context size in tokens (words).
    pub context: u32,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            id: "mock".into(),
            token_delay: Duration::from_millis(1),
            slots: 2,
            queue_size: 2,
            context: 64,
        }
    }
}

#[derive(Default)]
struct Counts {
    active: usize,
    queued: usize,
    stopping: bool,
}

/// A loaded mock model.
pub struct MockModel {
    config: MockConfig,
    counts: Arc<(Mutex<Counts>, Condvar)>,
}

impl MockModel {
    /// A mock model with these settings.
    pub fn new(config: MockConfig) -> Arc<Self> {
        Arc::new(MockModel {
            config,
            counts: Arc::new((Mutex::new(Counts::default()), Condvar::new())),
        })
    }
}

fn prompt_words(prompt: &Prompt) -> (Vec<String>, u32) {
    let (all, last): (String, String) = match prompt {
        Prompt::Text(t) => (t.clone(), t.clone()),
        Prompt::Chat(messages) => (
            messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            messages
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default(),
        ),
    };
    let count = u32::try_from(all.split_whitespace().count()).unwrap_or(u32::MAX);
    (last.split_whitespace().map(str::to_owned).collect(), count)
}

impl LoadedModel for MockModel {
    fn status(&self) -> ModelStatus {
        let (active, queued) = match self.counts.0.lock() {
            Ok(c) => (c.active, c.queued),
            Err(_) => (0, 0),
        };
        ModelStatus {
            id: self.config.id.clone(),
            engine: "mock/cpu".into(),
            memory_bytes: 1024,
            active,
            queued,
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tasks: vec![Task::Chat, Task::Completion],
            streaming: true,
            context_per_request: self.config.context,
            parallel_slots: u32::try_from(self.config.slots).unwrap_or(u32::MAX),
        }
    }

    fn generate(&self, request: GenerateRequest) -> Result<Generation, EngineError> {
        let (words, prompt_tokens) = prompt_words(&request.prompt);
        if prompt_tokens >= self.config.context {
            return Err(EngineError::invalid(
                format!(
                    "this model's context is {} tokens per request, and the prompt has {} tokens; shorten the prompt",
                    self.config.context, prompt_tokens
                ),
                Some("messages"),
            ));
        }
        {
            let mut counts = self
                .counts
                .0
                .lock()
                .map_err(|_| EngineError::Unavailable("mock state poisoned".into()))?;
            if counts.stopping {
                return Err(EngineError::Unavailable(
                    "the server is shutting down".into(),
                ));
            }
            if counts.active >= self.config.slots && counts.queued >= self.config.queue_size {
                return Err(EngineError::QueueFull {
                    model: self.config.id.clone(),
                    capacity: self.config.queue_size,
                });
            }
            counts.queued += 1;
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancelFlag::default();
        let flag = cancel.clone();
        let counts = Arc::clone(&self.counts);
        let config = self.config.clone();
        let max_tokens = request
            .sampling
            .max_tokens
            .min(config.context - prompt_tokens);
        let stops = request.sampling.stop.clone();
        let fail = words.iter().any(|w| w.contains("[[fail]]"));
        let short = words.iter().any(|w| w.contains("[[short]]"));
        std::thread::spawn(move || {
            let (lock, cvar) = &*counts;
            {
                let Ok(mut c) = lock.lock() else { return };
                while c.active >= config.slots {
                    c = match cvar.wait(c) {
                        Ok(c) => c,
                        Err(_) => return,
                    };
                }
                c.queued -= 1;
                c.active += 1;
            }
            let mut text = String::new();
            let mut generated = 0u32;
            let mut reason = FinishReason::Length;
            let words = if words.is_empty() {
                vec!["empty".to_owned()]
            } else {
                words
            };
            while generated < max_tokens {
                if flag.is_cancelled() || tx.is_closed() {
                    reason = FinishReason::Cancelled;
                    break;
                }
                std::thread::sleep(config.token_delay);
                let word = format!("{} ", words[generated as usize % words.len()]);
                generated += 1;
                text.push_str(&word);
                if let Some(pos) = stops.iter().filter_map(|s| text.find(s.as_str())).min() {
                    let already = text.len() - word.len();
                    if pos > already {
                        let _ = tx.send(GenerationEvent::Token {
                            text: text[already..pos].to_owned(),
                        });
                    }
                    reason = FinishReason::Stop;
                    break;
                }
                let _ = tx.send(GenerationEvent::Token { text: word });
                if fail {
                    let _ = tx.send(GenerationEvent::Failed(EngineError::Inference(
                        "mock failure".into(),
                    )));
                    reason = FinishReason::Cancelled;
                    break;
                }
                if short && generated as usize == words.len() {
                    reason = FinishReason::Stop;
                    break;
                }
            }
            if reason != FinishReason::Cancelled {
                let _ = tx.send(GenerationEvent::Finished {
                    reason,
                    usage: Usage {
                        prompt_tokens,
                        completion_tokens: generated,
                    },
                });
            }
            if let Ok(mut c) = lock.lock() {
                c.active -= 1;
            }
            cvar.notify_all();
        });
        Ok(Generation {
            prompt_tokens,
            events: rx,
            cancel,
        })
    }

    fn shutdown(&self) {
        if let Ok(mut c) = self.counts.0.lock() {
            c.stopping = true;
        }
    }
}
