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
mod settings;
mod stats;
mod writer;

pub use config::{ClientConfig, ClientTls, EVENT_QUEUE_CAPACITY};
pub use error::{ClientError, TlsFailure};
pub use hooks::{
    ChannelEvent, ChannelEventKind, ChannelEventListener, ProcessFuture, RequestProcessor, RpcHook,
};
pub use remoting::RemotingClient;
pub use stats::{ClientStats, PeerInfo};
