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

/// How often the list is looked at while heartbeats are off (and at least, while on).
const OFF_LOOK: Duration = Duration::from_secs(1);
/// How much later than its own deadline a heartbeat is given up from outside.
const OUTER_SLACK: Duration = Duration::from_millis(250);

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
        // The list changes rarely: looking once a beat (at least once a second) starts a new
        // member's beats within a second and a beat.
        let look = sh
            .config()
            .register
            .heartbeat
            .map_or(OFF_LOOK, |p| p.min(OFF_LOOK));
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

/// One NameServer's heartbeats, every `register.heartbeat` (a reload takes effect at once).
async fn beater(sh: Arc<Shared>, addr: String) {
    let mut beat = Beat {
        addr,
        waiter: Waiter::new(),
        request: None,
        unencodable: false,
    };
    // Re-registrations it causes run beside its beats, which the plan skips meanwhile (counted).
    let mut reregs: JoinSet<()> = JoinSet::new();
    let mut reloads = sh.config.subscribe();
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
            reloaded = reloads.changed() => if reloaded.is_err() {
                return;
            },
            Some(_) = reregs.join_next(), if !reregs.is_empty() => {}
            on = due => if on {
                if let Some(lost) = beat.send(&sh).await {
                    reregs.spawn(reregister_lost(sh.clone(), lost));
                }
            }
        }
    }
}

/// What a NameServer's beater keeps from beat to beat, so that a beat allocates nothing else.
struct Beat {
    addr: String,
    /// Where its answers land.
    waiter: Waiter,
    /// The request, encoded for the identity and data version it was last sent with.
    request: Option<Heartbeat>,
    /// The last encoding failed (told once, not every beat).
    unencodable: bool,
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

impl Beat {
    /// Sends one heartbeat unless the plan says skip, and acts on its answer; the NameServer
    /// to register with again, when the answer calls for it.
    async fn send(&mut self, sh: &Arc<Shared>) -> Option<String> {
        let period = sh.config().register.heartbeat?;
        let addr = self.addr.as_str();
        // While the broker is down nothing keeps it listed: it expires as Java's would.
        if !sh.liveness.is_up() || sh.token.is_cancelled() || !sh.client.is_name_server(addr) {
            return None;
        }
        let version = sh.topics.table().data_version;
        let req = encoded(sh, &mut self.request, &mut self.unencodable, version)?;
        beat(sh, addr, req, &mut self.waiter, period, version).await
    }
}

/// Sends `addr` the heartbeat `req` unless the plan says skip, and acts on its answer.
async fn beat(
    sh: &Arc<Shared>,
    addr: &str,
    req: &Heartbeat,
    waiter: &mut Waiter,
    period: Duration,
    version: DataVersion,
) -> Option<String> {
    let p = sh.namesrvs.with(addr, |r| {
        let p = plan(&r.beat, Due::Beat, version);
        r.beat.in_flight |= p == Plan::Heartbeat;
        p
    });
    if p != Plan::Heartbeat {
        sh.metrics.namesrv.heartbeat(addr, Outcome::Skipped);
        return None;
    }
    let in_flight = InFlight { sh, addr };
    // The heartbeat's own period bounds it (the next one is due then), at every step inside;
    // the outer bound, a little later, only guards against a step that forgot its deadline.
    let result = tokio::time::timeout(
        period + OUTER_SLACK,
        sh.api.heartbeat(addr, req, period, waiter),
    )
    .await
    .unwrap_or(Err(ApiError::Timeout(period)));
    drop(in_flight);
    answered(sh, addr, version, result)
}

/// The heartbeat for the identity and data version registrations carry now: the one encoded
/// last time unless either changed. None while the broker has not said who it is.
fn encoded<'a>(
    sh: &Shared,
    request: &'a mut Option<Heartbeat>,
    unencodable: &mut bool,
    version: DataVersion,
) -> Option<&'a Heartbeat> {
    let fresh = sh.with_current(|cur| {
        let id = &cur?.id;
        if request.as_ref().is_some_and(|r| r.is_for(id, version)) {
            return Some(None);
        }
        match sh.api.prepare_heartbeat(id, version) {
            Ok(r) => {
                *unencodable = false;
                Some(Some(r))
            }
            Err(e) => {
                if !std::mem::replace(unencodable, true) {
                    tracing::warn!(error = %e, "cannot encode the heartbeat");
                }
                None
            }
        }
    })?;
    if let Some(r) = fresh {
        *request = Some(r);
    }
    request.as_ref()
}

/// Acts on one heartbeat's answer; the NameServer to register with again, if it lost us.
fn answered(
    sh: &Arc<Shared>,
    addr: &str,
    version: DataVersion,
    result: Result<DataVersionAnswer, ApiError>,
) -> Option<String> {
    let m = &sh.metrics;
    let interval = sh.config().register.interval;
    let after = {
        let mut records = sh.namesrvs.lock();
        // Gone from the list meanwhile: nothing of it is kept.
        let b = &mut records.get_mut(addr)?.beat;
        let answer = match result {
            Ok(a) => a,
            Err(e) => {
                m.namesrv.heartbeat(addr, Outcome::Failed(e.kind()));
                tracing::debug!(namesrv = %addr, error = %e, "heartbeat failed");
                return None;
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
        AfterBeat::Current => {
            note_ok(sh, addr);
            None
        }
        AfterBeat::Limited => {
            tracing::debug!(namesrv = %addr, "heartbeat: registration due, but one went out within register.interval");
            None
        }
        AfterBeat::Reregister { lost, repeat } => {
            if !lost {
                tracing::info!(namesrv = %addr, "the last registration with this NameServer did not complete: registering fully");
            } else if repeat {
                tracing::warn!(namesrv = %addr, "the NameServer lost the broker again: registering again (at most once per register.interval)");
            } else {
                tracing::info!(namesrv = %addr, "the NameServer had lost the broker: registering again");
            }
            Some(addr.to_string())
        }
    }
}
