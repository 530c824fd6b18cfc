//! Real processes only: the Rust broker, the Rust NameServer, and rmq-registrar between them.
//! Each broker registers itself with a private "sink" NameServer (it will not start otherwise);
//! the NameServer the tests check is registered by rmq-registrar alone.

use std::time::Duration;

use tokio::time::Instant;

use crate::support::broker::{max_offset, producer_route, send_message, Broker};
use crate::support::daemon::{checked_config, metric, Daemon};
use crate::support::namesrv::{cluster_brokers, has_broker, route_brokers, NameServer};
use crate::support::remoting::client;
use crate::support::wait::{eventually, eventually_within};

const CLUSTER: &str = "E2ECluster";

/// A daemon config for `broker` (its real address), checked every `interval`.
fn config_for(
    name: &str,
    http: &str,
    ns: &str,
    broker: &Broker,
    extra: &str,
    health: &str,
) -> String {
    let extra = format!("{extra}\n");
    let mut c = checked_config(name, http, &[ns], &extra).replace(
        "addr = \"127.0.0.1:10911\"",
        &format!("addr = {:?}", broker.addr),
    );
    c.push_str(health);
    c
}

#[tokio::test]
async fn a_producer_sends_through_a_broker_registered_by_rmq_registrar() {
    let sink = NameServer::start().await;
    let (ns_file, ns_broker) = (NameServer::start().await, NameServer::start().await);
    let broker = Broker::start(CLUSTER, "real-a", &sink.addr, "").await;
    // One daemon reads the broker's own topics.json, the other asks the broker itself.
    let file_extra = format!("[broker.topics]\nfile = {:?}", broker.topics_file);
    let d_file = Daemon::start(|_, http| {
        config_for("real-a", http, &ns_file.addr, &broker, &file_extra, "")
    });
    let d_broker = Daemon::start(|_, http| {
        config_for(
            "real-a",
            http,
            &ns_broker.addr,
            &broker,
            "[broker.topics]\nsource = \"broker\"",
            "",
        )
        .replace("[register]", "[register]\ninterval = \"10s\"")
    });
    let probe = client();
    for ns in [&ns_file.addr, &ns_broker.addr] {
        eventually("registered by rmq-registrar", || {
            has_broker(&probe, ns, "real-a")
        })
        .await;
        // The broker's own topics, as it persisted them and as it answers for them.
        eventually("TBW102 routed to the broker", || async {
            route_brokers(&probe, ns, "TBW102").await == ["real-a"]
        })
        .await;
    }
    assert!(
        !has_broker(&probe, &ns_file.addr, "never-registered").await,
        "sanity: an unknown broker is not listed"
    );

    // A producer of a topic nobody has yet: TOPIC_NOT_EXIST, then TBW102's route, then send.
    let topic = "ProducedThroughRegistrar";
    let (target, known) = producer_route(&probe, &ns_file.addr, topic).await;
    assert!(!known, "a new topic has no route yet");
    assert_eq!(target, broker.addr);
    let sent = 5;
    for i in 0..sent {
        let (code, remark) = send_message(&probe, &target, topic, 0, &format!("hello {i}")).await;
        assert_eq!(code, 0, "SEND_MESSAGE {i}: {remark:?}\n{}", broker.logs());
    }
    // The consume queue is built after the write (the broker's dispatch runs behind it).
    eventually("max offset shows every message", || async {
        max_offset(&probe, &target, topic, 0).await == sent
    })
    .await;

    // The auto-created topic reaches both NameServers: the file watch within seconds, the
    // broker source within one register.interval (10 s here), both with a margin.
    let t0 = Instant::now();
    eventually_within(
        "new topic routed (file source)",
        Duration::from_secs(10),
        || async { route_brokers(&probe, &ns_file.addr, topic).await == ["real-a"] },
    )
    .await;
    let via_file = t0.elapsed();
    eventually_within(
        "new topic routed (broker source)",
        Duration::from_secs(12),
        || async { route_brokers(&probe, &ns_broker.addr, topic).await == ["real-a"] },
    )
    .await;
    eprintln!(
        "new topic routed: file source after {via_file:?}, broker source after {:?}",
        t0.elapsed()
    );
    // Now a producer finds the topic's own route, and sending to it works.
    let (target, known) = producer_route(&probe, &ns_broker.addr, topic).await;
    assert!(known);
    let (code, remark) = send_message(&probe, &target, topic, 0, "again").await;
    assert_eq!(code, 0, "{remark:?}");
    eventually("max offset shows the last message", || async {
        max_offset(&probe, &target, topic, 0).await == sent + 1
    })
    .await;
    drop((d_file, d_broker));
}

