//! Benchmarks: remoting round trips against a loopback responder and the real NameServer,
//! the register body's encode cost, the daemon at 100k topics (`scale`) and through 2,000 lost
//! connections (`soak`), a fleet of registrars sharing a NameServer (`fleet`). Prints tables;
//! run with `cargo run --release --bin rmq-bench`.

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
#[path = "rmq-bench/daemon.rs"]
mod daemon;
#[path = "rmq-bench/fleet.rs"]
mod fleet;
#[path = "rmq-bench/heartbeat.rs"]
mod heartbeat;
#[path = "rmq-bench/remoting.rs"]
mod remoting;
#[path = "rmq-bench/route.rs"]
mod route;
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

/// An idle daemon's config: `topics` topics in `dir`/topics.json (compressed above 10k), the
/// NameServers `list` (quoted), `register` keys added, a free HTTP port, warnings only; the
/// config text and its HTTP address.
fn idle_config(
    name: &str,
    dir: &std::path::Path,
    topics: usize,
    list: &[String],
    register: &str,
) -> Result<(String, String), BoxError> {
    let file = dir.join("topics.json");
    std::fs::write(&file, java_topics_json(topics))?;
    let http = free_addr()?;
    let cfg = format!(
        "[broker]\nname = \"{name}\"\naddr = \"127.0.0.1:10911\"\n[broker.health]\ncheck = \"none\"\n[broker.topics]\nfile = {file:?}\n\
         [namesrv]\naddrs = [{}]\n[register]\ncompressed = {}\ntimeout = \"10s\"\n{register}[http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
        list.join(", "),
        topics > 10_000
    );
    Ok((cfg, http))
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
        remoting::run().await?;
    }
    if what == "all" || what == "body" {
        parse()?;
        body();
    }
    if what == "all" || what == "healthz" {
        daemon::healthz().await?;
    }
    if what == "cpu" {
        cpu::run(arg_or(5)).await?;
    }
    if what == "fleet" {
        use clap::Parser;
        // "fleet" stands where a program's name would.
        fleet::run(fleet::Args::try_parse_from(std::env::args().skip(1))?).await?;
    }
    if what == "heartbeat" {
        heartbeat::run(arg_or(60)).await?;
    }
    if what == "route" {
        route::run(arg_or(120)).await?;
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
        daemon::idle(arg_or(60)).await?;
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

/// Three NameServers, and their addresses quoted for a config's list.
async fn three_namesrvs(c: &RemotingClient) -> Result<([Namesrv; 3], Vec<String>), BoxError> {
    let nss = [
        start_namesrv(c).await?,
        start_namesrv(c).await?,
        start_namesrv(c).await?,
    ];
    let list = nss.iter().map(|n| format!("{:?}", n.1)).collect();
    Ok((nss, list))
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

/// Completed registration rounds, read from the daemon's /metrics.
async fn rounds_done(client: &reqwest::Client, http: &str) -> Option<u64> {
    let text = client
        .get(format!("http://{http}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("rmq_registrar_registration_round_duration_seconds_count"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// `(VmRSS, VmHWM)` of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"))
}

/// One `/proc/PID/status` field, in KiB (0 when unreadable).
fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// utime + stime of a `/proc/.../stat` line. The fields after the command name (which may hold
/// spaces) start at the state; utime and stime are the 12th and 13th of them. Counted by
/// position: an earlier version skipped the fields that are not unsigned numbers, and for a
/// process without a terminal (tpgid -1) read stime + cutime instead.
fn stat_ticks(stat: &str) -> u64 {
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
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

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_ticks_are_utime_and_stime_whatever_the_terminal_fields_hold() {
        // A daemon's line: no terminal (tty 0, tpgid -1), a command name with a space.
        let line = "2240 (a b) S 1 2240 2240 0 -1 4194304 128 0 0 0 700 50 3 4 20 0 1 0 5";
        assert_eq!(super::stat_ticks(line), 750);
        let tty = "2240 (sh) R 1 2240 2240 34816 2240 4194304 128 0 0 0 9 1 0 0 20 0 1 0 5";
        assert_eq!(super::stat_ticks(tty), 10);
    }
}
