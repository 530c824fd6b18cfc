//! Identity from the broker (`--broker ADDR`): scripted brokers whose id and role change under
//! the running daemon (what DLedger and controller elections look like), against the real
//! NameServer; the registration request as a scripted NameServer sees it (acting master).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::code::request::{
    CONTROLLER_GET_METADATA_INFO, CONTROLLER_GET_REPLICA_INFO,
};
use rmq_registrar::protocol::code::response::CONTROLLER_NOT_LEADER;
use rmq_registrar::protocol::RemotingCommand;

use crate::support::daemon::{base_config, follower, metric, Daemon};
use crate::support::namesrv::{cluster_brokers, route_brokers, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::scripted_peer::{ok_reply, Action, Peer};
use crate::support::wait::{eventually, eventually_within};

const TOPICS: &str = r#"{"topicConfigTable":{"RaftTopic":{"topicName":"RaftTopic","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false},"RaftTopic2":{"topicName":"RaftTopic2","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false}},"dataVersion":{"counter":3,"timestamp":1700000000000}}"#;

/// A broker answering GET_BROKER_CONFIG (Java form) with what `props` holds now, its topics,
/// and anything else with SUCCESS.
struct ScriptedBroker {
    peer: Peer,
    props: Arc<Mutex<String>>,
}

impl ScriptedBroker {
    async fn start() -> ScriptedBroker {
        Self::start_as(None).await
    }

    /// A broker whose GET_BROKER_CONFIG answers say Java 5.0.0 (which reports `brokerId` as
    /// its file had it).
    async fn start_java50() -> ScriptedBroker {
        Self::start_as(Some(rmq_registrar::protocol::code::VERSION_5_0_0)).await
    }

    async fn start_as(java_version: Option<i32>) -> ScriptedBroker {
        let props = Arc::new(Mutex::new(String::new()));
        let p = props.clone();
        let peer = Peer::start(move |cmd| match cmd.code {
            request::GET_BROKER_CONFIG => {
                let body = p.lock().unwrap().clone();
                let mut r = RemotingCommand::request(0).with_body(body.into_bytes());
                if let Some(v) = java_version {
                    r.language = rmq_registrar::protocol::LanguageCode::JAVA;
                    r.version = v;
                }
                Action::Reply(r)
            }
            request::GET_ALL_TOPIC_CONFIG => {
                Action::Reply(RemotingCommand::request(0).with_body(TOPICS.as_bytes().to_vec()))
            }
            _ => ok_reply(),
        })
        .await;
        ScriptedBroker { peer, props }
    }

    /// What the broker says of itself: DLedger group `name`, id and role as an election left
    /// them (`id` -1: none yet).
    fn set(&self, name: &str, id: i64, role: &str) {
        let (ip, port) = self.peer.addr.rsplit_once(':').unwrap();
        *self.props.lock().unwrap() = format!(
            "brokerClusterName=RaftCluster\nbrokerName={name}\nbrokerId={id}\nbrokerRole={role}\n\
             brokerIP1={ip}\nlistenPort={port}\nbrokerPermission=6\n\
             enableDLegerCommitLog=true\ndLegerSelfId=n0\nsecretKey=never-logged\n"
        );
    }

    /// What a Java 5.0.0 broker in controller mode says of itself: `brokerId=-1` (its file's,
    /// in every state), the role the controller gave it, and its controllers.
    fn set_controller_mode(&self, name: &str, role: &str, controllers: &str, namesrv: &str) {
        let (ip, port) = self.peer.addr.rsplit_once(':').unwrap();
        *self.props.lock().unwrap() = format!(
            "brokerClusterName=CtlCluster\nbrokerName={name}\nbrokerId=-1\nbrokerRole={role}\n\
             brokerIP1={ip}\nlistenPort={port}\nbrokerPermission=6\n\
             enableControllerMode=true\ncontrollerAddr={controllers}\nnamesrvAddr={namesrv}\n\
             secretKey=never-logged\n"
        );
    }
}

/// A controller that is not the leader: CONTROLLER_NOT_LEADER (2007) to everything.
async fn controller_follower() -> Peer {
    Peer::start(|cmd| {
        Action::Reply(RemotingCommand::response_to(
            cmd,
            CONTROLLER_NOT_LEADER,
            Some("The controller is not in leader state".into()),
        ))
    })
    .await
}

/// The controller leader of one broker name: CONTROLLER_GET_METADATA_INFO says it leads,
/// CONTROLLER_GET_REPLICA_INFO gives `ids` (address → id) as Java 5.0.0 does, -1 for an
/// address it does not know.
async fn controller_leader(name: &'static str, master: String, ids: Vec<(String, u64)>) -> Peer {
    let me = Arc::new(Mutex::new(String::new()));
    let m = me.clone();
    let peer = Peer::start(move |cmd| match cmd.code {
        CONTROLLER_GET_METADATA_INFO => Action::Reply(
            RemotingCommand::request(0)
                .with_field("group", "ctl")
                .with_field("controllerLeaderId", "n1")
                .with_field("controllerLeaderAddress", m.lock().unwrap().clone())
                .with_field("isLeader", "true")
                .with_field("peers", ""),
        ),
        CONTROLLER_GET_REPLICA_INFO if cmd.field("brokerName") == Some(name) => {
            let asked = cmd.field("brokerAddress").unwrap_or_default();
            let id = ids
                .iter()
                .find(|(a, _)| a == asked)
                .map_or(-1, |(_, id)| *id as i64);
            let set: Vec<&str> = ids.iter().map(|(a, _)| a.as_str()).collect();
            Action::Reply(
                RemotingCommand::request(0)
                    .with_field("masterAddress", &master)
                    .with_field("masterEpoch", 1)
                    .with_field("brokerId", id)
                    .with_body(
                        serde_json::json!({"syncStateSet": set, "syncStateSetEpoch": 1})
                            .to_string()
                            .into_bytes(),
                    ),
            )
        }
        CONTROLLER_GET_REPLICA_INFO => Action::Reply(RemotingCommand::response_to(
            cmd,
            2008,
            Some("Broker metadata is not existed".into()),
        )),
        _ => Action::Reply(RemotingCommand::request(3)),
    })
    .await;
    *me.lock().unwrap() = peer.addr.clone();
    peer
}

/// The broker's `brokerAddrs` in `ns` as `{id: addr}` (empty when it is not listed).
async fn addrs_of(ns: &str, name: &str) -> serde_json::Value {
    let c = client();
    let table = cluster_brokers(&c, ns).await;
    c.shutdown();
    table
        .get(name)
        .and_then(|b| b.get("brokerAddrs"))
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}))
}

