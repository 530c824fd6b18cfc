//! The read side of a connection: one task reading frames, handing replies and server requests
//! to the client's tables, closing the connection when it is idle, broken or closed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use super::activity::Activity;
use super::connection::ConnHandle;
use super::hooks::ChannelEventKind;
use crate::protocol::{FrameCodec, FrameError, RemotingCommand};

/// The read side of a connection, plain or TLS.
pub(crate) type BoxRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// Where a reader delivers what it reads, and tells of its connection's end.
pub(crate) trait Routes: Send + Sync + 'static {
    /// A reply: hands it to the request it answers if that went out on `conn`; false if none.
    fn response(&self, conn: &ConnHandle, resp: RemotingCommand) -> bool;
    /// A request from the server.
    fn request(self: Arc<Self>, conn: &Arc<ConnHandle>, req: RemotingCommand);
    /// The connection is gone; `silent_plain`: a plain one closed before the peer sent anything.
    fn closed(&self, conn: &ConnHandle, silent_plain: bool);
    /// A channel event for the listener.
    fn event(&self, kind: ChannelEventKind, addr: &str);
}

/// Why the reader stopped, for the channel event it raises.
enum Ending {
    PeerClosed,
    /// The socket failed (a reset): like a close, as far as the peer's intent goes.
    Reset,
    Idle,
    Broken,
    Cancelled,
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

/// A connection's reader task.
pub(crate) struct Reader {
    /// TLS connection (a silent close then means nothing about TLS).
    secure: bool,
    frames_read: u64,
    unexpected: Unexpected,
    routes: Weak<dyn Routes>,
    conn: Arc<ConnHandle>,
    frames: FramedRead<BoxRead, FrameCodec>,
    activity: Arc<Activity>,
    idle: Duration,
}

impl Reader {
    /// A reader of `read` for `conn`, refusing frames over `max_frame`.
    pub(crate) fn new(
        conn: Arc<ConnHandle>,
        read: BoxRead,
        secure: bool,
        max_frame: usize,
        idle: Duration,
        activity: Arc<Activity>,
        routes: Weak<dyn Routes>,
    ) -> Self {
        Reader {
            secure,
            frames_read: 0,
            unexpected: Unexpected::default(),
            routes,
            conn,
            frames: FramedRead::new(read, FrameCodec::new(max_frame)),
            activity,
            idle,
        }
    }

    /// Reads until the connection ends, then fails its waiters and raises its events.
    pub(crate) async fn run(mut self) {
        let ending = self.read_frames().await;
        self.conn.close();
        let Some(routes) = self.routes.upgrade() else {
            return;
        };
        let silent_plain = !self.secure
            && self.frames_read == 0
            && matches!(ending, Ending::PeerClosed | Ending::Reset);
        routes.closed(&self.conn, silent_plain);
        let kind = match ending {
            Ending::Idle => ChannelEventKind::Idle,
            Ending::Broken | Ending::Reset => ChannelEventKind::Exception,
            Ending::PeerClosed | Ending::Cancelled => ChannelEventKind::Close,
        };
        routes.event(kind, &self.conn.addr);
        if !matches!(kind, ChannelEventKind::Close) {
            routes.event(ChannelEventKind::Close, &self.conn.addr);
        }
    }

    /// When the connection counts as idle, judged by its latest activity. An absurd idle
    /// timeout must not overflow the clock: then it never fires.
    fn idle_at(&self) -> Instant {
        self.activity
            .last()
            .checked_add(self.idle)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400))
    }

    async fn read_frames(&mut self) -> Ending {
        let addr = self.conn.addr.clone();
        // One waiter and one timer for the connection's life, not one per frame.
        let closed = self.conn.closed().clone();
        let cancelled = closed.cancelled();
        tokio::pin!(cancelled);
        let idle = tokio::time::sleep_until(self.idle_at());
        tokio::pin!(idle);
        loop {
            let next = tokio::select! {
                biased;
                _ = &mut cancelled => return Ending::Cancelled,
                next = self.frames.next() => next,
                _ = &mut idle => {
                    // Reads and writes meanwhile moved the deadline: judge by the latest.
                    let due = self.idle_at();
                    if Instant::now() >= due {
                        tracing::info!(%addr, idle = ?self.idle, "closing idle connection");
                        return Ending::Idle;
                    }
                    idle.as_mut().reset(due);
                    continue;
                }
            };
            match next {
                None => {
                    tracing::debug!(%addr, "peer closed the connection");
                    return Ending::PeerClosed;
                }
                Some(Err(FrameError::Io(e))) => {
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
                    let Some(routes) = self.routes.upgrade() else {
                        return Ending::Cancelled;
                    };
                    if cmd.is_response() {
                        if !routes.response(&self.conn, cmd) {
                            self.unexpected.note(&addr);
                        }
                    } else {
                        routes.request(&self.conn, cmd);
                    }
                }
            }
        }
    }
}
