//! Each component's own handle on the series it writes, made for it by the app layer: a task
//! can write only what its handle offers (the groups' setters are private to this module).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::labels::{Outcome, Pull, Reload};
use super::{Metrics, NamesrvMetrics};

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(Arc<Metrics>);

        impl $name {
            /// The handle on `metrics`' series of this component.
            pub fn new(metrics: &Arc<Metrics>) -> Self {
                $name(metrics.clone())
            }
        }
    };
}

handle!(
    /// The health task's: whether the broker serves, and each check.
    HealthMetrics
);
handle!(
    /// The identity task's: the id registered, a broker elsewhere, identity changes.
    IdentityMetrics
);
handle!(
    /// The topics task's: every read of a topic source.
    TopicsMetrics
);
handle!(
    /// The register task's (its rounds, its drain and its fleet): topics registered, round
    /// times, the interval, the drain, the NameServer list's size.
    RegisterMetrics
);
handle!(
    /// The slave sync's: each pulled document.
    SlaveMetrics
);
handle!(
    /// The address-refresh task's: each fetch of the list.
    AddressMetrics
);
handle!(
    /// The supervisor's: task restarts.
    SupervisorMetrics
);

impl HealthMetrics {
    /// Whether the broker may be advertised.
    pub fn set_up(&self, up: bool) {
        self.0.broker.set_up(up);
    }

    /// One health check's outcome.
    pub fn health_check(&self, outcome: Outcome) {
        self.0.broker.health_check(outcome);
    }

    /// What the broker said of its store.
    pub fn set_store(&self, s: &crate::broker::StoreHealth) {
        self.0.broker.set_store(s);
    }

    /// The broker's refusal threshold and the margin below it, in percent.
    pub fn set_disk_levels(&self, threshold: u32, margin: u32) {
        self.0.broker.set_disk_levels(threshold, margin);
    }
}

impl IdentityMetrics {
    /// The id registered now (`None`: none yet).
    pub fn set_id(&self, id: Option<u64>) {
        self.0.broker.set_id(id);
    }

    /// Whether the broker reports another cluster, name or address than the one registered.
    pub fn set_elsewhere(&self, elsewhere: bool) {
        self.0.broker.set_elsewhere(elsewhere);
    }

    /// The broker's id or role changed and was followed.
    pub fn identity_changed(&self) {
        self.0.broker.identity_changed();
    }
}

impl TopicsMetrics {
    /// One read of the topic source.
    pub fn topic_reload(&self, outcome: Reload) {
        self.0.broker.topic_reload(outcome);
    }
}

impl RegisterMetrics {
    /// Topics in the table registered now.
    pub fn set_topics(&self, n: usize) {
        self.0.broker.set_topics(n);
    }

    /// One round's duration.
    pub fn round_took(&self, took: Duration) {
        self.0.daemon.round_took(took);
    }

    /// The interval in force.
    pub fn set_register_interval(&self, every: Duration) {
        self.0.daemon.set_register_interval(every);
    }

    /// The planned drain in force (since when), or none.
    pub fn set_draining(&self, since: Option<SystemTime>) {
        self.0.daemon.set_draining(since);
    }

    /// Whether the broker is routed read-only for fault `reason` (`disk`, `store`).
    pub fn set_write_fault(&self, reason: &str, on: bool) {
        self.0.daemon.set_write_fault(reason, on);
    }

    /// NameServers listed now.
    pub fn set_namesrv_list_size(&self, n: usize) {
        self.0.daemon.set_namesrv_list_size(n);
    }
}

impl SlaveMetrics {
    /// The error series start at 0 for each document `kind`, so that the first failure is
    /// seen.
    pub fn seed(&self, kinds: &[&str]) {
        self.0.broker.seed_slave_pulls(kinds);
    }

    /// One pulled document's outcome.
    pub fn slave_pull(&self, kind: &str, outcome: Pull) {
        self.0.broker.slave_pull(kind, outcome);
    }
}

impl AddressMetrics {
    /// One fetch of the list from the address server.
    pub fn address_refresh(&self, outcome: Outcome) {
        self.0.daemon.address_refresh(outcome);
    }

    /// What each NameServer source gives now (`gone`: sources no longer configured).
    pub fn set_sources(&self, view: &crate::sources::SourcesView, gone: &[String]) {
        self.0.daemon.set_sources(view, gone);
    }

    /// One failed lookup of `source`.
    pub fn source_failed(&self, source: &str) {
        self.0.daemon.source_failed(source);
    }
}

impl SupervisorMetrics {
    /// Every task's restart series, at 0.
    pub fn seed_tasks(&self, names: &[&str]) {
        self.0.daemon.seed_tasks(names);
    }

    /// A task was restarted.
    pub fn task_restarted(&self, name: &str) {
        self.0.daemon.task_restarted(name);
    }
}

handle!(
    /// A remoting client's observer: every request by code and outcome.
    RequestMetrics
);

impl RequestMetrics {
    /// One request's outcome (`ok` or the error's kind).
    pub fn request(&self, code: i32, outcome: &'static str, timed_out: bool) {
        self.0.remoting.request(code, outcome, timed_out);
    }
}

/// The NameServers' tasks' handle (the fleet hands it to each): their series, labelled by
/// NameServer.
pub fn namesrv_handle(metrics: &Metrics) -> Arc<NamesrvMetrics> {
    metrics.namesrv.clone()
}
