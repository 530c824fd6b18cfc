//! How a registration is to be sent: the caller's choices.

use std::time::Duration;

/// Java's default `splitRegistrationSize`.
pub const DEFAULT_SPLIT_SIZE: usize = 800;

/// The split sizes accepted, from the configuration and from the broker's own answer alike:
/// one range, so that a value the config refuses is never taken from the broker.
pub const SPLIT_SIZES: std::ops::RangeInclusive<usize> = 1..=100_000;

/// How a registration is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOptions {
    /// Bound on each NameServer's whole exchange.
    pub timeout: Duration,
    /// Send without waiting for replies.
    pub oneway: bool,
    /// Compress the body where the NameServer's form is known.
    pub compressed: bool,
    /// NameServer-side expiry for this broker (`heartbeatTimeoutMillis`).
    pub heartbeat_timeout: Option<Duration>,
    /// Register fully even where the NameServer already holds our data version.
    pub force: bool,
    /// Value of `enableActingMaster` (5.x brokers always send it).
    pub enable_acting_master: bool,
    /// Largest frame a NameServer takes: a larger registration is split (or compressed).
    pub max_frame: usize,
    /// Topics per request when a registration is split (Java's `splitRegistrationSize`).
    pub split_size: usize,
    /// Split whenever there are more than `split_size` topics (Java's
    /// `enableSplitRegistration`), not only when the body would not fit in a frame.
    pub always_split: bool,
    /// Take a NameServer that does not answer GET_NAMESRV_CONFIG as one that deletes the
    /// broker's topics missing from a registration (never split toward it).
    pub assume_topic_deletion: bool,
}

impl Default for RegisterOptions {
    fn default() -> Self {
        RegisterOptions {
            timeout: Duration::from_secs(3),
            oneway: false,
            compressed: false,
            heartbeat_timeout: None,
            force: true,
            enable_acting_master: false,
            max_frame: crate::protocol::DEFAULT_MAX_FRAME,
            split_size: DEFAULT_SPLIT_SIZE,
            always_split: false,
            assume_topic_deletion: false,
        }
    }
}
