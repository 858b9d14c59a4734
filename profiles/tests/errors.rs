//! Parse and validation errors name the file, the line and the dotted key.

use switchyard_profiles::{parse_device, parse_policy, ProfileError};

const NANO: &str = include_str!("../devices/jetson-orin-nano-8gb.toml");
const POLICY: &str = include_str!("../policies/default.toml");

/// 1-based line of the first line of `text` that starts with `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(needle))
        .unwrap_or_else(|| panic!("{needle:?} not found"))
        + 1
}

fn device_err(text: &str) -> String {
    match parse_device(text, "jetson.toml") {
        Ok(_) => panic!("the device profile was accepted"),
        Err(e) => e.to_string(),
    }
}

fn policy_err(text: &str) -> String {
    match parse_policy(text, "policy.toml") {
        Ok(_) => panic!("the policy profile was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let text = NANO.replace("throttle_c = 88.0", "throttle_c = \"hot\"");
    let line = line_of(&text, "throttle_c");
    assert_eq!(
        device_err(&text),
        format!(
            "jetson.toml:{line}: thermal.throttle_c: invalid type: string \"hot\", expected f32"
        )
    );
}

#[test]
fn unknown_key_names_file_line_and_dotted_key() {
    let text = NANO.replace("throttle_c = 88.0", "throttle_c = 88.0\nthrottle = 80");
    let line = line_of(&text, "throttle =");
    let msg = device_err(&text);
    assert!(
        msg.starts_with(&format!(
            "jetson.toml:{line}: thermal.throttle: unknown field `throttle`"
        )),
        "{msg}"
    );

    let text = NANO.replace("task = \"vad\"", "task = \"vad\"\nengine = \"tract/cpu\"");
    let line = line_of(&text, "engine =");
    let msg = device_err(&text);
    assert!(
        msg.starts_with(&format!(
            "jetson.toml:{line}: prefer[5].engine: unknown field"
        )),
        "{msg}"
    );

    let text = POLICY.replace("[tiers.small]", "[tiers.small]\nmodel = \"x\"");
    let line = line_of(&text, "model =");
    let msg = policy_err(&text);
    assert!(
        msg.starts_with(&format!(
            "policy.toml:{line}: tiers.small.model: unknown field"
        )),
        "{msg}"
    );
}

#[test]
fn unknown_enum_value_and_missing_key() {
    let text = NANO.replace(
        "\"cpu\", \"cuda\", \"tensorrt\"",
        "\"cpu\", \"cuda\", \"tpu\"",
    );
    let line = line_of(&text, "accelerators");
    let msg = device_err(&text);
    assert!(
        msg.starts_with(&format!(
            "jetson.toml:{line}: hardware.accelerators[2]: unknown variant `tpu`"
        )),
        "{msg}"
    );

    let text = NANO.replace("critical_c = 95.0\n", "");
    let line = line_of(&text, "[thermal]");
    assert_eq!(
        device_err(&text),
        format!("jetson.toml:{line}: thermal.critical_c: missing field `critical_c`")
    );
}

#[test]
fn throttle_at_or_above_critical_names_critical_c() {
    let text = NANO.replace("throttle_c = 88.0", "throttle_c = 95.0");
    let line = line_of(&text, "critical_c");
    let msg = device_err(&text);
    assert!(
        msg.starts_with(&format!(
            "jetson.toml:{line}: thermal.critical_c: must be above"
        )),
        "{msg}"
    );
}

#[test]
fn device_validation_reports_every_problem() {
    let text = NANO
        .replace("threads = 4", "threads = 7")
        .replace("budget_mib = 5120", "budget_mib = 0")
        .replace(
            "[\"tract/cpu\", \"onnx/cpu\"]",
            "[\"tract/cpu\", \"onnx/cpux\"]",
        )
        .replace(
            "\"llama.cpp/cuda\", \"llama.cpp/cpu\"",
            "\"mlx/metal\", \"llama.cpp/cpu\"",
        );
    let err = parse_device(&text, "jetson.toml").unwrap_err();
    let keys: Vec<&str> = err.diagnostics().iter().map(|d| d.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "engine.threads",
            "memory.budget_mib",
            "prefer[0].engines[0]",
            "prefer[5].engines[1]",
            "prefer[6].engines[1]"
        ],
        "{err}"
    );
    assert!(err.diagnostics().iter().all(|d| d.line.is_some()), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("7 exceeds hardware.cpu_cores (6)"), "{msg}");
    assert!(msg.contains("'mlx/metal' needs accelerator 'mlx'"), "{msg}");
    assert!(msg.contains("unknown engine 'onnx/cpux'"), "{msg}");
    assert_eq!(msg.lines().count(), 5);
}

