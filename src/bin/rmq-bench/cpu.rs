//! `rmq-bench cpu`: this client's CPU per round trip against two minimal hand-written tokio
//! clients, all against the same real NameServer, in interleaved runs. One minimal client has a
//! writer task fed by a queue; the other has none: the caller encodes its frame and writes it on
//! the socket itself, and a reader task hands each reply to its caller. CPU is this process's
//! user + system time (the NameServer is another process), so the figure is the client's own
//! cost. Then the heap allocations each makes per request (requests built beforehand).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::protocol::code::request;
use rmq_registrar::protocol::{FrameCodec, RemotingCommand};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Encoder, FramedRead, FramedWrite};

use super::remoting::cluster_info;
use super::{clock_ticks_per_second, start_namesrv, BoxError, ALLOCATIONS};

type Waiters = Arc<Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>>;

/// Reads replies and hands each to the caller waiting for its opaque.
fn spawn_reader(r: OwnedReadHalf, waiters: Waiters) {
    tokio::spawn(async move {
        let mut input = FramedRead::new(r, FrameCodec::default());
        while let Some(Ok(reply)) = input.next().await {
            let waiter = waiters
                .lock()
                .ok()
                .and_then(|mut t| t.remove(&reply.opaque));
            if let Some(w) = waiter {
                let _ = w.send(reply);
            }
        }
    });
}

/// Registers a waiter for `req` under a fresh opaque.
fn wait_for(
    waiters: &Waiters,
    next: &AtomicI32,
    req: &mut RemotingCommand,
) -> Result<oneshot::Receiver<RemotingCommand>, BoxError> {
    req.opaque = next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel();
    waiters
        .lock()
        .map_err(|_| "poisoned")?
        .insert(req.opaque, tx);
    Ok(rx)
}

/// A floor with a writer task: an opaque map, a queue and one writer task, nothing else.
#[derive(Clone)]
struct Minimal {
    tx: mpsc::Sender<RemotingCommand>,
    waiters: Waiters,
    next: Arc<AtomicI32>,
}

impl Minimal {
    async fn connect(addr: &str) -> Result<Minimal, BoxError> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        let (tx, mut rx) = mpsc::channel::<RemotingCommand>(1024);
        let waiters: Waiters = Arc::default();
        tokio::spawn(async move {
            let mut out = FramedWrite::new(w, FrameCodec::default());
            while let Some(cmd) = rx.recv().await {
                if out.send(cmd).await.is_err() {
                    return;
                }
            }
        });
        spawn_reader(r, waiters.clone());
        Ok(Minimal {
            tx,
            waiters,
            next: Arc::new(AtomicI32::new(1)),
        })
    }

    async fn call(&self, mut req: RemotingCommand) -> Result<RemotingCommand, BoxError> {
        let rx = wait_for(&self.waiters, &self.next, &mut req)?;
        self.tx.send(req).await.map_err(|_| "writer gone")?;
        Ok(tokio::time::timeout(Duration::from_secs(5), rx).await??)
    }
}

/// The floor without a writer task: the caller encodes its frame and writes it on the socket
/// itself (one writer at a time); a reader task hands each reply to its caller.
#[derive(Clone)]
struct Direct {
    write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    waiters: Waiters,
    next: Arc<AtomicI32>,
}

impl Direct {
    async fn connect(addr: &str) -> Result<Direct, BoxError> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        let waiters: Waiters = Arc::default();
        spawn_reader(r, waiters.clone());
        Ok(Direct {
            write: Arc::new(tokio::sync::Mutex::new(w)),
            waiters,
            next: Arc::new(AtomicI32::new(1)),
        })
    }

    async fn call(&self, mut req: RemotingCommand) -> Result<RemotingCommand, BoxError> {
        let rx = wait_for(&self.waiters, &self.next, &mut req)?;
        let mut frame = BytesMut::with_capacity(512);
        FrameCodec::default().encode(&req, &mut frame)?;
        self.write.lock().await.write_all(&frame).await?;
        Ok(tokio::time::timeout(Duration::from_secs(5), rx).await??)
    }
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    super::cpu_ticks(std::process::id()) as f64 / clock_ticks_per_second()
}

/// Microseconds of CPU per request: `n` requests, `in_flight` at a time.
async fn measure<F, Fut>(n: usize, in_flight: usize, call: F) -> Result<f64, BoxError>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    let c0 = cpu_seconds();
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            for _ in 0..n / in_flight {
                call().await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok((cpu_seconds() - c0) / n as f64 * 1e6)
}

