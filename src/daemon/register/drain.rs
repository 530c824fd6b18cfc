//! The drain: the broker routed read-only on every NameServer before it stops, held by the
//! register task until the broker has stopped and serves again, a cancel, or `drain.max`.
//!
//! A drain registers the topics with the write bit cleared under exactly the broker's current
//! data version (a registration whose version a NameServer already holds rewrites nothing, so
//! the broker's own registrations do not undo it), then asks WIPE_WRITE_PERM_OF_BROKER. A
//! NameServer that shows it lost that version (a heartbeat says changed, a reconnect) gets the
//! same again at once, with the topics read again.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::round::{publish_advert, round_with, Rounds};
use crate::broker::body::{perm, TopicConfigWrapper};
use crate::config::{Config, IdentitySource};
use crate::daemon::identity::Current;
use crate::daemon::namesrv::Fleet;
use crate::daemon::published::Draining;
use crate::daemon::shared::Shared;

/// What the HTTP listener asks of the register task.
pub(crate) enum DrainCmd {
    /// Start a drain (or join the one in force).
    Start {
        /// Who asked, for the log and /readyz.
        who: String,
        /// Started, or why not.
        reply: oneshot::Sender<Result<Started, Refused>>,
    },
    /// End the drain in force; the reply says since when it was held (None: there was none).
    Cancel {
        /// Who asked.
        who: String,
        /// Since when the drain ended now was held.
        reply: oneshot::Sender<Option<SystemTime>>,
    },
}

/// A drain in force after a start request.
#[derive(Debug)]
pub(crate) struct Started {
    /// Since when.
    pub(crate) since: SystemTime,
    /// The request joined a drain already in force.
    pub(crate) joined: bool,
    /// NameServers that did not take the read-only registration or the wipe, with why.
    pub(crate) refused: Vec<String>,
}

/// Why a drain was not started (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// The broker does not serve.
    #[error("the broker is not serving: nothing to drain")]
    BrokerDown,
    /// No identity yet.
    #[error("the broker has not said who it is yet: nothing to drain")]
    NoIdentity,
    /// Not a master: 205 wipes by broker name, so a slave's sidecar would wipe its master.
    #[error("this broker is id {0}, not a master: only a master drains (WIPE_WRITE_PERM_OF_BROKER goes by broker name and would wipe the master too)")]
    NotMaster(u64),
    /// The broker splits every registration (Rust `enableSplitRegistration`): its data version
    /// advances at every one, so the read-only version would be undone every period.
    #[error("the broker splits every registration (enableSplitRegistration=true): it advances its data version at each one, so a drain cannot hold")]
    SplitRegistration,
    /// No NameServer is listed.
    #[error("no NameServer is listed: nothing to drain")]
    NoNamesrv,
}

/// The drain in force, as the register task holds it.
pub(crate) struct Drain {
    /// Since when (wall clock, for the metric and /readyz).
    pub(crate) since: SystemTime,
    /// Since when (monotonic, for `drain.max`).
    pub(crate) started: Instant,
    /// Who asked.
    pub(crate) who: String,
    /// A health check failed since it began: the next passing one means the broker restarted.
    pub(crate) saw_failure: bool,
}

impl Drain {
    /// When `drain.max` ends it.
    pub(crate) fn deadline(&self, cfg: &Config) -> Instant {
        self.started + cfg.drain.max
    }
}

/// Acts on one request.
pub(crate) async fn on_cmd(sh: &Arc<Shared>, fleet: &Fleet, rounds: &mut Rounds, cmd: DrainCmd) {
    match cmd {
        DrainCmd::Start { who, reply } => {
            let started = start(sh, fleet, rounds, who).await;
            let _ = reply.send(started);
        }
        DrainCmd::Cancel { who, reply } => {
            let since = rounds.drain.as_ref().map(|d| d.since);
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
) -> Result<Started, Refused> {
    if let Some(d) = &rounds.drain {
        tracing::info!(%who, since = %humantime::format_rfc3339_seconds(d.since), "drain asked again: joined the one in force");
        return Ok(Started {
            since: d.since,
            joined: true,
            refused: Vec::new(),
        });
    }
    let cfg = sh.config();
    refusal(sh, &cfg, fleet)?;
    let since = SystemTime::now();
    rounds.drain = Some(Drain {
        since,
        started: Instant::now(),
        who: who.clone(),
        saw_failure: false,
    });
    sh.metrics.daemon.set_draining(Some(since));
    sh.draining.send_replace(Some(Draining {
        since,
        who: who.clone(),
    }));
    tracing::info!(%who, wait = ?cfg.drain.wait, "draining: routing the broker read-only on every NameServer");
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
    sh.metrics.daemon.set_draining(None);
    sh.draining.send_replace(None);
    tracing::info!(
        why, who = %d.who,
        held = ?d.started.elapsed(),
        "drain ended: registering the broker's true permissions"
    );
    rounds.last_full = None;
    let cfg = sh.config();
    let Some(cur) = sh.current() else { return };
    let Some(advert) = publish_advert(sh, &cfg, rounds, &cur, None).await else {
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

/// The table as a drain registers it: every topic without the write bit, under exactly the
/// broker's own data version when the topics come from the broker (so that the broker's own
/// registrations of that version rewrite nothing).
pub(crate) async fn read_only(
    sh: &Shared,
    cfg: &Config,
    table: Arc<TopicConfigWrapper>,
    cur: &Current,
) -> Arc<TopicConfigWrapper> {
    let broker_version = if cfg.broker.topics.source == crate::config::TopicSource::Broker {
        sh.topics.update(|t| t.broker_version()).await.flatten()
    } else {
        None
    };
    let mask = cur.permission.unwrap_or(perm::READ | perm::WRITE) & !perm::WRITE;
    let masked = super::round::restricted(table, Some(mask)).await;
    match broker_version {
        Some(v) if v != masked.data_version => {
            let mut t = (*masked).clone();
            t.data_version = v;
            Arc::new(t)
        }
        _ => masked,
    }
}
