//! End-to-end routing with the real binary and the sample models: `model: "auto"` sends short
//! chat to SmolLM2 and code to Gemma 3 under the default policy, `--profile` picks the device
//! profile, `switchyard profile check` validates files, and SIGHUP reloads the profile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

fn profiles_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

fn auto(gw: &support::Gateway, path: &str, body: Value) -> (String, String) {
    let r = support::request(gw.addr, "POST", path, &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let header = r.header("x-switchyard-route").unwrap().to_owned();
    (r.json()["model"].as_str().unwrap().to_owned(), header)
}

fn chat(prompt: &str) -> Value {
    json!({
        "model": "auto",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": 8,
    })
}

#[test]
fn auto_sends_short_chat_to_smollm2_and_code_to_gemma() {
    support::require_model("smollm2-135m-instruct");
    support::require_model("gemma3-270m");
    let gw = support::start("[engine]\nthreads = 2\nslots = 2\n", &support::models_dir());
    let (model, header) = auto(
        &gw,
        "/v1/chat/completions",
        chat("hi! how are you doing today?"),
    );
    assert_eq!(model, "smollm2-135m-instruct", "{header}");
    assert!(
        header.contains("intent=chat(") && header.contains("profile=cpu-x86/default"),
        "{header}"
    );

    // Code goes to the large tier. Gemma 3 270M is a base model (no chat template), so it
    // serves completions: a code completion lands there...
    let code = json!({"model": "auto", "prompt": "Write a Python function that returns True when a number is prime.\n\ndef is_prime(n):", "temperature": 0, "max_tokens": 8});
    let (model, header) = auto(&gw, "/v1/completions", code);
    assert_eq!(model, "gemma3-270m", "{header}");
    assert!(header.contains("intent=code("), "{header}");
    // ...while a code question in chat stays on a chat model, and the trace says why.
    let prompt = "Write a Python function that returns True when a number is prime.";
    let (model, _) = auto(&gw, "/v1/chat/completions", chat(prompt));
    assert_eq!(model, "smollm2-135m-instruct");
    let q = json!({"endpoint": "/v1/chat/completions", "body": chat(prompt)});
    let d = support::request(gw.addr, "POST", "/v1/route", &q.to_string()).json();
    assert_eq!(d["intent"], "code", "{d}");
    let rejected: Vec<&str> = d["placements"][0]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["rejected"].as_str())
        .collect();
    assert!(
        rejected
            .iter()
            .any(|r| r.contains("gemma3-270m does not serve chat")),
        "{d}"
    );

    // Naming the base model for chat is a clear 400, not an engine failure.
    let mut body = chat("hello");
    body["model"] = json!("gemma3-270m");
    let r = support::request(gw.addr, "POST", "/v1/chat/completions", &body.to_string());
    assert_eq!(r.status, 400, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["param"], "model", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/completions"),
        "{e}"
    );

    // The decision is logged with the request.
    let log = std::fs::read_to_string(&gw.stderr_log).unwrap();
    assert!(
        log.contains("routed") && log.contains("model=gemma3-270m"),
        "{log}"
    );
    let t = support::request(gw.addr, "GET", "/v1/telemetry", "").json();
    assert!(
        t["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "sysinfo"),
        "{t}"
    );
}

#[test]
fn profile_check_accepts_good_files_and_names_file_line_key_for_bad_ones() {
    for file in ["devices/jetson-orin-nano-8gb.toml", "policies/learned.toml"] {
        let out = switchyard()
            .args(["profile", "check"])
            .arg(profiles_root().join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("hot.toml");
    let text = std::fs::read_to_string(profiles_root().join("devices/cpu-x86.toml"))
        .unwrap()
        .replacen("throttle_c = ", "throttle_c = \"hot\" # ", 1);
    std::fs::write(&bad, text).unwrap();
    let out = switchyard()
        .args(["profile", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hot.toml:") && err.contains("thermal.throttle_c"),
        "{err}"
    );

    let out = switchyard().args(["profile", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    for name in [
        "cpu-x86",
        "jetson-orin-nano-8gb",
        "jetson-agx-orin-64gb",
        "mac-m-series-16gb",
        "mac-m-max-64gb",
        "rtx-desktop-24gb",
    ] {
        assert!(list.contains(name), "{name} missing from {list}");
    }
}

#[test]
fn serve_profile_flag_picks_the_device_profile_or_refuses_clearly() {
    let out = switchyard()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--profile",
            "toaster-9000",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("toaster-9000") && err.contains("cpu-x86"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchyard.toml");
    std::fs::write(&config, "").unwrap();
    let mut child = switchyard()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--profile",
            "jetson-orin-nano-8gb",
            "--config",
        ])
        .arg(&config)
        .arg("--models-dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .trim_start_matches("switchyard listening on http://")
        .parse()
        .unwrap();
    let h = support::request(addr, "GET", "/health", "").json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(h["profile"]["device"], "jetson-orin-nano-8gb", "{h}");
}

fn health(gw: &support::Gateway) -> Value {
    support::request(gw.addr, "GET", "/health", "").json()
}

#[test]
fn sighup_reloads_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let device = std::fs::read_to_string(profiles_root().join("devices/cpu-x86.toml"))
        .unwrap()
        .replace("policy = \"default\"", "policy = \"policy.toml\"");
    std::fs::write(dir.path().join("box.toml"), device).unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::copy(profiles_root().join("policies/default.toml"), &policy).unwrap();
    let config = format!(
        "profile = {:?}\n",
        dir.path().join("box.toml").display().to_string()
    );
    let gw = support::start(&config, dir.path());
    assert_eq!(health(&gw)["profile"]["policy"], "default");

    // Change the file but keep its modification time, so only SIGHUP can notice.
    let stamp = std::fs::metadata(&policy).unwrap().modified().unwrap();
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        "name = \"default\"",
        "name = \"hup\"",
        1,
    );
    std::fs::write(&policy, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&policy)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        health(&gw)["profile"]["policy"],
        "default",
        "reloaded without a signal"
    );

    let status = Command::new("kill")
        .args(["-HUP", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while health(&gw)["profile"]["policy"] != "hup" {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the profile"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a gateway on `models_dir` whose policy sends every text to tier B (threshold 1.0:
/// tier A is never sure enough), with the cpu-x86 profile's embedding engines replaced by
/// `engines` when given.
fn gateway_with_tier_b_always(
    dir: &Path,
    engines: Option<&str>,
    models_dir: &Path,
) -> support::Gateway {
    let mut device = std::fs::read_to_string(profiles_root().join("devices/cpu-x86.toml"))
        .unwrap()
        .replace("policy = \"default\"", "policy = \"policy.toml\"");
    if let Some(engines) = engines {
        device = device.replace(
            "engines = [\"onnx/cpu\", \"llama.cpp/cpu\"]",
            &format!("engines = {engines}"),
        );
        assert!(
            device.contains(engines),
            "cpu-x86's embedding engines changed"
        );
    }
    std::fs::write(dir.join("box.toml"), device).unwrap();
    let policy = std::fs::read_to_string(profiles_root().join("policies/default.toml"))
        .unwrap()
        .replacen("tier_a_threshold = 0.6", "tier_a_threshold = 1.0", 1);
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let config = format!(
        "profile = {:?}\n",
        dir.join("box.toml").display().to_string()
    );
    support::start(&config, models_dir)
}

/// Tier B classifies two texts; its reason names `engine`.
fn assert_tier_b_decides(gw: &support::Gateway, engine: &str) {
    for (text, intent) in [
        ("Please summarize the following article in three bullet points: the city council met on Tuesday and approved the new budget.", "summarize"),
        ("Write a Rust function that parses an integer from a string and returns an error on overflow.", "code"),
    ] {
        let q = json!({"endpoint": "/v1/chat/completions", "body": {"model": "auto", "messages": [{"role": "user", "content": text}]}});
        let d = support::request(gw.addr, "POST", "/v1/route", &q.to_string()).json();
        assert_eq!(d["classifier"]["tier"], "b", "{d}");
        assert_eq!(d["intent"], intent, "{d}");
        assert!(
            d.to_string().contains(&format!("tier B ({engine}) decided")),
            "{d}"
        );
    }
}

/// `/v1/embeddings` for `texts`: the vectors and the engine named in the route header.
fn embeddings(gw: &support::Gateway, texts: &[&str]) -> (Vec<Vec<f64>>, String) {
    let body = json!({"model": "all-minilm-l6-v2", "input": texts}).to_string();
    let r = support::request(gw.addr, "POST", "/v1/embeddings", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let engine = r
        .header("x-switchyard-route")
        .and_then(|h| h.split("engine=").nth(1))
        .and_then(|e| e.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let v: Value = serde_json::from_str(&r.body).unwrap();
    let vectors = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    (vectors, engine)
}

const EMBEDDED: [&str; 3] = [
    "Where is the train station?",
    "The quarterly report shows rising costs.",
    "Bitte fasse diesen Text zusammen.",
];

#[test]
fn tier_b_runs_on_the_real_embedding_model_when_tier_a_is_unsure() {
    support::require_model("all-minilm-l6-v2");
    support::require_model("onnxruntime");
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway_with_tier_b_always(dir.path(), None, &support::models_dir());
    assert_tier_b_decides(&gw, "onnxruntime");
    let (_, engine) = embeddings(&gw, &EMBEDDED);
    assert_eq!(engine, "onnx/cpu");
}

/// A profile that puts llama.cpp first for embeddings gets tier B on the Q8_0 GGUF that
/// `models fetch` derives; one whose engines it cannot serve has no tier B, and says so.
#[test]
fn tier_b_follows_the_profiles_embedding_engines() {
    let dir = support::require_model("all-minilm-l6-v2");
    assert!(
        dir.join("model.q8_0.gguf").is_file(),
        "no model.q8_0.gguf in {}: `switchyard models fetch` derives it",
        dir.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let gw = gateway_with_tier_b_always(
        tmp.path(),
        Some("[\"llama.cpp/cpu\", \"onnx/cpu\"]"),
        &support::models_dir(),
    );
    assert_tier_b_decides(&gw, "llama.cpp");
    // `/v1/embeddings` follows the same order, on tier B's encoder: the vectors agree with
    // ONNX Runtime's.
    let (on_llama, engine) = embeddings(&gw, &EMBEDDED);
    assert_eq!(engine, "llama.cpp/cpu");
    let d = support::request(gw.addr, "GET", "/health", "").json();
    let served = d["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "all-minilm-l6-v2")
        .map(|m| m["artifacts"].to_string())
        .unwrap();
    assert!(served.contains("model.q8_0.gguf"), "{served}");
    let h = health(&gw);
    let minilm = h["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "all-minilm-l6-v2")
        .unwrap();
    assert_eq!(minilm["loaded"], true, "{minilm}");
    assert_eq!(minilm["engine"], "llama.cpp/cpu", "{minilm}");
    drop(gw);
    let tmp = tempfile::tempdir().unwrap();
    let gw = gateway_with_tier_b_always(tmp.path(), None, &support::models_dir());
    let (on_onnx, _) = embeddings(&gw, &EMBEDDED);
    for (a, b) in on_llama.iter().zip(&on_onnx) {
        assert_eq!(a.len(), 384);
        let cosine: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cosine > 0.99, "cosine {cosine}");
    }
    drop(gw);

    let tmp = tempfile::tempdir().unwrap();
    let gw =
        gateway_with_tier_b_always(tmp.path(), Some("[\"tract/cpu\"]"), &support::models_dir());
    let q = json!({"endpoint": "/v1/chat/completions", "body": {"model": "auto", "messages": [{"role": "user", "content": "Please summarize this."}]}});
    let d = support::request(gw.addr, "POST", "/v1/route", &q.to_string()).json();
    assert_eq!(d["classifier"]["tier"], "a", "{d}");
    assert!(d.to_string().contains("tier B not installed"), "{d}");
}

/// A GGUF that no longer matches its manifest (a flipped byte) is refused when tier B loads:
/// tier A decides, the route trace says why, and `/health` names the file.
#[test]
fn a_corrupt_tier_b_gguf_is_refused_and_tier_a_decides() {
    let source = support::require_model("all-minilm-l6-v2");
    let models = tempfile::tempdir().unwrap();
    let minilm = models.path().join("all-minilm-l6-v2");
    std::fs::create_dir(&minilm).unwrap();
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "model.q8_0.gguf" {
            let mut bytes = std::fs::read(entry.path()).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(minilm.join(&name), bytes).unwrap();
        } else {
            std::os::unix::fs::symlink(entry.path(), minilm.join(&name)).unwrap();
        }
    }
    let smollm = support::require_model("smollm2-135m-instruct");
    std::os::unix::fs::symlink(&smollm, models.path().join("smollm2-135m-instruct")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let gw = gateway_with_tier_b_always(dir.path(), Some("[\"llama.cpp/cpu\"]"), models.path());
    let q = json!({"endpoint": "/v1/chat/completions", "body": {"model": "auto", "messages": [{"role": "user", "content": "Please summarize this article in two lines."}]}});
    let d = support::request(gw.addr, "POST", "/v1/route", &q.to_string()).json();
    assert_eq!(d["classifier"]["tier"], "a", "{d}");
    let reason = d["classifier"]["reason"].as_str().unwrap();
    assert!(reason.contains("tier B failed"), "{reason}");
    assert!(reason.contains("model.q8_0.gguf"), "{reason}");
    let h = health(&gw);
    let tier_b = &h["router"]["tier_b"];
    assert_eq!(tier_b["engine"], "llama.cpp", "{h}");
    assert_eq!(tier_b["loaded"], false, "{h}");
    assert!(
        tier_b["error"]
            .as_str()
            .unwrap()
            .contains("model.q8_0.gguf"),
        "{h}"
    );
}
