//! One NameServer's task: the only owner of that NameServer's record. It registers when a round
//! asks, when it joins the list, when its connection comes back and when a heartbeat finds the
//! broker lost; it sends the heartbeats; and when told to leave it says goodbye and removes its
//! metric series before it ends, so nothing of it can come back.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::record::{Record, Teller};
use crate::broker::{
    ApiError, DataVersionAnswer, NamesrvOutcome, RegisterStatus, RoundBodies,
};
use crate::daemon::goodbye::{say_goodbye, LEAVE_WAIT};
use crate::daemon::heartbeat::{after_answer, plan, AfterBeat, Beat, Due, Plan};
use crate::broker::body::DataVersion;
use crate::config::{Config, IdentitySource};
use crate::daemon::drain::rule;
use crate::daemon::published::{Advert, Status};
use crate::daemon::route::audit::{Auditor, Checked, Ctx};
use crate::daemon::route::policy::Act;
use crate::metrics::labels::{Label, RouteKind};
use crate::daemon::shared::Shared;
use crate::metrics::labels::Heartbeat as BeatOutcome;
use crate::metrics::NamesrvMetrics;

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
    /// Its series.
    pub(crate) metrics: Arc<NamesrvMetrics>,
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
    /// The route read-back saw the route differ by this kind.
    Restore(RouteKind),
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

/// Sleeps until `at`, or forever when there is none.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
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

/// Starts a restore of `advert` with `addr`: the next data version, then the advert's own, as
/// one unit (the NameServer rewrites queue data only when the address's version changes, and
/// the heartbeats must then find the advert's own), and a drain's wipe after.
fn restore(sh: &Shared, addr: &Arc<str>, advert: Arc<Advert>, kind: RouteKind) -> InFlight {
    let mut next = (*advert.table).clone();
    next.data_version = next.data_version.next();
    let bumped = RoundBodies::new(Arc::new(next));
    let own = RoundBodies::new(advert.table.clone());
    let mut opts = advert.opts.clone();
    opts.force = true;
    let (api, a, ad) = (sh.api.clone(), addr.clone(), advert.clone());
    InFlight {
        fut: Box::pin(async move {
            let first = api.register_shared(&a, &ad.id, &bumped, &opts).await;
            if first.result.is_err() {
                return first;
            }
            let mut o = api.register_shared(&a, &ad.id, &own, &opts).await;
            o.elapsed += first.elapsed;
            if rule::wipe_after(ad.drain.is_some(), o.result.is_ok()) {
                if let Err(e) = api.wipe_write_perm(&a, &ad.id.name, opts.timeout).await {
                    o.result = Err(e);
                }
            }
            o
        }),
        advert,
        why: Why::Restore(kind),
    }
}

/// May a registration start now: the broker serves and the daemon is not stopping.
fn may_register(sh: &Shared) -> bool {
    sh.broker_up() && !sh.token.is_cancelled()
}

/// What woke a NameServer's task.
enum Event {
    /// A command from the fleet (None: the register task is gone).
    Cmd(Option<Cmd>),
    /// The registration in flight finished.
    Registered(NamesrvOutcome<RegisterStatus>),
    /// The heartbeat in flight was answered (or failed).
    Beat(Box<Beat>, Result<DataVersionAnswer, ApiError>),
    /// The heartbeat timer; `on` is false while heartbeats are off (a periodic look).
    Tick {
        /// Heartbeats are on.
        on: bool,
    },
    /// The client saw the connection close.
    Closed,
    /// The reconnect backoff passed.
    Retry,
    /// The configuration changed (Some) or its channel closed (None: the daemon is gone).
    Config(Option<()>),
    /// A route read-back is due.
    AuditDue,
    /// A read of the route read-back answered.
    Checked(Checked),
}

/// What the loop does after an event.
enum Flow {
    Go,
    End,
    /// Send this heartbeat with this period (the loop holds the beat in flight: a future kept
    /// on its stack, so an idle daemon's beats allocate nothing but their frames).
    Beat(Box<Beat>, Duration),
}

/// One NameServer's task: everything it owns, and a handler per event.
pub(crate) struct Namesrv {
    sh: Arc<Shared>,
    metrics: Arc<NamesrvMetrics>,
    addr: Arc<str>,
    status: watch::Sender<Status>,
    rec: Record,
    /// The heartbeat kept between beats (taken while one is in flight).
    kept: Option<Box<Beat>>,
    /// The data version the heartbeat in flight confirms (None: no beat in flight).
    beat_for: Option<DataVersion>,
    reg: Option<InFlight>,
    queued: Option<Queued>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The heartbeat period in force (None: off), and its timer.
    period: Option<Duration>,
    tick: Option<Interval>,
    /// The drain whose re-assertion was last WARNed about (one WARN per drain).
    warned_drain: Option<SystemTime>,
    /// The route read-back.
    audit: Auditor,
}

