//! What a registration's outcome teaches: each NameServer's record, its metrics and the log.

use std::sync::Arc;

use tokio::time::Instant;

use crate::broker::body::DataVersion;
use crate::broker::{ApiError, BrokerIdentity, RegisterOutcome, RegisterStatus, SentAs};
use crate::client::ClientError;
use crate::daemon::namesrvs::Failing;
use crate::daemon::shared::Shared;
use crate::metrics::labels::{Label, Registration};

/// Marks registrations in flight per NameServer while alive: a heartbeat falling due then is
/// skipped rather than queued behind a large body on the same connection.
pub(crate) struct Registering {
    sh: Arc<Shared>,
    addrs: Vec<String>,
}

impl Registering {
    /// Marks `addrs` as being registered with until dropped.
    pub(crate) fn new(sh: &Arc<Shared>, addrs: &[String]) -> Self {
        for a in addrs {
            sh.namesrvs.with(a, |r| r.beat.registering += 1);
        }
        Registering {
            sh: sh.clone(),
            addrs: addrs.to_vec(),
        }
    }
}

impl Drop for Registering {
    fn drop(&mut self) {
        let mut records = self.sh.namesrvs.lock();
        for a in &self.addrs {
            if let Some(r) = records.get_mut(a) {
                r.beat.registering = r.beat.registering.saturating_sub(1);
            }
        }
    }
}

/// Learns from a registration of `id` at `version`: each NameServer's record (the identity it
/// now holds, for its goodbye; the version it acknowledged, so an unforced round right after
/// has nothing to send there), metrics and the log. A NameServer that starts failing gets one
/// WARN with the reason, then at most one reminder per interval while it keeps failing, and one
/// INFO with the outage when it is back; `summary_line` adds the round's one-line summary.
pub(crate) fn record(
    sh: &Shared,
    out: &RegisterOutcome,
    id: &BrokerIdentity,
    version: DataVersion,
    summary_line: bool,
) {
    let every = sh.config().register.interval;
    let mut summary = Vec::with_capacity(out.per_namesrv.len());
    let mut ok = 0;
    for o in &out.per_namesrv {
        let outcome = match &o.result {
            Ok(RegisterStatus::Registered(_)) => Registration::Ok,
            Ok(RegisterStatus::Current) => Registration::Current,
            Ok(RegisterStatus::Sent) => Registration::Sent,
            Err(e) => Registration::Failed(e.kind()),
        };
        let m = &sh.metrics.namesrv;
        m.registration(&o.addr, outcome, o.elapsed);
        match &o.result {
            Ok(status) => {
                ok += 1;
                if let RegisterStatus::Registered(r) = status {
                    note_sent_as(sh, &o.addr, r.sent_as);
                }
                sh.namesrvs.with(&o.addr, |r| {
                    if r.registered_as.as_ref() != Some(id) {
                        r.registered_as = Some(id.clone());
                    }
                    if !matches!(status, RegisterStatus::Current) {
                        r.beat.needs_full = false;
                    }
                    if matches!(status, RegisterStatus::Registered(_)) {
                        r.beat.acked = Some(version);
                    }
                });
                note_ok(sh, &o.addr);
            }
            Err(e) => {
                m.set_registered(&o.addr, false);
                let now = Instant::now();
                let retry_soon = unreachable(e);
                sh.namesrvs.with(&o.addr, |r| {
                    // Perhaps part of a split table went in under the current data version:
                    // the heartbeat's "unchanged" is not believed until a full registration
                    // succeeds.
                    r.beat.needs_full = true;
                    match r.failing.as_mut() {
                        None => {
                            r.failing = Some(Failing {
                                since: now,
                                reminded: now,
                                retry_soon,
                            });
                            tracing::warn!(namesrv = %o.addr, error = %e, "registration with this NameServer failed");
                        }
                        Some(f) if f.reminded + every <= now => {
                            f.reminded = now;
                            f.retry_soon = retry_soon;
                            tracing::warn!(namesrv = %o.addr, error = %e, failing_for = ?f.since.elapsed(), "NameServer still failing");
                        }
                        Some(f) => {
                            f.retry_soon = retry_soon;
                            tracing::debug!(namesrv = %o.addr, error = %e, "registration failed");
                        }
                    }
                });
                if retry_soon {
                    sh.retries.push(&o.addr);
                }
            }
        }
        summary.push(format!(
            "{}={} ({}ms)",
            o.addr,
            outcome.as_str(),
            o.elapsed.as_millis()
        ));
    }
    if let Some(master) = out.merged.as_ref().and_then(|m| m.master_addr.clone()) {
        sh.master.send_if_modified(|known| {
            let changed = known.as_deref() != Some(master.as_str());
            if changed {
                *known = Some(master);
            }
            changed
        });
    }
    if summary_line {
        let total = out.per_namesrv.len();
        tracing::info!(ok, total, outcomes = %summary.join(" "), "registration round");
    }
}

/// A NameServer holds the broker (a registration or a heartbeat said so): registered, ready,
/// and one INFO if it had been failing.
pub(crate) fn note_ok(sh: &Shared, addr: &str) {
    sh.metrics.namesrv.set_registered(addr, true);
    let was_failing = sh.namesrvs.with(addr, |r| {
        r.last_ok = Some(Instant::now());
        r.failing.take()
    });
    if let Some(f) = was_failing {
        tracing::info!(namesrv = %addr, out_for = ?f.since.elapsed(), "NameServer has the broker again");
    }
}

/// Tells (once per change) how the table went out when it did not fit in one frame.
fn note_sent_as(sh: &Shared, addr: &str, how: SentAs) {
    let requests = match how {
        SentAs::Batches(n) => n,
        SentAs::Whole | SentAs::AutoCompressed => 1,
    };
    sh.metrics
        .namesrv
        .set_requests_per_registration(addr, requests);
    let before = sh.namesrvs.with(addr, |r| r.sent_as.replace(how));
    if before == Some(how) {
        return;
    }
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
