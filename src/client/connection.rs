//! A live connection's handle: writing a frame (directly, or through the bounded queue), closing
//! it, and the connection table's slot.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::error::ClientError;
use super::writer::{BoxWrite, DirectError, Outgoing, WriteSide, DETACHED_STALL, SEND_QUEUE};

/// What a connect attempt ends with.
pub(crate) type ConnectResult = Result<Arc<ConnHandle>, ClientError>;

/// One address's entry in the connection table.
pub(crate) enum Slot {
    Connected(Arc<ConnHandle>),
    Connecting {
        id: u64,
        attempt: Shared<BoxFuture<'static, ConnectResult>>,
    },
}

/// Why a frame was not written.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The connection's send queue stayed full until the deadline: the peer is not keeping up.
    Busy,
    /// The connection is closed, or its socket failed (the error, when known).
    Failed(Option<Arc<std::io::Error>>),
    /// The deadline passed before the frame was written; the connection keeps it.
    Timeout,
}

/// Cheap handle to a live connection.
pub(crate) struct ConnHandle {
    pub id: u64,
    /// The address as configured; shared with every request on it, never copied per request.
    pub addr: Arc<str>,
    tx: mpsc::Sender<Outgoing>,
    out: Arc<WriteSide>,
    closed: CancellationToken,
}

impl ConnHandle {
    /// A handle writing on `io`; the writer task must run with the returned side and queue.
    pub(crate) fn new(
        id: u64,
        addr: Arc<str>,
        io: BoxWrite,
        closed: CancellationToken,
        activity: Arc<Activity>,
    ) -> (Arc<ConnHandle>, Arc<WriteSide>, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let out = Arc::new(WriteSide::new(io, addr.clone(), closed.clone(), activity));
        let handle = Arc::new(ConnHandle {
            id,
            addr,
            tx,
            out: out.clone(),
            closed,
        });
        (handle, out, rx)
    }

    /// True while both tasks run.
    pub fn is_ok(&self) -> bool {
        !self.closed.is_cancelled()
    }

    /// Closes the connection; the reader task then fails every waiter on it.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Cancelled once the connection is closed.
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Writes a frame by `deadline`: on the socket at once when nothing is queued or being
    /// written, else through the queue, waiting for room until the deadline (then `Busy`).
    pub async fn write(
        &self,
        head: Bytes,
        body: Option<Bytes>,
        stall: Duration,
        deadline: Instant,
    ) -> Result<(), WriteError> {
        if !self.is_ok() {
            return Err(WriteError::Failed(self.out.failure()));
        }
        if let Some(sink) = self.out.try_direct() {
            return self
                .out
                .write_direct(sink, &self.tx, (head, body), stall, deadline)
                .await
                .map_err(|e| match e {
                    DirectError::Deadline => WriteError::Timeout,
                    DirectError::Failed(e) => WriteError::Failed(Some(e)),
                });
        }
        let (done, written) = oneshot::channel();
        let m = Outgoing {
            head,
            body,
            stall,
            done: Some(done),
        };
        self.enqueue(m, deadline).await?;
        match tokio::time::timeout_at(deadline, written).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(WriteError::Failed(Some(e))),
            Ok(Err(_)) => Err(WriteError::Failed(self.out.failure())),
            Err(_) => Err(WriteError::Timeout),
        }
    }

    /// Queues a frame, waiting for room until `deadline`.
    async fn enqueue(&self, m: Outgoing, deadline: Instant) -> Result<(), WriteError> {
        let counted = self.out.queued();
        let m = match self.tx.try_send(m) {
            Ok(()) => {
                counted.handed_over();
                return Ok(());
            }
            Err(mpsc::error::TrySendError::Full(m)) => m,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(WriteError::Failed(self.out.failure()))
            }
        };
        tokio::select! {
            _ = self.closed.cancelled() => Err(WriteError::Failed(self.out.failure())),
            r = tokio::time::timeout_at(deadline, self.tx.send(m)) => match r {
                Ok(Ok(())) => {
                    counted.handed_over();
                    Ok(())
                }
                Ok(Err(_)) => Err(WriteError::Failed(self.out.failure())),
                Err(_) => Err(WriteError::Busy),
            },
        }
    }

    /// Queues a frame without waiting, for the write or for room (replies to the server):
    /// a full queue refuses it.
    pub fn send_detached(&self, head: Bytes, body: Option<Bytes>) -> Result<(), WriteError> {
        if !self.is_ok() {
            return Err(WriteError::Failed(self.out.failure()));
        }
        let m = Outgoing {
            head,
            body,
            stall: DETACHED_STALL,
            done: None,
        };
        let counted = self.out.queued();
        match self.tx.try_send(m) {
            Ok(()) => {
                counted.handed_over();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(WriteError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(WriteError::Failed(self.out.failure()))
            }
        }
    }
}
