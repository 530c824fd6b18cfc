//! Errors of the remoting client.

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::FrameError;

/// Why a remoting call failed. Cloneable so one failure can answer many waiters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No address was given and the NameServer list is empty.
    #[error("no NameServer address is configured")]
    NoNameServer,
    /// The TCP connect failed.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// Peer address.
        addr: String,
        /// The socket error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The TCP connect did not finish in time.
    #[error("connect to {addr} timed out after {timeout:?}")]
    ConnectTimeout {
        /// Peer address.
        addr: String,
        /// The connect timeout.
        timeout: Duration,
    },
    /// Writing the request failed; the connection was closed.
    #[error("send to {addr} failed: {source}")]
    Send {
        /// Peer address.
        addr: String,
        /// The socket error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The request was sent but no reply came in time; the connection is kept.
    #[error("no reply from {addr} within {timeout:?}")]
    Timeout {
        /// Peer address.
        addr: String,
        /// The call's timeout.
        timeout: Duration,
    },
    /// No permit was free and the call's timeout was zero.
    #[error("too many requests in flight")]
    TooManyRequests,
    /// No permit became free within the call's timeout.
    #[error("no request permit within {0:?}")]
    PermitTimeout(Duration),
    /// The connection died while the request waited for its reply.
    #[error("connection to {addr} closed before the reply")]
    ConnectionClosed {
        /// Peer address.
        addr: String,
    },
    /// The connection's send queue is full: the peer is not taking data as fast as we send.
    #[error("send queue to {addr} is full: the peer is not keeping up")]
    Busy {
        /// Peer address.
        addr: String,
    },
    /// The TLS handshake failed (or TLS could not be set up for this address).
    #[error("TLS with {addr}: {source}")]
    Tls {
        /// Peer address.
        addr: String,
        /// Why (its message says it in words: unknown issuer, name mismatch, not TLS …).
        #[source]
        source: Arc<TlsFailure>,
    },
    /// A plain connection was closed before any reply: typical of a TLS-only server.
    #[error("connection to {addr} reset during the first request: the server may require TLS (tls.enable)")]
    ClosedBeforeReply {
        /// Peer address.
        addr: String,
    },
    /// The client was shut down.
    #[error("remoting client is shut down")]
    Shutdown,
    /// The request could not be encoded (e.g. larger than the frame limit).
    #[error("cannot encode request: {0}")]
    Encode(#[source] Arc<FrameError>),
}

/// Why TLS could not be set up with a peer.
#[derive(Debug, thiserror::Error)]
pub enum TlsFailure {
    /// The name to verify (`tls.server_name`, else the address's host) is not a DNS name or IP.
    #[error(transparent)]
    ServerName(#[from] crate::tls::BadServerName),
    /// The handshake failed; the message says what it means for the operator.
    #[error("{}", crate::tls::explain(.source))]
    Handshake {
        /// The handshake's error; a rustls error inside when TLS itself refused.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// True for every flavour of "took too long".
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout { .. }
                | ClientError::PermitTimeout(_)
                | ClientError::ConnectTimeout { .. }
        )
    }

    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::NoNameServer => "no_namesrv",
            ClientError::Connect { .. } => "connect",
            ClientError::ConnectTimeout { .. } => "connect_timeout",
            ClientError::Send { .. } => "send",
            ClientError::Timeout { .. } => "timeout",
            ClientError::TooManyRequests => "too_many_requests",
            ClientError::PermitTimeout(_) => "permit_timeout",
            ClientError::ConnectionClosed { .. } => "closed",
            ClientError::Busy { .. } => "busy",
            ClientError::Tls { .. } => "tls",
            ClientError::ClosedBeforeReply { .. } => "closed",
            ClientError::Shutdown => "shutdown",
            ClientError::Encode(_) => "encode",
        }
    }
}
