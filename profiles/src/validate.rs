//! Validation after parsing: the rules serde cannot express (ranges, cross-field rules,
//! references between tables, known names). Problems are gathered as `(dotted key, message)`
//! and located later, so one run reports all of them.

use std::collections::HashSet;

use crate::device::{
    engine_accelerator, Accelerator, DeviceProfile, Hardware, ThermalLimits, ENGINES,
};
use crate::load::Issues;
use crate::policy::{HintPolicy, PolicyProfile, SecurityLevel, INTENTS, PIPELINES};

/// Whether `name` is a usable profile or tier name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// Device profile rules: ranges, hardware consistency, budgets, thermal order, known engines.
pub(crate) fn device(p: &DeviceProfile, issues: &mut Issues) {
    if !valid_name(&p.name) {
        issues.push("name", "use lowercase letters, digits, '-', '_' or '.'");
    }
    if p.source.trim().is_empty() {
        issues.push(
            "source",
            "cite the vendor specification the values come from",
        );
    }
    if p.policy.trim().is_empty() {
        issues.push("policy", "name a policy profile or a path to one");
    }
    validate_hardware(&p.hardware, issues);
    validate_engine(p, issues);
    validate_memory(p, issues);
    validate_thermal(&p.thermal, issues);
    validate_prefer(p, issues);
}

fn validate_hardware(h: &Hardware, issues: &mut Issues) {
    if h.cpu_cores == 0 {
        issues.push("hardware.cpu_cores", "must be at least 1");
    }
    if h.memory_mib == 0 {
        issues.push("hardware.memory_mib", "must be greater than 0");
    }
    let mut seen = HashSet::new();
    for (i, a) in h.accelerators.iter().enumerate() {
        if !seen.insert(*a) {
            issues.push(
                format!("hardware.accelerators[{i}]"),
                format!("'{a}' is listed twice"),
            );
        }
    }
    let has = |a| h.accelerators.contains(&a);
    if !has(Accelerator::Cpu) {
        issues.push(
            "hardware.accelerators",
            "must list \"cpu\" (every box has one)",
        );
    }
    for (needs, needed) in [
        (Accelerator::Tensorrt, Accelerator::Cuda),
        (Accelerator::Mlx, Accelerator::Metal),
        (Accelerator::Ane, Accelerator::Coreml),
    ] {
        if has(needs) && !has(needed) {
            issues.push(
                "hardware.accelerators",
                format!("'{needs}' runs through '{needed}': list it too"),
            );
        }
    }
    let gpu = h.accelerators.iter().any(|a| a.is_gpu());
    if gpu && h.gpu_name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        issues.push(
            "hardware.gpu_name",
            "required when a GPU accelerator is listed",
        );
    }
    match h.vram_mib {
        Some(_) if h.unified_memory => issues.push(
            "hardware.vram_mib",
            "unified memory: the GPU shares hardware.memory_mib; remove vram_mib",
        ),
        Some(_) if !gpu => issues.push("hardware.vram_mib", "no GPU accelerator is listed"),
        Some(0) => issues.push("hardware.vram_mib", "must be greater than 0"),
        None if gpu && !h.unified_memory => issues.push(
            "hardware.vram_mib",
            "required for a discrete GPU (or set unified_memory = true)",
        ),
        _ => {}
    }
}

fn validate_engine(p: &DeviceProfile, issues: &mut Issues) {
    let e = &p.engine;
    if e.threads == 0 {
        issues.push("engine.threads", "must be at least 1");
    } else if p.hardware.cpu_cores > 0 && e.threads > p.hardware.cpu_cores {
        issues.push(
            "engine.threads",
            format!(
                "{} exceeds hardware.cpu_cores ({})",
                e.threads, p.hardware.cpu_cores
            ),
        );
    }
    if e.slots == 0 {
        issues.push("engine.slots", "must be at least 1");
    }
    if !(128..=1 << 20).contains(&e.context_per_slot) {
        issues.push("engine.context_per_slot", "must be between 128 and 1048576");
    }
}

