//! The client's settings: timeouts, permits, frame limits and TLS.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::DEFAULT_MAX_FRAME;

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
