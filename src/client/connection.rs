//! One TCP connection: a writer task fed by a queue and a reader task that routes frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::{ChannelEventKind, Inner};
use crate::poison::read as read_lock;
use crate::protocol::FrameCodec;

/// Why the reader stopped, for the channel event it raises.
enum Ending {
    PeerClosed,
    /// The socket failed (a reset): like a close, as far as the peer's intent goes.
    Reset,
    Idle,
    Broken,
    Cancelled,
}

/// A frame waiting for the writer: its head (prefix and header) and its body, shared with
/// every other connection that sends the same body, and who to tell once it is on the socket.
pub(crate) struct Outgoing {
    pub head: Bytes,
    pub body: Option<Bytes>,
    /// How long the peer may take no byte of it before the connection is given up.
    pub stall: Duration,
    pub done: Option<oneshot::Sender<Result<(), Arc<std::io::Error>>>>,
}

impl Outgoing {
    fn len(&self) -> usize {
        self.head.len() + self.body.as_ref().map_or(0, Bytes::len)
    }
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The connection's send queue is full: the peer is not keeping up.
    Busy,
    /// The connection is closed.
    Closed,
}

/// Cheap handle to a live connection.
pub(crate) struct ConnHandle {
    pub id: u64,
    pub addr: String,
    tx: mpsc::Sender<Outgoing>,
    closed: CancellationToken,
}

impl ConnHandle {
    /// True while both tasks run.
    pub fn is_ok(&self) -> bool {
        !self.closed.is_cancelled()
    }

    /// Closes the connection; the reader task then fails every waiter on it.
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Queues a frame, waiting for room until `deadline` (backpressure: `Busy` after that);
    /// the receiver says whether it reached the socket.
    pub async fn send(
        &self,
        head: Bytes,
        body: Option<Bytes>,
        stall: Duration,
        deadline: Instant,
    ) -> Result<oneshot::Receiver<Result<(), Arc<std::io::Error>>>, Refused> {
        let (done, rx) = oneshot::channel();
        let m = Outgoing {
            head,
            body,
            stall,
            done: Some(done),
        };
        let m = match self.queue(m) {
            Err(QueueFull(m)) => m,
            Ok(r) => return r.map(|()| rx),
        };
        tokio::select! {
            _ = self.closed.cancelled() => Err(Refused::Closed),
            r = tokio::time::timeout_at(deadline, self.tx.send(m)) => match r {
                Ok(Ok(())) => Ok(rx),
                Ok(Err(_)) => Err(Refused::Closed),
                Err(_) => Err(Refused::Busy),
            },
        }
    }

    /// Queues a frame without waiting, for the write or for room (replies to the server):
    /// a full queue refuses it.
    pub fn send_detached(&self, head: Bytes, body: Option<Bytes>) -> Result<(), Refused> {
        let m = Outgoing {
            head,
            body,
            stall: DETACHED_STALL,
            done: None,
        };
        match self.queue(m) {
            Ok(r) => r,
            Err(QueueFull(_)) => Err(Refused::Busy),
        }
    }

    /// Queues at once if there is room; hands the frame back when the queue is full.
    fn queue(&self, m: Outgoing) -> Result<Result<(), Refused>, QueueFull> {
        if !self.is_ok() {
            return Ok(Err(Refused::Closed));
        }
        match self.tx.try_send(m) {
            Ok(()) => Ok(Ok(())),
            Err(mpsc::error::TrySendError::Full(m)) => Err(QueueFull(m)),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(Err(Refused::Closed)),
        }
    }
}

/// A frame handed back by a full queue.
struct QueueFull(Outgoing);

/// Frames a connection queues; more wait for room until their deadline, then are refused.
pub(crate) const SEND_QUEUE: usize = 64;
/// Stall bound for frames nobody waits on (replies to server requests).
const DETACHED_STALL: Duration = Duration::from_secs(3);
/// Small frames queued together go out in one write, up to this many bytes ...
const BATCH_BYTES: usize = 256 * 1024;
/// ... and this many buffers (two per frame).
const MAX_IOV: usize = 64;

