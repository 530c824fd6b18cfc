//! Prometheus metrics, in a registry of our own (never the global one), grouped by concern.

mod broker;
mod daemon;
mod handles;
pub mod labels;
mod namesrv;
mod registry;
mod remoting;

use std::sync::Arc;

use prometheus::{Encoder, Registry, TextEncoder};

pub use broker::BrokerMetrics;
pub use daemon::DaemonMetrics;
pub use handles::{
    AddressMetrics, HealthMetrics, IdentityMetrics, RegisterMetrics, RequestMetrics,
    SlaveMetrics, SupervisorMetrics, TopicsMetrics,
};
pub use handles::namesrv_handle;
pub use namesrv::NamesrvMetrics;
pub use remoting::RemotingMetrics;

/// Every metric the daemon exports. Its groups are private: a component writes its series
/// through its own handle (`handles.rs`), made for it where the tasks are spawned.
pub struct Metrics {
    /// The registry /metrics renders.
    registry: Registry,
    /// Labelled by NameServer: the NameServers' tasks' handle.
    namesrv: Arc<NamesrvMetrics>,
    /// The broker: up, identity, topics, slave pulls.
    broker: BrokerMetrics,
    /// The remoting client.
    remoting: RemotingMetrics,
    /// The daemon's tasks, rounds and NameServer list.
    daemon: DaemonMetrics,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let r = registry::Reg(&registry);
        Ok(Metrics {
            namesrv: Arc::new(NamesrvMetrics::new(&r)?),
            broker: BrokerMetrics::new(&r)?,
            remoting: RemotingMetrics::new(&r)?,
            daemon: DaemonMetrics::new(&r)?,
            registry,
        })
    }

    /// A scrape: the runtime's and `client`'s gauges sampled, then the registry rendered.
    pub fn scrape(&self, client: &crate::client::RemotingClient) -> String {
        self.remoting.sample(client);
        self.daemon.sample_runtime();
        self.render()
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own families into a Vec does not fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
impl Metrics {
    /// Test access: the NameServer series.
    pub(crate) fn namesrv(&self) -> &NamesrvMetrics {
        &self.namesrv
    }

    /// Test access: the broker series.
    pub(crate) fn broker(&self) -> &BrokerMetrics {
        &self.broker
    }

    /// Test access: the daemon series.
    pub(crate) fn daemon(&self) -> &DaemonMetrics {
        &self.daemon
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::labels::{Heartbeat, Registration, Unregistration};
    use super::*;

    #[test]
    fn a_forgotten_namesrv_leaves_no_series_and_others_stay() {
        let m = Metrics::new().unwrap();
        let n = &m.namesrv;
        for ns in ["a:1", "b:2"] {
            n.seed(ns);
            n.registration(ns, Registration::Ok, Duration::from_millis(100));
            n.registration(ns, Registration::Failed("timeout"), Duration::ZERO);
            n.unregistration(ns, Unregistration::Ok);
            n.set_registered(ns, true);
            n.set_requests_per_registration(ns, 1);
            n.heartbeat(ns, Heartbeat::Ok);
            n.reregistration(ns);
        }
        n.forget("a:1");
        let text = m.render();
        assert!(!text.contains("a:1"), "{text}");
        for family in [
            "registrations_total{namesrv=\"b:2\",outcome=\"timeout\"}",
            "unregistrations_total{namesrv=\"b:2\"",
            "registration_duration_seconds_count{namesrv=\"b:2\"}",
            "last_registration_success_timestamp_seconds{namesrv=\"b:2\"}",
            "registered{namesrv=\"b:2\"}",
            "registration_requests{namesrv=\"b:2\"}",
            "heartbeats_total{namesrv=\"b:2\",outcome=\"ok\"}",
            "reregistrations_total{namesrv=\"b:2\"}",
        ] {
            assert!(text.contains(family), "{family} kept:\n{text}");
        }
        assert_eq!(n.registrations_of("b:2", Registration::Ok), 1);
    }
}