fn validate_memory(p: &DeviceProfile, issues: &mut Issues) {
    let (m, h) = (&p.memory, &p.hardware);
    if m.budget_mib == 0 {
        issues.push("memory.budget_mib", "must be greater than 0");
    } else if m.budget_mib.saturating_add(m.reserve_mib) > h.memory_mib {
        issues.push(
            "memory.budget_mib",
            format!(
                "budget_mib ({}) + reserve_mib ({}) exceeds hardware.memory_mib ({})",
                m.budget_mib, m.reserve_mib, h.memory_mib
            ),
        );
    }
    match (m.vram_budget_mib, h.vram_mib) {
        (Some(0), _) => issues.push("memory.vram_budget_mib", "must be greater than 0"),
        (Some(_), None) => issues.push(
            "memory.vram_budget_mib",
            "hardware.vram_mib is not set (with unified memory, budget_mib covers the GPU)",
        ),
        (Some(b), Some(v)) if b > v => issues.push(
            "memory.vram_budget_mib",
            format!("{b} exceeds hardware.vram_mib ({v})"),
        ),
        (None, Some(_)) => issues.push(
            "memory.vram_budget_mib",
            "required when hardware.vram_mib is set",
        ),
        _ => {}
    }
}

fn validate_thermal(t: &ThermalLimits, issues: &mut Issues) {
    let ok = |c: f32| c.is_finite() && c > 0.0 && c <= 150.0;
    if !ok(t.throttle_c) {
        issues.push("thermal.throttle_c", "must be a temperature in (0, 150] °C");
    }
    if !ok(t.critical_c) {
        issues.push("thermal.critical_c", "must be a temperature in (0, 150] °C");
    } else if ok(t.throttle_c) && t.critical_c <= t.throttle_c {
        issues.push(
            "thermal.critical_c",
            format!(
                "must be above thermal.throttle_c ({} <= {})",
                t.critical_c, t.throttle_c
            ),
        );
    }
}

fn validate_prefer(p: &DeviceProfile, issues: &mut Issues) {
    let mut tasks = HashSet::new();
    for (i, pref) in p.prefer.iter().enumerate() {
        let at = format!("prefer[{i}]");
        if !tasks.insert(pref.task) {
            issues.push(
                format!("{at}.task"),
                "this task already has a [[prefer]] entry",
            );
        }
        if pref.engines.is_empty() {
            issues.push(format!("{at}.engines"), "list at least one engine");
        }
        let mut seen = HashSet::new();
        for (j, engine) in pref.engines.iter().enumerate() {
            let key = format!("{at}.engines[{j}]");
            match engine_accelerator(engine) {
                None => {
                    let known: Vec<&str> = ENGINES.iter().map(|(n, _)| *n).collect();
                    issues.push(
                        key,
                        format!("unknown engine '{engine}' (known: {})", known.join(", ")),
                    );
                }
                Some(a) if !p.has(a) => issues.push(
                    key,
                    format!("'{engine}' needs accelerator '{a}', not in hardware.accelerators"),
                ),
                Some(_) if !seen.insert(engine.as_str()) => {
                    issues.push(key, format!("'{engine}' is listed twice"));
                }
                Some(_) => {}
            }
        }
        if pref.precisions.is_empty() {
            issues.push(format!("{at}.precisions"), "list at least one precision");
        }
        let mut seen = HashSet::new();
        for (j, precision) in pref.precisions.iter().enumerate() {
            if !seen.insert(*precision) {
                issues.push(format!("{at}.precisions[{j}]"), "listed twice");
            }
        }
    }
}

/// Policy profile rules: ranges, security levels, tier references, known intents and pipelines.
pub(crate) fn policy(p: &PolicyProfile, issues: &mut Issues) {
    if !valid_name(&p.name) {
        issues.push("name", "use lowercase letters, digits, '-', '_' or '.'");
    }
    let t = p.classifier.tier_a_threshold;
    if !(0.0..=1.0).contains(&t) {
        issues.push(
            "classifier.tier_a_threshold",
            format!("{t} is not in [0, 1]"),
        );
    }
    validate_hints(&p.hints, issues);
    let h = p.thermal.hysteresis_c;
    if !(h.is_finite() && (0.0..=30.0).contains(&h)) {
        issues.push("thermal.hysteresis_c", format!("{h} is not in [0, 30] °C"));
    }
    check_tier(p, "thermal.fallback_tier", &p.thermal.fallback_tier, issues);
    if p.learned.enabled && p.learned.min_samples == 0 {
        issues.push(
            "learned.min_samples",
            "must be at least 1 when learned mode is on",
        );
    }
    let s = &p.scoring;
    let weights = [
        ("latency", s.latency),
        ("quality", s.quality),
        ("thermal", s.thermal),
        ("queue", s.queue),
    ];
    for (key, w) in weights {
        if !(w.is_finite() && w >= 0.0) {
            issues.push(
                format!("scoring.{key}"),
                format!("{w} must be a number >= 0"),
            );
        }
    }
    if weights.iter().all(|(_, w)| *w == 0.0) {
        issues.push("scoring", "at least one weight must be above 0");
    }
    if p.default_slo_ms == 0 {
        issues.push("default_slo_ms", "must be greater than 0");
    }
    for (key, message) in p.fetch.issues() {
        issues.push(key, message);
    }
    validate_tiers(p, issues);
    validate_routes(p, issues);
}

