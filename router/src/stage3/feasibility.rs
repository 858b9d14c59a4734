//! Feasibility filters: security level, engine availability, context length, memory budget
//! (RAM or VRAM, from the device profile and the live snapshot), and thermal state.

use switchyard_profiles::{DeviceProfile, PolicyProfile};
use switchyard_telemetry::Snapshot;

use super::hysteresis::ThermalState;
use super::inputs::{is_local_cpu, uses_vram, ModelView};
use crate::stage1::SecurityLevel;

const MIB: u64 = 1024 * 1024;

/// Why a candidate cannot run now (`None` = feasible).
pub(crate) fn security(level: SecurityLevel, engine: &str) -> Option<String> {
    (level == SecurityLevel::Airgap && !is_local_cpu(engine))
        .then(|| format!("security airgap: {engine} is not a local CPU engine"))
}

/// The model's own context limit against prompt + generation.
pub(crate) fn context(model: &ModelView, needed: u32) -> Option<String> {
    (model.context_per_request > 0 && needed > model.context_per_request).then(|| {
        format!(
            "needs {needed} context tokens (prompt + max_tokens); {} has {} per request",
            model.id, model.context_per_request
        )
    })
}

/// Memory bytes the model needs beyond what is already spent, and the bytes free for it.
pub(crate) struct MemoryCheck {
    /// Bytes the candidate needs now.
    pub need: u64,
    /// Bytes available to it.
    pub free: u64,
    /// `ram` or `vram`.
    pub pool: &'static str,
}

/// Whether the model (weights + this request's KV cache) fits where `engine` keeps it.
///
/// RAM (CPU engines, unified memory): the device profile's budget minus the weights of other
/// loaded models, and the snapshot's available memory minus the policy's headroom, whichever is
/// smaller. VRAM: the profile's VRAM budget and the largest GPU's free VRAM minus headroom.
/// Loaded models have their weights in place already, so only the request's KV counts.
pub(crate) fn memory(
    model: &ModelView,
    engine: &str,
    context: u32,
    all: &[ModelView],
    device: &DeviceProfile,
    policy: &PolicyProfile,
    snapshot: &Snapshot,
) -> MemoryCheck {
    let kv = model.kv_bytes_per_token.saturating_mul(u64::from(context));
    let need = if model.loaded {
        kv
    } else {
        model.bytes_for_context(context)
    };
    if uses_vram(engine, device.hardware.unified_memory) {
        let budget = device
            .memory
            .vram_budget_mib
            .or(device.hardware.vram_mib)
            .map(|m| m * MIB)
            .unwrap_or(u64::MAX);
        let live = snapshot
            .largest_vram_free_bytes()
            .map(|f| f.saturating_sub(policy.memory.vram_headroom_mib * MIB))
            .unwrap_or(u64::MAX);
        return MemoryCheck {
            need,
            free: budget.min(live),
            pool: "vram",
        };
    }
    let others: u64 = all
        .iter()
        .filter(|m| m.loaded && m.id != model.id)
        .map(|m| m.weights_bytes)
        .sum();
    let budget = (device.memory.budget_mib * MIB).saturating_sub(others);
    let live = snapshot
        .memory
        .as_ref()
        .map(|m| {
            m.available_bytes
                .saturating_sub(policy.memory.ram_headroom_mib * MIB)
        })
        .unwrap_or(u64::MAX);
    MemoryCheck {
        need,
        free: budget.min(live),
        pool: "ram",
    }
}

impl MemoryCheck {
    /// The refusal, when it does not fit.
    pub(crate) fn refusal(&self, model: &str) -> Option<String> {
        (self.need > self.free).then(|| {
            format!(
                "{model} needs {} MiB of {} but {} MiB are free for it",
                self.need.div_ceil(MIB),
                self.pool,
                self.free / MIB
            )
        })
    }
}

/// Thermal refusal: when hot, only the fallback tier runs; when critical, only the fallback
/// tier on CPU engines.
pub(crate) fn thermal(
    state: ThermalState,
    tier: Option<&str>,
    engine: &str,
    fallback_tier: &str,
) -> Option<String> {
    match state {
        ThermalState::Cool => None,
        ThermalState::Hot => (tier != Some(fallback_tier))
            .then(|| format!("thermal: device hot, only the fallback tier '{fallback_tier}' runs")),
        ThermalState::Critical => {
            (tier != Some(fallback_tier) || !is_local_cpu(engine)).then(|| {
                format!(
                    "thermal: device critical, only the fallback tier '{fallback_tier}' on CPU runs"
                )
            })
        }
    }
}
