//! One NameServer's task: the only owner of that NameServer's record. It registers when a round
//! asks, when it joins the list, when its connection comes back and when a heartbeat finds the
//! broker lost; it sends the heartbeats; and when told to leave it says goodbye and removes its
//! metric series before it ends, so nothing of it can come back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::record::{Record, Teller};
use crate::broker::{
    ApiError, DataVersionAnswer, NamesrvOutcome, RegisterStatus, RoundBodies,
};
use crate::daemon::goodbye::{say_goodbye, LEAVE_WAIT};
use crate::daemon::heartbeat::{after_answer, plan, AfterBeat, Beat, Due, Plan};
use crate::config::IdentitySource;
use crate::daemon::drain::rule;
use crate::daemon::published::{Advert, Status};
use crate::daemon::shared::Shared;
use crate::metrics::labels::Heartbeat as BeatOutcome;

/// What the register task asks of a NameServer's task.
pub(crate) enum Cmd {
    /// A registration round: register `advert` (from `bodies`, shared by every NameServer of
    /// the round) unless the heartbeat confirmed it and `force` is off; the outcome goes back.
    Round {
        /// What to register.
        advert: Arc<Advert>,
        /// Its bodies, encoded once for the round.
        bodies: RoundBodies,
        /// Register fully whatever the NameServer holds.
        force: bool,
        /// Where the outcome goes.
        reply: oneshot::Sender<NamesrvOutcome<RegisterStatus>>,
    },
    /// The broker went down: after the registration in flight, the goodbye; the task stays.
    Withdraw {
        /// The goodbye's outcome (None: nothing asked, or the connection closed instead).
        reply: oneshot::Sender<Option<NamesrvOutcome<()>>>,
    },
    /// Leave the list (or the daemon stops): waits up to `wait` for a registration in flight,
    /// says goodbye, removes the series and ends.
    Leave {
        /// How long a registration in flight may still finish.
        wait: Duration,
        /// The goodbye's outcome.
        reply: oneshot::Sender<Option<NamesrvOutcome<()>>>,
    },
}

/// A task's ends of its channels.
pub(crate) struct Link {
    /// The NameServer.
    pub(crate) addr: Arc<str>,
    /// Requests from the register task.
    pub(crate) cmds: mpsc::Receiver<Cmd>,
    /// Notified when the client sees its connection close.
    pub(crate) closed: Arc<Notify>,
    /// Where it publishes its status.
    pub(crate) status: watch::Sender<Status>,
}

/// Why a registration went out.
enum Why {
    /// A round asked; the outcome goes back.
    Round(oneshot::Sender<NamesrvOutcome<RegisterStatus>>),
    /// The NameServer joined the list.
    Join,
    /// Its connection came back.
    Reconnect,
    /// A heartbeat found it without the broker.
    Lost,
}

type Registering = Pin<Box<dyn Future<Output = NamesrvOutcome<RegisterStatus>> + Send>>;

/// A registration in flight.
struct InFlight {
    fut: Registering,
    advert: Arc<Advert>,
    why: Why,
}

/// A round that came while a registration was in flight: it goes out after it.
type Queued = (
    Arc<Advert>,
    RoundBodies,
    bool,
    oneshot::Sender<NamesrvOutcome<RegisterStatus>>,
);

const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_millis(500);
/// How often the heartbeat setting is looked at while heartbeats are off.
const OFF_LOOK: Duration = Duration::from_secs(1);