/// Runs one NameServer's task until it is told to leave (or its register task is gone).
pub(crate) async fn run(sh: Arc<Shared>, link: Link) {
    let Link {
        addr,
        mut cmds,
        closed,
        status,
        metrics,
    } = link;
    let mut reloads = crate::daemon::publisher::follow(&sh.config);
    let api = sh.api.clone();
    let mut me = Namesrv::new(sh, metrics, addr.clone(), status);
    me.join();
    let mut beating = std::pin::pin!(None);
    loop {
        let cfg = me.sh.config();
        me.keep_period(&cfg);
        let event = me
            .next(&mut cmds, &closed, &mut reloads, beating.as_mut())
            .await;
        if matches!(event, Event::Beat(..)) {
            beating.set(None);
        }
        match me.on(event, &cfg).await {
            Flow::Go => {}
            Flow::End => return,
            Flow::Beat(b, period) => beating.set(Some(b.send(&api, &addr, period))),
        }
    }
}

/// Who an outcome is told to (a free function: it borrows two fields, not the task).
fn teller<'a>(addr: &'a str, metrics: &'a NamesrvMetrics, cfg: &Config) -> Teller<'a> {
    Teller {
        addr,
        metrics,
        every: cfg.register.interval,
    }
}

impl Namesrv {
    /// A new NameServer's task state; its metric series are seeded.
    fn new(
        sh: Arc<Shared>,
        metrics: Arc<NamesrvMetrics>,
        addr: Arc<str>,
        status: watch::Sender<Status>,
    ) -> Self {
        metrics.seed(&addr);
        Namesrv {
            sh,
            metrics,
            addr,
            status,
            rec: Record::default(),
            kept: Some(Box::new(Beat::new())),
            beat_for: None,
            reg: None,
            queued: None,
            retry_at: None,
            backoff: RECONNECT_FIRST,
            period: None,
            tick: None,
            warned_drain: None,
            audit: Auditor::default(),
        }
    }

    /// Joining the list: registers what is advertised now.
    fn join(&mut self) {
        let now_advert = self.sh.advert.borrow().clone();
        if let Some(a) = now_advert.filter(|_| may_register(&self.sh)) {
            self.reg = Some(start(&self.sh, &self.addr, a, None, true, Why::Join));
        }
    }

    /// The drain in force, as advertised.
    fn draining(&self) -> Option<SystemTime> {
        self.sh
            .advert
            .borrow()
            .as_ref()
            .and_then(|a| a.drain.as_ref().map(|d| d.since))
    }

    /// A planned drain holds (a fault drain keeps the heartbeats' period: it can last days).
    fn planned_drain(&self) -> bool {
        self.sh
            .advert
            .borrow()
            .as_ref()
            .and_then(|a| a.drain.as_ref())
            .is_some_and(crate::daemon::drain::Draining::planned)
    }

    /// The heartbeat timer for the period `cfg` and the drain call for (a new timer only when
    /// the period changes).
    fn keep_period(&mut self, cfg: &Config) {
        self.audit.keep(cfg);
        let want = rule::beat_period(self.planned_drain(), cfg.register.heartbeat);
        if want != self.period {
            self.period = want;
            self.tick = want.map(|p| {
                let mut t = tokio::time::interval_at(Instant::now() + p, p);
                // After a freeze (SIGSTOP) or a stall: one beat, not a burst.
                t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                t
            });
        }
    }

