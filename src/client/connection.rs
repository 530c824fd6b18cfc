//! One TCP connection: a writer task fed by a queue and a reader task that routes frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
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
    Idle,
    Broken,
    Cancelled,
}

/// A frame waiting for the writer, with who to tell once it is on the socket.
pub(crate) struct Outgoing {
    pub bytes: Bytes,
    pub done: Option<oneshot::Sender<Result<(), Arc<std::io::Error>>>>,
}

/// Cheap handle to a live connection.
pub(crate) struct ConnHandle {
    pub id: u64,
    pub addr: String,
    tx: mpsc::UnboundedSender<Outgoing>,
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

    /// Queues bytes for the writer; the receiver says whether they reached the socket.
    pub fn send(&self, bytes: Bytes) -> oneshot::Receiver<Result<(), Arc<std::io::Error>>> {
        let (done, rx) = oneshot::channel();
        // A closed queue drops `done`, which the caller sees as a send failure.
        let _ = self.tx.send(Outgoing {
            bytes,
            done: Some(done),
        });
        rx
    }

    /// Queues bytes without waiting for the write (replies to the server).
    pub fn send_detached(&self, bytes: Bytes) {
        let _ = self.tx.send(Outgoing { bytes, done: None });
    }
}

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

/// Starts the tasks of a freshly connected socket and returns its handle.
pub(crate) fn spawn(
    inner: &Arc<Inner>,
    id: u64,
    addr: String,
    stream: TcpStream,
) -> Arc<ConnHandle> {
    let (read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
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
    write: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    closed: CancellationToken,
    activity: Arc<Activity>,
    addr: String,
) {
    let mut out = BufWriter::new(write);
    let mut dones = Vec::new();
    loop {
        let first = tokio::select! {
            _ = closed.cancelled() => break,
            m = rx.recv() => match m { Some(m) => m, None => break },
        };
        let mut result = write_one(&mut out, first, &mut dones).await;
        // Batch whatever queued up meanwhile into the same flush.
        while result.is_ok() {
            match rx.try_recv() {
                Ok(m) => result = write_one(&mut out, m, &mut dones).await,
                Err(_) => break,
            }
        }
        if result.is_ok() {
            result = out.flush().await;
        }
        activity.touch();
        let result = result.map_err(Arc::new);
        for d in dones.drain(..) {
            let _ = d.send(result.clone());
        }
        if let Err(e) = result {
            tracing::warn!(%addr, error = %e, "write failed, closing connection");
            closed.cancel();
            break;
        }
    }
    let _ = out.shutdown().await;
}

async fn write_one<W: AsyncWrite + Unpin>(
    out: &mut BufWriter<W>,
    m: Outgoing,
    dones: &mut Vec<oneshot::Sender<Result<(), Arc<std::io::Error>>>>,
) -> std::io::Result<()> {
    dones.extend(m.done);
    out.write_all(&m.bytes).await
}

struct Reader {
    inner: Weak<Inner>,
    conn: Arc<ConnHandle>,
    frames: FramedRead<OwnedReadHalf, FrameCodec>,
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
        inner.connection_closed(&self.conn);
        let kind = match ending {
            Ending::Idle => ChannelEventKind::Idle,
            Ending::Broken => ChannelEventKind::Exception,
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
            let idle_at = self.activity.last() + self.idle;
            let next = tokio::select! {
                _ = self.conn.closed.cancelled() => return Ending::Cancelled,
                _ = tokio::time::sleep_until(idle_at) => {
                    if Instant::now() >= self.activity.last() + self.idle {
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
                Some(Err(e)) => {
                    // A malformed frame poisons only this connection.
                    tracing::warn!(%addr, error = %e, "bad frame, closing connection");
                    return Ending::Broken;
                }
                Some(Ok(cmd)) => {
                    self.activity.touch();
                    let Some(inner) = self.inner.upgrade() else {
                        return Ending::Cancelled;
                    };
                    if cmd.is_response() {
                        inner.response_received(cmd, &addr);
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
        let (tx, rx) = mpsc::unbounded_channel();
        let closed = CancellationToken::new();
        let activity = Arc::new(Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        });
        let (done, result) = oneshot::channel();
        // Bigger than BufWriter's buffer, so the write reaches the socket at once.
        let bytes = Bytes::from(vec![0u8; 64 * 1024]);
        tx.send(Outgoing {
            bytes,
            done: Some(done),
        })
        .unwrap();
        write_loop(Broken, rx, closed.clone(), activity, "peer:1".into()).await;
        let err = result.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(
            closed.is_cancelled(),
            "the connection must be closed after a failed write"
        );
    }
}
