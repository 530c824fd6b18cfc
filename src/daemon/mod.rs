//! The daemon: supervised tasks that keep the broker registered, and a clean goodbye.

mod addresses;
pub mod files;
mod health;
mod heartbeat;
mod http;
mod identity;
mod register;
pub mod slave;
pub mod supervisor;
pub mod topics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::broker::body::TopicConfigWrapper;
use crate::broker::{BrokerApi, CallObserver};
use crate::client::{ChannelEvent, ChannelEventKind, ChannelEventListener, RemotingClient};
use crate::config::{self, Config, IdentitySource};
use crate::metrics::Metrics;
use crate::poison::{lock, read, write};
use supervisor::Supervisor;
use topics::TopicState;

/// What the outside world asks of a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Re-read the configuration (SIGHUP).
    Reload,
    /// Unregister and exit (SIGTERM, SIGINT).
    Stop,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// TLS is on but the configuration carries no TLS client (never validated).
    #[error("TLS")]
    Tls(#[from] crate::tls::TlsError),
    /// The metrics registry refused a metric (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// State shared by the daemon's tasks.
pub(crate) struct Shared {
    config: RwLock<Arc<Config>>,
    config_path: Option<PathBuf>,
    client: RemotingClient,
    api: BrokerApi,
    metrics: Arc<Metrics>,
    /// Only ever locked on blocking threads (see [`Shared::update_topics`]): reading and
    /// parsing a large file under it must never stall an async worker.
    topics: Arc<Mutex<TopicState>>,
    /// The table to register, published after every change; what async code reads.
    table: RwLock<Arc<TopicConfigWrapper>>,
    register_now: Notify,
    /// NameServers to register with again as soon as they accept a connection.
    retry: mpsc::UnboundedSender<String>,
    status: Mutex<Status>,
    /// Whether the broker serves; nothing is registered while it does not.
    liveness: health::Liveness,
    /// Who the broker is now; `None` (nothing registered) until the broker said so.
    identity: tokio::sync::watch::Sender<Option<identity::Current>>,
    token: CancellationToken,
}

/// What the register task learned.
#[derive(Default)]
struct Status {
    /// Last successful registration per NameServer.
    last_ok: HashMap<String, Instant>,
    /// masterAddr from the NameServers (slave).
    master_addr: Option<String>,
    /// Last full (forced) registration.
    last_full: Option<Instant>,
    /// NameServers whose registration fails, for the log's once-then-reminders rule.
    failing: HashMap<String, Failing>,
    /// How the last registration with each NameServer went out (logged when it changes).
    sent_as: HashMap<String, crate::broker::SentAs>,
    /// The identity each NameServer was last registered with.
    registered_as: HashMap<String, crate::broker::BrokerIdentity>,
    /// Each NameServer's heartbeat state.
    beats: HashMap<String, heartbeat::BeatState>,
}

/// A NameServer that keeps failing: since when, and when the log last said so.
struct Failing {
    since: Instant,
    reminded: Instant,
    /// The last failure was "not there" (refused, reset): a dropped connection is worth an
    /// immediate retry. Otherwise (it took the connection but not the request) the next round
    /// tries again: retrying at once would make a stalled peer a retry loop.
    retry_soon: bool,
}

impl Shared {
    fn config(&self) -> Arc<Config> {
        read(&self.config).clone()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        lock(&self.status)
    }

    /// The identity registrations carry now (`None`: the broker has not said who it is yet).
    fn current(&self) -> Option<identity::Current> {
        self.identity.borrow().clone()
    }

    /// Publishes a new identity; anything registered that changed advances the data version
    /// (NameServers update their tables only on a new version) and registers at once.
    async fn set_identity(self: &Arc<Self>, new: Option<identity::Current>) -> identity::Change {
        let before = self.identity.send_replace(new.clone());
        let Some(new) = new else {
            self.metrics.broker_id.set(-1);
            return identity::Change::None;
        };
        self.metrics
            .broker_id
            .set(i64::try_from(new.id.id).unwrap_or(i64::MAX));
        let change = new.change_from(before.as_ref());
        match (change, &before) {
            (identity::Change::None, _) => return change,
            (identity::Change::Role, Some(old)) => {
                self.metrics.identity_changes.inc();
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
        self.update_topics(|t| t.advance_version()).await;
        self.status().last_full = None;
        self.register_now.notify_one();
        change
    }

    /// UNREGISTER_BROKER to `addrs`, each asked to forget the broker as it last registered it
    /// (after an election one that missed the new identity still holds the old one); one never
    /// registered with is asked with the current identity; none known: nothing to withdraw.
    async fn goodbye(
        &self,
        addrs: &[String],
        timeout: Duration,
    ) -> crate::broker::UnregisterOutcome {
        let groups = goodbye_groups(addrs, &self.status().registered_as, self.current());
        let asks = groups
            .iter()
            .map(|(id, group)| self.api.unregister_from(group, id, timeout));
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The current table (cheap: an `Arc`).
    fn table(&self) -> Arc<TopicConfigWrapper> {
        read(&self.table).clone()
    }

    /// Runs `f` on the topic state on a blocking thread, then publishes the table.
    /// None when `f` panicked (the state is kept; the task that asked carries on).
    async fn update_topics<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut TopicState) -> R + Send + 'static,
    ) -> Option<R> {
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut state = lock(&me.topics);
            let r = f(&mut state);
            *write(&me.table) = state.table();
            r
        })
        .await;
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "topic update failed, keeping the last good topics");
                None
            }
        }
    }

    /// Ready: the broker serves and was registered with at least one NameServer within the
    /// last two intervals. Otherwise, why not.
    fn readiness(&self) -> Result<(), String> {
        let cfg = self.config();
        if let Some(why) = self.liveness.down_reason(cfg.broker_check_addr()) {
            return Err(why);
        }
        let window = cfg.register.interval * 2;
        let recent = self
            .status()
            .last_ok
            .values()
            .any(|t| t.elapsed() <= window);
        if recent {
            Ok(())
        } else {
            Err("not registered with any NameServer".into())
        }
    }
}

