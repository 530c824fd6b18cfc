//! The daemon itself: tasks, rounds, the NameServer list and the build.

use prometheus::{Gauge, Histogram, IntCounterVec, IntGauge, IntGaugeVec};

use super::labels::{Label, Outcome};
use super::registry::Reg;

/// Metrics of the daemon's own work.
pub struct DaemonMetrics {
    pub(crate) task_restarts: IntCounterVec,
    pub(crate) round_duration: Histogram,
    pub(crate) register_interval: Gauge,
    pub(crate) namesrv_list_size: IntGauge,
    pub(crate) address_refreshes: IntCounterVec,
    pub(crate) source_addresses: IntGaugeVec,
    pub(crate) source_failures: IntCounterVec,
    pub(crate) runtime_tasks: IntGauge,
    pub(crate) draining: IntGauge,
    pub(crate) drain_started: IntGauge,
    pub(crate) write_fault: IntGaugeVec,
}

impl DaemonMetrics {
    pub(crate) fn new(r: &Reg<'_>) -> prometheus::Result<Self> {
        let build = r.gauge_vec("build_info", "Build information", &["version"])?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let m = DaemonMetrics {
            task_restarts: r.counter_vec(
                "task_restarts_total",
                "Supervised task restarts",
                &["task"],
            )?,
            round_duration: r.histogram(
                "registration_round_duration_seconds",
                "Time of a whole registration round",
            )?,
            register_interval: r.float_gauge(
                "register_interval_seconds",
                "Configured registration interval",
            )?,
            namesrv_list_size: r.gauge("namesrv_list_size", "NameServers in the current list")?,
            address_refreshes: r.counter_vec(
                "address_refreshes_total",
                "Address-server lookups by outcome",
                &["outcome"],
            )?,
            source_addresses: r.gauge_vec(
                "namesrv_source_addresses",
                "Addresses each NameServer source gives now (namesrv.addrs, a name looked up, address_server, broker); a failing source keeps its last good answer",
                &["source"],
            )?,
            source_failures: r.counter_vec(
                "namesrv_source_failures_total",
                "Failed lookups of each NameServer source (a name that did not resolve in time, an address server that did not answer)",
                &["source"],
            )?,
            runtime_tasks: r.gauge("runtime_tasks", "Live async tasks in the daemon")?,
            draining: r.gauge(
                "draining",
                "1 while a planned drain (asked through /drain) holds: the broker routed read-only on every NameServer",
            )?,
            drain_started: r.gauge(
                "drain_started_timestamp_seconds",
                "Unix time the planned drain in force began; 0 when none",
            )?,
            write_fault: r.gauge_vec(
                "broker_write_fault",
                "1 while the broker is routed read-only because it cannot take writes (disk: past its refusal threshold, or near it; store: its store takes no writes)",
                &["reason"],
            )?,
        };
        for k in ["disk", "store"] {
            m.write_fault.with_label_values(&[k]);
        }
        for o in Outcome::ALL {
            m.address_refreshes.with_label_values(&[o.as_str()]);
        }
        Ok(m)
    }

    /// A drain began at `since`, or (None) none is in force.
    pub(super) fn set_draining(&self, since: Option<std::time::SystemTime>) {
        self.draining.set(i64::from(since.is_some()));
        let secs = since
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.drain_started.set(secs);
    }

    /// Whether a fault drain holds for each reason (`disk`, `store`).
    pub(super) fn set_write_fault(&self, reason: &str, on: bool) {
        self.write_fault.with_label_values(&[reason]).set(i64::from(on));
    }

    /// The supervised tasks: their restart series start at 0.
    pub(super) fn seed_tasks(&self, names: &[&str]) {
        for t in names {
            self.task_restarts.with_label_values(&[t]);
        }
    }

    /// Task `name` failed or panicked and is restarted.
    pub(super) fn task_restarted(&self, name: &str) {
        self.task_restarts.with_label_values(&[name]).inc();
    }

    /// One registration round took `secs`.
    pub(super) fn round_took(&self, took: std::time::Duration) {
        self.round_duration.observe(took.as_secs_f64());
    }

    /// The configured registration interval, for alert rules.
    pub(super) fn set_register_interval(&self, every: std::time::Duration) {
        self.register_interval.set(every.as_secs_f64());
    }

    /// NameServers in the current list.
    pub(super) fn set_namesrv_list_size(&self, n: usize) {
        self.namesrv_list_size
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One address-server lookup.
    pub(super) fn address_refresh(&self, outcome: Outcome) {
        self.address_refreshes
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// What each source gives now; the series of sources no longer configured are removed.
    pub(super) fn set_sources(&self, view: &crate::sources::SourcesView, gone: &[String]) {
        for s in gone {
            let _ = self.source_addresses.remove_label_values(&[s]);
            let _ = self.source_failures.remove_label_values(&[s]);
        }
        for s in &view.0 {
            let n = i64::try_from(s.addrs.len()).unwrap_or(i64::MAX);
            self.source_addresses.with_label_values(&[&s.source]).set(n);
            self.source_failures.with_label_values(&[&s.source]);
        }
    }

    /// One failed lookup of `source`.
    pub(super) fn source_failed(&self, source: &str) {
        self.source_failures.with_label_values(&[source]).inc();
    }

    /// Live async tasks, read at a scrape.
    pub(super) fn sample_runtime(&self) {
        let n = tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks());
        self.runtime_tasks.set(n as i64);
    }
}
