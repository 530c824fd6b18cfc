//! The values the daemon's tasks publish for each other (besides the configuration, the
//! verdict and the identity): what every NameServer is told, and each NameServer's status.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
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
    /// Set while draining (since when): the table is read-only, every registration of it is
    /// followed by WIPE_WRITE_PERM_OF_BROKER, heartbeats go every [`DRAIN_BEAT`], and a
    /// NameServer that lost this version asks for a re-assertion at once.
    pub(crate) drain: Option<std::time::SystemTime>,
}

/// The heartbeat period while draining: a broker that registers itself can make its route
/// writable for at most one of these and a round trip.
pub(crate) const DRAIN_BEAT: Duration = Duration::from_millis(200);

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

/// What a NameServer's task tells the rest of the daemon (readiness).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// The last time it held the broker.
    pub(crate) last_ok: Option<Instant>,
}

/// Every listed NameServer's published status, for readiness.
#[derive(Clone, Default)]
pub(crate) struct Members(pub(crate) Arc<Vec<watch::Receiver<Status>>>);

impl Members {
    /// True if any NameServer held the broker within `window`.
    pub(crate) fn any_ok_within(&self, window: Duration) -> bool {
        self.0.iter().any(|s| {
            s.borrow()
                .last_ok
                .is_some_and(|t| t.elapsed() <= window)
        })
    }
}

/// What the HTTP listener asks of the register task.
pub(crate) enum DrainCmd {
    /// Start a drain (or join the one in force).
    Start {
        /// Who asked, for the log and /readyz.
        who: String,
        /// How long the request waits once every NameServer took it (for the log).
        wait: Duration,
        /// Started, or why not.
        reply: oneshot::Sender<Result<Started, Refused>>,
    },
    /// End the drain in force; the reply says since when it was held (None: there was none).
    Cancel {
        /// Who asked.
        who: String,
        /// Since when the drain ended now was held.
        reply: oneshot::Sender<Option<SystemTime>>,
    },
}

/// A drain in force after a start request.
#[derive(Debug)]
pub(crate) struct Started {
    /// Since when.
    pub(crate) since: SystemTime,
    /// The request joined a drain already in force.
    pub(crate) joined: bool,
    /// NameServers that did not take the read-only registration or the wipe, with why.
    pub(crate) refused: Vec<String>,
}

/// Why a drain was not started (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// The broker does not serve.
    #[error("the broker is not serving: nothing to drain")]
    BrokerDown,
    /// No identity yet.
    #[error("the broker has not said who it is yet: it cannot be drained now")]
    NoIdentity,
    /// Not a master: 205 wipes by broker name, so a slave's sidecar would wipe its master.
    #[error("this broker is id {0}, not a master: only a master drains (WIPE_WRITE_PERM_OF_BROKER goes by broker name and would wipe the master too)")]
    NotMaster(u64),
    /// The broker splits every registration (Rust `enableSplitRegistration`): its data version
    /// advances at every one, so the read-only version would be undone every period.
    #[error("the broker splits every registration (enableSplitRegistration=true): it advances its data version at each one, so a drain cannot hold")]
    SplitRegistration,
    /// No NameServer is listed.
    #[error("no NameServer is listed yet: it cannot be drained now")]
    NoNamesrv,
}

impl Refused {
    /// No producer can be writing to this broker through its routes (a slave: it takes no
    /// writes; a broker down): stopping it undrained loses nothing. A serving master that cannot
    /// be drained (no identity or no NameServer yet, just after the sidecar started; a broker
    /// that splits its registrations) is a drain that was due and did not happen: not this.
    pub(crate) fn nothing_to_drain(&self) -> bool {
        matches!(self, Refused::NotMaster(_) | Refused::BrokerDown)
    }
}
