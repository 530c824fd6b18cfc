//! The periodic registration, the topic watcher, and re-registration after a lost connection.

use std::collections::hash_map::Entry;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::heartbeat::{plan, Due, Plan};
use super::identity::Current;
use super::supervisor::TaskResult;
use super::Shared;
use crate::broker::body::TopicConfigWrapper;
use crate::broker::ApiError;
use crate::broker::{NamesrvOutcome, RegisterOptions, RegisterOutcome, RegisterStatus};
use crate::client::ClientError;
use crate::config::{Config, TopicSource};

fn options(cfg: &Config, force: bool, cur: &Current) -> RegisterOptions {
    RegisterOptions {
        timeout: cfg.register.timeout,
        oneway: cfg.register.oneway,
        compressed: cfg.register.compressed,
        heartbeat_timeout: cur.heartbeat_timeout,
        force,
        enable_acting_master: cur.acting_master,
        max_frame: cfg.remoting.max_frame,
        split_size: cur.split_size,
        always_split: cur.always_split,
    }
}

/// Registers at once, then every interval, and whenever something asks for it.
pub(crate) async fn register_loop(sh: Arc<Shared>) -> TaskResult {
    loop {
        let cfg = sh.config();
        sh.metrics
            .register_interval
            .set(cfg.register.interval.as_secs_f64());
        round(&sh, &cfg).await;
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(cfg.register.interval) => {}
            _ = sh.register_now.notified() => {}
        }
    }
}

/// One registration round with every NameServer; nothing while the broker does not serve.
async fn round(sh: &Arc<Shared>, cfg: &Arc<Config>) {
    if !sh.liveness.is_up() {
        tracing::debug!("broker not serving: registration paused");
        return;
    }
    let Some(cur) = sh.current() else {
        tracing::debug!("the broker has not said who it is yet: registration waits");
        return;
    };
    let Some(table) = current_topics(sh, cfg).await else {
        return;
    };
    let table = restricted(table, cur.permission).await;
    sh.metrics.topics.set(table.topic_config_table.len() as i64);
    let addrs = sh.client.name_server_list();
    if addrs.is_empty() {
        tracing::warn!("no NameServer known yet, registration skipped");
        return;
    }
    let Some(_shared) = sh.liveness.may_register(&sh.token).await else {
        return;
    };
    let force = match cfg.register.force_every {
        None => true,
        Some(every) => sh.status().last_full.is_none_or(|t| t.elapsed() >= every),
    };
    // With heartbeats on, they already ask each NameServer for the data version every
    // second: an unforced round registers only where the current one is not confirmed, and
    // sends no QUERY_DATA_VERSION of its own.
    let (full, current) = if cfg.register.heartbeat.is_some() {
        let status = sh.status();
        let version = table.data_version;
        addrs.into_iter().partition(|a| {
            let b = status.beats.get(a).cloned().unwrap_or_default();
            plan(&b, Due::Round { force }, version) == Plan::Full
        })
    } else {
        (addrs, Vec::new())
    };
    let started = Instant::now();
    let mut out = {
        let _registering = Registering::new(sh, &full);
        let force = force || cfg.register.heartbeat.is_some();
        sh.api
            .register_to(&full, &cur.id, &table, &options(cfg, force, &cur))
            .await
    };
    out.per_namesrv
        .extend(current.into_iter().map(|addr| NamesrvOutcome {
            addr,
            result: Ok(RegisterStatus::Current),
            elapsed: Duration::ZERO,
        }));
    sh.metrics
        .round_duration
        .observe(started.elapsed().as_secs_f64());
    if force && out.per_namesrv.iter().any(|o| o.result.is_ok()) {
        sh.status().last_full = Some(started);
    }
    record(sh, &out, true);
    note_registered_as(sh, &out, &cur.id);
    note_acked(sh, &out, table.data_version);
}

/// The table to register this round, from the configured source. None: nothing to register
/// yet (the broker's topics were never read: registering an empty table would withdraw its
/// routes).
async fn current_topics(sh: &Arc<Shared>, cfg: &Arc<Config>) -> Option<Arc<TopicConfigWrapper>> {
    let topics_cfg = cfg.broker.topics.clone();
    let (label, ok) = if topics_cfg.source == TopicSource::Broker {
        let addr = cfg.broker_check_addr();
        match sh.api.broker_topics(addr, cfg.register.timeout).await {
            Ok(w) => {
                let changed = sh
                    .update_topics(move |t| t.set_broker_topics(&topics_cfg, w))
                    .await?;
                (if changed { "changed" } else { "unchanged" }, true)
            }
            Err(e) => {
                sh.metrics.topic_reloads.with_label_values(&["error"]).inc();
                if !sh.update_topics(|t| t.has_broker_topics()).await? {
                    tracing::warn!(broker = %addr, error = %e, "cannot read the broker's topics: registration waits for them");
                    return None;
                }
                tracing::warn!(broker = %addr, error = %e, "cannot read the broker's topics, registering the last good ones");
                ("", false)
            }
        }
    } else {
        match sh
            .update_topics(move |t| t.refresh(&topics_cfg, true))
            .await
        {
            Some(Ok(changed)) => (if changed { "changed" } else { "unchanged" }, true),
            Some(Err(e)) => {
                sh.metrics.topic_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "topics file unusable, registering the last good topics");
                ("", false)
            }
            None => ("", false),
        }
    };
    if ok {
        sh.metrics.topic_reloads.with_label_values(&[label]).inc();
    }
    Some(sh.table())
}

