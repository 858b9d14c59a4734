//! Switchyard telemetry collectors and the background sampler.