/// Health interval + register.timeout, with room for a shared machine.
const FOLLOW_LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_dledger_leader_change_is_followed_on_the_namesrv_with_no_stale_entry() {
    let ns = NameServer::start().await;
    let (b1, b2) = (ScriptedBroker::start().await, ScriptedBroker::start().await);
    b1.set("raft-a", 0, "SYNC_MASTER");
    b2.set("raft-a", 2, "SLAVE");
    let d1 = follower(&b1.peer.addr, &ns.addr);
    let d2 = follower(&b2.peer.addr, &ns.addr);
    let first = serde_json::json!({"0": b1.peer.addr, "2": b2.peer.addr});
    eventually("both nodes registered", || async {
        addrs_of(&ns.addr, "raft-a").await == first
    })
    .await;
    // The leader moves: b2 is elected, b1 follows as id 1.
    b1.set("raft-a", 1, "SLAVE");
    b2.set("raft-a", 0, "SYNC_MASTER");
    let swapped = serde_json::json!({"0": b2.peer.addr, "1": b1.peer.addr});
    let took = eventually_within("the new leader registered as 0", FOLLOW_LIMIT, || async {
        addrs_of(&ns.addr, "raft-a").await == swapped
    })
    .await;
    eprintln!("leader change to NameServer route: {took:?}");
    // And back.
    b2.set("raft-a", 2, "SLAVE");
    b1.set("raft-a", 0, "SYNC_MASTER");
    eventually_within("the first leader again", FOLLOW_LIMIT, || async {
        addrs_of(&ns.addr, "raft-a").await == first
    })
    .await;
    for d in [&d1, &d2] {
        let logs = d.logs();
        assert!(
            !logs.contains("never-logged"),
            "the broker's config body was logged"
        );
        assert_eq!(
            logs.matches("the broker's id or role changed").count(),
            2,
            "{logs}"
        );
        let (_, text) = d.get("/metrics").await.unwrap();
        assert_eq!(metric(&text, "rmq_registrar_identity_changes_total"), 2.0);
    }
    let (_, text) = d1.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_id"), 0.0);
    assert!(
        !d1.logs().contains("UNREGISTER"),
        "no unregistration of an old id"
    );
}

