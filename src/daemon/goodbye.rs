//! Saying goodbye: one rule for every way the broker leaves a NameServer (the broker went
//! down, the NameServer left the list, the daemon stops), and the stop itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::shared::Shared;
use super::supervisor::Supervisor;
use crate::broker::{BrokerIdentity, NamesrvOutcome, UnregisterOutcome};
use crate::client::PeerInfo;
use crate::metrics::labels::Unregistration;
use crate::metrics::NamesrvMetrics;

/// The goodbye to one NameServer, for every path that has one. UNREGISTER_BROKER names the
/// broker as that NameServer holds it (`held`: after an election one that missed the new
/// identity still holds the old one), else as it is now; none known, nothing to withdraw.
///
/// The by-id rule: where a NameServer removes by id (Java up to 5.0), an UNREGISTER for this
/// broker's id removes whoever holds it there: the master elected since (ids that move), or
/// another address that took the id (a moved pod, a stray registration). There the connection
/// is closed instead, whatever the identity mode: the NameServer then drops what this
/// connection registered, by address. Returns the UNREGISTER's outcome, if one was sent.
pub(crate) async fn say_goodbye(
    sh: &Shared,
    metrics: &NamesrvMetrics,
    addr: &str,
    held: Option<&BrokerIdentity>,
    timeout: Duration,
) -> Option<NamesrvOutcome<()>> {
    if removes_by_id(sh.client.peer_info(addr)) {
        tracing::info!(namesrv = %addr, "this NameServer removes brokers by id: closing the connection instead of UNREGISTER (it then drops the broker by address)");
        sh.client.close_connection(addr);
        return None;
    }
    let id = held.cloned().or_else(|| sh.current().map(|c| c.id))?;
    let addrs = [addr.to_string()];
    let out = sh.api.unregister_from(&addrs, &id, timeout).await.pop()?;
    let outcome = out
        .result
        .as_ref()
        .map_or_else(|e| Unregistration::Failed(e.kind()), |_| Unregistration::Ok);
    metrics.unregistration(addr, outcome);
    if let Err(e) = &out.result {
        tracing::warn!(namesrv = %addr, error = %e, "unregister failed");
    }
    Some(out)
}

/// What the one-shot `unregister` did at one NameServer.
pub enum Once {
    /// UNREGISTER_BROKER was sent: its outcome.
    Sent(NamesrvOutcome<()>),
    /// Not sent, and why: UNREGISTER there would remove another registration than this one,
    /// or it is not known whose it would remove.
    Held {
        /// The NameServer.
        addr: String,
        /// Why not.
        why: String,
        /// Not sent because the NameServer could not be asked (the command fails), rather
        /// than because what is there is not this broker's.
        failed: bool,
    },
}

/// The goodbye rule for a one-shot command, which has no connection that registered anything
/// (closing it removes nothing): each NameServer is first asked who holds the broker's id
/// (GET_BROKER_CLUSTER_INFO, which also says what the NameServer is). Where it removes by id
/// (Java up to 5.0), UNREGISTER is sent only when the id is this broker's address: otherwise it
/// would delete another registrar's entry (a new master, a moved pod). Where it removes by
/// address, UNREGISTER removes only this address and is always sent. All at once.
pub async fn unregister_once(
    api: &crate::broker::BrokerApi,
    addrs: &[String],
    id: &BrokerIdentity,
    timeout: Duration,
) -> Vec<Once> {
    futures_util::future::join_all(addrs.iter().map(|addr| unregister_one(api, addr, id, timeout)))
        .await
}

async fn unregister_one(
    api: &crate::broker::BrokerApi,
    addr: &str,
    id: &BrokerIdentity,
    timeout: Duration,
) -> Once {
    let table = match api.cluster_brokers(addr, timeout).await {
        Ok(t) => Ok(t),
        // Not known what this NameServer is, nor who holds the id there: a Java 4.x one that
        // answers slowly would remove another registrar's entry. Not sent; a failure.
        Err(e) if api.client().peer_info(addr).is_none() => {
            return Once::Held {
                addr: addr.to_string(),
                why: format!("cannot ask who holds id {} here ({e}): UNREGISTER not sent", id.id),
                failed: true,
            }
        }
        Err(e) => Err(e),
    };
    if removes_by_id(api.client().peer_info(addr)) {
        let held = |why: String, failed: bool| Once::Held {
            addr: addr.to_string(),
            why,
            failed,
        };
        match table.map(|t| crate::broker::id_holder(&t, &id.name, id.id)) {
            Ok(Some(a)) if a == id.addr => {}
            Ok(Some(other)) => {
                return held(
                    format!(
                        "id {} is {other} here, not {}: this NameServer removes by id, and UNREGISTER would remove that entry",
                        id.id, id.addr
                    ),
                    false,
                )
            }
            Ok(None) => {
                return held(
                    format!("id {} is not listed here: nothing of this broker to remove", id.id),
                    false,
                )
            }
            Err(e) => {
                return held(
                    format!(
                        "this NameServer removes by id, and who holds id {} could not be read ({e}): UNREGISTER could remove another's entry",
                        id.id
                    ),
                    true,
                )
            }
        }
    }
    let addrs = [addr.to_string()];
    match api.unregister_from(&addrs, id, timeout).await.pop() {
        Some(out) => Once::Sent(out),
        None => Once::Held {
            addr: addr.to_string(),
            why: "no outcome".into(),
            failed: true,
        },
    }
}

/// How long a registration in flight may still finish when its NameServer leaves the list or
/// the daemon stops: a round stuck on a stalled peer must not hold up the goodbye.
pub(crate) const LEAVE_WAIT: Duration = Duration::from_millis(300);

/// Whether a NameServer that answered as `peer` removes brokers by id on UNREGISTER_BROKER (Java
/// before 5.1); one never heard from is taken as removing by address.
pub(crate) fn removes_by_id(peer: Option<PeerInfo>) -> bool {
    peer.is_some_and(|p| {
        p.language == crate::protocol::LanguageCode::JAVA
            && p.version < crate::protocol::code::VERSION_5_1_0
    })
}

/// Stops the daemon: the register task, seeing the token cancelled, tells every NameServer's
/// task to leave with its goodbye (within one `register.timeout` and the wait for a round in
/// flight); the other tasks just end. Then every connection is closed.
pub(crate) async fn shutdown(shared: &Arc<Shared>, sup: &Supervisor) {
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let cfg = shared.config();
    tracing::info!(
        namesrvs = shared.client.name_server_list().len(),
        "stopping: unregistering from every NameServer"
    );
    sup.stop(stop_grace(cfg.register.timeout)).await;
    shared.client.shutdown();
}

/// How long the register task has to say goodbye once asked to stop: the wait for a round in
/// flight, one UNREGISTER timeout, and a little for the tasks to end.
pub(crate) fn stop_grace(timeout: Duration) -> Duration {
    LEAVE_WAIT + timeout + Duration::from_millis(150)
}

/// How many of `outcomes` succeeded.
pub(crate) fn succeeded(outcomes: &UnregisterOutcome) -> usize {
    outcomes.iter().filter(|o| o.result.is_ok()).count()
}

/// Logs the stop's outcome.
pub(crate) fn said(ok: usize, total: usize, started: Instant) {
    tracing::info!(ok, total, took = ?started.elapsed(), "unregistered; bye");
}
