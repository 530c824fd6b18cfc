//! Sending: one path for every request (connection, RPC hook, frame, waiter, write), and the
//! three ways to wait for it (sync, async under a permit, oneway under a permit).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::error::ClientError;
use super::hooks::RpcHook;
use super::inner::Inner;
use super::pending::{Outcome, Pending, ReplyTo, Slot};
use super::remoting::RemotingClient;
use crate::poison::lock;
use crate::protocol::command::next_opaque;
use crate::protocol::{Prepared, RemotingCommand};

/// Where a tracked request's reply goes, and the async permit it holds until then.
struct Reply {
    to: ReplyTo,
    permit: Option<OwnedSemaphorePermit>,
}

/// A request as handed to the send path: built for this send, or encoded once and sent again
/// and again with a new opaque.
enum Request<'a> {
    Command(RemotingCommand),
    Prepared(&'a Prepared),
}

/// A request on the wire.
struct Sent {
    addr: Arc<str>,
    /// Its opaque, which the reply carries.
    opaque: i32,
    /// The request as written (the hook may have added fields), for the hook's after-call;
    /// only kept when there is a hook.
    request: Option<RemotingCommand>,
    hook: Option<Arc<dyn RpcHook>>,
    /// Keeps the waiter in the response table while the caller waits (tracked requests).
    waiting: Option<PendingGuard>,
}

/// A caller's reusable reply slot for requests it sends one at a time (the heartbeat): such a
/// request costs no allocation beyond its frame's head. `&mut` keeps it to one in flight.
#[derive(Default)]
pub struct Waiter(Arc<Slot>);

impl Waiter {
    /// A new, empty slot.
    pub fn new() -> Self {
        Waiter::default()
    }
}

impl RemotingClient {
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

    #[cfg(any(test, feature = "test-util"))]
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

    #[cfg(any(test, feature = "test-util"))]
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
        self.send(addr, Request::Command(request), timeout, deadline, None)
            .await?;
        Ok(())
    }

    /// Sends `request` with a fresh opaque and waits up to `timeout` for its reply in
    /// `waiter`. Without an RPC hook the send allocates only the frame's head; with one, the
    /// hook sees (and may change) the request as a command, as for any other request.
    pub async fn invoke_prepared(
        &self,
        addr: &str,
        request: &Prepared,
        timeout: Duration,
        waiter: &mut Waiter,
    ) -> Result<RemotingCommand, ClientError> {
        let deadline = Instant::now() + timeout;
        let reply = Reply {
            to: ReplyTo::Slot(waiter.0.clone()),
            permit: None,
        };
        let sent = self
            .send(
                Some(addr),
                Request::Prepared(request),
                timeout,
                deadline,
                Some(reply),
            )
            .await?;
        let outcome = waiter.0.take(sent.opaque, deadline).await;
        finish(sent, outcome, timeout)
    }

    /// Registers a waiter, writes the request and returns the future of its reply.
    async fn send_tracked(
        &self,
        addr: Option<&str>,
        request: RemotingCommand,
        timeout: Duration,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<
        impl Future<Output = Result<RemotingCommand, ClientError>> + Send + 'static,
        ClientError,
    > {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = oneshot::channel();
        let reply = Reply {
            to: ReplyTo::Once(tx),
            permit,
        };
        let sent = self
            .send(addr, Request::Command(request), timeout, deadline, Some(reply))
            .await?;
        Ok(async move {
            let outcome = match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(outcome)) => Some(outcome),
                Ok(Err(_)) => Some(Err(ClientError::ConnectionClosed {
                    addr: sent.addr.to_string(),
                })),
                Err(_) => None,
            };
            finish(sent, outcome, timeout)
        })
    }

    /// The one send path: the connection (given up at `deadline`), the RPC hook, the frame
    /// (refused before a byte is written when over the frame limit), the waiter when a reply
    /// is expected, and the write, done by `deadline`.
    async fn send(
        &self,
        addr: Option<&str>,
        request: Request<'_>,
        timeout: Duration,
        deadline: Instant,
        reply: Option<Reply>,
    ) -> Result<Sent, ClientError> {
        let conn = self.inner.connection_by(addr, deadline, timeout).await?;
        let hook = self.inner.hook();
        let (frame, opaque, request) = match (request, &hook) {
            (Request::Prepared(p), None) => {
                let opaque = next_opaque();
                let frame = p
                    .frame(opaque, self.inner.config.max_frame)
                    .map_err(|e| ClientError::Encode(Arc::new(e)))?;
                (frame, opaque, None)
            }
            (request, hook) => {
                let mut request = match request {
                    Request::Command(c) => c,
                    Request::Prepared(p) => p.command(next_opaque()),
                };
                if let Some(h) = hook {
                    h.before_request(&conn.addr, &mut request);
                }
                let frame = self.inner.frame(&request)?;
                let opaque = request.opaque;
                (frame, opaque, hook.is_some().then_some(request))
            }
        };
        let waiting = reply.map(|Reply { to, permit }| {
            if let ReplyTo::Slot(slot) = &to {
                slot.expect(opaque);
            }
            let entry = Pending {
                conn_id: conn.id,
                addr: conn.addr.clone(),
                deadline,
                timeout,
                opaque,
                tx: to,
                _permit: permit,
            };
            lock(&self.inner.pending).insert(opaque, entry);
            PendingGuard {
                inner: Some(self.inner.clone()),
                opaque,
            }
        });
        self.inner.write(&conn, frame, timeout, deadline).await?;
        Ok(Sent {
            addr: conn.addr.clone(),
            opaque,
            request,
            hook,
            waiting,
        })
    }
}

/// A tracked request's end: its outcome (`None`: the deadline came first), the waiter's
/// table entry settled, and the hook's after-call on a reply.
fn finish(sent: Sent, outcome: Option<Outcome>, timeout: Duration) -> Outcome {
    let Sent {
        addr,
        request,
        hook,
        waiting,
        ..
    } = sent;
    let outcome = match outcome {
        Some(outcome) => {
            // Whoever sent the outcome took the entry out of the table already.
            if let Some(w) = waiting {
                w.disarm();
            }
            outcome
        }
        None => Err(ClientError::Timeout {
            addr: addr.to_string(),
            timeout,
        }),
    };
    if let (Some(h), Some(request), Ok(resp)) = (&hook, &request, &outcome) {
        h.after_response(&addr, request, Some(resp));
    }
    outcome
}

/// Removes a waiter from the table when its caller stops waiting, whatever the reason.
struct PendingGuard {
    /// None once the entry is known to be gone.
    inner: Option<Arc<Inner>>,
    opaque: i32,
}

impl PendingGuard {
    /// The entry left the table with its outcome: nothing to remove.
    fn disarm(mut self) {
        self.inner = None;
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner {
            lock(&inner.pending).remove(self.opaque);
        }
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