#[test]
fn hardware_consistency() {
    let text = NANO.replace("unified_memory = true", "unified_memory = false");
    assert!(device_err(&text).contains("hardware.vram_mib: required for a discrete GPU"));
    let text = NANO.replace("\"cpu\", \"cuda\", \"tensorrt\"", "\"cpu\", \"tensorrt\"");
    assert!(device_err(&text).contains("'tensorrt' runs through 'cuda'"));
}

#[test]
fn route_with_unknown_tier_names_routes_index_and_line() {
    let text = POLICY.replacen(
        "tier = \"large\"\nslo_ms = 4000",
        "tier = \"huge\"\nslo_ms = 4000",
        2,
    );
    // routes[1] (code) and routes[2] (summarize) now name "huge".
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "tier = \"huge\"")
        .nth(1)
        .unwrap()
        .0
        + 1;
    let msg = policy_err(&text);
    assert!(
        msg.contains(&format!(
            "policy.toml:{line}: routes[2].tier: unknown tier 'huge' (tiers: large, small, voice)"
        )),
        "{msg}"
    );
}

#[test]
fn unknown_intent_label() {
    let text = POLICY.replace("intent = \"long-form\"", "intent = \"longform\"");
    let line = line_of(&text, "intent = \"longform\"");
    let msg = policy_err(&text);
    assert!(
        msg.starts_with(&format!(
            "policy.toml:{line}: routes[3].intent: unknown intent 'longform' (known: chat, code,"
        )),
        "{msg}"
    );
}

#[test]
fn policy_rules() {
    let msg = policy_err(&POLICY.replace("tier_a_threshold = 0.6", "tier_a_threshold = 1.5"));
    assert!(
        msg.contains("classifier.tier_a_threshold: 1.5 is not in [0, 1]"),
        "{msg}"
    );

    let msg = policy_err(&POLICY.replace("fallback_tier = \"small\"", "fallback_tier = \"tiny\""));
    assert!(
        msg.contains("thermal.fallback_tier: unknown tier 'tiny'"),
        "{msg}"
    );

    let msg = policy_err(&POLICY.replace("overflow_tier = \"large\"\n", ""));
    assert!(
        msg.contains("routes[0].overflow_tier: required with max_prompt_tokens"),
        "{msg}"
    );

    let msg = policy_err(&POLICY.replace("pipeline = \"tts\"", "pipeline = \"llm\""));
    assert!(msg.contains("routes[6].pipeline: the tts intent"), "{msg}");

    let msg = policy_err(&POLICY.replace("intent = \"code\"", "intent = \"chat\""));
    assert!(
        msg.contains("routes[1].intent: intent 'chat' already has a route"),
        "{msg}"
    );

    let msg = policy_err(&POLICY.replace(
        "allowed_security = [\"public\", \"internal\", \"airgap\"]",
        "allowed_security = [\"public\"]",
    ));
    assert!(
        msg.contains("hints.default_security: 'internal' is not in"),
        "{msg}"
    );

    let msg = policy_err(&POLICY.replace(
        "default_security = \"internal\"",
        "default_security = \"secret\"",
    ));
    assert!(
        msg.contains("hints.default_security: unknown variant `secret`"),
        "{msg}"
    );
}

#[test]
fn syntax_error_has_file_and_line() {
    let text = NANO.replace("[memory]", "[memory\n");
    let line = line_of(&text, "[memory");
    let err = parse_device(&text, "jetson.toml").unwrap_err();
    assert!(matches!(err, ProfileError::Invalid(_)));
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("jetson.toml:{line}: ")), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn optional_sections_take_their_defaults() {
    let text = "name = \"tiny\"\n[tiers.small]\nmodels = [\"m\"]\nquality = 1\n\n[[routes]]\nintent = \"chat\"\npipeline = \"llm\"\ntier = \"small\"\nslo_ms = 500\n";
    let p = parse_policy(text, "tiny.toml").unwrap();
    assert_eq!(p.classifier.tier_a_threshold, 0.6);
    assert!(p.classifier.tier_b && p.hints.from_headers && p.hints.from_metadata);
    assert_eq!(p.thermal.hysteresis_c, 5.0);
    assert_eq!(p.thermal.fallback_tier, "small");
    assert!(!p.learned.enabled);
    assert_eq!(
        (
            p.scoring.latency,
            p.scoring.quality,
            p.scoring.thermal,
            p.scoring.queue
        ),
        (1.0, 1.0, 0.5, 0.5)
    );
    assert_eq!(p.default_slo_ms, 2000);
}

#[test]
fn integer_temperatures_are_accepted() {
    let text = NANO.replace("throttle_c = 88.0", "throttle_c = 88");
    assert_eq!(
        parse_device(&text, "jetson.toml")
            .unwrap()
            .thermal
            .throttle_c,
        88.0
    );
}
