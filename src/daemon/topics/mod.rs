//! The topics to register: the table and where it comes from, and the task that watches the
//! topics file.

mod state;
mod store;
mod watch;

#[cfg(feature = "test-util")]
pub use state::{TopicState, TopicsError};
pub(crate) use store::Topics;
pub(crate) use watch::topics_watch;
