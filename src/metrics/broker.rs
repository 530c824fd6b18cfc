//! The broker's side: whether it serves, who it is, its topics, and a slave's pulls.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

use super::labels::{Label, Outcome, Pull, Reload};
use super::registry::Reg;

/// Metrics about the broker.
pub struct BrokerMetrics {
    pub(crate) up: IntGauge,
    pub(crate) health_checks: IntCounterVec,
    pub(crate) identity_changes: IntCounter,
    pub(crate) id: IntGauge,
    pub(crate) elsewhere: IntGauge,
    pub(crate) topics: IntGauge,
    pub(crate) topic_reloads: IntCounterVec,
    pub(crate) slave_pulls: IntCounterVec,
    pub(crate) disk_ratio: prometheus::GaugeVec,
    pub(crate) disk_threshold: prometheus::Gauge,
    pub(crate) disk_margin: prometheus::Gauge,
    pub(crate) store_writable: IntGaugeVec,
}

impl BrokerMetrics {
    pub(crate) fn new(r: &Reg<'_>) -> prometheus::Result<Self> {
        let m = BrokerMetrics {
            up: r.gauge(
                "broker_up",
                "1 while the broker answers its health checks and may be advertised",
            )?,
            health_checks: r.counter_vec(
                "broker_health_checks_total",
                "Broker health checks by outcome",
                &["outcome"],
            )?,
            identity_changes: r.counter(
                "identity_changes_total",
                "Changes of the broker's id or role followed (identity from the broker)",
            )?,
            id: r.gauge(
                "broker_id",
                "The broker id registered now; -1 while the broker has none",
            )?,
            elsewhere: r.gauge(
                "broker_identity_mismatch",
                "1 while the broker reports another cluster, name or address than the one registered",
            )?,
            topics: r.gauge("topics", "Topics in the registered table")?,
            topic_reloads: r.counter_vec(
                "topic_reloads_total",
                "Topic-source reloads by outcome",
                &["outcome"],
            )?,
            slave_pulls: r.counter_vec(
                "slave_pulls_total",
                "Slave pulls from the master by kind and outcome",
                &["kind", "outcome"],
            )?,
            disk_ratio: r.float_gauge_vec(
                "broker_disk_ratio",
                "The broker's store disk use as it reports it (GET_BROKER_RUNTIME_INFO), by store: commitlog, consumequeue; absent while it reports none",
                &["store"],
            )?,
            disk_threshold: r.float_gauge(
                "broker_disk_threshold_ratio",
                "The disk use above which the broker refuses writes (its diskSpaceWarningLevelRatio, or fault.disk_threshold)",
            )?,
            disk_margin: r.float_gauge(
                "broker_disk_margin_ratio",
                "fault.disk_margin as a ratio: how far below the threshold the disk counts as near full",
            )?,
            store_writable: r.gauge_vec(
                "broker_store_writable",
                "1 while the broker says its store takes writes (storeWriteable; the Rust broker says it, Java does not), 0 while it says not",
                &[],
            )?,
        };
        for o in Outcome::ALL {
            m.health_checks.with_label_values(&[o.as_str()]);
        }
        Ok(m)
    }

    /// What the broker said of its store: a ratio it does not report has no series.
    pub(super) fn set_store(&self, s: &crate::broker::StoreHealth) {
        for (store, ratio) in [("commitlog", s.commitlog), ("consumequeue", s.consumequeue)] {
            match ratio {
                Some(r) => self.disk_ratio.with_label_values(&[store]).set(r),
                None => {
                    let _ = self.disk_ratio.remove_label_values(&[store]);
                }
            }
        }
        match s.writable {
            Some(w) => self.store_writable.with_label_values(&[]).set(i64::from(w)),
            None => {
                let _ = self.store_writable.remove_label_values(&[]);
            }
        }
    }

    /// The broker's refusal threshold and the margin below it, in percent.
    pub(super) fn set_disk_levels(&self, threshold: u32, margin: u32) {
        self.disk_threshold.set(f64::from(threshold) / 100.0);
        self.disk_margin.set(f64::from(margin) / 100.0);
    }

    /// Whether the broker may be advertised.
    pub(super) fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// One health check's outcome.
    pub(super) fn health_check(&self, outcome: Outcome) {
        self.health_checks
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// The id registered now (`None`: the broker has none yet, shown as -1).
    pub(super) fn set_id(&self, id: Option<u64>) {
        self.id
            .set(id.map_or(-1, |id| i64::try_from(id).unwrap_or(i64::MAX)));
    }

    /// Whether the broker reports another cluster, name or address than the one registered.
    pub(super) fn set_elsewhere(&self, elsewhere: bool) {
        self.elsewhere.set(i64::from(elsewhere));
    }

    /// The broker's id or role changed and was followed.
    pub(super) fn identity_changed(&self) {
        self.identity_changes.inc();
    }

    /// Topics in the table registered now.
    pub(super) fn set_topics(&self, n: usize) {
        self.topics.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One re-read of the topic source.
    pub(super) fn topic_reload(&self, outcome: Reload) {
        self.topic_reloads
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// A slave's error series start at 0 for each document `kind`, so that the first failure
    /// is seen.
    pub(super) fn seed_slave_pulls(&self, kinds: &[&str]) {
        for kind in kinds {
            self.slave_pulls
                .with_label_values(&[kind, Pull::Error.as_str()]);
        }
    }

    /// One pulled document's outcome.
    pub(super) fn slave_pull(&self, kind: &str, outcome: Pull) {
        self.slave_pulls
            .with_label_values(&[kind, outcome.as_str()])
            .inc();
    }
}