/// `f`'s output, or never when there is no `f` (a disabled select branch).
async fn maybe<F: Future + Unpin>(f: Option<F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Starts a registration of `advert` with `addr`.
fn start(
    sh: &Shared,
    addr: &Arc<str>,
    advert: Arc<Advert>,
    bodies: Option<RoundBodies>,
    force: bool,
    why: Why,
) -> InFlight {
    let bodies = bodies.unwrap_or_else(|| RoundBodies::new(advert.table.clone()));
    let mut opts = advert.opts.clone();
    opts.force = force;
    let (api, a, ad) = (sh.api.clone(), addr.clone(), advert.clone());
    InFlight {
        fut: Box::pin(async move {
            let mut o = api.register_shared(&a, &ad.id, &bodies, &opts).await;
            if rule::wipe_after(ad.drain.is_some(), o.result.is_ok()) {
                let started = Instant::now();
                if let Err(e) = api.wipe_write_perm(&a, &ad.id.name, opts.timeout).await {
                    o.result = Err(e);
                }
                o.elapsed += started.elapsed();
            }
            o
        }),
        advert,
        why,
    }
}

/// May a registration start now: the broker serves and the daemon is not stopping.
fn may_register(sh: &Shared) -> bool {
    sh.broker_up() && !sh.token.is_cancelled()
}

/// Runs one NameServer's task until it is told to leave (or its register task is gone).
pub(crate) async fn run(sh: Arc<Shared>, link: Link) {
    let Link {
        addr,
        mut cmds,
        closed,
        status,
    } = link;
    let metrics = &sh.metrics.namesrv;
    metrics.seed(&addr);
    let mut rec = Record::default();
    let mut kept = Some(Beat::new());
    let mut beating = std::pin::pin!(None);
    let mut beat_for = None;
    let mut reg: Option<InFlight> = None;
    let mut queued: Option<Queued> = None;
    let mut retry_at: Option<Instant> = None;
    let mut backoff = RECONNECT_FIRST;
    let mut reloads = crate::daemon::publisher::follow(&sh.config);
    let mut period = None;
    let mut tick: Option<Interval> = None;
    // A NameServer added later starts from what is advertised now.
    let now_advert = sh.advert.borrow().clone();
    if let Some(a) = now_advert.filter(|_| may_register(&sh)) {
        reg = Some(start(&sh, &addr, a, None, true, Why::Join));
    }
    let mut warned_drain = None;
    loop {
        let cfg = sh.config();
        let draining = sh.advert.borrow().as_ref().and_then(|a| a.drain);
        let want = rule::beat_period(draining.is_some(), cfg.register.heartbeat);
        if want != period {
            period = want;
            tick = period.map(|p| {
                let mut t = tokio::time::interval_at(Instant::now() + p, p);
                // After a freeze (SIGSTOP) or a stall: one beat, not a burst.
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            });
        }
        let teller = Teller {
            addr: &addr,
            metrics,
            every: cfg.register.interval,
        };
        let due = async {
            match tick.as_mut() {
                Some(t) => {
                    t.tick().await;
                    true
                }
                None => {
                    tokio::time::sleep(OFF_LOOK).await;
                    false
                }
            }
        };
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                // The register task is gone (restarted): its new one starts tasks afresh.
                None => return,
                Some(Cmd::Round { advert, bodies, force, reply }) => {
                    let version = advert.table.data_version;
                    if cfg.register.heartbeat.is_some() {
                        rec.beat.in_flight = beat_for.is_some();
                        rec.beat.registering = u32::from(reg.is_some());
                        // Heartbeats confirm the version each beat: an unforced round
                        // registers only where it is not confirmed.
                        if plan(&rec.beat, Due::Round { force }, version) == Plan::Skip {
                            let o = NamesrvOutcome {
                                addr: addr.to_string(),
                                result: Ok(RegisterStatus::Current),
                                elapsed: Duration::ZERO,
                            };
                            rec.registered(&teller, &o, &advert.id, version);
                            let _ = reply.send(o);
                            publish(&status, &rec);
                            continue;
                        }
                    }
                    let force = force || cfg.register.heartbeat.is_some();
                    if reg.is_some() {
                        queued = Some((advert, bodies, force, reply));
                    } else {
                        reg = Some(start(&sh, &addr, advert, Some(bodies), force, Why::Round(reply)));
                    }
                }
                Some(Cmd::Withdraw { reply }) => {
                    // No registration of its own may land after its goodbye: one in flight
                    // gets LEAVE_WAIT to finish (a split registration stuck on a stalled peer
                    // could take a timeout per batch), then is abandoned and sends nothing more.
                    if let Some(r) = reg.take() {
                        if let Ok(o) = tokio::time::timeout(LEAVE_WAIT, r.fut).await {
                            learn(&mut rec, &teller, o, &r.advert, r.why);
                        }
                    }
                    queued = None;
                    retry_at = None;
                    let out = say_goodbye(&sh, &addr, rec.registered_as.as_ref(), cfg.register.timeout).await;
                    rec.withdrawn(&teller);
                    publish(&status, &rec);
                    let _ = reply.send(out);
                }
                Some(Cmd::Leave { wait, reply }) => {
                    if let Some(r) = reg.take() {
                        // Bounded: a registration stuck on a stalled peer must not hold up the
                        // goodbye; abandoned, it sends nothing more.
                        if let Ok(o) = tokio::time::timeout(wait, r.fut).await {
                            learn(&mut rec, &teller, o, &r.advert, r.why);
                        }
                    }
                    let out = say_goodbye(&sh, &addr, rec.registered_as.as_ref(), cfg.register.timeout).await;
                    metrics.forget(&addr);
                    sh.client.forget(&addr);
                    let _ = reply.send(out);
                    return;
                }
            },
            o = maybe(reg.as_mut().map(|r| r.fut.as_mut())) => {
                let Some(r) = reg.take() else { continue };
                let reconnecting = matches!(r.why, Why::Reconnect);
                if reconnecting && o.result.is_ok() {
                    // It is back and had lost the broker (a restart): counted as a heartbeat's
                    // finding is, once it holds the broker again.
                    metrics.reregistration(&addr);
                }
                if learn(&mut rec, &teller, o, &r.advert, r.why) {
                    // Not there: again soon, backing off while it stays away.
                    if reconnecting {
                        backoff = (backoff * 2).min(RECONNECT_MAX);
                    }
                    retry_at.get_or_insert(Instant::now() + backoff);
                } else {
                    backoff = RECONNECT_FIRST;
                }
                publish(&status, &rec);
                if let Some((advert, bodies, force, reply)) = queued.take() {
                    reg = Some(start(&sh, &addr, advert, Some(bodies), force, Why::Round(reply)));
                }
            }
            (b, result) = maybe(beating.as_mut().as_pin_mut()) => {
                let result: Result<DataVersionAnswer, ApiError> = result;
                beating.set(None);
                kept = Some(b);
                let Some(version) = beat_for.take() else { continue };
                let changed = result.as_ref().is_ok_and(|a| a.changed);
                let own_version = cfg.broker.identity == IdentitySource::Config;
                if let rule::OnBeat::Reassert { warn } = rule::on_beat(draining, changed, own_version, warned_drain) {
                    // The read-only version is gone there (a broker registering itself, a
                    // restart): asserted again at once, outside the interval's limit.
                    metrics.heartbeat(&addr, BeatOutcome::Changed);
                    metrics.drain_reassertion(&addr);
                    rec.beat.acked = None;
                    if warn {
                        warned_drain = draining;
                        tracing::warn!(namesrv = %addr, "another registrar changed this NameServer's data during the drain (the broker itself?): a drain holds only while rmq-registrar is the only registrar; asserting it again");
                    }
                    sh.register_now.notify_one();
                    continue;
                }
                if answered(&mut rec, &teller, result, version) && reg.is_none() && may_register(&sh) {
                    let advert = sh.advert.borrow().clone();
                    if let Some(a) = advert {
                        metrics.reregistration(&addr);
                        reg = Some(start(&sh, &addr, a, None, true, Why::Lost));
                    }
                }
                publish(&status, &rec);
            }
            on = due => {
                let advert = sh.advert.borrow().clone();
                // While the broker is down nothing keeps it listed: it expires as Java's would.
                let (Some(p), Some(advert), true) = (period.filter(|_| on), advert, may_register(&sh)) else {
                    continue;
                };
                let version = advert.table.data_version;
                rec.beat.in_flight = beat_for.is_some();
                rec.beat.registering = u32::from(reg.is_some());
                if plan(&rec.beat, Due::Beat, version) != Plan::Heartbeat {
                    metrics.heartbeat(&addr, BeatOutcome::Skipped);
                    continue;
                }
                let Some(mut b) = kept.take() else { continue };
                if !b.prepare(&sh.api, &advert) {
                    kept = Some(b);
                    continue;
                }
                beat_for = Some(version);
                beating.set(Some(b.send(&sh.api, &addr, p)));
            }
            () = closed.notified() => {
                if rec.stalled() {
                    tracing::debug!(namesrv = %addr, "connection closed after a timeout: the next round retries");
                } else {
                    metrics.set_registered(&addr, false);
                    tracing::debug!(namesrv = %addr, "NameServer unreachable, registering as soon as it is back");
                    retry_at.get_or_insert(Instant::now() + backoff);
                }
            }
            () = retry => {
                retry_at = None;
                let advert = sh.advert.borrow().clone();
                match advert {
                    // A broker that went down is registered again by a full round when back.
                    _ if !may_register(&sh) => backoff = RECONNECT_FIRST,
                    None => {}
                    Some(_) if reg.is_some() => retry_at = Some(Instant::now() + backoff),
                    Some(a) => reg = Some(start(&sh, &addr, a, None, true, Why::Reconnect)),
                }
            }
            changed = reloads.changed() => if changed.is_err() {
                return;
            },
        }
    }
}

