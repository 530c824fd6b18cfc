//! The write side of a connection. A caller writes its frame on the socket itself when nothing
//! is queued or being written (one request in flight: no task hop, no extra wake-up); otherwise
//! frames go through the bounded queue to the writer task, which writes whatever queued up in
//! one vectored write. Either way frames leave in the order they were handed over, and a write
//! is given up when the peer takes no byte for one request timeout.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, MutexGuard};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;

/// The write side of a connection, plain or TLS.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// What a frame's writer is told once it is on the socket (or why it never will be).
pub(crate) type Written = Result<(), Arc<std::io::Error>>;

/// Frames a connection queues; more wait for room until their deadline, then are refused.
pub(crate) const SEND_QUEUE: usize = 64;
/// Stall bound for frames nobody waits on (replies to server requests).
pub(crate) const DETACHED_STALL: Duration = Duration::from_secs(3);
/// Small frames queued together go out in one write, up to this many bytes ...
const BATCH_BYTES: usize = 256 * 1024;
/// ... and this many buffers (two per frame).
const MAX_IOV: usize = 64;

/// A frame waiting for the writer task: its head (prefix and header) and its body, shared with
/// every other connection that sends the same body, and who to tell once it is on the socket.
pub(crate) struct Outgoing {
    pub head: Bytes,
    pub body: Option<Bytes>,
    /// How long the peer may take no byte of it before the connection is given up.
    pub stall: Duration,
    pub done: Option<oneshot::Sender<Written>>,
}

impl Outgoing {
    fn len(&self) -> usize {
        self.head.len() + self.body.as_ref().map_or(0, Bytes::len)
    }

    /// No frame: asks the writer task to finish what a caller left half written.
    fn resume(stall: Duration) -> Self {
        Outgoing {
            head: Bytes::new(),
            body: None,
            stall,
            done: None,
        }
    }
}

/// Why a direct write did not complete.
#[derive(Debug)]
pub(crate) enum DirectError {
    /// The request's deadline came first; the rest of the frame goes out through the writer.
    Deadline,
    /// The socket failed (or the connection was closed); the connection is closed.
    Failed(Arc<std::io::Error>),
}

/// The socket and the bytes of frames begun on it but not finished. Whoever holds it next
/// writes those first, so a caller that stops waiting mid-frame never leaves half a frame
/// followed by another on the wire.
pub(crate) struct Sink {
    io: BoxWrite,
    unsent: VecDeque<Bytes>,
    /// When the peer last took a byte, or when the bytes now unsent began: the stall clock.
    progress: Instant,
}

impl Sink {
    fn push(&mut self, head: Bytes, body: Option<Bytes>) {
        if self.unsent.is_empty() {
            self.progress = Instant::now();
        }
        for b in [Some(head), body].into_iter().flatten() {
            if !b.is_empty() {
                self.unsent.push_back(b);
            }
        }
    }

    /// Writes every unsent byte without copying. With `stall`, gives up when the peer takes no
    /// byte for that long (a peer that stopped reading); at once when the connection closes.
    async fn flush(
        &mut self,
        stall: Option<Duration>,
        closed: &CancellationToken,
        activity: &Activity,
    ) -> std::io::Result<()> {
        let Sink {
            io,
            unsent,
            progress,
        } = self;
        while !unsent.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slice, b) in slices.iter_mut().zip(unsent.iter()) {
                *slice = IoSlice::new(b);
                count += 1;
            }
            let write = io.write_vectored(&slices[..count]);
            // The write first: when it is ready at once, no timer and no waiter is set up.
            let n = tokio::select! {
                biased;
                r = maybe_until(stall.map(|s| *progress + s), write) => match r {
                    Some(r) => r?,
                    None => return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        Stalled { stall: stall.unwrap_or_default() },
                    )),
                },
                _ = closed.cancelled() => {
                    return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection closed"));
                }
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            *progress = Instant::now();
            activity.touch();
            let mut left = n;
            while left > 0 {
                let Some(front) = unsent.front_mut() else {
                    break;
                };
                if left >= front.len() {
                    left -= front.len();
                    unsent.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
        Ok(())
    }
}

/// A peer that stopped taking data.
#[derive(Debug, thiserror::Error)]
#[error("the peer took no data for {stall:?}")]
pub(crate) struct Stalled {
    stall: Duration,
}

/// `fut`, given up (None) at `deadline` when there is one.
async fn maybe_until<F: std::future::Future>(
    deadline: Option<Instant>,
    fut: F,
) -> Option<F::Output> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// The write side shared by the connection's handle (callers) and its writer task.
pub(crate) struct WriteSide {
    sink: tokio::sync::Mutex<Sink>,
    /// Frames queued or in the writer task's hands and not yet written: while there are any,
    /// a caller queues behind them instead of writing itself.
    backlog: AtomicUsize,
    /// The first write error: every frame the connection still held fails with it.
    failure: OnceLock<Arc<std::io::Error>>,
    activity: Arc<Activity>,
    closed: CancellationToken,
    addr: Arc<str>,
}

impl WriteSide {
    /// The write side of `io`; `closed` ends it.
    pub(crate) fn new(
        io: BoxWrite,
        addr: Arc<str>,
        closed: CancellationToken,
        activity: Arc<Activity>,
    ) -> Self {
        WriteSide {
            sink: tokio::sync::Mutex::new(Sink {
                io,
                unsent: VecDeque::new(),
                progress: Instant::now(),
            }),
            backlog: AtomicUsize::new(0),
            failure: OnceLock::new(),
            activity,
            closed,
            addr,
        }
    }

