//! What a heartbeat costs in allocations (issue 17): the daemon, idle beside three real
//! NameServers with heartbeats every 200 ms, run in this process on one thread, whose
//! allocations the test binary's allocator counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::broker::{BrokerApi, BrokerIdentity};
use rmq_registrar::client::Waiter;
use rmq_registrar::config;
use rmq_registrar::daemon;

use crate::support::alloc::on_this_thread;
use crate::support::daemon::listen_addr;
use crate::support::namesrv::{has_broker, NameServer};
use crate::support::remoting::client;
use crate::support::wait::eventually;

/// The log lines, kept for the bound HTTP address.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::ErrorKind::Other)?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Heartbeats sent (answered or not: each wrote its frame), those of them that failed, and
/// the route read-backs, from the daemon's metrics.
async fn beats(http: &str) -> (f64, f64, f64) {
    let text = reqwest::get(format!("http://{http}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let (mut sent, mut failed, mut audits) = (0.0, 0.0, 0.0);
    for l in text.lines() {
        if l.starts_with("rmq_registrar_route_audits_total{") {
            audits += l
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
        }
        if !l.starts_with("rmq_registrar_heartbeats_total{") || l.contains("outcome=\"skipped\"") {
            continue;
        }
        let n: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        sent += n;
        if !l.contains("outcome=\"ok\"") && !l.contains("outcome=\"changed\"") {
            failed += n;
        }
    }
    (sent, failed, audits)
}

/// What one route read-back may allocate (its request, the route's parse and compare).
const AUDIT_ALLOCATIONS: f64 = 100.0;

#[test]
fn an_idle_daemon_allocates_one_buffer_per_heartbeat() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let logs = Logs::default();
    let writer = logs.clone();
    let _log = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    );
    rt.block_on(async {
        let nss = [
            NameServer::start().await,
            NameServer::start().await,
            NameServer::start().await,
        ];
        let addrs: Vec<String> = nss.iter().map(|n| n.addr.clone()).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rmq-registrar.toml");
        let list: Vec<String> = addrs.iter().map(|a| format!("{a:?}")).collect();
        std::fs::write(
            &path,
            format!(
                "[broker]\nname = \"hb-cost\"\naddr = \"127.0.0.1:10911\"\n\
                 [[broker.topics.inline]]\nname = \"HbCostTopic\"\n[broker.health]\ncheck = \"none\"\n\
                 [namesrv]\naddrs = [{}]\n[register]\nheartbeat = \"200ms\"\n\
                 [http]\nlisten = \"127.0.0.1:0\"\n",
                list.join(", ")
            ),
        )
        .expect("config");
        let loaded = config::load(Some(&path)).expect("valid config");
        let start = daemon::settings::InForce::new(loaded).expect("valid TLS");
        let running = tokio::spawn(daemon::run(start, None, futures_util::stream::pending()));
        let probe = client();
        for ns in &addrs {
            eventually("registered", || has_broker(&probe, ns, "hb-cost")).await;
        }
        let http = {
            let text = String::from_utf8_lossy(&logs.0.lock().expect("logs")).to_string();
            listen_addr(&text).expect("the daemon logs its HTTP address")
        };
        // Connections, buffers and tables settle over the first beats.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = (beats(&http).await, on_this_thread());
        tokio::time::sleep(Duration::from_secs(4)).await;
        let after = (on_this_thread(), beats(&http).await);
        // The scrapes are outside the window; a beat sent inside it but answered after it
        // adds at most one per NameServer.
        let n = after.1 .0 - before.0 .0;
        let failed = after.1 .1 - before.0 .1;
        // A read-back in flight at either end adds at most one per NameServer.
        let audits = after.1 .2 - before.0 .2 + 3.0;
        let allocations = (after.0 - before.1) as f64;
        eprintln!("{allocations} allocations: {n} heartbeats, {failed} failed, {audits} route read-backs");
        assert!(n >= 40.0, "only {n} heartbeats in 4 s at 200 ms to 3 NameServers");
        // Besides the beats, the idle daemon's only allocations are the topics watch's poll
        // (every 2 s, a few allocations each: measured), allowed twice over; a beat that
        // fails (a stall on a busy machine) also builds its error, allowed 8 each.
        // A route read-back (every 5 s by default) parses a route: allowed AUDIT_ALLOCATIONS.
        let others = 2.0 * 3.0 * 4.0 + 8.0 * failed + AUDIT_ALLOCATIONS * audits;
        assert!(
            allocations <= n + 3.0 + others,
            "{allocations} allocations for {n} heartbeats ({failed} failed): more than their frames"
        );
        // Each beat writes its frame: the counter sees the daemon's work.
        assert!(allocations >= n - 3.0, "{allocations} allocations for {n} heartbeats");
        running.abort();
        drop(nss);
    });
}

#[test]
fn a_prepared_heartbeat_allocates_only_its_frame_and_a_built_one_more() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let ns = NameServer::start().await;
        let api = BrokerApi::new(client());
        let id = BrokerIdentity {
            cluster: "DefaultCluster".into(),
            name: "hb-frame".into(),
            id: 0,
            addr: "127.0.0.1:10911".into(),
            ha_addr: "127.0.0.1:10912".into(),
            zone: None,
        };
        let version = rmq_registrar::broker::body::DataVersion::now();
        let beat = api.prepare_heartbeat(&id, version).expect("encoded");
        let mut waiter = Waiter::new();
        let t = Duration::from_secs(5);
        for _ in 0..20 {
            api.heartbeat(&ns.addr, &beat, t, &mut waiter)
                .await
                .expect("answered");
        }
        let n = 200;
        let start = on_this_thread();
        for _ in 0..n {
            let a = api.heartbeat(&ns.addr, &beat, t, &mut waiter).await;
            // Not registered: the NameServer says so each time, which must cost nothing more.
            assert!(a.expect("answered").changed);
        }
        let prepared = on_this_thread() - start;
        let start = on_this_thread();
        for _ in 0..n {
            api.query_data_version(&ns.addr, &id, version, t)
                .await
                .expect("answered");
        }
        let built = on_this_thread() - start;
        // The counter sees this thread's work: a request built each time costs several.
        assert!(built >= 3 * n, "{built} allocations for {n} built requests");
        assert!(
            prepared <= n + n / 20,
            "{prepared} allocations for {n} prepared heartbeats: more than their frames"
        );
    });
}
