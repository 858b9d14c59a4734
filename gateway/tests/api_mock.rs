//! In-process tests of the HTTP API over the mock engine: wire format, streaming framing,
//! every error case, queueing, cancellation, draining and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard_core::LoadedModel;
use switchyard_engine_mock::{MockConfig, MockModel};
use switchyard_gateway::{AppState, Config};

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    model: Arc<MockModel>,
}

fn serve(config: Config, mock: MockConfig) -> Server {
    let model = MockModel::new(mock);
    let state = Arc::new(
        AppState::with_loaded(config, vec![Arc::clone(&model) as Arc<dyn LoadedModel>]).unwrap(),
    );
    let app = switchyard_gateway::app(Arc::clone(&state));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    Server {
        addr: rx.recv().unwrap(),
        state,
        model,
    }
}

fn default_server() -> Server {
    serve(Config::default(), MockConfig::default())
}

fn post(s: &Server, path: &str, body: &Value) -> support::Response {
    support::request(s.addr, "POST", path, &body.to_string())
}

fn assert_error(r: &support::Response, status: u16, param: Option<&str>) -> Value {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let v = r.json();
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(
        e.as_object().unwrap().contains_key("param") && e.as_object().unwrap().contains_key("code"),
        "{v}"
    );
    if let Some(p) = param {
        assert_eq!(e["param"], p, "{v}");
    }
    v
}

fn chat(content: &str) -> Value {
    json!({"model": "mock", "messages": [{"role": "user", "content": content}], "max_tokens": 4})
}

#[test]
fn chat_completion_has_openai_shape() {
    let s = default_server();
    let r = post(&s, "/v1/chat/completions", &chat("alpha beta"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("x-switchyard-route")
        .unwrap()
        .contains("model=mock"));
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "mock");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "alpha beta alpha beta "
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6})
    );
}

#[test]
fn content_parts_and_developer_role_are_accepted() {
    let s = default_server();
    let body = json!({"model": "mock", "max_tokens": 2, "messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
    ]});
    let r = post(&s, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "one two ");
    // Empty or default values of unsupported features ask for nothing and are accepted.
    let mut body = chat("ok");
    body["tools"] = json!([]);
    body["logit_bias"] = json!({});
    body["logprobs"] = json!(false);
    body["response_format"] = json!({"type": "text"});
    body["user"] = json!("someone");
    assert_eq!(post(&s, "/v1/chat/completions", &body).status, 200);
}

#[test]
fn stop_sequence_and_natural_stop() {
    let s = default_server();
    let mut body = chat("red green blue");
    body["stop"] = json!(["blue"]);
    body["max_tokens"] = json!(10);
    let v = post(&s, "/v1/chat/completions", &body).json();
    assert_eq!(v["choices"][0]["message"]["content"], "red green ");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let mut body = chat("x [[short]]");
    body["max_tokens"] = json!(10);
    let v = post(&s, "/v1/chat/completions", &body).json();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

#[test]
fn chat_stream_framing_with_usage() {
    let s = default_server();
    let mut body = chat("a b");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let st = support::stream(s.addr, "/v1/chat/completions", &body.to_string());
    assert_eq!(st.status, 200);
    assert!(
        st.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type")
                && v.starts_with("text/event-stream"))
    );
    let events: Vec<String> = st.collect().into_iter().map(|e| e.0).collect();
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(chunks
        .iter()
        .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "a b a b ");
    // Every chunk but the last carries usage: null; the last has no choices and the usage.
    let (last, rest) = chunks.split_last().unwrap();
    assert!(rest
        .iter()
        .all(|c| c["usage"].is_null() && c.as_object().unwrap().contains_key("usage")));
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 4);
    let finish = &rest.last().unwrap()["choices"][0];
    assert_eq!(finish["finish_reason"], "length");
    assert_eq!(finish["delta"], json!({}));
}

#[test]
fn chat_stream_without_usage_has_no_usage_field() {
    let s = default_server();
    let mut body = chat("a");
    body["stream"] = json!(true);
    let events: Vec<String> = support::stream(s.addr, "/v1/chat/completions", &body.to_string())
        .collect()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(events.last().unwrap(), "[DONE]");
    for d in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(d).unwrap();
        assert!(!v.as_object().unwrap().contains_key("usage"), "{v}");
    }
}

