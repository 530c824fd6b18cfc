//! `rmq-bench soak [cycles]`: one daemon through thousands of lost NameServer connections.
//!
//! The daemon reaches a real NameServer through a proxy in this bench. Even cycles reset the
//! daemon's connection at the proxy (RST, the NameServer keeps running); odd cycles kill the
//! NameServer and start it again on the same port (it forgets every broker). A cycle ends when
//! the daemon has registered again and the broker is back in the NameServer's cluster info.

use std::time::{Duration, Instant};

use rmq_registrar::broker::body::broker_addr_table;
use rmq_registrar::client::{ClientConfig, RemotingClient};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::remoting::cluster_info;
use super::{rss_kib, spawn_registrar, start_namesrv_at, wait_ready, BoxError};

const BROKER: &str = "soak-broker";

/// A TCP proxy whose connections can all be reset at once.
struct Proxy {
    addr: String,
    reset: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Result<Proxy, BoxError> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?.to_string();
        let (reset, rx) = watch::channel(0u64);
        tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                let (upstream, mut rx) = (upstream.clone(), rx.clone());
                rx.mark_unchanged();
                tokio::spawn(async move {
                    // NameServer down: closing the daemon's side is what a refused connect
                    // looks like through a proxy.
                    let Ok(mut up) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = rx.changed() => {
                            // Zero linger: the close sends RST, as a dying middlebox does.
                            let _ = down.set_zero_linger();
                        }
                    }
                });
            }
        });
        Ok(Proxy { addr, reset })
    }

    fn reset_all(&self) {
        self.reset.send_modify(|g| *g += 1);
    }
}

async fn in_cluster(c: &RemotingClient, ns: &str) -> bool {
    match c
        .invoke_sync(Some(ns), cluster_info(), Duration::from_secs(1))
        .await
    {
        Ok(r) => broker_addr_table(&r.body.unwrap_or_default())
            .map(|t| t.get(BROKER).is_some())
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The daemon's counters and gauges that the soak watches.
struct Scrape {
    ok: f64,
    tasks: f64,
}

async fn scrape(web: &reqwest::Client, http: &str, proxy: &str) -> Result<Scrape, BoxError> {
    let text = web
        .get(format!("http://{http}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |series: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(Scrape {
        ok: value(&format!(
            "rmq_registrar_registrations_total{{namesrv=\"{proxy}\",outcome=\"ok\"}}"
        )),
        tasks: value("rmq_registrar_runtime_tasks"),
    })
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Waits until the daemon has registered past `ok_before` and the broker is listed.
async fn until_back(
    web: &reqwest::Client,
    c: &RemotingClient,
    http: &str,
    proxy: &str,
    ns: &str,
    ok_before: f64,
) -> Result<(), BoxError> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if scrape(web, http, proxy).await?.ok > ok_before && in_cluster(c, ns).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err("the broker was not back within 30 s".into())
}

struct Sample {
    rss: u64,
    fds: usize,
    tasks: f64,
}

async fn sample(
    web: &reqwest::Client,
    pid: u32,
    http: &str,
    proxy: &str,
) -> Result<Sample, BoxError> {
    // Let the last cycle's connections and tasks finish closing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(Sample {
        rss: rss_kib(pid).0,
        fds: open_fds(pid),
        tasks: scrape(web, http, proxy).await?.tasks,
    })
}

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "- | - | -".into();
    }
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3;
    format!("{:.1} ms | {:.1} ms | {:.1} ms", at(0.5), at(0.99), at(1.0))
}

