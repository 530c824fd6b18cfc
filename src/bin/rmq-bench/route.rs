//! `rmq-bench route [SECS]`: what the route read-back costs. On the NameServer, with 100
//! brokers × 10k shared topics registered on the real Rust NameServer: its CPU per request for
//! the audit (GET_ROUTEINFO_BY_TOPIC of a broker's own topic), the full audit
//! (GET_BROKER_CLUSTER_INFO), a shared topic's route, beside the heartbeat (QUERY_DATA_VERSION)
//! and the whole topic list (206) that the read-back never sends. On the daemon: its idle CPU
//! against 3 real NameServers with the read-back at its default and off, SECS seconds each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rmq_registrar::broker::body::{DataVersion, TopicConfig};
use rmq_registrar::broker::{BrokerApi, BrokerIdentity, RegisterOptions};
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::RemotingCommand;

use super::{
    clock_ticks_per_second, cpu_ticks, spawn_registrar, start_namesrv, wait_ready, wrapper,
    BoxError,
};

const BROKERS: usize = 100;
const TOPICS: usize = 10_000;
/// GET_ALL_TOPIC_LIST_FROM_NAMESERVER: O(topics) under the NameServer's lock.
const GET_ALL_TOPIC_LIST: i32 = 206;
/// The daemon's idle budget with the read-back on, 3 NameServers (README).
const BUDGET_CPU_S_PER_HOUR: f64 = 3.6;

fn identity(i: usize) -> BrokerIdentity {
    BrokerIdentity {
        cluster: "BenchCluster".into(),
        name: format!("bench-b{i:03}"),
        id: 0,
        addr: format!("127.0.0.{}:10911", 2 + i),
        ha_addr: format!("127.0.0.{}:10912", 2 + i),
        zone: None,
    }
}

/// How long each request type is sent for: the NameServer's CPU is read in clock ticks
/// (10 ms), so a row needs hundreds of them.
const ROW_TIME: Duration = Duration::from_secs(5);

/// Builds one request.
type Make<'a> = Box<dyn Fn() -> RemotingCommand + 'a>;

/// Sequential requests made by `make` for [`ROW_TIME`]: how many, NameServer CPU-ms and wall ms
/// per request, and the reply's body size.
async fn per_request(
    c: &RemotingClient,
    ns: &str,
    pid: u32,
    make: &Make<'_>,
) -> Result<(usize, f64, f64, usize), BoxError> {
    let hz = clock_ticks_per_second();
    let (mut n, mut bytes) = (0usize, 0);
    let (t0, w0) = (cpu_ticks(pid), Instant::now());
    while w0.elapsed() < ROW_TIME {
        let r = c
            .invoke_sync(Some(ns), make(), Duration::from_secs(30))
            .await?;
        bytes = r.body.as_ref().map_or(0, |b| b.len());
        n += 1;
    }
    let cpu = (cpu_ticks(pid) - t0) as f64 / hz * 1000.0 / n as f64;
    let wall = w0.elapsed().as_secs_f64() * 1000.0 / n as f64;
    Ok((n, cpu, wall, bytes))
}

