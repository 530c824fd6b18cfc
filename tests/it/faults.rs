//! Fault injection at the remoting client: stalled, hostile and vanishing peers cost the caller
//! one timeout and the client no memory, and never touch requests to other peers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BufMut;
use rmq_registrar::client::{ClientConfig, ClientError, RemotingClient};
use rmq_registrar::protocol::frame::encode_to_vec;
use rmq_registrar::protocol::RemotingCommand;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::support::remoting::client_with;
use crate::support::scripted_peer::{
    full_backlog_listener, never_reading_peer, ok_reply, Action, Peer,
};
use crate::support::wait::eventually_within;

fn req() -> RemotingCommand {
    RemotingCommand::request(106)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_peer_that_stops_reading_loses_its_connection_after_one_timeout() {
    let (addr, _, _peer) = never_reading_peer().await;
    let c = client_with(ClientConfig::default());
    let timeout = Duration::from_millis(500);
    let body = vec![7u8; 4 * 1024 * 1024];
    let t0 = Instant::now();
    let e = c
        .invoke_sync(Some(&addr), req().with_body(body.clone()), timeout)
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    // The writer gives up after one timeout without progress and closes the connection.
    eventually_within("connection closed", Duration::from_secs(3), || async {
        !c.is_connected(&addr)
    })
    .await;
    eprintln!(
        "stalled connection closed {:?} after the send",
        t0.elapsed()
    );
    // Rounds against the stalled peer: each fails within its timeout, memory stays flat.
    let before = rss_kib();
    for _ in 0..10 {
        let started = Instant::now();
        let r = c
            .invoke_sync(Some(&addr), req().with_body(body.clone()), timeout)
            .await;
        assert!(r.is_err());
        assert!(started.elapsed() < timeout + Duration::from_millis(500));
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "RSS grew {grown} KiB over 10 stalled sends of 4 MiB"
    );
    c.shutdown();
}

#[tokio::test]
async fn a_burst_beyond_the_send_queue_is_refused_as_busy_not_queued_forever() {
    let (addr, _, _peer) = never_reading_peer().await;
    let c = client_with(ClientConfig::default());
    let timeout = Duration::from_millis(300);
    let body = bytes::Bytes::from(vec![1u8; 64 * 1024]);
    let calls = (0..200).map(|_| {
        let c = c.clone();
        let addr = addr.clone();
        let cmd = req().with_body(body.clone());
        async move { c.invoke_sync(Some(&addr), cmd, timeout).await }
    });
    let t0 = Instant::now();
    let results = futures_util::future::join_all(calls).await;
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::Busy { .. })))
        .count();
    assert!(busy > 0, "a full queue answers Busy");
    assert!(results.iter().all(Result::is_err));
    assert!(c.stats().busy.load(Ordering::Relaxed) >= busy as u64);
    c.shutdown();
}

#[tokio::test]
async fn a_forged_reply_from_one_peer_never_completes_a_request_to_another() {
    let silent = Peer::start(|_| Action::Silent).await;
    let forger = Peer::start(|_| ok_reply()).await;
    let c = client_with(ClientConfig::default());
    // A connection to the forger, for it to write on.
    c.invoke_sync(Some(&forger.addr), req(), Duration::from_secs(5))
        .await
        .unwrap();
    let (c2, silent_addr) = (c.clone(), silent.addr.clone());
    let waiting = tokio::spawn(async move {
        c2.invoke_sync(Some(&silent_addr), req(), Duration::from_millis(800))
            .await
    });
    let victim = silent.next_received().await.opaque;
    let mut forged = RemotingCommand::request(0);
    forged.opaque = victim;
    forged.mark_response();
    forger.push(encode_to_vec(&forged).unwrap());
    let outcome = waiting.await.unwrap();
    assert!(
        matches!(outcome, Err(ClientError::Timeout { .. })),
        "the forged SUCCESS must not complete it: {outcome:?}"
    );
    assert_eq!(c.stats().unknown_replies.load(Ordering::Relaxed), 1);
    c.shutdown();
}

