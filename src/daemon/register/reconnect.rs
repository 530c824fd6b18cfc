//! Re-registration with one NameServer: after its connection dropped (as soon as it accepts
//! one again), and when a heartbeat found it without the broker.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::record::{record, unreachable, Registering};
use super::round::{options, restricted};
use crate::broker::RegisterOutcome;
use crate::client::{ChannelEvent, ChannelEventKind, ChannelEventListener};
use crate::config::Config;
use crate::daemon::identity::Current;
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::poison::lock;

/// NameServers to register with again as soon as they accept a connection: filled by the
/// client's close events and by failed registrations, drained by the reconnect task (a queue
/// that outlives a restart of that task).
#[derive(Default)]
pub(crate) struct Retries {
    queue: Mutex<VecDeque<String>>,
    added: Notify,
}

impl Retries {
    /// Asks for a re-registration with `addr`.
    pub(crate) fn push(&self, addr: &str) {
        lock(&self.queue).push_back(addr.to_string());
        self.added.notify_one();
    }

    /// The next address asked for, waiting for one.
    async fn next(&self) -> String {
        loop {
            if let Some(a) = lock(&self.queue).pop_front() {
                return a;
            }
            self.added.notified().await;
        }
    }
}

/// Turns lost connections into re-registrations.
pub(crate) struct OnClose(pub(crate) Arc<Retries>);

impl ChannelEventListener for OnClose {
    fn on_event(&self, event: ChannelEvent) {
        if event.kind == ChannelEventKind::Close {
            self.0.push(&event.remote);
        }
    }
}

const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_millis(500);

/// When a NameServer connection drops, registers with it again as soon as it accepts one:
/// a restarted NameServer must not wait a whole interval to see the broker.
pub(crate) async fn reconnect_loop(sh: Arc<Shared>) -> TaskResult {
    let mut retrying: JoinSet<String> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            Some(done) = retrying.join_next(), if !retrying.is_empty() => {
                if let Ok(addr) = done {
                    busy.remove(&addr);
                }
            }
            addr = sh.retries.next() => {
                if sh.token.is_cancelled() || !sh.client.name_server_list().contains(&addr) {
                    continue;
                }
                let stalled = sh.namesrvs.with(&addr, |r| r.failing.as_ref().is_some_and(|f| !f.retry_soon));
                if stalled {
                    tracing::debug!(namesrv = %addr, "connection closed after a timeout: the next round retries");
                    continue;
                }
                if busy.insert(addr.clone()) {
                    sh.metrics.namesrv.set_registered(&addr, false);
                    tracing::debug!(namesrv = %addr, "NameServer unreachable, registering as soon as it is back");
                    retrying.spawn(reregister(sh.clone(), addr));
                }
            }
        }
    }
}

async fn reregister(sh: Arc<Shared>, addr: String) -> String {
    let mut backoff = RECONNECT_FIRST;
    loop {
        tokio::select! {
            _ = sh.token.cancelled() => return addr,
            _ = tokio::time::sleep(backoff) => {}
        }
        if !sh.client.name_server_list().contains(&addr) || !sh.liveness.is_up() {
            // A broker that went down is registered again by a full round when it is back.
            return addr;
        }
        let cfg = sh.config();
        let Some(_shared) = sh.liveness.may_register(&sh.token).await else {
            return addr;
        };
        let Some(cur) = sh.current() else {
            return addr;
        };
        let _registering = Registering::new(&sh, std::slice::from_ref(&addr));
        let out = register_with(&sh, &addr, &cfg, &cur).await;
        // Only "not there" is retried at once; a NameServer that takes the connection but
        // not the request (timeouts, a full queue) waits for the next round.
        let retry = out
            .per_namesrv
            .iter()
            .any(|o| matches!(&o.result, Err(e) if unreachable(e)));
        if !retry {
            return addr;
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// A full registration with one NameServer whose heartbeat found it without the broker (or
/// with a registration that did not complete), through the liveness gate.
pub(crate) async fn reregister_lost(sh: Arc<Shared>, addr: String) {
    let _registering = Registering::new(&sh, std::slice::from_ref(&addr));
    let Some(_shared) = sh.liveness.may_register(&sh.token).await else {
        return;
    };
    let Some(cur) = sh.current() else {
        return;
    };
    if !sh.client.name_server_list().contains(&addr) {
        return;
    }
    let cfg = sh.config();
    sh.metrics.namesrv.reregistration(&addr);
    register_with(&sh, &addr, &cfg, &cur).await;
}

/// A full registration of `cur` with one NameServer, recorded as rounds record theirs.
async fn register_with(sh: &Shared, addr: &str, cfg: &Config, cur: &Current) -> RegisterOutcome {
    let table = restricted(sh.topics.table(), cur.permission).await;
    let addrs = [addr.to_string()];
    let out = sh
        .api
        .register_to(&addrs, &cur.id, &table, &options(cfg, true, cur))
        .await;
    record(sh, &out, &cur.id, table.data_version, false);
    out
}
