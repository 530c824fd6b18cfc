//! The response table: requests waiting for a reply, keyed by opaque.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::error::ClientError;
use crate::poison::lock;
use crate::protocol::RemotingCommand;

/// What a waiter eventually receives.
pub(crate) type Outcome = Result<RemotingCommand, ClientError>;

/// Where a reply goes: a channel made for the one request, or a caller's reusable slot.
pub(crate) enum ReplyTo {
    Once(oneshot::Sender<Outcome>),
    Slot(Arc<Slot>),
}

/// A caller's reusable place for the outcome of its one request in flight: a request that
/// goes out again and again (the heartbeat) needs no new channel each time.
#[derive(Default)]
pub(crate) struct Slot {
    done: Mutex<Awaited>,
    ready: Notify,
}

/// The request a slot waits for, and its outcome once delivered. An earlier request's late
/// outcome (a sweeper that took it out of the table just before the caller gave up) carries
/// another opaque and is dropped, so it can never take the current one's place.
#[derive(Default)]
struct Awaited {
    opaque: Option<i32>,
    outcome: Option<Outcome>,
}

impl Slot {
    /// From now on only request `opaque`'s outcome is kept; set before the request is sent.
    pub(crate) fn expect(&self, opaque: i32) {
        *lock(&self.done) = Awaited {
            opaque: Some(opaque),
            outcome: None,
        };
    }

    fn put(&self, opaque: i32, outcome: Outcome) {
        {
            let mut done = lock(&self.done);
            if done.opaque != Some(opaque) {
                return;
            }
            done.outcome = Some(outcome);
        }
        // Stores a permit when nobody waits yet: the waiter then finds the outcome at once.
        self.ready.notify_one();
    }

    /// Waits until `deadline` for the outcome of request `opaque`; `None` at the deadline.
    pub(crate) async fn take(&self, opaque: i32, deadline: Instant) -> Option<Outcome> {
        loop {
            {
                let mut done = lock(&self.done);
                if done.opaque == Some(opaque) {
                    if let Some(outcome) = done.outcome.take() {
                        done.opaque = None;
                        return Some(outcome);
                    }
                }
            }
            if tokio::time::timeout_at(deadline, self.ready.notified())
                .await
                .is_err()
            {
                return None;
            }
        }
    }
}

/// One request waiting for its reply.
pub(crate) struct Pending {
    /// Connection the request went out on.
    pub conn_id: u64,
    /// Peer address, for error messages (shared with the connection: no copy per request).
    pub addr: Arc<str>,
    /// When the sweeper gives up on it.
    pub deadline: Instant,
    /// The call's own timeout, for the error it gets.
    pub timeout: std::time::Duration,
    /// The request's opaque.
    pub opaque: i32,
    /// Where the outcome goes.
    pub tx: ReplyTo,
    /// Async permit; released when the entry is dropped, so exactly once.
    pub _permit: Option<OwnedSemaphorePermit>,
}

impl Pending {
    /// Delivers the outcome; the permit is released as `self` drops.
    pub fn finish(self, outcome: Outcome) {
        match self.tx {
            // The waiter may have gone away (dropped future); nothing is owed to it then.
            ReplyTo::Once(tx) => {
                let _ = tx.send(outcome);
            }
            ReplyTo::Slot(slot) => slot.put(self.opaque, outcome),
        }
    }
}

/// Requests in flight, by opaque.
#[derive(Default)]
pub(crate) struct PendingTable {
    map: HashMap<i32, Pending>,
}

impl PendingTable {
    /// Adds a waiter.
    pub fn insert(&mut self, opaque: i32, p: Pending) {
        self.map.insert(opaque, p);
    }

    /// Removes a waiter, if still there.
    pub fn remove(&mut self, opaque: i32) -> Option<Pending> {
        self.map.remove(&opaque)
    }

    /// Removes the waiter for `opaque` only if its request went out on connection `conn_id`:
    /// a reply on another connection never completes it.
    pub fn remove_on(&mut self, opaque: i32, conn_id: u64) -> Option<Pending> {
        match self.map.get(&opaque) {
            Some(p) if p.conn_id == conn_id => self.map.remove(&opaque),
            _ => None,
        }
    }

    /// Number of waiters.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Removes every waiter whose deadline has passed at `now`.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Pending> {
        self.take_where(|p| p.deadline <= now)
    }

    /// Removes every waiter on connection `conn_id`.
    pub fn take_conn(&mut self, conn_id: u64) -> Vec<Pending> {
        self.take_where(|p| p.conn_id == conn_id)
    }

    /// Removes every waiter.
    pub fn take_all(&mut self) -> Vec<Pending> {
        self.map.drain().map(|(_, p)| p).collect()
    }

    fn take_where(&mut self, pred: impl Fn(&Pending) -> bool) -> Vec<Pending> {
        let keys: Vec<i32> = self
            .map
            .iter()
            .filter(|(_, p)| pred(p))
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| self.map.remove(&k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn a_late_outcome_of_an_earlier_request_never_replaces_the_awaited_one() {
        let slot = super::Slot::default();
        let soon = Instant::now() + Duration::from_secs(1);
        slot.expect(2);
        slot.put(2, Err(ClientError::Shutdown));
        // Request 1's outcome, delivered by a sweeper that stalled: dropped.
        slot.put(1, Err(ClientError::TooManyRequests));
        assert!(matches!(slot.take(2, soon).await, Some(Err(ClientError::Shutdown))));
        // Once taken, nothing more is kept for it.
        slot.put(2, Err(ClientError::Shutdown));
        assert!(slot.take(2, soon).await.is_none());
    }

    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;

    fn entry(
        conn_id: u64,
        deadline: Instant,
        sem: &Arc<Semaphore>,
    ) -> (Pending, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let permit = sem.clone().try_acquire_owned().ok();
        (
            Pending {
                conn_id,
                addr: "a:1".into(),
                deadline,
                timeout: Duration::from_secs(1),
                opaque: 0,
                tx: ReplyTo::Once(tx),
                _permit: permit,
            },
            rx,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_takes_only_expired_and_releases_permits() {
        let sem = Arc::new(Semaphore::new(2));
        let now = Instant::now();
        let mut t = PendingTable::default();
        let (a, _ra) = entry(1, now + Duration::from_secs(1), &sem);
        let (b, _rb) = entry(1, now + Duration::from_secs(5), &sem);
        t.insert(1, a);
        t.insert(2, b);
        assert_eq!(sem.available_permits(), 0);
        let expired = t.take_expired(now + Duration::from_secs(2));
        assert_eq!(expired.len(), 1);
        drop(expired);
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(t.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn take_conn_fails_only_that_connection() {
        let sem = Arc::new(Semaphore::new(10));
        let now = Instant::now();
        let mut t = PendingTable::default();
        let (a, ra) = entry(1, now, &sem);
        let (b, _rb) = entry(2, now, &sem);
        t.insert(1, a);
        t.insert(2, b);
        for p in t.take_conn(1) {
            p.finish(Err(ClientError::ConnectionClosed { addr: "a:1".into() }));
        }
        assert!(matches!(
            ra.await,
            Ok(Err(ClientError::ConnectionClosed { .. }))
        ));
        assert_eq!(t.len(), 1);
        assert!(t.remove(2).is_some());
        assert_eq!(t.len(), 0);
    }
}
