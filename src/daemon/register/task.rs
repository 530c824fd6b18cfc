//! The register task: registers at once, every interval and whenever asked; owns the round
//! state, the drain and the NameServers' tasks.

use std::sync::Arc;

use tokio::time::Instant;

use crate::sources::NamesrvList;
use crate::daemon::drain::control as drain;
use super::round::round_with;
use super::state::Rounds;
use crate::daemon::settings::InForce;
use crate::daemon::topics::TopicsAsk;
use crate::daemon::identity::{Change, Current};
use crate::daemon::namesrv::{CloseRoutes, Fleet};
use crate::daemon::publisher::{follow, RegisterOut};
use crate::daemon::shared::Shared;
use crate::daemon::supervisor::TaskResult;

/// Registers at once, then every interval, and whenever something asks for it; starts and
/// stops the NameServers' tasks as the list changes; withdraws the broker when it goes down;
/// and says goodbye everywhere when the daemon stops.
pub(crate) async fn register_loop(
    sh: Arc<Shared>,
    routes: Arc<CloseRoutes>,
    out: Arc<RegisterOut>,
    topics: Arc<TopicsAsk>,
) -> TaskResult {
    let mut fleet = Fleet::new(sh.clone(), routes, out.clone());
    let mut rounds = Rounds::new(out, topics, sh.broker_up());
    let mut list = follow(&sh.namesrv_list);
    let mut identity = follow(&sh.identity);
    let mut verdict = follow(&sh.verdict);
    let mut fault = follow(&sh.fault);
    // Held for the task's life; a restarted task takes it over.
    let mut drains = sh.drain_requests.lock().await;
    let first = list.borrow_and_update().clone();
    fleet.set_list(&first).await;
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
            next = Instant::now() + rounds.spread.next(cfg.register.interval);
        }
        let drain_max = rounds
            .drain
            .as_ref()
            .and_then(|d| d.deadline(&sh.config()));
        // Work an arm starts is awaited under `stopped`: a SIGTERM abandons it at once (a drain
        // round stuck on a stalled NameServer must not eat the goodbye's time).
        tokio::select! {
            _ = sh.token.cancelled() => break,
            () = tokio::time::sleep_until(next) => due = true,
            Some(cmd) = drains.recv() => {
                if stopped(&sh, drain::on_cmd(&sh, &fleet, &mut rounds, cmd)).await {
                    break;
                }
            }
            () = until(drain_max) => {
                tracing::warn!(max = ?sh.config().drain.max, "drain still held after drain.max: ending it");
                if stopped(&sh, drain::end_planned(&sh, &fleet, &mut rounds, "drain.max passed")).await {
                    break;
                }
            }
            () = sh.register_now.notified() => due = true,
            Ok(()) = list.changed() => {
                let l = list.borrow_and_update().clone();
                if stopped(&sh, new_list(&sh, &mut fleet, &mut rounds, &l)).await {
                    break;
                }
            }
            Ok(()) = fault.changed() => {
                fault.mark_unchanged();
                if stopped(&sh, drain::faults(&sh, &fleet, &mut rounds)).await {
                    break;
                }
            }
            Ok(()) = identity.changed() => {
                let new = identity.borrow_and_update().clone();
                due |= on_identity(&mut rounds, new).await;
            }
            Ok(()) = verdict.changed() => {
                let v = verdict.borrow_and_update().clone();
                let work = on_verdict(&sh, &mut fleet, &mut rounds, &v, &mut due);
                if stopped(&sh, work).await {
                    break;
                }
            }
        }
    }
    let started = Instant::now();
    let (ok, total) = fleet.leave_all().await;
    super::super::goodbye::said(ok, total, started);
    Ok(())
}

/// Runs `work` unless the daemon stops first; true when it stopped. Abandoned work sends
/// nothing more: what it sent stays sent, and each NameServer's task, told to leave next,
/// bounds its own request in flight.
async fn stopped(sh: &Shared, work: impl std::future::Future<Output = ()>) -> bool {
    tokio::select! {
        biased;
        _ = sh.token.cancelled() => true,
        () = work => false,
    }
}

