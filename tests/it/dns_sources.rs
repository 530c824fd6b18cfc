//! NameServers behind a DNS name: real NameServers on 127.0.0.2, .3, .4 (one port), a name a
//! scripted DNS server answers for, and the daemon's system resolver pointed at that server in
//! a private mount namespace. The default `resolve_interval` (10 s) throughout.

use std::time::Duration;

use tokio::time::Instant;

use crate::support::daemon::{base_config, metric, Daemon};
use crate::support::dns::{run_resolving, DnsServer};
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::ports::ClosedPort;
use crate::support::remoting::client;
use crate::support::wait::eventually_within;

const NAME: &str = "ns.registrar.test";

async fn metrics(d: &Daemon) -> String {
    d.get("/metrics").await.map(|(_, b)| b).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_stands_for_every_namesrv_behind_it_and_follows_its_records() {
    let port = ClosedPort::new();
    let p = port.port();
    let (ns2, ns3, ns4) = tokio::join!(
        NameServer::start_bound("127.0.0.2", &port),
        NameServer::start_bound("127.0.0.3", &port),
        NameServer::start_bound("127.0.0.4", &port),
    );
    let mut dns = DnsServer::start().await;
    dns.set(NAME, &["127.0.0.2", "127.0.0.3"]);
    let entry = format!("{NAME}:{p}");
    let broker = "dns-broker";
    let mut d = Daemon::start_resolving(dns.files(), |_, http| {
        base_config(broker, http, &[&entry], "")
    });
    d.http().await;
    let c = client();
    let on = |ns: &NameServer| {
        let (c, addr) = (c.clone(), ns.addr.clone());
        async move { has_broker(&c, &addr, broker).await }
    };

    // Registered with every address the name has.
    eventually_within(
        "registered with both addresses",
        Duration::from_secs(15),
        || async { on(&ns2).await && on(&ns3).await },
    )
    .await;
    let m = metrics(&d).await;
    assert_eq!(
        metric(
            &m,
            &format!("rmq_registrar_namesrv_source_addresses{{source=\"{entry}\"}}")
        ),
        2.0,
        "{m}"
    );
    // `resolve` combines the sources with the same code: the list, and what the name gave.
    let (files, config) = (dns.files().to_path_buf(), d.dir.path().join("rmq.toml"));
    let out = tokio::task::spawn_blocking(move || {
        run_resolving(&files, &["--config", config.to_str().unwrap(), "resolve"])
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        format!("127.0.0.2:{p}\n127.0.0.3:{p}\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{entry}: 127.0.0.2:{p} 127.0.0.3:{p}")),
        "{stderr}"
    );

    // One lookup missing a live address (a pod NotReady for a moment): nothing leaves.
    let before = dns.a_queries();
    dns.omit_once("127.0.0.3");
    eventually_within("two more lookups", Duration::from_secs(30), || async {
        dns.a_queries() >= before + 2
    })
    .await;
    assert!(
        on(&ns3).await,
        "127.0.0.3 unregistered after one answer missed it"
    );
    let logs = d.logs();
    assert!(
        logs.contains("missing from the answer"),
        "the omission was not seen:\n{logs}"
    );
    assert!(!logs.contains("left=[\"127.0.0.3"), "{logs}");

    // The records change: the new address joins within 15 s, the old one leaves within 45 s
    // (three answers and 30 s without it), and not at once.
    let t0 = Instant::now();
    dns.set(NAME, &["127.0.0.2", "127.0.0.4"]);
    eventually_within(
        "the new address registered",
        Duration::from_secs(15),
        || on(&ns4),
    )
    .await;
    assert!(
        on(&ns3).await,
        "the old address left at the first answer without it"
    );
    eventually_within(
        "the old address unregistered",
        Duration::from_secs(45),
        || async { !on(&ns3).await },
    )
    .await;
    let left_after = t0.elapsed();
    assert!(
        left_after >= Duration::from_secs(29),
        "left after {left_after:?}"
    );
    assert!(on(&ns2).await && on(&ns4).await);

    // The DNS server gone: lookups fail, the list is kept.
    let failures = |m: &str| {
        metric(
            m,
            &format!("rmq_registrar_namesrv_source_failures_total{{source=\"{entry}\"}}"),
        )
    };
    let failed_before = failures(&metrics(&d).await);
    dns.stop();
    eventually_within(
        "a failed lookup counted",
        Duration::from_secs(25),
        || async { failures(&metrics(&d).await) > failed_before },
    )
    .await;
    let m = metrics(&d).await;
    assert_eq!(metric(&m, "rmq_registrar_namesrv_list_size"), 2.0, "{m}");
    let (code, ready) = d.get("/readyz").await.unwrap();
    assert_eq!(code, 200, "{ready}");
    assert!(
        ready.contains(&format!("{entry}: lookup failing")),
        "{ready}"
    );
    assert!(on(&ns2).await && on(&ns4).await, "the list was not kept");
    assert_eq!(
        d.logs().matches("looking the name up failed").count(),
        1,
        "one WARN"
    );

    // SIGTERM: unregistered from the current set.
    d.signal("TERM");
    let (status, _) = d.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "{}", d.logs());
    assert!(!on(&ns2).await && !on(&ns4).await, "{}", d.logs());
    c.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_a_dead_address_and_too_many_addresses() {
    let port = ClosedPort::new();
    let p = port.port();
    let live = NameServer::start_bound("127.0.0.2", &port).await;
    let dns = DnsServer::start().await;
    let c = client();

    // A name that does not resolve at start: the daemon starts, is not ready, and says which.
    let missing = format!("ns.missing.test:{p}");
    let d = Daemon::start_resolving(dns.files(), |_, http| {
        base_config("dns-missing", http, &[&missing], "")
    });
    let mut d = d;
    d.http().await;
    eventually_within(
        "/readyz names the name",
        Duration::from_secs(15),
        || async {
            d.get("/readyz")
                .await
                .is_some_and(|(code, body)| code == 503 && body.contains(&missing))
        },
    )
    .await;
    // Once it resolves, the broker is registered.
    dns.set("ns.missing.test", &["127.0.0.2"]);
    eventually_within(
        "registered once the name resolves",
        Duration::from_secs(15),
        || has_broker(&c, &live.addr, "dns-missing"),
    )
    .await;
    drop(d);

    // A record pointing at a closed port beside a live one, and a name with 300 addresses.
    dns.set("ns.mixed.test", &["127.0.0.2", "127.0.0.5"]);
    let many: Vec<String> = (0..300)
        .map(|i| format!("127.1.{}.{}", i / 200, 1 + i % 200))
        .collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    dns.set("ns.many.test", &many_refs);
    let (mixed, lots) = (format!("ns.mixed.test:{p}"), format!("ns.many.test:{p}"));
    let d = Daemon::start_resolving(dns.files(), |_, http| {
        base_config("dns-mixed", http, &[&mixed, &lots], "")
    });
    let mut d = d;
    d.http().await;
    eventually_within(
        "registered with the live address",
        Duration::from_secs(15),
        || has_broker(&c, &live.addr, "dns-mixed"),
    )
    .await;
    eventually_within("the list capped", Duration::from_secs(15), || async {
        metric(&metrics(&d).await, "rmq_registrar_namesrv_list_size") == 66.0
    })
    .await;
    let m = metrics(&d).await;
    let source = |s: &str| {
        metric(
            &m,
            &format!("rmq_registrar_namesrv_source_addresses{{source=\"{s}\"}}"),
        )
    };
    assert_eq!(source(&lots), 64.0, "{m}");
    assert_eq!(source(&mixed), 2.0, "{m}");
    let dead = format!("127.0.0.5:{p}");
    assert_eq!(
        metric(
            &m,
            &format!("rmq_registrar_registered{{namesrv=\"{dead}\"}}")
        ),
        0.0,
        "{m}"
    );
    let (code, body) = d.get("/readyz").await.unwrap();
    assert_eq!(code, 200, "{body}");
    let logs = d.logs();
    assert_eq!(
        logs.matches("more addresses than are taken from one name")
            .count(),
        1,
        "one WARN for the cap:\n{logs}"
    );
    drop(d);
    c.shutdown();
}