struct RequestMetrics(Arc<Metrics>);

impl CallObserver for RequestMetrics {
    fn observe(&self, code: i32, outcome: &'static str) {
        self.0
            .requests
            .with_label_values(&[&code.to_string(), outcome])
            .inc();
        if outcome.contains("timeout") {
            self.0.timeouts.inc();
        }
    }
}

/// Turns lost connections into retry requests for the reconnect task.
struct EventForwarder(mpsc::UnboundedSender<String>);

impl ChannelEventListener for EventForwarder {
    fn on_event(&self, event: ChannelEvent) {
        if event.kind == ChannelEventKind::Close {
            let _ = self.0.send(event.remote);
        }
    }
}

/// The broker's identity as a one-shot command sees it now, and the NameServers the broker
/// names: the configuration's, or (identity from the broker) the broker's own answer under the
/// values the operator set. `Ok(None)`: the broker has no id yet.
pub async fn identity_now(
    cfg: &Config,
    api: &BrokerApi,
) -> Result<Option<(crate::broker::BrokerIdentity, Vec<String>)>, crate::broker::ApiError> {
    if cfg.broker.identity == IdentitySource::Config {
        return Ok(Some((cfg.identity(), Vec::new())));
    }
    let report = api
        .broker_report(cfg.broker_check_addr(), cfg.register.timeout)
        .await?;
    let namesrvs = report.namesrv_addrs.clone();
    Ok(identity::Current::from_report(cfg, &report, None).map(|c| (c.id, namesrvs)))
}

/// Builds the client and API the way the daemon and the one-shot commands use them.
/// With TLS on, an error (never a plain client) when the configuration has no TLS client.
pub fn build_api(
    cfg: &Config,
    listener: Option<Arc<dyn ChannelEventListener>>,
) -> Result<BrokerApi, crate::tls::TlsError> {
    let client = RemotingClient::new(cfg.client_config()?, listener);
    if let (Some(ak), Some(sk)) = (&cfg.acl.access_key, &cfg.acl.secret_key) {
        let hook = crate::broker::acl::AclHook::new(
            ak.clone(),
            sk.clone(),
            cfg.acl.security_token.clone(),
        );
        client.register_rpc_hook(Arc::new(hook));
    }
    Ok(BrokerApi::new(client)
        .with_version(cfg.broker.version)
        .with_serialize_type(cfg.remoting.serialize.into()))
}

