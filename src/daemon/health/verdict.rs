//! Whether the broker serves: the verdict of its health checks, as a small state machine that
//! the health task owns and publishes.

use std::time::Duration;

use tokio::time::Instant;

/// What the checks have said so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Verdicts {
    /// The broker may be advertised.
    up: bool,
    /// At least one check has finished.
    checked: bool,
    /// The broker passed a check at least once.
    ever_up: bool,
    /// When it went down (None while up, and before it was ever up).
    down_since: Option<Instant>,
    /// Consecutive failed checks.
    failures: u32,
    /// Why the last check failed.
    last_error: Option<String>,
    /// Times the checks' connection to the broker closed: a broker restarted faster than a
    /// check interval fails no check, but its connection closes.
    interruptions: u64,
    /// The broker's remark while it refuses the daemon's credentials (NO_PERMISSION).
    auth_refusal: Option<String>,
}

/// What a check's outcome changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing to act on.
    Same,
    /// It serves again (or for the first time): register everywhere. `downtime`: how long it
    /// was down, when it had been up before.
    CameUp {
        /// How long it was down.
        downtime: Option<Duration>,
    },
    /// `failures` consecutive failures: unregister everywhere.
    WentDown,
    /// The first failure of a broker never seen up (worth one WARN).
    NotYetUp,
    /// A failure below the threshold, or another one while down.
    Failed {
        /// Consecutive failures so far.
        failures: u32,
    },
}

impl Verdicts {
    /// Starts down (nothing is registered before the first good check) unless `up`.
    pub(crate) fn new(up: bool) -> Self {
        Verdicts {
            up,
            ..Verdicts::default()
        }
    }

    /// The broker's remark while it refuses the daemon's credentials.
    pub(crate) fn auth_refusal(&self) -> Option<&str> {
        self.auth_refusal.as_deref()
    }

    /// What the last check said of the credentials.
    pub(crate) fn set_auth_refusal(&mut self, remark: Option<String>) {
        self.auth_refusal = remark;
    }

    /// True while the broker may be advertised.
    pub(crate) fn is_up(&self) -> bool {
        self.up
    }

    /// The checks' connection to the broker closed.
    pub(crate) fn interrupted(&mut self) {
        self.interruptions += 1;
    }

    /// How many times the checks' connection to the broker closed so far.
    pub(crate) fn interruptions(&self) -> u64 {
        self.interruptions
    }

    /// Consecutive failed checks so far.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    /// A check passed at `now`.
    pub(crate) fn passed(&mut self, now: Instant) -> Step {
        self.checked = true;
        self.failures = 0;
        self.last_error = None;
        if self.up {
            return Step::Same;
        }
        self.up = true;
        self.ever_up = true;
        Step::CameUp {
            downtime: self
                .down_since
                .take()
                .map(|t| now.saturating_duration_since(t)),
        }
    }

    /// A check failed at `now` for `why`; `threshold` consecutive failures take it down.
    pub(crate) fn failed(&mut self, why: &str, threshold: u32, now: Instant) -> Step {
        self.checked = true;
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(why.to_string());
        if !self.up {
            return if !self.ever_up && self.failures == 1 {
                Step::NotYetUp
            } else {
                Step::Failed {
                    failures: self.failures,
                }
            };
        }
        if self.failures < threshold {
            return Step::Failed {
                failures: self.failures,
            };
        }
        self.up = false;
        self.down_since = Some(now);
        Step::WentDown
    }

    /// Why the broker is not advertised at `now`, when it is not.
    pub(crate) fn down_reason(&self, addr: &str, now: Instant) -> Option<String> {
        if self.up {
            return None;
        }
        let why = self.last_error.as_deref().unwrap_or("no answer");
        Some(match (self.checked, self.down_since) {
            (false, _) => format!("waiting for the first health check of the broker at {addr}"),
            (true, Some(t)) => format!(
                "broker at {addr} is not serving (down for {}s): {why}",
                now.saturating_duration_since(t).as_secs()
            ),
            (true, None) => format!("broker at {addr} is not serving yet: {why}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_checks() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut v = Verdicts::new(false);
        assert_eq!(
            v.down_reason("b:1", t0).as_deref(),
            Some("waiting for the first health check of the broker at b:1")
        );
        // Never up: the first failure is worth a WARN, the next ones are not.
        assert_eq!(v.failed("refused", 3, s(1)), Step::NotYetUp);
        assert_eq!(v.failed("refused", 3, s(2)), Step::Failed { failures: 2 });
        assert_eq!(
            v.down_reason("b:1", s(2)).as_deref(),
            Some("broker at b:1 is not serving yet: refused")
        );
        assert_eq!(v.passed(s(3)), Step::CameUp { downtime: None });
        assert_eq!(v.passed(s(4)), Step::Same);
        assert_eq!(v.down_reason("b:1", s(4)), None);
        // Up: down only after `threshold` consecutive failures; a pass in between resets.
        assert_eq!(v.failed("timeout", 3, s(5)), Step::Failed { failures: 1 });
        assert_eq!(v.passed(s(6)), Step::Same);
        assert_eq!(v.failed("timeout", 3, s(7)), Step::Failed { failures: 1 });
        assert_eq!(v.failed("timeout", 3, s(8)), Step::Failed { failures: 2 });
        assert_eq!(v.failed("timeout", 3, s(9)), Step::WentDown);
        assert_eq!(v.failed("timeout", 3, s(10)), Step::Failed { failures: 4 });
        assert_eq!(
            v.down_reason("b:1", s(19)).as_deref(),
            Some("broker at b:1 is not serving (down for 10s): timeout")
        );
        assert_eq!(
            v.passed(s(20)),
            Step::CameUp {
                downtime: Some(Duration::from_secs(11))
            }
        );
    }

    #[test]
    fn with_checks_off_it_starts_up() {
        let mut v = Verdicts::new(true);
        assert!(v.is_up());
        assert!(!Verdicts::new(false).is_up());
        assert_eq!(v.failed("x", 1, Instant::now()), Step::WentDown);
        assert!(!v.is_up());
    }
}
