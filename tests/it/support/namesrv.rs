//! The real NameServer (`rocketmq-namesrv-rust`) as a test peer, and what the tests ask it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rmq_registrar::broker::body::broker_addr_table;
use rmq_registrar::client::RemotingClient;
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use super::ports::ClosedPort;
use super::programs::peer_binary;
use super::remoting::client;

/// The real NameServer (`rocketmq-namesrv-rust`) on 127.0.0.1, on a port it holds (a
/// [`ClosedPort`]) for as long as it lives; killed on drop.
pub struct NameServer {
    pub addr: String,
    child: Child,
    home: tempfile::TempDir,
    /// Held while the process runs, and handed back by [`kill`](Self::kill) so that a test can
    /// start the next one on the same address.
    port: Option<ClosedPort>,
}

impl Drop for NameServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start attempts on new ports before [`NameServer::start`] gives up.
const START_ATTEMPTS: usize = 3;

impl NameServer {
    /// Starts a NameServer on a port of its own and waits until it answers
    /// GET_BROKER_CLUSTER_INFO. A process that exits before it answers is started again on a new
    /// port (the port is held, so this is for failures of its own).
    pub async fn start() -> NameServer {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(ClosedPort::new(), "").await {
                Ok(ns) => return ns,
                Err(log) => failures.push(log),
            }
        }
        panic!(
            "the NameServer did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n---\n")
        );
    }

    /// Starts a NameServer bound to `ip` on the port `held` holds (several NameServers on one
    /// port, each on its own loopback address: the NameServers behind one name).
    pub async fn start_bound(ip: &str, held: &ClosedPort) -> NameServer {
        let addr = format!("{ip}:{}", held.port());
        Self::launch(ip, held.port(), None, "")
            .await
            .unwrap_or_else(|log| panic!("the NameServer on {addr} exited:\n{log}"))
    }

    /// Starts a NameServer on `port` (e.g. the one [`kill`](Self::kill) handed back).
    pub async fn start_on(port: ClosedPort) -> NameServer {
        Self::start_with(port, "").await
    }

    /// Started on `port` with `-c FILE` holding `properties` (e.g. `supportActingMaster=true`).
    pub async fn start_with(port: ClosedPort, properties: &str) -> NameServer {
        let addr = port.addr().to_string();
        Self::try_start(port, properties)
            .await
            .unwrap_or_else(|log| panic!("the NameServer on {addr} exited:\n{log}"))
    }

    /// The started NameServer, or its log when it exited before answering.
    async fn try_start(port: ClosedPort, properties: &str) -> Result<NameServer, String> {
        let number = port.port();
        Self::launch("127.0.0.1", number, Some(port), properties).await
    }

    /// Started on `ip:port`, holding `held` while it lives.
    async fn launch(
        ip: &str,
        port: u16,
        held: Option<ClosedPort>,
        properties: &str,
    ) -> Result<NameServer, String> {
        let home = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("namesrv.log")).unwrap();
        let mut cmd = Command::new(peer_binary("rocketmq-namesrv-rust", "RMQ_NAMESRV_BIN"));
        if !properties.is_empty() {
            let ini = home.path().join("namesrv.ini");
            std::fs::write(&ini, properties).unwrap();
            cmd.arg("-c").arg(ini);
        }
        let child = cmd
            .args(["--listenPort", &port.to_string()])
            .args(["--bindAddress", ip])
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
        let mut ns = NameServer {
            addr: format!("{ip}:{port}"),
            child,
            home,
            port: held,
        };
        ns.wait_ready().await?;
        Ok(ns)
    }

    /// Waits until it answers; its log when the process exits first.
    async fn wait_ready(&mut self) -> Result<(), String> {
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
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                probe.shutdown();
                return Err(format!("exit {status}:\n{}", self.logs()));
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "NameServer at {} not ready in 60 s:\n{}",
                self.addr,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Its process id (for a helper script that stops it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process; its port, still held, for a NameServer started on it again.
    pub fn kill(mut self) -> ClosedPort {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.port.take().expect("held until killed")
    }

    /// Its log so far.
    fn logs(&self) -> String {
        std::fs::read_to_string(self.home.path().join("namesrv.log")).unwrap_or_default()
    }
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
