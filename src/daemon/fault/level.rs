//! When the broker's write health holds a fault drain, as a pure state machine the health task
//! feeds with each check's reading: two consecutive readings enter or end it (one, the first
//! after the daemon starts or the broker comes back), and it ends only well below where it
//! began (hysteresis), so a disk that hovers at the level does not flap the route.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::broker::StoreHealth;

/// Why the broker cannot take writes (the `reason` label of the write-fault gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FaultKind {
    /// Its disk is past (or, pre-emptively, near) its refusal threshold.
    Disk,
    /// Its store says it takes no writes (`storeWriteable=false`).
    Store,
}

impl FaultKind {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FaultKind::Disk => "disk",
            FaultKind::Store => "store",
        }
    }
}

/// Consecutive readings that enter or end a fault (one after a fresh start).
const CONFIRM: u8 = 2;

/// The disk levels, in integer percent (as Java compares a ratio it rounds up to 0.01).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Levels {
    /// The broker refuses sends above this.
    pub(crate) threshold: u32,
    /// Points below it from which a drain is pre-emptive.
    pub(crate) margin: u32,
}

impl Levels {
    /// The broker refuses writes at `pct`.
    pub(crate) fn refuses(self, pct: u32) -> bool {
        pct > self.threshold
    }

    /// Near enough for a pre-emptive drain (with no margin, only at the refusal level).
    pub(crate) fn near(self, pct: u32) -> bool {
        pct > self.threshold.saturating_sub(self.margin)
    }

    /// Low enough to end a fault drain.
    pub(crate) fn clear(self, pct: u32) -> bool {
        pct < self.threshold.saturating_sub(2 * self.margin)
    }
}

/// The disk use a reading says, in integer percent rounded up: the larger of the two ratios
/// the broker reports (None when it reports neither).
pub(crate) fn disk_pct(s: &StoreHealth) -> Option<u32> {
    let r = match (s.commitlog, s.consumequeue) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    // Java has already rounded up to 0.01; the small allowance keeps 0.9 (0.900000001) at 90.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let pct = (r * 100.0 - 1e-6).ceil().clamp(0.0, 100.0) as u32;
    Some(pct)
}

/// A fault in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// Since when.
    pub(crate) since: Instant,
    /// Entered ahead of the refusal (the disk was near, not past, the threshold).
    pub(crate) pre: bool,
}

/// What one reading changed, for the log (each said once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A fault drain begins.
    Entered {
        /// Why.
        kind: FaultKind,
        /// Ahead of the refusal.
        pre: bool,
    },
    /// It ends.
    Ended {
        /// Why it held.
        kind: FaultKind,
        /// For how long.
        held: Duration,
    },
    /// The disk is near the threshold and a pre-emptive drain would leave too few writable
    /// masters in the cluster: held back (said once per approach).
    HeldBack,
}

/// One kind's run of readings and whether it holds.
#[derive(Debug, Default, Clone, Copy)]
struct Track {
    held: Option<Held>,
    /// Consecutive readings at the level that enters (refusal, or near for the disk).
    bad: u8,
    /// Consecutive readings at the level that ends.
    good: u8,
}

impl Track {
    /// Feeds one reading: `enter` (it is at a level that enters), `end` (at one that ends).
    fn feed(&mut self, enter: bool, end: bool) {
        self.bad = if enter { self.bad.saturating_add(1) } else { 0 };
        self.good = if end { self.good.saturating_add(1) } else { 0 };
    }
}

/// The readings so far and the faults they hold.
#[derive(Debug, Clone)]
pub(crate) struct FaultWatch {
    disk: Track,
    store: Track,
    /// The next reading decides alone (the daemon started, or the broker came back).
    fresh: bool,
    /// The HeldBack WARN was said for this approach.
    warned: bool,
    /// A drain ahead of the refusal ended for want of writable peers: none again on this
    /// approach (two brokers filling together would otherwise take turns).
    pre_blocked: bool,
}

impl Default for FaultWatch {
    fn default() -> Self {
        FaultWatch {
            disk: Track::default(),
            store: Track::default(),
            fresh: true,
            warned: false,
            pre_blocked: false,
        }
    }
}

