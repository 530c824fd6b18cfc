//! The daemon's life: start-up, the supervised tasks, signals, and the stop.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};

use super::api::build_api;
use super::namesrv::CloseRoutes;
use super::settings::InForce;
use super::publisher::{
    follow, AddressOut, Channels, HealthOut, IdentityOut, Publisher, RegisterOut, SlaveOut,
};
use super::shared::Shared;
use super::supervisor::Supervisor;
use super::topics::{Inbox, TopicsAsk};
use super::{
    addresses, goodbye, health, http, identity, register, reload, slave, topics,
};
use crate::config::{self, IdentitySource};
use crate::metrics::{Metrics, RequestMetrics, SupervisorMetrics};

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

/// Runs the daemon until `controls` says Stop (or ends), then unregisters everywhere.
pub async fn run(
    start: InForce,
    config_path: Option<PathBuf>,
    controls: impl Stream<Item = Control> + Unpin,
) -> Result<(), StartError> {
    let cfg = Arc::new(start);
    let metrics = Arc::new(Metrics::new()?);
    let routes = Arc::new(CloseRoutes::default());
    let api = build_api(&cfg, Some(routes.clone()))?
        .with_observer(Arc::new(RequestMetrics::new(&metrics)));
    let (main, drain) = bind_listeners(&cfg).await?;
    log_start(&cfg, &main, drain.as_ref());
    // Every state's channel, and each component's handle on its series.
    let (channels, shared) = Channels::new(&cfg, config_path, api, &metrics);
    let shared = Arc::new(shared);
    channels.identity.metrics.set_id(None);
    let unchecked = cfg.broker.health.check == config::HealthCheck::None;
    channels.health.metrics.set_up(unchecked);
    if cfg.broker.id != 0 && cfg.broker.identity == IdentitySource::Config {
        channels.slave.metrics.seed(&slave::KINDS);
    }
    let (config, supervisor, publishers) = for_tasks(channels);
    supervisor.seed_tasks(&TASKS);
    let sup = Supervisor::new(shared.token.clone(), Arc::new(supervisor));
    spawn_tasks(&sup, &shared, &routes, (main, drain), publishers);
    // Held to the end: every NameServer's task ends when the configuration's channel closes,
    // and their goodbyes come after the control loop has returned.
    let config = Arc::new(config);
    wait_for_stop(&shared, config.clone(), controls).await;
    goodbye::shutdown(&shared, &sup).await;
    drop(config);
    Ok(())
}

/// Binds the `[http]` listener and the drain's own, at start-up: a port in use fails the
/// start, naming it.
async fn bind_listeners(cfg: &InForce) -> Result<(http::Bound, Option<http::Bound>), StartError> {
    let main = bind(&cfg.http.listen).await?;
    let drain = match &cfg.drain.listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    Ok((main, drain))
}

/// The start-up line (with port 0 the kernel picks the port: it names the one bound, for
/// whoever started us).
fn log_start(cfg: &InForce, main: &http::Bound, drain: Option<&http::Bound>) {
    let bound = main.addr;
    let drain_at = drain.map(|d| d.addr.to_string());
    let drain_at = drain_at.as_deref().unwrap_or("http.listen");
    match cfg.broker.identity {
        IdentitySource::Config => {
            tracing::info!(listen = %bound, drain_listen = drain_at, broker = %cfg.broker.name, addr = %cfg.broker.addr, tls = cfg.tls.enable, "rmq-registrar starting")
        }
        // Nothing of the identity is known before the broker's first answer: say where it
        // comes from instead of empty values.
        IdentitySource::Broker => {
            tracing::info!(listen = %bound, drain_listen = drain_at, identity_from = %cfg.broker_check_addr(), tls = cfg.tls.enable, "rmq-registrar starting")
        }
    }
    if cfg.tls.enable && !cfg.tls.verify {
        tracing::warn!(
            "tls.verify = false: NameServer certificates are not checked (test setups only)"
        );
    }
}

