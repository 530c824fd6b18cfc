//! What is done about a route that differs: one NameServer's rules, as a value with no I/O.
//!
//! `missing` is registered again at once. `address` gets one restore; seen again within
//! [`EPISODE`], the other address is asked once whether it is this same broker: if it is, two
//! brokers claim the id (split-brain) and nothing contends; if not (a tool, a stale pod, nothing
//! listening) the daemon contends at most once per `register.interval`. A restore the
//! NameServer ignored (the audit right after it still shows the other address: a 5.x
//! stateVersion guard protecting a newer master) is reported, never fought. Nothing restores
//! `address` during a drain or once the stop began; at most one restore per audit interval.

use std::time::Duration;

use tokio::time::Instant;

use super::compare::Findings;
use crate::metrics::labels::RouteKind;

/// How long a rival is remembered after it was last seen, and a conflict paged.
pub(crate) const EPISODE: Duration = Duration::from_secs(300);

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Act {
    /// Nothing (it matches, or it is reported only).
    Nothing,
    /// Register again, as a full registration of the advert (`missing`).
    Register,
    /// The two-step (the next data version, then the advert's own) for this kind: the
    /// NameServer rewrites queue data only when the address's version changes.
    Restore(RouteKind),
    /// WIPE_WRITE_PERM only (a drained broker routed writable).
    Wipe,
    /// Ask this address whether it is this same broker.
    Probe(String),
}

/// What the other address said it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    NotAsked,
    Asking,
    /// The same cluster, name and id: split-brain.
    Same,
    /// Another broker, or nothing there: a stray.
    Stray,
}

/// Another address holding the broker's id.
#[derive(Debug, Clone)]
struct Rival {
    addr: String,
    last_seen: Instant,
    restored: bool,
    probe: Probe,
    last_contend: Option<Instant>,
    /// The NameServer kept it over a restore of ours.
    ignored: bool,
}

/// The circumstances of one decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Situation {
    /// Now.
    pub(crate) now: Instant,
    /// A drain holds.
    pub(crate) draining: bool,
    /// The stop began (or the broker is down): nothing is registered.
    pub(crate) stopping: bool,
    /// `route.audit_interval`: at most one restore per this.
    pub(crate) audit_every: Duration,
    /// `register.interval`: a stray is contended at most this often.
    pub(crate) register_every: Duration,
    /// `route.restore_write`.
    pub(crate) restore_write: bool,
}

/// One NameServer's read-back rules and memory.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    rival: Option<Rival>,
    last_restore: Option<Instant>,
    /// The restore decided and not ended yet: its kind, and the rival it went against.
    sent: Option<(RouteKind, Option<String>)>,
    /// What the decision changed, to undo when the restore never went out.
    undo: Option<Undo>,
    /// A restore that went out, whose effect the next read that answers shows.
    ended: Option<RouteKind>,
    /// The same, answered SUCCESS (not oneway): only then can the read say "ignored".
    answered: Option<(RouteKind, Option<String>)>,
    conflict_until: Option<Instant>,
    /// Restores in a row that the read after them showed had not taken.
    untaken: u32,
    /// A plain registration for `missing` did not take: the next one is the two-step.
    escalate: bool,
}

/// What a restore decision changed before it went out.
#[derive(Debug, Clone, Copy)]
struct Undo {
    last_restore: Option<Instant>,
    /// The rival's `restored` and `last_contend` before (None: the decision left them).
    rival: Option<(bool, Option<Instant>)>,
}

/// Restores in a row that did not take, after which they go out at most once per
/// `register.interval`: the NameServer does not keep what it is sent (another registrar of the
/// same address, a NameServer that drops the registration), and restoring faster fixes nothing.
const TRIES: u32 = 2;

/// Why nothing contends for the id, when nothing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standoff {
    /// The other address says it is this broker.
    SplitBrain,
    /// The NameServer keeps the other address over our registrations.
    Ignored,
}

