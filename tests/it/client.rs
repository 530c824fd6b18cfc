//! End-to-end tests of the remoting client over loopback sockets against scripted peers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmq_registrar::client::{
    ChannelEvent, ChannelEventKind, ChannelEventListener, ClientConfig, ClientError, ProcessFuture,
    RemotingClient, RequestProcessor, RpcHook,
};
use rmq_registrar::protocol::code::response;
use rmq_registrar::protocol::frame::encode_to_vec;
use rmq_registrar::protocol::RemotingCommand;
use tokio::time::Instant;

use crate::support::ports::ClosedPort;
use crate::support::remoting::{client, client_with};
use crate::support::scripted_peer::{full_backlog_listener, ok_reply, Action, Peer};

const LONG: Duration = Duration::from_secs(30);

fn req() -> RemotingCommand {
    RemotingCommand::request(106)
}

#[tokio::test]
async fn sync_call_gets_its_own_reply() {
    let peer =
        Peer::start(|c| Action::Reply(RemotingCommand::request(0).with_body(c.opaque.to_string())))
            .await;
    let c = client();
    let r = req();
    let opaque = r.opaque;
    let resp = c.invoke_sync(Some(&peer.addr), r, LONG).await.unwrap();
    assert_eq!(resp.opaque, opaque);
    assert!(resp.is_response());
    assert_eq!(resp.body.as_deref(), Some(opaque.to_string().as_bytes()));
    let seen = peer.next_received().await;
    assert_eq!(seen.field("x"), None);
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn timeout_fails_the_call_and_keeps_the_connection() {
    let answer = Arc::new(AtomicUsize::new(0));
    let a = answer.clone();
    let peer = Peer::start(move |_| {
        if a.fetch_add(1, Ordering::SeqCst) == 0 {
            Action::Silent
        } else {
            ok_reply()
        }
    })
    .await;
    let c = client();
    let t0 = Instant::now();
    let err = c
        .invoke_sync(Some(&peer.addr), req(), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert!(c.is_connected(&peer.addr));
    c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    assert_eq!(peer.accepts.load(Ordering::SeqCst), 1);
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn sweeper_expires_unpolled_async_requests_and_frees_their_permits() {
    let peer = Peer::start(|_| Action::Silent).await;
    let c = client_with(ClientConfig {
        async_permits: 1,
        ..ClientConfig::default()
    });
    let unpolled = c
        .invoke_async(Some(&peer.addr), req(), Duration::from_millis(100))
        .await
        .unwrap();
    let held = c
        .invoke_async(Some(&peer.addr), req(), Duration::ZERO)
        .await;
    assert!(matches!(held, Err(ClientError::TooManyRequests)));
    // Nobody polls the future: only the sweeper can take the entry out of the table.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.in_flight() > 0 {
        assert!(Instant::now() < deadline, "sweeper did not fire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(c.stats().swept_timeouts.load(Ordering::Relaxed), 1);
    // The permit came back exactly once: one more async call can start, a second cannot.
    // Held with a long timeout: a zero one would expire at once and the sweeper could free it.
    let next = c.invoke_async(Some(&peer.addr), req(), LONG).await.unwrap();
    assert!(matches!(
        c.invoke_async(Some(&peer.addr), req(), Duration::ZERO)
            .await,
        Err(ClientError::TooManyRequests)
    ));
    assert!(matches!(unpolled.await, Err(ClientError::Timeout { .. })));
    drop(next);
}

#[tokio::test]
async fn async_callback_runs_off_the_io_task_with_the_outcome() {
    let peer = Peer::start(|_| Action::Silent).await;
    let c = client();
    let (tx, rx) = tokio::sync::oneshot::channel();
    c.invoke_async_callback(
        Some(&peer.addr),
        req(),
        Duration::from_millis(100),
        move |r| {
            let _ = tx.send(r);
        },
    )
    .await
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Err(ClientError::Timeout { .. })));
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn async_permits_exhausted_fail_by_timeout_kind() {
    let peer = Peer::start(|_| Action::Silent).await;
    let c = client_with(ClientConfig {
        async_permits: 2,
        ..ClientConfig::default()
    });
    let f1 = c.invoke_async(Some(&peer.addr), req(), LONG).await.unwrap();
    let f2 = c.invoke_async(Some(&peer.addr), req(), LONG).await.unwrap();
    let zero = c
        .invoke_async(Some(&peer.addr), req(), Duration::ZERO)
        .await;
    assert!(matches!(zero, Err(ClientError::TooManyRequests)));
    let waited = c
        .invoke_async(Some(&peer.addr), req(), Duration::from_millis(100))
        .await;
    assert!(matches!(waited, Err(ClientError::PermitTimeout(_))));
    assert!(waited.err().is_some_and(|e| e.is_timeout()));
    drop(f1);
    drop(f2);
    // Dropped futures give their permits back.
    let _a = c
        .invoke_async(Some(&peer.addr), req(), Duration::ZERO)
        .await
        .unwrap();
    let _b = c
        .invoke_async(Some(&peer.addr), req(), Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test]
async fn async_future_resolves_with_the_reply() {
    let peer = Peer::start(|_| ok_reply()).await;
    let c = client();
    let futs: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..10 {
            v.push(c.invoke_async(Some(&peer.addr), req(), LONG).await.unwrap());
        }
        v
    };
    for f in futs {
        assert_eq!(f.await.unwrap().code, 0);
    }
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test]
async fn oneway_is_marked_unanswered_and_releases_its_own_permit() {
    let peer = Peer::start(|_| Action::Silent).await;
    // One permit each: releasing the async semaphore by mistake (the seed's bug) fails the 2nd call.
    let c = client_with(ClientConfig {
        async_permits: 1,
        oneway_permits: 1,
        ..ClientConfig::default()
    });
    for _ in 0..3 {
        c.invoke_oneway(Some(&peer.addr), req(), Duration::ZERO)
            .await
            .unwrap();
    }
    for _ in 0..3 {
        let seen = peer.next_received().await;
        assert!(seen.is_oneway());
    }
    assert_eq!(c.in_flight(), 0);
    let _f = c.invoke_async(Some(&peer.addr), req(), LONG).await.unwrap();
    assert!(matches!(
        c.invoke_async(Some(&peer.addr), req(), Duration::ZERO)
            .await,
        Err(ClientError::TooManyRequests)
    ));
}

#[tokio::test]
async fn dead_connection_fails_its_waiters_at_once() {
    let peer = Peer::start(|_| Action::Close).await;
    let c = client();
    let t0 = Instant::now();
    let err = c
        .invoke_sync(Some(&peer.addr), req(), LONG)
        .await
        .unwrap_err();
    // Closed before it ever answered: what a TLS-only server does to a plain client, hence the
    // hint in the message.
    assert!(
        matches!(err, ClientError::ClosedBeforeReply { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("may require TLS"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(c.in_flight(), 0);
    assert!(!c.is_connected(&peer.addr));
}

#[tokio::test]
async fn hundred_concurrent_first_calls_share_one_connect() {
    let peer = Peer::start(|_| ok_reply()).await;
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (c, a) = (c.clone(), peer.addr.clone());
        tasks.push(tokio::spawn(async move {
            c.invoke_sync(Some(&a), req(), LONG).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().code, 0);
    }
    assert_eq!(peer.accepts.load(Ordering::SeqCst), 1);
    assert_eq!(c.stats().connects.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connect_failure_is_typed_and_retried_next_call() {
    let c = client();
    let refusing = ClosedPort::new();
    let dead = refusing.addr().to_string();
    let err = c.invoke_sync(Some(&dead), req(), LONG).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let err = c.invoke_sync(Some(&dead), req(), LONG).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }));
}

#[tokio::test]
async fn nameserver_failover_sticks_to_a_healthy_choice() {
    let live = Peer::start(|_| ok_reply()).await;
    let other = Peer::start(|_| ok_reply()).await;
    let refusing = ClosedPort::new();
    let dead = refusing.addr().to_string();
    let c = client();
    assert!(matches!(
        c.invoke_sync(None, req(), LONG).await,
        Err(ClientError::NoNameServer)
    ));
    assert!(c.update_name_server_list(vec![dead.clone(), live.addr.clone()]));
    for _ in 0..5 {
        c.invoke_sync(None, req(), LONG).await.unwrap();
        assert_eq!(c.chosen_name_server().as_deref(), Some(live.addr.as_str()));
    }
    assert_eq!(live.accepts.load(Ordering::SeqCst), 1);
    // Same members in another order: not a change.
    assert!(!c.update_name_server_list(vec![live.addr.clone(), dead.clone()]));
    // The chosen one is removed: the next call picks from the new list.
    assert!(c.update_name_server_list(vec![dead.clone(), other.addr.clone()]));
    assert_eq!(c.chosen_name_server(), None);
    c.invoke_sync(None, req(), LONG).await.unwrap();
    assert_eq!(c.chosen_name_server().as_deref(), Some(other.addr.as_str()));
    // The chosen connection dies: the next call fails over (to the only live one left, itself
    // reconnected), and an empty list is ignored.
    c.close_connection(&other.addr);
    c.invoke_sync(None, req(), LONG).await.unwrap();
    assert_eq!(other.accepts.load(Ordering::SeqCst), 2);
    assert!(!c.update_name_server_list(vec![]));
    // Duplicates collapse: one entry per address.
    assert!(c.update_name_server_list(vec![live.addr.clone(), live.addr.clone()]));
    assert_eq!(c.name_server_list(), vec![live.addr.clone()]);
}

struct Events(Mutex<Vec<ChannelEvent>>);

impl ChannelEventListener for Events {
    fn on_event(&self, event: ChannelEvent) {
        self.0.lock().unwrap().push(event);
    }
}

async fn wait_for_event(ev: &Events, kind: ChannelEventKind) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ev.0.lock().unwrap().iter().any(|e| e.kind == kind) {
        assert!(Instant::now() < deadline, "no {kind:?} event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn idle_connection_is_closed_with_events() {
    let peer = Peer::start(|_| ok_reply()).await;
    let ev = Arc::new(Events(Mutex::default()));
    let cfg = ClientConfig {
        idle_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let c = RemotingClient::new(cfg, Some(ev.clone()));
    c.start();
    c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    assert!(c.is_connected(&peer.addr));
    wait_for_event(&ev, ChannelEventKind::Idle).await;
    wait_for_event(&ev, ChannelEventKind::Close).await;
    assert!(!c.is_connected(&peer.addr));
    let kinds: Vec<_> = ev.0.lock().unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ChannelEventKind::Connect,
            ChannelEventKind::Idle,
            ChannelEventKind::Close
        ]
    );
    // A later call reconnects.
    c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    assert_eq!(peer.accepts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unsupported_server_request_gets_not_supported_and_oneway_gets_nothing() {
    let peer = Peer::start(|_| ok_reply()).await;
    let c = client();
    c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    let _ = peer.drain_received();
    let mut oneway = RemotingCommand::request(9999);
    oneway.mark_oneway();
    peer.push(encode_to_vec(&oneway).unwrap());
    let twoway = RemotingCommand::request(9998);
    peer.push(encode_to_vec(&twoway).unwrap());
    let reply = peer.next_received().await;
    assert!(reply.is_response());
    assert_eq!(
        reply.opaque, twoway.opaque,
        "the oneway request must not be answered"
    );
    assert_eq!(reply.code, response::REQUEST_CODE_NOT_SUPPORTED);
}

struct Blocking {
    calls: AtomicUsize,
    tagged: AtomicUsize,
    release: Arc<tokio::sync::Notify>,
}

impl RequestProcessor for Blocking {
    fn process(&self, _remote: &str, request: RemotingCommand) -> ProcessFuture {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.field("AccessKey").is_some() {
            self.tagged.fetch_add(1, Ordering::SeqCst);
        }
        let release = self.release.clone();
        Box::pin(async move {
            release.notified().await;
            Some(RemotingCommand::response_to(&request, 0, None).with_body("done"))
        })
    }
}

#[tokio::test]
async fn saturated_processor_answers_system_busy() {
    let peer = Peer::start(|_| ok_reply()).await;
    let c = client();
    let release = Arc::new(tokio::sync::Notify::new());
    let p = Arc::new(Blocking {
        calls: AtomicUsize::new(0),
        tagged: AtomicUsize::new(0),
        release: release.clone(),
    });
    c.register_processor(77, p.clone(), 1);
    // The RPC hook also runs around handled incoming requests.
    let hook = Arc::new(Tagger {
        after: AtomicUsize::new(0),
    });
    c.register_rpc_hook(hook.clone());
    c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    let _ = peer.drain_received();
    let first = RemotingCommand::request(77);
    let second = RemotingCommand::request(77);
    peer.push(encode_to_vec(&first).unwrap());
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.calls.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    peer.push(encode_to_vec(&second).unwrap());
    let busy = peer.next_received().await;
    assert_eq!(
        (busy.opaque, busy.code),
        (second.opaque, response::SYSTEM_BUSY)
    );
    release.notify_one();
    let done = peer.next_received().await;
    assert_eq!((done.opaque, done.code), (first.opaque, 0));
    assert!(done.is_response());
    assert_eq!(done.body.as_deref(), Some(&b"done"[..]));
    assert_eq!(p.tagged.load(Ordering::SeqCst), 1);
    // One outgoing call and one handled request went through after_response.
    assert_eq!(hook.after.load(Ordering::SeqCst), 2);
}

/// A listener slower than the events: the queue behind it fills up.
struct Stuck;

impl ChannelEventListener for Stuck {
    fn on_event(&self, _event: ChannelEvent) {
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_beyond_the_queue_are_dropped_and_counted() {
    let peer = Peer::start(|_| ok_reply()).await;
    let cfg = ClientConfig {
        event_queue: 1,
        ..ClientConfig::default()
    };
    let c = RemotingClient::new(cfg, Some(Arc::new(Stuck)));
    c.start();
    for _ in 0..4 {
        c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
        c.close_connection(&peer.addr);
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.is_connected(&peer.addr) {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // 8 events (4 connects, 4 closes), a stuck listener and a queue of 1: most are dropped.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.stats().events_dropped.load(Ordering::Relaxed) < 5 {
        assert!(
            Instant::now() < deadline,
            "dropped {}",
            c.stats().events_dropped.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn garbage_or_oversized_frame_closes_only_that_connection() {
    for bad in [
        vec![0, 0, 0, 8, 7, 0, 0, 0, 1, 2, 3, 4],
        vec![0x7f, 0xff, 0xff, 0xff],
    ] {
        let bad_peer = Peer::start(move |_| Action::Raw(bad.clone())).await;
        let good = Peer::start(|_| ok_reply()).await;
        let c = client_with(ClientConfig {
            max_frame: 1 << 20,
            ..ClientConfig::default()
        });
        c.invoke_sync(Some(&good.addr), req(), LONG).await.unwrap();
        let err = c
            .invoke_sync(Some(&bad_peer.addr), req(), LONG)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::ConnectionClosed { .. }),
            "{err:?}"
        );
        assert!(!c.is_connected(&bad_peer.addr));
        assert!(c.is_connected(&good.addr));
        c.invoke_sync(Some(&good.addr), req(), LONG).await.unwrap();
        assert_eq!(good.accepts.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn reply_for_unknown_opaque_is_dropped() {
    let peer = Peer::start(|c| {
        let mut stray = RemotingCommand::request(0);
        stray.opaque = c.opaque.wrapping_add(1_000_000);
        stray.mark_response();
        let mut bytes = encode_to_vec(&stray).unwrap();
        let mut real = RemotingCommand::request(0);
        real.opaque = c.opaque;
        real.mark_response();
        bytes.extend(encode_to_vec(&real).unwrap());
        Action::Raw(bytes)
    })
    .await;
    let c = client();
    assert_eq!(
        c.invoke_sync(Some(&peer.addr), req(), LONG)
            .await
            .unwrap()
            .code,
        0
    );
    assert_eq!(c.stats().unknown_replies.load(Ordering::SeqCst), 1);
    assert!(c.is_connected(&peer.addr));
}

struct Tagger {
    after: AtomicUsize,
}

impl RpcHook for Tagger {
    fn before_request(&self, _remote: &str, request: &mut RemotingCommand) {
        request.ext_fields.insert("AccessKey", "k");
    }
    fn after_response(
        &self,
        _remote: &str,
        _req: &RemotingCommand,
        resp: Option<&RemotingCommand>,
    ) {
        if resp.is_some() {
            self.after.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn rpc_hook_runs_around_outgoing_calls() {
    let peer = Peer::start(|_| ok_reply()).await;
    let c = client();
    let hook = Arc::new(Tagger {
        after: AtomicUsize::new(0),
    });
    c.register_rpc_hook(hook.clone());
    c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    c.invoke_async(Some(&peer.addr), req(), LONG)
        .await
        .unwrap()
        .await
        .unwrap();
    c.invoke_oneway(Some(&peer.addr), req(), LONG)
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(peer.next_received().await.field("AccessKey"), Some("k"));
    }
    assert_eq!(hook.after.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn shutdown_fails_in_flight_requests_promptly() {
    let peer = Peer::start(|_| Action::Silent).await;
    let c = client();
    let c2 = c.clone();
    let a = peer.addr.clone();
    let call = tokio::spawn(async move { c2.invoke_sync(Some(&a), req(), LONG).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.in_flight() == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t0 = Instant::now();
    c.shutdown();
    let err = call.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Shutdown | ClientError::ConnectionClosed { .. }
        ),
        "{err:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        c.invoke_sync(Some(&peer.addr), req(), LONG).await,
        Err(ClientError::Shutdown)
    ));
}

#[tokio::test]
async fn connect_timeout_fails_a_connect_that_never_completes() {
    // A listener that never accepts, with its backlog full: further SYNs go unanswered.
    let (listener, addr, _fillers) = full_backlog_listener().await;
    let cfg = ClientConfig {
        connect_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let c = client_with(cfg);
    let t0 = Instant::now();
    let err = c.invoke_sync(Some(&addr), req(), LONG).await.unwrap_err();
    assert!(matches!(err, ClientError::ConnectTimeout { .. }), "{err:?}");
    assert!(err.is_timeout());
    assert!(t0.elapsed() < Duration::from_secs(2));
    drop(listener);
}

#[tokio::test]
async fn replies_from_a_broker_may_exceed_max_frame_but_not_from_a_namesrv() {
    // 20 MiB: above the NameServer limit (16 MiB), below the reply limit (a big topic table).
    let big = vec![b'x'; 20 * 1024 * 1024];
    let peer = Peer::start(move |cmd| {
        let mut reply = RemotingCommand::request(0).with_body(big.clone());
        reply.opaque = cmd.opaque;
        reply.mark_response();
        let mut codec = rmq_registrar::protocol::FrameCodec::new(64 * 1024 * 1024);
        let mut buf = bytes::BytesMut::new();
        tokio_util::codec::Encoder::encode(&mut codec, reply, &mut buf).unwrap();
        Action::Raw(buf.to_vec())
    })
    .await;
    let c = client_with(ClientConfig {
        max_reply_frame: 64 * 1024 * 1024,
        ..ClientConfig::default()
    });
    let r = c.invoke_sync(Some(&peer.addr), req(), LONG).await.unwrap();
    assert_eq!(r.body.unwrap().len(), 20 * 1024 * 1024);
    c.close_connection(&peer.addr);
    // The same peer as a NameServer: its connection reads at most max_frame.
    c.update_name_server_list(vec![peer.addr.clone()]);
    let e = c
        .invoke_sync(Some(&peer.addr), req(), LONG)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::ConnectionClosed { .. }), "{e:?}");
}
