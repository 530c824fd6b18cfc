//! The drain's state: the one in force as the register task holds it, and the view it
//! publishes (/readyz, the metrics, a request waiting on it).

use std::collections::BTreeSet;
use std::time::SystemTime;

use tokio::time::Instant;

use crate::config::Config;
use crate::daemon::fault::FaultKind;

/// Why a drain holds. A drain is a set of these: it ends when its last reason does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// Asked for through `/drain` (an operator, the broker unit's `ExecStop`, a preStop hook).
    Planned {
        /// Who asked.
        who: String,
    },
    /// The broker cannot take writes (the health task's fault drain): ends when it can again,
    /// never by a cancel or `drain.max`.
    Fault {
        /// Why.
        kind: FaultKind,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Planned { who } => write!(f, "asked by {who}"),
            Reason::Fault { kind: FaultKind::Disk } => f.write_str("the broker's disk is full"),
            Reason::Fault { kind: FaultKind::Store } => {
                f.write_str("the broker's store takes no writes")
            }
        }
    }
}

/// A drain in force: since when and why. What every NameServer is told carries it, and so do
/// /readyz and the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Draining {
    /// Since when.
    pub(crate) since: SystemTime,
    /// Why (never empty while it holds).
    pub(crate) reasons: BTreeSet<Reason>,
}

impl Draining {
    /// The reasons, for a log line or /readyz (`asked by alice`).
    pub(crate) fn why(&self) -> String {
        let all: Vec<String> = self.reasons.iter().map(Reason::to_string).collect();
        all.join(", ")
    }

    /// A planned drain is among the reasons (heartbeats go every DRAIN_BEAT, the cluster
    /// table is read at every audit).
    pub(crate) fn planned(&self) -> bool {
        self.reasons.iter().any(|r| matches!(r, Reason::Planned { .. }))
    }

    /// The faults among the reasons.
    pub(crate) fn faults(&self) -> BTreeSet<FaultKind> {
        self.reasons
            .iter()
            .filter_map(|r| match r {
                Reason::Fault { kind } => Some(*kind),
                Reason::Planned { .. } => None,
            })
            .collect()
    }
}

/// The drain as the register task publishes it: the one in force, and why the last one ended
/// (a request still waiting on a drain that ended names the reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DrainView {
    /// The drain in force.
    pub(crate) held: Option<Draining>,
    /// The last drain that ended: since when it was held, and why it ended.
    pub(crate) ended: Option<(std::time::SystemTime, String)>,
}

/// The drain in force, as the register task holds it.
pub(crate) struct Drain {
    /// Since when (monotonic, for the log).
    pub(crate) started: Instant,
    /// Since when a planned reason holds (monotonic, for `drain.max`; None: faults only).
    pub(crate) planned: Option<Instant>,
    /// Since when and why.
    pub(crate) held: Draining,
    /// A health check failed since it began: the next passing one means the broker restarted.
    pub(crate) saw_failure: bool,
    /// The checks' connection interruptions when it began: one more, with a passing check,
    /// means the broker restarted faster than a check failed.
    pub(crate) interruptions: u64,
}

impl Drain {
    /// Since when (wall clock, for the metric and /readyz).
    pub(crate) fn since(&self) -> SystemTime {
        self.held.since
    }

    /// When `drain.max` ends its planned reasons (None: it holds for faults only).
    pub(crate) fn deadline(&self, cfg: &Config) -> Option<Instant> {
        self.planned.map(|t| t + cfg.drain.max)
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drain_says_every_reason_it_holds_for() {
        let mut d = Draining {
            since: SystemTime::UNIX_EPOCH,
            reasons: BTreeSet::from([Reason::Planned { who: "ops".into() }]),
        };
        assert_eq!(d.why(), "asked by ops");
        d.reasons.insert(Reason::Planned { who: "k8s".into() });
        assert_eq!(d.why(), "asked by k8s, asked by ops");
        assert!(d.planned() && d.faults().is_empty());
        d.reasons.insert(Reason::Fault {
            kind: FaultKind::Disk,
        });
        assert_eq!(d.why(), "asked by k8s, asked by ops, the broker's disk is full");
        assert_eq!(d.faults(), BTreeSet::from([FaultKind::Disk]));
        d.reasons.retain(|r| !matches!(r, Reason::Planned { .. }));
        assert!(!d.planned());
    }
}