impl Policy {
    /// Decides on one audit's findings.
    pub(crate) fn decide(&mut self, f: &Findings, s: &Situation) -> Act {
        let after = self.answered.take();
        if let Some(k) = self.ended.take() {
            if f.has(k) {
                self.untaken += 1;
                // A plain registration rewrites queue data only where the NameServer had no
                // entry for the broker: the two-step next time.
                self.escalate |= k == RouteKind::Missing;
            } else {
                self.untaken = 0;
            }
        }
        if f.matches() {
            self.untaken = 0;
            self.escalate = false;
            return Act::Nothing;
        }
        if s.stopping {
            return Act::Nothing;
        }
        // Another holder first: a route gone with the id held elsewhere is not to be taken
        // back by a plain registration during a drain.
        if f.has(RouteKind::Address) {
            return self.address(f, after, s);
        }
        if f.has(RouteKind::Missing) {
            let act = if self.escalate {
                Act::Restore(RouteKind::Missing)
            } else {
                Act::Register
            };
            return self.limited(act, RouteKind::Missing, None, s);
        }
        if f.has(RouteKind::Queues) {
            return self.limited(Act::Restore(RouteKind::Queues), RouteKind::Queues, None, s);
        }
        if f.has(RouteKind::Permission) {
            let act = match (f.writable, s.draining) {
                (true, true) => Act::Wipe,
                (true, false) => Act::Restore(RouteKind::Permission),
                (false, _) if s.restore_write && !s.draining => {
                    Act::Restore(RouteKind::Permission)
                }
                (false, _) => Act::Nothing,
            };
            return self.limited(act, RouteKind::Permission, None, s);
        }
        // `cluster` alone: registering cannot move a name to another cluster.
        Act::Nothing
    }

    /// The other address answered the probe: `same` when it is this broker.
    pub(crate) fn probed(&mut self, other: &str, same: bool, s: &Situation) -> Act {
        let Some(r) = self.rival.as_mut().filter(|r| r.addr == other) else {
            return Act::Nothing;
        };
        r.probe = if same { Probe::Same } else { Probe::Stray };
        if same {
            self.conflict_until = Some(s.now + EPISODE);
            return Act::Nothing;
        }
        self.contend(s)
    }

    /// True through a conflict episode: until [`EPISODE`] after the last sighting.
    pub(crate) fn conflict(&self, now: Instant) -> bool {
        self.conflict_until.is_some_and(|t| now < t)
    }

    /// Why nothing contends for the id, if that is so.
    pub(crate) fn standoff(&self) -> Option<Standoff> {
        let r = self.rival.as_ref()?;
        if r.ignored {
            Some(Standoff::Ignored)
        } else if r.probe == Probe::Same {
            Some(Standoff::SplitBrain)
        } else {
            None
        }
    }

    fn address(
        &mut self,
        f: &Findings,
        after: Option<(RouteKind, Option<String>)>,
        s: &Situation,
    ) -> Act {
        let Some(other) = f.other.clone() else {
            // The broker's address under another id: a registration moves it back.
            if s.draining {
                return Act::Nothing;
            }
            return self.limited(Act::Restore(RouteKind::Address), RouteKind::Address, None, s);
        };
        let fresh = self
            .rival
            .as_ref()
            .is_none_or(|r| r.addr != other || s.now.duration_since(r.last_seen) >= EPISODE);
        if fresh {
            self.rival = Some(Rival {
                addr: other.clone(),
                last_seen: s.now,
                restored: false,
                probe: Probe::NotAsked,
                last_contend: None,
                ignored: false,
            });
        }
        let Some(r) = self.rival.as_mut() else {
            return Act::Nothing;
        };
        r.last_seen = s.now;
        if after == Some((RouteKind::Address, Some(other.clone()))) {
            // Our restore against this very address was answered, and the first read after
            // it still shows it: the NameServer ignored ours.
            r.ignored = true;
        }
        if r.ignored || r.probe == Probe::Same {
            self.conflict_until = Some(s.now + EPISODE);
            return Act::Nothing;
        }
        if s.draining {
            return Act::Nothing;
        }
        match (r.restored, r.probe) {
            (false, _) => self.contend(s),
            (true, Probe::NotAsked) => {
                r.probe = Probe::Asking;
                Act::Probe(other)
            }
            (true, Probe::Asking | Probe::Same) => Act::Nothing,
            (true, Probe::Stray) => self.contend(s),
        }
    }

