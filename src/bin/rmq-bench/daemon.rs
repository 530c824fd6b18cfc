//! `rmq-bench daemon [SECS]` (idle CPU against real NameServers) and `rmq-bench healthz`
//! (/healthz latency while a large topics file is parsed).

use super::*;

pub async fn idle(idle_secs: u64) -> Result<(), BoxError> {
    registrar_exe()?;
    let c = RemotingClient::new(ClientConfig::default(), None);
    let (nss, list) = super::three_namesrvs(&c).await?;
    let hz = clock_ticks_per_second();
    println!("\ndaemon against 3 rocketmq-namesrv-rust processes (idle CPU over {idle_secs} s)");
    println!(
        "| process | topics | ready after | RSS idle | peak RSS | idle CPU | SIGTERM to exit |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (mut idle_split, mut over) = (None, None);
    for (topics, measure_cpu) in [(2usize, true), (100_000, false)] {
        let dir = tempfile::tempdir()?;
        let (cfg, http) = super::idle_config("bench-broker", dir.path(), topics, &list, "")?;
        let child = spawn_registrar(dir.path(), &cfg)?;
        let pid = child.id();
        let ready = wait_ready(&http).await?;
        // Idle RSS from the second round on (the first grows the allocator's arenas), once the
        // blocking threads that round used have exited (5 s keep-alive).
        wait_rounds(&http, 2).await?;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let (rss, _) = rss_kib(pid);
        if topics == 2 {
            idle_split = Some((status_kib(pid, "RssAnon:"), status_kib(pid, "RssFile:")));
            if rss > IDLE_RSS_BOUND_KIB {
                over = Some(rss);
            }
        }
        let cpu = if measure_cpu {
            let t0 = cpu_ticks(pid);
            tokio::time::sleep(Duration::from_secs(idle_secs)).await;
            let used = (cpu_ticks(pid) - t0) as f64 / hz;
            format!("{:.3} %", used / idle_secs as f64 * 100.0)
        } else {
            "-".into()
        };
        let (_, peak) = rss_kib(pid);
        let t0 = Instant::now();
        let status = child.stop().await?;
        let stop = t0.elapsed();
        println!(
            "| rmq-registrar | {topics} | {:.0} ms | {:.1} MiB | {:.1} MiB | {cpu} | {:.0} ms (exit {}) |",
            ready.as_secs_f64() * 1e3,
            rss as f64 / 1024.0,
            peak as f64 / 1024.0,
            stop.as_secs_f64() * 1e3,
            status.code().unwrap_or(-1)
        );
    }
    for ns in &nss {
        let (rss, peak) = rss_kib(ns.0.id());
        println!(
            "| rocketmq-namesrv-rust (peer) | - | - | {:.1} MiB | {:.1} MiB | - | - |",
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }
    if let Some((anon, file)) = idle_split {
        println!("idle, 2 topics: {anon} KiB anonymous + {file} KiB file-backed (executable and libc pages)");
    }
    if let Some(rss) = over {
        return Err(
            format!("idle RSS {rss} KiB is above the bound of {IDLE_RSS_BOUND_KIB} KiB").into(),
        );
    }
    Ok(())
}

/// The README's bound on an idle daemon's RSS (a few topics, release build, after the second
/// round); tests/it/idle_memory.rs holds it too, for the packaged binary next to a real broker.
const IDLE_RSS_BOUND_KIB: u64 = 8 * 1024;

/// Waits until the daemon at `http` has finished `n` registration rounds (at most 120 s).
async fn wait_rounds(http: &str, n: u64) -> Result<(), BoxError> {
    let client = http_client()?;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if rounds_done(&client, http).await.unwrap_or(0) >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("fewer than {n} rounds in 120 s").into())
}

/// /healthz latency while 100k-topic rounds run: the rounds' parse and encode must not stall the
/// async thread that serves it. Sequential GETs for 35 s with a round every 10 s, and a SIGHUP
/// (a reload with a full re-parse) every 5 s.
pub async fn healthz() -> Result<(), BoxError> {
    registrar_exe()?;
    let c = RemotingClient::new(ClientConfig::default(), None);
    let ns = start_namesrv(&c).await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("topics.json"), java_topics_json(100_000))?;
    let http = free_addr()?;
    let cfg = format!(
        "[broker]\nname = \"bench-broker\"\naddr = \"127.0.0.1:10911\"\n[broker.health]\ncheck = \"none\"\n\
         [broker.topics]\nfile = {:?}\n[namesrv]\naddrs = [{:?}]\n[register]\ninterval = \"10s\"\ncompressed = true\n\
         timeout = \"10s\"\n[http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
        dir.path().join("topics.json"),
        ns.1,
    );
    let child = spawn_registrar(dir.path(), &cfg)?;
    let pid = child.id();
    wait_ready(&http).await?;
    let client = http_client()?;
    let url = format!("http://{http}/healthz");
    let mut lat = Vec::new();
    let t0 = Instant::now();
    let mut next_hup = Duration::from_secs(5);
    while t0.elapsed() < Duration::from_secs(35) {
        if t0.elapsed() >= next_hup {
            Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status()?;
            next_hup += Duration::from_secs(5);
        }
        let t = Instant::now();
        let r = client.get(&url).send().await?;
        r.bytes().await?;
        lat.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.stop().await?;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "\n/healthz during 100k-topic rounds (every 10 s) and reloads (every 5 s), {} requests",
        lat.len()
    );
    println!("| p50 | p99 | max |");
    println!("|---:|---:|---:|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms |",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}
