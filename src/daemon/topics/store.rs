//! The topic state behind a lock that only blocking threads take, and the table it publishes.

use std::sync::{Arc, Mutex, RwLock};

use super::state::TopicState;
use crate::broker::body::TopicConfigWrapper;
use crate::poison::{lock, read, write};

/// The topic state and the table last published from it.
pub(crate) struct Topics {
    /// Only ever locked on blocking threads (see [`Topics::update`]): reading and parsing a
    /// large file under it must never stall an async worker.
    state: Mutex<TopicState>,
    /// The table to register, published after every change; what async code reads.
    table: RwLock<Arc<TopicConfigWrapper>>,
}

impl Default for Topics {
    fn default() -> Self {
        let state = TopicState::default();
        Topics {
            table: RwLock::new(state.table()),
            state: Mutex::new(state),
        }
    }
}

impl Topics {
    /// The current table (cheap: an `Arc`).
    pub(crate) fn table(&self) -> Arc<TopicConfigWrapper> {
        read(&self.table).clone()
    }

    /// Runs `f` on the topic state on a blocking thread, then publishes the table.
    /// None when `f` panicked (the state is kept; the task that asked carries on).
    pub(crate) async fn update<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut TopicState) -> R + Send + 'static,
    ) -> Option<R> {
        let me = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut state = lock(&me.state);
            let r = f(&mut state);
            *write(&me.table) = state.table();
            r
        })
        .await;
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(error = %e, "topic update failed, keeping the last good topics");
                None
            }
        }
    }
}