/// The table as Java registers it under `brokerPermission`: a broker that is not both readable
/// and writable registers every topic's perm ANDed with its own.
async fn restricted(
    table: Arc<TopicConfigWrapper>,
    permission: Option<u32>,
) -> Arc<TopicConfigWrapper> {
    use crate::broker::body::perm;
    let rw = perm::READ | perm::WRITE;
    let Some(p) = permission.filter(|p| p & rw != rw) else {
        return table;
    };
    let copy = table.clone();
    let masked = tokio::task::spawn_blocking(move || {
        let mut w = (*copy).clone();
        for t in w.topic_config_table.values_mut() {
            t.perm &= p;
        }
        Arc::new(w)
    })
    .await;
    masked.unwrap_or(table)
}

/// Marks registrations in flight per NameServer while alive: a heartbeat falling due then is
/// skipped rather than queued behind a large body on the same connection.
struct Registering {
    sh: Arc<Shared>,
    addrs: Vec<String>,
}

impl Registering {
    fn new(sh: &Arc<Shared>, addrs: &[String]) -> Self {
        let mut status = sh.status();
        for a in addrs {
            status.beats.entry(a.clone()).or_default().registering += 1;
        }
        Registering {
            sh: sh.clone(),
            addrs: addrs.to_vec(),
        }
    }
}

