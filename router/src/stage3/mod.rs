//! Stage 3: the hardware policy. Candidates come from the policy profile; feasibility filters
//! drop what cannot run now; scoring ranks the rest.

pub mod ewma;
mod feasibility;
pub mod hysteresis;
pub mod inputs;
pub mod policy;
pub mod thompson;
