//! End-to-end tests of the built `rmq-registrar` binary against real NameServers.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::protocol::code::request;
use tokio::time::Instant;

use crate::support::daemon::{base_config, metric, Daemon, ANY_PORT};
use crate::support::http::http_server;
use crate::support::namesrv::{cluster_brokers, has_broker, route_brokers, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::scripted_peer::{ok_reply, Action, Peer};
use crate::support::wait::{eventually, eventually_within};

const JAVA_TOPICS: &str = r#"{
	"dataVersion":{
		"counter":12,
		"stateVersion":0,
		"timestamp":1700000000000
	},
	"topicConfigTable":{
		"JavaTopicA":{
			"attributes":{},
			"order":false,
			"perm":6,
			"readQueueNums":8,
			"topicFilterType":"SINGLE_TAG",
			"topicName":"JavaTopicA",
			"topicSysFlag":0,
			"writeQueueNums":8
		},
		"JavaTopicB":{
			"order":false,
			"perm":6,
			"readQueueNums":4,
			"topicFilterType":"SINGLE_TAG",
			"topicName":"JavaTopicB",
			"topicSysFlag":0,
			"writeQueueNums":4
		}
	}
}"#;

#[tokio::test]
async fn registers_java_topics_with_two_namesrvs_and_reports_ready_and_metrics() {
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    let start = Instant::now();
    let d = Daemon::start(|dir, http| {
        std::fs::write(dir.join("topics.json"), JAVA_TOPICS).unwrap();
        let extra = format!("[broker.topics]\nfile = {:?}\n", dir.join("topics.json"));
        base_config("e2e-two", http, &[&a.addr, &b.addr], &extra)
    });
    let probe = client();
    for ns in [&a.addr, &b.addr] {
        eventually_within("broker visible", Duration::from_secs(10), || {
            has_broker(&probe, ns, "e2e-two")
        })
        .await;
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "visible only after {took:?}");
    for ns in [&a.addr, &b.addr] {
        assert_eq!(
            route_brokers(&probe, ns, "JavaTopicA").await,
            vec!["e2e-two"]
        );
        assert_eq!(
            route_brokers(&probe, ns, "JavaTopicB").await,
            vec!["e2e-two"]
        );
    }
    eventually("/readyz 200", || async {
        d.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    assert_eq!(d.get("/healthz").await.unwrap().0, 200);
    let (status, text) = d.get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse");
    let names: std::collections::HashSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for m in [
        "rmq_registrar_registrations_total",
        "rmq_registrar_registration_duration_seconds",
        "rmq_registrar_last_registration_success_timestamp_seconds",
        "rmq_registrar_registered",
        "rmq_registrar_unregistrations_total",
        "rmq_registrar_namesrv_list_size",
        "rmq_registrar_address_refreshes_total",
        "rmq_registrar_remoting_requests_total",
        "rmq_registrar_remoting_in_flight_requests",
        "rmq_registrar_request_timeouts_total",
        "rmq_registrar_remoting_open_connections",
        "rmq_registrar_broker_up",
        "rmq_registrar_broker_health_checks_total",
        "rmq_registrar_register_interval_seconds",
        "rmq_registrar_remoting_unexpected_replies_total",
        "rmq_registrar_remoting_send_queue_full_total",
        "rmq_registrar_remoting_replies_dropped_total",
        "rmq_registrar_task_restarts_total",
        "rmq_registrar_build_info",
        "rmq_registrar_topics",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(m)),
            "missing {m} in:\n{text}"
        );
    }
    let registered: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rmq_registrar_registered")
        .collect();
    assert_eq!(registered.len(), 2);
    assert!(text.contains(&format!(
        "rmq_registrar_remoting_requests_total{{code=\"{}\",outcome=\"ok\"}}",
        request::REGISTER_BROKER
    )));
    // The file's two and the one named after the broker, as a Java broker advertises it.
    assert!(text.contains("rmq_registrar_topics 3"));
}