/// The broker's verdict changed: a drain held across a restart ends, and a broker that went
/// down is withdrawn everywhere (one that came back is registered at once: `due`).
async fn on_verdict(
    sh: &Arc<Shared>,
    fleet: &mut Fleet,
    rounds: &mut Rounds,
    v: &crate::daemon::health::Verdicts,
    due: &mut bool,
) {
    let up = v.is_up();
    if let Some(d) = rounds.drain.as_mut().filter(|d| d.planned.is_some()) {
        if !up || v.failures() > 0 {
            d.saw_failure = true;
        } else if d.saw_failure || v.interruptions() != d.interruptions {
            // It failed a check and passes again: it restarted (perhaps faster than the
            // down-detection), and must not stay read-only.
            drain::end_planned(sh, fleet, rounds, "the broker stopped and serves again").await;
        }
    }
    if std::mem::replace(&mut rounds.up, up) != up {
        // Either way the NameServers' tables no longer hold what was registered: the next
        // round is a full one.
        rounds.last_full = None;
        if up {
            *due = true;
        } else {
            fleet.withdraw_all().await;
        }
    }
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
async fn on_identity(rounds: &mut Rounds, new: Option<Current>) -> bool {
    let Some(new) = new else { return false };
    let change = new.change_from(rounds.advertised.as_ref());
    match change {
        Change::None => false,
        // The first round registers it: at start, or when the broker first serves.
        Change::First => true,
        Change::Role | Change::Settings => {
            rounds.topics.advance_version().await;
            rounds.last_full = None;
            rounds.advertised = Some(new);
            true
        }
    }
}

/// One registration round with every NameServer; nothing while the broker does not serve.
/// A fault that could not be drained when it began (no identity, no NameServer yet) is tried
/// first: a broker that cannot take writes is never registered writable by the round.
async fn round(sh: &Arc<Shared>, cfg: &Arc<InForce>, fleet: &Fleet, rounds: &mut Rounds) {
    drain::faults(sh, fleet, rounds).await;
    round_with(sh, cfg, fleet, rounds).await;
}

/// A new NameServer list: its tasks start with what is advertised, a fault drain that could
/// not begin without a NameServer begins now.
async fn new_list(sh: &Arc<Shared>, fleet: &mut Fleet, rounds: &mut Rounds, list: &NamesrvList) {
    fleet.set_list(list).await;
    drain::faults(sh, fleet, rounds).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::daemon::publisher::Channels;

    /// The register task's publishers and its asks of a topics task running beside it.
    fn register_ends(sh: &Arc<Shared>, ch: Channels) -> (Arc<RegisterOut>, Arc<TopicsAsk>) {
        tokio::spawn(crate::daemon::topics::topics_loop(sh.clone(), Arc::new(ch.topics)));
        (Arc::new(ch.register), Arc::new(ch.topics_ask))
    }

    fn rounds(sh: &Shared) -> u64 {
        ["changed", "unchanged", "error"]
            .iter()
            .map(|l| {
                sh.metrics
                    .broker()
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
        let (sh, ch) = Shared::for_tests(cfg);
        let (out, topics) = register_ends(&sh, ch);
        let task = tokio::spawn(register_loop(sh.clone(), Arc::default(), out, topics));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(rounds(&sh), 1, "first round at once");
        // The waits are the interval spread within ±10 %, the same for a seed every time.
        let mut spread = super::super::spread::Spread::new(crate::daemon::shared::TEST_SEED);
        let mut due = started;
        for n in 2..=4 {
            let wait = spread.next(Duration::from_secs(30));
            assert!((27_000..=33_000).contains(&wait.as_millis()), "{wait:?}");
            due += wait;
            tokio::time::sleep_until(due - Duration::from_millis(5)).await;
            assert_eq!(rounds(&sh), n - 1, "round {n} not before its wait");
            tokio::time::sleep_until(due + Duration::from_millis(5)).await;
            assert_eq!(rounds(&sh), n, "round {n} after {wait:?}");
        }
        sh.register_now.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(rounds(&sh), 5, "a request registers at once");
        sh.token.cancel();
        assert!(task.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn anything_registered_that_changes_advances_the_data_version() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "10.0.0.1:10911".into();
        let (sh, ch) = Shared::for_tests(cfg.clone());
        let (out, topics) = register_ends(&sh, ch);
        let mut rounds = Rounds::new(out, topics.clone(), true);
        let v = || async {
            let read = topics.for_round(sh.config()).await.expect("a table");
            read.table.data_version.counter
        };
        assert!(on_identity(&mut rounds, Some(Current::from_config(&cfg))).await);
        rounds.advertised = Some(Current::from_config(&cfg));
        let first = v().await;
        // The same again (a reload that changed nothing registered): no new version, no round.
        assert!(!on_identity(&mut rounds, Some(Current::from_config(&cfg))).await);
        assert_eq!(v().await, first);
        // broker.permission changed at SIGHUP: NameServers update queue data only on a new
        // version, so it must advance although no topic changed, and the round is a full one.
        rounds.last_full = Some(Instant::now());
        cfg.broker.permission = Some(4);
        assert!(on_identity(&mut rounds, Some(Current::from_config(&cfg))).await);
        let after = v().await;
        assert!(after > first, "{first} -> {after}");
        assert_eq!(rounds.last_full, None);
        cfg.broker.id = 1;
        assert!(on_identity(&mut rounds, Some(Current::from_config(&cfg))).await);
        assert!(v().await > after);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_of_register_now_neither_blocks_nor_drops_a_state_change() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        let (sh, ch) = Shared::for_tests(cfg.clone());
        let identity = ch.identity;
        let (topics, topics_ask) = (ch.topics, ch.topics_ask);
        tokio::spawn(crate::daemon::topics::topics_loop(sh.clone(), Arc::new(topics)));
        let task = tokio::spawn(register_loop(
            sh.clone(),
            Arc::default(),
            Arc::new(ch.register),
            Arc::new(topics_ask),
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Ten thousand asks while nothing runs: they merge into one round, and the caller never
        // waits.
        for _ in 0..10_000 {
            sh.register_now.notify_one();
        }
        // A state change in the middle of the flood is still seen: a new id advances the
        // version the next round advertises.
        cfg.broker.id = 1;
        identity.identity.send_replace(Some(Current::from_config(&cfg)));
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
