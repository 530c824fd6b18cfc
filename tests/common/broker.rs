//! The real Rust broker (`rocketmq-broker-rust`) as a test peer, and what a producer does.
//!
//! Facts of rocketmq-broker 1.0.0 these helpers rely on: it listens on all interfaces on
//! listenPort, listenPort − 2 and haListenPort (which does not follow listenPort: each broker
//! gets its own); it refuses to start when its first registration fails, so it gets a "sink"
//! NameServer of its own; it persists `{storePathRootDir}/config/topics.json` at start and when
//! a topic is auto-created. Traffic goes to 127.0.0.1 only.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmq_registrar::client::RemotingClient;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;
use tokio::time::Instant;

/// SEND_MESSAGE (v1 header).
pub const SEND_MESSAGE: i32 = 10;
/// GET_MAX_OFFSET.
pub const GET_MAX_OFFSET: i32 = 30;
/// TOPIC_NOT_EXIST, the NameServer's answer for an unknown topic.
pub const TOPIC_NOT_EXIST: i32 = 17;

fn binary() -> PathBuf {
    super::peer_binary("rocketmq-broker-rust", "RMQ_BROKER_BIN")
}

fn port_free(port: u16) -> bool {
    StdListener::bind(("0.0.0.0", port)).is_ok()
}

/// A listen port whose port − 2 and port + 1 are free too (checked, then released).
fn three_free_ports() -> u16 {
    for _ in 0..200 {
        let l = StdListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if p > 1100 && p < 65000 && port_free(p) && port_free(p - 2) && port_free(p + 1) {
            return p;
        }
    }
    panic!("no three free ports");
}

/// A running real broker; killed on drop.
pub struct Broker {
    /// `127.0.0.1:listenPort`.
    pub addr: String,
    /// Its own topics.json.
    pub topics_file: PathBuf,
    conf: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    stopped: bool,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.stopped {
            self.signal("CONT");
        }
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Broker {
    /// Starts a broker registering itself with `sink` only, and waits until it answers.
    /// `extra` holds more properties lines (brokerId, brokerRole …).
    pub async fn start(cluster: &str, name: &str, sink: &str, extra: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let port = three_free_ports();
        let store = dir.path().join("store");
        let props = format!(
            "brokerClusterName={cluster}\nbrokerName={name}\nnamesrvAddr={sink}\nbrokerIP1=127.0.0.1\nlistenPort={port}\nhaListenPort={ha}\nstorePathRootDir={store}\nstorePathCommitLog={store}/commitlog\nmappedFileSizeCommitLog=16777216\nmappedFileSizeConsumeQueue=60000\nautoCreateTopicEnable=true\n{extra}\n",
            ha = port + 1,
            store = store.display(),
        );
        let conf = dir.path().join("broker.properties");
        std::fs::write(&conf, props).unwrap();
        let mut b = Broker {
            addr: format!("127.0.0.1:{port}"),
            topics_file: store.join("config").join("topics.json"),
            conf,
            dir,
            child: None,
            stopped: false,
        };
        b.spawn();
        b.wait_answering(Duration::from_secs(60)).await;
        b
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.conf)
            .env("HOME", self.dir.path())
            .env("ROCKETMQ_HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn rocketmq-broker-rust");
        self.child = Some(child);
    }

    /// True when the broker answers GET_BROKER_RUNTIME_INFO now.
    pub async fn answers(&self, c: &RemotingClient) -> bool {
        let req = RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO);
        let ok = matches!(
            c.invoke_sync(Some(&self.addr), req, Duration::from_millis(500)).await,
            Ok(r) if r.code == 0
        );
        if !ok {
            c.close_connection(&self.addr);
        }
        ok
    }

    /// Waits until the broker answers; returns when it first did.
    pub async fn wait_answering(&mut self, limit: Duration) -> Instant {
        let c = super::client();
        let t0 = Instant::now();
        loop {
            if self.answers(&c).await {
                c.shutdown();
                return Instant::now();
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("broker exited with {status}:\n{}", self.logs());
            }
            assert!(
                t0.elapsed() < limit,
                "broker at {} not answering after {limit:?}:\n{}",
                self.addr,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again with the same config and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends a signal by name ("STOP", "CONT").
    pub fn signal(&mut self, sig: &str) {
        let Some(c) = &self.child else { return };
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        self.stopped = sig == "STOP";
    }

    /// The broker's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }
}

/// What a RocketMQ producer does for a topic: its route from the NameServer, or, for a topic
/// nobody has yet, the route of TBW102 (the brokers that may create it); returns the address
/// of the master of the first broker in the route.
pub async fn producer_route(c: &RemotingClient, ns: &str, topic: &str) -> (String, bool) {
    let lookup =
        |t: &str| RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", t);
    let r = c
        .invoke_sync(Some(ns), lookup(topic), Duration::from_secs(5))
        .await
        .unwrap();
    let (route, known) = if r.code == 0 {
        (r, true)
    } else {
        assert_eq!(r.code, TOPIC_NOT_EXIST, "route lookup: {:?}", r.remark);
        let r = c
            .invoke_sync(Some(ns), lookup("TBW102"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(r.code, 0, "TBW102 route: {:?}", r.remark);
        (r, false)
    };
    let v: serde_json::Value = serde_json::from_slice(&route.body.unwrap()).unwrap();
    let master = v["brokerDatas"][0]["brokerAddrs"]["0"]
        .as_str()
        .unwrap_or_else(|| panic!("no master in the route: {v}"))
        .to_string();
    (master, known)
}

/// SEND_MESSAGE of one message to `queue` of `topic` (auto-created from TBW102 if new);
/// returns the response code and remark.
pub async fn send_message(
    c: &RemotingClient,
    broker: &str,
    topic: &str,
    queue: i32,
    body: &str,
) -> (i32, Option<String>) {
    let born = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let req = RemotingCommand::request(SEND_MESSAGE)
        .with_field("producerGroup", "rmq-registrar-test-producer")
        .with_field("topic", topic)
        .with_field("defaultTopic", "TBW102")
        .with_field("defaultTopicQueueNums", 4)
        .with_field("queueId", queue)
        .with_field("sysFlag", 0)
        .with_field("bornTimestamp", born)
        .with_field("flag", 0)
        .with_field("properties", "WAIT\u{1}true\u{2}")
        .with_field("reconsumeTimes", 0)
        .with_field("unitMode", false)
        .with_field("batch", false)
        .with_body(body.as_bytes().to_vec());
    let r = c
        .invoke_sync(Some(broker), req, Duration::from_secs(5))
        .await
        .unwrap();
    (r.code, r.remark)
}

/// GET_MAX_OFFSET of `topic`/`queue` on `broker`.
pub async fn max_offset(c: &RemotingClient, broker: &str, topic: &str, queue: i32) -> i64 {
    let req = RemotingCommand::request(GET_MAX_OFFSET)
        .with_field("topic", topic)
        .with_field("queueId", queue);
    let r = c
        .invoke_sync(Some(broker), req, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "GET_MAX_OFFSET: {:?}", r.remark);
    r.field("offset").and_then(|o| o.parse().ok()).unwrap_or(-1)
}