#[tokio::test]
async fn no_id_yet_registers_nothing_until_the_election() {
    let ns = NameServer::start().await;
    let b = ScriptedBroker::start().await;
    b.set("raft-b", -1, "ASYNC_MASTER");
    let d = follower(&b.peer.addr, &ns.addr);
    eventually("/readyz says why", || async {
        d.get("/readyz")
            .await
            .is_some_and(|(code, text)| code == 503 && text.contains("has no id yet"))
    })
    .await;
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_id"), -1.0);
    assert_eq!(addrs_of(&ns.addr, "raft-b").await, serde_json::json!({}));
    b.set("raft-b", 0, "SYNC_MASTER");
    eventually_within("registered once elected", FOLLOW_LIMIT, || async {
        addrs_of(&ns.addr, "raft-b").await == serde_json::json!({"0": b.peer.addr})
    })
    .await;
    eventually("/readyz ready", || async {
        d.get("/readyz").await.is_some_and(|(code, _)| code == 200)
    })
    .await;
    // The id gone again (a controller-mode slave the controller has not given one yet, a node
    // before the next election): the gauge says -1, not the last id (before: a stale 0).
    b.set("raft-b", -1, "ASYNC_MASTER");
    eventually("rmq_registrar_broker_id -1", || async {
        d.get("/metrics")
            .await
            .is_some_and(|(_, t)| metric(&t, "rmq_registrar_broker_id") == -1.0)
    })
    .await;
}

#[tokio::test]
async fn acting_master_registrations_carry_the_flag_and_the_brokers_expiry() {
    let ns = Peer::start(|_| ok_reply()).await;
    let b = ScriptedBroker::start().await;
    b.set("acting", 1, "SLAVE");
    b.props
        .lock()
        .unwrap()
        .push_str("enableSlaveActingMaster=true\nbrokerNotActiveTimeoutMillis=7000\n");
    let _d = follower(&b.peer.addr, &ns.addr);
    let reg = loop {
        let cmd = ns.next_received().await;
        if cmd.code == request::REGISTER_BROKER {
            break cmd;
        }
    };
    let field = |k: &str| reg.ext_fields.get(k).unwrap_or_default().to_string();
    assert_eq!(field("brokerId"), "1");
    assert_eq!(field("brokerName"), "acting");
    assert_eq!(field("enableActingMaster"), "true");
    assert_eq!(field("heartbeatTimeoutMillis"), "7000");
    assert_eq!(field("brokerAddr"), b.peer.addr);
}

#[tokio::test]
async fn the_namesrv_ignores_a_one_topic_registration_of_an_id_it_does_not_list() {
    // Measured: as Java's RouteInfoManager does (the case of one topic registered on its own),
    // the Rust NameServer drops a registration that carries exactly one topic from an id a
    // listed broker name does not have yet, and answers SUCCESS. Real brokers carry their
    // system topics; a test broker with one topic is never listed beside its master.
    let ns = NameServer::start().await;
    let start = |id: u32, topics: &[&str], own_topic: bool| {
        let ns = ns.addr.clone();
        let mut inline: String = topics
            .iter()
            .map(|t| format!("[[broker.topics.inline]]\nname = {t:?}\n"))
            .collect();
        if !own_topic {
            inline.insert_str(0, "[broker.topics]\nbroker_topic = false\n");
        }
        let port = 20911 + 1000 * id;
        Daemon::start(move |_, http| {
            let mut c = base_config("pin", http, &[&ns], &format!("id = {id}"))
                .replace("127.0.0.1:10911", &format!("127.0.0.1:{port}"));
            c.push_str(&inline);
            c
        })
    };
    let _master = start(0, &["T1", "T2"], true);
    eventually("the master listed", || async {
        addrs_of(&ns.addr, "pin").await == serde_json::json!({"0": "127.0.0.1:20911"})
    })
    .await;
    let one = start(1, &["T1"], false);
    let _two = start(2, &["T1", "T2"], true);
    // One inline topic with the topic named after the broker (the default): two, listed.
    let _three = start(3, &["T1"], true);
    let listed =
        serde_json::json!({"0": "127.0.0.1:20911", "2": "127.0.0.1:22911", "3": "127.0.0.1:23911"});
    eventually("the two-topic slave listed", || async {
        addrs_of(&ns.addr, "pin").await == listed
    })
    .await;
    eventually("the one-topic slave's round answered", || async {
        one.logs().contains("registration round ok=1")
    })
    .await;
    assert_eq!(addrs_of(&ns.addr, "pin").await, listed);
}

