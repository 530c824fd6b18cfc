//! What the client counts about itself and what each peer said about itself.

use std::sync::atomic::AtomicU64;

use crate::protocol::LanguageCode;

/// Counters the client keeps about itself.
#[derive(Debug, Default)]
pub struct ClientStats {
    /// Channel events dropped because the listener's queue was full.
    pub events_dropped: AtomicU64,
    /// Replies that matched no request sent on their connection (late, unsolicited, forged).
    pub unknown_replies: AtomicU64,
    /// Sends refused because the connection's queue was full.
    pub busy: AtomicU64,
    /// Replies to server requests dropped because the connection's queue was full.
    pub replies_dropped: AtomicU64,
    /// Requests failed by the response-table sweeper.
    pub swept_timeouts: AtomicU64,
    /// TCP connections opened.
    pub connects: AtomicU64,
}

/// What a peer said about itself in its last reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's language (JAVA, RUST …).
    pub language: LanguageCode,
    /// The peer's `MQVersion` ordinal.
    pub version: i32,
}
