//! The real Rust broker (`rocketmq-broker-rust`) as a test peer, and what a producer does.
//!
//! Facts of rocketmq-broker 1.0.0 these helpers rely on: it listens on all interfaces on
//! listenPort, listenPort − 2 and haListenPort (which does not follow listenPort: each broker
//! gets its own); it refuses to start when its first registration fails, so it gets a "sink"
//! NameServer of its own; it persists `{storePathRootDir}/config/topics.json` at start and when
//! a topic is auto-created. Traffic goes to 127.0.0.1 only.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmq_registrar::client::RemotingClient;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;
use tokio::time::Instant;

use super::ports::{closed_port_with, ClosedPort};
use super::programs::peer_binary;
use super::remoting::client;

/// SEND_MESSAGE (v1 header).
pub const SEND_MESSAGE: i32 = 10;
/// GET_MAX_OFFSET.
pub const GET_MAX_OFFSET: i32 = 30;
/// UPDATE_AND_CREATE_TOPIC.
pub const UPDATE_AND_CREATE_TOPIC: i32 = 17;
/// TOPIC_NOT_EXIST, the NameServer's answer for an unknown topic.
pub const TOPIC_NOT_EXIST: i32 = 17;

/// Start attempts (each with new ports and a new store) before [`Broker::start`] gives up.
const START_ATTEMPTS: usize = 3;

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
    /// listenPort, listenPort − 2 and haListenPort, held for as long as the broker may run
    /// (across restarts too).
    _ports: [ClosedPort; 3],
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
    /// `extra` holds more properties lines (brokerId, brokerRole …); a key it sets replaces
    /// the default line for it (e.g. `autoCreateTopicEnable=false`). A broker that exits
    /// during start-up is started again with new ports and a new store: its start-up fails now
    /// and then for reasons of its own (seen: "Service lifecycle operation failed", exit 70, on
    /// a loaded machine).
    pub async fn start(cluster: &str, name: &str, sink: &str, extra: &str) -> Broker {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut b = Self::prepare(cluster, name, sink, extra);
            b.spawn();
            match b.answering_or_exit(Duration::from_secs(60)).await {
                Ok(_) => return b,
                Err(log) => failures.push(log),
            }
        }
        // Seen on this project's machine: with the disk 73 % full or more (df), the Rust broker's
        // start-up fails ("Service lifecycle operation failed", exit 70) every time.
        let df = std::process::Command::new("df")
            .args(["-P", &std::env::temp_dir().to_string_lossy()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "the broker did not start in {START_ATTEMPTS} attempts (it fails at ~73 % disk use \
             or more; df: {df}):\n{}",
            failures.join("\n---\n")
        );
    }

    /// Its config and store on ports held for it, not yet started.
    fn prepare(cluster: &str, name: &str, sink: &str, extra: &str) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        // listenPort − 2 is the VIP channel; haListenPort is listenPort + 1 here.
        let (main, [vip, ha]) = closed_port_with([-2, 1]);
        let port = main.port();
        let store = dir.path().join("store");
        let defaults = format!(
            "brokerClusterName={cluster}\nbrokerName={name}\nnamesrvAddr={sink}\nbrokerIP1=127.0.0.1\nlistenPort={port}\nhaListenPort={ha}\nstorePathRootDir={store}\nstorePathCommitLog={store}/commitlog\nmappedFileSizeCommitLog=16777216\nmappedFileSizeConsumeQueue=60000\nautoCreateTopicEnable=true\n",
            ha = ha.port(),
            store = store.display(),
        );
        // The broker refuses a file that sets a key twice (it exits 70 with only "Service
        // lifecycle operation failed"), so a key in `extra` drops the default line for it.
        let key = |line: &str| {
            line.split('=')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        let overridden: Vec<String> = extra.lines().map(key).collect();
        let mut props: String = defaults
            .lines()
            .filter(|l| !overridden.contains(&key(l)))
            .map(|l| format!("{l}\n"))
            .collect();
        props.push_str(&format!("{extra}\n"));
        let conf = dir.path().join("broker.properties");
        std::fs::write(&conf, props).unwrap();
        Broker {
            addr: format!("127.0.0.1:{port}"),
            topics_file: store.join("config").join("topics.json"),
            conf,
            dir,
            child: None,
            stopped: false,
            _ports: [main, vip, ha],
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))
            .unwrap();
        let child = Command::new(peer_binary("rocketmq-broker-rust", "RMQ_BROKER_BIN"))
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

    /// True when the broker answers GET_BROKER_RUNTIME_INFO now (with authentication on, a
    /// refusal of the unsigned request, NO_PERMISSION, is its answer).
    pub async fn answers(&self, c: &RemotingClient) -> bool {
        let req = RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO);
        let ok = matches!(
            c.invoke_sync(Some(&self.addr), req, Duration::from_millis(500)).await,
            Ok(r) if r.code == 0 || r.code == 16
        );
        if !ok {
            c.close_connection(&self.addr);
        }
        ok
    }

    /// Waits until the broker answers; returns when it first did.
    pub async fn wait_answering(&mut self, limit: Duration) -> Instant {
        self.answering_or_exit(limit)
            .await
            .unwrap_or_else(|log| panic!("{log}"))
    }

    /// When the broker first answered, or how it exited (with its log) if it did first.
    async fn answering_or_exit(&mut self, limit: Duration) -> Result<Instant, String> {
        let c = client();
        let t0 = Instant::now();
        loop {
            if self.answers(&c).await {
                c.shutdown();
                return Ok(Instant::now());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                c.shutdown();
                return Err(format!("broker exited with {status}:\n{}", self.logs()));
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

/// UPDATE_AND_CREATE_TOPIC: creates `topic` on `broker` with `queues` read and write queues,
/// readable and writable, as `mqadmin updateTopic` does; the broker registers it with its
/// NameServers itself.
pub async fn create_topic(c: &RemotingClient, broker: &str, topic: &str, queues: i32) {
    let req = RemotingCommand::request(UPDATE_AND_CREATE_TOPIC)
        .with_field("topic", topic)
        .with_field("defaultTopic", "TBW102")
        .with_field("readQueueNums", queues)
        .with_field("writeQueueNums", queues)
        .with_field("perm", 6)
        .with_field("topicFilterType", "SINGLE_TAG")
        .with_field("topicSysFlag", 0)
        .with_field("order", false);
    let r = c
        .invoke_sync(Some(broker), req, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "UPDATE_AND_CREATE_TOPIC {topic}: {:?}", r.remark);
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