/// Clock shared by both tasks for idle detection, in ms since the client started.
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = Instant::now().duration_since(self.base).as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The read side of a connection, plain or TLS.
pub(crate) type BoxRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
/// The write side of a connection, plain or TLS.
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Starts the tasks of a freshly connected socket and returns its handle.
pub(crate) fn spawn(
    inner: &Arc<Inner>,
    id: u64,
    addr: String,
    read: BoxRead,
    write: BoxWrite,
    secure: bool,
) -> Arc<ConnHandle> {
    let (tx, rx) = mpsc::channel(SEND_QUEUE);
    let closed = inner.shutdown.child_token();
    let activity = Arc::new(Activity {
        base: Instant::now(),
        last_ms: AtomicU64::new(0),
    });
    let handle = Arc::new(ConnHandle {
        id,
        addr: addr.clone(),
        tx,
        closed: closed.clone(),
    });
    tokio::spawn(write_loop(
        write,
        rx,
        closed.clone(),
        activity.clone(),
        addr,
    ));
    // A NameServer never needs more than max_frame; a broker's topic table may.
    let is_namesrv = read_lock(&inner.namesrv).list.contains(&handle.addr);
    let max = if is_namesrv {
        inner.config.max_frame
    } else {
        inner.config.max_reply_frame.max(inner.config.max_frame)
    };
    let reader = Reader {
        secure,
        frames_read: 0,
        unexpected: Unexpected::default(),
        inner: Arc::downgrade(inner),
        conn: handle.clone(),
        frames: FramedRead::new(read, FrameCodec::new(max)),
        activity,
        idle: inner.config.idle_timeout,
    };
    tokio::spawn(reader.run());
    handle
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::Receiver<Outgoing>,
    closed: CancellationToken,
    activity: Arc<Activity>,
    addr: String,
) {
    let mut batch: Vec<Outgoing> = Vec::new();
    let result = loop {
        let first = tokio::select! {
            _ = closed.cancelled() => break Ok(()),
            m = rx.recv() => match m { Some(m) => m, None => break Ok(()) },
        };
        let mut size = first.len();
        batch.push(first);
        // Whatever queued up meanwhile goes out in the same write.
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
        let written = write_batch(&mut write, &batch, stall, &closed).await;
        activity.touch();
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
        Ok(()) => std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed"),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "write failed, closing connection");
            e
        }
    };
    closed.cancel();
    // Nothing waits on a dead connection: the unwritten batch and the whole queue fail now.
    let err = Arc::new(err);
    rx.close();
    let queued = std::iter::from_fn(|| rx.try_recv().ok());
    for m in batch.drain(..).chain(queued) {
        if let Some(d) = m.done {
            let _ = d.send(Err(err.clone()));
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(100), write.shutdown()).await;
}

/// Writes the buffers of `batch` without copying them. Gives up when the peer takes no byte for
/// `stall` (a peer that stopped reading), or at once when the connection is closed.
async fn write_batch<W: AsyncWrite + Unpin>(
    write: &mut W,
    batch: &[Outgoing],
    stall: Duration,
    closed: &CancellationToken,
) -> std::io::Result<()> {
    let mut chunks: std::collections::VecDeque<Bytes> = batch
        .iter()
        .flat_map(|m| [Some(m.head.clone()), m.body.clone()])
        .flatten()
        .filter(|b| !b.is_empty())
        .collect();
    while !chunks.is_empty() {
        let n = {
            let slices: Vec<std::io::IoSlice<'_>> = chunks
                .iter()
                .take(MAX_IOV)
                .map(|b| std::io::IoSlice::new(b))
                .collect();
            tokio::select! {
                _ = closed.cancelled() => {
                    return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection closed"));
                }
                r = tokio::time::timeout(stall, write.write_vectored(&slices)) => match r {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("the peer took no data for {stall:?}"),
                        ))
                    }
                },
            }
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let mut left = n;
        while left > 0 {
            let Some(front) = chunks.front_mut() else {
                break;
            };
            if left >= front.len() {
                left -= front.len();
                chunks.pop_front();
            } else {
                front.advance(left);
                left = 0;
            }
        }
    }
    Ok(())
}

/// Replies that matched no request on their connection: counted always, logged once a while.
#[derive(Default)]
struct Unexpected {
    since_log: u64,
    last_log: Option<Instant>,
}