#[tokio::test]
async fn a_frame_over_max_frame_is_refused_before_a_byte_is_written() {
    let peer = Peer::start(|_| ok_reply()).await;
    let c = client_with(ClientConfig {
        max_frame: 64 * 1024,
        ..ClientConfig::default()
    });
    let e = c
        .invoke_sync(
            Some(&peer.addr),
            req().with_body(vec![0u8; 64 * 1024]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Encode(_)), "{e:?}");
    let e = c
        .invoke_oneway(
            Some(&peer.addr),
            req().with_body(vec![0u8; 64 * 1024]),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Encode(_)), "{e:?}");
    // The connection is fine and nothing of the refused frames reached the peer.
    c.invoke_sync(Some(&peer.addr), req(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(peer.drain_received().len(), 1);
    c.shutdown();
}

#[tokio::test]
async fn the_request_deadline_covers_connecting_and_a_later_caller_tries_afresh() {
    // A listener whose backlog is full: connects to it hang.
    let (listener, addr, fillers) = full_backlog_listener().await;
    let c = client_with(ClientConfig {
        connect_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    });
    let t0 = Instant::now();
    let e = c
        .invoke_sync(Some(&addr), req(), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(
        t0.elapsed() < Duration::from_millis(250),
        "the request's 100 ms bound the connect: {:?}",
        t0.elapsed()
    );
    // The abandoned attempt ends on its own; the listener then has room again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drain = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    drop(fillers);
    let connects = c.stats().connects.load(Ordering::Relaxed);
    let e = c
        .invoke_sync(Some(&addr), req(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Timeout { .. }),
        "a fresh attempt connects (the peer just never answers), not a stale ConnectTimeout: {e:?}"
    );
    assert_eq!(c.stats().connects.load(Ordering::Relaxed), connects + 1);
    drain.abort();
    c.shutdown();
}

/// A scripted peer that answers every request with `bytes`, then does what `close` says.
async fn hostile(bytes: Vec<u8>) -> Peer {
    Peer::start(move |_| Action::Raw(bytes.clone())).await
}

fn frame_with(length: i32, mark: u32, rest: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.put_i32(length);
    v.put_u32(mark);
    v.extend_from_slice(rest);
    v
}

#[tokio::test]
async fn hostile_replies_close_only_their_connection_with_a_typed_error() {
    let healthy = Peer::start(|_| ok_reply()).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
        ("2 GiB length", frame_with(i32::MAX, 0, &[])),
        ("negative length", frame_with(-5, 0, &[])),
        (
            "header longer than the frame",
            frame_with(12, 100, b"{}{}{}{}"),
        ),
        ("broken JSON header", frame_with(4 + 9, 9, b"{\"code\":}")),
        ("64 MiB flood", {
            let mut v = frame_with(64 * 1024 * 1024, 0, &[]);
            v.resize(1024 * 1024, b'x');
            v
        }),
    ];
    let c = client_with(ClientConfig::default());
    for (name, bytes) in cases {
        let peer = hostile(bytes).await;
        let t0 = Instant::now();
        let e = c
            .invoke_sync(Some(&peer.addr), req(), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ClientError::ConnectionClosed { .. }),
            "{name}: {e:?}"
        );
        assert!(t0.elapsed() < Duration::from_secs(1), "{name}: at once");
        assert!(!c.is_connected(&peer.addr), "{name}");
        // Another peer is not affected.
        c.invoke_sync(Some(&healthy.addr), req(), Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{name}: healthy peer failed: {e:?}"));
    }
    c.shutdown();
}

#[tokio::test]
async fn a_reply_trickled_byte_by_byte_still_arrives_and_a_reset_mid_frame_fails_fast() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        use futures_util::StreamExt;
        // First connection: the reply one byte at a time. Second: half a frame, then reset.
        for half in [false, true] {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            let mut frames = tokio_util::codec::FramedRead::new(
                r,
                rmq_registrar::protocol::FrameCodec::default(),
            );
            let cmd = frames.next().await.unwrap().unwrap();
            let mut reply = RemotingCommand::request(0).with_body("trickled");
            reply.opaque = cmd.opaque;
            reply.mark_response();
            let bytes = encode_to_vec(&reply).unwrap();
            if half {
                w.write_all(&bytes[..bytes.len() / 2]).await.unwrap();
                drop(frames);
                drop(w);
                continue;
            }
            for b in bytes {
                w.write_all(&[b]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let c: RemotingClient = client_with(ClientConfig::default());
    let r = c
        .invoke_sync(Some(&addr), req(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.body.as_deref(), Some(&b"trickled"[..]));
    c.close_connection(&addr);
    let t0 = Instant::now();
    let e = c
        .invoke_sync(Some(&addr), req(), Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::ConnectionClosed { .. } | ClientError::ClosedBeforeReply { .. }
        ),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
    server.await.unwrap();
    c.shutdown();
}

#[tokio::test]
async fn a_slow_peer_costs_one_timeout_and_its_late_reply_is_dropped_and_counted() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    // Answers each request 400 ms late.
    let server = tokio::spawn(async move {
        use futures_util::StreamExt;
        let (s, _) = l.accept().await.unwrap();
        let (r, mut w) = s.into_split();
        let mut frames =
            tokio_util::codec::FramedRead::new(r, rmq_registrar::protocol::FrameCodec::default());
        while let Some(Ok(cmd)) = frames.next().await {
            tokio::time::sleep(Duration::from_millis(400)).await;
            let mut reply = RemotingCommand::request(0);
            reply.opaque = cmd.opaque;
            reply.mark_response();
            if w.write_all(&encode_to_vec(&reply).unwrap()).await.is_err() {
                return;
            }
        }
    });
    let c = client_with(ClientConfig::default());
    let t0 = Instant::now();
    let e = c
        .invoke_sync(Some(&addr), req(), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_millis(400));
    // The late reply arrives, matches nothing, is counted; the connection is kept and works.
    let r = c
        .invoke_sync(Some(&addr), req(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.code, 0);
    assert_eq!(c.stats().unknown_replies.load(Ordering::Relaxed), 1);
    assert_eq!(c.stats().connects.load(Ordering::Relaxed), 1);
    c.shutdown();
    server.abort();
}
