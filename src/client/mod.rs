//! Async RocketMQ remoting client: one connection per address, matched by opaque.

mod activity;
mod config;
mod connection;
mod dispatch;
mod error;
mod hooks;
mod inner;
mod namesrvs;
mod pending;
mod pool;
mod reader;
mod remoting;
mod send;
mod stats;
mod sweeper;
mod writer;

pub use config::{ClientConfig, ClientTls};
pub use error::ClientError;
pub use hooks::{ChannelEvent, ChannelEventKind, ChannelEventListener, RpcHook};
pub use remoting::RemotingClient;
pub use send::Waiter;
pub use stats::PeerInfo;

// What tests and benchmarks name from outside.
#[cfg(any(test, feature = "test-util"))]
pub use {
    config::EVENT_QUEUE_CAPACITY,
    error::TlsFailure,
    hooks::{ProcessFuture, RequestProcessor},
    stats::ClientStats,
};
