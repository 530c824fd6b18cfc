//! Async RocketMQ remoting client: one connection per address, matched by opaque.

mod connection;
mod dispatch;
mod error;
mod pending;
mod pool;
mod settings;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::future::{BoxFuture, Shared};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use connection::ConnHandle;
pub use dispatch::{
    ChannelEvent, ChannelEventKind, ChannelEventListener, ProcessFuture, RequestProcessor, RpcHook,
};
use dispatch::{ProcessorEntry, ProcessorTable};
pub use error::ClientError;
use pending::{Pending, PendingTable};

use crate::poison::{lock, read, write};
use crate::protocol::{FrameCodec, LanguageCode, RemotingCommand, DEFAULT_MAX_FRAME};

/// Capacity of the channel-event queue (as Java's NettyEventExecuter).
pub const EVENT_QUEUE_CAPACITY: usize = 10_000;

/// TLS for the client's connections.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The rustls configuration (trust, client certificate).
    pub config: Arc<rustls::ClientConfig>,
    /// Name to verify instead of each address's host.
    pub server_name: Option<String>,
    /// TLS for every address but the exceptions (true), or for the exceptions only (false).
    pub default_on: bool,
    /// Addresses that go the other way (the local broker, plain while NameServers use TLS).
    pub exceptions: Vec<String>,
}

impl ClientTls {
    /// True when connections to `addr` use TLS.
    pub fn applies(&self, addr: &str) -> bool {
        self.default_on != self.exceptions.iter().any(|a| a == addr)
    }
}

/// Client settings; the defaults are Java 5.x's.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Close a connection with no read or write for this long.
    pub idle_timeout: Duration,
    /// Concurrent async requests.
    pub async_permits: usize,
    /// Concurrent oneway requests being written.
    pub oneway_permits: usize,
    /// Largest frame accepted from (or sent to) a NameServer, length prefix included.
    pub max_frame: usize,
    /// Largest frame accepted from any other peer (a broker's or master's topic table).
    pub max_reply_frame: usize,
    /// Channel events queued for the listener before new ones are dropped (and counted).
    pub event_queue: usize,
    /// TLS, when on.
    pub tls: Option<ClientTls>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(120),
            async_permits: 65_535,
            oneway_permits: 65_535,
            max_frame: DEFAULT_MAX_FRAME,
            max_reply_frame: DEFAULT_MAX_FRAME,
            event_queue: EVENT_QUEUE_CAPACITY,
            tls: None,
        }
    }
}

/// Counters the client keeps about itself.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Channel events dropped because the listener's queue was full.
    pub events_dropped: AtomicU64,
    /// Replies that matched no request sent on their connection (late, unsolicited, forged).
    pub unknown_replies: AtomicU64,
    /// Sends refused because the connection's queue was full.
    pub busy: AtomicU64,
    /// Replies to server requests dropped because the connection's queue was full.
    pub replies_dropped: AtomicU64,
    /// Requests failed by the response-table sweeper.
    pub swept_timeouts: AtomicU64,
    /// TCP connections opened.
    pub connects: AtomicU64,
}

type ConnectResult = Result<Arc<ConnHandle>, ClientError>;

enum Slot {
    Connected(Arc<ConnHandle>),
    Connecting {
        id: u64,
        attempt: Shared<BoxFuture<'static, ConnectResult>>,
    },
}

#[derive(Default)]
struct NameServers {
    list: Vec<String>,
    chosen: Option<String>,
}

pub(crate) struct Inner {
    config: ClientConfig,
    conns: Mutex<HashMap<String, Slot>>,
    pending: Mutex<PendingTable>,
    async_permits: Arc<Semaphore>,
    oneway_permits: Arc<Semaphore>,
    namesrv: RwLock<NameServers>,
    namesrv_index: AtomicUsize,
    hook: RwLock<Option<Arc<dyn RpcHook>>>,
    processors: Mutex<ProcessorTable>,
    events: Option<mpsc::Sender<ChannelEvent>>,
    stats: ClientStats,
    peers: Mutex<HashMap<String, PeerInfo>>,
    shutdown: CancellationToken,
    next_conn_id: AtomicU64,
    /// Replaced on SIGHUP (certificate rotation); read at each new connection.
    tls: RwLock<Option<ClientTls>>,
}

/// What a peer said about itself in its last reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's language (JAVA, RUST …).
    pub language: LanguageCode,
    /// The peer's `MQVersion` ordinal.
    pub version: i32,
}

