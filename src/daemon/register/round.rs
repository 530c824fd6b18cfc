//! The registration round: at start, every `register.interval`, and whenever something asks.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::drain::{self, Drain};

use crate::broker::body::TopicConfigWrapper;
use crate::broker::{RegisterOptions, RegisterOutcome, RegisterStatus};
use crate::daemon::published::Advert;
use crate::config::{Config, TopicSource};
use crate::daemon::identity::{Change, Current};
use crate::daemon::namesrv::{CloseRoutes, Fleet};
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;
use crate::metrics::labels::{Label, Registration, Reload};

/// The options a registration of `cur` goes out with.
pub(crate) fn options(cfg: &Config, force: bool, cur: &Current) -> RegisterOptions {
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

/// The round state the register task owns.
#[derive(Default)]
pub(super) struct Rounds {
    /// Last full (forced) round; `None` makes the next round a full one.
    pub(super) last_full: Option<Instant>,
    /// The identity last advertised.
    pub(super) advertised: Option<Current>,
    /// The broker served at the last look.
    up: bool,
    /// The drain in force.
    pub(super) drain: Option<Drain>,
}

/// Registers at once, then every interval, and whenever something asks for it; starts and
/// stops the NameServers' tasks as the list changes; withdraws the broker when it goes down;
/// and says goodbye everywhere when the daemon stops.
pub(crate) async fn register_loop(sh: Arc<Shared>, routes: Arc<CloseRoutes>) -> TaskResult {
    let mut fleet = Fleet::new(sh.clone(), routes);
    let mut rounds = Rounds {
        up: sh.broker_up(),
        ..Rounds::default()
    };
    let mut list = sh.namesrv_list.subscribe();
    let mut identity = sh.identity.subscribe();
    let mut verdict = sh.verdict.subscribe();
    // Held for the task's life; a restarted task takes it over.
    let mut drains = sh.drain_requests.lock().await;
    let first = list.borrow_and_update().clone();
    fleet.set(&first).await;
    rounds.advertised = identity.borrow_and_update().clone();
    let mut due = true;
    let mut next = Instant::now();
    loop {
        if due {
            due = false;
            let cfg = sh.config();
            tokio::select! {
                _ = sh.token.cancelled() => break,
                () = round(&sh, &cfg, &fleet, &mut rounds) => {}
            }
            next = Instant::now() + cfg.register.interval;
        }
        let drain_max = rounds
            .drain
            .as_ref()
            .map(|d| d.deadline(&sh.config()));
        tokio::select! {
            _ = sh.token.cancelled() => break,
            () = tokio::time::sleep_until(next) => due = true,
            Some(cmd) = drains.recv() => drain::on_cmd(&sh, &fleet, &mut rounds, cmd).await,
            () = until(drain_max) => {
                tracing::warn!(max = ?sh.config().drain.max, "drain still held after drain.max: ending it");
                drain::end(&sh, &fleet, &mut rounds, "drain.max passed").await;
            }
            () = sh.register_now.notified() => due = true,
            Ok(()) = list.changed() => {
                let l = list.borrow_and_update().clone();
                fleet.set(&l).await;
            }
            Ok(()) = identity.changed() => {
                let new = identity.borrow_and_update().clone();
                due |= on_identity(&sh, &mut rounds, new).await;
            }
            Ok(()) = verdict.changed() => {
                let v = verdict.borrow_and_update().clone();
                let up = v.is_up();
                if let Some(d) = rounds.drain.as_mut() {
                    if !up || v.failures() > 0 {
                        d.saw_failure = true;
                    } else if d.saw_failure {
                        // It failed a check and passes again: it restarted (perhaps faster
                        // than the down-detection), and must not stay read-only.
                        drain::end(&sh, &fleet, &mut rounds, "the broker stopped and serves again").await;
                    }
                }
                if std::mem::replace(&mut rounds.up, up) != up {
                    // Either way the NameServers' tables no longer hold what was registered:
                    // the next round is a full one.
                    rounds.last_full = None;
                    if up {
                        due = true;
                    } else {
                        fleet.withdraw_all().await;
                    }
                }
            }
        }
    }
    let started = Instant::now();
    let (ok, total) = fleet.leave_all().await;
    super::super::goodbye::said(ok, total, started);
    Ok(())
}

/// Sleeps until `at`, or forever without one.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A new identity: anything registered that changed advances the data version (NameServers
/// update their tables only on a new version) and forces a full round at once. True when a
/// round is due.
async fn on_identity(sh: &Shared, rounds: &mut Rounds, new: Option<Current>) -> bool {
    let Some(new) = new else { return false };
    let change = new.change_from(rounds.advertised.as_ref());
    match change {
        Change::None => false,
        // The first round registers it: at start, or when the broker first serves.
        Change::First => true,
        Change::Role | Change::Settings => {
            sh.topics.update(|t| t.advance_version()).await;
            rounds.last_full = None;
            rounds.advertised = Some(new);
            true
        }
    }
}

/// One registration round with every NameServer; nothing while the broker does not serve.
async fn round(sh: &Arc<Shared>, cfg: &Config, fleet: &Fleet, rounds: &mut Rounds) {
    round_with(sh, cfg, fleet, rounds).await;
}

/// Reads the topics and publishes what every NameServer is told now: the table under the
/// broker's permission, or read-only while `drain` (since when) is in force.
pub(super) async fn publish_advert(
    sh: &Arc<Shared>,
    cfg: &Config,
    rounds: &mut Rounds,
    cur: &Current,
    drain: Option<SystemTime>,
) -> Option<Arc<Advert>> {
    let table = current_topics(sh, cfg).await?;
    let table = match drain {
        Some(_) => super::drain::read_only(sh, cfg, table, cur).await,
        None => restricted(table, cur.permission).await,
    };
    sh.metrics.broker.set_topics(table.topic_config_table.len());
    let advert = Arc::new(Advert {
        id: cur.id.clone(),
        table,
        opts: options(cfg, false, cur),
        drain,
    });
    sh.advert.send_replace(Some(advert.clone()));
    rounds.advertised = Some(cur.clone());
    Some(advert)
}

/// A round; returns the NameServers that did not take it, with why (what a drain's answer
/// names).
pub(super) async fn round_with(
    sh: &Arc<Shared>,
    cfg: &Config,
    fleet: &Fleet,
    rounds: &mut Rounds,
) -> Vec<String> {
    sh.metrics
        .daemon
        .set_register_interval(cfg.register.interval);
    if !sh.broker_up() {
        tracing::debug!("broker not serving: registration paused");
        return Vec::new();
    }
    let Some(cur) = sh.current() else {
        tracing::debug!("the broker has not said who it is yet: registration waits");
        return Vec::new();
    };
    let drain = rounds.drain.as_ref().map(|d| d.since);
    let Some(advert) = publish_advert(sh, cfg, rounds, &cur, drain).await else {
        return vec!["the broker's topics could not be read".into()];
    };
    if fleet.is_empty() {
        tracing::warn!("no NameServer known yet, registration skipped");
        return Vec::new();
    }
    // A drain's round is always a full one: a NameServer that lost the read-only version
    // asked for it.
    let force = drain.is_some()
        || match cfg.register.force_every {
            None => true,
            Some(every) => rounds.last_full.is_none_or(|t| t.elapsed() >= every),
        };
    let started = Instant::now();
    let out = RegisterOutcome::merge(fleet.round(&advert, force).await);
    sh.metrics.daemon.round_took(started.elapsed());
    if force && out.per_namesrv.iter().any(|o| o.result.is_ok()) {
        rounds.last_full = Some(started);
    }
    summary(sh, &out);
    out.per_namesrv
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.addr)))
        .collect()
}

