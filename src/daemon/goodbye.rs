//! Saying goodbye: UNREGISTER_BROKER to the NameServers, each naming the broker as it holds
//! it; at SIGTERM (after the tasks stop) and for NameServers that leave the list.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::identity::Current;
use super::shared::Shared;
use super::supervisor::Supervisor;
use crate::broker::{BrokerIdentity, UnregisterOutcome};
use crate::metrics::labels::Unregistration;

/// UNREGISTER_BROKER to `addrs`, each asked to forget the broker as it last registered it
/// (after an election one that missed the new identity still holds the old one); one never
/// registered with is asked with the current identity; none known: nothing to withdraw.
pub(crate) async fn goodbye(
    sh: &Shared,
    addrs: &[String],
    timeout: Duration,
) -> crate::broker::UnregisterOutcome {
    let groups = goodbye_groups(addrs, &sh.namesrvs.registered_as(), sh.current());
    let asks = groups
        .iter()
        .map(|(id, group)| sh.api.unregister_from(group, id, timeout));
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// How long shutdown waits for a registration round in flight before unregistering anyway.
const SHUTDOWN_ROUND_WAIT: Duration = Duration::from_millis(300);

/// Stops the timers, says goodbye to every NameServer within one timeout, closes everything.
pub(crate) async fn shutdown(shared: &Arc<Shared>, sup: &Supervisor) {
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
    let unregister = goodbye(shared, &addrs, cfg.register.timeout);
    let (outcomes, ()) = tokio::join!(unregister, sup.stop(Duration::from_millis(500)));
    let ok = count_unregistrations(shared, &outcomes);
    shared.client.shutdown();
    tracing::info!(ok, total = outcomes.len(), took = ?started.elapsed(), "unregistered; bye");
}

/// The NameServers grouped by the identity to unregister there: the one each last registered,
/// else the current one.
fn goodbye_groups(
    addrs: &[String],
    registered_as: &HashMap<String, BrokerIdentity>,
    current: Option<Current>,
) -> Vec<(BrokerIdentity, Vec<String>)> {
    let mut groups: Vec<(BrokerIdentity, Vec<String>)> = Vec::new();
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
pub(crate) fn count_unregistrations(sh: &Shared, outcomes: &UnregisterOutcome) -> usize {
    let mut ok = 0;
    for o in outcomes {
        let outcome = o
            .result
            .as_ref()
            .map_or_else(|e| Unregistration::Failed(e.kind()), |_| Unregistration::Ok);
        sh.metrics.namesrv.unregistration(&o.addr, outcome);
        match &o.result {
            Ok(()) => ok += 1,
            Err(e) => tracing::warn!(namesrv = %o.addr, error = %e, "unregister failed"),
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_goodbye_names_the_broker_as_each_namesrv_holds_it() {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "10.0.0.1:10911".into();
        let old = crate::daemon::settings::identity(&cfg);
        cfg.broker.id = 1;
        let now = Current::from_config(&cfg);
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
}
