//! Broker health: the broker is advertised only while it answers its health checks. This task
//! checks and publishes a verdict (and, with the identity from the broker, its answer); what
//! follows from them is the register and identity tasks' business.
//!
//! A Java broker's registration dies with its process (its connections close). A sidecar
//! outlives the broker, so it has to find out: checks every `broker.health.interval` while the
//! broker is up, every 250 ms while it is down (so that it is registered again within a second
//! of answering). After `broker.health.failures` consecutive failures the broker is withdrawn
//! from every NameServer and registration pauses until a check passes again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::verdict::{Step, Verdicts};
use crate::daemon::publisher::HealthOut;
use crate::daemon::settings;
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::broker::{BrokerAnswer, BrokerApi, StoreHealth};
use crate::daemon::fault::{Checked, FaultDrive};
use crate::config::{Config, HealthCheck, IdentitySource};
use crate::metrics::labels::Outcome;

/// Start-to-start period of the checks while the broker is down (or not yet up).
pub const DOWN_PROBE: Duration = Duration::from_millis(250);

/// Runs the checks until shutdown.
pub(crate) async fn health_loop(sh: Arc<Shared>, out: Arc<HealthOut>) -> TaskResult {
    // A client of its own: a large topic-table read must never queue a health check behind it.
    let closed = Arc::new(Closed::default());
    let api = crate::daemon::api::build_api(&sh.config(), Some(closed.clone()))?
        .with_observer(out.requests.clone());
    with_own_client(&api, run_checks(&sh, &out, &api, &closed)).await
}

/// Set when the checks' connection to the broker closes (a broker that restarts between two
/// checks fails none of them, but closes it).
#[derive(Default)]
struct Closed(std::sync::atomic::AtomicBool);

