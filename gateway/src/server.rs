//! Serving: bind, preload, serve until SIGTERM/SIGINT, then drain within the grace period.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::state::AppState;

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves `state` on `listener` until `signal` resolves, then stops accepting, lets in-flight
/// requests finish for up to `grace`, and returns.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    for id in state.config.preload.clone() {
        state
            .preload(&id)
            .await
            .with_context(|| format!("preloading model '{id}'"))?;
    }
    let grace = Duration::from_secs(state.config.shutdown.grace_seconds);
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_state = Arc::clone(&state);
    let app = crate::api::app(Arc::clone(&state));
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        signal.await;
        info!("shutdown requested: no new connections; finishing in-flight requests");
        drain_state.start_draining();
        let _ = signalled_tx.send(());
    });
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result.context("server error")?,
        () = deadline => warn!(grace_seconds = grace.as_secs(), "grace period over; exiting with requests still in flight"),
    }
    state.shutdown_models();
    info!("stopped");
    Ok(())
}
