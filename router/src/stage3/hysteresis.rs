//! Thermal state with hysteresis: a device becomes `Hot` when its temperature reaches the
//! throttle limit and becomes `Cool` again only below the limit minus the band, so routes do not
//! flap around the limit.

use serde::Serialize;

/// Thermal state of a device as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ThermalState {
    /// Below the limit (or back below limit − band).
    #[default]
    Cool,
    /// At or above the throttle limit, and not yet below limit − band.
    Hot,
    /// At or above the critical limit.
    Critical,
}

/// The hysteresis latch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ThermalLatch {
    state: ThermalState,
}

impl ThermalLatch {
    /// Feeds a temperature (°C; `None` = no sensor, which keeps the current state) and returns
    /// the new state.
    pub fn update(
        &mut self,
        celsius: Option<f32>,
        throttle: f32,
        critical: f32,
        band: f32,
    ) -> ThermalState {
        let Some(t) = celsius else {
            return self.state;
        };
        self.state = if t >= critical {
            ThermalState::Critical
        } else if t >= throttle {
            ThermalState::Hot
        } else if self.state != ThermalState::Cool && t >= throttle - band {
            // Between limit − band and the limit: stay hot until it has really cooled.
            ThermalState::Hot
        } else {
            ThermalState::Cool
        };
        self.state
    }

    /// The current state.
    pub fn state(&self) -> ThermalState {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latches_until_below_the_band() {
        let mut l = ThermalLatch::default();
        let step = |l: &mut ThermalLatch, t| l.update(Some(t), 85.0, 95.0, 5.0);
        assert_eq!(step(&mut l, 80.0), ThermalState::Cool);
        assert_eq!(step(&mut l, 84.9), ThermalState::Cool);
        assert_eq!(step(&mut l, 85.0), ThermalState::Hot);
        assert_eq!(
            step(&mut l, 82.0),
            ThermalState::Hot,
            "inside the band stays hot"
        );
        assert_eq!(step(&mut l, 96.0), ThermalState::Critical);
        assert_eq!(step(&mut l, 81.0), ThermalState::Hot);
        assert_eq!(step(&mut l, 79.9), ThermalState::Cool);
        assert_eq!(
            step(&mut l, 83.0),
            ThermalState::Cool,
            "rising inside the band stays cool"
        );
        assert_eq!(
            l.update(None, 85.0, 95.0, 5.0),
            ThermalState::Cool,
            "no sensor keeps the state"
        );
    }
}
