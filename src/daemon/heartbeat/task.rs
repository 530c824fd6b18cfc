//! The heartbeat task: one beater per NameServer on the list, each sending its
//! QUERY_DATA_VERSION every beat and acting on the answer. A beater lives as long as its
//! NameServer stays listed and keeps its request encoded and its reply slot, so a beat
//! allocates nothing but its frame's head.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::plan::{after_answer, plan, AfterBeat, Due, Plan};
use crate::broker::body::DataVersion;
use crate::broker::{ApiError, DataVersionAnswer, Heartbeat};
use crate::client::Waiter;
use crate::daemon::register::{note_ok, reregister_lost};
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::metrics::labels::Heartbeat as Outcome;

/// How often the list is looked at while heartbeats are off.
const OFF_LOOK: Duration = Duration::from_secs(1);

/// Keeps one beater per listed NameServer, and fails (to be restarted) when one panics.
pub(crate) async fn heartbeat_loop(sh: Arc<Shared>) -> TaskResult {
    // A restarted task's beaters were aborted with it: none has a heartbeat in flight now.
    for r in sh.namesrvs.lock().values_mut() {
        r.beat.in_flight = false;
    }
    // Owned here: dropping the set (this task ending, however it ends) aborts every beater.
    let mut beaters: JoinSet<()> = JoinSet::new();
    let mut by_addr: HashMap<String, AbortHandle> = HashMap::new();
    let mut generation = None;
    loop {
        let now = sh.client.name_server_generation();
        if generation != Some(now) {
            generation = Some(now);
            let list = sh.client.name_server_list();
            by_addr.retain(|addr, beater| {
                let listed = list.contains(addr);
                if !listed {
                    beater.abort();
                }
                listed
            });
            for addr in list {
                if let std::collections::hash_map::Entry::Vacant(e) = by_addr.entry(addr) {
                    let beater = beaters.spawn(beater(sh.clone(), e.key().clone()));
                    e.insert(beater);
                }
            }
        }
        // The list changes rarely: looking once a beat finds a new member by its first beat.
        let look = sh.config().register.heartbeat.unwrap_or(OFF_LOOK);
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            Some(ended) = beaters.join_next(), if !beaters.is_empty() => {
                if let Err(e) = ended {
                    if e.is_panic() {
                        return Err(format!("a NameServer's heartbeat panicked: {e}").into());
                    }
                }
            }
            _ = tokio::time::sleep(look) => {}
        }
    }
}

/// One NameServer's heartbeats, every `register.heartbeat` (re-read at each beat).
async fn beater(sh: Arc<Shared>, addr: String) {
    let mut waiter = Waiter::new();
    let mut request: Option<Heartbeat> = None;
    let mut period = None;
    let mut tick: Option<Interval> = None;
    loop {
        let want = sh.config().register.heartbeat;
        if want != period {
            period = want;
            tick = want.map(|p| {
                let mut t = tokio::time::interval_at(Instant::now() + p, p);
                // After a freeze (SIGSTOP) or a stall: one beat, not a burst.
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            });
        }
        let due = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                    true
                }
                // Off: look again after a reload.
                None => {
                    tokio::time::sleep(OFF_LOOK).await;
                    false
                }
            }
        };
        tokio::select! {
            _ = sh.token.cancelled() => return,
            on = due => if on {
                beat(&sh, &addr, &mut request, &mut waiter).await;
            }
        }
    }
}

/// Clears a NameServer's in-flight mark however its heartbeat ends (an answer, a timeout, the
/// beater aborted), without bringing back the record of a NameServer that left the list.
struct InFlight<'a> {
    sh: &'a Shared,
    addr: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(r) = self.sh.namesrvs.lock().get_mut(self.addr) {
            r.beat.in_flight = false;
        }
    }
}

