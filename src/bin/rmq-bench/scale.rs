//! `rmq-bench scale`: the daemon with a 100k-topic topics.json, what it costs in time and memory;
//! and (`rmq-bench scale-150k`, also the last table of `scale`) the peak memory of three rounds
//! of 150k topics in plain JSON, split into batches.
//!
//! "Ready" is from process start to the first REGISTER_BROKER frame fully received by a
//! NameServer stand-in that answers at once (so the NameServer's own processing is excluded);
//! the same daemon against the real NameServer is timed to /readyz, its processing included.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::{FrameCodec, RemotingCommand};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

use super::{
    java_topics_json, rounds_done, rss_kib, spawn_registrar, start_namesrv, wait_ready, BoxError,
};

/// Answers everything with SUCCESS at once and notes when the first REGISTER_BROKER arrived.
async fn recording_responder() -> Result<(String, Arc<OnceLock<Instant>>), BoxError> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    let first = Arc::new(OnceLock::new());
    let seen = first.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut f = Framed::new(s, FrameCodec::new(256 * 1024 * 1024));
                while let Some(Ok(req)) = f.next().await {
                    if req.code == request::REGISTER_BROKER {
                        let _ = seen.set(Instant::now());
                    }
                    let resp = RemotingCommand::response_to(&req, 0, None);
                    if f.send(resp).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, first))
}

struct Run {
    ready: Duration,
    steady_kib: u64,
    peak_kib: u64,
}

/// One daemon on `topics` topics against `ns`; `first` (when given) times the first frame.
async fn run_one(
    ns: &str,
    topics: usize,
    compressed: bool,
    first: Option<Arc<OnceLock<Instant>>>,
) -> Result<Run, BoxError> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("topics.json"), java_topics_json(topics))?;
    let http = super::free_addr()?;
    let cfg = format!(
        "[broker]\nname = \"scale-broker\"\naddr = \"127.0.0.1:10911\"\n[broker.health]\ncheck = \"none\"\n\
         [broker.topics]\nfile = {:?}\n[namesrv]\naddrs = [{ns:?}]\n[register]\ninterval = \"10s\"\n\
         compressed = {compressed}\ntimeout = \"10s\"\n[http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
        dir.path().join("topics.json"),
    );
    let t0 = Instant::now();
    let child = spawn_registrar(dir.path(), &cfg)?;
    let pid = child.id();
    let readyz = wait_ready(&http).await?;
    let ready = match first {
        Some(f) => f
            .get()
            .ok_or("ready, but the stand-in saw no REGISTER_BROKER")?
            .duration_since(t0),
        None => readyz,
    };
    // Two more rounds, then the level it stays at.
    tokio::time::sleep(Duration::from_secs(21)).await;
    let (steady_kib, peak_kib) = rss_kib(pid);
    child.stop().await?;
    Ok(Run {
        ready,
        steady_kib,
        peak_kib,
    })
}

/// Topics in the plain-JSON memory row.
const PLAIN_TOPICS: usize = 150_000;

/// Peak RSS of that row before split batches were encoded one at a time (all batches and the
/// whole plain body held at once; issue 15 quoted 88–90 MiB), and the target.
const PLAIN_BEFORE: &str = "100 MiB";
const PLAIN_TARGET_MIB: f64 = 40.0;

