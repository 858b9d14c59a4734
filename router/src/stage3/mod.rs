//! Stage 3: the hardware policy. Candidates come from the policy profile; feasibility filters
//! drop what cannot run now; scoring ranks the rest.

pub mod ewma;
pub mod hysteresis;
pub mod thompson;