/// A QUERY_DATA_VERSION as a heartbeat sends it: four header fields and a DataVersion body.
fn heartbeat_shaped() -> RemotingCommand {
    RemotingCommand::request(request::QUERY_DATA_VERSION)
        .with_field("brokerAddr", "10.0.0.1:10911")
        .with_field("brokerId", 0)
        .with_field("brokerName", "broker-a")
        .with_field("clusterName", "DefaultCluster")
        .with_body(&br#"{"counter":1,"stateVersion":0,"timestamp":1700000000000}"#[..])
}

/// Builds one request of a shape.
type MakeRequest = fn() -> RemotingCommand;

/// Times this process's threads went to sleep waiting for something (voluntary context
/// switches, all threads): each is a wake-up to pay for later, whatever else the machine runs.
fn sleeps() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find(|l| l.starts_with("voluntary_ctxt_switches:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

/// Heap allocations and thread sleeps per request, one in flight: `n` requests from `make`,
/// built beforehand so that only the client's own allocations (send, reply, decode) are counted.
async fn allocations<F, Fut>(n: usize, make: MakeRequest, call: F) -> Result<(f64, f64), BoxError>
where
    F: Fn(RemotingCommand) -> Fut,
    Fut: std::future::Future<Output = Result<(), BoxError>>,
{
    let prepared: Vec<RemotingCommand> = (0..n + 100).map(|_| make()).collect();
    let mut prepared = prepared.into_iter();
    // Warm: connection, peer info, buffers at their working size.
    for req in prepared.by_ref().take(100) {
        call(req).await?;
    }
    let s0 = sleeps();
    let a0 = ALLOCATIONS.load(Ordering::Relaxed);
    for req in prepared {
        call(req).await?;
    }
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - a0;
    let slept = sleeps().saturating_sub(s0);
    Ok((allocs as f64 / n as f64, slept as f64 / n as f64))
}

/// Median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Prints the tables: `runs` interleaved runs per client and depth, then allocations.
pub async fn run(runs: usize) -> Result<(), BoxError> {
    let ours = RemotingClient::new(ClientConfig::default(), None);
    ours.start();
    let ns = start_namesrv(&ours).await?;
    let addr = ns.1.clone();
    let minimal = Minimal::connect(&addr).await?;
    let direct = Direct::connect(&addr).await?;
    println!(
        "\nclient CPU per request against rocketmq-namesrv-rust (GET_BROKER_CLUSTER_INFO), {runs} interleaved runs"
    );
    println!("| in flight | rmq-registrar client (each run) | minimal, writer task (each run) | minimal, no writer task (each run) | median ratio to writer task | median ratio to no writer task |");
    println!("|---:|---|---|---|---:|---:|");
    for (in_flight, n) in [(1usize, 30_000usize), (64, 100_000)] {
        let (mut a, mut b, mut d) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..=runs {
            let (c, ad) = (ours.clone(), addr.clone());
            let x = measure(n, in_flight, move || {
                let (c, ad) = (c.clone(), ad.clone());
                async move {
                    c.invoke_sync(Some(&ad), cluster_info(), Duration::from_secs(5))
                        .await?;
                    Ok(())
                }
            })
            .await?;
            let m = minimal.clone();
            let y = measure(n, in_flight, move || {
                let m = m.clone();
                async move {
                    m.call(cluster_info()).await?;
                    Ok(())
                }
            })
            .await?;
            let dc = direct.clone();
            let z = measure(n, in_flight, move || {
                let dc = dc.clone();
                async move {
                    dc.call(cluster_info()).await?;
                    Ok(())
                }
            })
            .await?;
            // The first round warms the connections and the NameServer up.
            if run > 0 {
                a.push(x);
                b.push(y);
                d.push(z);
            }
        }
        let mut to_writer: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        let mut to_direct: Vec<f64> = a.iter().zip(&d).map(|(x, z)| x / z).collect();
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {in_flight} | {} µs | {} µs | {} µs | {:.2} | {:.2} |",
            show(&a),
            show(&b),
            show(&d),
            median(&mut to_writer),
            median(&mut to_direct)
        );
    }
    let n = 10_000;
    println!("\nheap allocations / thread sleeps (voluntary context switches) per request, 1 in flight, {n} requests built beforehand");
    println!("| request | rmq-registrar client | minimal, writer task | minimal, no writer task |");
    println!("|---|---:|---:|---:|");
    let shapes: [(&str, MakeRequest); 2] = [
        (
            "GET_BROKER_CLUSTER_INFO (no fields, reply with a body)",
            cluster_info,
        ),
        (
            "QUERY_DATA_VERSION as a heartbeat (4 fields, body)",
            heartbeat_shaped,
        ),
    ];
    for (name, make) in shapes {
        let x = allocations(n, make, |req| async {
            ours.invoke_sync(Some(&addr), req, Duration::from_secs(5))
                .await?;
            Ok(())
        })
        .await?;
        let y = allocations(n, make, |req| async {
            minimal.call(req).await?;
            Ok(())
        })
        .await?;
        let z = allocations(n, make, |req| async {
            direct.call(req).await?;
            Ok(())
        })
        .await?;
        println!(
            "| {name} | {:.1} / {:.2} | {:.1} / {:.2} | {:.1} / {:.2} |",
            x.0, x.1, y.0, y.1, z.0, z.1
        );
    }
    ours.shutdown();
    Ok(())
}