/// The configuration's publisher (the control loop's), the supervisor's series, and every
/// task's ends.
fn for_tasks(channels: Channels) -> (Publisher<Arc<InForce>>, SupervisorMetrics, TaskEnds) {
    let Channels {
        config,
        health,
        identity,
        addresses,
        register,
        drains,
        topics,
        topics_ask,
        slave,
        supervisor,
    } = channels;
    let ends = TaskEnds {
        health: Arc::new(health),
        identity: Arc::new(identity),
        addresses: Arc::new(addresses),
        register: Arc::new(register),
        drains,
        topics: Arc::new(topics),
        topics_ask: Arc::new(topics_ask),
        slave: Arc::new(slave),
    };
    (config, supervisor, ends)
}

/// Names of the supervised tasks.
const TASKS: [&str; 8] = [
    "sweeper",
    "health",
    "identity",
    "register",
    "topics",
    "address-refresh",
    "slave-sync",
    "http",
];

/// What the supervised tasks own, one task each: their publishers, sending ends and metrics
/// handles (the configuration's publisher is the control loop's: reloads publish it).
struct TaskEnds {
    health: Arc<HealthOut>,
    identity: Arc<IdentityOut>,
    addresses: Arc<AddressOut>,
    register: Arc<RegisterOut>,
    drains: tokio::sync::mpsc::Sender<super::drain::DrainCmd>,
    topics: Arc<Inbox>,
    topics_ask: Arc<TopicsAsk>,
    slave: Arc<SlaveOut>,
}

fn spawn_tasks(
    sup: &Supervisor,
    shared: &Arc<Shared>,
    routes: &Arc<CloseRoutes>,
    (mut main, mut drain): (http::Bound, Option<http::Bound>),
    ends: TaskEnds,
) {
    let TaskEnds {
        health: health_out,
        identity: identity_out,
        addresses: addresses_out,
        register: register_out,
        drains,
        topics,
        topics_ask,
        slave: slave_out,
    } = ends;
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
    sup.spawn("health", move || {
        health::health_loop(sh.clone(), health_out.clone())
    });
    let sh = shared.clone();
    sup.spawn("identity", move || {
        identity::identity_loop(sh.clone(), identity_out.clone())
    });
    let (sh, routes) = (shared.clone(), routes.clone());
    let config = follow(&shared.config);
    // The register task says every goodbye once the token is cancelled: it gets the time
    // that takes before it is aborted.
    sup.spawn_with_grace(
        "register",
        move || goodbye::stop_grace(config.borrow().register.timeout),
        move || {
            register::register_loop(
                sh.clone(),
                routes.clone(),
                register_out.clone(),
                topics_ask.clone(),
            )
        },
    );
    let sh = shared.clone();
    sup.spawn("topics", move || topics::topics_loop(sh.clone(), topics.clone()));
    let sh = shared.clone();
    sup.spawn("address-refresh", move || {
        addresses::refresh_loop(sh.clone(), addresses_out.clone())
    });
    let sh = shared.clone();
    sup.spawn("slave-sync", move || {
        slave::sync_loop(sh.clone(), slave_out.clone())
    });
    let sh = shared.clone();
    sup.spawn("http", move || {
        // The first run takes the listeners bound at start; a restarted one binds their
        // addresses again.
        let drain = drain.as_mut().map(http::Bound::take_for_run);
        http::serve(sh.clone(), main.take_for_run(), drain, drains.clone())
    });
}

/// Binds the drain's own listener at start-up, as the `[http]` one is.
async fn bind(addr: &str) -> Result<http::Bound, StartError> {
    let listen = |source| StartError::Listen {
        addr: addr.to_string(),
        source,
    };
    let l = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = l.local_addr().map_err(listen)?;
    Ok(http::Bound {
        listener: Some(l),
        addr: bound,
    })
}

/// Waits for Stop. Reloads run beside it, one at a time, so that a SIGTERM during a reload (an
/// unregistration, a large topics parse) is not held up by it: the reload is abandoned.
async fn wait_for_stop(
    shared: &Arc<Shared>,
    config: Arc<Publisher<Arc<InForce>>>,
    mut controls: impl Stream<Item = Control> + Unpin,
) {
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
                Some(Control::Reload) => reloading = Some(tokio::spawn(reload::reload(shared.clone(), config.clone()))),
            },
            () = running => {
                reloading = None;
                if std::mem::take(&mut again) {
                    reloading = Some(tokio::spawn(reload::reload(shared.clone(), config.clone())));
                }
            }
        }
    }
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
