//! The 1-second sweeper of the response table: a request whose reply never comes fails with a
//! timeout at its deadline (within a second), and its permit comes back.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::error::ClientError;
use super::remoting::RemotingClient;
use crate::poison::lock;

impl RemotingClient {
    /// Spawns the 1-second response-table sweeper; it stops at [`shutdown`](Self::shutdown).
    pub fn start(&self) {
        let me = self.clone();
        tokio::spawn(async move { me.run_sweeper().await });
    }

    /// Runs the response-table sweeper until shutdown (for callers that supervise it).
    pub async fn run_sweeper(&self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = tick.tick() => { self.sweep_response_table(); }
            }
        }
    }

    /// Fails every waiter past its deadline with a timeout; returns how many.
    pub fn sweep_response_table(&self) -> usize {
        let expired = lock(&self.inner.pending).take_expired(Instant::now());
        let n = expired.len();
        for p in expired {
            let err = ClientError::Timeout {
                addr: p.addr.to_string(),
                timeout: p.timeout,
            };
            tracing::debug!(addr = %p.addr, "request expired in the response table");
            p.finish(Err(err));
        }
        self.inner
            .stats
            .swept_timeouts
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::super::pending::{Pending, ReplyTo};
    use super::*;
    use crate::client::ClientConfig;

    #[tokio::test(start_paused = true)]
    async fn sweeper_runs_every_second_and_times_out_expired_entries() {
        let c = RemotingClient::new(ClientConfig::default(), None);
        let sem = Arc::new(Semaphore::new(1));
        let (tx, rx) = oneshot::channel();
        let entry = Pending {
            conn_id: 1,
            addr: "a:1".into(),
            deadline: Instant::now() + Duration::from_millis(2500),
            timeout: Duration::from_millis(2500),
            opaque: 7,
            tx: ReplyTo::Once(tx),
            _permit: sem.clone().try_acquire_owned().ok(),
        };
        lock(&c.inner.pending).insert(7, entry);
        c.start();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(c.in_flight(), 1, "not yet due at 2.1 s");
        assert_eq!(sem.available_permits(), 0);
        // Due at 2.5 s, swept by the tick at 3 s.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(c.in_flight(), 0);
        assert_eq!(
            sem.available_permits(),
            1,
            "the permit came back with the sweep"
        );
        assert!(matches!(rx.await, Ok(Err(ClientError::Timeout { .. }))));
        c.shutdown();
    }
}
