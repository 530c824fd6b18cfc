//! The broker is advertised only while it serves: the daemon against a real NameServer and a
//! scripted broker whose answers the test switches (serving, hung, closing), or no broker.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;
use tokio::time::Instant;

use crate::support::daemon::{checked_config, metric, Daemon};
use crate::support::namesrv::{has_broker, route_brokers, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::scripted_peer::{Action, Peer};
use crate::support::wait::{eventually, eventually_within};

const SERVING: u8 = 0;
const HUNG: u8 = 1;
const CLOSING: u8 = 2;

const BROKER_TOPICS: &str = r#"{"dataVersion":{"counter":7,"stateVersion":0,"timestamp":1700000000000},"topicConfigTable":{"OwnTopic":{"topicName":"OwnTopic","readQueueNums":4,"writeQueueNums":4,"perm":6},"Clash":{"topicName":"Clash","readQueueNums":16,"writeQueueNums":16,"perm":6}}}"#;

/// A scripted broker: answers the health check and GET_ALL_TOPIC_CONFIG while serving.
async fn scripted_broker(mode: Arc<AtomicU8>, topics: Arc<std::sync::Mutex<String>>) -> Peer {
    Peer::start(move |cmd| match mode.load(Ordering::SeqCst) {
        HUNG => Action::Silent,
        CLOSING => Action::Close,
        _ => match cmd.code {
            request::GET_ALL_TOPIC_CONFIG => {
                let body = topics.lock().unwrap().clone();
                Action::Reply(RemotingCommand::request(0).with_body(body.into_bytes()))
            }
            _ => Action::Reply(RemotingCommand::request(0)),
        },
    })
    .await
}

/// Checks every 500 ms, 200 ms each, down after 3 failures.
fn fast_checks(broker: &str) -> String {
    format!(
        "[broker.health]\ninterval = \"500ms\"\ntimeout = \"200ms\"\nfailures = 3\naddr = \"{broker}\"\n"
    )
}

#[tokio::test]
async fn with_no_broker_listening_the_broker_is_never_registered_and_readyz_says_why() {
    let ns = NameServer::start().await;
    let refusing = ClosedPort::new();
    let nobody = refusing.addr().to_string();
    let d = Daemon::start(|_, http| {
        let mut c = checked_config("live-none", http, &[&ns.addr], "");
        c.push_str(&fast_checks(&nobody));
        c
    });
    // Enough failed checks that a registration would have happened long ago.
    eventually("ten failed health checks", || async {
        let Some((_, text)) = d.get("/metrics").await else {
            return false;
        };
        metric(
            &text,
            "rmq_registrar_broker_health_checks_total{outcome=\"error\"}",
        ) >= 10.0
    })
    .await;
    assert!(!has_broker(&client(), &ns.addr, "live-none").await);
    let (status, body) = d.get("/readyz").await.unwrap();
    assert_eq!(status, 503);
    assert!(
        body.contains("not serving") && body.contains(&nobody),
        "{body}"
    );
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_up"), 0.0);
    assert!(
        !text.contains("rmq_registrar_registrations_total{"),
        "no registration was even attempted:\n{text}"
    );
    let logs = d.logs();
    assert_eq!(
        logs.matches("broker not serving yet").count(),
        1,
        "one WARN while waiting, not one per check:\n{logs}"
    );
}

#[tokio::test]
async fn a_hung_or_closing_broker_is_unregistered_and_registered_again_once_it_answers() {
    let ns = NameServer::start().await;
    let mode = Arc::new(AtomicU8::new(SERVING));
    let broker = scripted_broker(mode.clone(), Arc::default()).await;
    let d = Daemon::start(|_, http| {
        let mut c = checked_config("live-flip", http, &[&ns.addr], "");
        c.push_str(&fast_checks(&broker.addr));
        c
    });
    let probe = client();
    eventually("registered while serving", || {
        has_broker(&probe, &ns.addr, "live-flip")
    })
    .await;
    eventually("/readyz 200", || async {
        d.get("/readyz").await.is_some_and(|(s, _)| s == 200)
    })
    .await;
    // Health checks are requests too: counted by code like every other.
    let (_, text) = d.get("/metrics").await.unwrap();
    assert!(
        text.contains(&format!(
            "rmq_registrar_remoting_requests_total{{code=\"{}\",outcome=\"ok\"}}",
            request::GET_BROKER_RUNTIME_INFO
        )),
        "{text}"
    );
    // Bound: interval × failures + 1 s (the last check's timeout and the goodbye fit in it).
    let bound = Duration::from_millis(500 * 3 + 1000);
    for (fault, name) in [(HUNG, "hung"), (CLOSING, "closing")] {
        mode.store(fault, Ordering::SeqCst);
        let gone = eventually_within("unregistered", bound, || async {
            !has_broker(&probe, &ns.addr, "live-flip").await
        })
        .await;
        let (status, body) = d.get("/readyz").await.unwrap();
        assert_eq!(status, 503, "{name}");
        assert!(body.contains("is not serving (down for"), "{name}: {body}");
        let (_, text) = d.get("/metrics").await.unwrap();
        assert_eq!(metric(&text, "rmq_registrar_broker_up"), 0.0, "{name}");
        mode.store(SERVING, Ordering::SeqCst);
        let back = eventually_within("registered again", Duration::from_millis(1500), || {
            has_broker(&probe, &ns.addr, "live-flip")
        })
        .await;
        eprintln!(
            "{name}: unregistered after {gone:?}, registered again {back:?} after it answered"
        );
        eventually("/readyz 200 again", || async {
            d.get("/readyz").await.is_some_and(|(s, _)| s == 200)
        })
        .await;
    }
    let logs = d.logs();
    assert_eq!(
        logs.matches("broker is not serving: unregistering").count(),
        2,
        "{logs}"
    );
    assert_eq!(logs.matches("broker is serving again").count(), 2, "{logs}");
    let (_, text) = d.get("/metrics").await.unwrap();
    assert_eq!(metric(&text, "rmq_registrar_broker_up"), 1.0);
    assert!(metric(&text, "rmq_registrar_unregistrations_total{namesrv") >= 1.0);
}

#[tokio::test]
async fn sigterm_while_the_broker_is_down_exits_within_the_bound() {
    let ns = NameServer::start().await;
    let refusing = ClosedPort::new();
    let nobody = refusing.addr().to_string();
    let mut d = Daemon::start(|_, http| {
        let mut c = checked_config("live-term", http, &[&ns.addr], "");
        c.push_str(&fast_checks(&nobody));
        c
    });
    eventually("a failed health check", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            metric(
                &t,
                "rmq_registrar_broker_health_checks_total{outcome=\"error\"}",
            ) >= 1.0
        })
    })
    .await;
    d.signal("TERM");
    // register.timeout (2 s in these configs) + 0.5 s, and 1 s of margin.
    let (status, took) = d.wait_exit(Duration::from_millis(3500)).await;
    assert!(status.success(), "{status:?}\n{}", d.logs());
    eprintln!("exit after {took:?}");
}

