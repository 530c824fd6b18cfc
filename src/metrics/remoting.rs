//! The remoting client: requests, connections and what the client counts itself.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use super::registry::Reg;
use crate::client::RemotingClient;

/// Metrics of the remoting client.
pub struct RemotingMetrics {
    pub(crate) requests: IntCounterVec,
    pub(crate) timeouts: IntCounter,
    pub(crate) in_flight: IntGauge,
    pub(crate) open_connections: IntGauge,
    pub(crate) events_dropped: IntCounter,
    pub(crate) unexpected_replies: IntCounter,
    pub(crate) busy: IntCounter,
    pub(crate) replies_dropped: IntCounter,
}

impl RemotingMetrics {
    pub(crate) fn new(r: &Reg<'_>) -> prometheus::Result<Self> {
        Ok(RemotingMetrics {
            requests: r.counter_vec(
                "remoting_requests_total",
                "Remoting requests by code and outcome",
                &["code", "outcome"],
            )?,
            timeouts: r.counter(
                "request_timeouts_total",
                "Remoting requests that got no reply in time",
            )?,
            in_flight: r.gauge(
                "remoting_in_flight_requests",
                "Requests waiting for a reply",
            )?,
            open_connections: r.gauge("remoting_open_connections", "Open remoting connections")?,
            events_dropped: r.counter(
                "channel_events_dropped_total",
                "Channel events dropped on a full queue",
            )?,
            unexpected_replies: r.counter(
                "remoting_unexpected_replies_total",
                "Replies that matched no request on their connection, dropped",
            )?,
            busy: r.counter(
                "remoting_send_queue_full_total",
                "Requests refused because the connection's send queue stayed full",
            )?,
            replies_dropped: r.counter(
                "remoting_replies_dropped_total",
                "Replies to server requests dropped on a full send queue",
            )?,
        })
    }

    /// One request's outcome: "ok" or its error's `kind()`; `timed_out` also counts it as
    /// a timeout.
    pub(super) fn request(&self, code: i32, outcome: &'static str, timed_out: bool) {
        let mut buf = itoa_buf();
        self.requests
            .with_label_values(&[format_code(&mut buf, code), outcome])
            .inc();
        if timed_out {
            self.timeouts.inc();
        }
    }

    /// Reads what the client counts itself, at a scrape.
    pub(super) fn sample(&self, client: &RemotingClient) {
        self.in_flight.set(client.in_flight() as i64);
        self.open_connections
            .set(client.connected_addrs().len() as i64);
        let stats = client.stats();
        catch_up(&self.events_dropped, &stats.events_dropped);
        catch_up(&self.unexpected_replies, &stats.unknown_replies);
        catch_up(&self.busy, &stats.busy);
        catch_up(&self.replies_dropped, &stats.replies_dropped);
    }
}

/// Brings a counter up to a total the client keeps itself.
fn catch_up(c: &IntCounter, total: &AtomicU64) {
    let total = total.load(Ordering::Relaxed);
    let seen = c.get();
    if total > seen {
        c.inc_by(total - seen);
    }
}

fn itoa_buf() -> [u8; 12] {
    [0; 12]
}

/// `code` in decimal, written into `buf` (no allocation per request).
fn format_code(buf: &mut [u8; 12], code: i32) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{code}");
    let n = cursor.position() as usize;
    std::str::from_utf8(&buf[..n]).unwrap_or("0")
}