/// What a check read of the broker's write health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Reading {
    /// The disk use, in percent (None: not reported).
    pub(crate) disk: Option<u32>,
    /// Whether the store takes writes (None: not reported, as on Java).
    pub(crate) writable: Option<bool>,
}

impl FaultWatch {
    /// The faults in force.
    pub(crate) fn held(&self) -> BTreeSet<FaultKind> {
        [(FaultKind::Disk, self.disk), (FaultKind::Store, self.store)]
            .into_iter()
            .filter(|(_, t)| t.held.is_some())
            .map(|(k, _)| k)
            .collect()
    }

    /// The reading would drain ahead of the refusal, or one such drain holds while the broker
    /// does not refuse: the caller finds out whether enough other masters stay writable (it
    /// reads the routes) before feeding the reading.
    pub(crate) fn wants_peers(&self, r: Reading, l: Levels) -> bool {
        let Some(p) = r.disk.filter(|p| !l.refuses(*p)) else {
            return false;
        };
        match self.disk.held {
            None => l.near(p) && !self.pre_blocked && l.margin > 0,
            Some(h) => h.pre,
        }
    }

    /// The next reading decides alone: the broker came back (its store may be another).
    pub(crate) fn refresh(&mut self) {
        self.fresh = true;
    }

    /// Everything off (`fault.disk = false`, or this broker cannot drain): what held ends.
    pub(crate) fn off(&mut self, now: Instant) -> Vec<Change> {
        let mut out = Vec::new();
        for (kind, t) in [(FaultKind::Disk, &mut self.disk), (FaultKind::Store, &mut self.store)] {
            if let Some(h) = t.held.take() {
                out.push(Change::Ended {
                    kind,
                    held: now.saturating_duration_since(h.since),
                });
            }
            *t = Track::default();
        }
        self.fresh = true;
        out
    }

    /// Feeds one reading at `now`; `peers_ok`: a pre-emptive drain leaves enough writable
    /// masters (asked only when [`wants_peers`](Self::wants_peers) said so).
    pub(crate) fn feed(&mut self, r: Reading, l: Levels, peers_ok: bool, now: Instant) -> Vec<Change> {
        if r.disk.is_none() && r.writable.is_none() {
            // Nothing said: neither confirms nor cancels, and a fresh start waits for a word.
            return Vec::new();
        }
        let need = if std::mem::take(&mut self.fresh) { 1 } else { CONFIRM };
        let mut out = Vec::new();
        if let Some(p) = r.disk {
            let pre_ok = peers_ok && l.margin > 0 && !self.pre_blocked;
            let enter = l.refuses(p) || (l.near(p) && pre_ok);
            self.disk.feed(enter, l.clear(p));
            step(&mut self.disk, FaultKind::Disk, need, !l.refuses(p), now, &mut out);
            match &mut self.disk.held {
                // Past the threshold now: no longer a drain ahead of it.
                Some(h) if l.refuses(p) => h.pre = false,
                // Ahead of the refusal, and the others are no longer writable enough: the
                // cluster must keep its writable masters.
                Some(h) if h.pre && !peers_ok => {
                    let held = now.saturating_duration_since(h.since);
                    self.disk = Track::default();
                    self.pre_blocked = true;
                    out.push(Change::Ended {
                        kind: FaultKind::Disk,
                        held,
                    });
                }
                _ => {}
            }
            if self.disk.held.is_none() && l.near(p) && !l.refuses(p) && !pre_ok {
                if !std::mem::replace(&mut self.warned, true) {
                    out.push(Change::HeldBack);
                }
            } else if !l.near(p) {
                self.warned = false;
                self.pre_blocked = false;
            }
        }
        if let Some(w) = r.writable {
            // The store's own word has no pre-emptive level.
            self.store.feed(!w, w);
            step(&mut self.store, FaultKind::Store, need, false, now, &mut out);
        }
        out
    }
}