/// RSS (KiB) of one daemon registering `topics` topics in plain JSON with `ns`: `(between
/// rounds, peak)`, the peak over its first three rounds (the first round's encoding included,
/// unlike the steady figures). Peak less "between rounds" is what a round holds.
async fn plain_peak(ns: &str, topics: usize) -> Result<(u64, u64), BoxError> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("topics.json"), java_topics_json(topics))?;
    let http = super::free_addr()?;
    let cfg = format!(
        "[broker]\nname = \"scale-broker\"\naddr = \"127.0.0.1:10911\"\n[broker.health]\ncheck = \"none\"\n\
         [broker.topics]\nfile = {:?}\n[namesrv]\naddrs = [{ns:?}]\n[register]\ninterval = \"10s\"\n\
         compressed = false\ntimeout = \"10s\"\n[http]\nlisten = \"{http}\"\n[log]\nlevel = \"warn\"\n",
        dir.path().join("topics.json"),
    );
    let child = spawn_registrar(dir.path(), &cfg)?;
    let pid = child.id();
    wait_ready(&http).await?;
    let client = super::http_client()?;
    let t0 = Instant::now();
    while rounds_done(&client, &http).await.unwrap_or(0) < 3 {
        if t0.elapsed() > Duration::from_secs(120) {
            return Err("three rounds did not finish within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The third round's body is gone a moment after its last answer.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kib = rss_kib(pid);
    child.stop().await?;
    Ok(kib)
}

/// Prints the 150k-topic plain-JSON row: `runs` runs, each a fresh NameServer.
pub async fn run_plain(runs: usize) -> Result<(), BoxError> {
    super::registrar_exe()?;
    let c = RemotingClient::new(ClientConfig::default(), None);
    println!(
        "\n{PLAIN_TOPICS} topics in plain JSON (topics.json {} bytes), one rocketmq-namesrv-rust, \
         release build, {runs} runs",
        java_topics_json(PLAIN_TOPICS).len()
    );
    println!(
        "| peer | form | RSS between rounds | peak RSS over the first three rounds | before | target |"
    );
    println!("|---|---|---|---|---|---|");
    let mut peaks = Vec::new();
    for _ in 0..runs {
        // A fresh NameServer each run: its table (and so its speed) does not grow run by run.
        let ns = start_namesrv(&c).await?;
        peaks.push(plain_peak(&ns.1, PLAIN_TOPICS).await?);
    }
    let list = |f: &dyn Fn(&(u64, u64)) -> u64| {
        peaks
            .iter()
            .map(|k| format!("{:.1} MiB", f(k) as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    println!(
        "| rocketmq-namesrv-rust | plain JSON (split) | {} | {} | {PLAIN_BEFORE} | < {PLAIN_TARGET_MIB:.0} MiB |",
        list(&|k| k.0),
        list(&|k| k.1),
    );
    Ok(())
}

/// Prints the 100k-topic table: `runs` runs of each row, to show the spread.
pub async fn run(runs: usize) -> Result<(), BoxError> {
    super::registrar_exe()?;
    let c = RemotingClient::new(ClientConfig::default(), None);
    let real = start_namesrv(&c).await?;
    println!(
        "\n100k topics (topics.json {} bytes), release build, {runs} runs per row",
        java_topics_json(100_000).len()
    );
    println!("| peer | form | ready (each run) | RSS after 2 more rounds | peak RSS |");
    println!("|---|---|---|---|---|");
    for (peer, compressed) in [
        ("stand-in (first frame received)", true),
        ("stand-in (first batch received)", false),
        ("rocketmq-namesrv-rust (/readyz)", true),
    ] {
        let mut rows = Vec::new();
        for _ in 0..runs {
            let r = if peer.starts_with("stand-in") {
                let (addr, first) = recording_responder().await?;
                run_one(&addr, 100_000, compressed, Some(first)).await?
            } else {
                run_one(&real.1, 100_000, compressed, None).await?
            };
            rows.push(r);
        }
        let list = |f: &dyn Fn(&Run) -> String| rows.iter().map(f).collect::<Vec<_>>().join(" / ");
        println!(
            "| {peer} | {} | {} | {} | {} |",
            if compressed {
                "compressed"
            } else {
                "plain JSON (split)"
            },
            list(&|r| format!("{:.0} ms", r.ready.as_secs_f64() * 1e3)),
            list(&|r| format!("{:.1} MiB", r.steady_kib as f64 / 1024.0)),
            list(&|r| format!("{:.1} MiB", r.peak_kib as f64 / 1024.0)),
        );
    }
    run_plain(runs).await
}
