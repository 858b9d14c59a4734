//! In-process tests of routing in the gateway (mock engine): `POST /v1/route`, the route header
//! on real responses, hints from metadata and headers, bad media, `GET /v1/telemetry`, the
//! router metrics, and profile hot reload (a bad file keeps the old profile and says why).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use switchyard_core::LoadedModel;
use switchyard_engine_mock::{MockConfig, MockModel};
use switchyard_gateway::reload::{reload, Reloaded};
use switchyard_gateway::{AppState, Config};

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
}

fn serve_with(config: Config, watch: bool) -> Server {
    let model = MockModel::new(MockConfig::default());
    let state = Arc::new(
        AppState::with_loaded(config, vec![Arc::clone(&model) as Arc<dyn LoadedModel>]).unwrap(),
    );
    let app = switchyard_gateway::app(Arc::clone(&state));
    let watched = Arc::clone(&state);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            if watch {
                tokio::spawn(switchyard_gateway::reload::watch(
                    watched,
                    Duration::from_millis(50),
                ));
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    Server {
        addr: rx.recv().unwrap(),
        state,
    }
}

fn serve() -> Server {
    serve_with(Config::default(), false)
}

fn route(s: &Server, endpoint: &str, body: Value) -> support::Response {
    let q = json!({"endpoint": endpoint, "body": body});
    support::request(s.addr, "POST", "/v1/route", &q.to_string())
}

fn chat(content: Value) -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": content}], "max_tokens": 4})
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0";
const WAV: &[u8] =
    b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0";

fn error_of(r: &support::Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v
}

#[test]
fn route_explains_every_stage_with_timings() {
    let s = serve();
    let r = route(
        &s,
        "/v1/chat/completions",
        chat(json!(
            "Write a Python function that merges two sorted lists"
        )),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["intent"], "code", "{d}");
    assert!(d["intent_confidence"].as_f64().unwrap() > 0.5);
    let stages: Vec<&str> = d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["heuristics", "intent", "policy"]);
    assert!(d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["nanos"].as_u64().unwrap() > 0));
    assert_eq!(d["steps"][0]["task"], "llm");
    assert_eq!(d["steps"][0]["model"], "mock");
    assert_eq!(d["profile"]["device"], "cpu-x86");
    assert!(!d["placements"][0]["candidates"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(d["reasons"].as_array().unwrap().len() >= 2, "{d}");
}

#[test]
fn early_exits_still_show_what_the_classifier_says() {
    let s = serve();
    let r = route(
        &s,
        "/v1/audio/speech",
        json!({"model": "auto", "input": "Please read this aloud"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["pipeline"], "tts");
    assert!(d["intent"].is_string(), "{d}");
    let intent_stage = d["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "intent")
        .unwrap();
    assert_eq!(intent_stage["explain_only"], true);
    // Nothing installed speaks: the route says so instead of failing.
    assert!(d["steps"][0]["model"].is_null(), "{d}");

    let r = route(&s, "/v1/audio/transcriptions", json!({"file": b64(WAV)}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["pipeline"], "stt");

    let audio_chat =
        chat(json!([{"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}}]));
    let d = route(&s, "/v1/chat/completions", audio_chat).json();
    assert_eq!(d["pipeline"], "stt-llm", "{d}");
    let tasks: Vec<&str> = d["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["task"].as_str().unwrap())
        .collect();
    assert_eq!(tasks, ["stt", "llm"]);

    let image_chat = chat(json!([
        {"type": "text", "text": "what does the sign say?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", b64(PNG))}}
    ]));
    let d = route(&s, "/v1/chat/completions", image_chat).json();
    assert_eq!(d["pipeline"], "ocr-llm", "{d}");
    assert_eq!(d["heuristics"]["media"][0]["format"], "png");
}

#[test]
fn bad_inputs_are_clear_400s() {
    let s = serve();
    // An "image" that is really audio.
    let liar = chat(
        json!([{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", b64(WAV))}}]),
    );
    let v = error_of(&route(&s, "/v1/chat/completions", liar), 400);
    assert_eq!(v["error"]["param"], "messages[0].content[0]");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("audio"),
        "{v}"
    );
    // Bytes nobody can decode.
    let junk = chat(
        json!([{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", b64(b"not an image at all"))}}]),
    );
    let v = error_of(&route(&s, "/v1/chat/completions", junk), 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a recognised format"),
        "{v}"
    );
    // Not base64.
    let v = error_of(
        &route(
            &s,
            "/v1/chat/completions",
            chat(json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}])),
        ),
        400,
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("base64"),
        "{v}"
    );
    // Remote URLs are off.
    let v = error_of(
        &route(
            &s,
            "/v1/chat/completions",
            chat(json!([{"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}])),
        ),
        400,
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("data: URI"),
        "{v}"
    );
    // Empty text.
    error_of(&route(&s, "/v1/chat/completions", chat(json!("   "))), 400);
    // Unknown hint values, from metadata and from headers.
    let mut body = chat(json!("hello"));
    body["metadata"] = json!({"security": "top-secret"});
    let v = error_of(&route(&s, "/v1/chat/completions", body), 400);
    assert_eq!(v["error"]["param"], "metadata.security");
    let r = support::request_with(
        s.addr,
        "POST",
        "/v1/route",
        &[("x-switchyard-priority", "urgent!!")],
        &json!({"endpoint": "/v1/chat/completions", "body": chat(json!("hello"))}).to_string(),
    );
    error_of(&r, 400);
    // Hints in the `user` string count too (when the policy reads metadata).
    let mut body = chat(json!("hello"));
    body["user"] = json!("alice;security=sealed");
    let v = error_of(&route(&s, "/v1/chat/completions", body.clone()), 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("sealed"),
        "{v}"
    );
    body["user"] = json!("alice;security=airgap;priority=high");
    let d = route(&s, "/v1/chat/completions", body).json();
    assert_eq!(d["heuristics"]["hints"]["security"], "airgap", "{d}");
    assert_eq!(d["heuristics"]["hints"]["priority"], "high", "{d}");
    // Unknown endpoint, missing body.
    let v = error_of(&route(&s, "/v1/teleport", json!({})), 400);
    assert_eq!(v["error"]["param"], "endpoint");
    let r = support::request(
        s.addr,
        "POST",
        "/v1/route",
        r#"{"endpoint": "/v1/chat/completions"}"#,
    );
    error_of(&r, 400);
    // Giant text is fine (bounded work) and counted.
    let giant = "word ".repeat(100_000);
    let r = route(&s, "/v1/chat/completions", chat(json!(giant)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["heuristics"]["prompt_tokens"].as_u64().unwrap() > 50_000);
}

#[test]
fn real_responses_carry_the_route_and_metrics_count_it() {
    let s = serve();
    let r = support::request_with(
        s.addr,
        "POST",
        "/v1/chat/completions",
        &[("x-switchyard-security", "airgap")],
        &chat(json!("hi there, how are you?")).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let header = r.header("x-switchyard-route").unwrap();
    assert!(
        header.contains("model=mock") && header.contains("intent=chat("),
        "{header}"
    );
    assert!(
        header.contains("router_ns=") && header.contains("engine=mock"),
        "{header}"
    );
    let metrics = support::request(s.addr, "GET", "/metrics", "").body;
    for name in [
        "switchyard_route_decisions_total{engine=",
        "switchyard_route_stage_duration_seconds_bucket{stage=\"intent\"",
        "switchyard_route_intent_total{intent=\"chat\",tier=\"a\"}",
        "switchyard_profile_info{device=\"cpu-x86\",policy=\"default\"} 1",
        "switchyard_telemetry_value{metric=\"snapshot_age_seconds\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[test]
fn telemetry_endpoint_returns_the_snapshot() {
    let s = serve();
    let r = support::request(s.addr, "GET", "/v1/telemetry", "");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(
        v["age_ms"].is_u64() && v["taken_at_unix_ms"].is_u64(),
        "{v}"
    );
    assert!(v["gpus"].is_array() && v["notes"].is_array(), "{v}");
}

fn profile_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let dir = tempfile::tempdir().unwrap();
    let device = std::fs::read_to_string(root.join("devices/cpu-x86.toml"))
        .unwrap()
        .replace("policy = \"default\"", "policy = \"policy.toml\"");
    let device_path = dir.path().join("box.toml");
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&device_path, device).unwrap();
    std::fs::copy(root.join("policies/default.toml"), &policy_path).unwrap();
    (dir, device_path, policy_path)
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn health(s: &Server) -> Value {
    support::request(s.addr, "GET", "/health", "").json()
}

#[test]
fn reload_keeps_the_old_profile_on_a_bad_file_and_applies_a_good_one() {
    let (_dir, device, policy) = profile_dir();
    let config = Config {
        profile: device.display().to_string(),
        ..Config::default()
    };
    let s = serve_with(config, false);
    assert_eq!(health(&s)["profile"]["policy"], "default");

    rewrite(&policy, "tier_a_threshold = 0.6", "tier_a_threshold = 7.5");
    match reload(&s.state) {
        Reloaded::Kept(e) => assert!(
            e.contains("policy.toml:") && e.contains("classifier.tier_a_threshold"),
            "{e}"
        ),
        other => panic!("bad file applied: {other:?}"),
    }
    let h = health(&s);
    assert_eq!(h["profile"]["policy"], "default");
    assert!(
        h["profile"]["reload_error"]
            .as_str()
            .unwrap()
            .contains("tier_a_threshold"),
        "{h}"
    );
    let metrics = support::request(s.addr, "GET", "/metrics", "").body;
    assert!(metrics.contains("switchyard_profile_reload_error 1"));
    // Requests keep being routed on the old profile.
    assert_eq!(
        route(&s, "/v1/chat/completions", chat(json!("hello"))).status,
        200
    );

    rewrite(&policy, "tier_a_threshold = 7.5", "tier_a_threshold = 0.6");
    rewrite(&policy, "name = \"default\"", "name = \"tuned\"");
    assert_eq!(
        reload(&s.state),
        Reloaded::Applied {
            device: "cpu-x86".into(),
            policy: "tuned".into()
        }
    );
    let h = health(&s);
    assert_eq!(h["profile"]["policy"], "tuned");
    assert!(h["profile"]["reload_error"].is_null());
    let metrics = support::request(s.addr, "GET", "/metrics", "").body;
    assert!(metrics.contains("switchyard_profile_reload_error 0"));
    assert!(metrics.contains("policy=\"tuned\"} 1"));
}

#[test]
fn a_changed_profile_file_is_picked_up_without_a_restart() {
    let (_dir, device, policy) = profile_dir();
    let config = Config {
        profile: device.display().to_string(),
        ..Config::default()
    };
    let s = serve_with(config, true);
    // Make sure the new mtime differs from the first one the watcher saw.
    std::thread::sleep(Duration::from_millis(1100));
    rewrite(&policy, "name = \"default\"", "name = \"watched\"");
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&s)["profile"]["policy"] != "watched" {
        assert!(
            Instant::now() < deadline,
            "the watcher did not reload the changed file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