#[tokio::test]
async fn readyz_flips_to_200_after_the_first_success() {
    // The NameServer comes up after the daemon: not ready until it registers.
    let port = ClosedPort::new();
    let d = Daemon::start(|_, http| base_config("e2e-ready", http, &[port.addr()], ""));
    eventually("http up", || async { d.get("/healthz").await.is_some() }).await;
    assert_eq!(d.get("/readyz").await.unwrap().0, 503);
    let ns = NameServer::start_on(port).await;
    eventually("/readyz 200", || async {
        d.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    assert!(has_broker(&client(), &ns.addr, "e2e-ready").await);
}

#[tokio::test]
async fn sigterm_unregisters_from_every_namesrv_within_one_timeout() {
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    let hole = Peer::start(|_| Action::Silent).await;
    let mut d =
        Daemon::start(|_, http| base_config("e2e-term", http, &[&a.addr, &b.addr, &hole.addr], ""));
    let probe = client();
    for ns in [&a.addr, &b.addr] {
        eventually("broker visible", || has_broker(&probe, ns, "e2e-term")).await;
    }
    d.signal("TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit {status:?}:\n{}", d.logs());
    assert!(
        took < Duration::from_secs(3),
        "shutdown took {took:?} (timeout 2 s + 1 s)"
    );
    for ns in [&a.addr, &b.addr] {
        assert!(!has_broker(&probe, ns, "e2e-term").await);
    }
    // Every NameServer was told, the black-holed one included.
    let seen = hole.drain_received();
    assert!(
        seen.iter().any(|c| c.code == request::UNREGISTER_BROKER),
        "no UNREGISTER reached the black hole"
    );
    let logs = d.logs();
    assert!(
        logs.contains("unregistered; bye") && logs.contains("ok=2") && logs.contains("total=3"),
        "{logs}"
    );
}

#[tokio::test]
async fn restarted_namesrv_sees_the_broker_again_within_2s() {
    let a = NameServer::start().await;
    let d = Daemon::start(|_, http| base_config("e2e-restart", http, &[&a.addr], ""));
    let probe = client();
    eventually("broker visible", || {
        has_broker(&probe, &a.addr, "e2e-restart")
    })
    .await;
    let port = a.kill();
    let addr = port.addr().to_string();
    let restarted = NameServer::start_on(port).await;
    assert_eq!(restarted.addr, addr);
    let took = eventually_within("broker back", Duration::from_secs(10), || {
        has_broker(&probe, &addr, "e2e-restart")
    })
    .await;
    assert!(
        took < Duration::from_secs(2),
        "broker back only after {took:?}"
    );
    // A restarted NameServer lost the broker: the re-registration is counted (what the
    // runbook and the RmqRegistrarNamesrvLosesBroker alert read), whichever path made it.
    let series = format!("rmq_registrar_reregistrations_total{{namesrv=\"{addr}\"}}");
    eventually("re-registration counted", || async {
        d.get("/metrics")
            .await
            .is_some_and(|(_, t)| metric(&t, &series) >= 1.0)
    })
    .await;
}

#[tokio::test]
async fn sighup_with_a_changed_topic_list_registers_the_new_topics() {
    let ns = NameServer::start().await;
    let topic = |n: &str| format!("[[broker.topics.inline]]\nname = \"{n}\"\n");
    let d = Daemon::start(|_, http| {
        base_config(
            "e2e-hup",
            http,
            &[&ns.addr],
            &(topic("HupA") + &topic("HupB")),
        )
    });
    let probe = client();
    eventually("HupA routed", || async {
        !route_brokers(&probe, &ns.addr, "HupA").await.is_empty()
    })
    .await;
    assert!(route_brokers(&probe, &ns.addr, "HupC").await.is_empty());
    let cfg = base_config(
        "e2e-hup",
        ANY_PORT,
        &[&ns.addr],
        &(topic("HupA") + &topic("HupB") + &topic("HupC")),
    );
    std::fs::write(d.dir.path().join("rmq.toml"), cfg).unwrap();
    d.signal("HUP");
    eventually("HupC routed", || async {
        !route_brokers(&probe, &ns.addr, "HupC").await.is_empty()
    })
    .await;
    // A broken config on SIGHUP is reported and the old one kept.
    std::fs::write(d.dir.path().join("rmq.toml"), "[broker\nbad").unwrap();
    d.signal("HUP");
    eventually("rejection logged", || async {
        d.logs().contains("new configuration rejected")
    })
    .await;
    assert_eq!(d.get("/healthz").await.unwrap().0, 200);
}

#[tokio::test]
async fn topics_file_edits_are_registered_and_a_broken_file_keeps_the_last_topics() {
    let ns = NameServer::start().await;
    let d = Daemon::start(|dir, http| {
        std::fs::write(dir.join("topics.json"), JAVA_TOPICS).unwrap();
        let extra = format!("[broker.topics]\nfile = {:?}\n", dir.join("topics.json"));
        base_config("e2e-file", http, &[&ns.addr], &extra)
    });
    let probe = client();
    eventually("JavaTopicA routed", || async {
        !route_brokers(&probe, &ns.addr, "JavaTopicA")
            .await
            .is_empty()
    })
    .await;
    let file = d.dir.path().join("topics.json");
    std::fs::write(&file, JAVA_TOPICS.replace("JavaTopicB", "JavaTopicC")).unwrap();
    eventually("JavaTopicC routed", || async {
        !route_brokers(&probe, &ns.addr, "JavaTopicC")
            .await
            .is_empty()
    })
    .await;
    std::fs::write(&file, "{ broken").unwrap();
    eventually("error logged", || async {
        d.logs().contains("topics file unusable")
    })
    .await;
    assert!(!route_brokers(&probe, &ns.addr, "JavaTopicC")
        .await
        .is_empty());
}

#[tokio::test]
async fn address_server_list_change_is_picked_up() {
    let (a, b) = (NameServer::start().await, NameServer::start().await);
    // A scripted NameServer in the first list, to see the UNREGISTER it gets when it leaves.
    let leaving = Peer::start(|_| ok_reply()).await;
    let first = format!("{};{}", a.addr, leaving.addr);
    let script = Arc::new(Mutex::new((200, first, Duration::ZERO)));
    let (http_addr, _server) = http_server(script.clone()).await;
    let d = Daemon::start(|_, http| {
        let cfg = base_config("e2e-addr", http, &[], "");
        let source = format!(
            "address_server = \"http://{http_addr}/rocketmq/nsaddr\"\nrefresh_interval = \"1s\""
        );
        cfg.replace("addrs = []", &source)
    });
    let probe = client();
    eventually("on a", || has_broker(&probe, &a.addr, "e2e-addr")).await;
    script.lock().unwrap().1 = b.addr.clone();
    eventually("on b", || has_broker(&probe, &b.addr, "e2e-addr")).await;
    eventually("gone from a", || async {
        !has_broker(&probe, &a.addr, "e2e-addr").await
    })
    .await;
    let seen = leaving.drain_received();
    assert!(seen.iter().any(|c| c.code == request::REGISTER_BROKER));
    assert!(
        seen.iter().any(|c| c.code == request::UNREGISTER_BROKER),
        "the leaving NameServer got no UNREGISTER"
    );
    eventually("leaving connection closed", || async {
        d.get("/metrics")
            .await
            .is_some_and(|(_, t)| t.contains("rmq_registrar_remoting_open_connections 1"))
    })
    .await;
    // A broken answer keeps the last good list.
    script.lock().unwrap().1 = "garbage".into();
    eventually("failure counted", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            t.lines().any(|l| {
                l.starts_with("rmq_registrar_address_refreshes_total{outcome=\"error\"}")
                    && !l.ends_with(" 0")
            })
        })
    })
    .await;
    assert!(has_broker(&probe, &b.addr, "e2e-addr").await);
    let text = d.get("/metrics").await.unwrap().1;
    assert!(text.contains("rmq_registrar_namesrv_list_size 1"));
    // Nothing of the NameServers that left stays in the metrics.
    for gone in [&a.addr, &leaving.addr] {
        assert!(
            !text.contains(gone.as_str()),
            "series of {gone} left:\n{text}"
        );
    }
    assert!(text.contains(&format!(
        "rmq_registrar_registered{{namesrv=\"{}\"}} 1",
        b.addr
    )));
}