    /// A restore against the rival: the first at once, a stray's at most once per
    /// `register.interval`.
    fn contend(&mut self, s: &Situation) -> Act {
        if s.draining || s.stopping {
            return Act::Nothing;
        }
        let Some(r) = self.rival.as_ref() else {
            return Act::Nothing;
        };
        let due = r
            .last_contend
            .is_none_or(|t| s.now.duration_since(t) >= s.register_every);
        if !due {
            return Act::Nothing;
        }
        let (against, before) = (Some(r.addr.clone()), (r.restored, r.last_contend));
        let act = self.limited(Act::Restore(RouteKind::Address), RouteKind::Address, against, s);
        if act != Act::Nothing {
            if let Some(r) = self.rival.as_mut() {
                r.restored = true;
                r.last_contend = Some(s.now);
            }
            if let Some(u) = self.undo.as_mut() {
                u.rival = Some(before);
            }
        }
        act
    }

    fn restore_allowed(&self, s: &Situation) -> bool {
        let since = |t: Instant| s.now.duration_since(t);
        self.last_restore.is_none_or(|t| {
            since(t) >= s.audit_every && (self.untaken < TRIES || since(t) >= s.register_every)
        })
    }

    /// `act` unless a restore went out within the audit interval (or, after restores that did
    /// not take, within `register.interval`); remembered as sent.
    fn limited(&mut self, act: Act, kind: RouteKind, against: Option<String>, s: &Situation) -> Act {
        if act == Act::Nothing || !self.restore_allowed(s) {
            return Act::Nothing;
        }
        self.undo = Some(Undo {
            last_restore: self.last_restore,
            rival: None,
        });
        self.last_restore = Some(s.now);
        self.sent = Some((kind, against));
        act
    }

    /// The restore went out and ended: the next read shows whether it took; `answered` when
    /// the NameServer answered SUCCESS (a oneway one proves nothing), so that only then can
    /// that read say the NameServer ignored it.
    pub(crate) fn restore_done(&mut self, answered: bool) {
        self.undo = None;
        let sent = self.sent.take();
        self.ended = sent.as_ref().map(|(k, _)| *k);
        self.answered = sent.filter(|_| answered);
    }

    /// The restore went out and failed: counted as one that did not take.
    pub(crate) fn restore_failed(&mut self) {
        self.undo = None;
        if self.sent.take().is_some() {
            self.untaken += 1;
        }
    }

    /// The restore never went out (a registration was in flight): as if not decided.
    pub(crate) fn restore_dropped(&mut self) {
        self.sent = None;
        let Some(u) = self.undo.take() else { return };
        self.last_restore = u.last_restore;
        if let (Some((restored, contend)), Some(r)) = (u.rival, self.rival.as_mut()) {
            r.restored = restored;
            r.last_contend = contend;
        }
    }

    /// A read failed, or none could be made: the next one that answers is not "right after"
    /// a restore any more.
    pub(crate) fn read_failed(&mut self) {
        self.answered = None;
        self.ended = None;
    }

