//! The topics to register: the table and where it comes from (the task that watches the
//! topics file is `topics_watch`).

mod state;
mod store;

#[cfg(feature = "test-util")]
pub use state::{TopicState, TopicsError};
pub(crate) use store::Topics;
