//! The heartbeat: a QUERY_DATA_VERSION to each NameServer every `register.heartbeat`, so that
//! NameServers registered with a short `heartbeatTimeoutMillis` drop a lost host within
//! seconds, and a NameServer that lost the broker (restarted, or told to drop it) is
//! registered with again at once instead of at the next round.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::register::{note_ok, reregister_lost};
use super::supervisor::TaskResult;
use super::Shared;
use crate::broker::body::DataVersion;
use crate::broker::{ApiError, DataVersionAnswer};

/// What one NameServer's heartbeat knows.
#[derive(Debug, Default, Clone)]
pub(super) struct BeatState {
    /// A heartbeat awaits its answer (at most one in flight).
    pub(super) in_flight: bool,
    /// Registrations with it in flight: a heartbeat would queue behind their bodies.
    pub(super) registering: u32,
    /// The last registration failed (a split one may have left part of the table): an
    /// unchanged answer is not trusted until a full registration succeeds.
    pub(super) needs_full: bool,
    /// The data version it last said it holds.
    pub(super) acked: Option<DataVersion>,
    /// When a heartbeat last caused a full registration.
    pub(super) last_rereg: Option<Instant>,
}

/// What falls due for one NameServer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The heartbeat timer.
    Beat,
    /// A registration round; `force`: a full registration was asked for.
    Round {
        /// Register fully whatever the NameServer holds.
        force: bool,
    },
}

/// What to send one NameServer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One QUERY_DATA_VERSION.
    Heartbeat,
    /// A full registration.
    Full,
    /// Nothing now.
    Skip,
}

/// The send plan with heartbeats on: a heartbeat never queues behind another heartbeat or a
/// registration on the same connection, and an unforced round registers only where the
/// NameServer has not confirmed the current data version.
pub(crate) fn plan(b: &BeatState, due: Due, version: DataVersion) -> Plan {
    match due {
        Due::Beat if b.in_flight || b.registering > 0 => Plan::Skip,
        Due::Beat => Plan::Heartbeat,
        Due::Round { force: false } if !b.needs_full && b.acked == Some(version) => Plan::Skip,
        Due::Round { .. } => Plan::Full,
    }
}

/// What a heartbeat's answer calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterBeat {
    /// The NameServer holds the broker at this version: a success.
    Current,
    /// Register fully with it now. `lost`: it said changed (it lost the broker); `repeat`:
    /// the last such re-registration was recent (it keeps losing it).
    Reregister {
        /// The NameServer answered changed=true.
        lost: bool,
        /// Another re-registration happened within three intervals.
        repeat: bool,
    },
    /// Would re-register, but one already went out within this interval.
    Limited,
}

/// Judges an answer: `changed` from the NameServer, at `now`, with `interval` the round period.
pub(crate) fn after_answer(
    b: &BeatState,
    changed: bool,
    now: Instant,
    interval: Duration,
) -> AfterBeat {
    if !changed && !b.needs_full {
        return AfterBeat::Current;
    }
    let since = b.last_rereg.map(|t| now.saturating_duration_since(t));
    if since.is_some_and(|s| s < interval) {
        // A NameServer that keeps rejecting (a stateVersion it will not take) must not turn
        // into a loop at the heartbeat's pace.
        return AfterBeat::Limited;
    }
    AfterBeat::Reregister {
        lost: changed,
        repeat: since.is_some_and(|s| s < interval * 3),
    }
}

type BeatResult = (String, DataVersion, Result<DataVersionAnswer, ApiError>);

