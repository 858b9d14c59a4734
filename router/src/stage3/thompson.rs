//! Learned mode: Thompson sampling over feasible candidates, reward = SLO met. Each candidate
//! has a Beta(successes + 1, failures + 1) belief; the one with the highest draw wins.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Beta, Distribution};

/// Beliefs about how often each candidate meets its SLO.
#[derive(Debug, Clone)]
pub struct Bandit {
    arms: HashMap<String, (u64, u64)>,
    rng: StdRng,
}

impl Bandit {
    /// A bandit with a fixed seed (reproducible simulations).
    pub fn seeded(seed: u64) -> Self {
        Bandit {
            arms: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Picks one of `candidates` (non-empty) by Thompson sampling; `None` when empty.
    pub fn choose<'a>(&mut self, candidates: &[&'a str]) -> Option<&'a str> {
        let mut best: Option<(&str, f64)> = None;
        for c in candidates {
            let (wins, losses) = self.arms.get(*c).copied().unwrap_or((0, 0));
            let draw = Beta::new(wins as f64 + 1.0, losses as f64 + 1.0)
                .map(|b| b.sample(&mut self.rng))
                .unwrap_or(0.5);
            if best.is_none_or(|(_, d)| draw > d) {
                best = Some((c, draw));
            }
        }
        best.map(|(c, _)| c)
    }

    /// Records whether a run met its SLO.
    pub fn reward(&mut self, candidate: &str, slo_met: bool) {
        let arm = self.arms.entry(candidate.to_owned()).or_insert((0, 0));
        if slo_met {
            arm.0 += 1;
        } else {
            arm.1 += 1;
        }
    }

    /// (successes, failures) of a candidate.
    pub fn record(&self, candidate: &str) -> (u64, u64) {
        self.arms.get(candidate).copied().unwrap_or((0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_candidate_that_meets_the_slo_more_often_wins_most_traffic() {
        let mut bandit = Bandit::seeded(7);
        let mut world = StdRng::seed_from_u64(11);
        let p_meet = |c: &str| if c == "good" { 0.9 } else { 0.5 };
        let mut good_picks_late = 0;
        for i in 0..400 {
            let c = bandit.choose(&["good", "meh"]).unwrap();
            let met = rand::Rng::random_bool(&mut world, p_meet(c));
            bandit.reward(c, met);
            if i >= 200 && c == "good" {
                good_picks_late += 1;
            }
        }
        assert!(
            good_picks_late >= 170,
            "good won only {good_picks_late}/200 of the late picks"
        );
    }

    #[test]
    fn empty_candidates() {
        assert_eq!(Bandit::seeded(1).choose(&[]), None);
    }
}
