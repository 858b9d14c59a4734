//! Policy simulations on replayed telemetry traces (the synthetic traces shipped in
//! `router/telemetry/traces/`), stepping trace time without sleeping: thermal fallback with
//! hysteresis on a heating Jetson, VRAM filling on an RTX desktop, airgap requests, and the
//! learned mode converging on the candidate that meets its SLO.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchyard_intent::{Intent, TierA};
use switchyard_profiles::{builtin_policy, resolve, Profile};
use switchyard_router::{
    BoxView, Classifiers, Endpoint, Hints, ModelView, RouteRequest, Router, RouterConfig,
};
use switchyard_telemetry::{ReplayCollector, Snapshot};

const CODE: &str = "Write a Rust function that reverses a singly linked list in place";
const GIB: u64 = 1 << 30;

fn trace(name: &str) -> ReplayCollector {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("telemetry/traces")
        .join(name);
    ReplayCollector::from_file(&path, 1.0).unwrap()
}

fn router(profile: Profile) -> Router {
    Router::new(RouterConfig {
        profile: Arc::new(profile),
        classifiers: Classifiers {
            tier_a: Arc::new(TierA::builtin().unwrap()),
            tier_b: None,
        },
    })
}

fn model(id: &str, engines: &[&str], weights: u64) -> ModelView {
    ModelView {
        id: id.into(),
        tasks: vec!["chat".into(), "completion".into()],
        engines: engines.iter().map(|e| (*e).to_owned()).collect(),
        weights_bytes: weights,
        kv_bytes_per_token: 64 * 1024,
        context_per_request: 4096,
        loaded: false,
        queued: 0,
        active: 0,
        slots: 4,
    }
}

fn request(text: &str, security: Option<&str>) -> RouteRequest {
    RouteRequest {
        endpoint: Endpoint::ChatCompletions,
        model: "auto".into(),
        parts: vec![switchyard_router::Part::Text(text.into())],
        max_tokens: Some(64),
        hints: Hints {
            security: security.map(str::to_owned),
            ..Hints::default()
        },
    }
}

fn decide(
    router: &Router,
    req: &RouteRequest,
    snapshot: &Snapshot,
    models: &[ModelView],
) -> (String, String) {
    let view = BoxView {
        snapshot,
        models,
        default_max_tokens: 512,
    };
    let d = router.decide(req, &view, false).unwrap();
    (d.model, d.engine.unwrap_or_default())
}

#[test]
fn heating_jetson_falls_back_within_one_period_and_returns_after_the_band() {
    let profile = resolve("jetson-orin-nano-8gb").unwrap();
    let throttle = profile.device.thermal.throttle_c;
    let critical = profile.device.thermal.critical_c;
    let band = profile.policy.thermal.hysteresis_c;
    let router = router(profile);
    let models = [
        model(
            "smollm2-135m-instruct",
            &["llama.cpp/cuda", "llama.cpp/cpu"],
            100_000_000,
        ),
        model(
            "gemma3-270m",
            &["llama.cpp/cuda", "llama.cpp/cpu"],
            250_000_000,
        ),
    ];
    let req = request(CODE, None);
    let replay = trace("jetson-orin-nano-heating.jsonl");
    // The sampler period of the trace: one decision per snapshot is "within one period".
    let mut hot = false;
    let (mut went_hot_at, mut came_back_at) = (None, None);
    for (t, snapshot) in replay.steps(Duration::from_secs(1)) {
        let temp = snapshot.hottest_c().unwrap();
        // The expectation, computed independently of the router's latch.
        if temp >= throttle {
            hot = true;
        } else if temp < throttle - band {
            hot = false;
        }
        let (chosen, engine) = decide(&router, &req, &snapshot, &models);
        if hot {
            assert_eq!(
                chosen, "smollm2-135m-instruct",
                "t={t:?} {temp:.1} C should be on the fallback"
            );
            went_hot_at.get_or_insert(t);
            if temp >= critical {
                assert_eq!(engine, "llama.cpp/cpu", "t={t:?} critical: CPU only");
            }
        } else {
            assert_eq!(
                chosen, "gemma3-270m",
                "t={t:?} {temp:.1} C: code goes to the large tier"
            );
            assert_eq!(engine, "llama.cpp/cuda");
            if went_hot_at.is_some() {
                came_back_at.get_or_insert(t);
            }
        }
    }
    let (hot_at, back_at) = (went_hot_at.unwrap(), came_back_at.unwrap());
    // Between the limit and limit - band on the way down, the route must not flap back.
    let dwell = replay
        .steps(Duration::from_secs(1))
        .filter(|(t, s)| *t > hot_at && *t < back_at && s.hottest_c().unwrap() < throttle)
        .count();
    assert!(dwell > 0, "the trace cools through the hysteresis band");
}

