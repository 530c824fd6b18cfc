//! Why a broker API call failed.

use std::time::Duration;

use crate::broker::own_config::ReportError;
use crate::client::ClientError;
use crate::protocol::code::response::NO_PERMISSION;

/// Why a broker API call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The remoting layer failed (connect, send, timeout …).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The peer answered with a non-SUCCESS code (Java's MQBrokerException).
    #[error("peer answered code {code}: {}", remark.as_deref().unwrap_or(""))]
    Refused {
        /// Response code.
        code: i32,
        /// Response remark.
        remark: Option<String>,
    },
    /// The reply body is missing or does not parse.
    #[error("bad {what} in reply: {reason}")]
    Decode {
        /// Which document.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The whole operation ran out of time.
    #[error("no outcome within {0:?}")]
    Timeout(Duration),
    /// A blocking parse task ended without an answer (it panicked or was cancelled).
    #[error("the {what} parse task failed")]
    Task {
        /// Which document.
        what: &'static str,
        /// Why.
        #[source]
        source: std::sync::Arc<tokio::task::JoinError>,
    },
    /// A registration too big for one frame, toward a NameServer that deletes the broker's
    /// topics missing from each registration: a split would leave only the last batch.
    #[error("the registration ({len} bytes) does not fit one frame ({max_frame}), and this NameServer deletes the topics missing from each registration (deleteTopicWithBrokerRegistration=true), so it cannot be split, and its compressed form is not known: raise remoting.max_frame")]
    Unsplittable {
        /// The plain body's length.
        len: usize,
        /// `remoting.max_frame`.
        max_frame: usize,
    },
    /// The broker answered GET_BROKER_CONFIG without a usable identity.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl ApiError {
    /// The peer refused the request's credentials (or their absence): its remark.
    pub fn auth_refusal(&self) -> Option<&str> {
        match self {
            ApiError::Refused { code, remark } if *code == NO_PERMISSION => {
                Some(remark.as_deref().unwrap_or(""))
            }
            _ => None,
        }
    }

    /// True for every flavour of "took too long" (counted as request timeouts).
    pub fn is_timeout(&self) -> bool {
        match self {
            ApiError::Timeout(_) => true,
            ApiError::Client(e) => e.is_timeout(),
            _ => false,
        }
    }

    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::Client(e) => e.kind(),
            ApiError::Refused { code, .. } if *code == NO_PERMISSION => "auth_failed",
            ApiError::Refused { .. } => "refused",
            ApiError::Decode { .. } => "decode",
            ApiError::Timeout(_) => "timeout",
            ApiError::Report(_) => "identity",
            ApiError::Task { .. } => "task",
            ApiError::Unsplittable { .. } => "unsplittable",
        }
    }
}