/// The remoting client. Cheap to clone; all clones share connections and the response table.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<Inner>,
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
        let tls = RwLock::new(config.tls.clone());
        let inner = Inner {
            tls,
            async_permits: Arc::new(Semaphore::new(config.async_permits)),
            oneway_permits: Arc::new(Semaphore::new(config.oneway_permits)),
            config,
            conns: Mutex::default(),
            pending: Mutex::default(),
            namesrv: RwLock::default(),
            namesrv_index: AtomicUsize::new(fastrand::usize(0..999)),
            hook: RwLock::new(None),
            processors: Mutex::default(),
            events,
            stats: ClientStats::default(),
            peers: Mutex::default(),
            shutdown: CancellationToken::new(),
            next_conn_id: AtomicU64::new(1),
        };
        RemotingClient {
            inner: Arc::new(inner),
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
                addr: p.addr.clone(),
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

    /// Routes server requests with `code` to `processor`, at most `pool` at a time.
    pub fn register_processor(&self, code: i32, processor: Arc<dyn RequestProcessor>, pool: usize) {
        let entry = ProcessorEntry {
            processor,
            pool: Arc::new(Semaphore::new(pool)),
        };
        lock(&self.inner.processors).by_code.insert(code, entry);
    }

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
        let mut seen = HashSet::new();
        let addrs: Vec<String> = addrs
            .into_iter()
            .filter(|a| seen.insert(a.clone()))
            .collect();
        if addrs.is_empty() {
            return false;
        }
        let mut ns = write(&self.inner.namesrv);
        let old: HashSet<&String> = ns.list.iter().collect();
        let new: HashSet<&String> = addrs.iter().collect();
        if old == new {
            return false;
        }
        let mut addrs = addrs;
        fastrand::shuffle(&mut addrs);
        if ns.chosen.as_ref().is_some_and(|c| !addrs.contains(c)) {
            ns.chosen = None;
        }
        ns.list = addrs;
        true
    }

    /// The current NameServer list.
    pub fn name_server_list(&self) -> Vec<String> {
        read(&self.inner.namesrv).list.clone()
    }

    /// The NameServer currently chosen for calls without an address.
    pub fn chosen_name_server(&self) -> Option<String> {
        read(&self.inner.namesrv).chosen.clone()
    }

    /// Sends `request` and waits up to `timeout` for its reply (`addr` None: a NameServer).
    pub async fn invoke_sync(
        &self,
        addr: Option<&str>,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, ClientError> {
        let fut = self.send_tracked(addr, request, timeout, None).await?;
        fut.await
    }

    /// Sends `request` under an async permit; the returned future resolves with the reply,
    /// a timeout (from the sweeper) or the connection's death.
    pub async fn invoke_async(
        &self,
        addr: Option<&str>,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<
        impl Future<Output = Result<RemotingCommand, ClientError>> + Send + 'static,
        ClientError,
    > {
        let permit = acquire(&self.inner.async_permits, timeout).await?;
        self.send_tracked(addr, request, timeout, Some(permit))
            .await
    }

    /// As [`invoke_async`](Self::invoke_async), delivering the outcome to `callback` on its own task.
    pub async fn invoke_async_callback<F>(
        &self,
        addr: Option<&str>,
        request: RemotingCommand,
        timeout: Duration,
        callback: F,
    ) -> Result<(), ClientError>
    where
        F: FnOnce(Result<RemotingCommand, ClientError>) + Send + 'static,
    {
        let fut = self.invoke_async(addr, request, timeout).await?;
        tokio::spawn(async move { callback(fut.await) });
        Ok(())
    }

    /// Writes `request` marked oneway under a oneway permit; no reply is awaited.
    pub async fn invoke_oneway(
        &self,
        addr: Option<&str>,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        request.mark_oneway();
        let deadline = Instant::now() + timeout.max(Duration::from_millis(1));
        let _permit = acquire(&self.inner.oneway_permits, timeout).await?;
        let conn = self.inner.connection_by(addr, deadline, timeout).await?;
        let hook = self.inner.hook();
        if let Some(h) = &hook {
            h.before_request(&conn.addr, &mut request);
        }
        let (head, body) = self.inner.frame(&request)?;
        let written = self
            .inner
            .queue(&conn, head, body, timeout, deadline)
            .await?;
        match tokio::time::timeout_at(deadline, written).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(source))) => Err(self.inner.send_failed(&conn, Some(source))),
            Ok(Err(_)) => Err(self.inner.send_failed(&conn, None)),
            Err(_) => Err(ClientError::Timeout {
                addr: conn.addr.clone(),
                timeout,
            }),
        }
    }

    /// Registers a waiter, writes the request and returns the future of its reply.
    async fn send_tracked(
        &self,
        addr: Option<&str>,
        mut request: RemotingCommand,
        timeout: Duration,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<
        impl Future<Output = Result<RemotingCommand, ClientError>> + Send + 'static,
        ClientError,
    > {
        let deadline = Instant::now() + timeout;
        let conn = self.inner.connection_by(addr, deadline, timeout).await?;
        let hook = self.inner.hook();
        if let Some(h) = &hook {
            h.before_request(&conn.addr, &mut request);
        }
        // Refused before a byte is written when it would exceed the frame limit.
        let (head, body) = self.inner.frame(&request)?;
        let (tx, rx) = oneshot::channel();
        let opaque = request.opaque;
        let entry = Pending {
            conn_id: conn.id,
            addr: conn.addr.clone(),
            deadline,
            timeout,
            tx,
            _permit: permit,
        };
        lock(&self.inner.pending).insert(opaque, entry);
        let guard = PendingGuard {
            inner: self.inner.clone(),
            opaque,
        };
        let written = self
            .inner
            .queue(&conn, head, body, timeout, deadline)
            .await?;
        match tokio::time::timeout_at(deadline, written).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(source))) => return Err(self.inner.send_failed(&conn, Some(source))),
            Ok(Err(_)) => return Err(self.inner.send_failed(&conn, None)),
            Err(_) => {
                return Err(ClientError::Timeout {
                    addr: conn.addr.clone(),
                    timeout,
                })
            }
        }
        let addr = conn.addr.clone();
        Ok(async move {
            let _guard = guard;
            let outcome = match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_)) => Err(ClientError::ConnectionClosed { addr: addr.clone() }),
                Err(_) => Err(ClientError::Timeout {
                    addr: addr.clone(),
                    timeout,
                }),
            };
            if let (Some(h), Ok(resp)) = (&hook, &outcome) {
                h.after_response(&addr, &request, Some(resp));
            }
            outcome
        })
    }
}

