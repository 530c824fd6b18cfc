//! The fault drain against the real NameServer: a scripted broker whose disk ratio and
//! `storeWriteable` the test sets (GET_BROKER_RUNTIME_INFO, as the Rust broker answers it) is
//! routed read-only when it cannot take writes and writable again when it can.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use rmq_registrar::protocol::RemotingCommand;

use crate::drain::{route_perm, MARK};
use crate::support::daemon::{checked_config, metric, Daemon};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::eventually_within;

/// What the scripted broker reports of its store; the test changes it as it goes.
#[derive(Clone)]
struct Store(Arc<Mutex<(f64, bool)>>);

impl Store {
    fn set(&self, ratio: f64, writable: bool) {
        *self.0.lock().unwrap() = (ratio, writable);
    }
}

/// A broker answering GET_BROKER_RUNTIME_INFO (28) with `store` and GET_BROKER_CONFIG (26)
/// with the default refusal level (90 %).
async fn broker(ratio: f64) -> (Peer, Store) {
    let store = Store(Arc::new(Mutex::new((ratio, true))));
    let s = store.clone();
    let peer = Peer::start(move |cmd| match cmd.code {
        28 => {
            let (r, w) = *s.0.lock().unwrap();
            let body = format!(
                r#"{{"table":{{"commitLogDiskRatio":"{r}","consumeQueueDiskRatio":"0.01","storeWriteable":"{w}"}}}}"#
            );
            Action::Reply(RemotingCommand::request(0).with_body(body.into_bytes()))
        }
        26 => Action::Reply(
            RemotingCommand::request(0).with_body(b"diskSpaceWarningLevelRatio=90\n".to_vec()),
        ),
        _ => Action::Reply(RemotingCommand::request(0)),
    })
    .await;
    (peer, store)
}

/// A daemon for broker `name` checked at `broker` (remoting, every 3 s: the default), with
/// the inline topics `topics`; the scripted broker's address is the one advertised.
fn daemon(name: &str, ns: &str, broker: &str, topics: &[&str]) -> Daemon {
    let inline: String = topics
        .iter()
        .map(|t| format!("[[broker.topics.inline]]\nname = \"{t}\"\n"))
        .collect();
    let health = format!("[broker.health]\ncheck = \"remoting\"\naddr = {broker:?}\n");
    Daemon::start(|_, http| {
        checked_config(name, http, &[ns], &inline).replace("127.0.0.1:10911", broker) + &health
    })
}

async fn gauge(d: &Daemon, series: &str) -> f64 {
    let (_, text) = d.get("/metrics").await.unwrap_or_default();
    metric(&text, series)
}

#[tokio::test]
async fn a_broker_that_cannot_take_writes_is_routed_read_only_and_writable_again_when_it_can() {
    let ns = NameServer::start().await;
    let (peer, store) = broker(0.5).await;
    let mut d = daemon("fault-a", &ns.addr, &peer.addr, &["FaultT"]);
    let probe = client();
    let perm = || route_perm(&probe, &ns.addr, "FaultT", "fault-a");
    eventually_within("routed writable", Duration::from_secs(20), || async {
        perm().await == Some(6)
    })
    .await;
    assert_eq!(
        gauge(&d, "rmq_registrar_broker_write_fault{reason=\"disk\"}").await,
        0.0
    );

    // The disk passes the threshold (95 % > 90 %): read-only within 12 s.
    store.set(0.95, true);
    let took = eventually_within("routed read-only", Duration::from_secs(12), || async {
        perm().await == Some(4)
    })
    .await;
    eprintln!("read-only {took:?} after the broker refused");
    assert_eq!(
        gauge(&d, "rmq_registrar_broker_write_fault{reason=\"disk\"}").await,
        1.0
    );
    assert_eq!(
        gauge(&d, "rmq_registrar_draining").await,
        0.0,
        "not a planned drain"
    );
    let (s, ready) = d.get("/readyz").await.unwrap();
    assert_eq!(s, 200, "{ready}");
    assert!(
        ready.contains("the broker's disk is full") && ready.contains("its disk is 95 % full"),
        "{ready}"
    );
    assert!(d.logs().contains("fault drain"), "{}", d.logs());
    // `status` (the same file) says it from the broker's own answers, and shows the route.
    // On a blocking thread: the scripted broker answers on this test's runtime.
    let file = d.dir.path().join("rmq.toml");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rmq-registrar"))
            .arg("--config")
            .arg(file)
            .arg("status")
            .env_remove("NAMESRV_ADDR")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("broker\tfault-a\tdisk 95 % (refuses writes above 90 %): refuses writes"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // DELETE /drain does not end it.
    let (s, body) = d.request(Method::DELETE, "/drain", &[MARK]).await;
    assert_eq!(s, 409, "{body}");
    assert!(body.contains("fault drain holds on (disk)"), "{body}");
    // A planned drain joins it, and its cancel leaves the broker read-only.
    let (s, body) = d.request(Method::POST, "/drain?wait=0", &[MARK]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with("joined the drain"), "{body}");
    assert_eq!(gauge(&d, "rmq_registrar_draining").await, 1.0);
    let (s, body) = d.request(Method::DELETE, "/drain", &[MARK]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with("planned drain cancelled"), "{body}");
    assert_eq!(gauge(&d, "rmq_registrar_draining").await, 0.0);
    // Two checks' worth and a round trip later it is still read-only.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        perm().await,
        Some(4),
        "the cancel must not end the fault drain"
    );

    // Under the threshold but not under its end level (86 %): held (hysteresis).
    store.set(0.87, true);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(perm().await, Some(4), "87 % is not low enough to end it");
    // Below the end level: writable within 20 s.
    store.set(0.80, true);
    let took = eventually_within("writable again", Duration::from_secs(20), || async {
        perm().await == Some(6)
    })
    .await;
    eprintln!("writable {took:?} after the disk fell under the end level");
    assert_eq!(
        gauge(&d, "rmq_registrar_broker_write_fault{reason=\"disk\"}").await,
        0.0
    );
    assert!(d.logs().contains("fault drain ended"), "{}", d.logs());
    assert_eq!(d.get("/readyz").await.unwrap().1, "ready\n");

    // A store that takes no writes, whatever its disk: read-only, for the store.
    store.set(0.10, false);
    eventually_within(
        "read-only for the store",
        Duration::from_secs(12),
        || async { perm().await == Some(4) },
    )
    .await;
    assert_eq!(
        gauge(&d, "rmq_registrar_broker_write_fault{reason=\"store\"}").await,
        1.0
    );
    // SIGTERM during a fault drain: the usual goodbye, within the usual bound.
    d.signal("TERM");
    let (status, took) = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{}", d.logs());
    assert!(took < Duration::from_secs(4), "exit took {took:?}");
    assert!(d.logs().contains("unregistered; bye"), "{}", d.logs());
    assert!(
        !has_broker(&probe, &ns.addr, "fault-a").await,
        "still listed after the goodbye"
    );
}