#[tokio::test]
async fn a_namesrv_that_stays_down_logs_one_warning_and_one_line_when_back() {
    let port = ClosedPort::new();
    let down = port.addr().to_string();
    let ok = NameServer::start().await;
    let d = Daemon::start(|_, http| {
        base_config("e2e-quiet", http, &[&ok.addr, &down], "")
            .replace("[log]\nlevel = \"debug\"", "[log]\nlevel = \"info\"")
            .replace("[register]", "[register]\ninterval = \"10s\"")
    });
    let probe = client();
    eventually("registered with the healthy one", || {
        has_broker(&probe, &ok.addr, "e2e-quiet")
    })
    .await;
    // 5 s of retries every 0.1–0.5 s against a refused port: before, ~2.3 lines a second.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let logs = d.logs();
    let mentions = logs.lines().filter(|l| l.contains(down.as_str())).count();
    let warns = logs
        .lines()
        .filter(|l| l.contains(down.as_str()) && l.contains("WARN"))
        .count();
    // The first round's summary line, and one WARN with the reason.
    assert_eq!(warns, 1, "{logs}");
    assert!(
        mentions <= 3,
        "{mentions} lines about a down NameServer in 5 s:\n{logs}"
    );
    let back = NameServer::start_on(port).await;
    eventually("registered when back", || {
        has_broker(&probe, &back.addr, "e2e-quiet")
    })
    .await;
    eventually("one INFO when back", || async {
        d.logs().contains("NameServer has the broker again")
    })
    .await;
    assert_eq!(
        d.logs().matches("NameServer has the broker again").count(),
        1
    );
}