#[test]
fn completions_plain_stream_and_echo() {
    let s = default_server();
    let r = post(
        &s,
        "/v1/completions",
        &json!({"model": "mock", "prompt": "x y", "max_tokens": 3}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["choices"][0]["text"], "x y x ");
    assert_eq!(v["usage"]["total_tokens"], 5);
    let v = post(
        &s,
        "/v1/completions",
        &json!({"model": "mock", "prompt": ["x"], "max_tokens": 1, "echo": true}),
    )
    .json();
    assert_eq!(v["choices"][0]["text"], "xx ");
    let body = json!({"model": "mock", "prompt": "p q", "max_tokens": 2, "stream": true});
    let events = support::stream(s.addr, "/v1/completions", &body.to_string()).collect();
    let (text, _) = support::chat_stream_text(&events);
    assert_eq!(text, "p q ");
    assert_eq!(events.last().unwrap().0, "[DONE]");
}

#[test]
fn auto_model_routes_to_default() {
    let s = default_server();
    let mut body = chat("z");
    body["model"] = json!("auto");
    let r = post(&s, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200);
    assert!(r.header("x-switchyard-route").unwrap().contains("auto"));
}

#[test]
fn models_endpoints() {
    let s = default_server();
    let v = support::request(s.addr, "GET", "/v1/models", "").json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "mock");
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["owned_by"], "switchyard");
    let v = support::request(s.addr, "GET", "/v1/models/mock", "").json();
    assert_eq!(v["id"], "mock");
    let r = support::request(s.addr, "GET", "/v1/models/nope", "");
    assert_eq!(
        assert_error(&r, 404, Some("model"))["error"]["code"],
        "model_not_found"
    );
}

#[test]
fn malformed_and_mistyped_requests_are_400() {
    let s = default_server();
    let r = support::request(s.addr, "POST", "/v1/chat/completions", "{not json");
    let v = assert_error(&r, 400, None);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let r = support::request(s.addr, "POST", "/v1/chat/completions", "");
    assert_error(&r, 400, None);
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": "hello"}),
    );
    assert_error(&r, 400, Some("messages"));
    let r = post(&s, "/v1/chat/completions", &json!({"messages": []}));
    assert_error(&r, 400, None);
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
    );
    assert_error(&r, 400, Some("temperature"));
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": []}),
    );
    assert_error(&r, 400, Some("messages"));
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": [{"role": "wizard", "content": "x"}]}),
    );
    assert_error(&r, 400, Some("messages[0].role"));
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]}),
    );
    // A data: URI without base64 data.
    assert_error(&r, 400, Some("messages[0].content[0].image_url.url"));
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": "data:,"}}]}]}),
    );
    assert_error(&r, 400, Some("messages[0].content[0].type"));
    let r = post(
        &s,
        "/v1/chat/completions",
        &json!({"model": "mock", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"format": "wav"}}]}]}),
    );
    assert_error(&r, 400, Some("messages[0].content[0].input_audio.data"));
    let r = post(
        &s,
        "/v1/completions",
        &json!({"model": "mock", "prompt": ["a", "b"]}),
    );
    assert_error(&r, 400, Some("prompt"));
    let r = post(
        &s,
        "/v1/completions",
        &json!({"model": "mock", "prompt": 42}),
    );
    assert_error(&r, 400, Some("prompt"));
}

#[test]
fn sampling_values_out_of_range_are_400() {
    let s = default_server();
    for (field, value) in [
        ("temperature", json!(3.0)),
        ("top_p", json!(1.5)),
        ("min_p", json!(-0.1)),
        ("presence_penalty", json!(2.5)),
        ("frequency_penalty", json!(-3)),
        ("top_k", json!(-1)),
        ("n", json!(2)),
        ("max_tokens", json!(0)),
        ("max_tokens", json!(1_000_000)),
        ("stop", json!(["a", "b", "c", "d", "e"])),
        ("logprobs", json!(true)),
        ("logit_bias", json!({"50256": -100})),
        ("response_format", json!({"type": "json_object"})),
        (
            "tools",
            json!([{"type": "function", "function": {"name": "f"}}]),
        ),
    ] {
        let mut body = chat("x");
        body[field] = value;
        let r = post(&s, "/v1/chat/completions", &body);
        assert_error(&r, 400, Some(field));
    }
}

#[test]
fn unknown_model_is_404() {
    let s = default_server();
    let mut body = chat("x");
    body["model"] = json!("gpt-9");
    let v = assert_error(&post(&s, "/v1/chat/completions", &body), 404, Some("model"));
    assert!(v["error"]["message"].as_str().unwrap().contains("gpt-9"));
}

#[test]
fn prompt_longer_than_context_is_400() {
    let s = serve(
        Config::default(),
        MockConfig {
            context: 8,
            ..MockConfig::default()
        },
    );
    let r = post(
        &s,
        "/v1/chat/completions",
        &chat("one two three four five six seven eight nine"),
    );
    let v = assert_error(&r, 400, Some("messages"));
    assert!(v["error"]["message"].as_str().unwrap().contains("context"));
}

