//! Test peers: a scripted remoting server and the real NameServer process.
#![allow(dead_code)]

pub mod broker;
pub mod daemon;

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rmq_registrar::broker::body::broker_addr_table;
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::frame::encode_to_vec;
use rmq_registrar::protocol::{FrameCodec, RemotingCommand};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

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
        Self::start_on("127.0.0.1:0", handler).await
    }

    /// Starts a peer on a given address.
    pub async fn start_on(
        addr: &str,
        handler: impl Fn(&RemotingCommand) -> Action + Send + Sync + 'static,
    ) -> Peer {
        let listener = TcpListener::bind(addr).await.unwrap();
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

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port_addr() -> String {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap().to_string();
    drop(l);
    a
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

/// A client with default settings and its sweeper running.
pub fn client() -> RemotingClient {
    client_with(ClientConfig::default())
}

/// A started client with `config`.
pub fn client_with(config: ClientConfig) -> RemotingClient {
    let c = RemotingClient::new(config, None);
    c.start();
    c
}

/// Unparsed frame bytes for a decoded body check.
pub fn frame_bytes(cmd: &RemotingCommand) -> BytesMut {
    BytesMut::from(&encode_to_vec(cmd).unwrap()[..])
}

/// The real NameServer (`rocketmq-namesrv-rust`), on 127.0.0.1 and a free port; killed on drop.
pub struct NameServer {
    pub addr: String,
    child: Child,
    _home: tempfile::TempDir,
}

impl Drop for NameServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A peer program (`rocketmq-namesrv-rust`, `rocketmq-broker-rust`): `env_override` if set,
/// else on PATH, else in ~/.cargo/bin; scripts/install-peers.sh installs them.
pub fn peer_binary(name: &str, env_override: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env_override) {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    let p = on_path.unwrap_or_else(|| {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cargo/bin").join(name)
    });
    assert!(
        p.is_file(),
        "{name} not found: run scripts/install-peers.sh (scripts/test.sh does)"
    );
    p
}

fn namesrv_binary() -> PathBuf {
    peer_binary("rocketmq-namesrv-rust", "RMQ_NAMESRV_BIN")
}

/// The value of the first sample of `/metrics` text whose line starts with `name` (labels
/// included); NaN when there is none.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

impl NameServer {
    /// Starts a NameServer and waits until it answers GET_BROKER_CLUSTER_INFO.
    pub async fn start() -> NameServer {
        let port = closed_port_addr().rsplit(':').next().unwrap().to_string();
        Self::start_on(&port).await
    }

    /// Starts a NameServer on a given port (used to restart one on the same address).
    pub async fn start_on(port: &str) -> NameServer {
        Self::start_with(port, "").await
    }

    /// Started with `-c FILE` holding `properties` (e.g. `supportActingMaster=true`).
    pub async fn start_with(port: &str, properties: &str) -> NameServer {
        let home = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("namesrv.log")).unwrap();
        let mut cmd = Command::new(namesrv_binary());
        if !properties.is_empty() {
            let ini = home.path().join("namesrv.ini");
            std::fs::write(&ini, properties).unwrap();
            cmd.arg("-c").arg(ini);
        }
        let child = cmd
            .args(["--listenPort", port, "--bindAddress", "127.0.0.1"])
            .arg("--rocketmqHome")
            .arg(home.path())
            .arg("--kvConfigPath")
            .arg(home.path().join("kvConfig.json"))
            .env("HOME", home.path())
            .env("ROCKETMQ_HOME", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn rocketmq-namesrv-rust");
        let ns = NameServer {
            addr: format!("127.0.0.1:{port}"),
            child,
            _home: home,
        };
        ns.wait_ready().await;
        ns
    }

    async fn wait_ready(&self) {
        let probe = client();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let req = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
            if let Ok(r) = probe
                .invoke_sync(Some(&self.addr), req, Duration::from_secs(2))
                .await
            {
                if r.code == 0 {
                    probe.shutdown();
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "NameServer at {} not ready in 60 s",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the process.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.addr.clone()
    }

    /// The port it listens on.
    pub fn port(&self) -> String {
        self.addr.rsplit(':').next().unwrap().to_string()
    }
}

/// What the scripted HTTP server answers next: status, body, delay before answering.
pub type Script = Arc<Mutex<(u16, String, Duration)>>;

/// An address server on 127.0.0.1 answering `GET /rocketmq/nsaddr` from `script`.
pub async fn http_server(script: Script) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let ok_path = buf.starts_with(b"GET /rocketmq/nsaddr HTTP/1.1");
                let (status, body, delay) = if ok_path {
                    script.lock().unwrap().clone()
                } else {
                    (400, String::new(), Duration::ZERO)
                };
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, task)
}

/// Brokers in `ns`'s GET_BROKER_CLUSTER_INFO (`brokerAddrTable`), fastjson keys quoted.
pub async fn cluster_brokers(c: &RemotingClient, ns: &str) -> serde_json::Value {
    let req = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
    let r = c
        .invoke_sync(Some(ns), req, Duration::from_secs(5))
        .await
        .unwrap();
    broker_addr_table(&r.body.unwrap()).unwrap()
}

/// True when `ns` lists broker `name`; false when it does not or cannot be asked.
pub async fn has_broker(c: &RemotingClient, ns: &str, name: &str) -> bool {
    let req = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
    let Ok(r) = c.invoke_sync(Some(ns), req, Duration::from_secs(2)).await else {
        return false;
    };
    let body = r.body.unwrap_or_default();
    broker_addr_table(&body)
        .unwrap_or_default()
        .get(name)
        .is_some()
}

/// Brokers serving `topic` according to `ns`'s route (empty when the topic is unknown).
pub async fn route_brokers(c: &RemotingClient, ns: &str, topic: &str) -> Vec<String> {
    let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic);
    let r = c
        .invoke_sync(Some(ns), req, Duration::from_secs(5))
        .await
        .unwrap();
    if r.code != 0 {
        return vec![];
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body.unwrap()).unwrap();
    v["queueDatas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["brokerName"].as_str().unwrap().to_string())
        .collect()
}

/// Polls `f` every 20 ms until it holds; panics after `limit`. Returns the time it took.
pub async fn eventually_within<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// [`eventually_within`] with a generous 10 s limit.
pub async fn eventually<F, Fut>(what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, Duration::from_secs(10), f).await;
}