/// Starts the daemon with a config that must be refused: exit code and stderr.
fn run_bad(config: &str, env: &[(&str, &str)]) -> (i32, String) {
    run_with(config, env, "run")
}

/// Runs `rmq-registrar --config FILE COMMAND`: exit code and stderr.
fn run_with(config: &str, env: &[(&str, &str)], command: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rmq-registrar"));
    cmd.arg("--config")
        .arg(&path)
        .arg(command)
        .env_remove("NAMESRV_ADDR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configs_exit_2_naming_the_key_and_source() {
    let good = base_config("b", "127.0.0.1:9100", &["127.0.0.1:9876"], "");
    let (code, _) = run_with(&good, &[], "check-config");
    assert_eq!(code, 0);
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(String, Env, &str)> = vec![
        (
            good.replace("[register]", "[register]\nbogus = 1"),
            vec![],
            "register.bogus",
        ),
        (
            good.replace("timeout = \"2s\"", "timeout = 2"),
            vec![],
            "register.timeout",
        ),
        (
            good.replace("127.0.0.1:9876", "localhost"),
            vec![],
            "namesrv.addrs",
        ),
        (
            good.replace("timeout = \"2s\"", "interval = \"5m\""),
            vec![],
            "register.interval",
        ),
        (
            good.replace("addrs = [\"127.0.0.1:9876\"]", ""),
            vec![],
            "namesrv.addrs",
        ),
        (
            good.clone(),
            vec![("RMQ_REGISTRAR_BROKER__ADDR", "nope")],
            "broker.addr",
        ),
        ("[broker\n".into(), vec![], "bad.toml"),
    ];
    for (cfg, env, key) in cases {
        let (code, err) = run_bad(&cfg, &env);
        assert_eq!(code, 2, "{key}: {err}");
        assert!(err.contains(key), "{key} not named in: {err}");
    }
    let (_, err) = run_bad(&good, &[("RMQ_REGISTRAR_BROKER__ADDR", "nope")]);
    assert!(
        err.contains("RMQ_REGISTRAR_"),
        "env source not named: {err}"
    );
    let (_, err) = run_bad(&good.replace("timeout = \"2s\"", "interval = \"5m\""), &[]);
    assert!(err.contains("bad.toml"), "file not named: {err}");
}

const OFFSETS: &str = r#"{"offsetTable":{"T@g":{0:5}}}"#;

/// A master answering the four slave pulls.
async fn scripted_master() -> Peer {
    Peer::start(|c| {
        let body = match c.code {
            request::GET_ALL_TOPIC_CONFIG => r#"{"topicConfigTable":{"MasterT":{"topicName":"MasterT","perm":6,"readQueueNums":2,"writeQueueNums":2}},"dataVersion":{"counter":1,"timestamp":1}}"#,
            request::GET_ALL_CONSUMER_OFFSET => OFFSETS,
            request::GET_ALL_DELAY_OFFSET => r#"{"offsetTable":{1:0}}"#,
            _ => r#"{"subscriptionGroupTable":{}}"#,
        };
        Action::Reply(rmq_registrar::protocol::RemotingCommand::request(0).with_body(body))
    })
    .await
}

/// A slave's daemon pulling from `master` every second, `slave_extra` under `[slave]`.
fn slave_daemon(
    ns: &str,
    master: &str,
    slave_extra: impl FnOnce(&std::path::Path) -> String,
) -> Daemon {
    Daemon::start(|dir, http| {
        let cfg = base_config("e2e-slave", http, &[ns], "");
        cfg.replace(
            "addr = \"127.0.0.1:10911\"",
            "addr = \"127.0.0.1:10921\"\nid = 1",
        ) + &format!(
            "[slave]\nmaster_addr = \"{master}\"\nsync_interval = \"1s\"\nvip_channel = false\n{}",
            slave_extra(dir)
        )
    })
}

#[tokio::test]
async fn a_slave_without_output_dir_counts_its_pulls_as_pulled_not_unchanged() {
    let master = scripted_master().await;
    let ns = NameServer::start().await;
    let d = slave_daemon(&ns.addr, &master.addr, |_| String::new());
    eventually("master's topics registered", || async {
        d.get("/metrics")
            .await
            .is_some_and(|(_, t)| t.contains("rmq_registrar_topics 2"))
    })
    .await;
    eventually("pulls counted", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            t.contains("rmq_registrar_slave_pulls_total{kind=\"topics\",outcome=\"pulled\"}")
        })
    })
    .await;
    let (_, t) = d.get("/metrics").await.unwrap();
    // Before: the first pull, whose topics the log said changed, counted `unchanged`.
    assert!(
        !t.lines()
            .any(|l| l.starts_with("rmq_registrar_slave_pulls_total") && l.contains("unchanged")),
        "{t}"
    );
    assert!(
        d.logs()
            .contains("the master's topics differ from those registered"),
        "{}",
        d.logs()
    );
}

