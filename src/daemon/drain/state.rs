//! The drain's state: the one in force as the register task holds it, and the view it
//! publishes (/readyz, the metrics, a request waiting on it).

use std::time::SystemTime;

use tokio::time::Instant;

use crate::config::Config;

/// A drain in force, as /readyz and the metrics tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draining {
    /// Since when.
    pub(crate) since: std::time::SystemTime,
    /// Who asked.
    pub(crate) who: String,
}

/// The drain as the register task publishes it: the one in force, and why the last one ended
/// (a request still waiting on a drain that ended names the reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DrainView {
    /// The drain in force.
    pub(crate) held: Option<Draining>,
    /// The last drain that ended: since when it was held, and why it ended.
    pub(crate) ended: Option<(std::time::SystemTime, String)>,
}

/// The drain in force, as the register task holds it.
pub(crate) struct Drain {
    /// Since when (wall clock, for the metric and /readyz).
    pub(crate) since: SystemTime,
    /// Since when (monotonic, for `drain.max`).
    pub(crate) started: Instant,
    /// Who asked.
    pub(crate) who: String,
    /// A health check failed since it began: the next passing one means the broker restarted.
    pub(crate) saw_failure: bool,
    /// The checks' connection interruptions when it began: one more, with a passing check,
    /// means the broker restarted faster than a check failed.
    pub(crate) interruptions: u64,
}

impl Drain {
    /// When `drain.max` ends it.
    pub(crate) fn deadline(&self, cfg: &Config) -> Instant {
        self.started + cfg.drain.max
    }
}