impl crate::client::ChannelEventListener for Closed {
    fn on_event(&self, event: crate::client::ChannelEvent) {
        if event.kind == crate::client::ChannelEventKind::Close {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Runs `work` with `api`'s client started; however `work` ends (return, error or panic), the
/// client's sweeper task ends with it, so a restarted task leaves nothing behind.
async fn with_own_client<T>(api: &BrokerApi, work: impl std::future::Future<Output = T>) -> T {
    api.client().start();
    let _stop = StopOnDrop(api.client().clone());
    work.await
}

/// Shuts a client (and so its sweeper task) down when dropped, on unwinding too.
struct StopOnDrop(crate::client::RemotingClient);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

async fn run_checks(
    sh: &Arc<Shared>,
    out: &HealthOut,
    api: &BrokerApi,
    closed: &Closed,
) -> TaskResult {
    let mut first = true;
    let mut mode = None;
    // The verdict is this task's own; every change is published for the others.
    let mut verdicts = sh.verdict.borrow().clone();
    let start = sh.config();
    let mut tls = (start.tls_client.clone(), start.broker.health.tls);
    let mut disk = DiskLevels::default();
    let mut fault = FaultDrive::default();
    loop {
        let cfg = sh.config();
        let h = &cfg.broker.health;
        // SIGHUP re-read the certificates: the checks' new connections use them too.
        if (cfg.tls_client.clone(), h.tls) != tls {
            tls = (cfg.tls_client.clone(), h.tls);
            // A configuration that reached here was validated with its TLS built; should
            // it still fail, the checks stop (the task is restarted) rather than go plain.
            api.client().set_tls(settings::client_tls(&cfg)?);
            api.client().close_connection(cfg.broker_check_addr());
        }
        if mode != Some(h.check) && h.check == HealthCheck::None {
            tracing::warn!(
                "broker.health.check = \"none\": the broker is advertised whether or not it serves"
            );
        }
        mode = Some(h.check);
        let started = Instant::now();
        let outcome = match cfg.broker.identity {
            IdentitySource::Config => check(api, &cfg).await,
            IdentitySource::Broker => follow(out, api, &cfg).await,
        };
        let outcome = answered(out, &cfg, &mut verdicts, outcome);
        disk.read(out, api, &cfg, outcome.is_ok()).await;
        let store = outcome.as_ref().ok().copied();
        if closed.0.swap(false, std::sync::atomic::Ordering::SeqCst) {
            verdicts.interrupted();
        }
        // The verdict first: a fault published with the broker still down could not drain.
        judged(out, &cfg, &mut verdicts, outcome.map(|_| ()));
        if verdicts.is_up() {
            faults(sh, out, &cfg, &mut fault, (store, disk.threshold)).await;
        } else {
            fault.came_back();
        }
        if first {
            first = false;
            // systemd Type=notify: ready once the first check is done, whatever it said, so
            // that a slow broker does not trip the unit's start timeout.
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        }
        let next = started
            + if verdicts.is_up() {
                h.interval
            } else {
                DOWN_PROBE
            };
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(next) => {}
        }
    }
}

/// Why a health check failed (what /readyz and the log say).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    /// The TCP connect failed.
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    /// The TCP connect did not finish in time.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The request failed.
    #[error(transparent)]
    Api(#[from] crate::broker::ApiError),
    /// No answer within the check's timeout.
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// The broker answered, refusing the daemon's credentials (or their absence).
    #[error("the broker refused the daemon's request: authentication failed ({0}): set acl.access_key and acl.secret_key to a user of the broker")]
    AuthFailed(String),
    /// The broker serves but has no id yet.
    #[error("the broker at {addr} has no id yet ({role} with brokerId -1: no DLedger or controller election yet)")]
    NoId {
        /// The broker.
        addr: String,
        /// Its role.
        role: &'static str,
    },
}

/// One check (Ok: it serves, with what it said of its store and of the daemon's credentials).
/// The deadline covers connecting: a hung host costs one timeout, no more.
async fn check(api: &BrokerApi, cfg: &Config) -> Result<BrokerAnswer, CheckError> {
    let addr = cfg.broker_check_addr();
    let t = cfg.broker.health.timeout;
    match cfg.broker.health.check {
        HealthCheck::None => Ok(BrokerAnswer::default()),
        HealthCheck::Tcp => {
            match tokio::time::timeout(t, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => Ok(BrokerAnswer::default()),
                Ok(Err(e)) => Err(CheckError::Connect(e)),
                Err(_) => Err(CheckError::ConnectTimeout(t)),
            }
        }
        HealthCheck::Remoting => {
            let r = match tokio::time::timeout(t, api.check_broker(addr, t)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => CheckError::Api(e),
                Err(_) => CheckError::NoAnswer(t),
            };
            // A hung broker's socket is not reused: the next check starts afresh.
            api.client().close_connection(addr);
            Err(r)
        }
    }
}

/// One check with the identity from the broker: GET_BROKER_CONFIG proves that it answers and
/// says who it is now (published for the identity task). A broker without an id yet (`-1`: no
/// election) fails the check, so nothing is registered and /readyz says why (its answer is
/// still published: the id gauge says -1); an unusable
/// answer keeps the last identity. A Java 5.0.x controller-mode slave's id is asked of its
/// controller after the broker answered (outside the broker's deadline, each controller
/// exchange with its own): a controller that fails is no reason to drop the broker's connection.
async fn follow(out: &HealthOut, api: &BrokerApi, cfg: &Config) -> Result<BrokerAnswer, CheckError> {
    let addr = cfg.broker_check_addr();
    let t = cfg.broker.health.timeout;
    let report = match tokio::time::timeout(t, api.broker_config_report(addr, t)).await {
        Ok(Ok(r)) => r,
        Ok(Err(crate::broker::ApiError::Report(
            crate::broker::own_config::ReportError::IdFromController(slave),
        ))) => api.id_from_controller(*slave, t).await?,
        Ok(Err(e)) => {
            if let Some(remark) = e.auth_refusal() {
                return Err(CheckError::AuthFailed(remark.to_string()));
            }
            if !matches!(e, crate::broker::ApiError::Report(_)) {
                api.client().close_connection(addr);
            }
            return Err(e.into());
        }
        Err(_) => {
            api.client().close_connection(addr);
            return Err(CheckError::NoAnswer(t));
        }
    };
    let no_id = report.id.is_none().then(|| CheckError::NoId {
        addr: addr.to_string(),
        role: report.role.as_str(),
    });
    // Published with no id too: the identity task keeps the identity last registered and
    // shows the id as -1, and the NameServer list it names is taken.
    out.report.send_if_modified(|known| {
        let changed = known.as_deref() != Some(&report);
        if changed {
            *known = Some(Arc::new(report));
        }
        changed
    });
    if let Some(e) = no_id {
        return Err(e);
    }
    // The store's health is GET_BROKER_RUNTIME_INFO's to say: asked too, never failing the
    // check (the identity answered).
    let store = match tokio::time::timeout(t, api.store_health(addr, t)).await {
        Ok(Ok(s)) => s,
        _ => crate::broker::StoreHealth::default(),
    };
    Ok(BrokerAnswer {
        refused: None,
        store,
    })
}

/// What a check's answer says beyond liveness: a refusal of the daemon's credentials (kept
/// across checks that got no answer) and the store's health; counted by outcome.
fn answered(
    out: &HealthOut,
    cfg: &Config,
    verdicts: &mut Verdicts,
    outcome: Result<BrokerAnswer, CheckError>,
) -> Result<StoreHealth, CheckError> {
    let refused = match &outcome {
        Ok(a) => a.refused.clone(),
        Err(CheckError::AuthFailed(remark)) => Some(remark.clone()),
        // It answered the signed request, with no id or no usable identity: accepted.
        Err(CheckError::NoId { .. } | CheckError::Api(crate::broker::ApiError::Report(_))) => None,
        // No answer: what the broker thinks of the credentials is not known anew.
        Err(_) => verdicts.auth_refusal().map(str::to_string),
    };
    out.metrics.health_check(match &outcome {
        Ok(a) if a.refused.is_none() => Outcome::Ok,
        Ok(_) | Err(CheckError::AuthFailed(_)) => Outcome::AuthFailed,
        Err(_) => Outcome::Error,
    });
    tell_auth(cfg, verdicts.auth_refusal(), refused.as_deref());
    verdicts.set_auth_refusal(refused);
    let answer = outcome?;
    if answer.refused.is_some() {
        // A refusal says nothing of the store.
        return Ok(StoreHealth::default());
    }
    out.metrics.set_store(&answer.store);
    Ok(answer.store)
}

/// Feeds the fault drive one check's store reading (None: no answer) against the broker's
/// threshold, and publishes the faults in force when they changed.
async fn faults(
    sh: &Shared,
    out: &HealthOut,
    cfg: &Config,
    fault: &mut FaultDrive,
    (store, threshold): (Option<StoreHealth>, u32),
) {
    let namesrvs = sh.namesrv_list.borrow().clone();
    let cur = sh.current();
    let advert = sh.advert.borrow().clone();
    let checked = Checked {
        store: store.as_ref(),
        threshold,
        id: cur.as_ref().map(|c| (&c.id, c.always_split)),
        namesrvs: &namesrvs.addrs,
        advert: advert.as_deref(),
    };
    let now = fault.checked(&sh.api, cfg, checked).await;
    out.fault.send_if_modified(|held| {
        let changed = *held != now;
        if changed {
            *held = now;
        }
        changed
    });
}

/// How often the broker's refusal threshold is read again (it changes only with
/// UPDATE_BROKER_CONFIG).
const THRESHOLD_EVERY: Duration = Duration::from_secs(300);

/// The broker's disk levels: its refusal threshold (GET_BROKER_CONFIG
/// `diskSpaceWarningLevelRatio`, or `fault.disk_threshold`), read when it first serves, when it
/// comes back, and every [`THRESHOLD_EVERY`].
struct DiskLevels {
    /// When it was last read (None: due at the next good check).
    read_at: Option<Instant>,
    /// The threshold in force, in percent.
    threshold: u32,
}

impl Default for DiskLevels {
    fn default() -> Self {
        DiskLevels {
            read_at: None,
            threshold: 90,
        }
    }
}

impl DiskLevels {
    async fn read(&mut self, out: &HealthOut, api: &BrokerApi, cfg: &Config, serving: bool) {
        if !serving {
            // Back from down: read again (a restarted broker may have another file).
            self.read_at = None;
            return;
        }
        if self.read_at.is_some_and(|t| t.elapsed() < THRESHOLD_EVERY) {
            return;
        }
        self.read_at = Some(Instant::now());
        let margin = cfg.fault.disk_margin;
        let threshold = crate::daemon::fault::threshold(api, cfg).await;
        self.threshold = threshold;
        out.metrics.set_disk_levels(threshold, margin);
    }
}

/// One WARN when the broker starts refusing the daemon's credentials, one INFO when it stops.
fn tell_auth(cfg: &Config, was: Option<&str>, now: Option<&str>) {
    let broker = cfg.broker_check_addr();
    match (was, now) {
        (None, Some(remark)) => {
            let signed = cfg.acl.access_key.is_some() && cfg.acl.secret_key.is_some();
            tracing::warn!(%broker, remark, signed, "the broker refuses the daemon's requests: authentication failed (its reads of identity, topics, disk and slave pulls fail; liveness is unchanged): set acl.access_key and acl.secret_key to a user of the broker")
        }
        (Some(_), None) => {
            tracing::info!(%broker, "the broker accepts the daemon's requests again")
        }
        _ => {}
    }
}

/// Judges a check's outcome and publishes the verdict when it changed; the register task acts
/// on it (registers when the broker comes up, withdraws it when it goes down).
fn judged(
    out: &HealthOut,
    cfg: &Config,
    verdicts: &mut Verdicts,
    outcome: Result<(), CheckError>,
) {
    let addr = cfg.broker_check_addr();
    let threshold = cfg.broker.health.failures;
    let why = outcome.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    let now = Instant::now();
    let step = match outcome {
        Ok(()) => verdicts.passed(now),
        Err(_) => verdicts.failed(&why, threshold, now),
    };
    out.verdict.send_if_modified(|v| {
        let changed = v != verdicts;
        if changed {
            *v = verdicts.clone();
        }
        changed
    });
    match step {
        Step::Same => {}
        Step::CameUp { downtime } => {
            out.metrics.set_up(true);
            match downtime {
                Some(t) => {
                    tracing::info!(broker = %addr, downtime = ?t, "broker is serving again: registering with every NameServer")
                }
                None => {
                    tracing::info!(broker = %addr, "broker is serving: registering with every NameServer")
                }
            }
        }
        Step::NotYetUp => {
            tracing::warn!(broker = %addr, reason = %why, "broker not serving yet: registration waits for its first good health check");
        }
        Step::Failed { failures } => {
            tracing::debug!(broker = %addr, reason = %why, failures, "broker health check failed");
        }
        Step::WentDown => {
            out.metrics.set_up(false);
            tracing::warn!(broker = %addr, reason = %why, failures = threshold, "broker is not serving: unregistering from every NameServer");
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::daemon::supervisor::Supervisor;
    use crate::metrics::Metrics;

    fn alive() -> usize {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    }

    #[tokio::test(start_paused = true)]
    async fn a_checks_task_that_panics_leaves_no_client_task_behind() {
        let metrics = Arc::new(Metrics::new().unwrap());
        let sup = Supervisor::new(
            CancellationToken::new(),
            Arc::new(crate::metrics::SupervisorMetrics::new(&metrics)),
        );
        let before = alive();
        sup.spawn("health", || async {
            let api = crate::daemon::api::build_api(&crate::daemon::settings::InForce::default(), None)?;
            with_own_client(&api, async { panic!("a check panicked") }).await
        });
        // Backoff 0.2 s doubling: 8 runs in a minute.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let restarts = metrics
            .daemon()
            .task_restarts
            .with_label_values(&["health"])
            .get();
        assert!(restarts >= 6, "{restarts} restarts");
        // The supervisor's loop is all that is left between runs: no sweeper per restart.
        assert!(
            alive() <= before + 1,
            "{} tasks alive after {restarts} panics",
            alive()
        );
        sup.stop(Duration::from_secs(1)).await;
        assert_eq!(alive(), before);
    }
}