/// Runs the daemon until `controls` says Stop (or ends), then unregisters everywhere.
pub async fn run(
    loaded: config::Loaded,
    config_path: Option<PathBuf>,
    controls: impl Stream<Item = Control> + Unpin,
) -> Result<(), StartError> {
    let cfg = Arc::new(loaded.config);
    let metrics = Arc::new(Metrics::new()?);
    let (retry_tx, retry_rx) = mpsc::unbounded_channel();
    let api = build_api(&cfg, Some(Arc::new(EventForwarder(retry_tx.clone()))))?
        .with_observer(Arc::new(RequestMetrics(metrics.clone())));
    let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: cfg.http.listen.clone(),
            source,
        })?;
    // With port 0 the kernel picks the port: the log names the one bound, for whoever started us.
    let bound = listener.local_addr().map_err(|source| StartError::Listen {
        addr: cfg.http.listen.clone(),
        source,
    })?;
    tracing::info!(listen = %bound, broker = %cfg.broker.name, addr = %cfg.broker.addr, tls = cfg.tls.enable, "rmq-registrar starting");
    if cfg.tls.enable && !cfg.tls.verify {
        tracing::warn!(
            "tls.verify = false: NameServer certificates are not checked (test setups only)"
        );
    }
    let token = CancellationToken::new();
    let shared = Arc::new(Shared {
        config: RwLock::new(cfg.clone()),
        config_path,
        client: api.client().clone(),
        api,
        metrics: metrics.clone(),
        topics: Arc::default(),
        table: RwLock::new(TopicState::default().table()),
        register_now: Notify::new(),
        retry: retry_tx,
        status: Mutex::default(),
        liveness: health::Liveness::new(cfg.broker.health.check),
        identity: tokio::sync::watch::Sender::new(None),
        token: token.clone(),
    });
    if cfg.broker.identity == IdentitySource::Config {
        shared
            .set_identity(Some(identity::Current::from_config(&cfg)))
            .await;
    } else {
        metrics.broker_id.set(-1);
    }
    metrics.broker_up.set(i64::from(
        cfg.broker.health.check == config::HealthCheck::None,
    ));
    if !cfg.namesrv.addrs.is_empty() {
        addresses::install_list(&shared, &cfg.namesrv.addrs).await;
    }
    for task in TASKS {
        shared.metrics.task_restarts.with_label_values(&[task]);
    }
    for outcome in ["ok", "error"] {
        shared
            .metrics
            .address_refreshes
            .with_label_values(&[outcome]);
        shared.metrics.health_checks.with_label_values(&[outcome]);
    }
    if cfg.broker.id != 0 && cfg.broker.identity == IdentitySource::Config {
        for kind in [
            "topics",
            "consumer_offsets",
            "delay_offsets",
            "subscription_groups",
        ] {
            shared
                .metrics
                .slave_pulls
                .with_label_values(&[kind, "error"]);
        }
    }
    let sup = Supervisor::new(token.clone(), metrics);
    spawn_tasks(&sup, &shared, listener, bound, retry_rx);
    wait_for_stop(&shared, controls).await;
    shutdown(&shared, &sup).await;
    Ok(())
}

/// Names of the supervised tasks.
const TASKS: [&str; 9] = [
    "sweeper",
    "health",
    "register",
    "heartbeat",
    "topics",
    "reconnect",
    "address-refresh",
    "slave-sync",
    "http",
];

fn spawn_tasks(
    sup: &Supervisor,
    shared: &Arc<Shared>,
    listener: tokio::net::TcpListener,
    bound: std::net::SocketAddr,
    retries: mpsc::UnboundedReceiver<String>,
) {
    let sh = shared.clone();
    sup.spawn("sweeper", move || {
        let sh = sh.clone();
        async move {
            tokio::select! {
                _ = sh.client.run_sweeper() => {}
                _ = sh.token.cancelled() => {}
            }
            Ok(())
        }
    });
    let sh = shared.clone();
    sup.spawn("health", move || health::health_loop(sh.clone()));
    let sh = shared.clone();
    sup.spawn("register", move || register::register_loop(sh.clone()));
    let sh = shared.clone();
    sup.spawn("heartbeat", move || heartbeat::heartbeat_loop(sh.clone()));
    let sh = shared.clone();
    sup.spawn("topics", move || register::topics_watch(sh.clone()));
    let retries = Arc::new(tokio::sync::Mutex::new(retries));
    let sh = shared.clone();
    sup.spawn("reconnect", move || {
        register::reconnect_loop(sh.clone(), retries.clone())
    });
    let sh = shared.clone();
    sup.spawn("address-refresh", move || {
        addresses::refresh_loop(sh.clone())
    });
    let sh = shared.clone();
    sup.spawn("slave-sync", move || slave::sync_loop(sh.clone()));
    let sh = shared.clone();
    let listener = Arc::new(tokio::sync::Mutex::new(Some(listener)));
    sup.spawn("http", move || http::serve(sh.clone(), listener.clone(), bound));
}

