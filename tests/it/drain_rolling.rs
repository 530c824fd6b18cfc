//! A rolling restart of two real Rust brokers under real producers (rocketmq-client-rust,
//! 10 s route poll), each broker also registering itself: without the drain some sends fail;
//! with it, none.

use std::time::Duration;

use tokio::time::Instant;

use crate::drain::{route_perm, MARK};
use crate::support::broker::{create_topic, Broker};
use crate::support::daemon::{follower, Daemon};
use crate::support::namesrv::NameServer;
use crate::support::producer::Producer;
use crate::support::remoting::client;
use crate::support::wait::eventually_within;

const TOPIC: &str = "RollT";
/// The producers' route poll (the client's minimum).
const POLL: Duration = Duration::from_secs(10);
/// The drain's wait: longer than the poll.
const WAIT: &str = "13s";

/// Waits until `name` is routed writable for the topic again.
async fn writable(ns: &str, name: &str) -> Duration {
    let probe = client();
    eventually_within(
        &format!("{name} routed writable"),
        Duration::from_secs(60),
        || async {
            route_perm(&probe, ns, TOPIC, name)
                .await
                .is_some_and(|p| p & 2 != 0)
        },
    )
    .await
}

/// Stops `broker` (SIGKILL), keeps it down for longer than a route poll, as a real broker's
/// restart takes (every producer polls a route without it meanwhile), and starts it again.
async fn restart(broker: &mut Broker) {
    broker.kill();
    tokio::time::sleep(POLL + Duration::from_secs(1)).await;
    broker.restart();
    broker.wait_answering(Duration::from_secs(60)).await;
}

/// Failed sends of every producer so far.
fn failed(producers: &[Producer]) -> u64 {
    producers
        .iter()
        .map(|p| p.latest().map_or(0, |c| c.failed))
        .sum()
}

/// Waits until no producer has failed for 5 s, at least a poll, at most 90 s.
async fn quiet(producers: &[Producer]) {
    let start = Instant::now();
    let mut last = failed(producers);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = failed(producers);
        if now == last && start.elapsed() >= POLL + Duration::from_secs(2) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "sends still failing after 90 s: {now}"
        );
        last = now;
    }
}

/// Drains through the sidecar's listener; the answer comes after the wait.
async fn drain(d: &mut Daemon) {
    let http = d.http().await;
    let r = reqwest::Client::new()
        .post(format!("http://{http}/drain?wait={WAIT}"))
        .header(MARK.0, MARK.1)
        .send()
        .await
        .expect("the sidecar answers");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_rolling_restart_loses_sends_without_the_drain_and_none_with_it() {
    let ns = NameServer::start().await;
    // Each broker registers itself every 10 s too, as Kubernetes' documented default runs.
    let props = "autoCreateTopicEnable=false\nregisterNameServerPeriod=10000";
    let mut a = Broker::start("RollCluster", "roll-a", &ns.addr, props).await;
    let mut b = Broker::start("RollCluster", "roll-b", &ns.addr, props).await;
    let probe = client();
    for broker in [&a, &b] {
        create_topic(&probe, &broker.addr, TOPIC, 4).await;
    }
    let mut da = follower(&a.addr, &ns.addr);
    let mut db = follower(&b.addr, &ns.addr);
    writable(&ns.addr, "roll-a").await;
    writable(&ns.addr, "roll-b").await;
    // Three producers, each its own poll phase: one alone loses or not by the luck of its
    // phase.
    let producers: Vec<Producer> = (0..3)
        .map(|i| {
            let group = format!("roll-{i}");
            let p = Producer::start(&[&ns.addr], TOPIC, 20, &["--group", &group]);
            std::thread::sleep(Duration::from_millis(3300));
            p
        })
        .collect();
    for p in &producers {
        p.wait_for("sends going through", Duration::from_secs(30), |c| c.ok > 0)
            .await;
    }
    // Every producer has polled the route with both brokers.
    tokio::time::sleep(POLL + Duration::from_secs(2)).await;
    assert_eq!(failed(&producers), 0, "failures before any restart");

    // With the drain: each broker drained through its sidecar, then restarted.
    let before = failed(&producers);
    for (broker, d, name) in [(&mut a, &mut da, "roll-a"), (&mut b, &mut db, "roll-b")] {
        drain(d).await;
        restart(broker).await;
        // Its first passing check ends the drain: the true permissions again.
        writable(&ns.addr, name).await;
        let t0 = Instant::now();
        while !d.logs().contains("drain ended") {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{name}: the drain did not end once the broker served again:\n{}",
                d.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(POLL + Duration::from_secs(2)).await;
    let lost_with = failed(&producers) - before;

    // Without the drain: A restarted; B stopped less than a poll after A is back.
    let before = failed(&producers);
    restart(&mut a).await;
    writable(&ns.addr, "roll-a").await;
    let back = Instant::now();
    eprintln!("no drain: B stopped {:?} after A was back", back.elapsed());
    restart(&mut b).await;
    writable(&ns.addr, "roll-b").await;
    // The client blocks a broker it failed to connect to for 30 s (its circuit breaker):
    // counted until the failures stop. (This phase runs second, so that its breakers cannot
    // touch the drained one.)
    quiet(&producers).await;
    let lost_without = failed(&producers) - before;

    let mut totals = Vec::new();
    for p in producers {
        totals.push(p.stop(Duration::from_secs(10)).await);
    }
    eprintln!("rolling restart: {lost_without} failed sends without the drain, {lost_with} with it; {totals:?}");
    assert!(
        lost_without > 0,
        "the comparison lost nothing without the drain: it shows nothing ({totals:?})"
    );
    assert_eq!(lost_with, 0, "failed sends with the drain: {totals:?}");
}
