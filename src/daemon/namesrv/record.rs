//! One NameServer's record, as its task keeps it: what it holds of the broker, how its
//! registrations went, its heartbeat state, and what each outcome teaches (metrics and log).

use tokio::time::Instant;

use crate::broker::body::DataVersion;
use crate::broker::{
    ApiError, BrokerIdentity, NamesrvOutcome, RegisterStatus, SentAs,
};
use crate::client::ClientError;
use crate::daemon::heartbeat::BeatState;
use crate::metrics::labels::Registration;
use crate::metrics::NamesrvMetrics;

/// One NameServer's state; only its task reads or writes it.
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

/// Who a record's lessons are told to: its NameServer's metric series and log lines.
pub(crate) struct Teller<'a> {
    /// The NameServer.
    pub(crate) addr: &'a str,
    /// The series.
    pub(crate) metrics: &'a NamesrvMetrics,
    /// `register.interval`: at most one reminder per interval while failing.
    pub(crate) every: std::time::Duration,
}

impl Record {
    /// Learns from a registration of `id` at `version`: the identity it now holds (for its
    /// goodbye), the version it acknowledged (so an unforced round right after has nothing to
    /// send), metrics and the log. A NameServer that starts failing gets one WARN with the
    /// reason, then at most one reminder per interval while it keeps failing, and one INFO
    /// when it is back. True when the failure is worth an immediate retry.
    pub(crate) fn registered(
        &mut self,
        t: &Teller<'_>,
        o: &NamesrvOutcome<RegisterStatus>,
        id: &BrokerIdentity,
        version: DataVersion,
    ) -> bool {
        let outcome = match &o.result {
            Ok(RegisterStatus::Registered(_)) => Registration::Ok,
            Ok(RegisterStatus::Current) => Registration::Current,
            Ok(RegisterStatus::Sent) => Registration::Sent,
            Err(e) => Registration::Failed(e.kind()),
        };
        t.metrics.registration(t.addr, outcome, o.elapsed);
        match &o.result {
            Ok(status) => {
                if let RegisterStatus::Registered(r) = status {
                    self.note_sent_as(t, r.sent_as);
                }
                if self.registered_as.as_ref() != Some(id) {
                    self.registered_as = Some(id.clone());
                }
                if !matches!(status, RegisterStatus::Current) {
                    self.beat.needs_full = false;
                }
                if matches!(status, RegisterStatus::Registered(_)) {
                    self.beat.acked = Some(version);
                }
                self.holds_it(t);
                false
            }
            Err(e) => {
                t.metrics.set_registered(t.addr, false);
                // Perhaps part of a split table went in under the current data version: the
                // heartbeat's "unchanged" is not believed until a full registration succeeds.
                self.beat.needs_full = true;
                let now = Instant::now();
                let retry_soon = unreachable(e);
                let addr = t.addr;
                match self.failing.as_mut() {
                    None => {
                        self.failing = Some(Failing {
                            since: now,
                            reminded: now,
                            retry_soon,
                        });
                        tracing::warn!(namesrv = %addr, error = %e, "registration with this NameServer failed");
                    }
                    Some(f) if f.reminded + t.every <= now => {
                        f.reminded = now;
                        f.retry_soon = retry_soon;
                        tracing::warn!(namesrv = %addr, error = %e, failing_for = ?f.since.elapsed(), "NameServer still failing");
                    }
                    Some(f) => {
                        f.retry_soon = retry_soon;
                        tracing::debug!(namesrv = %addr, error = %e, "registration failed");
                    }
                }
                retry_soon
            }
        }
    }

    /// It holds the broker (a registration or a heartbeat said so): registered, ready, and
    /// one INFO if it had been failing.
    pub(crate) fn holds_it(&mut self, t: &Teller<'_>) {
        t.metrics.set_registered(t.addr, true);
        self.last_ok = Some(Instant::now());
        if let Some(f) = self.failing.take() {
            tracing::info!(namesrv = %t.addr, out_for = ?f.since.elapsed(), "NameServer has the broker again");
        }
    }

    /// The broker was withdrawn here (it is down): it holds nothing now.
    pub(crate) fn withdrawn(&mut self, t: &Teller<'_>) {
        self.last_ok = None;
        self.beat.acked = None;
        t.metrics.set_registered(t.addr, false);
    }

    /// A dropped connection found while its registrations stall (a timeout, not "not
    /// there"): the next round retries rather than a reconnect loop.
    pub(crate) fn stalled(&self) -> bool {
        self.failing.as_ref().is_some_and(|f| !f.retry_soon)
    }

