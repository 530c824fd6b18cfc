//! `rmq-bench cpu`: this client's CPU per round trip against a minimal hand-written tokio client
//! (an opaque map and one writer task, nothing else), both against the same real NameServer,
//! in interleaved runs. CPU is this process's user + system time (the NameServer is another
//! process), so the figure is the client's own cost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rmq_registrar::client::{ClientConfig, RemotingClient};
use rmq_registrar::protocol::{FrameCodec, RemotingCommand};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

use super::{clock_ticks_per_second, cluster_info, start_namesrv, BoxError};

type Waiters = Arc<Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>>;

/// The floor: what any remoting client must do per request, and nothing more.
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
        let table = waiters.clone();
        tokio::spawn(async move {
            let mut input = FramedRead::new(r, FrameCodec::default());
            while let Some(Ok(reply)) = input.next().await {
                let waiter = table.lock().ok().and_then(|mut t| t.remove(&reply.opaque));
                if let Some(w) = waiter {
                    let _ = w.send(reply);
                }
            }
        });
        Ok(Minimal {
            tx,
            waiters,
            next: Arc::new(AtomicI32::new(1)),
        })
    }

    async fn call(&self, mut req: RemotingCommand) -> Result<RemotingCommand, BoxError> {
        req.opaque = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .map_err(|_| "poisoned")?
            .insert(req.opaque, tx);
        self.tx.send(req).await.map_err(|_| "writer gone")?;
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

/// Prints the table: `runs` interleaved runs per client and depth.
pub async fn run(runs: usize) -> Result<(), BoxError> {
    let ours = RemotingClient::new(ClientConfig::default(), None);
    ours.start();
    let ns = start_namesrv(&ours).await?;
    let addr = ns.1.clone();
    let minimal = Minimal::connect(&addr).await?;
    println!(
        "\nclient CPU per request against rocketmq-namesrv-rust (GET_BROKER_CLUSTER_INFO), {runs} interleaved runs"
    );
    println!("| in flight | rmq-registrar client (each run) | minimal client (each run) | median ratio |");
    println!("|---:|---|---|---:|");
    for (in_flight, n) in [(1usize, 30_000usize), (64, 100_000)] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
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
            // The first pair warms both connections and the NameServer up.
            if run > 0 {
                a.push(x);
                b.push(y);
            }
        }
        let mut ratios: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x / y).collect();
        ratios.sort_by(f64::total_cmp);
        let show = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        println!(
            "| {in_flight} | {} µs | {} µs | {:.2} |",
            show(&a),
            show(&b),
            ratios[ratios.len() / 2]
        );
    }
    ours.shutdown();
    Ok(())
}