    /// The error the connection failed with, if a write failed.
    pub(crate) fn failure(&self) -> Option<Arc<std::io::Error>> {
        self.failure.get().cloned()
    }

    /// Counts a frame about to be queued; the writer task uncounts it once written.
    pub(crate) fn queued(&self) -> Backlogged<'_> {
        self.backlog.fetch_add(1, Ordering::SeqCst);
        Backlogged {
            side: self,
            armed: true,
        }
    }

    /// The socket, when a caller may write on it now: nothing is queued or being written.
    pub(crate) fn try_direct(&self) -> Option<MutexGuard<'_, Sink>> {
        if self.backlog.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let sink = self.sink.try_lock().ok()?;
        // A frame queued while the lock was taken goes first.
        (self.backlog.load(Ordering::SeqCst) == 0).then_some(sink)
    }

    /// Writes a frame on `sink` (from [`try_direct`](Self::try_direct)) until `deadline`. If
    /// the caller stops waiting (the deadline, a dropped future), what is left of the frame is
    /// handed to the writer task through `queue`, which finishes it under `stall`.
    pub(crate) async fn write_direct(
        &self,
        sink: MutexGuard<'_, Sink>,
        queue: &mpsc::Sender<Outgoing>,
        frame: (Bytes, Option<Bytes>),
        stall: Duration,
        deadline: Instant,
    ) -> Result<(), DirectError> {
        let mut turn = Handover {
            sink,
            side: self,
            queue,
            stall,
        };
        turn.sink.push(frame.0, frame.1);
        // No stall bound of its own: the deadline (one timeout from the request's start) comes
        // first, and after it the writer task applies the bound from the last progress.
        let flushed = tokio::time::timeout_at(
            deadline,
            turn.sink.flush(None, &self.closed, &self.activity),
        )
        .await;
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                turn.sink.unsent.clear();
                Err(DirectError::Failed(self.fail(e)))
            }
            Err(_) => Err(DirectError::Deadline),
        }
    }

    /// Records the first failure, logs it and closes the connection.
    fn fail(&self, e: std::io::Error) -> Arc<std::io::Error> {
        tracing::warn!(addr = %self.addr, error = %e, "write failed, closing connection");
        let e = self.failure.get_or_init(|| Arc::new(e)).clone();
        self.closed.cancel();
        e
    }
}

/// A frame counted in the backlog; uncounted on drop unless it reached the queue.
pub(crate) struct Backlogged<'a> {
    side: &'a WriteSide,
    armed: bool,
}

impl Backlogged<'_> {
    /// The frame is in the queue: the writer task uncounts it.
    pub(crate) fn handed_over(mut self) {
        self.armed = false;
    }
}

impl Drop for Backlogged<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.side.backlog.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A caller's turn at the socket. Dropped with bytes unsent (deadline, cancelled caller), it
/// asks the writer task to finish them, before anyone else gets the socket.
struct Handover<'a> {
    sink: MutexGuard<'a, Sink>,
    side: &'a WriteSide,
    queue: &'a mpsc::Sender<Outgoing>,
    stall: Duration,
}

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        if self.sink.unsent.is_empty() {
            return;
        }
        // Counted before the lock is released: no caller writes ahead of the rest. A full
        // queue needs no marker: the writer task takes the socket for those frames anyway.
        let counted = self.side.queued();
        if self.queue.try_send(Outgoing::resume(self.stall)).is_ok() {
            counted.handed_over();
        }
    }
}

/// The writer task: writes queued frames in batches until the connection closes, then fails
/// whatever it still held and shuts the socket down.
pub(crate) async fn write_loop(side: Arc<WriteSide>, mut rx: mpsc::Receiver<Outgoing>) {
    let closed = side.closed.cancelled();
    tokio::pin!(closed);
    let mut batch: Vec<Outgoing> = Vec::new();
    let result = loop {
        let first = tokio::select! {
            m = rx.recv() => match m { Some(m) => m, None => break Ok(()) },
            _ = &mut closed => break Ok(()),
        };
        batch.push(first);
        let mut sink = tokio::select! {
            s = side.sink.lock() => s,
            _ = &mut closed => break Ok(()),
        };
        // Whatever queued up meanwhile goes out in the same write.
        let mut size = batch[0].len();
        while size < BATCH_BYTES && batch.len() < MAX_IOV / 2 {
            match rx.try_recv() {
                Ok(m) => {
                    size += m.len();
                    batch.push(m);
                }
                Err(_) => break,
            }
        }
        let stall = batch
            .iter()
            .map(|m| m.stall)
            .max()
            .unwrap_or(DETACHED_STALL);
        for m in &mut batch {
            sink.push(std::mem::take(&mut m.head), m.body.take());
        }
        let written = sink.flush(Some(stall), &side.closed, &side.activity).await;
        side.backlog.fetch_sub(batch.len(), Ordering::SeqCst);
        drop(sink);
        match written {
            Ok(()) => {
                for m in batch.drain(..) {
                    if let Some(d) = m.done {
                        let _ = d.send(Ok(()));
                    }
                }
            }
            Err(e) => break Err(e),
        }
    };
    let err = match result {
        Ok(()) => side.failure().unwrap_or_else(|| {
            Arc::new(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "connection closed",
            ))
        }),
        Err(e) => side.fail(e),
    };
    side.closed.cancel();
    // Nothing waits on a dead connection: the unwritten batch and the whole queue fail now.
    rx.close();
    let queued = std::iter::from_fn(|| rx.try_recv().ok());
    for m in batch.drain(..).chain(queued) {
        if let Some(d) = m.done {
            let _ = d.send(Err(err.clone()));
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(100), async {
        side.sink.lock().await.io.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests;
