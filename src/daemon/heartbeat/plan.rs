//! The heartbeat's pure decisions: what to send a NameServer when something falls due, and what
//! its answer calls for.

use std::time::Duration;

use tokio::time::Instant;

use crate::broker::body::DataVersion;

/// What one NameServer's heartbeat knows.
#[derive(Debug, Default, Clone)]
pub(crate) struct BeatState {
    /// A heartbeat awaits its answer (at most one in flight).
    pub(crate) in_flight: bool,
    /// Registrations with it in flight: a heartbeat would queue behind their bodies.
    pub(crate) registering: u32,
    /// The last registration failed (a split one may have left part of the table): an
    /// unchanged answer is not trusted until a full registration succeeds.
    pub(crate) needs_full: bool,
    /// The data version it last said it holds.
    pub(crate) acked: Option<DataVersion>,
    /// When a heartbeat last caused a full registration.
    pub(crate) last_rereg: Option<Instant>,
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
