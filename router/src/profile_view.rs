//! The questions the router asks of the profiles: which engines a device prefers for a task, and
//! which tier and SLO a policy gives an intent.

use switchyard_profiles::{DeviceProfile, PolicyProfile, Task};

/// The router's name for a profile task.
pub fn task_name(task: Task) -> &'static str {
    match task {
        Task::Llm => "llm",
        Task::Embedding => "embedding",
        Task::Stt => "stt",
        Task::Tts => "tts",
        Task::Ocr => "ocr",
        Task::Vad => "vad",
        Task::Classifier => "classifier",
    }
}

/// The device profile's engine order for a router task (`llm`, `embedding`, `stt`, ...), or
/// `None` when the profile says nothing about it.
pub fn preferred_engines<'d>(device: &'d DeviceProfile, task: &str) -> Option<&'d [String]> {
    device
        .prefer
        .iter()
        .find(|p| task_name(p.task) == task)
        .map(|p| p.engines.as_slice())
}

/// The policy's answer for one step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteChoice {
    /// Tier to prefer.
    pub tier: Option<String>,
    /// SLO from the route, ms.
    pub slo_ms: Option<u32>,
    /// Why.
    pub reasons: Vec<String>,
}

/// The tier and SLO the policy gives `intent` for a step of `task`.
pub fn route_for(
    policy: &PolicyProfile,
    task: &str,
    intent: Option<&str>,
    prompt_tokens: u32,
) -> RouteChoice {
    let Some(intent) = intent.filter(|_| task == "llm") else {
        return RouteChoice::default();
    };
    let Some(route) = policy.routes.iter().find(|r| r.intent.as_str() == intent) else {
        return RouteChoice {
            tier: Some(policy.thermal.fallback_tier.clone()),
            slo_ms: None,
            reasons: vec![format!(
                "policy '{}' has no route for intent {intent}: fallback tier",
                policy.name
            )],
        };
    };
    let mut reasons = Vec::new();
    let tier = match (route.max_prompt_tokens, &route.overflow_tier) {
        (Some(limit), Some(overflow)) if prompt_tokens > limit => {
            reasons.push(format!(
                "intent {intent}: ~{prompt_tokens} prompt tokens > {limit}: tier '{overflow}'"
            ));
            overflow.clone()
        }
        _ => {
            reasons.push(format!("intent {intent} -> tier '{}'", route.tier));
            route.tier.clone()
        }
    };
    RouteChoice {
        tier: Some(tier),
        slo_ms: Some(route.slo_ms),
        reasons,
    }
}
