//! What registering and unregistering came to, per NameServer and per round.

use std::time::Duration;

use crate::broker::body::KvTable;
use crate::broker::error::ApiError;

/// What a NameServer told a registering broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegisterBrokerResult {
    /// The master's address, for a slave whose master is registered.
    pub master_addr: Option<String>,
    /// The master's HA address.
    pub ha_server_addr: Option<String>,
    /// Order-topic configuration.
    pub kv_table: KvTable,
    /// How the table went out: `Whole`, compressed because it would not fit, or in batches.
    pub sent_as: SentAs,
}

/// How a registration's topic table went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SentAs {
    /// One request, as configured.
    #[default]
    Whole,
    /// Compressed, although not configured, because the plain body would not fit in a frame
    /// and this NameServer is not known to keep split batches.
    AutoCompressed,
    /// Split into this many consecutive requests on the NameServer's connection.
    Batches(usize),
}

/// How one NameServer's registration ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterStatus {
    /// Fully registered; the NameServer's answer.
    Registered(RegisterBrokerResult),
    /// Skipped: the NameServer already holds this data version (it counts as a heartbeat).
    Current,
    /// Sent oneway; no answer awaited.
    Sent,
}

/// One NameServer's outcome.
#[derive(Debug, Clone)]
pub struct NamesrvOutcome<T> {
    /// The NameServer.
    pub addr: String,
    /// What happened there.
    pub result: Result<T, ApiError>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Outcome of a registration round.
#[derive(Debug, Clone)]
pub struct RegisterOutcome {
    /// Every NameServer's outcome, in list order; nothing is swallowed.
    pub per_namesrv: Vec<NamesrvOutcome<RegisterStatus>>,
    /// The result Java's registerBrokerAll returns: the first answer naming a master, else the first answer.
    pub merged: Option<RegisterBrokerResult>,
}

impl RegisterOutcome {
    /// The round's outcomes, with Java's merged answer picked from them.
    pub(crate) fn merge(per_namesrv: Vec<NamesrvOutcome<RegisterStatus>>) -> Self {
        let answers = per_namesrv.iter().filter_map(|o| match &o.result {
            Ok(RegisterStatus::Registered(r)) => Some(r),
            _ => None,
        });
        let merged = answers
            .clone()
            .find(|r| r.master_addr.is_some())
            .or_else(|| answers.clone().next())
            .cloned();
        RegisterOutcome {
            per_namesrv,
            merged,
        }
    }
}

/// Outcome of an unregistration round, per NameServer.
pub type UnregisterOutcome = Vec<NamesrvOutcome<()>>;
