//! Whether the broker serves: the verdict of its health checks, as a small state machine, and
//! the gate that keeps registrations and the goodbye apart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::HealthCheck;
use crate::poison::lock;

/// What the checks have said so far.
#[derive(Debug, Default)]
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

/// Whether the broker serves, and the gate that keeps registrations and the goodbye apart.
pub(crate) struct Liveness {
    /// A copy of the verdict's `up`, read without a lock on every path that registers.
    up: AtomicBool,
    /// Held shared by every registration and exclusively while unregistering, so that no
    /// registration that started before the broker went down lands after the goodbye.
    pub(crate) gate: tokio::sync::RwLock<()>,
    verdicts: Mutex<Verdicts>,
}

impl Liveness {
    /// Starts down (nothing is registered before the first good check) unless checks are off.
    pub(crate) fn new(check: HealthCheck) -> Self {
        let up = check == HealthCheck::None;
        Liveness {
            up: AtomicBool::new(up),
            gate: tokio::sync::RwLock::new(()),
            verdicts: Mutex::new(Verdicts::new(up)),
        }
    }

    /// True while the broker may be advertised.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Records a check's outcome (`Err`: why it failed) and says what it changes.
    pub(crate) fn record(&self, outcome: Result<(), &str>, threshold: u32) -> Step {
        let mut v = lock(&self.verdicts);
        let now = Instant::now();
        let step = match outcome {
            Ok(()) => v.passed(now),
            Err(why) => v.failed(why, threshold, now),
        };
        self.up.store(v.up, Ordering::SeqCst);
        step
    }

    /// Leave to register: a shared hold on the gate, given only while the broker serves and the
    /// daemon is not stopping (checked once the gate is held, so no goodbye can slip between).
    pub(crate) async fn may_register(
        &self,
        stopping: &tokio_util::sync::CancellationToken,
    ) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        let held = self.gate.read().await;
        (self.is_up() && !stopping.is_cancelled()).then_some(held)
    }

    /// Why the broker is not advertised, when it is not.
    pub(crate) fn down_reason(&self, addr: &str) -> Option<String> {
        lock(&self.verdicts).down_reason(addr, Instant::now())
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
        let l = Liveness::new(HealthCheck::None);
        assert!(l.is_up());
        assert!(!Liveness::new(HealthCheck::Remoting).is_up());
        assert_eq!(l.record(Err("x"), 1), Step::WentDown);
        assert!(!l.is_up());
    }
}
