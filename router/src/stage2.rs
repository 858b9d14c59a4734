//! Stage 2: the intent classifier. Tier A (hashed n-grams, logistic regression) always runs;
//! tier B (sentence embedding + linear head) runs only when tier A's confidence is under the
//! policy's threshold and an embedder is configured.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use switchyard_intent::tier_b::{SentenceEmbedder, TierB};
use switchyard_intent::{Intent, Prediction, TierA};

/// Texts longer than this are classified on their prefix: intent shows at the start, and the
/// work stays bounded for giant prompts.
const MAX_CLASSIFIED_BYTES: usize = 2048;

/// Tier B: the head and the embedder that feeds it.
#[derive(Clone)]
pub struct TierBSetup {
    /// The linear head.
    pub head: Arc<TierB>,
    /// The sentence embedder (an engine adapted by the gateway).
    pub embedder: Arc<dyn SentenceEmbedder>,
}

/// The classifiers the router uses.
#[derive(Clone)]
pub struct Classifiers {
    /// Tier A, always present.
    pub tier_a: Arc<TierA>,
    /// Tier B, when configured.
    pub tier_b: Option<TierBSetup>,
}

/// Which tier decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The n-gram logistic regression.
    A,
    /// The embedding model with a linear head.
    B,
}

/// What stage 2 found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentOutcome {
    /// The intent.
    pub intent: Intent,
    /// Its probability.
    pub confidence: f32,
    /// The tier that decided.
    pub tier: Tier,
    /// Tier A's own answer (also when tier B overrode it).
    pub tier_a_intent: Intent,
    /// Tier A's confidence.
    pub tier_a_confidence: f32,
    /// Why tier B did or did not run.
    pub reason: String,
}

/// Classifies `text` (non-empty). `threshold` and `tier_b_enabled` come from the policy.
pub fn run(
    classifiers: &Classifiers,
    text: &str,
    threshold: f32,
    tier_b_enabled: bool,
) -> IntentOutcome {
    let text = crate::stage1::text::prefix(text, MAX_CLASSIFIED_BYTES);
    let a = classifiers.tier_a.classify(text);
    let from_a = |reason: String| outcome(&a, &a, Tier::A, reason);
    if a.confidence >= threshold {
        return from_a(format!(
            "tier A confident: {:.2} >= threshold {threshold:.2}",
            a.confidence
        ));
    }
    let setup = match (&classifiers.tier_b, tier_b_enabled) {
        (_, false) => {
            return from_a(format!(
                "tier A unsure ({:.2} < {threshold:.2}); tier B off in the policy",
                a.confidence
            ))
        }
        (None, true) => {
            return from_a(format!(
                "tier A unsure ({:.2} < {threshold:.2}); tier B not installed",
                a.confidence
            ))
        }
        (Some(setup), true) => setup,
    };
    let started = Instant::now();
    match setup.head.classify(setup.embedder.as_ref(), text) {
        Ok(b) => outcome(
            &b,
            &a,
            Tier::B,
            format!(
                "tier A unsure ({:.2} < {threshold:.2}); tier B ({}) decided in {} us",
                a.confidence,
                setup.embedder.engine(),
                started.elapsed().as_micros()
            ),
        ),
        Err(e) => from_a(format!(
            "tier A unsure ({:.2}); tier B failed ({e}), kept tier A",
            a.confidence
        )),
    }
}

fn outcome(decided: &Prediction, a: &Prediction, tier: Tier, reason: String) -> IntentOutcome {
    IntentOutcome {
        intent: decided.intent,
        confidence: decided.confidence,
        tier,
        tier_a_intent: a.intent,
        tier_a_confidence: a.confidence,
        reason,
    }
}
