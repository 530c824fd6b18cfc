//! Benchmarks: remoting round trips against a loopback responder and the real NameServer,
//! the register body's encode cost, the daemon at 100k topics (`scale`) and through 2,000 lost
//! connections (`soak`). Prints tables; run with `cargo run --release --bin rmq-bench`.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rmq_registrar::broker::body::{
    read_topics_json, DataVersion, RegisterBrokerBody, TopicConfig, TopicConfigWrapper,
};
use rmq_registrar::broker::{compressed_body, CompressionForm};
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::{FrameCodec, RemotingCommand};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

#[path = "rmq-bench/cpu.rs"]
mod cpu;
#[path = "rmq-bench/heartbeat.rs"]
mod heartbeat;
#[path = "rmq-bench/scale.rs"]
mod scale;
#[path = "rmq-bench/soak.rs"]
mod soak;

type BoxError = Box<dyn std::error::Error>;

/// Heap allocations made by this process so far (`heartbeat` reports them per beat).
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting allocations: one relaxed add each.
struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let what = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if what == "all" || what == "remoting" {
        remoting().await?;
    }
    if what == "all" || what == "body" {
        parse()?;
        body();
    }
    if what == "all" || what == "healthz" {
        healthz().await?;
    }
    if what == "cpu" {
        cpu::run(arg_or(5)).await?;
    }
    if what == "heartbeat" {
        heartbeat::run(arg_or(60)).await?;
    }
    if what == "scale" {
        scale::run(arg_or(3)).await?;
    }
    if what == "scale-150k" {
        scale::run_plain(arg_or(3)).await?;
    }
    if what == "soak" {
        soak::run(arg_or(2000)).await?;
    }
    if what == "all" || what == "daemon" {
        daemon(arg_or(60)).await?;
    }
    Ok(())
}

/// The subcommand's numeric argument, or `default`.
fn arg_or<T: std::str::FromStr>(default: T) -> T {
    std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A loopback address with a port free right now, for a server the bench starts.
fn free_addr() -> Result<String, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .to_string())
}

