//! Which of a name's addresses are NameServers now. DNS answers flap (a headless Service drops
//! a pod that is NotReady for a moment), and an address that leaves the list is unregistered
//! from, so joins are immediate and leaves are slow: an address leaves only after it was
//! missing from [`LEAVE_AFTER_LOOKUPS`] good answers in a row and for [`LEAVE_AFTER`], and no
//! answer takes more than half of the addresses away. A failed lookup changes nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::lookup::MAX_PER_NAME;

/// Good answers in a row an address must be missing from before it leaves.
pub const LEAVE_AFTER_LOOKUPS: u32 = 3;
/// How long an address must have been missing before it leaves.
pub const LEAVE_AFTER: Duration = Duration::from_secs(30);

/// One name's NameServers, and the answers each missing one was left out of.
#[derive(Debug, Default, Clone)]
pub struct Members {
    current: Vec<SocketAddr>,
    missing: HashMap<SocketAddr, Missing>,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    answers: u32,
    since: Instant,
}

/// What one answer changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    /// Addresses that joined.
    pub joined: Vec<SocketAddr>,
    /// Addresses that left.
    pub left: Vec<SocketAddr>,
    /// Addresses missing from the answer that stay for now.
    pub kept: Vec<SocketAddr>,
}

impl Change {
    /// True when the set changed.
    pub fn changed(&self) -> bool {
        !self.joined.is_empty() || !self.left.is_empty()
    }
}

impl Members {
    /// The addresses, sorted.
    pub fn current(&self) -> &[SocketAddr] {
        &self.current
    }

    /// Takes a good (non-empty) answer at `now`.
    pub fn answer(&mut self, answer: &[SocketAddr], now: Instant) -> Change {
        let mut change = Change::default();
        for a in answer {
            self.missing.remove(a);
            if !self.current.contains(a) && self.current.len() < MAX_PER_NAME {
                self.current.push(*a);
                change.joined.push(*a);
            }
        }
        let mut due: Vec<(Instant, SocketAddr)> = Vec::new();
        for a in self.current.iter().filter(|a| !answer.contains(a)) {
            let m = self.missing.entry(*a).or_insert(Missing {
                answers: 0,
                since: now,
            });
            m.answers += 1;
            if m.answers >= LEAVE_AFTER_LOOKUPS && now.duration_since(m.since) >= LEAVE_AFTER {
                due.push((m.since, *a));
            } else {
                change.kept.push(*a);
            }
        }
        // The longest missing go first; the rest wait for a later answer.
        due.sort_unstable();
        let most = self.current.len() / 2;
        for (i, (_, a)) in due.into_iter().enumerate() {
            if i < most {
                self.current.retain(|c| *c != a);
                self.missing.remove(&a);
                change.left.push(a);
            } else {
                change.kept.push(a);
            }
        }
        self.current.sort_unstable();
        change.kept.sort_unstable();
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 9876))
    }

    #[tokio::test(start_paused = true)]
    async fn joins_at_once_and_leaves_after_three_answers_and_thirty_seconds() {
        let mut m = Members::default();
        let c = m.answer(&[a(2), a(3)], Instant::now());
        assert_eq!(c.joined, vec![a(2), a(3)]);
        // Records change: 3 is replaced by 4; 4 joins at once, 3 stays.
        let c = m.answer(&[a(2), a(4)], Instant::now());
        assert_eq!((c.joined, c.left, c.kept), (vec![a(4)], vec![], vec![a(3)]));
        // Three answers but within 30 s: still kept.
        for _ in 0..2 {
            tokio::time::advance(Duration::from_secs(10)).await;
            let c = m.answer(&[a(2), a(4)], Instant::now());
            assert!(c.left.is_empty());
        }
        assert_eq!(m.current(), [a(2), a(3), a(4)]);
        tokio::time::advance(Duration::from_secs(10)).await;
        let c = m.answer(&[a(2), a(4)], Instant::now());
        assert_eq!(c.left, vec![a(3)]);
        assert_eq!(m.current(), [a(2), a(4)]);
    }

    #[tokio::test(start_paused = true)]
    async fn thirty_seconds_are_not_enough_without_three_answers() {
        let mut m = Members::default();
        m.answer(&[a(2), a(3)], Instant::now());
        m.answer(&[a(2)], Instant::now());
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(m.answer(&[a(2)], Instant::now()).left.is_empty());
        assert_eq!(m.answer(&[a(2)], Instant::now()).left, vec![a(3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn one_answer_missing_an_address_keeps_it_and_its_count_starts_again() {
        let mut m = Members::default();
        m.answer(&[a(2), a(3)], Instant::now());
        m.answer(&[a(2)], Instant::now());
        m.answer(&[a(2)], Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        // Back before its third miss: the count starts again.
        m.answer(&[a(2), a(3)], Instant::now());
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..2 {
            assert!(m.answer(&[a(2)], Instant::now()).left.is_empty());
        }
        assert_eq!(m.current(), [a(2), a(3)]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_takes_more_than_half_away() {
        let mut m = Members::default();
        m.answer(&[a(2), a(3), a(4), a(5)], Instant::now());
        for _ in 0..2 {
            m.answer(&[a(9)], Instant::now());
            tokio::time::advance(Duration::from_secs(15)).await;
        }
        // Five now (9 joined); four are due at the third answer, two may go.
        let c = m.answer(&[a(9)], Instant::now());
        assert_eq!(c.left.len(), 2);
        assert_eq!(m.current().len(), 3);
        let c = m.answer(&[a(9)], Instant::now());
        assert_eq!(c.left.len(), 1);
        let c = m.answer(&[a(9)], Instant::now());
        assert_eq!(c.left.len(), 1);
        assert_eq!(m.current(), [a(9)]);
    }

    #[test]
    fn joins_stop_at_the_cap() {
        let mut m = Members::default();
        let first: Vec<SocketAddr> = (0..MAX_PER_NAME as u16)
            .map(|i| SocketAddr::from(([10, 0, 0, 1], 1000 + i)))
            .collect();
        m.answer(&first, Instant::now());
        let c = m.answer(&[a(2)], Instant::now());
        assert!(c.joined.is_empty());
        assert_eq!(m.current().len(), MAX_PER_NAME);
    }
}
