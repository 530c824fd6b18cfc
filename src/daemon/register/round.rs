//! One registration round: the table read, what every NameServer is told published, and each
//! NameServer asked.

use std::sync::Arc;

use tokio::time::Instant;

use super::state::Rounds;

use crate::broker::body::{perm, TopicConfigWrapper};
use crate::broker::{RegisterOptions, RegisterOutcome, RegisterStatus};
use crate::daemon::published::Advert;
use crate::daemon::publisher::RegisterOut;
use crate::config::{Config, TopicSource};
use crate::daemon::drain::Draining;
use crate::daemon::identity::Current;
use crate::daemon::namesrv::Fleet;
use crate::daemon::shared::Shared;
use crate::daemon::settings::InForce;
use crate::daemon::topics::RoundTable;
use crate::metrics::labels::{Label, Registration};

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
        assume_topic_deletion: cfg.register.assume_topic_deletion,
    }
}

/// Reads the topics and publishes what every NameServer is told now: the table under the
/// broker's permission, or read-only while `drain` (since when) is in force.
pub(crate) async fn publish_advert(
    cfg: &Arc<InForce>,
    rounds: &mut Rounds,
    cur: &Current,
    drain: Option<Draining>,
) -> Option<Arc<Advert>> {
    let read = rounds.topics.for_round(cfg.clone()).await?;
    let table = match drain {
        Some(_) => read_only(cfg, read, cur).await,
        None => restricted(read.table, cur.permission).await,
    };
    rounds.out.metrics.set_topics(table.topic_config_table.len());
    let advert = Arc::new(Advert {
        id: cur.id.clone(),
        table,
        opts: options(cfg, false, cur),
        drain,
    });
    rounds.out.advert.send_replace(Some(advert.clone()));
    rounds.advertised = Some(cur.clone());
    Some(advert)
}

/// A round; returns the NameServers that did not take it, with why (what a drain's answer
/// names).
pub(crate) async fn round_with(
    sh: &Arc<Shared>,
    cfg: &Arc<InForce>,
    fleet: &Fleet,
    rounds: &mut Rounds,
) -> Vec<String> {
    rounds.out.metrics.set_register_interval(cfg.register.interval);
    if !sh.broker_up() {
        tracing::debug!("broker not serving: registration paused");
        return Vec::new();
    }
    let Some(cur) = sh.current() else {
        tracing::debug!("the broker has not said who it is yet: registration waits");
        return Vec::new();
    };
    let drain = rounds.drain.as_ref().map(|d| d.held.clone());
    let Some(advert) = publish_advert(cfg, rounds, &cur, drain).await else {
        return vec!["the broker's topics could not be read".into()];
    };
    if fleet.is_empty() {
        // With the list from the broker (`--broker`), the broker's first answer gives the
        // identity and the list together, and this task may see the identity first: the list
        // is on its way then, not missing.
        let coming = !sh.namesrv_list.borrow().addrs.is_empty()
            || sh
                .report
                .borrow()
                .as_ref()
                .is_some_and(|r| !r.namesrv_addrs.is_empty());
        if coming {
            tracing::debug!("the NameServer list is on its way: registration waits for it");
        } else {
            tracing::warn!("no NameServer known yet, registration skipped");
        }
        return Vec::new();
    }
    // A drain's round is always a full one: a NameServer that lost the read-only version
    // asked for it.
    let force = advert.drain.is_some()
        || match cfg.register.force_every {
            None => true,
            Some(every) => rounds.last_full.is_none_or(|t| t.elapsed() >= every),
        };
    let started = Instant::now();
    let out = RegisterOutcome::merge(fleet.round(&advert, force).await);
    rounds.out.metrics.round_took(started.elapsed());
    if force && out.per_namesrv.iter().any(|o| o.result.is_ok()) {
        rounds.last_full = Some(started);
    }
    summary(&rounds.out, &out);
    out.per_namesrv
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.addr)))
        .collect()
}

/// The round's one-line summary, and the master's address it learnt (slave pulls).
fn summary(publish: &RegisterOut, out: &RegisterOutcome) {
    if let Some(master) = out.merged.as_ref().and_then(|m| m.master_addr.clone()) {
        publish.master.send_if_modified(|known| {
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

/// The table as a drain registers it: every topic without the write bit, under exactly the
/// broker's own data version when the topics come from the broker (so that the broker's own
/// registrations of that version rewrite nothing).
pub(crate) async fn read_only(
    cfg: &Config,
    read: RoundTable,
    cur: &Current,
) -> Arc<TopicConfigWrapper> {
    let broker_version = read
        .broker_version
        .filter(|_| cfg.broker.topics.source == TopicSource::Broker);
    let mask = cur.permission.unwrap_or(perm::READ | perm::WRITE) & !perm::WRITE;
    let masked = restricted(read.table, Some(mask)).await;
    match broker_version {
        Some(v) if v != masked.data_version => {
            let mut t = (*masked).clone();
            t.data_version = v;
            Arc::new(t)
        }
        _ => masked,
    }
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
