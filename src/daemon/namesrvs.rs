//! What the daemon knows of each NameServer, in one record per address: registration, failure
//! and heartbeat state live together so that a NameServer leaving the list is forgotten by one
//! call, series and connection included.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::heartbeat::BeatState;
use crate::broker::{BrokerIdentity, SentAs};
use crate::client::RemotingClient;
use crate::metrics::Metrics;
use crate::poison::lock;

/// One NameServer's state.
#[derive(Default)]
pub(crate) struct Record {
    /// The last time it held the broker (a registration or a heartbeat said so).
    pub(crate) last_ok: Option<Instant>,
    /// Set while its registrations fail, for the log's once-then-reminders rule.
    pub(crate) failing: Option<Failing>,
    /// How the last registration went out (logged when it changes).
    pub(crate) sent_as: Option<SentAs>,
    /// The identity it was last registered with: the one its goodbye names.
    pub(crate) registered_as: Option<BrokerIdentity>,
    /// Its heartbeat state.
    pub(crate) beat: BeatState,
}

/// A NameServer that keeps failing: since when, and when the log last said so.
pub(crate) struct Failing {
    /// When the failures started.
    pub(crate) since: Instant,
    /// When the log last said so.
    pub(crate) reminded: Instant,
    /// The last failure was "not there" (refused, reset): a dropped connection is worth an
    /// immediate retry. Otherwise (it took the connection but not the request) the next round
    /// tries again: retrying at once would make a stalled peer a retry loop.
    pub(crate) retry_soon: bool,
}

/// Every NameServer's record, with the handles needed to forget one entirely.
pub(crate) struct Namesrvs {
    records: Mutex<HashMap<String, Record>>,
    metrics: Arc<Metrics>,
    client: RemotingClient,
}

impl Namesrvs {
    /// An empty table whose `forget` also drops `metrics` series and `client` state.
    pub(crate) fn new(metrics: Arc<Metrics>, client: RemotingClient) -> Self {
        Namesrvs {
            records: Mutex::default(),
            metrics,
            client,
        }
    }

    /// The records, locked (never across an await).
    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        lock(&self.records)
    }

    /// Runs `f` on `addr`'s record, creating it when missing.
    pub(crate) fn with<R>(&self, addr: &str, f: impl FnOnce(&mut Record) -> R) -> R {
        let mut records = self.lock();
        match records.get_mut(addr) {
            Some(r) => f(r),
            None => f(records.entry(addr.to_string()).or_default()),
        }
    }

    /// The identities to name in each NameServer's goodbye.
    pub(crate) fn registered_as(&self) -> HashMap<String, BrokerIdentity> {
        self.lock()
            .iter()
            .filter_map(|(a, r)| r.registered_as.clone().map(|id| (a.clone(), id)))
            .collect()
    }

    /// True if any NameServer held the broker within `window`.
    pub(crate) fn any_ok_within(&self, window: std::time::Duration) -> bool {
        self.lock()
            .values()
            .any(|r| r.last_ok.is_some_and(|t| t.elapsed() <= window))
    }

    /// The broker was withdrawn everywhere (it is down): no NameServer holds it now.
    pub(crate) fn none_hold_it(&self, addrs: &[String]) {
        for r in self.lock().values_mut() {
            r.last_ok = None;
        }
        for a in addrs {
            self.metrics.namesrv.set_registered(a, false);
        }
    }

    /// A NameServer that left the list: nothing of it stays (record, series, connection).
    pub(crate) fn forget(&self, addr: &str) {
        self.lock().remove(addr);
        self.metrics.namesrv.forget(addr);
        self.client.forget(addr);
    }
}
