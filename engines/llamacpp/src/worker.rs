//! The decode loop of one loaded model: continuous batching over llama.cpp sequences.
//!
//! One thread owns the llama context. Each step it admits queued requests into free slots
//! (one llama sequence each), builds ONE batch holding the next token of every generating
//! sequence plus prompt chunks of newly admitted ones, decodes it, and samples every sequence
//! that produced logits. A finished or cancelled sequence frees its slot and KV cells at once,
//! so the next queued request starts on the following step.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use switchyard_core::engine::CancelFlag;
use switchyard_core::{EngineError, FinishReason, GenerationEvent, SamplingParams, Usage};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};

use crate::sampling::build_sampler;
use crate::text::TextStream;

/// A queued request, already tokenized and validated.
pub struct Job {
    /// Prompt tokens.
    pub tokens: Vec<LlamaToken>,
    /// Sampling parameters.
    pub sampling: SamplingParams,
    /// Effective generation limit (request's max_tokens capped by the context).
    pub max_tokens: u32,
    /// Where events go.
    pub events: UnboundedSender<GenerationEvent>,
    /// Set when the caller gave up.
    pub cancel: CancelFlag,
    /// The request's tracing span.
    pub span: tracing::Span,
}

/// Counters shared between the worker and the model handle.
#[derive(Default)]
pub struct Shared {
    /// Sequences being decoded.
    pub active: AtomicUsize,
    /// Jobs waiting in the queue.
    pub queued: AtomicUsize,
    /// Set by `shutdown`: finish what runs, refuse the rest, exit.
    pub stopping: AtomicBool,
}

/// Static settings of the loop.
pub struct LoopSettings {
    /// Parallel sequences.
    pub slots: usize,
    /// Tokens per decode call.
    pub batch_size: usize,
    /// Context cells per sequence.
    pub context_per_slot: u32,
}

struct Slot {
    seq: i32,
    job: Job,
    /// Next prompt token to feed.
    prompt_fed: usize,
    /// Tokens of this sequence in the KV cache.
    n_past: i32,
    sampler: LlamaSampler,
    text: TextStream,
    generated: u32,
    /// Sampled, not yet decoded.
    next_token: Option<LlamaToken>,
    /// Index in the current batch whose logits belong to this sequence.
    logits_at: Option<i32>,
}

impl Slot {
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: u32::try_from(self.job.tokens.len()).unwrap_or(u32::MAX),
            completion_tokens: self.generated,
        }
    }

    fn abandoned(&self) -> bool {
        self.job.cancel.is_cancelled() || self.job.events.is_closed()
    }
}

/// Runs the loop until the queue's senders are gone or shutdown is asked and nothing runs.
// Slots are indexed because a finished one is `take()`n out while the context is borrowed.
#[allow(clippy::needless_range_loop)]
pub fn run(
    model: &LlamaModel,
    mut ctx: LlamaContext<'_>,
    settings: LoopSettings,
    jobs: Receiver<Job>,
    shared: Arc<Shared>,
) {
    let mut slots: Vec<Option<Slot>> = (0..settings.slots).map(|_| None).collect();
    let mut batch = LlamaBatch::new(settings.batch_size, 1);
    loop {
        if !admit(model, &mut slots, &jobs, &shared) {
            break;
        }
        for index in 0..slots.len() {
            if slots[index].as_ref().is_some_and(Slot::abandoned) {
                if let Some(slot) = slots[index].take() {
                    slot.job
                        .span
                        .in_scope(|| debug!(seq = slot.seq, "generation cancelled"));
                    free(&mut ctx, &shared, slot.seq);
                }
            }
        }
        if let Err(message) = fill_batch(&mut batch, &mut slots, settings.batch_size) {
            fail_batch(&mut ctx, &shared, &mut slots, &message);
            continue;
        }
        if batch.n_tokens() == 0 {
            continue;
        }
        if let Err(e) = ctx.decode(&mut batch) {
            warn!(error = %e, "llama decode failed");
            fail_batch(
                &mut ctx,
                &shared,
                &mut slots,
                &format!("decode failed: {e}"),
            );
            continue;
        }
        for index in 0..slots.len() {
            let finished = match slots[index].as_mut() {
                Some(slot) => sample_step(model, &ctx, slot, settings.context_per_slot),
                None => None,
            };
            if let Some(reason) = finished {
                if let Some(mut slot) = slots[index].take() {
                    finish(&mut slot, reason);
                    free(&mut ctx, &shared, slot.seq);
                }
            }
        }
    }
    debug!("llama worker stopped");
}

