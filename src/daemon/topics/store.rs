//! The topic state behind a lock that only blocking threads take. The topics task is its one
//! holder; the lock is there to hand the state to a blocking thread, not to share it.

use std::sync::{Arc, Mutex};

use super::state::TopicState;
use crate::poison::lock;

/// The topic state; it outlives the topics task's restarts (the restart spec holds it).
#[derive(Default)]
pub(crate) struct Topics {
    /// Only ever locked on blocking threads (see [`Topics::update`]): reading and parsing a
    /// large file under it must never stall an async worker.
    state: Mutex<TopicState>,
}

impl Topics {
    /// Runs `f` on the topic state on a blocking thread. None when `f` panicked (the state is
    /// kept; the task carries on).
    pub(crate) async fn update<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut TopicState) -> R + Send + 'static,
    ) -> Option<R> {
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || f(&mut lock(&me.state))).await;
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "topic update failed, keeping the last good topics");
                None
            }
        }
    }
}
