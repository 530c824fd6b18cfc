//! The heartbeat task: sends each NameServer its QUERY_DATA_VERSION and acts on the answers.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::plan::{after_answer, plan, AfterBeat, Due, Plan};
use crate::broker::body::DataVersion;
use crate::broker::{ApiError, DataVersionAnswer};
use crate::daemon::register::{note_ok, reregister_lost};
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::metrics::labels::Heartbeat;

type BeatResult = (String, DataVersion, Result<DataVersionAnswer, ApiError>);

/// Sends the heartbeats while the broker serves, and acts on their answers.
pub(crate) async fn heartbeat_loop(sh: Arc<Shared>) -> TaskResult {
    // A restarted task's old heartbeats were aborted with it: none is in flight now.
    for r in sh.namesrvs.lock().values_mut() {
        r.beat.in_flight = false;
    }
    let mut beats: JoinSet<BeatResult> = JoinSet::new();
    let mut reregs: JoinSet<()> = JoinSet::new();
    let mut period = None;
    let mut tick: Option<tokio::time::Interval> = None;
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
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    false
                }
            }
        };
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            Some(done) = beats.join_next(), if !beats.is_empty() => {
                if let Ok((addr, version, result)) = done {
                    answered(&sh, &mut reregs, addr, version, result);
                }
            }
            Some(_) = reregs.join_next(), if !reregs.is_empty() => {}
            on = due => if on {
                beat(&sh, &mut beats);
            }
        }
    }
}

/// Sends one heartbeat to each NameServer that has none in flight and no registration.
fn beat(sh: &Arc<Shared>, beats: &mut JoinSet<BeatResult>) {
    let Some(period) = sh.config().register.heartbeat else {
        return;
    };
    // While the broker is down nothing keeps it listed: it expires as Java's would.
    if !sh.liveness.is_up() || sh.token.is_cancelled() {
        return;
    }
    let Some(cur) = sh.current() else {
        return;
    };
    let id = Arc::new(cur.id);
    let version = sh.topics.table().data_version;
    for addr in sh.client.name_server_list() {
        let p = {
            sh.namesrvs.with(&addr, |r| {
                let p = plan(&r.beat, Due::Beat, version);
                r.beat.in_flight |= p == Plan::Heartbeat;
                p
            })
        };
        if p != Plan::Heartbeat {
            sh.metrics.namesrv.heartbeat(&addr, Heartbeat::Skipped);
            continue;
        }
        let (sh, id) = (sh.clone(), id.clone());
        beats.spawn(async move {
            // The heartbeat's own period bounds it: the next one is due then.
            let r = tokio::time::timeout(
                period,
                sh.api.query_data_version(&addr, &id, version, period),
            )
            .await
            .unwrap_or(Err(ApiError::Timeout(period)));
            (addr, version, r)
        });
    }
}

/// Acts on one heartbeat's answer.
fn answered(
    sh: &Arc<Shared>,
    reregs: &mut JoinSet<()>,
    addr: String,
    version: DataVersion,
    result: Result<DataVersionAnswer, ApiError>,
) {
    let m = &sh.metrics;
    let interval = sh.config().register.interval;
    let mut records = sh.namesrvs.lock();
    // Gone from the list meanwhile: nothing of it is kept.
    let Some(b) = records.get_mut(&addr).map(|r| &mut r.beat) else {
        return;
    };
    b.in_flight = false;
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            m.namesrv.heartbeat(&addr, Heartbeat::Failed(e.kind()));
            tracing::debug!(namesrv = %addr, error = %e, "heartbeat failed");
            return;
        }
    };
    let outcome = if answer.changed {
        Heartbeat::Changed
    } else {
        Heartbeat::Ok
    };
    m.namesrv.heartbeat(&addr, outcome);
    match after_answer(b, answer.changed, Instant::now(), interval) {
        AfterBeat::Current => {
            b.acked = Some(version);
            drop(records);
            note_ok(sh, &addr);
        }
        AfterBeat::Limited => {
            tracing::debug!(namesrv = %addr, "heartbeat: registration due, but one went out within register.interval");
        }
        AfterBeat::Reregister { lost, repeat } => {
            b.last_rereg = Some(Instant::now());
            b.acked = None;
            drop(records);
            if !lost {
                tracing::info!(namesrv = %addr, "the last registration with this NameServer did not complete: registering fully");
            } else if repeat {
                tracing::warn!(namesrv = %addr, "the NameServer lost the broker again: registering again (at most once per register.interval)");
            } else {
                tracing::info!(namesrv = %addr, "the NameServer had lost the broker: registering again");
            }
            reregs.spawn(reregister_lost(sh.clone(), addr));
        }
    }
}
