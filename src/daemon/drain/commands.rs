//! What the HTTP listener asks of the register task, and the answers.

use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

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
    /// End the planned drain in force (a fault drain holds on).
    Cancel {
        /// Who asked.
        who: String,
        /// What was cancelled, and what holds on.
        reply: oneshot::Sender<Cancelled>,
    },
}

/// A cancel's answer.
#[derive(Debug)]
pub(crate) struct Cancelled {
    /// Since when the planned drain ended now was held (None: there was none).
    pub(crate) since: Option<SystemTime>,
    /// The faults whose drain holds on (a cancel does not end them).
    pub(crate) faults: std::collections::BTreeSet<crate::daemon::fault::FaultKind>,
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
