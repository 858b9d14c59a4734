//! Profile hot reload: on SIGHUP, and when a watched profile file changes, the profile is read
//! and validated again and a new router configuration is swapped in atomically. A bad file keeps
//! the old profile; `/health` and `switchyard_profile_reload_error` show why. Requests in flight
//! finish on the configuration they started with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::routing;
use crate::state::AppState;

/// How a reload went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The new profile is in force.
    Applied {
        /// Device profile name.
        device: String,
        /// Policy profile name.
        policy: String,
    },
    /// The old profile stays; the error says why.
    Kept(String),
}

/// Reads the profile again and swaps it in, or records why not.
pub fn reload(state: &AppState) -> Reloaded {
    let outcome = state
        .config
        .resolve_profile()
        .map_err(|e| e.to_string())
        .and_then(|(profile, _)| {
            let names = (profile.device.name.clone(), profile.policy.name.clone());
            routing::router_config(profile, state.routing.tier_b.clone())
                .map(|config| (config, names))
                .map_err(|e| e.to_string())
        });
    let metrics = &state.router_metrics;
    match outcome {
        Ok((config, (device, policy))) => {
            state.routing.router.swap(config);
            state.routing.profile.set_error(None);
            metrics.reloads.with_label_values(&["ok"]).inc();
            metrics.reload_error.set(0);
            metrics.profile_info.reset();
            metrics
                .profile_info
                .with_label_values(&[device.as_str(), policy.as_str()])
                .set(1);
            tracing::info!(%device, %policy, "profile reloaded");
            Reloaded::Applied { device, policy }
        }
        Err(e) => {
            state.routing.profile.set_error(Some(e.clone()));
            metrics.reloads.with_label_values(&["error"]).inc();
            metrics.reload_error.set(1);
            tracing::error!(error = %e, "profile reload failed; the previous profile stays in force");
            Reloaded::Kept(e)
        }
    }
}

fn stamps(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

/// Watches the profile files (polling their modification times every `every`) and listens for
/// SIGHUP; reloads on either. Runs until the runtime stops.
pub async fn watch(state: Arc<AppState>, every: Duration) {
    let files = state.routing.profile.files.clone();
    let mut seen = stamps(&files);
    let mut tick = tokio::time::interval(every);
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; file changes still reload");
            None
        }
    };
    loop {
        #[cfg(unix)]
        let sighup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let sighup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tick.tick() => {
                let now = stamps(&files);
                if now != seen {
                    seen = now;
                    tracing::info!("profile file changed; reloading");
                    reload(&state);
                }
            }
            _ = sighup => {
                tracing::info!("SIGHUP; reloading the profile");
                seen = stamps(&files);
                reload(&state);
            }
        }
    }
}
