//! What a user plugs into the client: processors for server-initiated requests, the RPC hook
//! and the channel-event listener.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::protocol::RemotingCommand;

/// Boxed future returned by a [`RequestProcessor`].
pub type ProcessFuture = Pin<Box<dyn Future<Output = Option<RemotingCommand>> + Send>>;

/// Handles requests a server sends to this client; `None` means no reply.
pub trait RequestProcessor: Send + Sync + 'static {
    /// Processes one request from `remote`.
    fn process(&self, remote: &str, request: RemotingCommand) -> ProcessFuture;
}

/// Called around every outgoing call and every handled incoming request.
pub trait RpcHook: Send + Sync + 'static {
    /// Before the request is written (outgoing) or processed (incoming); may add fields.
    fn before_request(&self, remote: &str, request: &mut RemotingCommand);
    /// After the response arrived (outgoing) or was produced (incoming).
    fn after_response(
        &self,
        remote: &str,
        request: &RemotingCommand,
        response: Option<&RemotingCommand>,
    );
}

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelEventKind {
    /// Connected.
    Connect,
    /// Closed, by either side.
    Close,
    /// Closed for being idle.
    Idle,
    /// Closed after an error (bad frame, socket error).
    Exception,
}

/// A connection event, delivered to the [`ChannelEventListener`] on its own task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEvent {
    /// What happened.
    pub kind: ChannelEventKind,
    /// Peer address as configured (`host:port`).
    pub remote: String,
}

/// Receives channel events; runs on a task of its own, never on the I/O tasks.
pub trait ChannelEventListener: Send + Sync + 'static {
    /// One event.
    fn on_event(&self, event: ChannelEvent);
}

/// A processor and the pool bound that stands in for Java's executor.
#[derive(Clone)]
pub(crate) struct ProcessorEntry {
    pub processor: Arc<dyn RequestProcessor>,
    pub pool: Arc<Semaphore>,
}

/// Processor registrations.
#[derive(Default)]
pub(crate) struct ProcessorTable {
    pub by_code: HashMap<i32, ProcessorEntry>,
    pub default: Option<ProcessorEntry>,
}

impl ProcessorTable {
    /// The processor for `code`, else the default one.
    pub(crate) fn get(&self, code: i32) -> Option<ProcessorEntry> {
        self.by_code
            .get(&code)
            .cloned()
            .or_else(|| self.default.clone())
    }
}
