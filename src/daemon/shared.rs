//! The daemon's read-only context: handles every task uses (client, API, metrics, shutdown
//! token) and the receiving ends of the watch channels through which state travels.
//! It holds no sender: each state's [`Publisher`](super::publisher::Publisher) is its one
//! task's (publisher.rs); "register now" is the one request, and it merges.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::identity::Current;
use super::health::Verdicts;
use super::drain::{DrainCmd, DrainView};
use super::published::{Advert, Members};
use super::settings::InForce;
use crate::broker::own_config::BrokerReport;
use crate::broker::BrokerApi;
use crate::client::RemotingClient;
#[cfg(test)]
use crate::config::Config;
#[cfg(test)]
use crate::config::HealthCheck;
use crate::metrics::Metrics;

/// The seed of the waits between rounds in unit tests.
#[cfg(test)]
pub(crate) const TEST_SEED: u64 = 7;

/// Context shared by the daemon's tasks: handles and watches, no state of its own.
pub(crate) struct Shared {
    /// The configuration in force; published at start and by a reload.
    pub(crate) config: watch::Receiver<Arc<InForce>>,
    /// Where a reload reads it from.
    pub(crate) config_path: Option<PathBuf>,
    /// The registration client (also `api`'s).
    pub(crate) client: RemotingClient,
    /// Requests to NameServers and the broker.
    pub(crate) api: BrokerApi,
    /// Every metric.
    pub(crate) metrics: Arc<Metrics>,
    /// Asks the register task for a round now (merging: many asks make one round).
    pub(crate) register_now: Notify,
    /// The broker's verdict; published by the health task.
    pub(crate) verdict: watch::Receiver<Verdicts>,
    /// The broker's last GET_BROKER_CONFIG answer; published by the health task.
    pub(crate) report: watch::Receiver<Option<Arc<BrokerReport>>>,
    /// The faults a drain holds for; published by the health task.
    pub(crate) fault: watch::Receiver<super::fault::WriteFault>,
    /// Who the broker is now (`None`: nothing to register yet); published by the identity task.
    pub(crate) identity: watch::Receiver<Option<Current>>,
    /// What the broker reports itself as instead of the cluster, name or address registered
    /// (`None` while they agree); published by the identity task.
    pub(crate) elsewhere: watch::Receiver<Option<String>>,
    /// The NameServer list wanted; published by the address-refresh task.
    pub(crate) namesrv_list: watch::Receiver<Arc<crate::sources::NamesrvList>>,
    /// What each of the list's sources gives; published by the address-refresh task.
    pub(crate) namesrv_sources: watch::Receiver<Arc<crate::sources::SourcesView>>,
    /// What every NameServer is told; published by the register task.
    pub(crate) advert: watch::Receiver<Option<Arc<Advert>>>,
    /// Each listed NameServer's state as its task publishes it; the set published by the
    /// register task.
    pub(crate) members: watch::Receiver<Members>,
    /// Drain requests (from the HTTP listener), held by the register task (taken over by a
    /// restarted one).
    pub(crate) drain_requests: tokio::sync::Mutex<mpsc::Receiver<DrainCmd>>,
    /// The drain in force, and why the last one ended; published by the register task.
    pub(crate) draining: watch::Receiver<DrainView>,
    /// masterAddr from the NameServers (slave), for the slave's pulls; by the register task.
    pub(crate) master: watch::Receiver<Option<String>>,
    /// Cancelled at shutdown.
    pub(crate) token: CancellationToken,
}

/// Why the daemon is not ready (`/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotReady {
    /// The broker does not serve (or was not checked yet): the text says why.
    BrokerDown(String),
    /// The broker serves but has not said who it is.
    NoIdentity,
    /// The broker reports another cluster, name or address than the one registered.
    Elsewhere {
        /// What is registered.
        registered: String,
        /// What the broker says it is now.
        reported: String,
    },
    /// No NameServer held the broker within two intervals.
    NotRegistered,
    /// No NameServer address is known: each source that gives none, and why.
    NoNameServer(Vec<String>),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::BrokerDown(why) => f.write_str(why),
            NotReady::NoIdentity => f.write_str("the broker has not said who it is yet"),
            NotReady::Elsewhere { registered, reported } => write!(
                f,
                "the broker now reports itself as {reported}; the registration ({registered}) no longer describes it: restart rmq-registrar to follow it"
            ),
            NotReady::NotRegistered => f.write_str("not registered with any NameServer"),
            NotReady::NoNameServer(why) if why.is_empty() => {
                f.write_str("no NameServer address known yet")
            }
            NotReady::NoNameServer(why) => {
                write!(f, "no NameServer address known: {}", why.join("; "))
            }
        }
    }
}

impl Shared {
    /// The configuration in force.
    pub(crate) fn config(&self) -> Arc<InForce> {
        self.config.borrow().clone()
    }

    /// The identity registrations carry now (`None`: the broker has not said who it is yet).
    pub(crate) fn current(&self) -> Option<Current> {
        self.identity.borrow().clone()
    }

    /// Whether the broker serves (the last verdict).
    pub(crate) fn broker_up(&self) -> bool {
        self.verdict.borrow().is_up()
    }

    /// Ready: the broker serves, has an identity, and was registered with at least one
    /// NameServer within the last two intervals. Otherwise every reason why not.
    pub(crate) fn readiness(&self) -> Result<(), Vec<NotReady>> {
        let cfg = self.config();
        let mut why = Vec::new();
        let down = self
            .verdict
            .borrow()
            .down_reason(cfg.broker_check_addr(), tokio::time::Instant::now());
        if let Some(d) = down {
            why.push(NotReady::BrokerDown(d));
        } else if self.identity.borrow().is_none() {
            why.push(NotReady::NoIdentity);
        }
        if let (Some(reported), Some(cur)) = (self.elsewhere.borrow().clone(), self.current()) {
            why.push(NotReady::Elsewhere {
                registered: super::identity::describe(&cur.id),
                reported,
            });
        }
        if self.namesrv_list.borrow().addrs.is_empty() {
            why.push(NotReady::NoNameServer(
                self.namesrv_sources.borrow().empty_reasons(),
            ));
        } else if why.is_empty()
            && !self.members.borrow().any_ok_within(cfg.register.interval * 2)
        {
            why.push(NotReady::NotRegistered);
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(why)
        }
    }
}

#[cfg(test)]
impl Shared {
    /// Context for unit tests: checks off, identity from `cfg`, no NameServer; with every
    /// state's publisher, for the test to hand to the task under test or to publish itself.
    pub(crate) fn for_tests(mut cfg: Config) -> (Arc<Self>, super::publisher::Channels) {
        cfg.broker.health.check = HealthCheck::None;
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let cfg = Arc::new(InForce::unpinned(cfg).expect("TLS"));
        let api = super::api::build_api(&cfg, None).expect("api");
        let id = Current::from_config(&cfg);
        let (mut channels, sh) = super::publisher::Channels::new(&cfg, None, api, &metrics);
        // The waits between rounds are the same in every run.
        channels.register.round_seed = TEST_SEED;
        channels.identity.identity.send_replace(Some(id));
        (Arc::new(sh), channels)
    }
}
