//! The remoting client's handle: its life (sweeper, shutdown), what can be plugged in, what it
//! knows about its connections, and the NameServer list. Sending is in `send.rs`.

use std::sync::Arc;

use tokio::sync::mpsc;
#[cfg(any(test, feature = "test-util"))]
use tokio::sync::Semaphore;

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

    /// The names the addresses in `names` were looked up from: their certificates are checked
    /// against them (unless `tls.server_name` names another). Replaces the last call's.
    pub fn set_tls_names(&self, names: std::collections::BTreeMap<String, String>) {
        *write(&self.inner.tls_names) = names;
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