#[tokio::test]
async fn near_the_threshold_it_drains_ahead_only_while_another_master_stays_writable() {
    let ns = NameServer::start().await;
    let probe = client();
    // 89 %: past threshold - margin (88 %), not past the threshold.
    let (peer_a, _store_a) = broker(0.89).await;
    let a = daemon("fault-pa", &ns.addr, &peer_a.addr, &["SharedT"]);
    let perm = |b: &'static str| route_perm(&probe, &ns.addr, "SharedT", b);
    eventually_within(
        "the lone master held back",
        Duration::from_secs(20),
        || async { a.logs().contains("not drained ahead of it") },
    )
    .await;
    assert_eq!(
        perm("fault-pa").await,
        Some(6),
        "alone in its cluster: stays writable"
    );
    assert_eq!(
        gauge(&a, "rmq_registrar_broker_write_fault{reason=\"disk\"}").await,
        0.0
    );

    // A second master of the cluster, writable: now the first drains ahead of its refusal.
    let (peer_b, store_b) = broker(0.5).await;
    let b = daemon("fault-pb", &ns.addr, &peer_b.addr, &["SharedT"]);
    eventually_within(
        "the first drained ahead",
        Duration::from_secs(30),
        || async { perm("fault-pa").await == Some(4) && perm("fault-pb").await == Some(6) },
    )
    .await;
    assert_eq!(
        gauge(&a, "rmq_registrar_broker_write_fault{reason=\"disk\"}").await,
        1.0
    );
    // The second fills to the same level: with the first read-only, it is the last writable
    // master and stays so.
    store_b.set(0.89, true);
    eventually_within("the second held back", Duration::from_secs(20), || async {
        b.logs().contains("not drained ahead of it")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        perm("fault-pb").await,
        Some(6),
        "the last writable master is not drained ahead"
    );
    assert_eq!(perm("fault-pa").await, Some(4));
    // `fault.disk = false` and a reload end the fault drain (the disk as full as before).
    let file = a.dir.path().join("rmq.toml");
    let cfg = std::fs::read_to_string(&file).unwrap() + "[fault]\ndisk = false\n";
    std::fs::write(&file, cfg).unwrap();
    a.signal("HUP");
    eventually_within(
        "writable after the reload",
        Duration::from_secs(15),
        || async { perm("fault-pa").await == Some(6) },
    )
    .await;
    assert!(a.logs().contains("fault.disk = false"), "{}", a.logs());
    assert_eq!(
        gauge(&a, "rmq_registrar_broker_write_fault{reason=\"disk\"}").await,
        0.0
    );
}

/// A scripted broker that refuses every send as a full Java broker does (SERVICE_NOT_AVAILABLE,
/// "the broker's disk is full"), reporting the disk ratio `store` holds.
async fn refusing_broker(store: &Store) -> Peer {
    let s = store.clone();
    Peer::start(move |cmd| match cmd.code {
        // SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE.
        10 | 310 | 320 => {
            let mut r = RemotingCommand::request(14);
            r.remark = Some("[SERVICE_NOT_AVAILABLE]the broker's disk is full".into());
            Action::Reply(r)
        }
        28 => {
            let (r, _) = *s.0.lock().unwrap();
            let body = format!(r#"{{"table":{{"commitLogDiskRatio":"{r}"}}}}"#);
            Action::Reply(RemotingCommand::request(0).with_body(body.into_bytes()))
        }
        26 => Action::Reply(
            RemotingCommand::request(0).with_body(b"diskSpaceWarningLevelRatio=90\n".to_vec()),
        ),
        _ => Action::Reply(RemotingCommand::request(0)),
    })
    .await
}

#[tokio::test]
async fn under_async_load_the_fault_drain_loses_sends_only_until_producers_poll() {
    use crate::support::broker::{create_topic, Broker};
    use crate::support::namesrv::route_brokers;
    use crate::support::producer::Producer;

    const RATE: u32 = 40;
    // The client's shortest route poll.
    const POLL: Duration = Duration::from_secs(10);
    let ns = NameServer::start().await;
    let probe = client();
    // A real writable master, and beside it in each of two clusters' topics a master that
    // refuses every send: with the fault drain (FaultOn) and without it (FaultOff), same run.
    let a = Broker::start("FaultLoad", "fl-a", &ns.addr, "autoCreateTopicEnable=false").await;
    for t in ["FaultOn", "FaultOff"] {
        create_topic(&probe, &a.addr, t, 4).await;
    }
    let (on, off) = (
        Store(Arc::new(Mutex::new((0.5, true)))),
        Store(Arc::new(Mutex::new((0.5, true)))),
    );
    let (peer_on, peer_off) = (refusing_broker(&on).await, refusing_broker(&off).await);
    let _d_on = daemon("fl-on", &ns.addr, &peer_on.addr, &["FaultOn"]);
    let _d_off = {
        let inline = "[[broker.topics.inline]]\nname = \"FaultOff\"\n";
        let health = format!(
            "[broker.health]\ncheck = \"remoting\"\naddr = {:?}\n[fault]\ndisk = false\n",
            peer_off.addr
        );
        Daemon::start(|_, http| {
            checked_config("fl-off", http, &[&ns.addr], inline)
                .replace("127.0.0.1:10911", &peer_off.addr)
                + &health
        })
    };
    for (t, b) in [("FaultOn", "fl-on"), ("FaultOff", "fl-off")] {
        eventually_within("both masters routed", Duration::from_secs(40), || async {
            let mut r = route_brokers(&probe, &ns.addr, t).await;
            r.sort();
            r == ["fl-a", b]
        })
        .await;
    }
    let p_on = Producer::start(
        &[&ns.addr],
        "FaultOn",
        RATE,
        &["--async", "--async-retries", "0", "--group", "fl-on"],
    );
    let p_off = Producer::start(
        &[&ns.addr],
        "FaultOff",
        RATE,
        &["--async", "--async-retries", "0", "--group", "fl-off"],
    );
    for p in [&p_on, &p_off] {
        p.wait_for("sends going through", Duration::from_secs(30), |c| c.ok > 0)
            .await;
    }
    // The refusing brokers now say why: their disks are past the threshold.
    let failed = |p: &Producer| p.latest().map_or(0, |c| c.failed);
    let (on0, off0) = (failed(&p_on), failed(&p_off));
    on.set(0.95, true);
    off.set(0.95, true);
    let drained = eventually_within("fl-on read-only", Duration::from_secs(12), || async {
        route_perm(&probe, &ns.addr, "FaultOn", "fl-on").await == Some(4)
    })
    .await;
    // Every producer has polled the read-only route by now: from here the drained one loses
    // nothing, the other goes on losing about half its sends.
    tokio::time::sleep(POLL + Duration::from_secs(3)).await;
    let (on1, off1) = (failed(&p_on), failed(&p_off));
    tokio::time::sleep(Duration::from_secs(15)).await;
    let (on2, off2) = (failed(&p_on), failed(&p_off));
    assert_eq!(
        route_perm(&probe, &ns.addr, "FaultOff", "fl-off").await,
        Some(6)
    );
    let c_on = p_on.stop(Duration::from_secs(15)).await;
    let c_off = p_off.stop(Duration::from_secs(15)).await;
    eprintln!(
        "fault drain on: {} failed of {} (before the refusal was seen {on0}, until the poll {}, after {}); \
         off: {} failed of {} (before {off0}, the same window {}, after {}); read-only {drained:?} after the broker said so",
        c_on.failed, c_on.failed + c_on.ok, on1 - on0, on2 - on1,
        c_off.failed, c_off.failed + c_off.ok, off1 - off0, off2 - off1,
    );
    assert_eq!(on2 - on1, 0, "drained and polled: no send fails: {c_on:?}");
    // About RATE / 2 a second to the refusing broker: 300 in 15 s; well above half of that.
    assert!(
        off2 - off1 > 150,
        "without the fault drain sends keep failing: {c_off:?}"
    );
    assert!(c_on.failed < c_off.failed, "{c_on:?} vs {c_off:?}");
}
