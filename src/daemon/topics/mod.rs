//! The topics to register: the table and where it comes from. The topics task (`task.rs`) is
//! the table's one owner; the others reach it through `inbox.rs`.

mod inbox;
mod state;
mod store;
mod task;

pub(crate) use inbox::{inbox, Inbox, MasterTopics, RoundTable, TopicsAsk};
#[cfg(feature = "test-util")]
pub use state::{TopicState, TopicsError};
pub(crate) use task::topics_loop;
