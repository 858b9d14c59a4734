//! Every built-in profile parses, validates and carries the values the issue asks for.

use switchyard_profiles::{
    builtin, builtin_names, builtin_policy, builtin_policy_names, resolve, Accelerator, Origin,
    Precision, ProfileError, SecurityLevel, Task, DEFAULT_POLICY, DEFAULT_PROFILE,
};

#[test]
fn every_builtin_device_parses_validates_and_resolves() {
    let names = builtin_names();
    assert_eq!(
        names,
        [
            "cpu-x86",
            "jetson-orin-nano-8gb",
            "jetson-agx-orin-64gb",
            "mac-m-series-16gb",
            "mac-m-max-64gb",
            "rtx-desktop-24gb"
        ]
    );
    for name in names {
        let device = builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(device.name, name);
        assert!(!device.source.is_empty(), "{name} cites no source");
        assert_eq!(device.policy, DEFAULT_POLICY);
        assert!(device.thermal.throttle_c < device.thermal.critical_c);
        assert!(device.has(Accelerator::Cpu));
        assert!(
            device.preference(Task::Llm).is_some(),
            "{name}: no llm preference"
        );
        let profile = resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(profile.device, device);
        assert_eq!(profile.policy.name, "default");
        assert_eq!(
            profile.origin,
            vec![
                Origin::Builtin(format!("builtin:devices/{name}.toml")),
                Origin::Builtin("builtin:policies/default.toml".into())
            ]
        );
    }
}

#[test]
fn every_builtin_policy_parses_and_validates() {
    assert_eq!(builtin_policy_names(), ["default", "learned", "airgap"]);
    for name in builtin_policy_names() {
        let policy = builtin_policy(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(policy.name, name);
        for intent in switchyard_profiles::INTENTS {
            assert!(
                policy.route(intent).is_some(),
                "{name}: no route for {intent}"
            );
        }
    }
}

#[test]
fn default_profile_keeps_the_gateway_fields() {
    let p = builtin(DEFAULT_PROFILE).unwrap();
    assert_eq!(p.name, "cpu-x86");
    assert_eq!(p.engine.threads, 2);
    assert!(p.engine.slots >= 1 && p.engine.context_per_slot >= 1024);
    assert_eq!(
        (p.engine.threads, p.engine.slots, p.engine.context_per_slot),
        (2, 8, 2048)
    );
    assert_eq!(p.hardware.cpu_cores, 2);
    assert_eq!(p.hardware.memory_mib, 24 * 1024);
    assert_eq!(p.hardware.accelerators, [Accelerator::Cpu]);
    assert_eq!(p.hardware.gpu_name, None);
}

#[test]
fn jetsons_prefer_tensorrt_int8_on_the_nano_and_fp16_on_agx() {
    let nano = builtin("jetson-orin-nano-8gb").unwrap();
    assert_eq!(nano.hardware.cpu_cores, 6);
    assert!(nano.hardware.unified_memory);
    assert_eq!(nano.hardware.vram_mib, None);
    let emb = nano.preference(Task::Embedding).unwrap();
    assert_eq!(emb.engines[0], "onnx/tensorrt");
    assert_eq!(emb.precisions[0], Precision::Int8);
    assert!(nano.source.contains("1024-core Ampere"));

    let agx = builtin("jetson-agx-orin-64gb").unwrap();
    assert_eq!(agx.hardware.cpu_cores, 12);
    assert_eq!(agx.hardware.memory_mib, 64 * 1024);
    let emb = agx.preference(Task::Embedding).unwrap();
    assert_eq!(emb.engines[0], "onnx/tensorrt");
    assert_eq!(emb.precisions[0], Precision::Fp16);
    assert!(agx.memory.budget_mib > nano.memory.budget_mib);
}

#[test]
fn macs_use_mlx_and_coreml_and_rtx_has_vram() {
    for name in ["mac-m-series-16gb", "mac-m-max-64gb"] {
        let mac = builtin(name).unwrap();
        assert!(mac.has(Accelerator::Mlx) && mac.has(Accelerator::Coreml));
        assert_eq!(mac.preference(Task::Llm).unwrap().engines[0], "mlx/metal");
        assert!(mac
            .prefer
            .iter()
            .any(|p| p.engines.iter().any(|e| e == "onnx/coreml")));
    }
    let rtx = builtin("rtx-desktop-24gb").unwrap();
    assert_eq!(rtx.hardware.vram_mib, Some(24 * 1024));
    assert!(rtx.memory.vram_budget_mib.unwrap() < 24 * 1024);
}

#[test]
fn default_learned_and_airgap_policies() {
    let d = builtin_policy("default").unwrap();
    let chat = d.route("chat").unwrap();
    assert_eq!(
        (chat.pipeline.as_str(), chat.tier.as_str()),
        ("llm", "small")
    );
    assert_eq!(chat.max_prompt_tokens, Some(256));
    assert_eq!(chat.overflow_tier.as_deref(), Some("large"));
    assert_eq!(d.tier("small").unwrap().models, ["smollm2-135m-instruct"]);
    assert_eq!(d.tier("large").unwrap().models, ["gemma3-270m"]);
    for intent in ["code", "summarize", "long-form", "tool-use", "classify"] {
        assert_eq!(d.route(intent).unwrap().tier, "large", "{intent}");
    }
    assert_eq!(d.route("tts").unwrap().pipeline, "tts");
    assert_eq!(d.thermal.fallback_tier, "small");
    assert_eq!(d.thermal.hysteresis_c, 5.0);
    assert_eq!(d.classifier.tier_a_threshold, 0.6);
    assert!(!d.learned.enabled);
    assert_eq!(d.hints.force_security, None);

    let l = builtin_policy("learned").unwrap();
    assert!(l.learned.enabled);
    assert_eq!((l.routes.clone(), l.tiers.clone()), (d.routes, d.tiers));

    let a = builtin_policy("airgap").unwrap();
    assert_eq!(a.hints.force_security, Some(SecurityLevel::Airgap));
    assert_eq!(a.hints.allowed_security, [SecurityLevel::Airgap]);
    assert!(!a.hints.from_headers && !a.hints.from_metadata && !a.learned.enabled);
}

#[test]
fn unknown_builtins_are_named_with_the_known_ones() {
    let err = builtin("toaster").unwrap_err();
    assert!(matches!(err, ProfileError::Unknown { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("toaster") && msg.contains("jetson-orin-nano-8gb"),
        "{msg}"
    );
    let msg = builtin_policy("lenient").unwrap_err().to_string();
    assert!(
        msg.contains("policy profile 'lenient'") && msg.contains("airgap"),
        "{msg}"
    );
}
