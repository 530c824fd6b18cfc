//! The drain next to a real broker that registers itself (every 10 s, through a relay that
//! counts its registrations): its route, polled every 100 ms, never shows it writable, a
//! NameServer restarted mid-drain included; a topic created mid-drain is writable for at most
//! about a heartbeat (200 ms while draining) and a round trip.

use std::time::Duration;

use rmq_registrar::protocol::code::request;
use tokio::time::Instant;

use crate::drain::{route_perm, MARK};
use crate::support::broker::{send_message, Broker};
use crate::support::daemon::Daemon;
use crate::support::namesrv::NameServer;
use crate::support::relay::Relay;
use crate::support::remoting::client;
use crate::support::wait::eventually_within;

const WRITE: u64 = 2;

#[tokio::test]
async fn a_drain_holds_next_to_a_broker_that_registers_itself() {
    let ns = NameServer::start().await;
    let relay = Relay::start(&ns.addr).await;
    let mut broker = Broker::start(
        "DrainCluster",
        "drain-self",
        &relay.addr,
        "registerNameServerPeriod=10000\n",
    )
    .await;
    let probe = client();
    // A topic of its own, created as a producer creates one, then routed writable.
    let (code, remark) = send_message(&probe, &broker.addr, "DrainSelf", 0, "before").await;
    assert_eq!(code, 0, "{remark:?}");
    eventually_within("routed writable", Duration::from_secs(30), || async {
        route_perm(&probe, &ns.addr, "DrainSelf", "drain-self")
            .await
            .is_some_and(|p| p & WRITE != 0)
    })
    .await;
    let ns_addr = ns.addr.clone();
    // Rounds every 60 s: none falls inside the windows watched below, so what keeps the route
    // read-only there is the drain's re-assertion, nothing else.
    let mut d = Daemon::start_with(&["--broker", &broker.addr], move |_, http| {
        format!(
            "[broker.health]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\
             [namesrv]\naddrs = [{ns_addr:?}]\n[register]\ntimeout = \"2s\"\ninterval = \"60s\"\n\
             [http]\nlisten = \"{http}\"\n[log]\nlevel = \"debug\"\n"
        )
    });
    eventually_within(
        "the daemon registered it",
        Duration::from_secs(20),
        || async { d.logs().contains("registration round ok=1") },
    )
    .await;
    let http = d.http().await;
    let began = Instant::now();
    let drain = tokio::spawn(async move {
        let r = reqwest::Client::new()
            .post(format!("http://{http}/drain?wait=26s"))
            .header(MARK.0, MARK.1)
            .send()
            .await
            .expect("answered");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    });
    tokio::time::sleep_until(began + Duration::from_secs(1)).await;
    let own_before = relay.count(request::REGISTER_BROKER);
    // Phase 1, 22 s: polled every 100 ms, with the NameServer restarted at 6 s.
    let mut ns = Some(ns);
    let mut writable = Vec::new();
    let mut polls = 0;
    while began.elapsed() < Duration::from_secs(23) {
        if began.elapsed() >= Duration::from_secs(6) {
            if let Some(n) = ns.take() {
                let port = n.kill();
                let restarted = NameServer::start_on(port).await;
                // Kept alive for the rest of the test.
                std::mem::forget(Box::new(restarted));
            }
        }
        let p = route_perm(&probe, &relay_target(&relay), "DrainSelf", "drain-self").await;
        polls += 1;
        if p.is_some_and(|p| p & WRITE != 0) {
            writable.push(began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let own = relay.count(request::REGISTER_BROKER) - own_before;
    assert!(
        own >= 2,
        "only {own} of the broker's own registrations in the window"
    );
    assert!(
        writable.is_empty(),
        "routed writable during the drain at {writable:?} ({polls} polls, {own} own registrations):\n{}",
        d.logs()
    );
    // Phase 2: a topic created mid-drain (the broker registers a new data version).
    let (code, remark) = send_message(&probe, &broker.addr, "DrainSelf2", 0, "mid").await;
    assert_eq!(code, 0, "{remark:?}");
    let created = Instant::now();
    let mut open = Vec::new();
    while created.elapsed() < Duration::from_secs(12) {
        let p = route_perm(&probe, &relay_target(&relay), "DrainSelf", "drain-self").await;
        if p.is_some_and(|p| p & WRITE != 0) {
            open.push(created.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = drain.await.unwrap();
    assert_eq!(status, 200, "{body}");
    // A heartbeat (200 ms) and a round trip; polled every 100 ms, with room for a shared
    // machine: at most 1 s of writable samples, all in one window.
    let span = match (open.first(), open.last()) {
        (Some(a), Some(b)) => *b - *a,
        _ => Duration::ZERO,
    };
    eprintln!("topic created mid-drain: writable samples at {open:?}");
    assert!(
        open.len() <= 10 && span <= Duration::from_secs(1),
        "writable too long after a topic was created: {open:?}:\n{}",
        d.logs()
    );
    let (_, text) = d.get("/metrics").await.unwrap();
    assert!(
        text.contains("rmq_registrar_drain_reassertions_total"),
        "{text}"
    );
    broker.kill();
}

/// The NameServer behind the relay (the one the route is read from).
fn relay_target(relay: &Relay) -> String {
    relay.upstream.clone()
}