    /// Waits for the next event; the work in flight (a registration, a heartbeat) is polled
    /// here, so no event waits for it.
    async fn next<B>(
        &mut self,
        cmds: &mut mpsc::Receiver<Cmd>,
        closed: &Notify,
        reloads: &mut watch::Receiver<Arc<crate::daemon::settings::InForce>>,
        beating: Pin<&mut Option<B>>,
    ) -> Event
    where
        B: Future<Output = (Box<Beat>, Result<DataVersionAnswer, ApiError>)>,
    {
        let tick = self.tick.as_mut();
        let due = async {
            match tick {
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
        let (retry_at, audit_at) = (self.retry_at, self.audit.due().filter(|_| self.reg.is_none()));
        let checking = self.audit.checking();
        tokio::select! {
            cmd = cmds.recv() => Event::Cmd(cmd),
            c = maybe(checking) => Event::Checked(c),
            () = until(audit_at) => Event::AuditDue,
            o = maybe(self.reg.as_mut().map(|r| r.fut.as_mut())) => Event::Registered(o),
            (b, r) = maybe(beating.as_pin_mut()) => Event::Beat(b, r),
            on = due => Event::Tick { on },
            () = closed.notified() => Event::Closed,
            () = until(retry_at) => Event::Retry,
            changed = reloads.changed() => Event::Config(changed.ok()),
        }
    }

    /// Acts on one event.
    async fn on(&mut self, event: Event, cfg: &Config) -> Flow {
        match event {
            Event::Cmd(None) | Event::Config(None) => return Flow::End,
            Event::Cmd(Some(cmd)) => return self.on_cmd(cmd, cfg).await,
            Event::Registered(o) => self.on_registered(o, cfg),
            Event::Beat(b, r) => self.on_beat(b, r, cfg),
            Event::Tick { on } => {
                if let Some((b, period)) = self.on_tick(on) {
                    return Flow::Beat(b, period);
                }
            }
            Event::Closed => self.on_closed(),
            Event::Retry => self.on_retry(),
            // The next turn of the loop takes the new heartbeat period.
            Event::Config(Some(())) => {}
            Event::AuditDue => self.on_audit_due(cfg),
            Event::Checked(c) => self.on_checked(c, cfg),
        }
        Flow::Go
    }

    /// A route read-back is due: it reads what is advertised now, while the broker serves.
    fn on_audit_due(&mut self, cfg: &Config) {
        let advert = self.sh.advert.borrow().clone();
        match advert.filter(|_| may_register(&self.sh)) {
            Some(a) => self.audit.start(&self.sh.api, &self.addr, &a, cfg),
            // Withdrawn or not yet advertised: nothing to compare; looked at again later.
            None => self.audit.later(cfg),
        }
    }

    /// A read-back's answer: what it calls for goes out, unless a registration is in flight
    /// (its own audit follows it).
    fn on_checked(&mut self, c: Checked, cfg: &Config) {
        let ctx = Ctx {
            addr: &self.addr,
            metrics: &self.metrics,
            cfg,
            draining: self.draining().is_some(),
            stopping: !may_register(&self.sh),
        };
        let act = self.audit.on_checked(c, &self.sh.api, &ctx);
        publish(&self.status, &self.rec, &self.audit);
        let advert = self.sh.advert.borrow().clone();
        let (kind, two_step, advert) = match (act, advert) {
            (Act::Register, Some(a)) => (RouteKind::Missing, false, a),
            (Act::Restore(kind), Some(a)) => (kind, true, a),
            (Act::Nothing, _) => return,
            _ => return self.audit.restore_dropped(),
        };
        if self.reg.is_some() {
            // Its own read follows the registration in flight.
            return self.audit.restore_dropped();
        }
        self.metrics.route_restore(&self.addr, kind);
        // A heartbeat in flight may be answered between the two steps (`changed`): its answer
        // no longer says anything, and is dropped.
        self.beat_for = None;
        self.reg = Some(if two_step {
            restore(&self.sh, &self.addr, advert, kind)
        } else {
            start(&self.sh, &self.addr, advert, None, true, Why::Restore(kind))
        });
    }

    /// A command from the fleet.
    async fn on_cmd(&mut self, cmd: Cmd, cfg: &Config) -> Flow {
        match cmd {
            Cmd::Round {
                advert,
                bodies,
                force,
                reply,
            } => self.on_round((advert, bodies, force, reply), cfg),
            Cmd::Withdraw { reply } => {
                // No registration of its own may land after its goodbye: one in flight gets
                // LEAVE_WAIT to finish (a split registration stuck on a stalled peer could
                // take a timeout per batch), then is abandoned and sends nothing more.
                self.finish_in_flight(LEAVE_WAIT, cfg).await;
                self.queued = None;
                self.retry_at = None;
                let out = self.goodbye(cfg).await;
                self.rec
                    .withdrawn(&teller(&self.addr, &self.metrics, cfg));
                publish(&self.status, &self.rec, &self.audit);
                let _ = reply.send(out);
            }
            Cmd::Leave { wait, reply } => {
                // Bounded: a registration stuck on a stalled peer must not hold up the
                // goodbye; abandoned, it sends nothing more.
                self.finish_in_flight(wait, cfg).await;
                let out = self.goodbye(cfg).await;
                self.metrics.forget(&self.addr);
                self.sh.client.forget(&self.addr);
                let _ = reply.send(out);
                return Flow::End;
            }
        }
        Flow::Go
    }

    /// A round: registers unless the heartbeat confirmed the version and it is not forced; a
    /// round that comes while a registration is in flight goes out after it.
    fn on_round(&mut self, (advert, bodies, force, reply): Queued, cfg: &Config) {
        let version = advert.table.data_version;
        if cfg.register.heartbeat.is_some() {
            self.rec.beat.in_flight = self.beat_for.is_some();
            self.rec.beat.registering = u32::from(self.reg.is_some());
            // Heartbeats confirm the version each beat: an unforced round registers only
            // where it is not confirmed.
            if plan(&self.rec.beat, Due::Round { force }, version) == Plan::Skip {
                let o = NamesrvOutcome {
                    addr: self.addr.to_string(),
                    result: Ok(RegisterStatus::Current),
                    elapsed: Duration::ZERO,
                };
                let t = teller(&self.addr, &self.metrics, cfg);
                self.rec.registered(&t, &o, &advert.id, version);
                let _ = reply.send(o);
                publish(&self.status, &self.rec, &self.audit);
                return;
            }
        }
        let force = force || cfg.register.heartbeat.is_some();
        if self.reg.is_some() {
            self.queued = Some((advert, bodies, force, reply));
        } else {
            let why = Why::Round(reply);
            self.reg = Some(start(&self.sh, &self.addr, advert, Some(bodies), force, why));
        }
    }

    /// Lets the registration in flight finish within `wait`, learning its outcome; after
    /// that it is dropped and sends nothing more.
    async fn finish_in_flight(&mut self, wait: Duration, cfg: &Config) {
        if let Some(r) = self.reg.take() {
            if let Ok(o) = tokio::time::timeout(wait, r.fut).await {
                let t = teller(&self.addr, &self.metrics, cfg);
                learn(&mut self.rec, &t, o, &r.advert, r.why);
            }
        }
    }

    /// The goodbye to this NameServer, under the identity it holds (`&mut`: the task is not
    /// `Sync`, and this is held across an await).
    async fn goodbye(&mut self, cfg: &Config) -> Option<NamesrvOutcome<()>> {
        let held = self.rec.registered_as.as_ref();
        say_goodbye(&self.sh, &self.metrics, &self.addr, held, cfg.register.timeout).await
    }

    /// The registration in flight finished: learnt, retried soon when it was not there, and
    /// a round that waited for it goes out.
    fn on_registered(&mut self, o: NamesrvOutcome<RegisterStatus>, cfg: &Config) {
        let Some(r) = self.reg.take() else { return };
        let reconnecting = matches!(r.why, Why::Reconnect);
        if let Ok(status) = &o.result {
            if let Why::Restore(kind) = &r.why {
                tracing::info!(namesrv = %self.addr, kind = kind.as_str(), "route read-back: registered again to restore the route");
                self.audit
                    .restore_done(matches!(status, RegisterStatus::Registered(_)));
            }
            // Right after each registration: what producers get now.
            self.audit.soon(cfg);
        } else if matches!(r.why, Why::Restore(_)) {
            self.audit.restore_failed();
        }
        if reconnecting && o.result.is_ok() {
            // It is back and had lost the broker (a restart): counted as a heartbeat's
            // finding is, once it holds the broker again.
            self.metrics.reregistration(&self.addr);
        }
        let t = teller(&self.addr, &self.metrics, cfg);
        if learn(&mut self.rec, &t, o, &r.advert, r.why) {
            // Not there: again soon, backing off while it stays away.
            if reconnecting {
                self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
            }
            self.retry_at
                .get_or_insert(Instant::now() + self.backoff);
        } else {
            self.backoff = RECONNECT_FIRST;
        }
        publish(&self.status, &self.rec, &self.audit);
        if let Some((advert, bodies, force, reply)) = self.queued.take() {
            let why = Why::Round(reply);
            self.reg = Some(start(&self.sh, &self.addr, advert, Some(bodies), force, why));
        }
    }

    /// A heartbeat's answer: a drain's re-assertion, a NameServer that lost the broker
    /// registered again, or the version confirmed.
    fn on_beat(
        &mut self,
        b: Box<Beat>,
        result: Result<DataVersionAnswer, ApiError>,
        cfg: &Config,
    ) {
        self.kept = Some(b);
        let Some(version) = self.beat_for.take() else {
            return;
        };
        let (addr, metrics) = (&self.addr, &self.metrics);
        let draining = self.draining();
        let changed = result.as_ref().is_ok_and(|a| a.changed);
        let own_version = cfg.broker.identity == IdentitySource::Config;
        if let rule::OnBeat::Reassert { warn } =
            rule::on_beat(draining, changed, own_version, self.warned_drain)
        {
            // The read-only version is gone there (a broker registering itself, a restart):
            // asserted again at once, outside the interval's limit.
            metrics.heartbeat(addr, BeatOutcome::Changed);
            metrics.drain_reassertion(addr);
            self.rec.beat.acked = None;
            if warn {
                self.warned_drain = draining;
                tracing::warn!(namesrv = %addr, "another registrar changed this NameServer's data during the drain (the broker itself?): a drain holds only while rmq-registrar is the only registrar; asserting it again");
            }
            self.sh.register_now.notify_one();
            return;
        }
        let t = teller(&self.addr, &self.metrics, cfg);
        let lost = answered(&mut self.rec, &t, result, version);
        if lost && self.reg.is_none() && may_register(&self.sh) {
            let advert = self.sh.advert.borrow().clone();
            if let Some(a) = advert {
                self.metrics.reregistration(&self.addr);
                self.reg = Some(start(&self.sh, &self.addr, a, None, true, Why::Lost));
            }
        }
        publish(&self.status, &self.rec, &self.audit);
    }

    /// The heartbeat timer: a beat to send (with its period) unless the plan skips it;
    /// nothing while the broker is down (nothing keeps it listed then: it expires as Java's
    /// would).
    fn on_tick(&mut self, on: bool) -> Option<(Box<Beat>, Duration)> {
        let advert = self.sh.advert.borrow().clone();
        let (Some(p), Some(advert), true) =
            (self.period.filter(|_| on), advert, may_register(&self.sh))
        else {
            return None;
        };
        let version = advert.table.data_version;
        self.rec.beat.in_flight = self.beat_for.is_some();
        self.rec.beat.registering = u32::from(self.reg.is_some());
        if plan(&self.rec.beat, Due::Beat, version) != Plan::Heartbeat {
            self.metrics.heartbeat(&self.addr, BeatOutcome::Skipped);
            return None;
        }
        let mut b = self.kept.take()?;
        if !b.prepare(&self.sh.api, &advert) {
            self.kept = Some(b);
            return None;
        }
        self.beat_for = Some(version);
        Some((b, p))
    }

    /// The connection closed: registered again as soon as it is back, unless it closed after
    /// a timeout (a stalled peer: the next round retries).
    fn on_closed(&mut self) {
        if self.rec.stalled() {
            tracing::debug!(namesrv = %self.addr, "connection closed after a timeout: the next round retries");
        } else {
            self.metrics.set_registered(&self.addr, false);
            tracing::debug!(namesrv = %self.addr, "NameServer unreachable, registering as soon as it is back");
            self.retry_at
                .get_or_insert(Instant::now() + self.backoff);
        }
    }

    /// The backoff passed: a registration of what is advertised now.
    fn on_retry(&mut self) {
        self.retry_at = None;
        let advert = self.sh.advert.borrow().clone();
        match advert {
            // A broker that went down is registered again by a full round when back.
            _ if !may_register(&self.sh) => self.backoff = RECONNECT_FIRST,
            None => {}
            Some(_) if self.reg.is_some() => {
                self.retry_at = Some(Instant::now() + self.backoff);
            }
            Some(a) => {
                self.reg = Some(start(&self.sh, &self.addr, a, None, true, Why::Reconnect));
            }
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
fn publish(status: &watch::Sender<Status>, rec: &Record, audit: &Auditor) {
    let now = Status {
        last_ok: rec.last_ok,
        route: audit.seen(),
    };
    status.send_if_modified(|s| std::mem::replace(s, now) != now);
}

/// Acts on one heartbeat's answer for `version`; true when it calls for a full registration.
fn answered(
    rec: &mut Record,
    teller: &Teller<'_>,
    result: Result<DataVersionAnswer, ApiError>,
    version: DataVersion,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::body::TopicConfigWrapper;
    use crate::client::ClientError;
    use crate::daemon::identity::Current;
    use crate::daemon::publisher::Channels;

    /// A NameServer's task state as a fresh member, heartbeats every second, and the
    /// publishers to drive it. Nothing here opens a connection: futures are made, not polled.
    fn member() -> (Namesrv, Channels, Config) {
        let mut cfg = Config::default();
        cfg.broker.name = "b".into();
        cfg.broker.addr = "127.0.0.1:10911".into();
        cfg.register.heartbeat = Some(Duration::from_secs(1));
        let (sh, ch) = Shared::for_tests(cfg.clone());
        let (status, _) = watch::channel(Status::default());
        let metrics = crate::metrics::namesrv_handle(&sh.metrics);
        let me = Namesrv::new(sh, metrics, Arc::from("127.0.0.1:9876"), status);
        (me, ch, cfg)
    }

    fn advert(cfg: &Config, counter: i64, drain: Option<SystemTime>) -> Arc<Advert> {
        let cur = Current::from_config(cfg);
        let mut table = TopicConfigWrapper::default();
        table.data_version.counter = counter;
        Arc::new(Advert {
            id: cur.id.clone(),
            table: Arc::new(table),
            opts: crate::daemon::register::options(cfg, false, &cur),
            drain: drain.map(|since| crate::daemon::drain::Draining {
                since,
                reasons: [crate::daemon::drain::Reason::Planned { who: "t".into() }].into(),
            }),
        })
    }

    fn round(
        a: &Arc<Advert>,
        force: bool,
    ) -> (Queued, oneshot::Receiver<NamesrvOutcome<RegisterStatus>>) {
        let (reply, rx) = oneshot::channel();
        let bodies = RoundBodies::new(a.table.clone());
        ((a.clone(), bodies, force, reply), rx)
    }

    fn outcome(result: Result<RegisterStatus, ApiError>) -> NamesrvOutcome<RegisterStatus> {
        NamesrvOutcome {
            addr: "127.0.0.1:9876".into(),
            result,
            elapsed: Duration::ZERO,
        }
    }

    fn refused() -> ApiError {
        ApiError::Client(ClientError::Connect {
            addr: "127.0.0.1:9876".into(),
            source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        })
    }

    /// A registration in flight that never ends (a stalled peer).
    fn stalled(a: &Arc<Advert>, why: Why) -> InFlight {
        InFlight {
            fut: Box::pin(std::future::pending()),
            advert: a.clone(),
            why,
        }
    }

    fn beats(me: &Namesrv, outcome: &str) -> u64 {
        me.metrics.heartbeats_of(&me.addr, outcome)
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_the_heartbeat_confirmed_is_answered_current_and_sends_nothing() {
        let (mut me, _ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        me.rec.beat.acked = Some(a.table.data_version);
        let (r, mut rx) = round(&a, false);
        me.on_round(r, &cfg);
        assert!(me.reg.is_none(), "nothing sent");
        let o = rx.try_recv().expect("answered at once");
        assert!(matches!(o.result, Ok(RegisterStatus::Current)));
        // Forced, the same round registers.
        let (r, _rx) = round(&a, true);
        me.on_round(r, &cfg);
        assert!(me.reg.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_during_a_registration_goes_out_after_it_and_the_first_is_answered() {
        let (mut me, _ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        let (first, mut first_rx) = round(&a, true);
        me.on_round(first, &cfg);
        let (second, mut second_rx) = round(&a, true);
        me.on_round(second, &cfg);
        assert!(me.queued.is_some(), "the second waits");
        me.on_registered(outcome(Ok(RegisterStatus::Sent)), &cfg);
        assert!(matches!(first_rx.try_recv(), Ok(o) if o.result.is_ok()));
        assert!(me.queued.is_none() && me.reg.is_some(), "the second went out");
        assert!(second_rx.try_recv().is_err(), "and is answered when it ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnect_not_there_backs_off_doubling_to_the_cap_and_a_success_resets_it() {
        let (mut me, _ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        let mut waits = Vec::new();
        for _ in 0..4 {
            me.reg = Some(stalled(&a, Why::Reconnect));
            me.retry_at = None;
            me.on_registered(outcome(Err(refused())), &cfg);
            let at = me.retry_at.expect("a retry");
            waits.push(at - Instant::now());
        }
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 500, 500]);
        me.reg = Some(stalled(&a, Why::Reconnect));
        me.on_registered(outcome(Ok(RegisterStatus::Sent)), &cfg);
        assert_eq!(me.backoff, RECONNECT_FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_is_retried_soon_unless_its_registrations_stall() {
        let (mut me, _ch, cfg) = member();
        me.on_closed();
        let at = me.retry_at.take().expect("a retry");
        assert_eq!(at - Instant::now(), RECONNECT_FIRST);
        // A registration that timed out (it took the connection, not the request): the next
        // round retries, not a reconnect loop.
        let a = advert(&cfg, 7, None);
        me.reg = Some(stalled(&a, Why::Join));
        let timeout = ApiError::Client(ClientError::Timeout {
            addr: "127.0.0.1:9876".into(),
            timeout: Duration::from_secs(3),
        });
        me.on_registered(outcome(Err(timeout)), &cfg);
        assert!(me.retry_at.is_none());
        me.on_closed();
        assert!(me.retry_at.is_none(), "stalled: no retry");
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_registers_what_is_advertised_and_waits_behind_one_in_flight() {
        let (mut me, ch, cfg) = member();
        me.on_retry();
        assert!(me.reg.is_none(), "nothing advertised yet: nothing to send");
        let a = advert(&cfg, 7, None);
        ch.register.advert.send_replace(Some(a.clone()));
        me.on_retry();
        assert!(matches!(me.reg.as_ref().map(|r| &r.why), Some(Why::Reconnect)));
        me.on_retry();
        assert!(me.retry_at.is_some(), "one in flight: tried again after the backoff");
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_sends_one_beat_at_a_time_and_none_before_anything_is_advertised() {
        let (mut me, ch, cfg) = member();
        me.keep_period(&cfg);
        assert_eq!(me.period, Some(Duration::from_secs(1)));
        assert!(me.on_tick(true).is_none(), "nothing advertised");
        ch.register.advert.send_replace(Some(advert(&cfg, 7, None)));
        let (_beat, period) = me.on_tick(true).expect("a beat");
        assert_eq!(period, Duration::from_secs(1));
        assert!(me.beat_for.is_some() && me.kept.is_none(), "a beat in flight");
        assert!(me.on_tick(true).is_none());
        assert_eq!(beats(&me, "skipped"), 1, "one at a time");
        assert!(me.on_tick(false).is_none());
        assert_eq!(beats(&me, "skipped"), 1, "heartbeats off: a look, not a beat");
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_beats_faster_and_a_changed_answer_is_reasserted_with_one_warning() {
        let (mut me, ch, cfg) = member();
        let since = SystemTime::now();
        let a = advert(&cfg, 7, Some(since));
        ch.register.advert.send_replace(Some(a.clone()));
        me.keep_period(&cfg);
        assert_eq!(me.period, Some(crate::daemon::published::DRAIN_BEAT));
        let changed = || {
            Ok(DataVersionAnswer {
                changed: true,
                held: None,
            })
        };
        for _ in 0..2 {
            let (b, _) = me.on_tick(true).expect("a beat");
            me.on_beat(b, changed(), &cfg);
            assert!(
                tokio::time::timeout(Duration::ZERO, me.sh.register_now.notified())
                    .await
                    .is_ok(),
                "a re-assertion asks for a round"
            );
        }
        let reassertions = me.metrics.drain_reassertions_of(&me.addr);
        assert_eq!(reassertions, 2);
        assert_eq!(me.warned_drain, Some(since), "warned once for this drain");
        assert!(me.reg.is_none(), "the round re-asserts, not this task");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_lost_the_broker_registers_again_and_a_current_one_confirms() {
        let (mut me, ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        ch.register.advert.send_replace(Some(a.clone()));
        me.keep_period(&cfg);
        let (b, _) = me.on_tick(true).expect("a beat");
        let current = DataVersionAnswer {
            changed: false,
            held: Some(a.table.data_version),
        };
        me.on_beat(b, Ok(current), &cfg);
        assert_eq!(me.rec.beat.acked, Some(a.table.data_version));
        assert!(me.rec.last_ok.is_some(), "it holds the broker");
        let (b, _) = me.on_tick(true).expect("a beat");
        let lost = DataVersionAnswer {
            changed: true,
            held: None,
        };
        me.on_beat(b, Ok(lost), &cfg);
        assert!(matches!(me.reg.as_ref().map(|r| &r.why), Some(Why::Lost)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_registration_in_flight_gets_its_wait_and_no_more() {
        let (mut me, _ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        me.reg = Some(stalled(&a, Why::Join));
        let started = Instant::now();
        me.finish_in_flight(Duration::from_secs(2), &cfg).await;
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(me.reg.is_none(), "abandoned: it sends nothing more");
    }

    #[tokio::test(start_paused = true)]
    async fn a_withdraw_behind_a_stalled_registration_is_bounded_and_says_its_goodbye() {
        let (mut me, _ch, cfg) = member();
        // Nothing listens there: the goodbye is refused (or times out) rather than hangs.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        me.addr = Arc::from(closed.local_addr().expect("addr").to_string());
        drop(closed);
        let a = advert(&cfg, 7, None);
        me.reg = Some(stalled(&a, Why::Join));
        me.retry_at = Some(Instant::now());
        let (reply, mut answer) = oneshot::channel();
        let started = Instant::now();
        let flow = tokio::time::timeout(
            Duration::from_secs(60),
            me.on_cmd(Cmd::Withdraw { reply }, &cfg),
        )
        .await
        .expect("the withdraw ended: it does not wait for the stalled registration");
        let took = started.elapsed();
        assert!(matches!(flow, Flow::Go), "a withdrawn NameServer's task stays");
        assert!(
            took <= LEAVE_WAIT + cfg.register.timeout,
            "{took:?}: the stalled registration held the goodbye up"
        );
        assert!(took >= LEAVE_WAIT, "the registration in flight got its wait");
        assert!(answer.try_recv().is_ok(), "the goodbye's outcome went back");
        assert!(me.reg.is_none() && me.retry_at.is_none() && me.rec.last_ok.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_ends_when_the_register_task_is_gone() {
        let (mut me, _ch, cfg) = member();
        assert!(matches!(me.on(Event::Cmd(None), &cfg).await, Flow::End));
        assert!(matches!(me.on(Event::Config(Some(())), &cfg).await, Flow::Go));
        assert!(matches!(me.on(Event::Config(None), &cfg).await, Flow::End));
    }

    /// What a read-back of `a`'s broker compares with: the broker's own topic, 1 queue.
    fn expect_of(a: &Advert) -> crate::daemon::route::compare::Expect {
        use crate::daemon::route::compare::{Expect, Want};
        let want = Want {
            read: 1,
            write: 1,
            perm: 7,
        };
        Expect {
            id: a.id.clone(),
            topic: Some((a.id.name.clone(), Some(want))),
        }
    }

    fn route_to(addr: &str, name: &str) -> crate::broker::route::TopicRoute {
        serde_json::from_value(serde_json::json!({
            "brokerDatas": [{"cluster": "DefaultCluster", "brokerName": name, "brokerAddrs": {"0": addr}}],
            "queueDatas": [{"brokerName": name, "readQueueNums": 1, "writeQueueNums": 1, "perm": 7}],
        }))
        .expect("a route")
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_back_that_finds_the_broker_missing_registers_once_and_counts_it() {
        use crate::broker::route::RouteAnswer;
        let (mut me, ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        ch.register.advert.send_replace(Some(a.clone()));
        let missing = || Checked::read_for_tests(expect_of(&a), Some(Ok(RouteAnswer::NotExist)));
        me.on_checked(missing(), &cfg);
        assert!(matches!(me.reg.as_ref().map(|r| &r.why), Some(Why::Restore(RouteKind::Missing))));
        assert_eq!(me.metrics.route_restores_of(&me.addr, RouteKind::Missing), 1);
        // Still missing before the audit interval passed: nothing more (no storm).
        me.reg = None;
        me.on_checked(missing(), &cfg);
        assert!(me.reg.is_none());
        assert_eq!(me.metrics.route_restores_of(&me.addr, RouteKind::Missing), 1);
        // The route as advertised: nothing to do, and the status says it is routed.
        let ok = Checked::read_for_tests(expect_of(&a), Some(Ok(RouteAnswer::Found(route_to(&a.id.addr, &a.id.name)))));
        me.on_checked(ok, &cfg);
        assert!(me.reg.is_none());
        assert_eq!(me.status.borrow().route.routed, Some(true));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_back_that_fails_or_waits_for_service_acts_on_nothing() {
        use crate::broker::route::RouteAnswer;
        let (mut me, ch, cfg) = member();
        let a = advert(&cfg, 7, None);
        ch.register.advert.send_replace(Some(a.clone()));
        for answer in [Err(refused()), Ok(RouteAnswer::NotReady("name server not ready".into()))] {
            me.on_checked(Checked::read_for_tests(expect_of(&a), Some(answer)), &cfg);
            assert!(me.reg.is_none());
        }
        assert_eq!(me.status.borrow().route.routed, None, "not ready is never missing");
        assert!(me.audit.due().is_some(), "the next audit is due");
    }

    #[tokio::test(start_paused = true)]
    async fn another_address_under_the_id_is_restored_by_the_two_step_but_not_while_draining() {
        use crate::broker::route::RouteAnswer;
        let (mut me, ch, cfg) = member();
        let drained = advert(&cfg, 7, Some(SystemTime::now()));
        ch.register.advert.send_replace(Some(drained.clone()));
        let stray = || Ok(RouteAnswer::Found(route_to("10.9.9.9:10911", &drained.id.name)));
        me.on_checked(Checked::read_for_tests(expect_of(&drained), Some(stray())), &cfg);
        assert!(me.reg.is_none(), "never restore address during a drain");
        let a = advert(&cfg, 7, None);
        ch.register.advert.send_replace(Some(a.clone()));
        me.on_checked(Checked::read_for_tests(expect_of(&a), Some(stray())), &cfg);
        assert!(matches!(me.reg.as_ref().map(|r| &r.why), Some(Why::Restore(RouteKind::Address))));
        assert_eq!(me.metrics.route_restores_of(&me.addr, RouteKind::Address), 1);
    }
}