/// Removes a waiter from the table when its caller stops waiting, whatever the reason.
struct PendingGuard {
    inner: Arc<Inner>,
    opaque: i32,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        lock(&self.inner.pending).remove(self.opaque);
    }
}

/// Takes a permit: at once when `timeout` is zero, else waiting up to `timeout`.
async fn acquire(
    sem: &Arc<Semaphore>,
    timeout: Duration,
) -> Result<OwnedSemaphorePermit, ClientError> {
    if timeout.is_zero() {
        return sem
            .clone()
            .try_acquire_owned()
            .map_err(|_| ClientError::TooManyRequests);
    }
    match tokio::time::timeout(timeout, sem.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(_)) => Err(ClientError::Shutdown),
        Err(_) => Err(ClientError::PermitTimeout(timeout)),
    }
}

impl Inner {
    fn hook(&self) -> Option<Arc<dyn RpcHook>> {
        read(&self.hook).clone()
    }

    /// The frame's head, checked against `max_frame` with the body, and the body as it is.
    pub(crate) fn frame(
        &self,
        cmd: &RemotingCommand,
    ) -> Result<(bytes::Bytes, Option<bytes::Bytes>), ClientError> {
        let body_len = cmd.body.as_ref().map_or(0, bytes::Bytes::len);
        let mut head = bytes::BytesMut::with_capacity(256);
        FrameCodec::new(self.config.max_frame)
            .encode_head(cmd, body_len, &mut head)
            .map_err(|e| ClientError::Encode(Arc::new(e)))?;
        Ok((head.freeze(), cmd.body.clone()))
    }

    /// Queues a frame on `conn`; a queue still full at `deadline` is a typed, counted `Busy`.
    async fn queue(
        &self,
        conn: &ConnHandle,
        head: bytes::Bytes,
        body: Option<bytes::Bytes>,
        stall: Duration,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Result<(), Arc<std::io::Error>>>, ClientError> {
        conn.send(head, body, stall, deadline)
            .await
            .map_err(|r| match r {
                connection::Refused::Busy => {
                    self.stats.busy.fetch_add(1, Ordering::Relaxed);
                    ClientError::Busy {
                        addr: conn.addr.clone(),
                    }
                }
                connection::Refused::Closed => self.send_failed(conn, None),
            })
    }

    /// The connection for `addr` (or a NameServer), given up at the request's deadline.
    async fn connection_by(
        self: &Arc<Self>,
        addr: Option<&str>,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Arc<ConnHandle>, ClientError> {
        match tokio::time::timeout_at(deadline, self.connection(addr)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::ConnectTimeout {
                addr: addr.unwrap_or("(a NameServer)").to_string(),
                timeout,
            }),
        }
    }

    fn send_failed(&self, conn: &ConnHandle, source: Option<Arc<std::io::Error>>) -> ClientError {
        conn.close();
        let source = source.unwrap_or_else(|| {
            Arc::new(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "connection closed",
            ))
        });
        ClientError::Send {
            addr: conn.addr.clone(),
            source,
        }
    }

    /// Hands a reply to the request it answers, if that request went out on `conn`; false
    /// (and counted) otherwise: a peer can never complete another peer's request.
    pub(crate) fn response_received(&self, resp: RemotingCommand, conn: &ConnHandle) -> bool {
        let addr = conn.addr.as_str();
        let info = PeerInfo {
            language: resp.language,
            version: resp.version,
        };
        if lock(&self.peers).get(addr) != Some(&info) {
            lock(&self.peers).insert(addr.to_string(), info);
        }
        let waiter = lock(&self.pending).remove_on(resp.opaque, conn.id);
        match waiter {
            Some(p) => {
                p.finish(Ok(resp));
                true
            }
            None => {
                self.stats.unknown_replies.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%addr, opaque = resp.opaque, code = resp.code, "reply for no request on this connection, dropped");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
