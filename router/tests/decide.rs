//! Router decisions over fixed inputs: security rules of the policy, pinned and unknown models,
//! nothing installed for a task, and the tier-B hand-off (used when tier A is unsure, skipped
//! with a reason when it fails or is off).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use switchyard_intent::tier_b::{SentenceEmbedder, TierB};
use switchyard_intent::TierA;
use switchyard_profiles::{resolve, Profile, SecurityLevel};
use switchyard_router::stage2::Tier;
use switchyard_router::{
    BoxView, Classifiers, Endpoint, Hints, ModelView, Part, RouteError, RouteRequest, Router,
    RouterConfig, TierBSetup,
};
use switchyard_telemetry::Snapshot;

fn smol() -> ModelView {
    ModelView {
        id: "smollm2-135m-instruct".into(),
        tasks: vec!["chat".into(), "completion".into()],
        engines: vec!["llama.cpp/cpu".into()],
        weights_bytes: 100_000_000,
        kv_bytes_per_token: 90_000,
        context_per_request: 2048,
        loaded: true,
        queued: 0,
        active: 0,
        slots: 8,
    }
}

fn router(profile: Profile, tier_b: Option<TierBSetup>) -> Router {
    Router::new(RouterConfig {
        profile: Arc::new(profile),
        classifiers: Classifiers {
            tier_a: Arc::new(TierA::builtin().unwrap()),
            tier_b,
        },
    })
}

fn chat(text: &str) -> RouteRequest {
    RouteRequest::text(Endpoint::ChatCompletions, "auto", text)
}

fn decide(
    router: &Router,
    req: &RouteRequest,
) -> Result<switchyard_router::RouteDecision, RouteError> {
    let snapshot = Snapshot::now();
    let models = [smol()];
    let view = BoxView {
        snapshot: &snapshot,
        models: &models,
        default_max_tokens: 256,
    };
    router.decide(req, &view, false)
}

#[test]
fn policy_refuses_or_forces_security_levels() {
    let mut profile = resolve("cpu-x86").unwrap();
    profile.policy.hints.allowed_security = vec![SecurityLevel::Public, SecurityLevel::Internal];
    let r = router(profile.clone(), None);
    let mut req = chat("hello");
    req.hints = Hints {
        security: Some("airgap".into()),
        ..Hints::default()
    };
    match decide(&r, &req) {
        Err(RouteError::Refused(m)) => {
            assert!(m.contains("Airgap") && m.contains("default"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // No hint: the policy's default applies.
    let d = decide(&r, &chat("hello")).unwrap();
    assert_eq!(format!("{:?}", d.heuristics.hints.security), "Internal");

    profile.policy.hints.force_security = Some(SecurityLevel::Airgap);
    profile
        .policy
        .hints
        .allowed_security
        .push(SecurityLevel::Airgap);
    let r = router(profile, None);
    let mut req = chat("hello");
    req.hints.security = Some("public".into());
    let d = decide(&r, &req).unwrap();
    assert_eq!(format!("{:?}", d.heuristics.hints.security), "Airgap");
    assert!(
        d.reasons.iter().any(|r| r.contains("forces security")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn pinned_unknown_and_missing_models() {
    let r = router(resolve("cpu-x86").unwrap(), None);
    let mut req = chat("hello");
    req.model = "smollm2-135m-instruct".into();
    let d = decide(&r, &req).unwrap();
    assert_eq!(d.model, "smollm2-135m-instruct");
    assert_eq!(d.placements[0].mode, "pinned");
    let completion_only = ModelView {
        id: "base".into(),
        tasks: vec!["completion".into()],
        ..smol()
    };
    let snapshot = Snapshot::now();
    let models = [smol(), completion_only];
    let view = BoxView {
        snapshot: &snapshot,
        models: &models,
        default_max_tokens: 256,
    };
    let mut base = chat("hello");
    base.model = "base".into();
    match r.decide(&base, &view, false) {
        Err(RouteError::WrongTask(m)) => assert!(m.contains("no chat template"), "{m}"),
        other => panic!("expected WrongTask, got {other:?}"),
    }
    base.endpoint = Endpoint::Completions;
    assert_eq!(r.decide(&base, &view, false).unwrap().model, "base");
    req.model = "gpt-17".into();
    assert_eq!(
        decide(&r, &req).unwrap_err(),
        RouteError::UnknownModel("gpt-17".into())
    );
    // Nothing installed embeds: a clear "no model" for a real request...
    let embed = RouteRequest::text(Endpoint::Embeddings, "auto", "vectorise me");
    match decide(&r, &embed) {
        Err(RouteError::NoModel(m)) => assert!(m.contains("embedding"), "{m}"),
        other => panic!("expected NoModel, got {other:?}"),
    }
    // ...and an explanation for /v1/route.
    let snapshot = Snapshot::now();
    let models = [smol()];
    let view = BoxView {
        snapshot: &snapshot,
        models: &models,
        default_max_tokens: 256,
    };
    let d = r.decide(&embed, &view, true).unwrap();
    assert_eq!(d.pipeline, "embedding");
    assert!(d.steps[0].model.is_none());
    // Empty text is refused in stage 1.
    assert!(matches!(
        decide(&r, &chat(" \n ")),
        Err(RouteError::BadRequest(_))
    ));
    let mut img = chat("look");
    img.parts.push(Part::Bytes {
        claimed: switchyard_router::Claimed::Image,
        data: Arc::from(&b"definitely not an image"[..]),
        field: "messages[0].content[1]".into(),
    });
    assert!(matches!(decide(&r, &img), Err(RouteError::BadRequest(_))));
}

/// Embeds every text onto one fixed direction, or fails.
struct Fixed {
    fail: bool,
    dim: usize,
}

impl SentenceEmbedder for Fixed {
    fn embed(&self, _text: &str) -> Result<Vec<f32>, String> {
        if self.fail {
            return Err("model file vanished".into());
        }
        let mut v = vec![0.0; self.dim];
        v[0] = 1.0;
        Ok(v)
    }
    fn dim(&self) -> usize {
        self.dim
    }
}

#[test]
fn tier_b_decides_when_tier_a_is_unsure_and_is_skipped_with_a_reason_otherwise() {
    let head = Arc::new(TierB::builtin().unwrap());
    let dim = head.dim();
    let mut profile = resolve("cpu-x86").unwrap();
    // Every tier-A answer is "unsure" at this threshold.
    profile.policy.classifier.tier_a_threshold = 1.0;
    let setup = |fail| TierBSetup {
        head: Arc::clone(&head),
        embedder: Arc::new(Fixed { fail, dim }),
    };
    let d = decide(&router(profile.clone(), Some(setup(false))), &chat("hmm")).unwrap();
    let c = d.classifier.unwrap();
    assert_eq!(c.tier, Tier::B, "{}", c.reason);

    let d = decide(&router(profile.clone(), Some(setup(true))), &chat("hmm")).unwrap();
    let c = d.classifier.unwrap();
    assert_eq!(c.tier, Tier::A);
    assert!(
        c.reason.contains("tier B failed") && c.reason.contains("vanished"),
        "{}",
        c.reason
    );

    let d = decide(&router(profile.clone(), None), &chat("hmm")).unwrap();
    assert!(d.classifier.unwrap().reason.contains("not installed"));

    profile.policy.classifier.tier_b = false;
    let d = decide(&router(profile, Some(setup(false))), &chat("hmm")).unwrap();
    let c = d.classifier.unwrap();
    assert_eq!(c.tier, Tier::A);
    assert!(c.reason.contains("off in the policy"), "{}", c.reason);
}