fn validate_hints(h: &HintPolicy, issues: &mut Issues) {
    if h.allowed_security.is_empty() {
        issues.push("hints.allowed_security", "list at least one level");
    }
    let mut seen = HashSet::new();
    for (i, level) in h.allowed_security.iter().enumerate() {
        if !seen.insert(*level) {
            issues.push(format!("hints.allowed_security[{i}]"), "listed twice");
        }
    }
    let allowed = |l: &SecurityLevel| h.allowed_security.contains(l);
    if !allowed(&h.default_security) {
        issues.push(
            "hints.default_security",
            format!("'{}' is not in hints.allowed_security", h.default_security),
        );
    }
    if let Some(level) = h.force_security.filter(|l| !allowed(l)) {
        issues.push(
            "hints.force_security",
            format!("'{level}' is not in hints.allowed_security"),
        );
    }
}

fn validate_tiers(p: &PolicyProfile, issues: &mut Issues) {
    if p.tiers.is_empty() {
        issues.push(
            "tiers",
            "define at least one tier ([tiers.NAME] models = [...])",
        );
    }
    for (name, tier) in &p.tiers {
        let at = format!("tiers.{name}");
        if !valid_name(name) || name.contains('.') {
            issues.push(&at, "tier names use lowercase letters, digits, '-' or '_'");
            continue;
        }
        if tier.models.is_empty() {
            issues.push(format!("{at}.models"), "list at least one model");
        }
        let mut seen = HashSet::new();
        for (i, model) in tier.models.iter().enumerate() {
            if model.trim().is_empty() {
                issues.push(format!("{at}.models[{i}]"), "empty model name");
            } else if !seen.insert(model.as_str()) {
                issues.push(
                    format!("{at}.models[{i}]"),
                    format!("'{model}' is listed twice"),
                );
            }
        }
    }
}

fn validate_routes(p: &PolicyProfile, issues: &mut Issues) {
    if p.routes.is_empty() {
        issues.push("routes", "define at least one [[routes]] entry");
    }
    let mut intents = HashSet::new();
    for (i, r) in p.routes.iter().enumerate() {
        let at = format!("routes[{i}]");
        if !INTENTS.contains(&r.intent.as_str()) {
            issues.push(
                format!("{at}.intent"),
                format!(
                    "unknown intent '{}' (known: {})",
                    r.intent,
                    INTENTS.join(", ")
                ),
            );
        } else if !intents.insert(r.intent.as_str()) {
            issues.push(
                format!("{at}.intent"),
                format!("intent '{}' already has a route", r.intent),
            );
        }
        if !PIPELINES.contains(&r.pipeline.as_str()) {
            issues.push(
                format!("{at}.pipeline"),
                format!(
                    "unknown pipeline '{}' (known: {})",
                    r.pipeline,
                    PIPELINES.join(", ")
                ),
            );
        } else if (r.intent == "tts") != (r.pipeline == "tts") {
            issues.push(
                format!("{at}.pipeline"),
                "the tts intent, and only it, uses the tts pipeline",
            );
        }
        check_tier(p, &format!("{at}.tier"), &r.tier, issues);
        if r.slo_ms == 0 {
            issues.push(format!("{at}.slo_ms"), "must be greater than 0");
        }
        match (r.max_prompt_tokens, &r.overflow_tier) {
            (Some(0), _) => issues.push(format!("{at}.max_prompt_tokens"), "must be at least 1"),
            (Some(_), None) => issues.push(
                format!("{at}.overflow_tier"),
                "required with max_prompt_tokens",
            ),
            (None, Some(_)) => issues.push(
                format!("{at}.max_prompt_tokens"),
                "required with overflow_tier",
            ),
            _ => {}
        }
        if let Some(overflow) = &r.overflow_tier {
            let key = format!("{at}.overflow_tier");
            if overflow == &r.tier {
                issues.push(key, "is the route's own tier");
            } else {
                check_tier(p, &key, overflow, issues);
            }
        }
    }
}

fn check_tier(p: &PolicyProfile, key: &str, tier: &str, issues: &mut Issues) {
    if !p.tiers.contains_key(tier) {
        let known: Vec<&str> = p.tiers.keys().map(String::as_str).collect();
        issues.push(
            key,
            format!("unknown tier '{tier}' (tiers: {})", known.join(", ")),
        );
    }
}