/// Waits for Stop. Reloads run beside it, one at a time, so that a SIGTERM during a reload (an
/// unregistration, a large topics parse) is not held up by it: the reload is abandoned.
async fn wait_for_stop(shared: &Arc<Shared>, mut controls: impl Stream<Item = Control> + Unpin) {
    let mut reloading: Option<tokio::task::JoinHandle<()>> = None;
    let mut again = false;
    loop {
        let running = async {
            match reloading.as_mut() {
                Some(h) => {
                    let _ = h.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            c = controls.next() => match c {
                None | Some(Control::Stop) => {
                    if let Some(h) = reloading.take() {
                        h.abort();
                    }
                    return;
                }
                Some(Control::Reload) if reloading.is_some() => again = true,
                Some(Control::Reload) => reloading = Some(tokio::spawn(reload(shared.clone()))),
            },
            () = running => {
                reloading = None;
                if std::mem::take(&mut again) {
                    reloading = Some(tokio::spawn(reload(shared.clone())));
                }
            }
        }
    }
}

/// SIGHUP: re-reads the config; a bad one is reported and the old one kept.
async fn reload(shared: Arc<Shared>) {
    let shared = &shared;
    let loaded = match config::load(shared.config_path.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "reload: new configuration rejected, keeping the old one");
            return;
        }
    };
    let new = Arc::new(loaded.config);
    // Built from the files read by this load: a reload whose TLS cannot be built is rejected
    // here, before anything of it is applied.
    let tls = match new.client_tls() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %crate::config::error_chain(&e), "reload: TLS cannot be built, keeping the old configuration");
            return;
        }
    };
    let old = shared.config();
    if new.http != old.http || new.remoting != old.remoting || new.log != old.log {
        tracing::warn!("reload: [http], [remoting] and [log] changes take effect after a restart");
    }
    if new.tls.enable && !new.tls.verify {
        tracing::warn!(
            "tls.verify = false: NameServer certificates are not checked (test setups only)"
        );
    }
    // Certificates as read by this load: connections opened from now on use them.
    shared.client.set_tls(tls);
    *write(&shared.config) = new.clone();
    if new.broker.identity == IdentitySource::Config {
        // A changed permission, id or address is registered (with a new data version) at once.
        shared
            .set_identity(Some(identity::Current::from_config(&new)))
            .await;
    }
    if new.namesrv.addrs != old.namesrv.addrs && !new.namesrv.addrs.is_empty() {
        addresses::apply_list(shared, new.namesrv.addrs.clone()).await;
    }
    let topics_cfg = new.broker.topics.clone();
    let changed = shared
        .update_topics(move |t| t.refresh(&topics_cfg, true))
        .await;
    match changed {
        Some(Ok(c)) => tracing::info!(topics_changed = c, "configuration reloaded"),
        Some(Err(e)) => {
            tracing::error!(error = %e, "reload: topics file rejected, keeping the last good topics")
        }
        None => {}
    }
    shared.register_now.notify_one();
}

/// How long shutdown waits for a registration round in flight before unregistering anyway.
const SHUTDOWN_ROUND_WAIT: Duration = Duration::from_millis(300);

/// Stops the timers, says goodbye to every NameServer within one timeout, closes everything.
async fn shutdown(shared: &Arc<Shared>, sup: &Supervisor) {
    let started = Instant::now();
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let cfg = shared.config();
    shared.token.cancel();
    // A registration already in flight must not land after the goodbye: wait briefly for it
    // (rounds started from now on see the cancelled token and register nothing). Bounded, so
    // that a round stuck on a stalled peer does not hold up the exit.
    let _no_rounds = tokio::time::timeout(SHUTDOWN_ROUND_WAIT, shared.liveness.gate.write()).await;
    let addrs = shared.client.name_server_list();
    tracing::info!(
        namesrvs = addrs.len(),
        "stopping: unregistering from every NameServer"
    );
    let unregister = shared.goodbye(&addrs, cfg.register.timeout);
    let (outcomes, ()) = tokio::join!(unregister, sup.stop(Duration::from_millis(500)));
    let ok = count_unregistrations(shared, &outcomes);
    shared.client.shutdown();
    tracing::info!(ok, total = outcomes.len(), took = ?started.elapsed(), "unregistered; bye");
}

/// The NameServers grouped by the identity to unregister there: the one each last registered,
/// else the current one.
fn goodbye_groups(
    addrs: &[String],
    registered_as: &HashMap<String, crate::broker::BrokerIdentity>,
    current: Option<identity::Current>,
) -> Vec<(crate::broker::BrokerIdentity, Vec<String>)> {
    let mut groups: Vec<(crate::broker::BrokerIdentity, Vec<String>)> = Vec::new();
    for a in addrs {
        let Some(id) = registered_as
            .get(a)
            .cloned()
            .or_else(|| current.as_ref().map(|c| c.id.clone()))
        else {
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, list)) => list.push(a.clone()),
            None => groups.push((id, vec![a.clone()])),
        }
    }
    groups
}