/// Records a registration's outcome (and hands a round's back); true when it is worth an
/// immediate retry.
fn learn(
    rec: &mut Record,
    teller: &Teller<'_>,
    o: NamesrvOutcome<RegisterStatus>,
    advert: &Advert,
    why: Why,
) -> bool {
    let retry = rec.registered(teller, &o, &advert.id, advert.table.data_version);
    if let Why::Round(reply) = why {
        let _ = reply.send(o);
    }
    retry
}

/// Publishes what readiness needs, when it changed.
fn publish(status: &watch::Sender<Status>, rec: &Record) {
    let now = Status {
        last_ok: rec.last_ok,
    };
    status.send_if_modified(|s| std::mem::replace(s, now) != now);
}

/// Acts on one heartbeat's answer for `version`; true when it calls for a full registration.
fn answered(
    rec: &mut Record,
    teller: &Teller<'_>,
    result: Result<DataVersionAnswer, ApiError>,
    version: crate::broker::body::DataVersion,
) -> bool {
    let (addr, m) = (teller.addr, teller.metrics);
    let answer = match result {
        Ok(a) => a,
        Err(e) => {
            m.heartbeat(addr, BeatOutcome::Failed(e.kind()));
            tracing::debug!(namesrv = %addr, error = %e, "heartbeat failed");
            return false;
        }
    };
    m.heartbeat(
        addr,
        if answer.changed {
            BeatOutcome::Changed
        } else {
            BeatOutcome::Ok
        },
    );
    let b = &mut rec.beat;
    match after_answer(b, answer.changed, Instant::now(), teller.every) {
        AfterBeat::Current => {
            b.acked = Some(version);
            rec.holds_it(teller);
            false
        }
        AfterBeat::Limited => {
            tracing::debug!(namesrv = %addr, "heartbeat: registration due, but one went out within register.interval");
            false
        }
        AfterBeat::Reregister { lost, repeat } => {
            b.last_rereg = Some(Instant::now());
            b.acked = None;
            if !lost {
                tracing::info!(namesrv = %addr, "the last registration with this NameServer did not complete: registering fully");
            } else if repeat {
                tracing::warn!(namesrv = %addr, "the NameServer lost the broker again: registering again (at most once per register.interval)");
            } else {
                tracing::info!(namesrv = %addr, "the NameServer had lost the broker: registering again");
            }
            true
        }
    }
}
