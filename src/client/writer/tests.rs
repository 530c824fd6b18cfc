use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncReadExt, DuplexStream};

use super::*;

/// A socket whose writes fail, as after a reset by the peer.
struct Broken;

impl AsyncWrite for Broken {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn new_side(
    io: BoxWrite,
) -> (
    Arc<WriteSide>,
    mpsc::Sender<Outgoing>,
    mpsc::Receiver<Outgoing>,
) {
    let (tx, rx) = mpsc::channel(SEND_QUEUE);
    let side = WriteSide::new(
        io,
        Arc::from("peer:1"),
        CancellationToken::new(),
        Arc::new(Activity::new()),
    );
    (Arc::new(side), tx, rx)
}

/// Queues a frame as the connection's handle does; the receiver says when it is written.
fn enqueue(
    side: &WriteSide,
    tx: &mpsc::Sender<Outgoing>,
    bytes: &[u8],
) -> oneshot::Receiver<Written> {
    let (done, rx) = oneshot::channel();
    let counted = side.queued();
    let m = Outgoing {
        head: Bytes::copy_from_slice(bytes),
        body: None,
        stall: Duration::from_secs(1),
        done: Some(done),
    };
    if tx.try_send(m).is_ok() {
        counted.handed_over();
    }
    rx
}

fn frame(fill: u8, len: usize) -> (Bytes, Option<Bytes>) {
    (
        Bytes::from(vec![fill; 8]),
        Some(Bytes::from(vec![fill; len - 8])),
    )
}

async fn read_exact(peer: &mut DuplexStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    peer.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test]
async fn a_failed_write_reports_the_error_and_closes_the_connection() {
    let (side, tx, rx) = new_side(Box::new(Broken));
    // Bigger than any socket buffer, so the write reaches the socket at once.
    let result = enqueue(&side, &tx, &vec![0u8; 64 * 1024]);
    write_loop(side.clone(), rx).await;
    let err = result.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(
        side.closed.is_cancelled(),
        "the connection must be closed after a failed write"
    );
    assert_eq!(
        side.failure().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionReset)
    );
}

#[tokio::test]
async fn an_idle_connection_is_written_by_the_caller_itself() {
    let (io, mut peer) = tokio::io::duplex(4096);
    // No writer task runs: the frame can only reach the peer through the caller.
    let (side, tx, _rx) = new_side(Box::new(io));
    let sink = side.try_direct().expect("nothing queued, nobody writing");
    let deadline = Instant::now() + Duration::from_secs(1);
    side.write_direct(sink, &tx, frame(7, 100), Duration::from_secs(1), deadline)
        .await
        .unwrap();
    assert_eq!(read_exact(&mut peer, 100).await, vec![7u8; 100]);
    assert!(side.try_direct().is_some(), "the socket is free again");
}

#[tokio::test]
async fn a_queued_frame_is_never_overtaken_by_a_direct_write() {
    let (io, _peer) = tokio::io::duplex(4096);
    let (side, tx, _rx) = new_side(Box::new(io));
    let _queued = enqueue(&side, &tx, b"first");
    assert!(
        side.try_direct().is_none(),
        "a frame waits in the queue: the caller queues behind it"
    );
    // And nobody writes directly while another caller holds the socket.
    let (io, _peer) = tokio::io::duplex(4096);
    let (side, _tx, _rx) = new_side(Box::new(io));
    let held = side.try_direct();
    assert!(held.is_some());
    assert!(side.try_direct().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_frame_cut_short_by_its_deadline_is_finished_before_the_next() {
    // A peer that takes 64 bytes at a time, and only when read.
    let (io, mut peer) = tokio::io::duplex(64);
    let (side, tx, rx) = new_side(Box::new(io));
    tokio::spawn(write_loop(side.clone(), rx));
    let sink = side.try_direct().unwrap();
    let deadline = Instant::now() + Duration::from_millis(100);
    let r = side
        .write_direct(sink, &tx, frame(1, 1000), Duration::from_secs(5), deadline)
        .await;
    assert!(matches!(r, Err(DirectError::Deadline)), "{r:?}");
    // The rest went to the writer task: the next frame queues behind it.
    assert!(side.try_direct().is_none());
    let second = enqueue(&side, &tx, &[2u8; 50]);
    let got = read_exact(&mut peer, 1050).await;
    assert_eq!(&got[..1000], &[1u8; 1000][..], "the first frame whole");
    assert_eq!(&got[1000..], &[2u8; 50][..], "then the second");
    assert!(second.await.unwrap().is_ok());
    assert!(!side.closed.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_stops_waiting_mid_frame_leaves_no_half_frame() {
    let (io, mut peer) = tokio::io::duplex(64);
    let (side, tx, rx) = new_side(Box::new(io));
    tokio::spawn(write_loop(side.clone(), rx));
    let sink = side.try_direct().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let write = side.write_direct(sink, &tx, frame(3, 500), Duration::from_secs(5), deadline);
    // The caller gives up (its future dropped) long before its deadline.
    let cut = tokio::time::timeout(Duration::from_millis(10), write).await;
    assert!(cut.is_err());
    assert_eq!(read_exact(&mut peer, 500).await, vec![3u8; 500]);
}

#[tokio::test(start_paused = true)]
async fn a_peer_taking_nothing_after_a_handover_closes_the_connection_one_stall_later() {
    let (io, _peer) = tokio::io::duplex(64);
    let (side, tx, rx) = new_side(Box::new(io));
    let writer = tokio::spawn(write_loop(side.clone(), rx));
    let start = Instant::now();
    let stall = Duration::from_millis(500);
    let sink = side.try_direct().unwrap();
    let r = side
        .write_direct(sink, &tx, frame(4, 1000), stall, start + stall)
        .await;
    assert!(matches!(r, Err(DirectError::Deadline)));
    writer.await.unwrap();
    assert!(side.closed.is_cancelled());
    let failure = side.failure().unwrap();
    assert_eq!(failure.kind(), std::io::ErrorKind::TimedOut);
    // No progress since the first 64 bytes: given up one stall after them, not two.
    assert!(start.elapsed() < stall * 3 / 2, "{:?}", start.elapsed());
}