/// At most one line per connection this often about unexpected replies.
const UNEXPECTED_LOG_EVERY: Duration = Duration::from_secs(30);

impl Unexpected {
    fn note(&mut self, addr: &str) {
        self.since_log += 1;
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= UNEXPECTED_LOG_EVERY)
        {
            tracing::warn!(%addr, count = self.since_log, "replies matching no request on this connection, dropped");
            self.last_log = Some(Instant::now());
            self.since_log = 0;
        }
    }
}

struct Reader {
    /// TLS connection (a silent close then means nothing about TLS).
    secure: bool,
    frames_read: u64,
    unexpected: Unexpected,
    inner: Weak<Inner>,
    conn: Arc<ConnHandle>,
    frames: FramedRead<BoxRead, FrameCodec>,
    activity: Arc<Activity>,
    idle: Duration,
}

impl Reader {
    async fn run(mut self) {
        let ending = self.read_frames().await;
        self.conn.close();
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let silent_plain = !self.secure
            && self.frames_read == 0
            && matches!(ending, Ending::PeerClosed | Ending::Reset);
        inner.connection_closed(&self.conn, silent_plain);
        let kind = match ending {
            Ending::Idle => ChannelEventKind::Idle,
            Ending::Broken | Ending::Reset => ChannelEventKind::Exception,
            Ending::PeerClosed | Ending::Cancelled => ChannelEventKind::Close,
        };
        inner.emit(kind, &self.conn.addr);
        if !matches!(kind, ChannelEventKind::Close) {
            inner.emit(ChannelEventKind::Close, &self.conn.addr);
        }
    }

    async fn read_frames(&mut self) -> Ending {
        let addr = self.conn.addr.clone();
        loop {
            // An absurd idle timeout must not overflow the clock: then it never fires.
            let idle_at = self
                .activity
                .last()
                .checked_add(self.idle)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            let next = tokio::select! {
                _ = self.conn.closed.cancelled() => return Ending::Cancelled,
                _ = tokio::time::sleep_until(idle_at) => {
                    // The writer may have been busy meanwhile: judge by the latest activity.
                    let due = self.activity.last().checked_add(self.idle);
                    if due.is_some_and(|t| Instant::now() >= t) {
                        tracing::info!(%addr, idle = ?self.idle, "closing idle connection");
                        return Ending::Idle;
                    }
                    continue;
                }
                next = self.frames.next() => next,
            };
            match next {
                None => {
                    tracing::debug!(%addr, "peer closed the connection");
                    return Ending::PeerClosed;
                }
                Some(Err(crate::protocol::FrameError::Io(e))) => {
                    tracing::debug!(%addr, error = %e, "connection failed");
                    return Ending::Reset;
                }
                Some(Err(e)) => {
                    // A malformed frame poisons only this connection.
                    tracing::warn!(%addr, error = %e, "bad frame, closing connection");
                    return Ending::Broken;
                }
                Some(Ok(cmd)) => {
                    self.activity.touch();
                    self.frames_read += 1;
                    let Some(inner) = self.inner.upgrade() else {
                        return Ending::Cancelled;
                    };
                    if cmd.is_response() {
                        if !inner.response_received(cmd, &self.conn) {
                            self.unexpected.note(&addr);
                        }
                    } else {
                        inner.request_received(&self.conn, cmd);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A socket whose writes fail, as after a reset by the peer.
    struct Broken;

    impl AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_failed_write_reports_the_error_and_closes_the_connection() {
        let (tx, rx) = mpsc::channel(SEND_QUEUE);
        let closed = CancellationToken::new();
        let activity = Arc::new(Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let (done, result) = oneshot::channel();
        // Bigger than BufWriter's buffer, so the write reaches the socket at once.
        let bytes = Bytes::from(vec![0u8; 64 * 1024]);
        tx.try_send(Outgoing {
            head: bytes,
            body: None,
            stall: Duration::from_secs(1),
            done: Some(done),
        })
        .unwrap_or_else(|_| panic!("queue has room"));
        write_loop(Broken, rx, closed.clone(), activity, "peer:1".into()).await;
        let err = result.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(
            closed.is_cancelled(),
            "the connection must be closed after a failed write"
        );
    }
}
