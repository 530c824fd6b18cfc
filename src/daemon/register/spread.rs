//! When the next round is due: `register.interval` spread within ±10 %, so that a fleet started
//! together (a rollout, a host's reboot, a NameServer's restart that every registrar reconnects
//! to at once) drifts apart instead of registering in lockstep. Java brokers have no spread.
//! Each draw is from the round state's own generator: a seed gives the same waits every time,
//! which is what the paused-clock tests rely on.

use std::time::Duration;

/// The spread either side of the interval, in percent.
pub(crate) const SPREAD_PERCENT: u32 = 10;

/// The generator of the waits between rounds.
pub(crate) struct Spread(fastrand::Rng);

impl Spread {
    /// Waits drawn from `seed`.
    pub(crate) fn new(seed: u64) -> Spread {
        Spread(fastrand::Rng::with_seed(seed))
    }

    /// The wait before the next round: `interval` × a uniform draw in [0.9, 1.1], to the
    /// millisecond.
    pub(crate) fn next(&mut self, interval: Duration) -> Duration {
        let ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX / 2);
        let width = ms * u64::from(SPREAD_PERCENT) / 100;
        let low = ms - width;
        Duration::from_millis(self.0.u64(low..=ms + width))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_secs(30);

    #[test]
    fn every_wait_is_within_ten_percent_of_the_interval_and_they_vary() {
        let mut s = Spread::new(1);
        let waits: Vec<Duration> = (0..10_000).map(|_| s.next(INTERVAL)).collect();
        let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*min >= Duration::from_secs(27) && *max <= Duration::from_secs(33));
        // Uniform over the 6 s: the draws reach both ends and average the interval.
        assert!(*min < Duration::from_millis(27_100) && *max > Duration::from_millis(32_900));
        let mean = waits.iter().sum::<Duration>() / 10_000;
        assert!(mean.abs_diff(INTERVAL) < Duration::from_millis(100), "{mean:?}");
    }

    #[test]
    fn a_seed_gives_the_same_waits_and_another_seed_others() {
        let draw = |seed| {
            let mut s = Spread::new(seed);
            (0..5).map(|_| s.next(INTERVAL)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn a_fleet_started_together_is_spread_over_the_interval_after_a_few_rounds() {
        // 50 registrars starting in the same millisecond: after 20 rounds each has drifted by
        // the sum of its draws, and their rounds no longer fall together.
        let mut phases: Vec<u64> = (0..50u64)
            .map(|seed| {
                let mut s = Spread::new(seed);
                let at: Duration = (0..20).map(|_| s.next(INTERVAL)).sum();
                u64::try_from(at.as_millis()).unwrap() % 30_000
            })
            .collect();
        phases.sort_unstable();
        phases.dedup_by(|a, b| a.abs_diff(*b) < 100);
        assert!(phases.len() >= 40, "{} distinct phases of 50", phases.len());
    }

    #[test]
    fn the_shortest_and_longest_intervals_stay_in_range() {
        let mut s = Spread::new(3);
        for _ in 0..1000 {
            let w = s.next(Duration::from_secs(10));
            assert!((Duration::from_secs(9)..=Duration::from_secs(11)).contains(&w));
            let w = s.next(Duration::from_secs(60));
            assert!((Duration::from_secs(54)..=Duration::from_secs(66)).contains(&w));
        }
    }
}