impl Drop for Registering {
    fn drop(&mut self) {
        let mut status = self.sh.status();
        for a in &self.addrs {
            if let Some(b) = status.beats.get_mut(a) {
                b.registering = b.registering.saturating_sub(1);
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Remembers which identity each NameServer now holds, for the goodbye: at SIGTERM each is
/// asked to forget the broker as it registered it (a NameServer that missed an election's
/// registration holds the old id).
fn note_registered_as(sh: &Shared, out: &RegisterOutcome, id: &crate::broker::BrokerIdentity) {
    let mut status = sh.status();
    for o in out.per_namesrv.iter().filter(|o| o.result.is_ok()) {
        if status.registered_as.get(&o.addr) != Some(id) {
            status.registered_as.insert(o.addr.clone(), id.clone());
        }
    }
}

/// Updates metrics and status from a round. A NameServer that starts failing gets one WARN
/// with the reason, then at most one reminder per interval while it keeps failing, and one
/// INFO with the outage when it is back; `summary` adds the round's one-line summary.
fn record(sh: &Shared, out: &RegisterOutcome, summary_line: bool) {
    let every = sh.config().register.interval;
    let mut summary = Vec::with_capacity(out.per_namesrv.len());
    let mut ok = 0;
    for o in &out.per_namesrv {
        let label = match &o.result {
            Ok(RegisterStatus::Registered(_)) => "ok",
            Ok(RegisterStatus::Current) => "current",
            Ok(RegisterStatus::Sent) => "sent",
            Err(e) => e.kind(),
        };
        let m = &sh.metrics;
        m.registrations.with_label_values(&[&o.addr, label]).inc();
        m.registration_duration
            .with_label_values(&[&o.addr])
            .observe(o.elapsed.as_secs_f64());
        match &o.result {
            Ok(status) => {
                ok += 1;
                if let RegisterStatus::Registered(r) = status {
                    note_sent_as(sh, &o.addr, r.sent_as);
                }
                if !matches!(status, RegisterStatus::Current) {
                    if let Some(b) = sh.status().beats.get_mut(&o.addr) {
                        b.needs_full = false;
                    }
                }
                note_ok(sh, &o.addr);
            }
            Err(e) => {
                // Perhaps part of a split table went in under the current data version: the
                // heartbeat's "unchanged" is not believed until a full registration succeeds.
                sh.status()
                    .beats
                    .entry(o.addr.clone())
                    .or_default()
                    .needs_full = true;
                m.registered.with_label_values(&[&o.addr]).set(0);
                let now = Instant::now();
                let retry_soon = unreachable(e);
                match sh.status().failing.entry(o.addr.clone()) {
                    Entry::Vacant(v) => {
                        v.insert(super::Failing {
                            since: now,
                            reminded: now,
                            retry_soon,
                        });
                        tracing::warn!(namesrv = %o.addr, error = %e, "registration with this NameServer failed");
                    }
                    Entry::Occupied(mut f) if f.get().reminded + every <= now => {
                        f.get_mut().reminded = now;
                        f.get_mut().retry_soon = retry_soon;
                        tracing::warn!(namesrv = %o.addr, error = %e, failing_for = ?f.get().since.elapsed(), "NameServer still failing");
                    }
                    Entry::Occupied(mut f) => {
                        f.get_mut().retry_soon = retry_soon;
                        tracing::debug!(namesrv = %o.addr, error = %e, "registration failed");
                    }
                }
                if unreachable(e) {
                    let _ = sh.retry.send(o.addr.clone());
                }
            }
        }
        summary.push(format!(
            "{}={} ({}ms)",
            o.addr,
            label,
            o.elapsed.as_millis()
        ));
    }
    if let Some(master) = out.merged.as_ref().and_then(|m| m.master_addr.clone()) {
        sh.status().master_addr = Some(master);
    }
    if summary_line {
        let total = out.per_namesrv.len();
        tracing::info!(ok, total, outcomes = %summary.join(" "), "registration round");
    }
}

/// A NameServer holds the broker (a registration or a heartbeat said so): registered, ready,
/// and one INFO if it had been failing.
pub(super) fn note_ok(sh: &Shared, addr: &str) {
    let m = &sh.metrics;
    m.registered.with_label_values(&[addr]).set(1);
    m.last_success.with_label_values(&[addr]).set(unix_now());
    let mut status = sh.status();
    status.last_ok.insert(addr.to_string(), Instant::now());
    if let Some(f) = status.failing.remove(addr) {
        tracing::info!(namesrv = %addr, out_for = ?f.since.elapsed(), "NameServer has the broker again");
    }
}

/// A NameServer that answered a full registration holds `version`: an unforced round right
/// after it has nothing to send there.
fn note_acked(sh: &Shared, out: &RegisterOutcome, version: crate::broker::body::DataVersion) {
    let mut status = sh.status();
    for o in &out.per_namesrv {
        if let (Ok(RegisterStatus::Registered(_)), Some(b)) =
            (&o.result, status.beats.get_mut(&o.addr))
        {
            b.acked = Some(version);
        }
    }
}

/// Tells (once per change) how the table went out when it did not fit in one frame.
fn note_sent_as(sh: &Shared, addr: &str, how: crate::broker::SentAs) {
    use crate::broker::SentAs;
    let requests = match how {
        SentAs::Batches(n) => n,
        SentAs::Whole | SentAs::AutoCompressed => 1,
    };
    sh.metrics
        .registration_requests
        .with_label_values(&[addr])
        .set(requests as i64);
    let before = sh.status().sent_as.insert(addr.to_string(), how);
    if before == Some(how) {
        return;
    }
    match how {
        SentAs::Batches(n) => {
            tracing::info!(namesrv = %addr, batches = n, "the registration does not fit in one frame (remoting.max_frame): sent in batches")
        }
        SentAs::AutoCompressed => {
            tracing::info!(namesrv = %addr, "the registration does not fit in one frame (remoting.max_frame): sent compressed")
        }
        SentAs::Whole if before.is_some() => {
            tracing::info!(namesrv = %addr, "the registration fits in one frame again")
        }
        SentAs::Whole => {}
    }
}

/// Failures that mean "not there right now", worth retrying sooner than the next interval.
/// Timeouts are not: a black-holed NameServer would cost a timeout per retry.
fn unreachable(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Client(
            ClientError::Connect { .. }
                | ClientError::ConnectionClosed { .. }
                | ClientError::Send { .. }
        )
    )
}

/// Re-reads the topics file when it changes, and registers the change at once.
pub(crate) async fn topics_watch(sh: Arc<Shared>) -> TaskResult {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let topics_cfg = sh.config().broker.topics.clone();
        // The metadata look and any read and parse happen on a blocking thread.
        let r = sh
            .update_topics(move |t| {
                if t.file_changed(&topics_cfg) {
                    t.refresh(&topics_cfg, false)
                } else {
                    Ok(false)
                }
            })
            .await;
        let Some(r) = r else { continue };
        match r {
            Ok(true) => {
                sh.metrics
                    .topic_reloads
                    .with_label_values(&["changed"])
                    .inc();
                tracing::info!("topics file changed, registering now");
                sh.register_now.notify_one();
            }
            Ok(false) => {}
            Err(e) => {
                sh.metrics.topic_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "topics file unusable, keeping the last good topics");
            }
        }
    }
}

const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_millis(500);

/// When a NameServer connection drops, registers with it again as soon as it accepts one:
/// a restarted NameServer must not wait a whole interval to see the broker.
pub(crate) async fn reconnect_loop(
    sh: Arc<Shared>,
    retries: Arc<Mutex<mpsc::UnboundedReceiver<String>>>,
) -> TaskResult {
    let mut retries = retries.lock().await;
    let mut retrying: JoinSet<String> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            Some(done) = retrying.join_next(), if !retrying.is_empty() => {
                if let Ok(addr) = done {
                    busy.remove(&addr);
                }
            }
            addr = retries.recv() => {
                let Some(addr) = addr else { return Ok(()) };
                if sh.token.is_cancelled() || !sh.client.name_server_list().contains(&addr) {
                    continue;
                }
                let stalled = sh.status().failing.get(&addr).is_some_and(|f| !f.retry_soon);
                if stalled {
                    tracing::debug!(namesrv = %addr, "connection closed after a timeout: the next round retries");
                    continue;
                }
                if busy.insert(addr.clone()) {
                    sh.metrics.registered.with_label_values(&[&addr]).set(0);
                    tracing::debug!(namesrv = %addr, "NameServer unreachable, registering as soon as it is back");
                    retrying.spawn(reregister(sh.clone(), addr));
                }
            }
        }
    }
}

