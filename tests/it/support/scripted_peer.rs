//! Scripted remoting peers on 127.0.0.1: one that answers as the test says, one that never
//! reads, and a listener whose backlog is full.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rmq_registrar::protocol::frame::encode_to_vec;
use rmq_registrar::protocol::{FrameCodec, RemotingCommand};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::ports::ClosedPort;

/// What the scripted peer does with one received frame.
pub enum Action {
    /// Answer with this command (opaque and response flag are filled in).
    Reply(RemotingCommand),
    /// Say nothing.
    Silent,
    /// Close the socket.
    Close,
    /// Write these bytes as they are.
    Raw(Vec<u8>),
}

type Handler = dyn Fn(&RemotingCommand) -> Action + Send + Sync;

/// A remoting server on 127.0.0.1 whose behaviour the test scripts.
pub struct Peer {
    pub addr: String,
    pub accepts: Arc<AtomicUsize>,
    pub received: tokio::sync::Mutex<mpsc::UnboundedReceiver<RemotingCommand>>,
    writers: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>>,
    task: tokio::task::JoinHandle<()>,
    _port: Option<ClosedPort>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A reply with code 0 to whatever came.
pub fn ok_reply() -> Action {
    Action::Reply(RemotingCommand::request(0))
}

impl Peer {
    /// Starts a peer that answers every frame through `handler`.
    pub async fn start(
        handler: impl Fn(&RemotingCommand) -> Action + Send + Sync + 'static,
    ) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, None, handler)
    }

    /// Starts a peer on a port the test holds (ports at a fixed distance from another); the
    /// peer keeps holding it.
    pub async fn start_on(
        port: ClosedPort,
        handler: impl Fn(&RemotingCommand) -> Action + Send + Sync + 'static,
    ) -> Peer {
        let listener = TcpListener::bind(port.addr()).await.unwrap();
        Self::serve(listener, Some(port), handler)
    }

    fn serve(
        listener: TcpListener,
        port: Option<ClosedPort>,
        handler: impl Fn(&RemotingCommand) -> Action + Send + Sync + 'static,
    ) -> Peer {
        let addr = listener.local_addr().unwrap().to_string();
        let accepts = Arc::new(AtomicUsize::new(0));
        let writers: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>> = Arc::default();
        let (seen_tx, seen_rx) = mpsc::unbounded_channel();
        let handler: Arc<Handler> = Arc::new(handler);
        let (acc, wr) = (accepts.clone(), writers.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                acc.fetch_add(1, Ordering::SeqCst);
                let (read, mut write) = sock.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
                wr.lock().unwrap().push(tx.clone());
                tokio::spawn(async move {
                    while let Some(b) = rx.recv().await {
                        if b.is_empty() || write.write_all(&b).await.is_err() {
                            return;
                        }
                    }
                });
                let (handler, seen) = (handler.clone(), seen_tx.clone());
                tokio::spawn(async move {
                    let mut frames = FramedRead::new(read, FrameCodec::default());
                    while let Some(Ok(cmd)) = frames.next().await {
                        let _ = seen.send(cmd.clone());
                        if cmd.is_response() {
                            continue;
                        }
                        match handler(&cmd) {
                            Action::Silent => {}
                            Action::Close => {
                                let _ = tx.send(Bytes::new());
                                return;
                            }
                            Action::Raw(b) => {
                                let _ = tx.send(b.into());
                            }
                            Action::Reply(mut r) => {
                                r.opaque = cmd.opaque;
                                r.mark_response();
                                let _ = tx.send(encode_to_vec(&r).unwrap().into());
                            }
                        }
                    }
                });
            }
        });
        Peer {
            addr,
            accepts,
            received: tokio::sync::Mutex::new(seen_rx),
            writers,
            task,
            _port: port,
        }
    }

    /// Sends a frame to the newest connection (server-initiated traffic).
    pub fn push(&self, bytes: Vec<u8>) {
        let w = self.writers.lock().unwrap();
        w.last().expect("a connection").send(bytes.into()).unwrap();
    }

    /// Next frame the peer received, waiting up to 5 s.
    pub async fn next_received(&self) -> RemotingCommand {
        let mut rx = self.received.lock().await;
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("frame within 5 s")
            .unwrap()
    }

    /// Frames received so far, without waiting.
    pub fn drain_received(&self) -> Vec<RemotingCommand> {
        let mut rx = self.received.try_lock().expect("no concurrent reader");
        let mut v = Vec::new();
        while let Ok(c) = rx.try_recv() {
            v.push(c);
        }
        v
    }
}

/// A "peer" that accepts connections and never reads them (4 KB receive buffer); counts its
/// accepts. The task holds the sockets until it is dropped.
pub async fn never_reading_peer() -> (String, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let l = sock.listen(64).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let accepts = Arc::new(AtomicUsize::new(0));
    let a = accepts.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            a.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (addr, accepts, task)
}

/// A listener that never accepts, with its backlog filled: further connects hang. Returns the
/// listener, its address and the connections that fill the backlog (keep them alive).
pub async fn full_backlog_listener() -> (TcpListener, String, Vec<tokio::net::TcpStream>) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(1).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    (listener, addr, fillers)
}