#[tokio::test]
async fn a_killed_or_hung_broker_is_withdrawn_and_comes_back_when_it_answers() {
    let sink = NameServer::start().await;
    let ns = NameServer::start().await;
    let mut broker = Broker::start(CLUSTER, "real-live", &sink.addr, "").await;
    let (interval, failures) = (Duration::from_secs(2), 3u32);
    let health =
        format!("[broker.health]\ninterval = \"2s\"\ntimeout = \"500ms\"\nfailures = {failures}\n");
    let d = Daemon::start(|_, http| config_for("real-live", http, &ns.addr, &broker, "", &health));
    let probe = client();
    eventually("registered", || has_broker(&probe, &ns.addr, "real-live")).await;
    let bound = interval * failures + Duration::from_secs(1);

    // Killed: gone within interval × failures + 1 s; restarted: back within 1 s of answering.
    let t0 = Instant::now();
    broker.kill();
    eventually_within("withdrawn after kill", bound, || async {
        !has_broker(&probe, &ns.addr, "real-live").await
    })
    .await;
    let killed_gone = t0.elapsed();
    let (status, body) = d.get("/readyz").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not serving"), "{body}");
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_up"), 0.0);
    // It stays withdrawn while the broker is down (several probes and a round's worth).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!has_broker(&probe, &ns.addr, "real-live").await);
    broker.restart();
    let answered = broker.wait_answering(Duration::from_secs(60)).await;
    eventually_within("back after restart", Duration::from_secs(5), || {
        has_broker(&probe, &ns.addr, "real-live")
    })
    .await;
    let restart_back = answered.elapsed();
    assert!(
        restart_back < Duration::from_secs(1),
        "registered {restart_back:?} after answering"
    );

    // Hung (SIGSTOP): the kernel still accepts connections, the broker answers nothing.
    let t0 = Instant::now();
    broker.signal("STOP");
    eventually_within("withdrawn while hung", bound, || async {
        !has_broker(&probe, &ns.addr, "real-live").await
    })
    .await;
    let hung_gone = t0.elapsed();
    broker.signal("CONT");
    // A broker resumed on a loaded machine first works off what queued while it was stopped:
    // the daemon's promise runs from its answering again, as after a restart.
    let t1 = broker.wait_answering(Duration::from_secs(60)).await;
    eventually_within("back after SIGCONT", Duration::from_secs(5), || {
        has_broker(&probe, &ns.addr, "real-live")
    })
    .await;
    let cont_back = t1.elapsed();
    eprintln!(
        "kill: gone after {killed_gone:?}, back {restart_back:?} after answering; \
         SIGSTOP: gone after {hung_gone:?}, back {cont_back:?} after SIGCONT"
    );
    let logs = d.logs();
    assert_eq!(
        logs.matches("broker is not serving: unregistering").count(),
        2,
        "{logs}"
    );
    assert_eq!(logs.matches("broker is serving again").count(), 2, "{logs}");
}