/// Moves queued jobs into free slots. Blocks only when nothing is running. Returns false when
/// the loop should end.
fn admit(
    model: &LlamaModel,
    slots: &mut [Option<Slot>],
    jobs: &Receiver<Job>,
    shared: &Shared,
) -> bool {
    let stopping = shared.stopping.load(Ordering::Acquire);
    let running = slots.iter().any(Option::is_some);
    if stopping && !running {
        drain_refusing(jobs, shared);
        return false;
    }
    loop {
        let Some(free) = slots.iter().position(Option::is_none) else {
            return true;
        };
        let running = slots.iter().any(Option::is_some);
        let job = if running {
            match jobs.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return true,
            }
        } else {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return false,
            }
        };
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        if shared.stopping.load(Ordering::Acquire) {
            let _ = job
                .events
                .send(GenerationEvent::Failed(EngineError::Unavailable(
                    "the server is shutting down".into(),
                )));
            continue;
        }
        if job.cancel.is_cancelled() || job.events.is_closed() {
            continue;
        }
        let seq = i32::try_from(free).unwrap_or(i32::MAX);
        job.span
            .in_scope(|| debug!(seq, prompt_tokens = job.tokens.len(), "sequence admitted"));
        shared.active.fetch_add(1, Ordering::AcqRel);
        slots[free] = Some(Slot {
            seq,
            sampler: build_sampler(model, &job.sampling),
            text: TextStream::new(&job.sampling.stop),
            job,
            prompt_fed: 0,
            n_past: 0,
            generated: 0,
            next_token: None,
            logits_at: None,
        });
    }
}

fn drain_refusing(jobs: &Receiver<Job>, shared: &Shared) {
    while let Ok(job) = jobs.try_recv() {
        shared.queued.fetch_sub(1, Ordering::AcqRel);
        let _ = job
            .events
            .send(GenerationEvent::Failed(EngineError::Unavailable(
                "the server is shutting down".into(),
            )));
    }
}

/// One token per generating sequence first (they keep streaming at full speed), then prompt
/// chunks of new sequences in the remaining room.
fn fill_batch(
    batch: &mut LlamaBatch<'_>,
    slots: &mut [Option<Slot>],
    capacity: usize,
) -> Result<(), String> {
    batch.clear();
    for slot in slots.iter_mut().flatten() {
        slot.logits_at = None;
        if let Some(token) = slot.next_token.take() {
            batch
                .add(token, slot.n_past, &[slot.seq], true)
                .map_err(|e| e.to_string())?;
            slot.logits_at = Some(batch.n_tokens() - 1);
            slot.n_past += 1;
        }
    }
    for slot in slots.iter_mut().flatten() {
        let remaining = slot.job.tokens.len() - slot.prompt_fed;
        if remaining == 0 {
            continue;
        }
        let room = capacity.saturating_sub(usize::try_from(batch.n_tokens()).unwrap_or(capacity));
        let take = remaining.min(room);
        for i in 0..take {
            let at = slot.prompt_fed + i;
            let last = at + 1 == slot.job.tokens.len();
            batch
                .add(slot.job.tokens[at], slot.n_past, &[slot.seq], last)
                .map_err(|e| e.to_string())?;
            slot.n_past += 1;
            if last {
                slot.logits_at = Some(batch.n_tokens() - 1);
            }
        }
        slot.prompt_fed += take;
    }
    Ok(())
}

/// Samples the sequence if it has logits in this batch. Returns why it finished, if it did.
fn sample_step(
    model: &LlamaModel,
    ctx: &LlamaContext<'_>,
    slot: &mut Slot,
    context_per_slot: u32,
) -> Option<FinishReason> {
    let at = slot.logits_at.take()?;
    let token = slot.sampler.sample(ctx, at);
    let vocab = model.vocab();
    if vocab.is_eog(token) {
        return Some(FinishReason::Stop);
    }
    slot.generated += 1;
    let piece = vocab.token_to_piece(token, false, None);
    let emitted = slot.text.push(&piece);
    if !emitted.text.is_empty() {
        let _ = slot
            .job
            .events
            .send(GenerationEvent::Token { text: emitted.text });
    }
    if emitted.stopped {
        return Some(FinishReason::Stop);
    }
    let context_full = u32::try_from(slot.n_past + 1).unwrap_or(u32::MAX) >= context_per_slot;
    if slot.generated >= slot.job.max_tokens || context_full {
        return Some(FinishReason::Length);
    }
    slot.next_token = Some(token);
    None
}

fn finish(slot: &mut Slot, reason: FinishReason) {
    // Empty after a stop sequence (the stream drops what follows it).
    let rest = slot.text.finish();
    if !rest.is_empty() {
        let _ = slot.job.events.send(GenerationEvent::Token { text: rest });
    }
    let usage = slot.usage();
    slot.job.span.in_scope(|| {
        debug!(
            seq = slot.seq,
            reason = reason.as_str(),
            ?usage,
            "sequence finished"
        )
    });
    let _ = slot
        .job
        .events
        .send(GenerationEvent::Finished { reason, usage });
}

fn free(ctx: &mut LlamaContext<'_>, shared: &Shared, seq: i32) {
    let seq = u32::try_from(seq).ok();
    if let Err(e) = ctx.clear_kv_cache_seq(seq, None, None) {
        warn!(error = %e, "failed to clear KV cells of a finished sequence");
    }
    shared.active.fetch_sub(1, Ordering::AcqRel);
}

/// A failed decode poisons every sequence that was in the batch; fail them clearly.
fn fail_batch(
    ctx: &mut LlamaContext<'_>,
    shared: &Shared,
    slots: &mut [Option<Slot>],
    message: &str,
) {
    for entry in slots.iter_mut() {
        if let Some(slot) = entry.take() {
            let _ = slot
                .job
                .events
                .send(GenerationEvent::Failed(EngineError::Inference(
                    message.to_owned(),
                )));
            free(ctx, shared, slot.seq);
        }
    }
}
