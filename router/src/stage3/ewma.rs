//! Latency prediction per model × engine from observed runs: exponentially weighted moving
//! averages of time to first token and time per generated token.

use std::collections::HashMap;

use serde::Serialize;

/// Weight of the newest observation.
const ALPHA: f64 = 0.2;

/// Learned latency of one model × engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyEstimate {
    /// Time to first token, ms.
    pub ttft_ms: f64,
    /// Time per generated token, ms.
    pub per_token_ms: f64,
    /// Observations folded in.
    pub samples: u64,
}

impl LatencyEstimate {
    /// Predicted milliseconds for a request generating `tokens` tokens.
    pub fn predict_ms(&self, tokens: u32) -> f64 {
        self.ttft_ms + self.per_token_ms * f64::from(tokens)
    }
}

/// EWMAs keyed by `model@engine`.
#[derive(Debug, Clone, Default)]
pub struct LatencyTable {
    entries: HashMap<String, LatencyEstimate>,
}

fn key(model: &str, engine: &str) -> String {
    format!("{model}@{engine}")
}

impl LatencyTable {
    /// The estimate, or `prior` when nothing was observed yet.
    pub fn get(&self, model: &str, engine: &str, prior: LatencyEstimate) -> LatencyEstimate {
        self.entries
            .get(&key(model, engine))
            .copied()
            .unwrap_or(prior)
    }

    /// Folds in one observed run.
    pub fn observe(&mut self, model: &str, engine: &str, ttft_ms: f64, per_token_ms: f64) {
        let e = self
            .entries
            .entry(key(model, engine))
            .or_insert(LatencyEstimate {
                ttft_ms,
                per_token_ms,
                samples: 0,
            });
        if e.samples > 0 {
            e.ttft_ms += ALPHA * (ttft_ms - e.ttft_ms);
            e.per_token_ms += ALPHA * (per_token_ms - e.per_token_ms);
        }
        e.samples += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_observation_replaces_prior_then_smooths() {
        let prior = LatencyEstimate {
            ttft_ms: 100.0,
            per_token_ms: 10.0,
            samples: 0,
        };
        let mut t = LatencyTable::default();
        assert_eq!(t.get("m", "e", prior), prior);
        t.observe("m", "e", 50.0, 5.0);
        assert_eq!(t.get("m", "e", prior).ttft_ms, 50.0);
        t.observe("m", "e", 150.0, 5.0);
        let e = t.get("m", "e", prior);
        assert!((e.ttft_ms - 70.0).abs() < 1e-9);
        assert_eq!(e.predict_ms(10), 70.0 + 50.0);
    }
}