fn check_config(broker: &str, extra_env: &[(&str, &str)]) -> (std::process::Output, String) {
    check_config_with(&["--broker", broker, "check-config"], extra_env)
}

/// The binary with `args` and these variables besides a clean environment.
fn check_config_with(args: &[&str], extra_env: &[(&str, &str)]) -> (std::process::Output, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rmq-registrar"));
    cmd.env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out, text)
}

#[tokio::test]
async fn check_config_names_the_broker_as_the_source_of_what_it_took_from_there() {
    let b = ScriptedBroker::start().await;
    b.set("raft-c", 2, "SLAVE");
    b.props
        .lock()
        .unwrap()
        .push_str("namesrvAddr=127.0.0.1:9876;127.0.0.1:9877\n");
    let addr = b.peer.addr.clone();
    let (out, text) = tokio::task::spawn_blocking(move || {
        check_config(&addr, &[("RMQ_REGISTRAR_BROKER__ADDR", "10.1.1.1:10911")])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{text}");
    let from = format!("# the broker at {}", b.peer.addr);
    for line in [
        format!("broker.name = \"raft-c\"    {from}"),
        format!("broker.id = 2    {from}"),
        format!("broker.cluster = \"RaftCluster\"    {from}"),
        format!("namesrv.addrs = [\"127.0.0.1:9876\", \"127.0.0.1:9877\"]    {from}"),
    ] {
        assert!(text.contains(&line), "no {line:?} in\n{text}");
    }
    assert!(
        text.contains(
            "broker.addr = \"10.1.1.1:10911\"    # environment variable RMQ_REGISTRAR_BROKER__ADDR"
        ),
        "the operator's value wins:\n{text}"
    );
    assert!(
        text.contains("broker.identity = \"broker\"    # --broker on the command line"),
        "{text}"
    );
    assert!(!text.contains("never-logged"), "{text}");
    // A broker that cannot be asked: said so, not an error (the daemon asks at run time).
    let gone = ClosedPort::new();
    let (out, text) = tokio::task::spawn_blocking(move || check_config(gone.addr(), &[]))
        .await
        .unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("broker.id = ") && l.contains("at run time (cannot ask it now")),
        "{text}"
    );
}

/// `check-config --toml` in `--broker` mode writes what loads back to the same configuration:
/// what the broker gives is left out unless the operator set it (written, `broker.id` was
/// refused and an empty name and address overrode the broker's).
#[tokio::test]
async fn check_config_toml_with_the_identity_from_the_broker_loads_back_to_it() {
    let b = ScriptedBroker::start().await;
    b.set("raft-t", 2, "SLAVE");
    let addr = b.peer.addr.clone();
    let pod = [("RMQ_REGISTRAR_BROKER__ADDR", "10.1.1.1:10911")];
    let (listing, toml_text) = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let (out, listing) = check_config(&addr, &pod);
            assert!(out.status.success(), "{listing}");
            let (out, toml_text) =
                check_config_with(&["--broker", &addr, "check-config", "--toml"], &pod);
            assert!(out.status.success(), "{toml_text}");
            (listing, toml_text)
        })
        .await
        .unwrap()
    };
    for line in toml_text.lines() {
        for key in ["id", "name", "cluster", "split_size", "heartbeat_timeout"] {
            assert!(!line.starts_with(&format!("{key} =")), "{toml_text}");
        }
    }
    assert!(
        toml_text.contains("addr = \"10.1.1.1:10911\""),
        "the operator's value stays: {toml_text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kept.toml");
    std::fs::write(&file, &toml_text).unwrap();
    let file = file.display().to_string();
    let values = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split("    # ").next().unwrap_or("").to_string())
            .collect()
    };
    // Loaded back with the flag as before, and alone (the file says where the broker is).
    for args in [
        vec![
            "--broker",
            addr.as_str(),
            "--config",
            file.as_str(),
            "check-config",
        ],
        vec!["--config", file.as_str(), "check-config"],
    ] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        let (out, again) = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            check_config_with(&args, &[])
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{toml_text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(values(&listing), values(&again), "{toml_text}");
        assert!(
            again.contains(&format!(
                "broker.name = \"raft-t\"    # the broker at {addr}"
            )),
            "{again}"
        );
    }
}