/// Sends `addr` one heartbeat unless the plan says skip, and acts on its answer.
async fn beat(sh: &Arc<Shared>, addr: &str, request: &mut Option<Heartbeat>, waiter: &mut Waiter) {
    let Some(period) = sh.config().register.heartbeat else {
        return;
    };
    // While the broker is down nothing keeps it listed: it expires as Java's would.
    if !sh.liveness.is_up() || sh.token.is_cancelled() || !sh.client.is_name_server(addr) {
        return;
    }
    let version = sh.topics.table().data_version;
    let Some(req) = encoded(sh, request, version) else {
        return;
    };
    let p = sh.namesrvs.with(addr, |r| {
        let p = plan(&r.beat, Due::Beat, version);
        r.beat.in_flight |= p == Plan::Heartbeat;
        p
    });
    if p != Plan::Heartbeat {
        sh.metrics.namesrv.heartbeat(addr, Outcome::Skipped);
        return;
    }
    let in_flight = InFlight { sh, addr };
    // The heartbeat's own period bounds it: the next one is due then.
    let result = tokio::time::timeout(period, sh.api.heartbeat(addr, req, period, waiter))
        .await
        .unwrap_or(Err(ApiError::Timeout(period)));
    drop(in_flight);
    answered(sh, addr, version, result).await;
}

/// The heartbeat for the identity and data version registrations carry now: the one encoded
/// last time unless either changed. None while the broker has not said who it is.
fn encoded<'a>(
    sh: &Shared,
    request: &'a mut Option<Heartbeat>,
    version: DataVersion,
) -> Option<&'a Heartbeat> {
    let fresh = sh.with_current(|cur| {
        let id = &cur?.id;
        if request.as_ref().is_some_and(|r| r.is_for(id, version)) {
            return Some(None);
        }
        match sh.api.prepare_heartbeat(id, version) {
            Ok(r) => Some(Some(r)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the heartbeat");
                None
            }
        }
    })?;
    if let Some(r) = fresh {
        *request = Some(r);
    }
    request.as_ref()
}

/// Acts on one heartbeat's answer.
async fn answered(
    sh: &Arc<Shared>,
    addr: &str,
    version: DataVersion,
    result: Result<DataVersionAnswer, ApiError>,
) {
    let m = &sh.metrics;
    let interval = sh.config().register.interval;
    let after = {
        let mut records = sh.namesrvs.lock();
        // Gone from the list meanwhile: nothing of it is kept.
        let Some(b) = records.get_mut(addr).map(|r| &mut r.beat) else {
            return;
        };
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                m.namesrv.heartbeat(addr, Outcome::Failed(e.kind()));
                tracing::debug!(namesrv = %addr, error = %e, "heartbeat failed");
                return;
            }
        };
        let outcome = if answer.changed {
            Outcome::Changed
        } else {
            Outcome::Ok
        };
        m.namesrv.heartbeat(addr, outcome);
        let after = after_answer(b, answer.changed, Instant::now(), interval);
        match after {
            AfterBeat::Current => b.acked = Some(version),
            AfterBeat::Limited => {}
            AfterBeat::Reregister { .. } => {
                b.last_rereg = Some(Instant::now());
                b.acked = None;
            }
        }
        after
    };
    match after {
        AfterBeat::Current => note_ok(sh, addr),
        AfterBeat::Limited => {
            tracing::debug!(namesrv = %addr, "heartbeat: registration due, but one went out within register.interval");
        }
        AfterBeat::Reregister { lost, repeat } => {
            if !lost {
                tracing::info!(namesrv = %addr, "the last registration with this NameServer did not complete: registering fully");
            } else if repeat {
                tracing::warn!(namesrv = %addr, "the NameServer lost the broker again: registering again (at most once per register.interval)");
            } else {
                tracing::info!(namesrv = %addr, "the NameServer had lost the broker: registering again");
            }
            // Beats to it are skipped meanwhile (a registration is in flight), as before.
            reregister_lost(sh.clone(), addr.to_string()).await;
        }
    }
}