#[tokio::test]
async fn topics_come_from_the_broker_itself_and_a_failed_read_keeps_the_last_good_ones() {
    let ns = NameServer::start().await;
    let mode = Arc::new(AtomicU8::new(SERVING));
    let topics = Arc::new(std::sync::Mutex::new(BROKER_TOPICS.to_string()));
    let broker = scripted_broker(mode.clone(), topics.clone()).await;
    let d = Daemon::start(|_, http| {
        let extra = "[broker.topics]\nsource = \"broker\"\n[[broker.topics.inline]]\nname = \"InlineOnly\"\n[[broker.topics.inline]]\nname = \"Clash\"\nread_queues = 1\nwrite_queues = 1\n";
        let mut c = checked_config("live-topics", http, &[&ns.addr], extra);
        c.push_str(&fast_checks(&broker.addr));
        c
    });
    let probe = client();
    for topic in ["OwnTopic", "InlineOnly", "Clash"] {
        eventually(topic, || async {
            route_brokers(&probe, &ns.addr, topic).await == ["live-topics"]
        })
        .await;
    }
    // The broker's entry wins the clash: 16 queues, not the inline 1.
    let route = route_json(&probe, &ns.addr, "Clash").await;
    assert_eq!(route["queueDatas"][0]["readQueueNums"], 16, "{route}");
    // A topic created on the broker arrives with the next round (SIGHUP asks for one now).
    *topics.lock().unwrap() = BROKER_TOPICS
        .replace("\"counter\":7", "\"counter\":8")
        .replace("\"OwnTopic\":{", "\"NewTopic\":{\"topicName\":\"NewTopic\",\"readQueueNums\":2,\"writeQueueNums\":2,\"perm\":6},\"OwnTopic\":{");
    let t0 = Instant::now();
    d.signal("HUP");
    eventually("NewTopic routed", || async {
        route_brokers(&probe, &ns.addr, "NewTopic").await == ["live-topics"]
    })
    .await;
    eprintln!(
        "new broker topic routed {:?} after the round was asked for",
        t0.elapsed()
    );
    // A broken answer keeps the last good table: every topic is still routed after a round.
    *topics.lock().unwrap() = "{ not json".into();
    d.signal("HUP");
    eventually("a failed topic read", || async {
        d.get("/metrics").await.is_some_and(|(_, t)| {
            metric(&t, "rmq_registrar_topic_reloads_total{outcome=\"error\"}") >= 1.0
        })
    })
    .await;
    for topic in ["OwnTopic", "NewTopic", "InlineOnly", "Clash"] {
        assert_eq!(
            route_brokers(&probe, &ns.addr, topic).await,
            ["live-topics"],
            "{topic}"
        );
    }
    assert!(d
        .logs()
        .contains("cannot read the broker's topics, registering the last good ones"));
}

async fn route_json(
    c: &rmq_registrar::client::RemotingClient,
    ns: &str,
    topic: &str,
) -> serde_json::Value {
    let req = RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC).with_field("topic", topic);
    let r = c
        .invoke_sync(Some(ns), req, Duration::from_secs(5))
        .await
        .unwrap();
    serde_json::from_slice(&r.body.unwrap()).unwrap()
}
