//! Switchyard router: decides which model and engine serve a request, and records why.
//!
//! This first version resolves the requested model (or `auto` → the configured default) against
//! the catalog and produces a [`RouteDecision`] with a trace. The three-stage router
//! (heuristics, intent classifier, hardware policy) grows here; it stays pure logic over
//! (request, telemetry snapshot, profile) and never touches engine internals.

pub mod request;
pub mod stage1;
pub mod stage3;

use std::time::Instant;

use serde::Serialize;

/// The model name that asks the router to choose.
pub const AUTO_MODEL: &str = "auto";

/// One stage's contribution to a decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTrace {
    /// Stage name.
    pub stage: &'static str,
    /// What it decided.
    pub output: String,
    /// Time it took, in nanoseconds.
    pub nanos: u64,
}

/// Where a request goes, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteDecision {
    /// The model that serves the request.
    pub model: String,
    /// Human-readable reasons, in order.
    pub reasons: Vec<String>,
    /// Per-stage trace.
    pub trace: Vec<StageTrace>,
}

impl RouteDecision {
    /// A one-line summary for the `x-switchyard-route` response header.
    pub fn summary(&self) -> String {
        let total: u64 = self.trace.iter().map(|s| s.nanos).sum();
        format!(
            "model={}; reason={}; router_ns={}",
            self.model,
            self.reasons.join(", "),
            total
        )
    }
}

/// Why no route exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The requested model is not in the catalog.
    UnknownModel(String),
    /// `auto` was asked but no model can serve.
    NoModel,
}

/// Resolves `requested` against the models the gateway knows.
pub fn route(
    requested: &str,
    known: &[&str],
    default_model: Option<&str>,
) -> Result<RouteDecision, RouteError> {
    let started = Instant::now();
    let (model, reason) = if requested == AUTO_MODEL || requested.is_empty() {
        let chosen = default_model
            .filter(|d| known.contains(d))
            .or_else(|| known.first().copied())
            .ok_or(RouteError::NoModel)?;
        (chosen.to_owned(), "auto: default model".to_owned())
    } else if known.contains(&requested) {
        (requested.to_owned(), "requested by client".to_owned())
    } else {
        return Err(RouteError::UnknownModel(requested.to_owned()));
    };
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(RouteDecision {
        trace: vec![StageTrace {
            stage: "model",
            output: model.clone(),
            nanos,
        }],
        model,
        reasons: vec![reason],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_model_is_kept() {
        let d = route("b", &["a", "b"], Some("a")).unwrap();
        assert_eq!(d.model, "b");
        assert!(d
            .summary()
            .starts_with("model=b; reason=requested by client"));
    }

    #[test]
    fn auto_picks_default_then_first() {
        assert_eq!(route("auto", &["a", "b"], Some("b")).unwrap().model, "b");
        assert_eq!(route("auto", &["a", "b"], Some("zz")).unwrap().model, "a");
        assert_eq!(route("auto", &[], None), Err(RouteError::NoModel));
    }

    #[test]
    fn unknown_model_is_an_error() {
        assert_eq!(
            route("nope", &["a"], None),
            Err(RouteError::UnknownModel("nope".into()))
        );
    }
}