#[test]
fn body_over_limit_is_413() {
    let mut config = Config::default();
    config.limits.max_body_bytes = 2048;
    let s = serve(config, MockConfig::default());
    let r = post(&s, "/v1/chat/completions", &chat(&"word ".repeat(1000)));
    let v = assert_error(&r, 413, None);
    assert_eq!(v["error"]["code"], "request_too_large");
}

#[test]
fn unknown_route_and_wrong_method() {
    let s = default_server();
    let r = support::request(s.addr, "GET", "/v1/nothing", "");
    assert_error(&r, 404, None);
    let r = support::request(s.addr, "GET", "/v1/chat/completions", "");
    assert_error(&r, 405, None);
}

#[test]
fn queue_full_is_429_with_retry_after() {
    let mut config = Config::default();
    config.limits.retry_after_seconds = 7;
    let s = serve(
        config,
        MockConfig {
            slots: 1,
            queue_size: 1,
            token_delay: Duration::from_millis(20),
            ..MockConfig::default()
        },
    );
    let mut long = chat("busy");
    long["max_tokens"] = json!(40);
    long["stream"] = json!(true);
    let first = support::stream(s.addr, "/v1/chat/completions", &long.to_string());
    let second = support::stream(s.addr, "/v1/chat/completions", &long.to_string());
    assert_eq!((first.status, second.status), (200, 200));
    let r = post(&s, "/v1/chat/completions", &chat("more"));
    let v = assert_error(&r, 429, None);
    assert_eq!(v["error"]["code"], "queue_full");
    assert_eq!(r.header("retry-after"), Some("7"));
    // The queued request still completes once the slot frees.
    let (text, _) = support::chat_stream_text(&second.collect());
    assert!(text.starts_with("busy busy"));
    first.disconnect();
}

#[test]
fn engine_failure_is_500_or_an_error_event() {
    let s = default_server();
    let r = post(&s, "/v1/chat/completions", &chat("boom [[fail]]"));
    let v = assert_error(&r, 500, None);
    assert_eq!(v["error"]["type"], "server_error");
    let mut body = chat("boom [[fail]]");
    body["stream"] = json!(true);
    let events = support::stream(s.addr, "/v1/chat/completions", &body.to_string()).collect();
    let last: Value = serde_json::from_str(&events.last().unwrap().0).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{last}");
    assert!(events.iter().all(|e| e.0 != "[DONE]"));
}

#[test]
fn client_disconnect_cancels_generation_and_frees_the_slot() {
    let s = serve(
        Config::default(),
        MockConfig {
            slots: 1,
            queue_size: 0,
            token_delay: Duration::from_millis(10),
            ..MockConfig::default()
        },
    );
    let mut body = chat("long");
    body["max_tokens"] = json!(2000);
    body["stream"] = json!(true);
    let mut st = support::stream(s.addr, "/v1/chat/completions", &body.to_string());
    st.next_data().unwrap();
    st.next_data().unwrap();
    assert_eq!(s.model.status().active, 1);
    st.disconnect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.model.status().active != 0 {
        assert!(Instant::now() < deadline, "slot not freed after disconnect");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The slot is usable again at once.
    let r = post(&s, "/v1/chat/completions", &chat("again"));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn health_metrics_and_draining() {
    let s = default_server();
    post(&s, "/v1/chat/completions", &chat("m"));
    post(&s, "/v1/chat/completions", &json!({}));
    let r = support::request(s.addr, "GET", "/health", "");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        (v["live"].as_bool(), v["ready"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(v["models"][0]["id"], "mock");
    assert_eq!(v["models"][0]["loaded"], true);
    assert_eq!(v["models"][0]["engine"], "mock/cpu");

    let m = support::request(s.addr, "GET", "/metrics", "");
    assert_eq!(m.status, 200);
    for needle in [
        "switchyard_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 1",
        "switchyard_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"} 1",
        "switchyard_http_request_duration_seconds_bucket",
        "switchyard_time_to_first_token_seconds_count{model=\"mock\"} 1",
        "switchyard_generated_tokens_total{model=\"mock\"} 4",
        "switchyard_queue_depth{model=\"mock\"} 0",
        "switchyard_model_loaded{engine=\"mock/cpu\",model=\"mock\"} 1",
        "switchyard_model_memory_bytes{model=\"mock\"} 1024",
        "switchyard_process_resident_memory_bytes",
    ] {
        assert!(m.body.contains(needle), "missing {needle} in\n{}", m.body);
    }

    s.state.start_draining();
    let r = support::request(s.addr, "GET", "/health", "");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "draining");
    assert_eq!(
        support::request(s.addr, "GET", "/health/ready", "").status,
        503
    );
    assert_eq!(
        support::request(s.addr, "GET", "/health/live", "").status,
        200
    );
    let r = post(&s, "/v1/chat/completions", &chat("late"));
    assert_error(&r, 503, None);
    assert!(r.header("retry-after").is_some());
}