/// Runs `cycles` cycles (half resets, half restarts) and prints the table.
pub async fn run(cycles: usize) -> Result<(), BoxError> {
    super::registrar_exe()?;
    let c = RemotingClient::new(ClientConfig::default(), None);
    let web = super::http_client()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut ns = Some(start_namesrv_at(&c, port, tempfile::tempdir()?).await?);
    let ns_addr = format!("127.0.0.1:{port}");
    let proxy = Proxy::start(ns_addr.clone()).await?;
    let dir = tempfile::tempdir()?;
    let http = super::free_addr()?;
    let cfg = format!(
        "[broker]\nname = \"{BROKER}\"\naddr = \"127.0.0.1:10911\"\n[broker.health]\ncheck = \"none\"\n\
         [[broker.topics.inline]]\nname = \"SoakTopic\"\n\
         [namesrv]\naddrs = [{:?}]\n[register]\ninterval = \"60s\"\ntimeout = \"3s\"\n[http]\nlisten = \"{http}\"\n[log]\nlevel = \"error\"\n",
        proxy.addr
    );
    let child = spawn_registrar(dir.path(), &cfg)?;
    let pid = child.id();
    wait_ready(&http).await?;
    let (mut resets, mut restarts) = (Vec::new(), Vec::new());
    // Rounds every 60 s, so that few cycles coincide with a scheduled registration.
    let warmup = 20.min(cycles / 2);
    let mut first = None;
    let t_start = Instant::now();
    for i in 0..cycles {
        if i == warmup {
            first = Some(sample(&web, pid, &http, &proxy.addr).await?);
        }
        let ok_before = scrape(&web, &http, &proxy.addr).await?.ok;
        if i % 2 == 0 {
            let t0 = Instant::now();
            proxy.reset_all();
            until_back(&web, &c, &http, &proxy.addr, &ns_addr, ok_before).await?;
            resets.push(t0.elapsed());
        } else {
            let home = tempfile::tempdir()?;
            drop(ns.take());
            let started = start_namesrv_at(&c, port, home).await?;
            // Measured from the moment the bench sees the new NameServer answer (it polls
            // every 20 ms, so the daemon may be a little ahead: a bias towards less).
            let t0 = Instant::now();
            ns = Some(started);
            until_back(&web, &c, &http, &proxy.addr, &ns_addr, ok_before).await?;
            restarts.push(t0.elapsed());
        }
        if (i + 1) % 200 == 0 {
            eprintln!("{} cycles, {:.0} s", i + 1, t_start.elapsed().as_secs_f64());
        }
    }
    let last = sample(&web, pid, &http, &proxy.addr).await?;
    let status = child.stop().await?;
    let first = first.unwrap_or(Sample {
        rss: 0,
        fds: 0,
        tasks: 0.0,
    });
    println!(
        "\nsoak: {cycles} cycles against rocketmq-namesrv-rust through a proxy, {:.0} s",
        t_start.elapsed().as_secs_f64()
    );
    println!(
        "(latency: reset → registered again and listed; restart: NameServer answering → listed)"
    );
    println!("| cycle | count | p50 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| connection reset (RST at the proxy) | {} | {} |",
        resets.len(),
        percentiles(resets.clone())
    );
    println!(
        "| NameServer killed and restarted | {} | {} |",
        restarts.len(),
        percentiles(restarts.clone())
    );
    let mut all = resets;
    all.extend(restarts);
    println!("| all | {} | {} |", all.len(), percentiles(all.clone()));
    println!("\n| daemon | after {warmup} cycles | after {cycles} cycles | change |");
    println!("|---|---:|---:|---:|");
    println!(
        "| RSS | {:.2} MiB | {:.2} MiB | {:+} KiB |",
        first.rss as f64 / 1024.0,
        last.rss as f64 / 1024.0,
        last.rss as i64 - first.rss as i64
    );
    println!(
        "| open FDs | {} | {} | {:+} |",
        first.fds,
        last.fds,
        last.fds as i64 - first.fds as i64
    );
    println!(
        "| async tasks | {} | {} | {:+} |",
        first.tasks,
        last.tasks,
        last.tasks - first.tasks
    );
    println!("exit after SIGTERM: {}", status.code().unwrap_or(-1));
    Ok(())
}
