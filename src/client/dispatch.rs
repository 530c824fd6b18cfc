//! Server-initiated requests, the RPC hook and channel events.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::connection::ConnHandle;
use super::Inner;
use crate::poison::lock;
use crate::protocol::code::response;
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

impl Inner {
    /// Routes a request from the server to its processor, or answers it with an error code.
    pub(crate) fn request_received(
        self: &Arc<Self>,
        conn: &Arc<ConnHandle>,
        request: RemotingCommand,
    ) {
        let entry = {
            let table = lock(&self.processors);
            table
                .by_code
                .get(&request.code)
                .cloned()
                .or_else(|| table.default.clone())
        };
        let Some(entry) = entry else {
            let remark = format!(" request type {} not supported", request.code);
            reply(
                self,
                conn,
                &request,
                response::REQUEST_CODE_NOT_SUPPORTED,
                remark,
            );
            return;
        };
        let Ok(permit) = entry.pool.clone().try_acquire_owned() else {
            let remark = "[OVERLOAD]system busy, too many requests, try another server".to_string();
            reply(self, conn, &request, response::SYSTEM_BUSY, remark);
            return;
        };
        let hook = self.hook();
        let conn = conn.clone();
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut request = request;
            if let Some(h) = &hook {
                h.before_request(&conn.addr, &mut request);
            }
            let out = entry.processor.process(&conn.addr, request.clone()).await;
            if let Some(h) = &hook {
                h.after_response(&conn.addr, &request, out.as_ref());
            }
            drop(permit);
            if let (false, Some(mut resp)) = (request.is_oneway(), out) {
                resp.opaque = request.opaque;
                resp.mark_response();
                if let Some(inner) = inner.upgrade() {
                    write_reply(&inner, &conn, &resp);
                }
            }
        });
    }

    /// Queues an event for the listener; drops and counts it when the queue is full.
    pub(crate) fn emit(&self, kind: ChannelEventKind, remote: &str) {
        let Some(tx) = &self.events else { return };
        let event = ChannelEvent {
            kind,
            remote: remote.to_string(),
        };
        if tx.try_send(event).is_err() {
            self.stats.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn reply(inner: &Inner, conn: &ConnHandle, request: &RemotingCommand, code: i32, remark: String) {
    if request.is_oneway() {
        return;
    }
    let resp = RemotingCommand::response_to(request, code, Some(remark));
    write_reply(inner, conn, &resp);
}

fn write_reply(inner: &Inner, conn: &ConnHandle, resp: &RemotingCommand) {
    match inner.frame(resp) {
        // A full queue drops the reply (counted): server requests never grow memory.
        Ok((head, body)) => {
            if conn.send_detached(head, body).is_err() {
                inner.stats.replies_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(e) => tracing::warn!(addr = %conn.addr, error = %e, "cannot encode reply"),
    }
}

/// Processor registrations.
#[derive(Default)]
pub(crate) struct ProcessorTable {
    pub by_code: std::collections::HashMap<i32, ProcessorEntry>,
    pub default: Option<ProcessorEntry>,
}
