//! The one writer of each state, by construction: a state's channel is made once, in
//! [`Channels::new`], where the tasks are spawned; its [`Publisher`] (not `Clone`) goes to the
//! one task that publishes it (the task's restart spec holds it, each run borrows it through
//! an `Arc`), and its receiving end to the shared context, which holds receivers only. A
//! second writer would need a second `Publisher` of the same state, and only `Channels::new`
//! makes them (tests/it/layering.rs reads the source for it). A publisher outlives its task's
//! restarts, so its receivers never see the channel close.

use std::sync::Arc;

use std::path::PathBuf;

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::identity::Current;
use super::health::Verdicts;
use super::drain::{DrainCmd, DrainView};
use super::fault::WriteFault;
use super::published::{Advert, Members};
use super::settings::InForce;
use super::shared::Shared;
use super::topics::{Inbox, MasterTopics, TopicsAsk};
use crate::sources::{NamesrvList, SourcesView};
use crate::broker::own_config::BrokerReport;
use crate::broker::BrokerApi;
use crate::metrics::{
    namesrv_handle, AddressMetrics, HealthMetrics, IdentityMetrics, Metrics, NamesrvMetrics,
    RegisterMetrics, RequestMetrics, SlaveMetrics, SupervisorMetrics, TopicsMetrics,
};

/// The sending end of one state's watch channel, held by its one publisher.
#[derive(Debug)]
pub(crate) struct Publisher<T>(watch::Sender<T>);

impl<T> Publisher<T> {
    /// A new state with its first value: its publisher and a receiver.
    fn new(init: T) -> (Publisher<T>, watch::Receiver<T>) {
        let (tx, rx) = watch::channel(init);
        (Publisher(tx), rx)
    }

    /// Publishes `value`, returning the one it replaces.
    pub(crate) fn send_replace(&self, value: T) -> T {
        self.0.send_replace(value)
    }

    /// Changes the value in place and tells every receiver.
    pub(crate) fn send_modify(&self, change: impl FnOnce(&mut T)) {
        self.0.send_modify(change);
    }

    /// Changes the value in place; receivers are told only when `change` says it changed.
    pub(crate) fn send_if_modified(&self, change: impl FnOnce(&mut T) -> bool) -> bool {
        self.0.send_if_modified(change)
    }
}

/// A receiver of the state `rx` follows, with its current value taken as seen: `changed()`
/// wakes on the next publication.
pub(crate) fn follow<T>(rx: &watch::Receiver<T>) -> watch::Receiver<T> {
    let mut r = rx.clone();
    r.mark_unchanged();
    r
}

/// What the health task publishes.
pub(crate) struct HealthOut {
    /// The broker's verdict.
    pub(crate) verdict: Publisher<Verdicts>,
    /// The broker's last GET_BROKER_CONFIG answer.
    pub(crate) report: Publisher<Option<Arc<BrokerReport>>>,
    /// The faults a drain holds for (the broker cannot take writes).
    pub(crate) fault: Publisher<WriteFault>,
    /// Its series.
    pub(crate) metrics: HealthMetrics,
    /// Its own client's request counts.
    pub(crate) requests: Arc<RequestMetrics>,
}

/// What the identity task publishes.
pub(crate) struct IdentityOut {
    /// Who the broker is now.
    pub(crate) identity: Publisher<Option<Current>>,
    /// What the broker reports itself as instead of what is registered.
    pub(crate) elsewhere: Publisher<Option<String>>,
    /// Its series.
    pub(crate) metrics: IdentityMetrics,
}

/// What the register task publishes (through its rounds, its fleet and its drain).
pub(crate) struct RegisterOut {
    /// What every NameServer is told.
    pub(crate) advert: Publisher<Option<Arc<Advert>>>,
    /// The listed NameServers' statuses.
    pub(crate) members: Publisher<Members>,
    /// The drain in force, and why the last one ended.
    pub(crate) draining: Publisher<DrainView>,
    /// masterAddr from the NameServers (a slave's pulls).
    pub(crate) master: Publisher<Option<String>>,
    /// Its series (its rounds', its drain's and its fleet's).
    pub(crate) metrics: RegisterMetrics,
    /// Its NameServers' tasks' series, handed to each by the fleet.
    pub(crate) namesrv: Arc<NamesrvMetrics>,
    /// Where its waits between rounds are drawn from (random; fixed in tests).
    pub(crate) round_seed: u64,
}

/// What the address-refresh task publishes.
pub(crate) struct AddressOut {
    /// The NameServer list wanted.
    pub(crate) namesrv_list: Publisher<Arc<NamesrvList>>,
    /// What each of its sources gives.
    pub(crate) namesrv_sources: Publisher<Arc<SourcesView>>,
    /// Its series.
    pub(crate) metrics: AddressMetrics,
}

