//! The drain: the broker routed read-only on every NameServer before it stops, held by the
//! register task until the broker has stopped and serves again, a cancel, or `drain.max`.
//!
//! A drain registers the topics with the write bit cleared under exactly the broker's current
//! data version (a registration whose version a NameServer already holds rewrites nothing, so
//! the broker's own registrations do not undo it), then asks WIPE_WRITE_PERM_OF_BROKER. A
//! NameServer that shows it lost that version (a heartbeat says changed, a reconnect) gets the
//! same again at once, with the topics read again.
//!
//! Its reasons are a set: planned ones (asked through `/drain`; a cancel, the broker's restart
//! or `drain.max` end them) and faults (the health task's: they end when the broker takes
//! writes again). It ends, with the broker's true permissions registered, when none is left.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::{Cancelled, Drain, DrainCmd, Draining, Reason, Refused, Started};
use crate::daemon::fault::FaultKind;
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
            let held = rounds.drain.as_ref();
            let since = held.filter(|d| d.held.planned()).map(Drain::since);
            let faults = held.map(|d| d.held.faults()).unwrap_or_default();
            if since.is_some() {
                end_planned(sh, fleet, rounds, &format!("cancelled by {who}")).await;
            }
            let _ = reply.send(Cancelled { since, faults });
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
    let cfg = sh.config();
    if let Some(d) = &mut rounds.drain {
        let since = d.since();
        if d.held.planned() {
            tracing::info!(%who, since = %humantime::format_rfc3339_seconds(since), "drain asked again: joined the one in force");
            return Ok(Started {
                since,
                joined: true,
                refused: Vec::new(),
            });
        }
        // A fault drain holds: the broker is read-only already; the planned reason joins it
        // (from now on a restart or a cancel ends it, and heartbeats go every DRAIN_BEAT).
        plan(d, sh, who.clone());
        tracing::info!(%who, wait = ?wait, faults = %d.held.why(), "drain asked while a fault drain holds: joined it");
        rounds.out.metrics.set_draining(Some(SystemTime::now()));
        show(rounds);
        let refused = round_with(sh, &cfg, fleet, rounds).await;
        return Ok(Started {
            since,
            joined: true,
            refused,
        });
    }
    refusal(sh, &cfg, fleet)?;
    let mut d = begin(sh, BTreeSet::new());
    let since = d.since();
    plan(&mut d, sh, who.clone());
    rounds.drain = Some(d);
    rounds.out.metrics.set_draining(Some(since));
    show(rounds);
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

/// A drain beginning now for `reasons`.
fn begin(sh: &Shared, reasons: BTreeSet<Reason>) -> Drain {
    Drain {
        held: Draining {
            since: SystemTime::now(),
            reasons,
        },
        started: Instant::now(),
        planned: None,
        saw_failure: false,
        interruptions: sh.verdict.borrow().interruptions(),
    }
}

/// Publishes the drain in force (or none) as it is now: its view, and the write-fault gauges
/// from its fault reasons (derived here, in one place, so they always agree with the route).
fn show(rounds: &Rounds) {
    gauges(rounds);
    let held = rounds.drain.as_ref().map(|d| d.held.clone());
    rounds.out.draining.send_modify(|v| v.held = held);
}

/// The write-fault gauges, from the fault reasons of the drain in force.
fn gauges(rounds: &Rounds) {
    let faults = rounds.drain.as_ref().map(|d| d.held.faults()).unwrap_or_default();
    for k in [FaultKind::Disk, FaultKind::Store] {
        rounds.out.metrics.set_write_fault(k.as_str(), faults.contains(&k));
    }
}

/// Adds a planned reason asked by `who`: `drain.max` and the broker's restart count from now.
fn plan(d: &mut Drain, sh: &Shared, who: String) {
    d.held.reasons.insert(Reason::Planned { who });
    d.planned = Some(Instant::now());
    d.saw_failure = false;
    d.interruptions = sh.verdict.borrow().interruptions();
}

/// Holds a drain for exactly the faults the health task publishes now: a fault that began
/// starts one (or joins the one in force), one that ended leaves it, and the drain ends with
/// its last reason. A broker that cannot be drained now is tried again at the next change or
/// round.
pub(crate) async fn faults(sh: &Arc<Shared>, fleet: &Fleet, rounds: &mut Rounds) {
    let want = &sh.fault.borrow().kinds.clone();
    let held = rounds.drain.as_ref().map(|d| d.held.faults()).unwrap_or_default();
    if held == *want {
        return;
    }
    let cfg = sh.config();
    let Some(d) = &mut rounds.drain else {
        if let Err(why) = refusal(sh, &cfg, fleet) {
            tracing::debug!(%why, "fault drain: not drained now");
            return;
        }
        let reasons = want.iter().map(|k| Reason::Fault { kind: *k }).collect();
        rounds.drain = Some(begin(sh, reasons));
        show(rounds);
        let refused = round_with(sh, &cfg, fleet, rounds).await;
        for r in &refused {
            tracing::warn!(refused = %r, "a NameServer did not take the fault drain");
        }
        return;
    };
    d.held.reasons.retain(|r| match r {
        Reason::Fault { kind } => want.contains(kind),
        Reason::Planned { .. } => true,
    });
    d.held.reasons.extend(want.iter().map(|k| Reason::Fault { kind: *k }));
    if d.held.reasons.is_empty() {
        end(sh, fleet, rounds, "the broker takes writes again").await;
        return;
    }
    show(rounds);
}

/// Ends the drain's planned reasons (a cancel, the broker's restart, `drain.max`): the drain
/// ends unless a fault holds it, whose drain goes on (heartbeats back to their period).
pub(crate) async fn end_planned(sh: &Arc<Shared>, fleet: &Fleet, rounds: &mut Rounds, why: &str) {
    let Some(d) = &mut rounds.drain else { return };
    d.held.reasons.retain(|r| !matches!(r, Reason::Planned { .. }));
    d.planned = None;
    rounds.out.metrics.set_draining(None);
    if d.held.reasons.is_empty() {
        end(sh, fleet, rounds, why).await;
        return;
    }
    tracing::info!(why, still = %d.held.why(), "planned drain ended; the fault drain holds: the broker stays read-only");
    show(rounds);
    let cfg = sh.config();
    round_with(sh, &cfg, fleet, rounds).await;
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
    gauges(rounds);
    // One publication: a request waiting on the drain sees it end with its reason.
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
        // Nothing to restore now: the next round carries a new data version, so that a
        // NameServer still holding the read-only one rewrites its queue data.
        rounds.topics.advance_version().await;
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