#[tokio::test]
async fn a_real_slave_next_to_its_real_master_both_registered_and_the_slave_pulls() {
    let sink = NameServer::start().await;
    let ns = NameServer::start().await;
    let master = Broker::start(
        CLUSTER,
        "real-ms",
        &sink.addr,
        "brokerId=0\nbrokerRole=ASYNC_MASTER",
    )
    .await;
    let slave = Broker::start(
        CLUSTER,
        "real-ms",
        &sink.addr,
        "brokerId=1\nbrokerRole=SLAVE",
    )
    .await;
    let d_master = Daemon::start(|_, http| config_for("real-ms", http, &ns.addr, &master, "", ""));
    let probe = client();
    // The slave learns its master from its registration's reply: the master registers first.
    eventually("master registered", || {
        has_broker(&probe, &ns.addr, "real-ms")
    })
    .await;
    let d_slave = Daemon::start(|dir, http| {
        let out = dir.join("slave-out");
        std::fs::create_dir(&out).unwrap();
        let c = config_for("real-ms", http, &ns.addr, &slave, "id = 1", "");
        c.replace(
            "[register]",
            &format!("[slave]\noutput_dir = {out:?}\nsync_interval = \"1s\"\n[register]"),
        )
    });
    eventually("master and slave both in the NameServer", || async {
        let t = cluster_brokers(&probe, &ns.addr).await;
        t["real-ms"]["brokerAddrs"]["0"] == master.addr.as_str()
            && t["real-ms"]["brokerAddrs"]["1"] == slave.addr.as_str()
    })
    .await;
    // The slave daemon learned the master from the NameServer and pulled its four documents.
    let out = d_slave.dir.path().join("slave-out");
    for f in [
        "topics.json",
        "consumerOffset.json",
        "delayOffset.json",
        "subscriptionGroup.json",
    ] {
        eventually(f, || {
            let p = out.join(f);
            async move { std::fs::metadata(&p).is_ok_and(|m| m.len() > 0) }
        })
        .await;
    }
    // Standard JSON a non-Java reader takes as it is (Python's json here), mode 0644.
    for f in [
        "topics.json",
        "consumerOffset.json",
        "delayOffset.json",
        "subscriptionGroup.json",
    ] {
        let p = out.join(f);
        let ok = std::process::Command::new("python3")
            .args(["-c", "import json, sys; json.load(open(sys.argv[1]))"])
            .arg(&p)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "{f} is not standard JSON: {}",
            std::fs::read_to_string(&p).unwrap()
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644,
            "{f}"
        );
    }
    let topics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("topics.json")).unwrap()).unwrap();
    assert!(
        topics["topicConfigTable"]["TBW102"].is_object(),
        "the master's own table: {topics}"
    );
    let (_, text) = d_slave.get("/metrics").await.unwrap();
    assert!(
        metric(
            &text,
            "rmq_registrar_slave_pulls_total{kind=\"topics\",outcome=\"written\"}"
        ) >= 1.0,
        "{text}"
    );
    drop(d_master);
}

#[tokio::test]
async fn identity_read_from_the_real_broker_registers_what_it_registers_itself() {
    // The broker registers itself with `sink`; the daemon, told only `--broker ADDR` and the
    // NameServer to use, registers it with `ns`. Both NameServers must list the same broker.
    let sink = NameServer::start().await;
    let ns = NameServer::start().await;
    let broker = Broker::start(
        CLUSTER,
        "real-follow",
        &sink.addr,
        "brokerId=0\nbrokerRole=ASYNC_MASTER",
    )
    .await;
    let ns_addr = ns.addr.clone();
    let d = Daemon::start_with(&["--broker", &broker.addr], move |_, http| {
        format!("[namesrv]\naddrs = [{ns_addr:?}]\n[http]\nlisten = \"{http}\"\n")
    });
    let probe = client();
    eventually("the broker registered itself", || {
        has_broker(&probe, &sink.addr, "real-follow")
    })
    .await;
    eventually("the daemon registered it from its own answer", || {
        has_broker(&probe, &ns.addr, "real-follow")
    })
    .await;
    let (own, ours) = (
        cluster_brokers(&probe, &sink.addr).await,
        cluster_brokers(&probe, &ns.addr).await,
    );
    assert_eq!(
        own["real-follow"]["brokerAddrs"],
        ours["real-follow"]["brokerAddrs"]
    );
    assert_eq!(
        own["real-follow"]["cluster"],
        ours["real-follow"]["cluster"]
    );
    assert_eq!(
        ours["real-follow"]["brokerAddrs"]["0"],
        broker.addr.as_str()
    );
    let logs = d.logs();
    assert!(
        logs.contains(&format!(
            "identity from the broker identity={CLUSTER}/real-follow id 0 at {}",
            broker.addr
        )),
        "{logs}"
    );
    // No WARN that no NameServer is known while the list is on its way (issue 30: one at
    // every start before).
    assert!(!logs.contains("no NameServer known yet"), "{logs}");
}