async fn reregister(sh: Arc<Shared>, addr: String) -> String {
    let mut backoff = RECONNECT_FIRST;
    loop {
        tokio::select! {
            _ = sh.token.cancelled() => return addr,
            _ = tokio::time::sleep(backoff) => {}
        }
        if !sh.client.name_server_list().contains(&addr) || !sh.liveness.is_up() {
            // A broker that went down is registered again by a full round when it is back.
            return addr;
        }
        let cfg = sh.config();
        let Some(_shared) = sh.liveness.may_register(&sh.token).await else {
            return addr;
        };
        let Some(cur) = sh.current() else {
            return addr;
        };
        let _registering = Registering::new(&sh, std::slice::from_ref(&addr));
        let out = register_with(&sh, &addr, &cfg, &cur).await;
        // Only "not there" is retried at once; a NameServer that takes the connection but
        // not the request (timeouts, a full queue) waits for the next round.
        let retry = out
            .per_namesrv
            .iter()
            .any(|o| matches!(&o.result, Err(e) if unreachable(e)));
        if !retry {
            return addr;
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// A full registration with one NameServer whose heartbeat found it without the broker (or
/// with a registration that did not complete), through the liveness gate.
pub(super) async fn reregister_lost(sh: Arc<Shared>, addr: String) {
    let _registering = Registering::new(&sh, std::slice::from_ref(&addr));
    let Some(_shared) = sh.liveness.may_register(&sh.token).await else {
        return;
    };
    let Some(cur) = sh.current() else {
        return;
    };
    if !sh.client.name_server_list().contains(&addr) {
        return;
    }
    let cfg = sh.config();
    sh.metrics.reregistrations.with_label_values(&[&addr]).inc();
    register_with(&sh, &addr, &cfg, &cur).await;
}

/// A full registration of `cur` with one NameServer, recorded as rounds record theirs.
async fn register_with(sh: &Shared, addr: &str, cfg: &Config, cur: &Current) -> RegisterOutcome {
    let table = restricted(sh.table(), cur.permission).await;
    let addrs = [addr.to_string()];
    let out = sh
        .api
        .register_to(&addrs, &cur.id, &table, &options(cfg, true, cur))
        .await;
    record(sh, &out, false);
    note_registered_as(sh, &out, &cur.id);
    note_acked(sh, &out, table.data_version);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::body::TopicConfig;

    #[tokio::test]
    async fn a_read_only_broker_registers_every_topic_read_only() {
        let mut w = TopicConfigWrapper::default();
        w.topic_config_table
            .insert("T".into(), TopicConfig::new("T", 4));
        let w = Arc::new(w);
        assert!(Arc::ptr_eq(&restricted(w.clone(), None).await, &w));
        assert!(
            Arc::ptr_eq(&restricted(w.clone(), Some(6)).await, &w),
            "rw: as is"
        );
        assert!(Arc::ptr_eq(&restricted(w.clone(), Some(7)).await, &w));
        let ro = restricted(w.clone(), Some(4)).await;
        assert_eq!(ro.topic_config_table["T"].perm, 4);
        assert_eq!(
            w.topic_config_table["T"].perm, 6,
            "the shared table is untouched"
        );
    }
}
