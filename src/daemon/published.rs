//! The values the daemon's tasks publish for each other (besides the configuration, the
//! verdict, the identity and the drain): what every NameServer is told, and each NameServer's
//! status.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::broker::body::TopicConfigWrapper;
use crate::broker::{BrokerIdentity, RegisterOptions};

/// What every NameServer is told: who the broker is, its topic table (already restricted by
/// its permission) with the data version, and the options registrations go out with. Each
/// NameServer's task re-applies the one published now whenever it registers on its own
/// (joining the list, a reconnect, a heartbeat that found the broker lost).
#[derive(Debug)]
pub(crate) struct Advert {
    /// Who the broker is.
    pub(crate) id: BrokerIdentity,
    /// The table, with its data version.
    pub(crate) table: Arc<TopicConfigWrapper>,
    /// The options (`force` is set per registration).
    pub(crate) opts: RegisterOptions,
    /// Set while draining (since when, why): the table is read-only, every registration of it is
    /// followed by WIPE_WRITE_PERM_OF_BROKER, heartbeats go every [`DRAIN_BEAT`], and a
    /// NameServer that lost this version asks for a re-assertion at once.
    pub(crate) drain: Option<crate::daemon::drain::Draining>,
}

/// The heartbeat period while draining: a broker that registers itself can make its route
/// writable for at most one of these and a round trip.
pub(crate) const DRAIN_BEAT: Duration = Duration::from_millis(200);

/// What the last audit saw, for readiness and `/readyz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouteSeen {
    /// The last audit's outcome (None: none yet).
    pub(crate) outcome: Option<crate::metrics::labels::Audit>,
    /// The broker is routed there (None: not known).
    pub(crate) routed: Option<bool>,
    /// A conflict episode holds.
    pub(crate) conflict: bool,
    /// The last read-back that answered saw the route differ.
    pub(crate) differs: bool,
}

/// What a NameServer's task tells the rest of the daemon (readiness).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// The last time it held the broker.
    pub(crate) last_ok: Option<Instant>,
    /// What its last route read-back saw.
    pub(crate) route: RouteSeen,
}

/// Every listed NameServer's published status, by address, for readiness.
#[derive(Clone, Default)]
pub(crate) struct Members(pub(crate) Arc<Vec<(Arc<str>, watch::Receiver<Status>)>>);

impl Members {
    /// True if any NameServer held the broker within `window` and its last route read-back
    /// did not find the broker missing or under another address.
    pub(crate) fn any_ok_within(&self, window: Duration) -> bool {
        self.0.iter().any(|(_, s)| {
            let s = s.borrow();
            s.last_ok.is_some_and(|t| t.elapsed() <= window) && s.route.routed != Some(false)
        })
    }

    /// The NameServers whose last route read-back saw the route differ.
    pub(crate) fn mismatched(&self) -> Vec<Arc<str>> {
        self.0
            .iter()
            .filter(|(_, s)| s.borrow().route.differs)
            .map(|(a, _)| a.clone())
            .collect()
    }
}