#[test]
fn nearly_full_vram_keeps_the_large_model_off_the_gpu() {
    let profile = resolve("rtx-desktop-24gb").unwrap();
    let headroom = profile.policy.memory.vram_headroom_mib * 1024 * 1024;
    let budget = profile.device.memory.vram_budget_mib.unwrap() * 1024 * 1024;
    let router = router(profile);
    let large = model("gemma3-270m", &["llama.cpp/cuda"], 6 * GIB);
    let small = model(
        "smollm2-135m-instruct",
        &["llama.cpp/cuda", "llama.cpp/cpu"],
        GIB,
    );
    let large_need = large.bytes_for_context(64 + 16);
    let models = [small, large];
    let req = request(CODE, None);
    let (mut saw_large, mut saw_refused) = (false, false);
    for (t, snapshot) in trace("rtx-vram-filling.jsonl").steps(Duration::from_secs(1)) {
        let free = snapshot.largest_vram_free_bytes().unwrap();
        let room = free.saturating_sub(headroom).min(budget);
        let (chosen, engine) = decide(&router, &req, &snapshot, &models);
        if room < large_need {
            saw_refused = true;
            assert_ne!(
                chosen, "gemma3-270m",
                "t={t:?}: {free} bytes free, large model chosen"
            );
            if room < GIB + 64 * 1024 * 80 {
                assert_eq!(
                    engine, "llama.cpp/cpu",
                    "t={t:?}: small model moves off the full GPU"
                );
            }
        } else if room > large_need + GIB {
            saw_large = true;
            assert_eq!(chosen, "gemma3-270m", "t={t:?}: {free} bytes free");
        }
    }
    assert!(saw_large && saw_refused, "the trace covers both regimes");
}

#[test]
fn airgap_never_leaves_local_cpu_engines() {
    let models = [
        model(
            "smollm2-135m-instruct",
            &["llama.cpp/cuda", "llama.cpp/cpu"],
            100_000_000,
        ),
        model(
            "gemma3-270m",
            &["llama.cpp/cuda", "llama.cpp/cpu"],
            250_000_000,
        ),
    ];
    let texts = [
        CODE,
        "hi there, how are you?",
        "Summarize this: the meeting moved to Friday.",
        "What's the weather in Oslo?",
    ];
    // The client asks for airgap under the default policy...
    let by_hint = router(resolve("jetson-orin-nano-8gb").unwrap());
    // ...or the policy forces it whatever the client says.
    let mut forced_profile = resolve("jetson-orin-nano-8gb").unwrap();
    forced_profile.policy = builtin_policy("airgap").unwrap();
    let forced = router(forced_profile);
    let replay = trace("jetson-orin-nano-heating.jsonl");
    for (_, snapshot) in replay.steps(Duration::from_secs(10)) {
        for text in texts {
            let (_, engine) = decide(&by_hint, &request(text, Some("airgap")), &snapshot, &models);
            assert_eq!(engine, "llama.cpp/cpu", "{text}");
            for hint in [None, Some("public")] {
                let (_, engine) = decide(&forced, &request(text, hint), &snapshot, &models);
                assert_eq!(engine, "llama.cpp/cpu", "{text} {hint:?}");
            }
        }
    }
    // Without airgap the same box uses its GPU.
    let snapshot = replay.snapshot_at(0);
    let (_, engine) = decide(&by_hint, &request(CODE, None), &snapshot, &models);
    assert_eq!(engine, "llama.cpp/cuda");
}

#[test]
fn learned_mode_moves_traffic_to_the_candidate_that_meets_its_slo() {
    let mut profile = resolve("cpu-x86").unwrap();
    profile.policy = builtin_policy("learned").unwrap();
    let min_samples = profile.policy.learned.min_samples as usize;
    let router = router(profile);
    let models = [
        model("smollm2-135m-instruct", &["llama.cpp/cpu"], 100_000_000),
        model("gemma3-270m", &["llama.cpp/cpu"], 250_000_000),
    ];
    let req = request("hey, how's it going?", None);
    assert_eq!(
        TierA::builtin()
            .unwrap()
            .classify("hey, how's it going?")
            .intent,
        Intent::Chat
    );
    let snapshot = Snapshot::now();
    let mut outcomes = StdRng::seed_from_u64(7);
    let total = min_samples + 400;
    let mut late_gemma = 0;
    for i in 0..total {
        let (chosen, engine) = decide(&router, &req, &snapshot, &models);
        // Simulated world: gemma meets the SLO 90% of the time, smollm2 only 30%.
        let p = if chosen == "gemma3-270m" { 0.9 } else { 0.3 };
        let met = outcomes.random_bool(p);
        router.observe(&chosen, &engine, 50.0, 10.0, met);
        if i >= total - 200 && chosen == "gemma3-270m" {
            late_gemma += 1;
        }
    }
    // Before min_samples the fixed weights send short chat to the small tier; afterwards the
    // bandit must have found the better candidate.
    assert!(
        late_gemma >= 160,
        "gemma got {late_gemma}/200 of the late traffic"
    );
}
