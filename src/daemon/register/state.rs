//! The round state the register task owns, and the drain in force.

use tokio::time::Instant;

use std::sync::Arc;

use super::spread::Spread;
use crate::daemon::drain::Drain;
use crate::daemon::identity::Current;
use crate::daemon::publisher::RegisterOut;
use crate::daemon::topics::TopicsAsk;

/// The round state the register task owns, and what it publishes.
pub(crate) struct Rounds {
    /// The register task's publishers (advert, members, drain, master).
    pub(crate) out: Arc<RegisterOut>,
    /// Its asks of the topics task (the table each round registers).
    pub(crate) topics: Arc<TopicsAsk>,
    /// Last full (forced) round; `None` makes the next round a full one.
    pub(crate) last_full: Option<Instant>,
    /// The identity last advertised.
    pub(crate) advertised: Option<Current>,
    /// The broker served at the last look.
    pub(crate) up: bool,
    /// The drain in force.
    pub(crate) drain: Option<Drain>,
    /// The waits between rounds.
    pub(crate) spread: Spread,
}

impl Rounds {
    /// The state at the task's start: nothing advertised yet; the waits between rounds drawn
    /// from the register task's seed.
    pub(crate) fn new(out: Arc<RegisterOut>, topics: Arc<TopicsAsk>, up: bool) -> Rounds {
        let seed = out.round_seed;
        Rounds {
            out,
            topics,
            last_full: None,
            advertised: None,
            up,
            drain: None,
            spread: Spread::new(seed),
        }
    }
}

