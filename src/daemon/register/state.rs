//! The round state the register task owns, and the drain in force.

use std::time::SystemTime;

use tokio::time::Instant;

use std::sync::Arc;

use crate::config::Config;
use crate::daemon::identity::Current;
use crate::daemon::publisher::RegisterOut;
use crate::daemon::topics::TopicsAsk;

/// The round state the register task owns, and what it publishes.
pub(super) struct Rounds {
    /// The register task's publishers (advert, members, drain, master).
    pub(super) out: Arc<RegisterOut>,
    /// Its asks of the topics task (the table each round registers).
    pub(super) topics: Arc<TopicsAsk>,
    /// Last full (forced) round; `None` makes the next round a full one.
    pub(super) last_full: Option<Instant>,
    /// The identity last advertised.
    pub(super) advertised: Option<Current>,
    /// The broker served at the last look.
    pub(super) up: bool,
    /// The drain in force.
    pub(super) drain: Option<Drain>,
}

impl Rounds {
    /// The state at the task's start: nothing advertised yet.
    pub(super) fn new(out: Arc<RegisterOut>, topics: Arc<TopicsAsk>, up: bool) -> Rounds {
        Rounds {
            out,
            topics,
            last_full: None,
            advertised: None,
            up,
            drain: None,
        }
    }
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

