//! The state the daemon's tasks share: each concern in a part of its own, owned by the task that
//! changes it; configuration, identity and the master's address published in watch channels.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::identity::{self, Current};
use super::liveness::Liveness;
use super::namesrvs::Namesrvs;
use super::register::Retries;
use super::settings::InForce;
use super::topics::Topics;
use crate::broker::BrokerApi;
use crate::client::RemotingClient;
#[cfg(test)]
use crate::config::Config;
use crate::metrics::Metrics;
use crate::poison::lock;

/// State shared by the daemon's tasks.
pub(crate) struct Shared {
    /// The configuration in force; a reload publishes a new one.
    pub(crate) config: watch::Sender<Arc<InForce>>,
    /// Where a reload reads it from.
    pub(crate) config_path: Option<PathBuf>,
    /// The registration client (also `api`'s).
    pub(crate) client: RemotingClient,
    /// Requests to NameServers and the broker.
    pub(crate) api: BrokerApi,
    /// Every metric.
    pub(crate) metrics: Arc<Metrics>,
    /// The topics to register.
    pub(crate) topics: Arc<Topics>,
    /// Asks the register task for a round now.
    pub(crate) register_now: Notify,
    /// NameServers to register with again as soon as they accept a connection.
    pub(crate) retries: Arc<Retries>,
    /// What is known of each NameServer.
    pub(crate) namesrvs: Namesrvs,
    /// Last full (forced) registration round; `None` makes the next round a full one.
    last_full: Mutex<Option<Instant>>,
    /// masterAddr from the NameServers (slave), for the slave's pulls.
    pub(crate) master: watch::Sender<Option<String>>,
    /// Whether the broker serves; nothing is registered while it does not.
    pub(crate) liveness: Liveness,
    /// Who the broker is now; `None` (nothing registered) until the broker said so.
    pub(crate) identity: watch::Sender<Option<Current>>,
    /// Cancelled at shutdown.
    pub(crate) token: CancellationToken,
}

impl Shared {
    /// State for a daemon that starts with `cfg`, registering through `api`.
    pub(crate) fn new(
        cfg: Arc<InForce>,
        config_path: Option<PathBuf>,
        api: BrokerApi,
        metrics: Arc<Metrics>,
        retries: Arc<Retries>,
    ) -> Self {
        let client = api.client().clone();
        Shared {
            liveness: Liveness::new(cfg.broker.health.check),
            identity: watch::Sender::new(None),
            config: watch::Sender::new(cfg),
            config_path,
            namesrvs: Namesrvs::new(metrics.clone(), client.clone()),
            client,
            api,
            metrics,
            topics: Arc::default(),
            register_now: Notify::new(),
            retries,
            last_full: Mutex::new(None),
            master: watch::Sender::new(None),
            token: CancellationToken::new(),
        }
    }

    /// The configuration in force.
    pub(crate) fn config(&self) -> Arc<InForce> {
        self.config.borrow().clone()
    }

    /// The identity registrations carry now (`None`: the broker has not said who it is yet).
    pub(crate) fn current(&self) -> Option<Current> {
        self.identity.borrow().clone()
    }

    /// `f` of the identity registrations carry now, borrowed (the heartbeat reads it every
    /// beat and must not copy it).
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(Option<&Current>) -> R) -> R {
        f(self.identity.borrow().as_ref())
    }

    /// When the last full round went out.
    pub(crate) fn last_full(&self) -> Option<Instant> {
        *lock(&self.last_full)
    }

    /// Records a full round (`None`: the next round must be a full one).
    pub(crate) fn set_last_full(&self, at: Option<Instant>) {
        *lock(&self.last_full) = at;
    }

    /// Publishes a new identity; anything registered that changed advances the data version
    /// (NameServers update their tables only on a new version) and registers at once.
    pub(crate) async fn set_identity(self: &Arc<Self>, new: Option<Current>) -> identity::Change {
        let before = self.identity.send_replace(new.clone());
        let Some(new) = new else {
            self.metrics.broker.set_id(None);
            return identity::Change::None;
        };
        self.metrics.broker.set_id(Some(new.id.id));
        let change = new.change_from(before.as_ref());
        match (change, &before) {
            (identity::Change::None, _) => return change,
            (identity::Change::Role, Some(old)) => {
                self.metrics.broker.identity_changed();
                tracing::info!(
                    old = %identity::describe(&old.id), new = %identity::describe(&new.id),
                    old_role = old.role.map_or("", |r| r.as_str()), new_role = new.role.map_or("", |r| r.as_str()),
                    "the broker's id or role changed: registering the new identity with every NameServer"
                );
            }
            (identity::Change::First, _) if new.role.is_some() => {
                tracing::info!(identity = %identity::describe(&new.id), role = new.role.map_or("", |r| r.as_str()), "identity from the broker");
            }
            _ => {}
        }
        if change == identity::Change::First {
            // The first round registers it: at start, or when the broker first serves.
            return change;
        }
        self.topics.update(|t| t.advance_version()).await;
        self.set_last_full(None);
        self.register_now.notify_one();
        change
    }

    /// Ready: the broker serves and was registered with at least one NameServer within the
    /// last two intervals. Otherwise, why not.
    pub(crate) fn readiness(&self) -> Result<(), String> {
        let cfg = self.config();
        if let Some(why) = self.liveness.down_reason(cfg.broker_check_addr()) {
            return Err(why);
        }
        let window = cfg.register.interval * 2;
        if self.namesrvs.any_ok_within(window) {
            Ok(())
        } else {
            Err("not registered with any NameServer".into())
        }
    }
}

#[cfg(test)]
impl Shared {
    /// State for unit tests: checks off, identity from `cfg`, no NameServer.
    pub(crate) fn for_tests(mut cfg: Config) -> Arc<Self> {
        cfg.broker.health.check = crate::config::HealthCheck::None;
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let cfg = InForce::unpinned(cfg).expect("TLS");
        let api = super::api::build_api(&cfg, None).expect("api");
        let id = Current::from_config(&cfg);
        let sh = Shared::new(
            Arc::new(cfg),
            None,
            api,
            metrics,
            Arc::default(),
        );
        sh.identity.send_replace(Some(id));
        Arc::new(sh)
    }
}

#[cfg(test)]
mod tests;