/// Answers every request with an empty SUCCESS; the floor the client can reach.
async fn responder() -> Result<String, BoxError> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut f = Framed::new(s, FrameCodec::default());
                while let Some(Ok(req)) = f.next().await {
                    let resp = RemotingCommand::response_to(&req, 0, None);
                    if f.send(resp).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// The NameServer process, its address, and its home (kept until the process is gone).
struct Namesrv(Child, String, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Namesrv {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_namesrv(c: &RemotingClient) -> Result<Namesrv, BoxError> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    start_namesrv_at(c, port, tempfile::tempdir()?).await
}

/// Starts the NameServer on `port` with `home`, and waits until it answers.
async fn start_namesrv_at(
    c: &RemotingClient,
    port: u16,
    home: tempfile::TempDir,
) -> Result<Namesrv, BoxError> {
    let child = Command::new("rocketmq-namesrv-rust")
        .args([
            "--listenPort",
            &port.to_string(),
            "--bindAddress",
            "127.0.0.1",
        ])
        .arg("--rocketmqHome")
        .arg(home.path())
        .arg("--kvConfigPath")
        .arg(home.path().join("kv.json"))
        .env("ROCKETMQ_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let ns = Namesrv(child, format!("127.0.0.1:{port}"), home);
    for _ in 0..3000 {
        let req = RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO);
        if c.invoke_sync(Some(&ns.1), req, Duration::from_secs(1))
            .await
            .is_ok()
        {
            return Ok(ns);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("NameServer did not start".into())
}

fn cluster_info() -> RemotingCommand {
    RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO)
}

async fn sync_rate(c: &RemotingClient, addr: &str, n: usize) -> Result<f64, BoxError> {
    let t0 = Instant::now();
    for _ in 0..n {
        c.invoke_sync(Some(addr), cluster_info(), Duration::from_secs(5))
            .await?;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// Replies per second with `in_flight` requests outstanding, and how many got no reply in 2 s.
async fn async_rate(
    c: &RemotingClient,
    addr: &str,
    in_flight: usize,
    n: usize,
) -> Result<(f64, usize), BoxError> {
    let left = Arc::new(AtomicUsize::new(n));
    let lost = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (c, addr, left, lost) = (c.clone(), addr.to_string(), left.clone(), lost.clone());
        workers.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                .is_ok()
            {
                let f = c
                    .invoke_async(Some(&addr), cluster_info(), Duration::from_secs(2))
                    .await?;
                match f.await {
                    Ok(_) => {}
                    Err(e) if e.is_timeout() => {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok::<(), rmq_registrar::client::ClientError>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let lost = lost.load(Ordering::Relaxed);
    Ok(((n - lost) as f64 / t0.elapsed().as_secs_f64(), lost))
}

async fn remoting() -> Result<(), BoxError> {
    let c = RemotingClient::new(ClientConfig::default(), None);
    c.start();
    let responder = responder().await?;
    let ns = start_namesrv(&c).await?;
    println!("\nremoting round trips (GET_BROKER_CLUSTER_INFO, requests per second)");
    println!("(lost: requests the peer never answered within 2 s)");
    println!(
        "| peer | sync, 1 in flight | async, 64 in flight | lost | async, 1024 in flight | lost |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, addr, n) in [
        ("loopback responder", responder.as_str(), 200_000),
        ("rocketmq-namesrv-rust", ns.1.as_str(), 100_000),
    ] {
        // Warm up the connection and the peer.
        sync_rate(&c, addr, 1000).await?;
        let s = sync_rate(&c, addr, n / 10).await?;
        let (a64, l64) = async_rate(&c, addr, 64, n).await?;
        let (a1k, l1k) = async_rate(&c, addr, 1024, n).await?;
        println!("| {name} | {s:.0} | {a64:.0} | {l64} | {a1k:.0} | {l1k} |");
    }
    c.shutdown();
    Ok(())
}

fn wrapper(n: usize) -> TopicConfigWrapper {
    let mut w = TopicConfigWrapper {
        data_version: DataVersion::now(),
        ..Default::default()
    };
    for i in 0..n {
        let name = format!("bench-topic-{i:06}");
        w.topic_config_table
            .insert(name.clone(), TopicConfig::new(name, 8));
    }
    w
}

fn time<T>(mut f: impl FnMut() -> T) -> (T, Duration) {
    let runs = 5;
    let mut best = Duration::MAX;
    let mut out = f();
    for _ in 0..runs {
        let t0 = Instant::now();
        out = f();
        best = best.min(t0.elapsed());
    }
    (out, best)
}

/// topics.json parse: streamed from the file (what the daemon does) against serde_json on the
/// whole text already in memory (the floor a whole-file read could reach).
fn parse() -> Result<(), BoxError> {
    println!("\ntopics.json parse (best of 5)");
    println!("| topics | file bytes | streamed from the file | whole text in memory (floor) |");
    println!("|---:|---:|---:|---:|");
    let dir = tempfile::tempdir()?;
    for n in [1_000, 10_000, 100_000] {
        let path = dir.path().join("topics.json");
        let text = java_topics_json(n);
        std::fs::write(&path, &text)?;
        let (streamed, ts) = time(|| {
            read_topics_json(|| std::fs::File::open(&path))
                .map_or(0, |w| w.topic_config_table.len())
        });
        let (whole, tw) = time(|| {
            serde_json::from_str::<TopicConfigWrapper>(&text)
                .map_or(0, |w| w.topic_config_table.len())
        });
        if streamed != n || whole != n {
            return Err(format!("parsed {streamed} / {whole} of {n} topics").into());
        }
        println!(
            "| {n} | {} | {:.1} ms | {:.1} ms |",
            text.len(),
            ts.as_secs_f64() * 1e3,
            tw.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn body() {
    println!("\nREGISTER_BROKER body encode (best of 5)");
    println!("| topics | JSON bytes | JSON time | raw deflate bytes | raw deflate time | zlib bytes | zlib time |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in [1_000, 10_000, 100_000] {
        let w = wrapper(n);
        let body = RegisterBrokerBody {
            filter_server_list: vec![],
            topic_config_serialize_wrapper: w.clone(),
        };
        let (json, tj) = time(|| serde_json::to_vec(&body).unwrap_or_default());
        let (raw, tr) = time(|| compressed_body(&w, &[], CompressionForm::RawDeflate));
        let (zlib, tz) = time(|| compressed_body(&w, &[], CompressionForm::Zlib5x));
        println!(
            "| {n} | {} | {:.2} ms | {} | {:.2} ms | {} | {:.2} ms |",
            json.len(),
            tj.as_secs_f64() * 1e3,
            raw.len(),
            tr.as_secs_f64() * 1e3,
            zlib.len(),
            tz.as_secs_f64() * 1e3
        );
    }
}

/// `(VmRSS, VmHWM)` of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields after the command: state(skipped: not a number) ... utime is 14th overall.
    f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn java_topics_json(n: usize) -> String {
    let mut w = wrapper(n);
    w.data_version = DataVersion {
        counter: 1,
        state_version: 0,
        timestamp: 1_700_000_000_000,
    };
    serde_json::to_string(&w).unwrap_or_default()
}

async fn wait_ready(http: &str) -> Result<Duration, BoxError> {
    let client = http_client()?;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(120) {
        if let Ok(r) = client.get(format!("http://{http}/readyz")).send().await {
            if r.status().as_u16() == 200 {
                return Ok(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("daemon not ready in 120 s".into())
}

/// The release rmq-registrar beside this bench.
fn registrar_exe() -> Result<std::path::PathBuf, BoxError> {
    let exe = std::env::current_exe()?.with_file_name("rmq-registrar");
    if !exe.is_file() {
        return Err(format!("{} not built: cargo build --release", exe.display()).into());
    }
    Ok(exe)
}

/// A running rmq-registrar; killed if the bench leaves early (an error, a timeout).
struct Registrar(Child);

impl Registrar {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then its exit within 30 s (else SIGKILL and an error).
    async fn stop(mut self) -> Result<std::process::ExitStatus, BoxError> {
        Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()?;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Some(status) = self.0.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err("rmq-registrar did not exit within 30 s of SIGTERM".into())
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Writes `cfg` into `dir` and starts rmq-registrar on it, its log discarded.
fn spawn_registrar(dir: &std::path::Path, cfg: &str) -> Result<Registrar, BoxError> {
    let path = dir.join("rmq.toml");
    std::fs::write(&path, cfg)?;
    Ok(Registrar(
        Command::new(registrar_exe()?)
            .arg("--config")
            .arg(path)
            .stderr(Stdio::null())
            .spawn()?,
    ))
}

/// An HTTP client whose every request ends within 5 s.
fn http_client() -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?)
}

async fn daemon(idle_secs: u64) -> Result<(), BoxError> {
    registrar_exe()?;
    let c = RemotingClient::new(ClientConfig::default(), None);
    let nss = [
        start_namesrv(&c).await?,
        start_namesrv(&c).await?,
        start_namesrv(&c).await?,
    ];
    let list: Vec<String> = nss.iter().map(|n| format!("{:?}", n.1)).collect();
    let hz = clock_ticks_per_second();
    println!("\ndaemon against 3 rocketmq-namesrv-rust processes (idle CPU over {idle_secs} s)");
    println!(
        "| process | topics | ready after | RSS idle | peak RSS | idle CPU | SIGTERM to exit |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (topics, measure_cpu) in [(2usize, true), (100_000, false)] {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("topics.json"), java_topics_json(topics))?;
        let http = free_addr()?;
        let cfg = format!(
            "[broker]\nname = \"bench-broker\"\naddr = \"127.0.0.1:10911\"\n[broker.health]\ncheck = \"none\"\n[broker.topics]\nfile = {:?}\n\
             [namesrv]\naddrs = [{}]\n[register]\ncompressed = {}\ntimeout = \"10s\"\n[http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
            dir.path().join("topics.json"),
            list.join(", "),
            topics > 10_000
        );
        let child = spawn_registrar(dir.path(), &cfg)?;
        let pid = child.id();
        let ready = wait_ready(&http).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (rss, _) = rss_kib(pid);
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
    Ok(())
}

/// /healthz latency while 100k-topic rounds run: the rounds' parse and encode must not stall the
/// async workers that serve it. Sequential GETs for 35 s with a round every 10 s, and a SIGHUP
/// (a reload with a full re-parse) every 5 s.
async fn healthz() -> Result<(), BoxError> {
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
