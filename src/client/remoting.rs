//! The remoting client's handle: its life (sweeper, shutdown), what can be plugged in, what it
//! knows about its connections, and the NameServer list. Sending is in `send.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
#[cfg(any(test, feature = "test-util"))]
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::config::{ClientConfig, ClientTls};
use super::connection::Slot;
use super::error::ClientError;
use super::hooks::{ChannelEvent, ChannelEventListener, RpcHook};
#[cfg(any(test, feature = "test-util"))]
use super::hooks::{ProcessorEntry, RequestProcessor};
use super::inner::Inner;
use super::stats::{ClientStats, PeerInfo};
use crate::poison::{lock, read, write};

/// The remoting client. Cheap to clone; all clones share connections and the response table.
#[derive(Clone)]
pub struct RemotingClient {
    pub(super) inner: Arc<Inner>,
}

impl RemotingClient {
    /// A client with `config`; events go to `listener` when one is given.
    pub fn new(config: ClientConfig, listener: Option<Arc<dyn ChannelEventListener>>) -> Self {
        let events = listener.map(|l| {
            let (tx, mut rx) = mpsc::channel::<ChannelEvent>(config.event_queue.max(1));
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    l.on_event(ev);
                }
            });
            tx
        });
        RemotingClient {
            inner: Arc::new(Inner::new(config, events)),
        }
    }

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

    /// Stops the sweeper, closes every connection and fails in-flight requests at once.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let conns: Vec<Slot> = lock(&self.inner.conns).drain().map(|(_, s)| s).collect();
        for slot in conns {
            if let Slot::Connected(c) = slot {
                c.close();
            }
        }
        for p in lock(&self.inner.pending).take_all() {
            p.finish(Err(ClientError::Shutdown));
        }
    }

    /// Replaces the TLS settings; connections opened from now on use them.
    pub fn set_tls(&self, tls: Option<ClientTls>) {
        *write(&self.inner.tls) = tls;
    }

    /// Installs the RPC hook.
    pub fn register_rpc_hook(&self, hook: Arc<dyn RpcHook>) {
        let mut h = write(&self.inner.hook);
        *h = Some(hook);
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Routes server requests with `code` to `processor`, at most `pool` at a time.
    pub fn register_processor(&self, code: i32, processor: Arc<dyn RequestProcessor>, pool: usize) {
        let entry = ProcessorEntry {
            processor,
            pool: Arc::new(Semaphore::new(pool)),
        };
        lock(&self.inner.processors).by_code.insert(code, entry);
    }

    #[cfg(any(test, feature = "test-util"))]
    /// Handles server requests no other processor claims.
    pub fn register_default_processor(&self, processor: Arc<dyn RequestProcessor>, pool: usize) {
        let entry = ProcessorEntry {
            processor,
            pool: Arc::new(Semaphore::new(pool)),
        };
        lock(&self.inner.processors).default = Some(entry);
    }

    /// Counters about this client.
    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// Language and version from the last reply `addr` sent, if any.
    pub fn peer_info(&self, addr: &str) -> Option<PeerInfo> {
        lock(&self.inner.peers).get(addr).copied()
    }

    /// Requests waiting for a reply.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.pending).len()
    }

    /// Addresses with a live connection.
    pub fn connected_addrs(&self) -> Vec<String> {
        let conns = lock(&self.inner.conns);
        let mut v: Vec<String> = conns
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Connected(c) if c.is_ok()))
            .map(|(a, _)| a.clone())
            .collect();
        v.sort();
        v
    }

    #[cfg(any(test, feature = "test-util"))]
    /// True when a live connection to `addr` exists.
    pub fn is_connected(&self, addr: &str) -> bool {
        self.inner.live(addr).is_some()
    }

    /// Forgets `addr` entirely: its connection and what it said about itself.
    pub fn forget(&self, addr: &str) {
        self.close_connection(addr);
        lock(&self.inner.peers).remove(addr);
    }

    /// Closes the connection to `addr`, failing its waiters; a connect attempt in progress
    /// is forgotten, so that the next caller starts a fresh one.
    pub fn close_connection(&self, addr: &str) {
        let slot = lock(&self.inner.conns).remove(addr);
        if let Some(Slot::Connected(c)) = slot {
            c.close();
        }
    }

    /// Replaces the NameServer list when its membership changed (then shuffled); true if it did.
    pub fn update_name_server_list(&self, addrs: Vec<String>) -> bool {
        write(&self.inner.namesrv).update(addrs)
    }

    /// The current NameServer list.
    pub fn name_server_list(&self) -> Vec<String> {
        read(&self.inner.namesrv).list().to_vec()
    }

    #[cfg(any(test, feature = "test-util"))]
    /// The NameServer currently chosen for calls without an address.
    pub fn chosen_name_server(&self) -> Option<String> {
        read(&self.inner.namesrv).chosen().map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::super::pending::Pending;
    use super::*;

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
            tx,
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