#[tokio::test]
async fn the_command_line_sidecar_follows_the_broker_with_its_own_namesrv_list() {
    let ns = NameServer::start().await;
    let b = ScriptedBroker::start().await;
    b.set("raft-d", 0, "SYNC_MASTER");
    b.props
        .lock()
        .unwrap()
        .push_str(&format!("namesrvAddr={}\n", ns.addr));
    // `rmq-registrar --broker ADDR` and an HTTP port: nothing else.
    let d = Daemon::start_with(&["--broker", &b.peer.addr], |_, http| {
        format!("[http]\nlisten = \"{http}\"\n")
    });
    eventually("registered with the broker's NameServer", || async {
        addrs_of(&ns.addr, "raft-d").await == serde_json::json!({"0": b.peer.addr})
    })
    .await;
    // The start line says where the identity comes from, not empty values.
    let start = d
        .logs()
        .lines()
        .find(|l| l.contains("rmq-registrar starting"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        start.contains(&format!("identity_from={}", b.peer.addr)) && !start.contains("broker= "),
        "{start}"
    );
    let c = client();
    assert_eq!(
        route_brokers(&c, &ns.addr, "RaftTopic").await,
        vec!["raft-d".to_string()],
        "the broker's own topics"
    );
    // The list arrives with the broker's answer: no WARN that none is known while it is on
    // its way.
    assert!(
        !d.logs().contains("no NameServer known yet"),
        "{}",
        d.logs()
    );
    d.signal("TERM");
    eventually("unregistered at SIGTERM", || async {
        addrs_of(&ns.addr, "raft-d").await == serde_json::json!({})
    })
    .await;
}

#[tokio::test]
async fn a_broker_restarted_as_another_broker_is_one_error_a_metric_and_not_ready() {
    let ns = NameServer::start().await;
    let b = ScriptedBroker::start().await;
    b.set("place-a", 0, "SYNC_MASTER");
    let d = follower(&b.peer.addr, &ns.addr);
    eventually("registered", || async {
        addrs_of(&ns.addr, "place-a").await == serde_json::json!({"0": b.peer.addr})
    })
    .await;
    eventually("/readyz 200", || async {
        d.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    // The broker comes back under another brokerName at the same address.
    b.set("place-b", 0, "SYNC_MASTER");
    eventually("/readyz says why", || async {
        d.get("/readyz").await.is_some_and(|(s, body)| {
            s == 503 && body.contains("place-b") && body.contains("no longer describes it")
        })
    })
    .await;
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_identity_mismatch"), 1.0);
    // Six more checks at 500 ms: still one ERROR, not one per check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let errors = d
        .logs()
        .matches("the broker reports another cluster, name or address")
        .count();
    assert_eq!(errors, 1, "{}", d.logs());
    assert_eq!(
        addrs_of(&ns.addr, "place-a").await,
        serde_json::json!({"0": b.peer.addr}),
        "the registered name is kept"
    );
    // Back as it was: ready again, the gauge at 0.
    b.set("place-a", 0, "SYNC_MASTER");
    eventually("/readyz 200 again", || async {
        d.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_identity_mismatch"), 0.0);
}

/// A NameServer that answers everything as Java 5.0 does, which removes by id on UNREGISTER.
async fn java50_namesrv() -> Peer {
    Peer::start(|_| {
        let mut r = RemotingCommand::request(0);
        r.language = rmq_registrar::protocol::LanguageCode::JAVA;
        r.version = rmq_registrar::protocol::code::VERSION_5_0_0;
        Action::Reply(r)
    })
    .await
}

/// A Java 5.0 NameServer (it removes by id on UNREGISTER), one answering as Rust (by address),
/// and a sidecar following a master `name`, registered with both.
async fn by_id_and_by_address(name: &str) -> (Peer, Peer, ScriptedBroker, Daemon) {
    let java50 = java50_namesrv().await;
    let rust = Peer::start(|_| ok_reply()).await;
    let b = ScriptedBroker::start().await;
    b.set(name, 0, "SYNC_MASTER");
    let (j, r) = (java50.addr.clone(), rust.addr.clone());
    let d = Daemon::start_with(&["--broker", &b.peer.addr], move |_, http| {
        format!(
            "[broker.health]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\
             [namesrv]\naddrs = [{j:?}, {r:?}]\n[http]\nlisten = \"{http}\"\n"
        )
    });
    eventually("registered with both", || async {
        d.logs().contains("registration round ok=2 total=2")
    })
    .await;
    (java50, rust, b, d)
}

/// The goodbye closed the connection to the NameServer that removes by id, and asked the one
/// that removes by address.
fn said_goodbye_by_address(java50: &Peer, rust: &Peer, d: &Daemon) {
    let codes = |p: &Peer| -> Vec<i32> { p.drain_received().iter().map(|c| c.code).collect() };
    assert!(
        !codes(java50).contains(&request::UNREGISTER_BROKER),
        "{}",
        d.logs()
    );
    assert!(
        codes(rust).contains(&request::UNREGISTER_BROKER),
        "{}",
        d.logs()
    );
    assert!(
        d.logs()
            .contains("closing the connection instead of UNREGISTER"),
        "{}",
        d.logs()
    );
}

#[tokio::test]
async fn a_down_broker_is_not_unregistered_by_id_where_a_namesrv_removes_by_id() {
    // A Java 5.0 NameServer removes by id on UNREGISTER: with ids that move, the last id may be
    // the new master's. There the connection is closed instead (it drops the broker by
    // address); a NameServer that removes by address (here one answering as Rust) is asked.
    let (java50, rust, b, d) = by_id_and_by_address("raft-e").await;
    // The broker stops answering with an identity: after 3 failed checks it is down.
    b.props.lock().unwrap().clear();
    eventually("withdrawn while down", || async {
        d.logs().contains("broker unregistered while it is down")
    })
    .await;
    said_goodbye_by_address(&java50, &rust, &d);
}

#[tokio::test]
async fn sigterm_is_not_an_unregister_by_id_where_a_namesrv_removes_by_id() {
    // The same rule as when the broker goes down, at SIGTERM: a lagging Java 5.0 NameServer
    // would remove a newly elected master by id, so there the connection is closed instead.
    let (java50, rust, _b, mut d) = by_id_and_by_address("raft-t").await;
    d.signal("TERM");
    let (status, _) = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{}", d.logs());
    said_goodbye_by_address(&java50, &rust, &d);
}

#[tokio::test]
async fn in_config_mode_too_sigterm_closes_the_connection_where_a_namesrv_removes_by_id() {
    // With the id from the file, UNREGISTER by id at a Java 5.0 NameServer would remove
    // whoever holds the id there now: a pod that took it over, a stray registration.
    let java50 = java50_namesrv().await;
    let rust = Peer::start(|_| ok_reply()).await;
    let (j, r) = (java50.addr.clone(), rust.addr.clone());
    let mut d = Daemon::start(move |_, http| base_config("file-t", http, &[&j, &r], ""));
    eventually("registered with both", || async {
        d.logs().contains("registration round ok=2 total=2")
    })
    .await;
    d.signal("TERM");
    let (status, _) = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{}", d.logs());
    said_goodbye_by_address(&java50, &rust, &d);
}

#[tokio::test]
async fn acting_master_against_a_namesrv_that_supports_it() {
    let ns = NameServer::start_with(ClosedPort::new(), "supportActingMaster=true\n").await;
    let (m, s) = (ScriptedBroker::start().await, ScriptedBroker::start().await);
    for (b, id, role) in [(&m, 0, "SYNC_MASTER"), (&s, 1, "SLAVE")] {
        b.set("acting-a", id, role);
        b.props
            .lock()
            .unwrap()
            .push_str("enableSlaveActingMaster=true\nbrokerNotActiveTimeoutMillis=10000\n");
    }
    let dm = follower(&m.peer.addr, &ns.addr);
    let _ds = follower(&s.peer.addr, &ns.addr);
    let both = serde_json::json!({"0": m.peer.addr, "1": s.peer.addr});
    eventually("master and slave listed", || async {
        addrs_of(&ns.addr, "acting-a").await == both
    })
    .await;
    let c = client();
    let table = cluster_brokers(&c, &ns.addr).await;
    assert_eq!(table["acting-a"]["enableActingMaster"], true, "{table}");
    // The master goes away: its sidecar withdraws it; the slave stays, acting.
    m.props.lock().unwrap().clear();
    eventually("the master withdrawn", || async {
        dm.logs().contains("broker unregistered while it is down")
    })
    .await;
    eventually("only the slave left", || async {
        addrs_of(&ns.addr, "acting-a").await == serde_json::json!({"1": s.peer.addr})
    })
    .await;
    let req =
        RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", "RaftTopic");
    let r = c
        .invoke_sync(Some(&ns.addr), req, Duration::from_secs(5))
        .await
        .unwrap();
    let route: serde_json::Value =
        serde_json::from_slice(&r.body.unwrap_or_default()).unwrap_or_default();
    // The NameServer presents the acting slave as the master, read-only.
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"],
        serde_json::json!({"0": s.peer.addr}),
        "{route}"
    );
    assert_eq!(route["queueDatas"][0]["perm"], 4, "{route}");
}

#[tokio::test]
async fn a_java_5_0_slave_behind_a_5_1_1_controller_takes_its_id_from_the_sync_state_data() {
    // 5.1.1+ answers CONTROLLER_GET_REPLICA_INFO about the group (masterBrokerId, no brokerId);
    // the address's id is in CONTROLLER_GET_SYNC_STATE_DATA.
    let ns = NameServer::start().await;
    let (m, s) = (
        ScriptedBroker::start_java50().await,
        ScriptedBroker::start_java50().await,
    );
    let (ma, sa) = (m.peer.addr.clone(), s.peer.addr.clone());
    let me = Arc::new(Mutex::new(String::new()));
    let who = me.clone();
    let leader = Peer::start(move |cmd| match cmd.code {
        CONTROLLER_GET_METADATA_INFO => Action::Reply(
            RemotingCommand::request(0)
                .with_field("controllerLeaderAddress", who.lock().unwrap().clone())
                .with_field("isLeader", "true"),
        ),
        CONTROLLER_GET_REPLICA_INFO => Action::Reply(
            RemotingCommand::request(0)
                .with_field("masterBrokerId", 1)
                .with_field("masterAddress", &ma)
                .with_field("masterEpoch", 1)
                .with_body(br#"{"syncStateSet":[1,2],"syncStateSetEpoch":1}"#.to_vec()),
        ),
        1006 => {
            let info = serde_json::json!({"replicasInfoTable": {"ctl-b": {
                "masterBrokerId": 1, "masterAddress": ma, "masterEpoch": 1, "syncStateSetEpoch": 1,
                "inSyncReplicas": [
                    {"brokerName": "ctl-b", "brokerId": 1, "brokerAddress": ma, "alive": true},
                    {"brokerName": "ctl-b", "brokerId": 2, "brokerAddress": sa, "alive": true}
                ],
                "notInSyncReplicas": []
            }}});
            Action::Reply(RemotingCommand::request(0).with_body(info.to_string().into_bytes()))
        }
        _ => Action::Reply(RemotingCommand::request(3)),
    })
    .await;
    *me.lock().unwrap() = leader.addr.clone();
    m.set_controller_mode("ctl-b", "SYNC_MASTER", &leader.addr, &ns.addr);
    s.set_controller_mode("ctl-b", "SLAVE", &leader.addr, &ns.addr);
    let _dm = follower(&m.peer.addr, &ns.addr);
    let ds = follower(&s.peer.addr, &ns.addr);
    let both = serde_json::json!({"0": m.peer.addr, "2": s.peer.addr});
    eventually(
        "the master as 0, the slave as its controller's 2",
        || async { addrs_of(&ns.addr, "ctl-b").await == both },
    )
    .await;
    let (_, text) = ds.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_id"), 2.0);
    let asked: Vec<i32> = leader.drain_received().iter().map(|c| c.code).collect();
    assert!(asked.contains(&1006), "{asked:?}");
}

#[tokio::test]
async fn a_java_5_0_controller_slave_is_registered_with_the_id_its_controller_leader_gave() {
    let ns = NameServer::start().await;
    let (m, s) = (
        ScriptedBroker::start_java50().await,
        ScriptedBroker::start_java50().await,
    );
    let not_leader = controller_follower().await;
    // The first master's address got 1 when it joined, the slave's 2 (measured on 5.0.0).
    let leader = controller_leader(
        "ctl-a",
        m.peer.addr.clone(),
        vec![(m.peer.addr.clone(), 1), (s.peer.addr.clone(), 2)],
    )
    .await;
    let controllers = format!("{};{}", not_leader.addr, leader.addr);
    m.set_controller_mode("ctl-a", "SYNC_MASTER", &controllers, &ns.addr);
    s.set_controller_mode("ctl-a", "SLAVE", &controllers, &ns.addr);
    let _dm = follower(&m.peer.addr, &ns.addr);
    let ds = follower(&s.peer.addr, &ns.addr);
    let both = serde_json::json!({"0": m.peer.addr, "2": s.peer.addr});
    eventually(
        "the master as 0, the slave as its controller's 2",
        || async { addrs_of(&ns.addr, "ctl-a").await == both },
    )
    .await;
    let (_, text) = ds.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_id"), 2.0);
    // The follower was asked first and passed over; the leader was asked for the slave's own
    // address under its name.
    let codes: Vec<i32> = not_leader.drain_received().iter().map(|c| c.code).collect();
    assert!(codes.contains(&CONTROLLER_GET_METADATA_INFO), "{codes:?}");
    assert!(!codes.contains(&CONTROLLER_GET_REPLICA_INFO), "{codes:?}");
    let asked: Vec<RemotingCommand> = leader
        .drain_received()
        .into_iter()
        .filter(|c| c.code == CONTROLLER_GET_REPLICA_INFO)
        .collect();
    assert!(!asked.is_empty());
    for c in &asked {
        assert_eq!(c.field("brokerName"), Some("ctl-a"));
        assert_eq!(c.field("brokerAddress"), Some(s.peer.addr.as_str()));
    }
    assert!(!ds.logs().contains("never-logged"));

    // The one-shot commands see the same id: check-config shows it, unregister sends it.
    let oneshot_ns = Peer::start(|_| ok_reply()).await;
    s.set_controller_mode("ctl-a", "SLAVE", &controllers, &oneshot_ns.addr);
    let addr = s.peer.addr.clone();
    let (out, text) = tokio::task::spawn_blocking(move || check_config(&addr, &[]))
        .await
        .unwrap();
    assert!(out.status.success(), "{text}");
    let line = format!("broker.id = 2    # the broker at {}", s.peer.addr);
    assert!(text.contains(&line), "no {line:?} in\n{text}");
    let addr = s.peer.addr.clone();
    let out = tokio::task::spawn_blocking(move || oneshot(&addr, "unregister"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unregister = oneshot_ns
        .drain_received()
        .into_iter()
        .find(|c| c.code == request::UNREGISTER_BROKER)
        .expect("an UNREGISTER");
    assert_eq!(unregister.field("brokerId"), Some("2"));
    assert_eq!(unregister.field("brokerAddr"), Some(s.peer.addr.as_str()));
}

#[tokio::test]
async fn a_java_5_0_controller_slave_no_controller_answers_for_is_not_registered_and_says_which_were_tried(
) {
    let ns = NameServer::start().await;
    let s = ScriptedBroker::start_java50().await;
    let not_leader = controller_follower().await;
    let gone = ClosedPort::new();
    let controllers = format!("{};{}", not_leader.addr, gone.addr());
    s.set_controller_mode("ctl-b", "SLAVE", &controllers, &ns.addr);
    let d = follower(&s.peer.addr, &ns.addr);
    let (a, b) = (not_leader.addr.clone(), gone.addr().to_string());
    eventually("/readyz names the controllers tried", || async {
        d.get("/readyz").await.is_some_and(|(code, text)| {
            code == 503
                && text.contains("no controller gave it")
                && text.contains(&format!("{a}: not the leader (code 2007)"))
                && text.contains(&b)
        })
    })
    .await;
    assert_eq!(addrs_of(&ns.addr, "ctl-b").await, serde_json::json!({}));
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_id"), -1.0);
}

/// `rmq-registrar --broker ADDR COMMAND`, with no configuration but the broker's.
fn oneshot(broker: &str, command: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
        .env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .args(["--broker", broker, command])
        .output()
        .unwrap()
}
