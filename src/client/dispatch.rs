//! What a connection's reader hands the client: replies to their waiters, server requests to
//! their processors (under the RPC hook), the connection's end to its waiters, and channel
//! events to the listener.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::connection::{ConnHandle, Slot};
use super::error::ClientError;
use super::hooks::{ChannelEvent, ChannelEventKind};
use super::inner::Inner;
use super::reader::Routes;
use super::stats::PeerInfo;
use crate::poison::lock;
use crate::protocol::code::response;
use crate::protocol::RemotingCommand;

impl Routes for Inner {
    /// Hands a reply to the request it answers, if that request went out on `conn`; false
    /// (and counted) otherwise: a peer can never complete another peer's request.
    fn response(&self, conn: &ConnHandle, resp: RemotingCommand) -> bool {
        let addr = &*conn.addr;
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

    /// Routes a request from the server to its processor, or answers it with an error code.
    fn request(self: Arc<Self>, conn: &Arc<ConnHandle>, request: RemotingCommand) {
        let entry = lock(&self.processors).get(request.code);
        let Some(entry) = entry else {
            let remark = format!(" request type {} not supported", request.code);
            reply(
                &self,
                conn,
                &request,
                response::REQUEST_CODE_NOT_SUPPORTED,
                remark,
            );
            return;
        };
        let Ok(permit) = entry.pool.clone().try_acquire_owned() else {
            let remark = "[OVERLOAD]system busy, too many requests, try another server".to_string();
            reply(&self, conn, &request, response::SYSTEM_BUSY, remark);
            return;
        };
        let hook = self.hook();
        let conn = conn.clone();
        let inner = Arc::downgrade(&self);
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

    /// Forgets a dead connection and fails everyone waiting on it. `silent_plain`: a plain
    /// connection closed before the peer sent anything, which a TLS-only server does.
    fn closed(&self, conn: &ConnHandle, silent_plain: bool) {
        {
            let mut conns = lock(&self.conns);
            if matches!(conns.get(&*conn.addr), Some(Slot::Connected(c)) if c.id == conn.id) {
                conns.remove(&*conn.addr);
            }
        }
        let failed = lock(&self.pending).take_conn(conn.id);
        for p in failed {
            let addr = conn.addr.to_string();
            p.finish(Err(if silent_plain {
                ClientError::ClosedBeforeReply { addr }
            } else {
                ClientError::ConnectionClosed { addr }
            }));
        }
    }

    fn event(&self, kind: ChannelEventKind, addr: &str) {
        self.emit(kind, addr);
    }
}

impl Inner {
    /// Queues an event for the listener; drops and counts it when the queue is full.
    pub(super) fn emit(&self, kind: ChannelEventKind, remote: &str) {
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
