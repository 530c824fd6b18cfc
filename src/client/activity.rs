//! A connection's idle clock, shared by its reader and whoever writes on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When the connection last read or wrote, in ms since it opened: one atomic, no lock.
pub(crate) struct Activity {
    base: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    /// A clock that starts now.
    pub(crate) fn new() -> Self {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Notes activity now.
    pub(crate) fn touch(&self) {
        let ms = Instant::now().duration_since(self.base).as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// The last activity.
    pub(crate) fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}
