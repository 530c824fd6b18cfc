//! Per-NameServer metrics: every family here carries a `namesrv` label, so that a NameServer
//! leaving the list is forgotten by one call that lists them right here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec};

use super::labels::{Audit, Heartbeat, Label, Registration, RouteKind, Unregistration};
use super::registry::Reg;

/// Metrics labelled by NameServer.
pub struct NamesrvMetrics {
    registrations: IntCounterVec,
    registration_duration: HistogramVec,
    last_success: IntGaugeVec,
    registered: IntGaugeVec,
    unregistrations: IntCounterVec,
    registration_requests: IntGaugeVec,
    heartbeats: IntCounterVec,
    reregistrations: IntCounterVec,
    drain_reassertions: IntCounterVec,
    route_mismatch: IntGaugeVec,
    route_mismatch_since: IntGaugeVec,
    route_conflict: IntGaugeVec,
    route_restores: IntCounterVec,
    route_audits: IntCounterVec,
}

impl NamesrvMetrics {
    pub(crate) fn new(r: &Reg<'_>) -> prometheus::Result<Self> {
        let ns = &["namesrv"];
        let ns_outcome = &["namesrv", "outcome"];
        Ok(NamesrvMetrics {
            registrations: r.counter_vec(
                "registrations_total",
                "Registrations by NameServer and outcome",
                ns_outcome,
            )?,
            registration_duration: r.histogram_vec(
                "registration_duration_seconds",
                "Time one NameServer took to register the broker",
                ns,
            )?,
            last_success: r.gauge_vec(
                "last_registration_success_timestamp_seconds",
                "Unix time of the last successful registration",
                ns,
            )?,
            registered: r.gauge_vec(
                "registered",
                "1 while the broker is registered with the NameServer",
                ns,
            )?,
            unregistrations: r.counter_vec(
                "unregistrations_total",
                "Unregistrations by outcome",
                ns_outcome,
            )?,
            registration_requests: r.gauge_vec(
                "registration_requests",
                "Requests the last registration took: 1, or the batches of a split one",
                ns,
            )?,
            heartbeats: r.counter_vec(
                "heartbeats_total",
                "Heartbeats (QUERY_DATA_VERSION) by NameServer and outcome",
                ns_outcome,
            )?,
            reregistrations: r.counter_vec(
                "reregistrations_total",
                "Full registrations because the NameServer lost the broker (a heartbeat found it without, or it came back after its connection dropped)",
                ns,
            )?,
            drain_reassertions: r.counter_vec(
                "drain_reassertions_total",
                "Read-only registrations (and wipes) again during a drain because the NameServer lost the read-only version",
                ns,
            )?,
            route_mismatch: r.gauge_vec(
                "route_mismatch",
                "1 while the last route read-back saw the route differ from what is advertised, by kind",
                &["namesrv", "kind"],
            )?,
            route_mismatch_since: r.gauge_vec(
                "route_mismatch_since_timestamp_seconds",
                "Unix time the route read-backs began to see the route differ (0 while it matches)",
                ns,
            )?,
            route_conflict: r.gauge_vec(
                "route_conflict",
                "1 while another address claims the broker's id and nothing contends (split-brain, or the NameServer keeps the other), until 5 min after the last sighting",
                ns,
            )?,
            route_restores: r.counter_vec(
                "route_restores_total",
                "Registrations (or wipes) sent because the route read-back saw the route differ, by kind",
                &["namesrv", "kind"],
            )?,
            route_audits: r.counter_vec(
                "route_audits_total",
                "Route read-backs by NameServer and outcome",
                ns_outcome,
            )?,
        })
    }

    /// A NameServer joined the list: the series alert rules take `increase()` of start at 0
    /// (a series that appears at 1 is invisible to it).
    pub fn seed(&self, addr: &str) {
        for o in Unregistration::SEEDED {
            self.unregistrations.with_label_values(&[addr, o.as_str()]);
        }
        self.reregistrations.with_label_values(&[addr]);
        self.drain_reassertions.with_label_values(&[addr]);
        for o in Heartbeat::SEEDED {
            self.heartbeats.with_label_values(&[addr, o.as_str()]);
        }
        for k in RouteKind::ALL {
            self.route_mismatch.with_label_values(&[addr, k.as_str()]);
        }
        for k in RouteKind::RESTORED {
            self.route_restores.with_label_values(&[addr, k.as_str()]);
        }
        for o in Audit::ALL {
            self.route_audits.with_label_values(&[addr, o.as_str()]);
        }
        self.route_conflict.with_label_values(&[addr]);
        self.route_mismatch_since.with_label_values(&[addr]);
    }

    /// Since when the read-backs see the route differ (None: it matches).
    pub fn set_route_mismatch_since(&self, addr: &str, since: Option<SystemTime>) {
        let secs = since
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        self.route_mismatch_since
            .with_label_values(&[addr])
            .set(secs);
    }

    /// One route read-back's outcome.
    pub fn route_audit(&self, addr: &str, outcome: Audit) {
        self.route_audits
            .with_label_values(&[addr, outcome.as_str()])
            .inc();
    }

