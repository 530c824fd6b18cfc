//! `rmq-bench remoting`: request rates of the client, sync and async, against a local
//! responder and the real NameServer.

use super::*;

pub fn cluster_info() -> RemotingCommand {
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

pub async fn run() -> Result<(), BoxError> {
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