/// Sends the heartbeats while the broker serves, and acts on their answers.
pub(crate) async fn heartbeat_loop(sh: Arc<Shared>) -> TaskResult {
    // A restarted task's old heartbeats were aborted with it: none is in flight now.
    for b in sh.status().beats.values_mut() {
        b.in_flight = false;
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
    let version = sh.table().data_version;
    for addr in sh.client.name_server_list() {
        let p = {
            let mut status = sh.status();
            let b = status.beats.entry(addr.clone()).or_default();
            let p = plan(b, Due::Beat, version);
            b.in_flight |= p == Plan::Heartbeat;
            p
        };
        if p != Plan::Heartbeat {
            sh.metrics
                .heartbeats
                .with_label_values(&[&addr, "skipped"])
                .inc();
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
    let mut status = sh.status();
    // Gone from the list meanwhile: nothing of it is kept.
    let Some(b) = status.beats.get_mut(&addr) else {
        return;
    };
    b.in_flight = false;
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            m.heartbeats.with_label_values(&[&addr, e.kind()]).inc();
            tracing::debug!(namesrv = %addr, error = %e, "heartbeat failed");
            return;
        }
    };
    let label = if answer.changed { "changed" } else { "ok" };
    m.heartbeats.with_label_values(&[&addr, label]).inc();
    match after_answer(b, answer.changed, Instant::now(), interval) {
        AfterBeat::Current => {
            b.acked = Some(version);
            drop(status);
            note_ok(sh, &addr);
        }
        AfterBeat::Limited => {
            tracing::debug!(namesrv = %addr, "heartbeat: registration due, but one went out within register.interval");
        }
        AfterBeat::Reregister { lost, repeat } => {
            b.last_rereg = Some(Instant::now());
            b.acked = None;
            drop(status);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(counter: i64) -> DataVersion {
        DataVersion {
            counter,
            ..DataVersion::default()
        }
    }

    #[test]
    fn the_send_plan() {
        let idle = BeatState::default();
        let acked = BeatState {
            acked: Some(v(2)),
            ..BeatState::default()
        };
        let cases = [
            (idle.clone(), Due::Beat, Plan::Heartbeat),
            (
                BeatState {
                    in_flight: true,
                    ..acked.clone()
                },
                Due::Beat,
                Plan::Skip,
            ),
            (
                BeatState {
                    registering: 1,
                    ..acked.clone()
                },
                Due::Beat,
                Plan::Skip,
            ),
            (idle.clone(), Due::Round { force: false }, Plan::Full),
            (acked.clone(), Due::Round { force: false }, Plan::Skip),
            (acked.clone(), Due::Round { force: true }, Plan::Full),
            (
                BeatState {
                    acked: Some(v(1)),
                    ..BeatState::default()
                },
                Due::Round { force: false },
                Plan::Full,
            ),
            (
                BeatState {
                    needs_full: true,
                    ..acked.clone()
                },
                Due::Round { force: false },
                Plan::Full,
            ),
        ];
        for (i, (b, due, want)) in cases.into_iter().enumerate() {
            assert_eq!(plan(&b, due, v(2)), want, "case {i}: {b:?} {due:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_broker_is_registered_again_at_most_once_per_interval() {
        let interval = Duration::from_secs(30);
        let now = Instant::now();
        let mut b = BeatState::default();
        assert_eq!(after_answer(&b, false, now, interval), AfterBeat::Current);
        assert_eq!(
            after_answer(&b, true, now, interval),
            AfterBeat::Reregister {
                lost: true,
                repeat: false
            }
        );
        b.last_rereg = Some(now);
        tokio::time::advance(interval - Duration::from_millis(100)).await;
        assert_eq!(
            after_answer(&b, true, Instant::now(), interval),
            AfterBeat::Limited
        );
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(
            after_answer(&b, true, Instant::now(), interval),
            AfterBeat::Reregister {
                lost: true,
                repeat: true
            },
            "again after an interval, with a warning"
        );
        tokio::time::advance(interval * 3).await;
        assert_eq!(
            after_answer(&b, true, Instant::now(), interval),
            AfterBeat::Reregister {
                lost: true,
                repeat: false
            }
        );
        // A failed (perhaps partial) registration: "unchanged" is not believed.
        b.needs_full = true;
        assert_eq!(
            after_answer(&b, false, Instant::now(), interval),
            AfterBeat::Reregister {
                lost: false,
                repeat: false
            }
        );
    }
}