#[tokio::test]
async fn slave_pulls_its_master_into_output_dir_atomically() {
    let master = scripted_master().await;
    let ns = NameServer::start().await;
    let d = slave_daemon(&ns.addr, &master.addr, |dir| {
        format!("output_dir = {:?}\n", dir.join("store"))
    });
    let out = d.dir.path().join("store");
    eventually("files written", || async {
        out.join("subscriptionGroup.json").exists()
    })
    .await;
    // Standard JSON: the master's bare integer keys quoted.
    assert_eq!(
        std::fs::read_to_string(out.join("consumerOffset.json")).unwrap(),
        rmq_registrar::broker::fastjson::quote_numeric_keys(OFFSETS)
    );
    assert!(std::fs::read_to_string(out.join("topics.json"))
        .unwrap()
        .contains("MasterT"));
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        4,
        "no temp files left behind"
    );
    eventually("master's topics registered", || async {
        d.get("/metrics")
            .await
            .is_some_and(|(_, t)| t.contains("rmq_registrar_topics 2"))
    })
    .await;
    eventually("pulls counted", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            t.contains(
                "rmq_registrar_slave_pulls_total{kind=\"consumer_offsets\",outcome=\"written\"} 1",
            )
        })
    })
    .await;
    let probe = client();
    eventually("slave registered", || {
        has_broker(&probe, &ns.addr, "e2e-slave")
    })
    .await;
}