/// The round's one-line summary, and the master's address it learnt (slave pulls).
fn summary(sh: &Shared, out: &RegisterOutcome) {
    if let Some(master) = out.merged.as_ref().and_then(|m| m.master_addr.clone()) {
        sh.master.send_if_modified(|known| {
            let changed = known.as_deref() != Some(master.as_str());
            if changed {
                *known = Some(master);
            }
            changed
        });
    }
    let mut ok = 0;
    let mut outcomes = Vec::with_capacity(out.per_namesrv.len());
    for o in &out.per_namesrv {
        let label = match &o.result {
            Ok(RegisterStatus::Registered(_)) => Registration::Ok,
            Ok(RegisterStatus::Current) => Registration::Current,
            Ok(RegisterStatus::Sent) => Registration::Sent,
            Err(e) => Registration::Failed(e.kind()),
        };
        ok += usize::from(o.result.is_ok());
        outcomes.push(format!(
            "{}={} ({}ms)",
            o.addr,
            label.as_str(),
            o.elapsed.as_millis()
        ));
    }
    let total = out.per_namesrv.len();
    tracing::info!(ok, total, outcomes = %outcomes.join(" "), "registration round");
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
pub(crate) async fn restricted(
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
    use std::time::Duration;

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
        let task = tokio::spawn(register_loop(sh.clone(), Arc::default()));
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

    #[tokio::test]
    async fn anything_registered_that_changes_advances_the_data_version() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "10.0.0.1:10911".into();
        let sh = Shared::for_tests(cfg.clone());
        let mut rounds = Rounds::default();
        let v = || sh.topics.table().data_version.counter;
        assert!(on_identity(&sh, &mut rounds, Some(Current::from_config(&cfg))).await);
        rounds.advertised = Some(Current::from_config(&cfg));
        let first = v();
        // The same again (a reload that changed nothing registered): no new version, no round.
        assert!(!on_identity(&sh, &mut rounds, Some(Current::from_config(&cfg))).await);
        assert_eq!(v(), first);
        // broker.permission changed at SIGHUP: NameServers update queue data only on a new
        // version, so it must advance although no topic changed, and the round is a full one.
        rounds.last_full = Some(Instant::now());
        cfg.broker.permission = Some(4);
        assert!(on_identity(&sh, &mut rounds, Some(Current::from_config(&cfg))).await);
        assert!(v() > first, "{} -> {}", first, v());
        assert_eq!(rounds.last_full, None);
        cfg.broker.id = 1;
        let before = v();
        assert!(on_identity(&sh, &mut rounds, Some(Current::from_config(&cfg))).await);
        assert!(v() > before);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_register_now_neither_blocks_nor_drops_a_state_change() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        let sh = Shared::for_tests(cfg.clone());
        let task = tokio::spawn(register_loop(sh.clone(), Arc::default()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Ten thousand asks while nothing runs: they merge into one round, and the caller never
        // waits.
        for _ in 0..10_000 {
            sh.register_now.notify_one();
        }
        // A state change in the middle of the flood is still seen: a new id advances the
        // version the next round advertises.
        cfg.broker.id = 1;
        sh.identity.send_replace(Some(Current::from_config(&cfg)));
        for _ in 0..10_000 {
            sh.register_now.notify_one();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(rounds(&sh) <= 4, "{} rounds for a flood of asks", rounds(&sh));
        let advert = sh.advert.borrow().clone().expect("advertised");
        assert_eq!(advert.id.id, 1, "the new identity is advertised");
        sh.token.cancel();
        assert!(task.await.unwrap().is_ok());
    }
}