    /// Tells (once per change) how the table went out when it did not fit in one frame.
    fn note_sent_as(&mut self, t: &Teller<'_>, how: SentAs) {
        let requests = match how {
            SentAs::Batches(n) => n,
            SentAs::Whole | SentAs::AutoCompressed => 1,
        };
        t.metrics.set_requests_per_registration(t.addr, requests);
        let before = self.sent_as.replace(how);
        if before == Some(how) {
            return;
        }
        let addr = t.addr;
        match how {
            SentAs::Batches(n) => {
                tracing::info!(namesrv = %addr, batches = n, "the registration does not fit in one frame (remoting.max_frame): sent in batches")
            }
            SentAs::AutoCompressed => {
                tracing::info!(namesrv = %addr, "the registration does not fit in one frame (remoting.max_frame): sent compressed")
            }
            SentAs::Whole if before.is_some() => {
                tracing::info!(namesrv = %addr, "the registration fits in one frame again")
            }
            SentAs::Whole => {}
        }
    }
}

/// Failures that mean "not there right now", worth retrying sooner than the next interval.
/// Timeouts are not: a black-holed NameServer would cost a timeout per retry.
pub(crate) fn unreachable(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Client(
            ClientError::Connect { .. }
                | ClientError::ConnectionClosed { .. }
                | ClientError::Send { .. }
        )
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::metrics::Metrics;

    const ADDR: &str = "127.0.0.1:9876";

    fn id() -> BrokerIdentity {
        BrokerIdentity {
            cluster: "c".into(),
            name: "b".into(),
            id: 0,
            addr: "127.0.0.1:10911".into(),
            ha_addr: "127.0.0.1:10912".into(),
            zone: None,
        }
    }

    fn outcome(result: Result<RegisterStatus, ApiError>) -> NamesrvOutcome<RegisterStatus> {
        NamesrvOutcome {
            addr: ADDR.into(),
            result,
            elapsed: Duration::ZERO,
        }
    }

    fn refused() -> ApiError {
        ApiError::Client(ClientError::Connect {
            addr: ADDR.into(),
            source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        })
    }

    fn timed_out() -> ApiError {
        ApiError::Client(ClientError::Timeout {
            addr: ADDR.into(),
            timeout: Duration::from_secs(3),
        })
    }

    fn teller(m: &Metrics) -> Teller<'_> {
        Teller {
            addr: ADDR,
            metrics: m.namesrv(),
            every: Duration::from_secs(30),
        }
    }

    fn v(counter: i64) -> DataVersion {
        DataVersion {
            counter,
            ..DataVersion::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_names_the_identity_for_the_goodbye_and_a_failure_distrusts_unchanged() {
        let m = Metrics::new().expect("metrics");
        let t = teller(&m);
        let mut r = Record::default();
        assert!(!r.registered(&t, &outcome(Ok(RegisterStatus::Sent)), &id(), v(3)));
        assert_eq!(r.registered_as, Some(id()));
        assert!(r.last_ok.is_some());
        assert_eq!(r.beat.acked, None, "a oneway send acknowledges no version");
        assert!(!r.registered(&t, &outcome(Err(timed_out())), &id(), v(3)));
        assert!(r.beat.needs_full, "part of a split table may be in");
        assert!(r.stalled(), "a timeout: the next round retries, not a reconnect");
        assert_eq!(r.registered_as, Some(id()), "the goodbye still names it");
        r.withdrawn(&t);
        assert_eq!((r.last_ok, r.beat.acked), (None, None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_namesrv_not_there_is_retried_soon_and_reminded_at_most_once_per_interval() {
        let m = Metrics::new().expect("metrics");
        let t = teller(&m);
        let mut r = Record::default();
        assert!(r.registered(&t, &outcome(Err(refused())), &id(), v(1)));
        let first = r.failing.as_ref().map(|f| f.reminded).expect("failing");
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(r.registered(&t, &outcome(Err(refused())), &id(), v(1)));
        assert_eq!(r.failing.as_ref().map(|f| f.reminded), Some(first), "no reminder yet");
        tokio::time::advance(Duration::from_secs(20)).await;
        r.registered(&t, &outcome(Err(refused())), &id(), v(1));
        let reminded = r.failing.as_ref().map(|f| f.reminded).expect("failing");
        assert_eq!(reminded - first, Duration::from_secs(30), "one reminder per interval");
        assert!(!r.stalled());
        assert_eq!(
            m.namesrv()
                .registrations_of(ADDR, Registration::Failed(refused().kind())),
            3
        );
        r.registered(&t, &outcome(Ok(RegisterStatus::Current)), &id(), v(1));
        assert!(r.failing.is_none(), "back: one INFO, the failing state gone");
    }
}