/// What the slave sync hands on.
pub(crate) struct SlaveOut {
    /// The master's topics, to the topics task.
    pub(crate) master_topics: MasterTopics,
    /// Its series.
    pub(crate) metrics: SlaveMetrics,
}

/// Every state's publisher, each to be moved into its one task.
pub(crate) struct Channels {
    /// The configuration in force: the reload (SIGHUP) publishes it.
    pub(crate) config: Publisher<Arc<InForce>>,
    /// The health task's.
    pub(crate) health: HealthOut,
    /// The identity task's.
    pub(crate) identity: IdentityOut,
    /// The address-refresh task's.
    pub(crate) addresses: AddressOut,
    /// The register task's.
    pub(crate) register: RegisterOut,
    /// Drain requests, to the register task: the HTTP task's sending end.
    pub(crate) drains: mpsc::Sender<DrainCmd>,
    /// The topics task's inbox, with the topic state.
    pub(crate) topics: Inbox,
    /// The register task's asks of the topics task.
    pub(crate) topics_ask: TopicsAsk,
    /// The slave sync's.
    pub(crate) slave: SlaveOut,
    /// The supervisor's series.
    pub(crate) supervisor: SupervisorMetrics,
}

impl Channels {
    /// Every channel, with the values a daemon starting with `cfg` begins from, and each
    /// component's handle on its series of `metrics`; and the shared context that holds the
    /// channels' receiving ends (and no sender), registering through `api`.
    pub(crate) fn new(
        cfg: &Arc<InForce>,
        config_path: Option<PathBuf>,
        api: BrokerApi,
        metrics: &Arc<Metrics>,
    ) -> (Channels, Shared) {
        let (config, config_rx) = Publisher::new(cfg.clone());
        let unchecked = cfg.broker.health.check == crate::config::HealthCheck::None;
        let (verdict, verdict_rx) = Publisher::new(Verdicts::new(unchecked));
        let (report, report_rx) = Publisher::new(None);
        let (fault, fault_rx) = Publisher::new(WriteFault::default());
        let (identity, identity_rx) = Publisher::new(None);
        let (elsewhere, elsewhere_rx) = Publisher::new(None);
        let (namesrv_list, namesrv_list_rx) = Publisher::new(first_list(cfg));
        let (namesrv_sources, namesrv_sources_rx) = Publisher::new(Arc::default());
        let (advert, advert_rx) = Publisher::new(None);
        let (members, members_rx) = Publisher::new(Members::default());
        let (draining, draining_rx) = Publisher::new(DrainView::default());
        let (master, master_rx) = Publisher::new(None);
        let (drains, drain_requests) = mpsc::channel(8);
        let (topics, topics_ask, master_topics) =
            super::topics::inbox(TopicsMetrics::new(metrics));
        let channels = Channels {
            config,
            health: HealthOut {
                verdict,
                report,
                fault,
                metrics: HealthMetrics::new(metrics),
                requests: Arc::new(RequestMetrics::new(metrics)),
            },
            identity: IdentityOut {
                identity,
                elsewhere,
                metrics: IdentityMetrics::new(metrics),
            },
            addresses: AddressOut::new(namesrv_list, namesrv_sources, metrics),
            register: RegisterOut {
                advert,
                members,
                draining,
                master,
                metrics: RegisterMetrics::new(metrics),
                namesrv: namesrv_handle(metrics),
                round_seed: fastrand::u64(..),
            },
            drains,
            topics,
            topics_ask,
            slave: SlaveOut {
                master_topics,
                metrics: SlaveMetrics::new(metrics),
            },
            supervisor: SupervisorMetrics::new(metrics),
        };
        let shared = Shared {
            config: config_rx,
            config_path,
            client: api.client().clone(),
            api,
            metrics: metrics.clone(),
            register_now: Notify::new(),
            verdict: verdict_rx,
            report: report_rx,
            fault: fault_rx,
            identity: identity_rx,
            elsewhere: elsewhere_rx,
            namesrv_list: namesrv_list_rx,
            namesrv_sources: namesrv_sources_rx,
            advert: advert_rx,
            members: members_rx,
            drain_requests: tokio::sync::Mutex::new(drain_requests),
            draining: draining_rx,
            master: master_rx,
            token: CancellationToken::new(),
        };
        (channels, shared)
    }
}

/// The list a daemon starts from: the addresses as written, until the names' first answers.
fn first_list(cfg: &InForce) -> Arc<NamesrvList> {
    let plan = crate::sources::Plan::new(cfg, &[]);
    Arc::new(crate::sources::Sources::default().list(&plan))
}

impl AddressOut {
    fn new(
        namesrv_list: Publisher<Arc<NamesrvList>>,
        namesrv_sources: Publisher<Arc<SourcesView>>,
        metrics: &Arc<Metrics>,
    ) -> Self {
        AddressOut {
            namesrv_list,
            namesrv_sources,
            metrics: AddressMetrics::new(metrics),
        }
    }
}