/// Enters or ends `t` when its run reached `need`.
fn step(t: &mut Track, kind: FaultKind, need: u8, pre: bool, now: Instant, out: &mut Vec<Change>) {
    match t.held {
        None if t.bad >= need => {
            t.held = Some(Held { since: now, pre });
            t.good = 0;
            out.push(Change::Entered { kind, pre });
        }
        Some(h) if t.good >= need => {
            t.held = None;
            t.bad = 0;
            out.push(Change::Ended {
                kind,
                held: now.saturating_duration_since(h.since),
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Levels = Levels {
        threshold: 90,
        margin: 2,
    };

    fn disk(p: u32) -> Reading {
        Reading {
            disk: Some(p),
            writable: None,
        }
    }

    /// A watch past its fresh start (one reading below every level).
    fn warm() -> FaultWatch {
        let mut w = FaultWatch::default();
        assert!(w.feed(disk(50), L, true, Instant::now()).is_empty());
        w
    }

    #[test]
    fn the_levels_compare_in_integer_percent_as_java_rounds() {
        let s = |c: Option<f64>, q: Option<f64>| StoreHealth {
            commitlog: c,
            consumequeue: q,
            writable: None,
        };
        assert_eq!(disk_pct(&s(Some(0.9), None)), Some(90));
        assert_eq!(disk_pct(&s(Some(0.9001), None)), Some(91), "rounded up, as Java");
        assert_eq!(disk_pct(&s(Some(0.5), Some(0.93))), Some(93), "the larger");
        assert_eq!(disk_pct(&s(None, Some(0.2))), Some(20));
        assert_eq!(disk_pct(&s(None, None)), None);
        assert!(!L.refuses(90) && L.refuses(91), "strictly above, as the broker");
        assert!(!L.near(88) && L.near(89));
        assert!(L.clear(85) && !L.clear(86));
    }

    #[test]
    fn two_readings_past_the_threshold_enter_and_two_well_below_end() {
        let t0 = Instant::now();
        let mut w = warm();
        assert!(w.feed(disk(95), L, false, t0).is_empty(), "one reading is not enough");
        assert_eq!(
            w.feed(disk(95), L, false, t0),
            vec![Change::Entered {
                kind: FaultKind::Disk,
                pre: false
            }]
        );
        assert_eq!(w.held(), BTreeSet::from([FaultKind::Disk]));
        // Under the threshold but not under the end level: it holds.
        for _ in 0..5 {
            assert!(w.feed(disk(87), L, false, t0).is_empty());
        }
        assert!(w.feed(disk(85), L, false, t0).is_empty());
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            w.feed(disk(85), L, false, later),
            vec![Change::Ended {
                kind: FaultKind::Disk,
                held: Duration::from_secs(30)
            }]
        );
        assert!(w.held().is_empty());
    }

    #[test]
    fn flapping_around_the_level_does_not_flap_the_fault() {
        let now = Instant::now();
        let mut w = warm();
        // Only entering and ending count here (a held-back WARN is said once, elsewhere).
        let moved = |w: &mut FaultWatch, p: u32| {
            w.feed(disk(p), L, false, now)
                .into_iter()
                .filter(|c| !matches!(c, Change::HeldBack))
                .count()
        };
        // In and out of the refusal, every other reading: never two in a row.
        for i in 0..20 {
            let p = if i % 2 == 0 { 91 } else { 90 };
            assert_eq!(moved(&mut w, p), 0, "reading {i}");
        }
        assert!(w.held().is_empty());
        moved(&mut w, 91);
        moved(&mut w, 91);
        assert_eq!(w.held().len(), 1);
        // Once held, around the refusal level and down to just above the end level: held.
        for i in 0..20 {
            let p = [91, 90, 88, 86][i % 4];
            assert_eq!(moved(&mut w, p), 0, "reading {i}");
        }
        // Below the end level every other reading: still held.
        for i in 0..20 {
            let p = if i % 2 == 0 { 85 } else { 86 };
            assert_eq!(moved(&mut w, p), 0, "reading {i}");
        }
        assert_eq!(w.held().len(), 1);
    }

    #[test]
    fn the_first_reading_decides_after_a_fresh_start() {
        let now = Instant::now();
        let mut w = FaultWatch::default();
        assert!(w.feed(Reading::default(), L, false, now).is_empty(), "no word: waits");
        assert_eq!(
            w.feed(disk(96), L, false, now),
            vec![Change::Entered {
                kind: FaultKind::Disk,
                pre: false
            }]
        );
        // The broker came back: its first reading ends it alone.
        w.refresh();
        assert!(matches!(w.feed(disk(40), L, false, now)[..], [Change::Ended { .. }]));
    }

    #[test]
    fn near_the_level_it_drains_ahead_only_with_enough_writable_peers() {
        let now = Instant::now();
        let mut w = warm();
        assert!(w.wants_peers(disk(89), L));
        assert!(!w.wants_peers(disk(88), L), "not near yet");
        assert!(!w.wants_peers(disk(95), L), "past it: no question of peers");
        // Too few peers: held back, said once.
        assert_eq!(w.feed(disk(89), L, false, now), vec![Change::HeldBack]);
        assert!(w.feed(disk(89), L, false, now).is_empty());
        assert!(w.held().is_empty());
        // The refusal itself drains whatever the peers.
        w.feed(disk(91), L, false, now);
        assert_eq!(
            w.feed(disk(91), L, false, now),
            vec![Change::Entered {
                kind: FaultKind::Disk,
                pre: false
            }]
        );
        let mut w = warm();
        w.feed(disk(89), L, true, now);
        assert_eq!(
            w.feed(disk(89), L, true, now),
            vec![Change::Entered {
                kind: FaultKind::Disk,
                pre: true
            }]
        );
        assert!(w.wants_peers(disk(89), L), "held ahead of the refusal: asked every check");
        assert!(w.feed(disk(89), L, true, now).is_empty(), "the peers still writable");
        // The other master went read-only: this one is writable again, and stays so on this
        // approach (two filling together must not take turns).
        assert!(matches!(w.feed(disk(89), L, false, now)[..], [Change::Ended { .. }, ..]));
        assert!(!w.wants_peers(disk(89), L));
        w.feed(disk(89), L, true, now);
        assert!(w.feed(disk(89), L, true, now).iter().all(|c| !matches!(c, Change::Entered { .. })));
        assert!(w.held().is_empty());
        // Past the threshold it drains whatever the peers; once there, a refusal is no
        // drain ahead of it, and the peers are not asked.
        w.feed(disk(91), L, false, now);
        w.feed(disk(91), L, false, now);
        assert_eq!(w.held().len(), 1);
        assert!(!w.wants_peers(disk(89), L));
        // Away from the level and back: a drain ahead of it may go again.
        let mut w = warm();
        w.feed(disk(89), L, true, now);
        w.feed(disk(89), L, true, now);
        w.feed(disk(89), L, false, now);
        w.feed(disk(80), L, true, now);
        assert!(w.wants_peers(disk(89), L));
        // With no margin there is nothing ahead of the refusal.
        let flat = Levels {
            threshold: 90,
            margin: 0,
        };
        let mut w = warm();
        w.feed(disk(90), flat, true, now);
        assert!(w.feed(disk(90), flat, true, now).is_empty());
    }

    #[test]
    fn a_store_that_takes_no_writes_holds_its_own_fault() {
        let now = Instant::now();
        let mut w = warm();
        let store = |ok| Reading {
            disk: Some(10),
            writable: Some(ok),
        };
        w.feed(store(false), L, false, now);
        assert_eq!(
            w.feed(store(false), L, false, now),
            vec![Change::Entered {
                kind: FaultKind::Store,
                pre: false
            }]
        );
        w.feed(store(true), L, false, now);
        assert!(matches!(w.feed(store(true), L, false, now)[..], [Change::Ended { kind: FaultKind::Store, .. }]));
    }

    #[test]
    fn turned_off_every_fault_ends() {
        let now = Instant::now();
        let mut w = FaultWatch::default();
        w.feed(
            Reading {
                disk: Some(99),
                writable: Some(false),
            },
            L,
            false,
            now,
        );
        assert_eq!(w.held().len(), 2);
        assert_eq!(w.off(now).len(), 2);
        assert!(w.held().is_empty());
    }
}
