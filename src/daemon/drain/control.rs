//! The drain: the broker routed read-only on every NameServer before it stops, held by the
//! register task until the broker has stopped and serves again, a cancel, or `drain.max`.
//!
//! A drain registers the topics with the write bit cleared under exactly the broker's current
//! data version (a registration whose version a NameServer already holds rewrites nothing, so
//! the broker's own registrations do not undo it), then asks WIPE_WRITE_PERM_OF_BROKER. A
//! NameServer that shows it lost that version (a heartbeat says changed, a reconnect) gets the
//! same again at once, with the topics read again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::{Drain, DrainCmd, Draining, Reason, Refused, Started};
use crate::daemon::register::{publish_advert, round_with, Rounds};
use crate::config::{Config, IdentitySource};
use crate::daemon::namesrv::Fleet;
use crate::daemon::shared::Shared;

/// Acts on one request.
pub(crate) async fn on_cmd(sh: &Arc<Shared>, fleet: &Fleet, rounds: &mut Rounds, cmd: DrainCmd) {
    match cmd {
        DrainCmd::Start { who, wait, reply } => {
            let started = start(sh, fleet, rounds, who, wait).await;
            let _ = reply.send(started);
        }
        DrainCmd::Cancel { who, reply } => {
            let since = rounds.drain.as_ref().map(Drain::since);
            if since.is_some() {
                end(sh, fleet, rounds, &format!("cancelled by {who}")).await;
            }
            let _ = reply.send(since);
        }
    }
}

async fn start(
    sh: &Arc<Shared>,
    fleet: &Fleet,
    rounds: &mut Rounds,
    who: String,
    wait: std::time::Duration,
) -> Result<Started, Refused> {
    if let Some(d) = &rounds.drain {
        tracing::info!(%who, since = %humantime::format_rfc3339_seconds(d.since()), "drain asked again: joined the one in force");
        return Ok(Started {
            since: d.since(),
            joined: true,
            refused: Vec::new(),
        });
    }
    let cfg = sh.config();
    refusal(sh, &cfg, fleet)?;
    let since = SystemTime::now();
    let held = Draining {
        since,
        reasons: BTreeSet::from([Reason::Planned { who: who.clone() }]),
    };
    rounds.drain = Some(Drain {
        held: held.clone(),
        started: Instant::now(),
        saw_failure: false,
        interruptions: sh.verdict.borrow().interruptions(),
    });
    rounds.out.metrics.set_draining(Some(since));
    rounds.out.draining.send_modify(|v| v.held = Some(held));
    tracing::info!(%who, wait = ?wait, "draining: routing the broker read-only on every NameServer");
    let refused = round_with(sh, &cfg, fleet, rounds).await;
    for r in &refused {
        tracing::warn!(refused = %r, "a NameServer did not take the drain");
    }
    Ok(Started {
        since,
        joined: false,
        refused,
    })
}

/// Why this broker may not drain now, if so.
fn refusal(sh: &Shared, cfg: &Config, fleet: &Fleet) -> Result<(), Refused> {
    if !sh.broker_up() {
        return Err(Refused::BrokerDown);
    }
    let Some(cur) = sh.current() else {
        return Err(Refused::NoIdentity);
    };
    if cur.id.id != 0 {
        return Err(Refused::NotMaster(cur.id.id));
    }
    if cfg.broker.identity == IdentitySource::Broker && cur.always_split {
        return Err(Refused::SplitRegistration);
    }
    if fleet.is_empty() {
        return Err(Refused::NoNamesrv);
    }
    Ok(())
}

/// Ends the drain in force: one registration with true permissions under the next data
/// version (every NameServer rewrites its queue data), then one under the table's own version
/// (so the broker's own registrations and the heartbeats find it current, no endless
/// "changed"). Never ADD_WRITE_PERM: it would set every topic read+write.
pub(crate) async fn end(sh: &Arc<Shared>, fleet: &Fleet, rounds: &mut Rounds, why: &str) {
    let Some(d) = rounds.drain.take() else {
        return;
    };
    rounds.out.metrics.set_draining(None);
    rounds.out.draining.send_modify(|v| {
        v.held = None;
        v.ended = Some((d.since(), why.to_string()));
    });
    tracing::info!(
        why, reasons = %d.held.why(),
        held = ?d.started.elapsed(),
        "drain ended: registering the broker's true permissions"
    );
    rounds.last_full = None;
    let cfg = sh.config();
    let Some(cur) = sh.current() else { return };
    let Some(advert) = publish_advert(&cfg, rounds, &cur, None).await else {
        return;
    };
    if fleet.is_empty() || !sh.broker_up() {
        return;
    }
    let mut next = (*advert.table).clone();
    next.data_version = next.data_version.next();
    let bumped = Arc::new(crate::daemon::published::Advert {
        id: advert.id.clone(),
        table: Arc::new(next),
        opts: advert.opts.clone(),
        drain: None,
    });
    fleet.round(&bumped, true).await;
    fleet.round(&advert, true).await;
}