/// The NameServer's side: 100 brokers × 10k topics registered, then each request type timed.
async fn namesrv_cost() -> Result<(), BoxError> {
    let c = RemotingClient::new(ClientConfig::default(), None);
    let ns = start_namesrv(&c).await?;
    let api = BrokerApi::new(c.clone());
    let shared = wrapper(TOPICS);
    let t0 = Instant::now();
    for i in 0..BROKERS {
        let id = identity(i);
        let mut w = shared.clone();
        w.data_version = DataVersion::now();
        w.topic_config_table
            .insert(id.name.clone(), TopicConfig::new(id.name.clone(), 1));
        let out = api
            .register_to(
                std::slice::from_ref(&ns.1),
                &id,
                &Arc::new(w),
                &RegisterOptions::default(),
            )
            .await;
        if let Some(Err(e)) = out.per_namesrv.first().map(|o| &o.result) {
            return Err(format!("registering {}: {e}", id.name).into());
        }
    }
    println!(
        "\nroute read-back cost on rocketmq-namesrv-rust: {BROKERS} brokers x {TOPICS} shared topics registered in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    println!(
        "| request | sent | NameServer CPU-ms per request | wall ms per request | reply bytes |"
    );
    println!("|---|---:|---:|---:|---:|");
    let pid = ns.0.id();
    let own = identity(7);
    let rows: [(&str, Make); 5] = [
        (
            "QUERY_DATA_VERSION (the heartbeat, for comparison)",
            Box::new(|| {
                let mut r = RemotingCommand::request(request::QUERY_DATA_VERSION)
                    .with_field("brokerName", &own.name)
                    .with_field("brokerAddr", &own.addr)
                    .with_field("clusterName", &own.cluster)
                    .with_field("brokerId", "0");
                r.body = Some(
                    serde_json::to_vec(&DataVersion::now())
                        .unwrap_or_default()
                        .into(),
                );
                r
            }),
        ),
        (
            "GET_ROUTEINFO_BY_TOPIC, the broker's own topic (the audit)",
            Box::new(|| {
                RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC)
                    .with_field("topic", &own.name)
            }),
        ),
        (
            "GET_ROUTEINFO_BY_TOPIC, a topic on all 100 brokers",
            Box::new(|| {
                RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC)
                    .with_field("topic", "bench-topic-000001")
            }),
        ),
        (
            "GET_BROKER_CLUSTER_INFO (the full audit, every 5 min)",
            Box::new(|| RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO)),
        ),
        (
            "GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206: never sent)",
            Box::new(|| RemotingCommand::request(GET_ALL_TOPIC_LIST)),
        ),
    ];
    let mut audit_ms = 0.0;
    for (i, (what, make)) in rows.iter().enumerate() {
        let (n, cpu, wall, bytes) = per_request(&c, &ns.1, pid, make).await?;
        if i == 1 {
            audit_ms = cpu;
        }
        println!("| {what} | {n} | {cpu:.3} | {wall:.3} | {bytes} |");
    }
    // Every broker's daemon audits each NameServer every 5 s: 720 audits an hour.
    println!(
        "\n{BROKERS} daemons auditing every 5 s cost each NameServer {:.1} CPU-s per hour (720 audits per daemon per hour at {audit_ms:.3} ms)",
        audit_ms * 720.0 * BROKERS as f64 / 1000.0
    );
    c.shutdown();
    Ok(())
}

/// The daemon's side: idle CPU against 3 NameServers, read-back at the default and off.
async fn daemon_cost(secs: u64) -> Result<(), BoxError> {
    let c = RemotingClient::new(ClientConfig::default(), None);
    let (_nss, list) = super::three_namesrvs(&c).await?;
    let hz = clock_ticks_per_second();
    println!("\ndaemon idle CPU against 3 rocketmq-namesrv-rust, {secs} s each, heartbeats every 1 s (the default); budget with the read-back on: {BUDGET_CPU_S_PER_HOUR} CPU-s per hour");
    println!("| route.audit_interval | CPU-s per hour | audits per hour | within budget |");
    println!("|---|---:|---:|---|");
    for (label, keys) in [("5s (default)", ""), ("off", "audit_interval = \"off\"\n")] {
        let dir = tempfile::tempdir()?;
        let (cfg, http) = super::idle_config("bench-route", dir.path(), 2, &list, "")?;
        let cfg = format!("{cfg}[route]\n{keys}");
        let child = spawn_registrar(dir.path(), &cfg)?;
        let pid = child.id();
        wait_ready(&http).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let audits = |text: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with("rmq_registrar_route_audits_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let scrape = || async {
            reqwest::get(format!("http://{http}/metrics"))
                .await?
                .text()
                .await
        };
        let (t0, a0) = (cpu_ticks(pid), audits(&scrape().await?));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let used = (cpu_ticks(pid) - t0) as f64 / hz;
        let done = audits(&scrape().await?) - a0;
        let _ = child.stop().await?;
        let per_hour = used / secs as f64 * 3600.0;
        println!(
            "| {label} | {per_hour:.2} | {:.0} | {} |",
            done / secs as f64 * 3600.0,
            if per_hour <= BUDGET_CPU_S_PER_HOUR {
                "yes"
            } else {
                "NO"
            }
        );
    }
    c.shutdown();
    Ok(())
}

/// Both sides.
pub async fn run(secs: u64) -> Result<(), BoxError> {
    namesrv_cost().await?;
    daemon_cost(secs).await
}