#[tokio::test]
async fn force_every_skips_unchanged_rounds_until_a_full_one_is_due() {
    // A NameServer that holds whatever data version it is asked about: "unchanged".
    let ns = Peer::start(|c| {
        let mut r = rmq_registrar::protocol::RemotingCommand::request(0);
        if c.code == request::QUERY_DATA_VERSION {
            r = r.with_field("changed", "false");
            r.body = c.body.clone();
        }
        Action::Reply(r)
    })
    .await;
    let d = Daemon::start(|_, http| {
        base_config("e2e-force", http, &[&ns.addr], "")
            .replace("[register]", "[register]\nforce_every = \"3s\"")
    });
    let count = |frames: &[rmq_registrar::protocol::RemotingCommand], code| {
        frames.iter().filter(|c| c.code == code).count()
    };
    let mut seen = Vec::new();
    eventually("first, full registration", || {
        seen.extend(ns.drain_received());
        let n = count(&seen, request::REGISTER_BROKER);
        async move { n == 1 }
    })
    .await;
    // Within force_every, once a heartbeat (QUERY_DATA_VERSION) confirmed the data version, a
    // round skips the registration and sends no QUERY_DATA_VERSION of its own (issue 17: the
    // heartbeat asks every second already).
    let started = Instant::now();
    eventually("a heartbeat confirmed the version", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            t.lines().any(|l| {
                l.starts_with("rmq_registrar_heartbeats_total{")
                    && l.contains("outcome=\"ok\"}")
                    && !l.ends_with(" 0")
            })
        })
    })
    .await;
    d.signal("HUP");
    eventually("current counted", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            t.contains("registrations_total{namesrv=") && t.contains("outcome=\"current\"} 1")
        })
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "within force_every"
    );
    seen.extend(ns.drain_received());
    assert_eq!(count(&seen, request::REGISTER_BROKER), 1);
    // Once force_every has passed, the next round is a full registration again.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    d.signal("HUP");
    eventually("full registration again", || {
        seen.extend(ns.drain_received());
        let n = count(&seen, request::REGISTER_BROKER);
        async move { n == 2 }
    })
    .await;
}

#[tokio::test]
async fn a_daemon_started_with_only_broker_conf_registers_the_broker() {
    let ns = NameServer::start().await;
    // Stands in for the broker: answers the health check on the port broker.conf names.
    let broker = Peer::start(|_| ok_reply()).await;
    let port = broker.addr.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("config")).unwrap();
    std::fs::write(store.join("config/topics.json"), JAVA_TOPICS).unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        format!(
            "# the broker's own file\nbrokerClusterName = ConfCluster\nbrokerName = conf-only\nbrokerId = 0\n\
             namesrvAddr = {}\nbrokerIP1 = 127.0.0.1\nlistenPort = {port}\nstorePathRootDir = {}\n\
             flushDiskType = ASYNC_FLUSH\n",
            ns.addr,
            store.display()
        ),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_rmq-registrar");
    let out = Command::new(exe)
        .arg("--broker-conf")
        .arg(&conf)
        .arg("check-config")
        .env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source = format!("# broker.conf {}: brokerName", conf.display());
    assert!(
        text.lines()
            .any(|l| l.starts_with("broker.name = \"conf-only\"") && l.ends_with(&source)),
        "{text}"
    );
    assert!(
        text.contains(&format!("broker.addr = \"127.0.0.1:{port}\"")),
        "{text}"
    );
    // The daemon itself, with nothing but broker.conf (and any free port for its HTTP
    // endpoint).
    let log = dir.path().join("daemon.log");
    let mut child = Command::new(exe)
        .arg("--broker-conf")
        .arg(&conf)
        .env_remove("NAMESRV_ADDR")
        .env_remove("RMQ_REGISTRAR_CONFIG")
        .env("RMQ_REGISTRAR_HTTP__LISTEN", ANY_PORT)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let probe = client();
    eventually("registered from broker.conf", || {
        has_broker(&probe, &ns.addr, "conf-only")
    })
    .await;
    eventually("its topics, from storePathRootDir", || async {
        route_brokers(&probe, &ns.addr, "JavaTopicA").await == ["conf-only"]
    })
    .await;
    let brokers = cluster_brokers(&probe, &ns.addr).await;
    assert_eq!(brokers["conf-only"]["cluster"], "ConfCluster");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The NameServer answers UNREGISTER_BROKER before it applies it (a batch, as Java 5.x's
    // BatchUnregistrationService does): the broker is gone a moment after the reply.
    eventually_within("gone after SIGTERM", Duration::from_secs(2), || async {
        !has_broker(&probe, &ns.addr, "conf-only").await
    })
    .await;
}