/// Counts and logs each NameServer's unregistration outcome; returns how many succeeded.
fn count_unregistrations(sh: &Shared, outcomes: &crate::broker::UnregisterOutcome) -> usize {
    let mut ok = 0;
    for o in outcomes {
        let label = o.result.as_ref().map_or_else(|e| e.kind(), |_| "ok");
        sh.metrics
            .unregistrations
            .with_label_values(&[&o.addr, label])
            .inc();
        match &o.result {
            Ok(()) => ok += 1,
            Err(e) => tracing::warn!(namesrv = %o.addr, error = %e, "unregister failed"),
        }
    }
    ok
}

/// Signals as [`Control`]s: SIGTERM and SIGINT stop, SIGHUP reloads.
pub fn signals() -> std::io::Result<impl Stream<Item = Control> + Unpin> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    Ok(signals.map(|s| {
        if s == SIGHUP {
            Control::Reload
        } else {
            Control::Stop
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(cfg: Config) -> Arc<Shared> {
        let metrics = Arc::new(Metrics::new().unwrap());
        let api = build_api(&cfg, None).unwrap();
        let (retry, _) = mpsc::unbounded_channel();
        let id = identity::Current::from_config(&cfg);
        Arc::new(Shared {
            config: RwLock::new(Arc::new(cfg)),
            config_path: None,
            client: api.client().clone(),
            api,
            metrics,
            topics: Arc::default(),
            table: RwLock::new(TopicState::default().table()),
            register_now: Notify::new(),
            retry,
            status: Mutex::default(),
            liveness: health::Liveness::new(config::HealthCheck::None),
            identity: tokio::sync::watch::Sender::new(Some(id)),
            token: CancellationToken::new(),
        })
    }

    #[test]
    fn the_goodbye_names_the_broker_as_each_namesrv_holds_it() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "10.0.0.1:10911".into();
        let old = cfg.identity();
        cfg.broker.id = 1;
        let now = identity::Current::from_config(&cfg);
        let addrs: Vec<String> = ["n1", "n2", "n3"].map(String::from).into();
        // n1 missed the election's registration; n2 has the new id; n3 was never reached.
        let held = HashMap::from([
            ("n1".to_string(), old.clone()),
            ("n2".into(), now.id.clone()),
        ]);
        let groups = goodbye_groups(&addrs, &held, Some(now.clone()));
        assert_eq!(
            groups,
            vec![
                (old, vec!["n1".to_string()]),
                (now.id, vec!["n2".into(), "n3".into()])
            ]
        );
        assert!(goodbye_groups(&addrs, &HashMap::new(), None).is_empty());
    }

    #[tokio::test]
    async fn anything_registered_that_changes_advances_the_data_version() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "10.0.0.1:10911".into();
        let sh = shared(cfg.clone());
        let v = || sh.table().data_version.counter;
        sh.set_identity(Some(identity::Current::from_config(&cfg)))
            .await;
        let first = v();
        // The same again (a reload that changed nothing registered): no new version.
        sh.set_identity(Some(identity::Current::from_config(&cfg)))
            .await;
        assert_eq!(v(), first);
        // broker.permission changed at SIGHUP: NameServers update queue data only on a new
        // version, so it must advance although no topic changed.
        cfg.broker.permission = Some(4);
        let change = sh
            .set_identity(Some(identity::Current::from_config(&cfg)))
            .await;
        assert_eq!(change, identity::Change::Settings);
        assert!(v() > first, "{} -> {}", first, v());
        cfg.broker.id = 1;
        let before = v();
        sh.set_identity(Some(identity::Current::from_config(&cfg)))
            .await;
        assert!(v() > before);
        assert_eq!(sh.metrics.identity_changes.get(), 1);
        assert_eq!(sh.metrics.broker_id.get(), 1);
    }

    fn rounds(sh: &Shared) -> u64 {
        ["changed", "unchanged", "error"]
            .iter()
            .map(|l| sh.metrics.topic_reloads.with_label_values(&[l]).get())
            .sum()
    }

    #[tokio::test(start_paused = true)]
    async fn registers_at_start_every_interval_and_on_demand() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        let sh = shared(cfg);
        let task = tokio::spawn(register::register_loop(sh.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(rounds(&sh), 1, "first round at once");
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(rounds(&sh), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(rounds(&sh), 2, "second round after the 30 s interval");
        sh.register_now.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(rounds(&sh), 3, "a request registers at once");
        sh.token.cancel();
        assert!(task.await.unwrap().is_ok());
    }
}