    /// What the last read-back saw: 1 for each kind in `seen`, 0 for the others.
    pub fn set_route_mismatch(&self, addr: &str, seen: impl Fn(RouteKind) -> bool) {
        for k in RouteKind::ALL {
            self.route_mismatch
                .with_label_values(&[addr, k.as_str()])
                .set(i64::from(seen(*k)));
        }
    }

    /// A conflict episode holds (or not).
    pub fn set_route_conflict(&self, addr: &str, on: bool) {
        self.route_conflict
            .with_label_values(&[addr])
            .set(i64::from(on));
    }

    /// A restore of `kind` went out.
    pub fn route_restore(&self, addr: &str, kind: RouteKind) {
        self.route_restores
            .with_label_values(&[addr, kind.as_str()])
            .inc();
    }

    /// One registration's outcome and duration.
    pub fn registration(&self, addr: &str, outcome: Registration, took: Duration) {
        self.registrations
            .with_label_values(&[addr, outcome.as_str()])
            .inc();
        self.registration_duration
            .with_label_values(&[addr])
            .observe(took.as_secs_f64());
    }

    /// The NameServer holds the broker now (`true`, stamped with the time) or not.
    pub fn set_registered(&self, addr: &str, holds: bool) {
        self.registered
            .with_label_values(&[addr])
            .set(i64::from(holds));
        if holds {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            self.last_success.with_label_values(&[addr]).set(now);
        }
    }

    /// Requests the last registration took (1, or the batches of a split one).
    pub fn set_requests_per_registration(&self, addr: &str, requests: usize) {
        self.registration_requests
            .with_label_values(&[addr])
            .set(i64::try_from(requests).unwrap_or(i64::MAX));
    }

    /// One unregistration's outcome.
    pub fn unregistration(&self, addr: &str, outcome: Unregistration) {
        self.unregistrations
            .with_label_values(&[addr, outcome.as_str()])
            .inc();
    }

    /// One heartbeat's outcome.
    pub fn heartbeat(&self, addr: &str, outcome: Heartbeat) {
        self.heartbeats
            .with_label_values(&[addr, outcome.as_str()])
            .inc();
    }

    /// A full registration because the NameServer lost the broker.
    pub fn reregistration(&self, addr: &str) {
        self.reregistrations.with_label_values(&[addr]).inc();
    }

    /// During a drain the NameServer lost the read-only version: asserted again.
    pub fn drain_reassertion(&self, addr: &str) {
        self.drain_reassertions.with_label_values(&[addr]).inc();
    }

    /// Drops every series of NameServer `addr` (it left the list): in Kubernetes NameServer
    /// addresses come and go, and their series must not pile up.
    pub fn forget(&self, addr: &str) {
        remove_where(&self.registrations, addr);
        remove_where(&self.registration_duration, addr);
        remove_where(&self.last_success, addr);
        remove_where(&self.registered, addr);
        remove_where(&self.unregistrations, addr);
        remove_where(&self.registration_requests, addr);
        remove_where(&self.heartbeats, addr);
        remove_where(&self.reregistrations, addr);
        remove_where(&self.drain_reassertions, addr);
        remove_where(&self.route_mismatch, addr);
        remove_where(&self.route_conflict, addr);
        remove_where(&self.route_mismatch_since, addr);
        remove_where(&self.route_restores, addr);
        remove_where(&self.route_audits, addr);
    }

    /// Test access: restores of `kind`.
    #[cfg(test)]
    pub(crate) fn route_restores_of(&self, addr: &str, kind: RouteKind) -> u64 {
        self.route_restores
            .with_label_values(&[addr, kind.as_str()])
            .get()
    }

    /// Test access: a counter's value.
    #[cfg(test)]
    pub(crate) fn registrations_of(&self, addr: &str, outcome: Registration) -> u64 {
        self.registrations
            .with_label_values(&[addr, outcome.as_str()])
            .get()
    }

    /// Test access: heartbeats with `outcome` (`ok`, `changed`, `skipped`, …).
    #[cfg(test)]
    pub(crate) fn heartbeats_of(&self, addr: &str, outcome: &str) -> u64 {
        self.heartbeats.with_label_values(&[addr, outcome]).get()
    }

    /// Test access: drain re-assertions.
    #[cfg(test)]
    pub(crate) fn drain_reassertions_of(&self, addr: &str) -> u64 {
        self.drain_reassertions.with_label_values(&[addr]).get()
    }
}

/// Removes every series of `vec` whose `namesrv` label is `addr`, whatever its other labels.
fn remove_where<B: prometheus::core::MetricVecBuilder>(
    vec: &prometheus::core::MetricVec<B>,
    addr: &str,
) {
    use prometheus::core::Collector;
    for family in vec.collect() {
        for m in family.get_metric() {
            let pairs = m.get_label();
            if !pairs
                .iter()
                .any(|p| p.get_name() == "namesrv" && p.get_value() == addr)
            {
                continue;
            }
            let labels: std::collections::HashMap<&str, &str> = pairs
                .iter()
                .map(|p| (p.get_name(), p.get_value()))
                .collect();
            let _ = vec.remove(&labels);
        }
    }
}
