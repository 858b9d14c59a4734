//! Switchyard router: decides which pipeline, model, engine and device serve each request, and
//! records why.
//!
//! Three stages, pure logic over (request, telemetry snapshot, profile), never blocking on I/O:
//!
//! 1. [`stage1`]: heuristics (modalities sniffed from the bytes, size, code, language, hints),
//!    with early exits for obvious requests;
//! 2. [`stage2`]: the intent classifier (tier A n-grams, tier B embeddings when A is unsure);
//! 3. [`stage3`]: the hardware policy (feasibility against live telemetry and the profiles,
//!    then scoring or Thompson sampling).
//!
//! [`Router::decide`] runs them and returns a [`RouteDecision`] whose trace lists each stage's
//! outcome, reasons and duration in nanoseconds. The router knows nothing of engines' internals:
//! the gateway describes the models it can serve as [`ModelView`]s.

pub mod decide;
pub mod decision;
pub mod profile_view;
pub mod request;
pub mod stage1;
pub mod stage2;
pub mod stage3;

pub use decide::{BoxView, RouteError, Router, RouterConfig};
pub use decision::{RouteDecision, StageTrace, Step};
pub use request::{Claimed, Endpoint, Hints, Part, RouteRequest};
pub use stage2::{Classifiers, TierBSetup};
pub use stage3::inputs::ModelView;

/// The model name that asks the router to choose.
pub const AUTO_MODEL: &str = "auto";
