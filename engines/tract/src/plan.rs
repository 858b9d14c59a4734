//! Loading an ONNX file into an optimized tract plan that any thread can run.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use tract_onnx::prelude::*;

use crate::error::TractError;

/// An optimized, immutable tract plan; `run` takes `&self`, so one plan serves many threads.
pub(crate) type Plan = Arc<TypedRunnableModel>;

/// Concrete plans of one model by input shape key, built on first use; the least recently
/// used is evicted once `capacity` are kept. Shared by all threads: the cache lock is held
/// only to look up or insert, never while a plan is built or run, and a thread that wants
/// a plan another thread is building waits for that one instead of building it twice.
#[derive(Debug)]
pub(crate) struct PlanCache<K> {
    inner: Mutex<CacheInner<K>>,
    capacity: usize,
}

/// A cached plan, `None` until its first builder finishes (or after it failed).
type Slot = Arc<Mutex<Option<Plan>>>;

#[derive(Debug)]
struct CacheInner<K> {
    slots: HashMap<K, (Slot, u64)>,
    clock: u64,
}

impl<K: Eq + Hash + Copy> PlanCache<K> {
    /// An empty cache keeping at most `capacity` plans (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(CacheInner {
                slots: HashMap::new(),
                clock: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    /// The plan for `key`, built by `build` if no thread has built it yet. `model` names
    /// the model in the error raised for a poisoned lock.
    pub fn get_or_build(
        &self,
        model: &'static str,
        key: K,
        build: impl FnOnce() -> Result<Plan, TractError>,
    ) -> Result<Plan, TractError> {
        let poisoned = |_| TractError::inference(model, "plan cache lock poisoned");
        let slot = {
            let mut inner = self.inner.lock().map_err(poisoned)?;
            inner.clock += 1;
            let now = inner.clock;
            if let Some((slot, used)) = inner.slots.get_mut(&key) {
                *used = now;
                slot.clone()
            } else {
                if inner.slots.len() >= self.capacity {
                    let oldest = inner
                        .slots
                        .iter()
                        .min_by_key(|(_, (_, used))| *used)
                        .map(|(key, _)| *key);
                    if let Some(oldest) = oldest {
                        inner.slots.remove(&oldest);
                    }
                }
                let slot = Slot::default();
                inner.slots.insert(key, (slot.clone(), now));
                slot
            }
        };
        // Only this key's slot is locked while building; other keys are unaffected. A slot
        // poisoned by a panicking builder still holds `None`, so the next caller rebuilds.
        let mut plan = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(plan) = plan.as_ref() {
            return Ok(plan.clone());
        }
        let built = build()?;
        *plan = Some(built.clone());
        Ok(built)
    }

    /// Number of plans kept (or being built).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.slots.len()).unwrap_or(0)
    }
}

/// Parses `path` into an inference model, ignoring stale output shapes and value infos
/// written by exporters (tract re-infers them).
pub(crate) fn parse(path: &Path) -> Result<InferenceModel, TractError> {
    onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_path(path)
        .map_err(|e| TractError::ModelFile {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })
}

/// Optimizes a typed model and makes it runnable.
pub(crate) fn optimize(path: &Path, model: TypedModel) -> Result<Plan, TractError> {
    model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| plan_error(path, e))
}

/// Wraps a tract error raised while preparing the plan of `path`.
/// A plan for `model` with its first input fixed to the f32 `shape` (tract runs concrete
/// shapes far faster than symbolic ones).
pub(crate) fn concrete(
    path: &Path,
    model: &InferenceModel,
    shape: [usize; 4],
) -> Result<Plan, TractError> {
    let mut model = model.clone();
    model
        .set_input_fact(0, f32::fact(shape).into())
        .map_err(|e| plan_error(path, e))?;
    let typed = model.into_typed().map_err(|e| plan_error(path, e))?;
    optimize(path, typed)
}

pub(crate) fn plan_error(path: &Path, err: impl std::fmt::Display) -> TractError {
    TractError::ModelPlan {
        path: path.to_path_buf(),
        reason: format!("{err:#}"),
    }
}

/// A string property of the model (ONNX `metadata_props` are carried as
/// `onnx.metadata_props.<key>`).
pub(crate) fn metadata(model: &InferenceModel, key: &str) -> Option<String> {
    let tensor = model
        .properties
        .get(&format!("onnx.metadata_props.{key}"))?;
    let view = tensor.try_as_plain_ram().ok()?;
    view.as_slice::<String>().ok()?.first().cloned()
}

/// A zeroed f32 tract tensor of `shape`, to be filled in place by `fill`.
pub(crate) fn f32_input(
    shape: &[usize],
    fill: impl FnOnce(&mut [f32]),
) -> Result<Tensor, TractError> {
    let mut tensor =
        Tensor::zero::<f32>(shape).map_err(|e| TractError::inference("input allocation", e))?;
    {
        let mut view = tensor
            .try_as_plain_ram_mut()
            .map_err(|e| TractError::inference("input allocation", e))?;
        let slice = view
            .as_slice_mut::<f32>()
            .map_err(|e| TractError::inference("input allocation", e))?;
        fill(slice);
    }
    Ok(tensor)
}

/// The f32 elements of a model output.
pub(crate) fn f32_output<'a>(
    model: &'static str,
    value: &'a TValue,
) -> Result<&'a [f32], TractError> {
    value
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| TractError::inference(model, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_plan() -> Plan {
        let mut model = TypedModel::default();
        let source = model
            .add_source("x", f32::fact([1]))
            .unwrap_or_else(|e| panic!("{e}"));
        model
            .select_output_outlets(&[source])
            .unwrap_or_else(|e| panic!("{e}"));
        model.into_runnable().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn builds_each_key_once_and_evicts_the_least_recently_used() {
        let cache = PlanCache::new(2);
        let builds = std::sync::atomic::AtomicUsize::new(0);
        let get = |key: u32| {
            cache
                .get_or_build("test", key, || {
                    builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(identity_plan())
                })
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let first = get(1);
        assert!(Arc::ptr_eq(&first, &get(1)));
        get(2);
        get(1); // 2 is now the least recently used
        get(3);
        assert_eq!(cache.len(), 2);
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(Arc::ptr_eq(&first, &get(1)));
        get(2);
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn a_failed_build_is_retried() {
        let cache = PlanCache::new(4);
        let failed = cache.get_or_build("test", 7u8, || Err(TractError::inference("test", "no")));
        assert!(failed.is_err());
        assert!(cache
            .get_or_build("test", 7u8, || Ok(identity_plan()))
            .is_ok());
    }

    #[test]
    fn concurrent_callers_share_one_build() {
        let cache = PlanCache::new(4);
        let builds = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    cache
                        .get_or_build("test", 0u8, || {
                            builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            Ok(identity_plan())
                        })
                        .unwrap_or_else(|e| panic!("{e}"))
                });
            }
        });
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
