//! `rmq-bench heartbeat [SECS]`: what a heartbeat costs (issue 17). Bytes on the wire and
//! allocations per beat, through a byte-counting proxy in front of the real NameServer; then the
//! daemon's idle CPU against 3 real NameServers, heartbeats on and off, at 2 and 100k topics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rmq_registrar::broker::body::TopicConfigWrapper;
use rmq_registrar::broker::{BrokerApi, BrokerIdentity, RegisterOptions};
use rmq_registrar::client::{ClientConfig, RemotingClient, Waiter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{
    clock_ticks_per_second, cpu_ticks, spawn_registrar, start_namesrv, wait_ready, wrapper,
    BoxError, ALLOCATIONS,
};

/// Copies `from` to `to`, adding every byte to `count`; one buffer for the connection's life.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    count: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        count.fetch_add(n, Ordering::Relaxed);
    }
}

/// A proxy to `upstream` counting bytes each way: (address, sent, received).
async fn counting_proxy(
    upstream: String,
) -> Result<(String, Arc<AtomicUsize>, Arc<AtomicUsize>), BoxError> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    let (up, down) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (u, d) = (up.clone(), down.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let Ok(t) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = (s.set_nodelay(true), t.set_nodelay(true));
            let (sr, sw) = s.into_split();
            let (tr, tw) = t.into_split();
            tokio::spawn(pump(sr, tw, u.clone()));
            tokio::spawn(pump(tr, sw, d.clone()));
        }
    });
    Ok((addr, up, down))
}

/// Bytes each way and allocations per heartbeat, against the real NameServer holding the broker.
async fn per_beat() -> Result<(), BoxError> {
    let probe = RemotingClient::new(ClientConfig::default(), None);
    let ns = start_namesrv(&probe).await?;
    let (addr, up, down) = counting_proxy(ns.1.clone()).await?;
    let api = BrokerApi::new(RemotingClient::new(ClientConfig::default(), None));
    let id = BrokerIdentity {
        cluster: "DefaultCluster".into(),
        name: "broker-a".into(),
        id: 0,
        addr: "10.0.0.1:10911".into(),
        ha_addr: "10.0.0.1:10912".into(),
        zone: None,
    };
    let table: Arc<TopicConfigWrapper> = Arc::new(wrapper(2));
    let out = api
        .register_to(
            std::slice::from_ref(&addr),
            &id,
            &table,
            &RegisterOptions::default(),
        )
        .await;
    if out.per_namesrv.iter().any(|o| o.result.is_err()) {
        return Err("registration with the NameServer failed".into());
    }
    let version = table.data_version;
    let t = Duration::from_secs(1);
    let beat = api.prepare_heartbeat(&id, version)?;
    let mut waiter = Waiter::new();
    println!("\nheartbeat (QUERY_DATA_VERSION) against rocketmq-namesrv-rust, 2000 beats each");
    println!(
        "| request | request bytes | reply bytes | answered changed | allocations per beat (this process, client + proxy) |"
    );
    println!("|---|---:|---:|---:|---:|");
    for prepared in [true, false] {
        let mut once = async || {
            if prepared {
                api.heartbeat(&addr, &beat, t, &mut waiter).await
            } else {
                api.query_data_version(&addr, &id, version, t).await
            }
        };
        // Warm: connection, peer info, buffers.
        for _ in 0..100 {
            once().await?;
        }
        let n = 2_000;
        let (u0, d0) = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
        let a0 = ALLOCATIONS.load(Ordering::Relaxed);
        let mut changed = 0;
        for _ in 0..n {
            if once().await?.changed {
                changed += 1;
            }
        }
        let allocs = ALLOCATIONS.load(Ordering::Relaxed) - a0;
        // Let the proxy's last copies land.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (u1, d1) = (up.load(Ordering::Relaxed), down.load(Ordering::Relaxed));
        let what = if prepared {
            "prepared once (the daemon's heartbeat)"
        } else {
            "built per call"
        };
        println!(
            "| {what} | {:.0} | {:.0} | {changed} | {:.2} |",
            (u1 - u0) as f64 / f64::from(n),
            (d1 - d0) as f64 / f64::from(n),
            allocs as f64 / f64::from(n)
        );
    }
    Ok(())
}

/// The daemon's idle CPU over `secs`, heartbeats on (defaults) and off, 3 NameServers.
async fn idle_cpu(secs: u64) -> Result<(), BoxError> {
    let c = RemotingClient::new(ClientConfig::default(), None);
    let (_nss, list) = super::three_namesrvs(&c).await?;
    let hz = clock_ticks_per_second();
    println!(
        "\ndaemon idle CPU against 3 rocketmq-namesrv-rust, {secs} s each (register.interval 30 s)"
    );
    println!("| topics | heartbeats | CPU-s per hour | CPU % |");
    println!("|---:|---|---:|---:|");
    for topics in [2usize, 100_000] {
        for (label, keys) in [
            ("1 s (default)", ""),
            ("off", "heartbeat = \"off\"\nheartbeat_timeout = \"off\"\n"),
        ] {
            let dir = tempfile::tempdir()?;
            let keys = format!("heartbeat_timeout = \"30s\"\n{keys}");
            let (cfg, http) = super::idle_config("bench-hb", dir.path(), topics, &list, &keys)?;
            // `heartbeat_timeout` 30 s: at least timeout (10 s, for 100k topics) + 2 beats.
            let cfg = if keys.is_empty() {
                cfg
            } else {
                cfg.replace("heartbeat_timeout = \"30s\"\n", "")
            };
            let child = spawn_registrar(dir.path(), &cfg)?;
            let pid = child.id();
            wait_ready(&http).await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let t0 = cpu_ticks(pid);
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let used = (cpu_ticks(pid) - t0) as f64 / hz;
            let _ = child.stop().await?;
            println!(
                "| {topics} | {label} | {:.2} | {:.4} % |",
                used / secs as f64 * 3600.0,
                used / secs as f64 * 100.0
            );
        }
    }
    Ok(())
}

/// Runs both measurements.
pub async fn run(secs: u64) -> Result<(), BoxError> {
    per_beat().await?;
    idle_cpu(secs).await
}
