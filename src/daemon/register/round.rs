//! The registration round: at start, every `register.interval`, and whenever something asks.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::record::{record, Registering};
use crate::broker::body::TopicConfigWrapper;
use crate::broker::{NamesrvOutcome, RegisterOptions, RegisterStatus};
use crate::config::{Config, TopicSource};
use crate::daemon::heartbeat::{plan, Due, Plan};
use crate::daemon::identity::Current;
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::metrics::labels::Reload;

/// The options a registration of `cur` goes out with.
pub(super) fn options(cfg: &Config, force: bool, cur: &Current) -> RegisterOptions {
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
            .daemon
            .set_register_interval(cfg.register.interval);
        round(&sh, &cfg).await;
        tokio::select! {
            _ = sh.token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(cfg.register.interval) => {}
            _ = sh.register_now.notified() => {}
        }
    }
}

/// One registration round with every NameServer; nothing while the broker does not serve.
async fn round(sh: &Arc<Shared>, cfg: &Config) {
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
    sh.metrics.broker.set_topics(table.topic_config_table.len());
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
        Some(every) => sh.last_full().is_none_or(|t| t.elapsed() >= every),
    };
    // With heartbeats on, they already ask each NameServer for the data version every
    // second: an unforced round registers only where the current one is not confirmed, and
    // sends no QUERY_DATA_VERSION of its own.
    let (full, current) = if cfg.register.heartbeat.is_some() {
        let records = sh.namesrvs.lock();
        let version = table.data_version;
        addrs.into_iter().partition(|a| {
            let b = records.get(a).map(|r| r.beat.clone()).unwrap_or_default();
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
    sh.metrics.daemon.round_took(started.elapsed());
    if force && out.per_namesrv.iter().any(|o| o.result.is_ok()) {
        sh.set_last_full(Some(started));
    }
    record(sh, &out, &cur.id, table.data_version, true);
}

/// The table to register this round, from the configured source. None: nothing to register
/// yet (the broker's topics were never read: registering an empty table would withdraw its
/// routes).
async fn current_topics(sh: &Arc<Shared>, cfg: &Config) -> Option<Arc<TopicConfigWrapper>> {
    let topics_cfg = cfg.broker.topics.clone();
    let read = if topics_cfg.source == TopicSource::Broker {
        let addr = cfg.broker_check_addr();
        match sh.api.broker_topics(addr, cfg.register.timeout).await {
            Ok(w) => {
                let changed = sh
                    .topics
                    .update(move |t| t.set_broker_topics(&topics_cfg, w))
                    .await?;
                Some(if changed {
                    Reload::Changed
                } else {
                    Reload::Unchanged
                })
            }
            Err(e) => {
                sh.metrics.broker.topic_reload(Reload::Error);
                if !sh.topics.update(|t| t.has_broker_topics()).await? {
                    tracing::warn!(broker = %addr, error = %e, "cannot read the broker's topics: registration waits for them");
                    return None;
                }
                tracing::warn!(broker = %addr, error = %e, "cannot read the broker's topics, registering the last good ones");
                None
            }
        }
    } else {
        match sh
            .topics
            .update(move |t| t.refresh(&topics_cfg, true))
            .await
        {
            Some(Ok(changed)) => Some(if changed {
                Reload::Changed
            } else {
                Reload::Unchanged
            }),
            Some(Err(e)) => {
                sh.metrics.broker.topic_reload(Reload::Error);
                tracing::error!(error = %e, "topics file unusable, registering the last good topics");
                None
            }
            None => None,
        }
    };
    if let Some(outcome) = read {
        sh.metrics.broker.topic_reload(outcome);
    }
    Some(sh.topics.table())
}

/// The table as Java registers it under `brokerPermission`: a broker that is not both readable
/// and writable registers every topic's perm ANDed with its own.
pub(super) async fn restricted(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::body::TopicConfig;
    use crate::config::Config;

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

    fn rounds(sh: &Shared) -> u64 {
        ["changed", "unchanged", "error"]
            .iter()
            .map(|l| {
                sh.metrics
                    .broker
                    .topic_reloads
                    .with_label_values(&[l])
                    .get()
            })
            .sum()
    }

    #[tokio::test(start_paused = true)]
    async fn registers_at_start_every_interval_and_on_demand() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        let sh = Shared::for_tests(cfg);
        let task = tokio::spawn(register_loop(sh.clone()));
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