    /// The read in flight was dropped (the read-back turned off): a probe is asked again, and
    /// nothing is "right after" a restore.
    pub(crate) fn cancelled(&mut self) {
        self.read_failed();
        if let Some(r) = self.rival.as_mut().filter(|r| r.probe == Probe::Asking) {
            r.probe = Probe::NotAsked;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: Instant) -> Situation {
        Situation {
            now,
            draining: false,
            stopping: false,
            audit_every: Duration::from_secs(5),
            register_every: Duration::from_secs(30),
            restore_write: false,
        }
    }

    fn found(kinds: &[RouteKind], other: Option<&str>) -> Findings {
        let mut f = Findings::default();
        for k in kinds {
            f.add(*k);
        }
        f.other = other.map(str::to_string);
        f
    }

    const ADDR: &[RouteKind] = &[RouteKind::Address];

    /// Decides, and answers the restore it asks for, as the NameServer would.
    fn d(p: &mut Policy, f: &Findings, s: &Situation) -> Act {
        let act = p.decide(f, s);
        if matches!(act, Act::Register | Act::Restore(_) | Act::Wipe) {
            p.restore_done(true);
        }
        act
    }

    #[tokio::test(start_paused = true)]
    async fn only_an_answered_restore_and_the_read_right_after_it_can_say_ignored() {
        let t0 = Instant::now();
        let other = found(ADDR, Some("x:1"));
        // A read that failed in between: the rival came back, nothing was ignored.
        let mut p = Policy::default();
        assert_eq!(d(&mut p, &other, &at(t0)), Act::Restore(RouteKind::Address));
        p.read_failed();
        assert_eq!(p.decide(&other, &at(t0)), Act::Probe("x:1".into()));
        assert_eq!(p.standoff(), None);
        // A oneway restore proves nothing.
        let mut p = Policy::default();
        assert_eq!(p.decide(&other, &at(t0)), Act::Restore(RouteKind::Address));
        p.restore_done(false);
        assert_eq!(p.decide(&other, &at(t0)), Act::Probe("x:1".into()));
        // A restore against another holder (the address under another id) says nothing of
        // this one.
        let mut p = Policy::default();
        let moved = found(ADDR, None);
        assert_eq!(d(&mut p, &moved, &at(t0)), Act::Restore(RouteKind::Address));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(p.decide(&other, &at(t1)), Act::Restore(RouteKind::Address));
        assert_eq!(p.standoff(), None);
        // A probe dropped with the read in flight is asked again.
        let mut p = Policy::default();
        assert_eq!(d(&mut p, &other, &at(t0)), Act::Restore(RouteKind::Address));
        assert_eq!(d(&mut p, &Findings::default(), &at(t0)), Act::Nothing);
        assert_eq!(p.decide(&other, &at(t1)), Act::Probe("x:1".into()));
        p.cancelled();
        assert_eq!(p.decide(&other, &at(t1)), Act::Probe("x:1".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn oneway_and_failed_restores_still_count_and_a_dropped_one_is_undone() {
        let t0 = Instant::now();
        let at_s = |n: u64| at(t0 + Duration::from_secs(n));
        let missing = found(&[RouteKind::Missing], None);
        // Oneway: no answer, but the read after it shows it did not take: the two-step next.
        let mut p = Policy::default();
        assert_eq!(p.decide(&missing, &at_s(0)), Act::Register);
        p.restore_done(false);
        assert_eq!(p.decide(&missing, &at_s(5)), Act::Restore(RouteKind::Missing));
        // Failed twice: slowed to one per register.interval.
        let mut p = Policy::default();
        let queues = found(&[RouteKind::Queues], None);
        for n in [0, 5] {
            assert_eq!(p.decide(&queues, &at_s(n)), Act::Restore(RouteKind::Queues));
            p.restore_failed();
        }
        assert_eq!(p.decide(&queues, &at_s(10)), Act::Nothing);
        assert_eq!(p.decide(&queues, &at_s(35)), Act::Restore(RouteKind::Queues));
        // Dropped (a registration was in flight): the first sighting's restore is still due.
        let mut p = Policy::default();
        let other = found(ADDR, Some("x:1"));
        assert_eq!(p.decide(&other, &at_s(0)), Act::Restore(RouteKind::Address));
        p.restore_dropped();
        assert_eq!(p.decide(&other, &at_s(0)), Act::Restore(RouteKind::Address));
        // The read-back off meanwhile: the first read after is not "right after" the restore.
        p.restore_done(true);
        p.cancelled();
        assert_eq!(p.decide(&other, &at_s(5)), Act::Probe("x:1".into()));
        assert_eq!(p.standoff(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_route_gone_with_the_id_held_elsewhere_is_not_registered_away_during_a_drain() {
        let t0 = Instant::now();
        let both = found(&[RouteKind::Missing, RouteKind::Address], Some("x:1"));
        let draining = Situation {
            draining: true,
            ..at(t0)
        };
        assert_eq!(Policy::default().decide(&both, &draining), Act::Nothing);
        assert_eq!(
            Policy::default().decide(&both, &at(t0)),
            Act::Restore(RouteKind::Address)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queue_restores_that_do_not_take_slow_to_one_per_interval() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let queues = found(&[RouteKind::Queues], None);
        let at_s = |n: u64| at(t0 + Duration::from_secs(n));
        assert_eq!(d(&mut p, &queues, &at_s(0)), Act::Restore(RouteKind::Queues));
        assert_eq!(d(&mut p, &queues, &at_s(5)), Act::Restore(RouteKind::Queues));
        for n in [10, 15, 20, 25, 30] {
            assert_eq!(d(&mut p, &queues, &at_s(n)), Act::Nothing, "at {n} s");
        }
        assert_eq!(d(&mut p, &queues, &at_s(35)), Act::Restore(RouteKind::Queues));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stray_gets_one_restore_a_probe_then_one_contest_per_interval() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let stray = found(ADDR, Some("x:1"));
        assert_eq!(d(&mut p, &stray, &at(t0)), Act::Restore(RouteKind::Address));
        // The audit right after: ours again.
        assert_eq!(d(&mut p, &Findings::default(), &at(t0)), Act::Nothing);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(d(&mut p, &stray, &at(t1)), Act::Probe("x:1".into()));
        // Nothing there: a stray, but it was contended at t0.
        assert_eq!(p.probed("x:1", false, &at(t1)), Act::Nothing);
        for s in [10, 15, 20, 25] {
            assert_eq!(d(&mut p, &stray, &at(t0 + Duration::from_secs(s))), Act::Nothing);
        }
        let t30 = t0 + Duration::from_secs(30);
        assert_eq!(d(&mut p, &stray, &at(t30)), Act::Restore(RouteKind::Address));
        assert!(!p.conflict(t30));
        assert_eq!(p.standoff(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_broker_elsewhere_is_split_brain_paged_and_never_contended() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let other = found(ADDR, Some("x:1"));
        assert_eq!(d(&mut p, &other, &at(t0)), Act::Restore(RouteKind::Address));
        assert_eq!(d(&mut p, &Findings::default(), &at(t0)), Act::Nothing);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(d(&mut p, &other, &at(t1)), Act::Probe("x:1".into()));
        assert_eq!(p.probed("x:1", true, &at(t1)), Act::Nothing);
        assert!(p.conflict(t1));
        assert_eq!(p.standoff(), Some(Standoff::SplitBrain));
        let late = t1 + Duration::from_secs(60);
        assert_eq!(d(&mut p, &other, &at(late)), Act::Nothing);
        // Paged until five minutes after the last sighting.
        assert!(p.conflict(late + EPISODE - Duration::from_secs(1)));
        assert!(!p.conflict(late + EPISODE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restore_the_namesrv_ignores_is_reported_not_fought() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let other = found(ADDR, Some("x:1"));
        assert_eq!(d(&mut p, &other, &at(t0)), Act::Restore(RouteKind::Address));
        // Right after the restore, still the other: the stateVersion guard.
        assert_eq!(d(&mut p, &other, &at(t0)), Act::Nothing);
        assert_eq!(p.standoff(), Some(Standoff::Ignored));
        assert!(p.conflict(t0));
        for s in [5, 35, 65] {
            assert_eq!(d(&mut p, &other, &at(t0 + Duration::from_secs(s))), Act::Nothing);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_restores_address_while_draining_or_stopping_and_missing_only_when_not_stopping() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let draining = Situation {
            draining: true,
            ..at(t0)
        };
        assert_eq!(d(&mut p, &found(ADDR, Some("x:1")), &draining), Act::Nothing);
        assert_eq!(d(&mut p, &found(ADDR, None), &draining), Act::Nothing);
        assert_eq!(
            d(&mut p, &found(&[RouteKind::Missing], None), &draining),
            Act::Register
        );
        let stopping = Situation {
            stopping: true,
            ..at(t0 + Duration::from_secs(10))
        };
        assert_eq!(d(&mut p, &found(&[RouteKind::Missing], None), &stopping), Act::Nothing);
    }

    #[tokio::test(start_paused = true)]
    async fn one_restore_per_audit_interval_and_a_plain_registration_that_did_not_take_becomes_the_two_step(
    ) {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let missing = found(&[RouteKind::Missing], None);
        assert_eq!(d(&mut p, &missing, &at(t0)), Act::Register);
        // Still missing right after: not again before the interval (no storm)...
        assert_eq!(d(&mut p, &missing, &at(t0 + Duration::from_millis(10))), Act::Nothing);
        // ... and then the two-step, since the plain one did not take.
        let mut p = Policy::default();
        assert_eq!(d(&mut p, &missing, &at(t0)), Act::Register);
        assert_eq!(
            d(&mut p, &missing, &at(t0 + Duration::from_secs(5))),
            Act::Restore(RouteKind::Missing)
        );
        assert_eq!(d(&mut p, &missing, &at(t0 + Duration::from_secs(6))), Act::Nothing);
    }

    #[tokio::test(start_paused = true)]
    async fn permission_by_direction_queues_always_cluster_never() {
        let t0 = Instant::now();
        let mut writable = found(&[RouteKind::Permission], None);
        writable.writable = true;
        let drained = Situation {
            draining: true,
            ..at(t0)
        };
        assert_eq!(d(&mut Policy::default(), &writable, &drained), Act::Wipe);
        assert_eq!(
            d(&mut Policy::default(), &writable, &at(t0)),
            Act::Restore(RouteKind::Permission)
        );
        let read_only = found(&[RouteKind::Permission], None);
        assert_eq!(d(&mut Policy::default(), &read_only, &at(t0)), Act::Nothing);
        let restoring = Situation {
            restore_write: true,
            ..at(t0)
        };
        assert_eq!(
            d(&mut Policy::default(), &read_only, &restoring),
            Act::Restore(RouteKind::Permission)
        );
        assert_eq!(
            d(&mut Policy::default(), &found(&[RouteKind::Queues], None), &drained),
            Act::Restore(RouteKind::Queues)
        );
        assert_eq!(
            d(&mut Policy::default(), &found(&[RouteKind::Cluster], None), &at(t0)),
            Act::Nothing
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_namesrv_that_keeps_not_routing_the_broker_gets_one_restore_per_interval() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let missing = found(&[RouteKind::Missing], None);
        let at_s = |n: u64| at(t0 + Duration::from_secs(n));
        assert_eq!(d(&mut p, &missing, &at_s(0)), Act::Register);
        assert_eq!(d(&mut p, &missing, &at_s(5)), Act::Restore(RouteKind::Missing));
        // Two did not take: not again before register.interval (30 s) has passed.
        for n in [10, 15, 20, 25, 30] {
            assert_eq!(d(&mut p, &missing, &at_s(n)), Act::Nothing, "at {n} s");
        }
        assert_ne!(d(&mut p, &missing, &at_s(35)), Act::Nothing);
        // Routed again: the count starts over.
        assert_eq!(d(&mut p, &Findings::default(), &at_s(40)), Act::Nothing);
        assert_eq!(d(&mut p, &missing, &at_s(70)), Act::Register);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rival_not_seen_for_an_episode_is_new_again() {
        let mut p = Policy::default();
        let t0 = Instant::now();
        let other = found(ADDR, Some("x:1"));
        assert_eq!(d(&mut p, &other, &at(t0)), Act::Restore(RouteKind::Address));
        assert_eq!(d(&mut p, &Findings::default(), &at(t0)), Act::Nothing);
        let later = t0 + EPISODE + Duration::from_secs(1);
        assert_eq!(d(&mut p, &other, &at(later)), Act::Restore(RouteKind::Address));
    }
}
