//! Switchyard gateway: the `switchyard` binary's library.
//!
//! - [`api`] — the OpenAI-compatible HTTP API (axum), `/health` and `/metrics`;
//! - [`config`] — `switchyard.toml`;
//! - [`models`] — the models directory (fetch pinned samples, add local files, scan);
//! - [`pipeline`] — the trace of what a multi-step request ran (steps, engines, times, copies);
//! - [`state`] — shared state and lazy model loading;
//! - [`routing`] — the router wired in: profiles (and their hot reload), telemetry, model views;
//! - [`services`] — the non-LLM models (embeddings, OCR, voice activity, speech), loaded on use;
//! - [`server`] — serving with graceful shutdown.

pub mod api;
pub mod config;
pub mod error;
pub mod metrics;
pub mod metrics_router;
pub mod models;
pub mod pipeline;
pub mod reload;
pub mod routing;
pub mod server;
pub mod services;
pub mod state;
pub mod tier_b;

pub use api::app;
pub use config::Config;
pub use state::AppState;
